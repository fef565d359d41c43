"""action_resume: the shopper answers the last question (a size, a city, a postcode...)."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import ShopUnavailable, dispatch, stock_ask
from actions.stock import answer
from actions.stores import store_hours

# What was asked -> which answer goes on with the shopper's reply.
RESUME = {"size": "stock", "colour": "stock", "nearest_place": "nearest",
          "hold_store": "hold", "parts_product": "parts"}
PRIVACY_RESUME = (("contact", "verify"), ("code", "code"), ("correct ", "correct"),
                  ("birthday_date", "birthday_date"))


class ActionResume(Action):
    def name(self) -> Text:
        return "action_resume"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        pending = tracker.get_slot("pending") or ""
        ask = stock_ask(tracker)
        privacy_kind = next((kind for prefix, kind in PRIVACY_RESUME if pending.startswith(prefix)), None)
        if privacy_kind is not None:
            from actions.privacy import (ActionBirthdayDate, ActionCorrectData,
                                         ActionPrivacyCode, ActionVerify)

            action = {"verify": ActionVerify, "code": ActionPrivacyCode,
                      "correct": ActionCorrectData, "birthday_date": ActionBirthdayDate}[privacy_kind]()
            return await action.run(dispatcher, tracker, domain)
        if pending.startswith("hours_store"):
            return await store_hours(dispatcher, tracker, pending_day=pending[12:] or None)
        kind = RESUME.get(pending)
        if kind is None:
            # Nothing was asked: a product goes to the stock answer, a place to store hours.
            if ask.product or ask.size or ask.colour or tracker.get_slot("stock_product"):
                kind = "stock"
            elif ask.city or ask.postcode:
                return await store_hours(dispatcher, tracker)
            else:
                dispatcher.utter_message(response="utter_default")
                return []
        try:
            reply = await answer(kind, ask)
        except ShopUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return []
        return dispatch(reply, dispatcher, tracker)
