"""Store actions: opening hours and addresses."""
from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import ShopUnavailable, in_shop
from bot import stores
from bot.text import clip


class ActionStoreHours(Action):
    def name(self) -> Text:
        return "action_store_hours"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        city = tracker.get_slot("city")
        if not city:
            dispatcher.utter_message(response="utter_ask_city")
            return []
        now = dt.datetime.now(dt.timezone.utc)
        try:
            answer, known = await in_shop(
                lambda s: (stores.store_hours_answer(s, city, now), stores.cities(s)))
        except ShopUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return []
        if answer is None:
            dispatcher.utter_message(
                text=f"Je ne trouve pas de magasin à « {clip(city)} ». "
                     f"Nous sommes présents à {', '.join(known)}, et bien sûr en ligne.")
            return [SlotSet("city", None)]
        for text in answer:
            dispatcher.utter_message(text=text)
        return [SlotSet("city", None)]
