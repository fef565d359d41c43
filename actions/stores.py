"""Store actions: address, opening hours (for a given day too), open now."""
from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Optional, Text
from zoneinfo import ZoneInfo

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import ShopUnavailable, in_shop, settings, slot_changes
from bot.core.replies import Pending
from bot.core.text import clip, day_asked
from bot.stores import directory


async def store_hours(dispatcher: CollectingDispatcher, tracker: Tracker,
                      pending_day: Optional[str] = None) -> List[Dict[Text, Any]]:
    """Hours of the store named in the message (or slot); asks which store otherwise.

    The day asked ("dimanche ?") is kept in `pending` while the city is asked for.
    """
    city = next(tracker.get_latest_entity_values("city"), None) or tracker.get_slot("city")
    now = dt.datetime.now(dt.timezone.utc)
    today = now.astimezone(ZoneInfo(settings().timezone)).date()
    day = day_asked(tracker.latest_message.get("text") or "", today)
    if day is None and pending_day:
        day = dt.date.fromisoformat(pending_day)
    if not city:  # no entity: a store or city named word for word in the message
        try:
            city = await in_shop(lambda s: directory.place_named_in(s, tracker.latest_message.get("text") or ""))
        except ShopUnavailable:
            city = None
    if not city:
        dispatcher.utter_message(response="utter_ask_city")
        asked = Pending("hours_store", day.isoformat() if day else None)
        return slot_changes(tracker, {"pending": asked.slot})
    try:
        answer, known = await in_shop(
            lambda s: (directory.store_hours_answer(s, city, now, day), directory.cities(s)))
    except ShopUnavailable:
        dispatcher.utter_message(response="utter_service_unavailable")
        return []
    if answer is None:
        dispatcher.utter_message(
            text=f"Je ne trouve pas de magasin à « {clip(city)} ». "
                 f"Nous sommes présents à {', '.join(known)}, et bien sûr en ligne.")
        return slot_changes(tracker, {"city": None, "pending": None})
    for text in answer:
        dispatcher.utter_message(text=text)
    return slot_changes(tracker, {"city": None, "pending": None})


class ActionStoreHours(Action):
    def name(self) -> Text:
        return "action_store_hours"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        return await store_hours(dispatcher, tracker)
