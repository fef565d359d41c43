"""Conversations as people see them again, rebuilt from Rasa's tracker: the widget's replay
after a reload, an agent's transcript with what the bot worked with, an export's history.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from bot.assistant.client import CONTINUED, RasaUnavailable
from bot.core.chats import find_identity
from bot.core.db import in_session
from bot.stock.catalog import product_names
from bot.core.redact import export_links_masked, hidden_if_personal
from bot.customers.verification import verified_customer
from bot.web.keys import RASA, SESSIONS


async def ticket_context(app: web.Application, sender: str) -> List[Dict[str, Any]]:
    """The transcript plus the intents and the product the bot worked with."""
    try:
        events = await app[RASA].tracker_events(sender)
    except RasaUnavailable:
        return []
    shown = transcript(events)
    extra: List[Dict[str, Any]] = []
    for event in events:
        if event.get("event") == "user":
            extra.append({"intent": ((event.get("parse_data") or {}).get("intent") or {}).get("name")})
        elif event.get("event") == "slot" and event.get("name") == "stock_product" and event.get("value"):
            extra.append({"product": event["value"]})
    skus = {e["product"] for e in extra if "product" in e}
    if skus:
        known = await in_session(app[SESSIONS], lambda session: product_names(session, skus))
        extra = [{"product": f"{known.get(e['product'], '')} ({e['product']})".strip()}
                 if "product" in e else e for e in extra]
    return [dict(m) for m in shown] + extra


def transcript(events: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """What the customer saw, from tracker events: their words and the bot's answers.

    A tapped button was sent as its payload; the button's title is shown instead.
    """
    shown: List[Dict[str, Any]] = []
    titles: Dict[str, str] = {}
    for event in events:
        if event.get("event") == "user":
            text = event.get("text") or ""
            if text.startswith("/"):
                if text not in titles:
                    continue  # /greet sent by the widget itself, /start...
                text = titles[text]
            shown.append({"sender": "user", "text": text})
        elif event.get("event") == "bot":
            data = event.get("data") or {}
            buttons = data.get("buttons") or []
            titles = {b.get("payload"): b.get("title") for b in buttons if b.get("payload")}
            shown.append({"sender": "bot", "text": event.get("text") or "",
                          "buttons": buttons, "image": data.get("image"),
                          "attachment": data.get("attachment")})
    return shown[-200:]


async def history(app: web.Application, sender: str) -> List[Dict[str, Any]]:
    try:
        return transcript(await app[RASA].tracker_events(sender))
    except RasaUnavailable:
        return []


async def replay(app: web.Application, session_id: str) -> List[Dict[str, Any]]:
    """What the web widget shows again on reload: the current conversation session only
    (Rasa starts a new one after an hour of silence; a long one continued in a new
    session, `bot.ops.rasa_server`, is still the same), export links masked, and, unless
    the chat is verified right now, every message holding personal data or a code
    hidden (after the verification lapsed or "déconnectez-moi", the browser may be
    someone else's)."""
    try:
        events = await app[RASA].tracker_events(session_id)
    except RasaUnavailable:
        return []
    starts = [i for i, event in enumerate(events) if event.get("event") == "session_started"
              and not (event.get("metadata") or {}).get(CONTINUED)]
    shown = transcript(events[starts[-1]:] if starts else events)

    def verified(session) -> bool:
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        return verified_customer(find_identity(session, "web", session_id), now) is not None

    try:
        proven = await in_session(app[SESSIONS], verified)
    except SQLAlchemyError:
        proven = False
    hide = export_links_masked if proven else hidden_if_personal
    return [{**message, "text": hide(message["text"])} for message in shown]
