"""Identity, consent and personal-data actions: thin adapters over
`bot.privacy.desk.PrivacyDesk`, each naming the desk's answer it runs."""
from __future__ import annotations

import abc
from typing import Callable, Text

from rasa_sdk import Tracker

from actions.common import DeskAction, in_shop, personal_desks, privacy_ask
from bot.core.replies import Reply
from bot.privacy.desk import PrivacyDesk
from bot.privacy.proof import PrivacyAsk


class PrivacyAction(DeskAction, metaclass=abc.ABCMeta):
    """Runs one `PrivacyDesk` answer for the latest message."""

    respond: Callable[[PrivacyDesk, PrivacyAsk], Reply]

    async def reply(self, tracker: Tracker) -> Reply:
        ask, respond = privacy_ask(tracker), type(self).respond
        return await in_shop(lambda session: respond(personal_desks(session)[0], ask))


class ActionVerify(PrivacyAction):
    respond = PrivacyDesk.answer_verify

    def name(self) -> Text:
        return "action_verify"


class ActionPrivacyCode(PrivacyAction):
    respond = PrivacyDesk.answer_code

    def name(self) -> Text:
        return "action_privacy_code"


class ActionLogout(PrivacyAction):
    respond = PrivacyDesk.answer_logout

    def name(self) -> Text:
        return "action_logout"


class ActionMyData(PrivacyAction):
    respond = PrivacyDesk.answer_summary

    def name(self) -> Text:
        return "action_my_data"


class ActionExportData(PrivacyAction):
    respond = PrivacyDesk.answer_export

    def name(self) -> Text:
        return "action_export_data"


class ActionCorrectData(PrivacyAction):
    respond = PrivacyDesk.answer_correct

    def name(self) -> Text:
        return "action_correct_data"


class ActionEraseData(PrivacyAction):
    respond = PrivacyDesk.answer_erase

    def name(self) -> Text:
        return "action_erase_data"


class ActionShowConsents(PrivacyAction):
    respond = PrivacyDesk.answer_consents

    def name(self) -> Text:
        return "action_show_consents"


class ActionStop(PrivacyAction):
    respond = PrivacyDesk.answer_stop

    def name(self) -> Text:
        return "action_stop"


class ActionWhyData(PrivacyAction):
    respond = PrivacyDesk.answer_why

    def name(self) -> Text:
        return "action_why_data"


class ActionChangeConsent(PrivacyAction):
    respond = PrivacyDesk.answer_change_consent

    def name(self) -> Text:
        return "action_change_consent"
