"""Thanks and goodbye: Comptoir's usual words, then, when the bot solved a request in
this conversation, the one-tap satisfaction question (bot.review.satisfaction)."""
from __future__ import annotations

import abc

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import ShopUnavailable, chat_channel, in_shop, now_utc, settings
from bot.review import satisfaction


class _Closing(Action, metaclass=abc.ABCMeta):
    response: str

    @abc.abstractmethod
    def name(self) -> Text:
        ...

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(response=self.response)
        intent = satisfaction.served_intent(tracker.events)
        if intent is None:
            return []
        now = now_utc().replace(tzinfo=None)
        try:
            asked = await in_shop(lambda session: satisfaction.ask(
                session, settings().identity_secret, tracker.sender_id, chat_channel(tracker), "bot",
                intent, now))
        except ShopUnavailable:
            return []  # no question rather than one whose answer could not be kept
        if asked:
            dispatcher.utter_message(text=satisfaction.QUESTION, buttons=satisfaction.BUTTONS)
        return []


class ActionThank(_Closing):
    response = "utter_you_are_welcome"

    def name(self) -> Text:
        return "action_thank"


class ActionGoodbye(_Closing):
    response = "utter_goodbye"

    def name(self) -> Text:
        return "action_goodbye"
