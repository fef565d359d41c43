"""Identity, consent, personal-data and loyalty actions: thin adapters over
`bot.privacy.desk.PrivacyDesk` and `bot.offers.desk.OffersDesk`."""
from __future__ import annotations

import abc
import datetime as dt
from typing import Text

from rasa_sdk import Tracker

from actions.common import DeskAction, clarified_text, in_shop, latest_metadata, settings
from bot.core.replies import Reply
from bot.offers.desk import OffersDesk
from bot.offers.rules import load_rules
from bot.privacy.desk import PrivacyAsk
from bot.privacy.verification import Verifier


def privacy_ask(tracker: Tracker) -> PrivacyAsk:
    channel = latest_metadata(tracker).get("comptoir_channel")
    return PrivacyAsk(text=clarified_text(tracker) or tracker.latest_message.get("text") or "",
                      channel=channel if channel in ("web", "telegram") else "web",
                      sender=tracker.sender_id, pending=tracker.get_slot("pending"),
                      confirm=next(tracker.get_latest_entity_values("confirm"), None),
                      public_url=settings().public_url)


async def answer(kind: str, ask: PrivacyAsk) -> Reply:
    config = settings()
    verifier = Verifier(config.identity_secret)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)

    def work(session) -> Reply:
        # The offers desk is the privacy desk plus the loyalty acts that may follow a code.
        desk = OffersDesk(session, verifier, now, config.identity_secret,
                           load_rules(config.offer_rules_file))
        return getattr(desk, f"answer_{kind}")(ask)

    return await in_shop(work)


class PrivacyAction(DeskAction, metaclass=abc.ABCMeta):
    """Runs one `PrivacyDesk.answer_<kind>` for the latest message."""

    kind: str = ""

    async def reply(self, tracker: Tracker) -> Reply:
        return await answer(self.kind, privacy_ask(tracker))


class ActionVerify(PrivacyAction):
    kind = "verify"

    def name(self) -> Text:
        return "action_verify"


class ActionPrivacyCode(PrivacyAction):
    kind = "code"

    def name(self) -> Text:
        return "action_privacy_code"


class ActionLogout(PrivacyAction):
    kind = "logout"

    def name(self) -> Text:
        return "action_logout"


class ActionMyData(PrivacyAction):
    kind = "summary"

    def name(self) -> Text:
        return "action_my_data"


class ActionExportData(PrivacyAction):
    kind = "export"

    def name(self) -> Text:
        return "action_export_data"


class ActionCorrectData(PrivacyAction):
    kind = "correct"

    def name(self) -> Text:
        return "action_correct_data"


class ActionEraseData(PrivacyAction):
    kind = "erase"

    def name(self) -> Text:
        return "action_erase_data"


class ActionShowConsents(PrivacyAction):
    kind = "consents"

    def name(self) -> Text:
        return "action_show_consents"


class ActionStop(PrivacyAction):
    kind = "stop"

    def name(self) -> Text:
        return "action_stop"


class ActionWhyData(PrivacyAction):
    kind = "why"

    def name(self) -> Text:
        return "action_why_data"


class ActionChangeConsent(PrivacyAction):
    kind = "change_consent"

    def name(self) -> Text:
        return "action_change_consent"


class ActionBirthdayOffer(PrivacyAction):
    kind = "birthday"

    def name(self) -> Text:
        return "action_birthday_offer"


class ActionBirthdayDate(PrivacyAction):
    kind = "birthday_date"

    def name(self) -> Text:
        return "action_birthday_date"


class ActionLoyaltyCard(PrivacyAction):
    kind = "loyalty"

    def name(self) -> Text:
        return "action_loyalty_card"


class ActionActivateCard(PrivacyAction):
    kind = "activate"

    def name(self) -> Text:
        return "action_activate_card"


class ActionPromo(PrivacyAction):
    kind = "promo"

    def name(self) -> Text:
        return "action_promo"


class ActionLoyaltyProgramme(PrivacyAction):
    kind = "programme"

    def name(self) -> Text:
        return "action_loyalty_programme"
