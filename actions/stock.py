"""Stock actions: availability, nearest store, holds, alerts, parts. Thin adapters over
`bot.stock.desk.StockDesk`."""
from __future__ import annotations

import abc
from typing import Text

from rasa_sdk import Tracker

from actions.common import DeskAction, catalog, in_shop, now_utc, settings, stock_ask
from bot.core.replies import Reply
from bot.stock.desk import StockAsk, StockDesk


async def answer(kind: str, ask: StockAsk) -> Reply:
    config = settings()

    def work(session) -> Reply:
        desk = StockDesk(session, catalog.get(session), now_utc(), config.timezone,
                         config.hold_hours)
        return getattr(desk, f"answer_{kind}")(ask)

    return await in_shop(work)


class StockAction(DeskAction, metaclass=abc.ABCMeta):
    """Runs one `StockDesk.answer_<kind>` for the latest message."""

    kind: str = ""

    async def reply(self, tracker: Tracker) -> Reply:
        return await answer(self.kind, stock_ask(tracker))


class ActionCheckStock(StockAction):
    kind = "stock"

    def name(self) -> Text:
        return "action_check_stock"


class ActionNearestStore(StockAction):
    kind = "nearest"

    def name(self) -> Text:
        return "action_nearest_store"


class ActionHoldItem(StockAction):
    kind = "hold"

    def name(self) -> Text:
        return "action_hold_item"


class ActionCancelHold(StockAction):
    kind = "cancel"

    def name(self) -> Text:
        return "action_cancel_hold"


class ActionNotifyBackInStock(StockAction):
    kind = "alert"

    def name(self) -> Text:
        return "action_notify_back_in_stock"


class ActionParts(StockAction):
    kind = "parts"

    def name(self) -> Text:
        return "action_parts"
