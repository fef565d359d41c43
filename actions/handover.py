"""Handover actions: open a ticket and pause the bot; offer a person after two misses."""
from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (ShopUnavailable, chat_channel, dispatch, in_shop, note_turn, settings,
                            user_intent)
from bot.assistant import fallback
from bot.core.chats import find_identity
from bot.handover import tickets
from bot.handover.hours import support_hours, wait_text

REASONS = {"request_human": ("demande du client", 2), "complain": ("client mécontent", 1),
           "affirm": ("bot n'a pas compris", 3)}


class ActionHandover(Action):
    def name(self) -> Text:
        return "action_handover"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        reason, priority = REASONS.get(intent, ("demande du client", 2))
        channel, sender = chat_channel(tracker), tracker.sender_id
        hours = support_hours(settings().support_hours, settings().timezone)
        now = dt.datetime.now(dt.timezone.utc)
        in_hours = hours.is_open(now)

        def open_it(session):
            identity = find_identity(session, channel, sender)
            customer = identity.customer_id if identity and identity.verified_at else None
            return tickets.open_ticket(session, channel, sender, reason, priority=priority,
                                        off_hours=not in_hours, customer_id=customer)

        try:
            opened = await in_shop(open_it)
        except ShopUnavailable:
            dispatcher.utter_message(text="Désolé, je n'arrive pas à joindre nos conseillers pour "
                                          "le moment. Vous pouvez appeler votre magasin directement.")
            return []
        sorry = "Je suis désolé pour ce désagrément. " if intent == "complain" else ""
        if not in_hours:
            dispatcher.utter_message(
                text=f"{sorry}Nos conseillers répondent du {hours.describe()}. Le prochain "
                     f"disponible vous répondra {hours.describe_next(now)}. Préférez-vous être "
                     "rappelé ou recevoir une réponse écrite ?",
                buttons=[{"title": "Être rappelé", "payload": '/handover_contact{"contact":"rappel"}'},
                         {"title": "Réponse écrite", "payload": '/handover_contact{"contact":"ecrit"}'}])
            return []
        if opened.already_open:
            dispatcher.utter_message(text="Un conseiller va vous répondre ici même, merci de votre "
                                          "patience.")
        else:
            wait = wait_text(opened.wait_minutes)
            dispatcher.utter_message(
                text=f"{sorry}Je vous passe un conseiller : vous êtes n°{opened.position} dans la "
                     f"file, attente estimée {wait}. Il verra notre échange, inutile de tout "
                     "répéter. Écrivez-lui ici.")
        return [ConversationPaused()]


class ActionHandoverContact(Action):
    def name(self) -> Text:
        return "action_handover_contact"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        raw = (next(tracker.get_latest_entity_values("contact"), "") or "").lower()
        by_phone = ("rappel", "appel", "téléph", "teleph", "coup de fil", "tel")
        preference = "rappel" if raw.startswith(by_phone) else "ecrit"
        try:
            recorded = await in_shop(lambda s: tickets.set_contact_preference(
                s, chat_channel(tracker), tracker.sender_id, preference))
        except ShopUnavailable:
            recorded = False
        if not recorded:
            dispatcher.utter_message(text="Je n'ai pas de demande en attente pour vous. Écrivez "
                                          "« un conseiller » si vous souhaitez parler à quelqu'un.")
        elif preference == "rappel":
            dispatcher.utter_message(text="C'est noté : un conseiller vous rappellera dès l'ouverture, "
                                          "au numéro de votre compte fidélité ou à celui que vous "
                                          "lui indiquerez ici.")
        else:
            dispatcher.utter_message(text="C'est noté : un conseiller vous répondra par écrit ici "
                                          "dès l'ouverture.")
        return []


class ActionFallback(Action):
    """Not understood: a clarifying question; not ours: where to go instead. The second
    miss in a row offers a person."""

    def name(self) -> Text:
        return "action_fallback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        user_turns = [e for e in tracker.events if e.get("event") == "user"][-2:]
        intents = [user_intent(e) for e in user_turns]
        latest = tracker.latest_message
        if fallback.two_misses(intents):
            reply, reason = fallback.offer_person(), "handover"
        elif (latest.get("intent") or {}).get("name") == "out_of_scope":
            reply, reason = fallback.out_of_scope(latest.get("text") or "", settings().orders_contact,
                                                  settings().orders_url), "out_of_scope"
        else:
            ranking = latest.get("intent_ranking") or []
            reply = fallback.clarify(ranking, latest.get("entities") or [])
            reason = "clarify" if fallback.likely_intents(ranking) else "fallback"
        await note_turn(tracker, reason)
        return dispatch(reply, dispatcher, tracker)
