"""action_resume: the shopper answers the last question (a size, a city, a postcode, a
contact, a code...), whatever the NLU made of the answer."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import ShopUnavailable, dispatch, stock_ask
from actions.offers import ActionBirthdayDate
from actions.privacy import ActionCorrectData, ActionPrivacyCode, ActionVerify
from actions.stock import answer
from actions.stores import store_hours
from bot.core.replies import Pending
from bot.stock.desk import StockDesk

# What was asked -> which answer goes on with the shopper's reply.
STOCK_RESUME = {"size": StockDesk.answer_stock, "colour": StockDesk.answer_stock,
                "nearest_place": StockDesk.answer_nearest, "hold_store": StockDesk.answer_hold,
                "parts_product": StockDesk.answer_parts}
PRIVACY_RESUME = {"contact": ActionVerify, "code": ActionPrivacyCode,
                  "correct": ActionCorrectData, "birthday_date": ActionBirthdayDate}


class ActionResume(Action):
    def name(self) -> Text:
        return "action_resume"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        pending = Pending.read(tracker.get_slot("pending"))
        if pending.asked in PRIVACY_RESUME:
            return await PRIVACY_RESUME[pending.asked]().run(dispatcher, tracker, domain)
        if pending.asked == "hours_store":
            return await store_hours(dispatcher, tracker, pending_day=pending.about)
        ask = stock_ask(tracker)
        respond = STOCK_RESUME.get(pending.asked)
        if respond is None:
            # Nothing was asked: a product goes to the stock answer, a place to store hours.
            if ask.product or ask.size or ask.colour or tracker.get_slot("stock_product"):
                respond = StockDesk.answer_stock
            elif ask.city or ask.postcode:
                return await store_hours(dispatcher, tracker)
            else:
                dispatcher.utter_message(response="utter_default")
                return []
        try:
            reply = await answer(respond, ask)
        except ShopUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return []
        return dispatch(reply, dispatcher, tracker)
