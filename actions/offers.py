"""Birthday offer, promo code and loyalty card actions: thin adapters over
`bot.offers.desk.OffersDesk`, each naming the desk's answer it runs."""
from __future__ import annotations

import abc
from typing import Callable, Text

from rasa_sdk import Tracker

from actions.common import DeskAction, in_shop, personal_desks, privacy_ask
from bot.core.replies import Reply
from bot.offers.desk import OffersDesk
from bot.privacy.proof import PrivacyAsk


class OffersAction(DeskAction, metaclass=abc.ABCMeta):
    """Runs one `OffersDesk` answer for the latest message."""

    respond: Callable[[OffersDesk, PrivacyAsk], Reply]

    async def reply(self, tracker: Tracker) -> Reply:
        ask, respond = privacy_ask(tracker), type(self).respond
        return await in_shop(lambda session: respond(personal_desks(session)[1], ask))


class ActionBirthdayOffer(OffersAction):
    respond = OffersDesk.answer_birthday

    def name(self) -> Text:
        return "action_birthday_offer"


class ActionBirthdayDate(OffersAction):
    respond = OffersDesk.answer_birthday_date

    def name(self) -> Text:
        return "action_birthday_date"


class ActionLoyaltyCard(OffersAction):
    respond = OffersDesk.answer_loyalty

    def name(self) -> Text:
        return "action_loyalty_card"


class ActionActivateCard(OffersAction):
    respond = OffersDesk.answer_activate

    def name(self) -> Text:
        return "action_activate_card"


class ActionPromo(OffersAction):
    respond = OffersDesk.answer_promo

    def name(self) -> Text:
        return "action_promo"


class ActionLoyaltyProgramme(OffersAction):
    respond = OffersDesk.answer_programme

    def name(self) -> Text:
        return "action_loyalty_programme"
