"""Stock actions: availability, nearest store, holds, alerts, parts. Thin adapters over
`bot.stock.desk.StockDesk`: each action names the desk's answer it runs."""
from __future__ import annotations

import abc
from typing import Callable, Text

from rasa_sdk import Tracker

from actions.common import DeskAction, catalog, in_shop, now_utc, settings, stock_ask
from bot.core.replies import Reply
from bot.stock.desk import StockDesk
from bot.stock.resolve import StockAsk

StockAnswer = Callable[[StockDesk, StockAsk], Reply]


async def answer(respond: StockAnswer, ask: StockAsk) -> Reply:
    config = settings()

    def work(session) -> Reply:
        desk = StockDesk(session, catalog.get(session), now_utc(), config.timezone,
                         config.hold_hours, config.public_url)
        return respond(desk, ask)

    return await in_shop(work)


class StockAction(DeskAction, metaclass=abc.ABCMeta):
    """Runs one `StockDesk` answer for the latest message."""

    respond: StockAnswer

    async def reply(self, tracker: Tracker) -> Reply:
        return await answer(type(self).respond, stock_ask(tracker))


class ActionCheckStock(StockAction):
    respond = StockDesk.answer_stock

    def name(self) -> Text:
        return "action_check_stock"


class ActionNearestStore(StockAction):
    respond = StockDesk.answer_nearest

    def name(self) -> Text:
        return "action_nearest_store"


class ActionHoldItem(StockAction):
    respond = StockDesk.answer_hold

    def name(self) -> Text:
        return "action_hold_item"


class ActionCancelHold(StockAction):
    respond = StockDesk.answer_cancel

    def name(self) -> Text:
        return "action_cancel_hold"


class ActionNotifyBackInStock(StockAction):
    respond = StockDesk.answer_alert

    def name(self) -> Text:
        return "action_notify_back_in_stock"


class ActionParts(StockAction):
    respond = StockDesk.answer_parts

    def name(self) -> Text:
        return "action_parts"
