"""One customer turn, whatever the channel: the message cleaned and bounded, the
conversation's order and flood limit, a satisfaction button recorded (never sent to
Rasa), a handed-over conversation routed to the console, queued messages riding along,
an erasure carried out, and a polite French answer for every failure behind.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from bot.assistant.client import RasaUnavailable
from bot.core.db import in_session, make_engine
from bot.core.models import utcnow
from bot.core.outbox import take_pending
from bot.handover import tickets
from bot.privacy.requests import erase_conversations
from bot.review import satisfaction
from bot.stores.geo import place_from_metadata
from bot.web.keys import CONSOLE, CONVERSATIONS, RASA, SESSIONS, SETTINGS, SHARED

logger = logging.getLogger("comptoir.gateway")

MAX_MESSAGE_CHARS = 2000
MAX_SENDER_CHARS = 128

# Per conversation: a burst of 10 messages, then one a second; a sender further ahead
# than MAX_FLOOD_WAIT seconds is answered at once instead of queued.
FLOOD_BURST, FLOOD_RATE, MAX_FLOOD_WAIT = 10, 1.0, 5.0

REPLY_EMPTY = ("Je n'ai rien reçu. Écrivez-moi votre question, par exemple : "
               "« Vous avez les Pegasus 41 en 42 à Lyon ? »")
REPLY_TOO_LONG = ("Votre message est un peu long pour moi. Pouvez-vous me le résumer "
                  f"en quelques phrases (moins de {MAX_MESSAGE_CHARS} caractères) ?")
REPLY_RASA_DOWN = ("Désolé, notre assistant est momentanément indisponible. Réessayez dans "
                   "quelques minutes ; vos messages précédents ne sont pas perdus.")
REPLY_ACTIONS_DOWN = ("Désolé, je n'arrive pas à consulter nos informations pour le moment. "
                      "Réessayez dans quelques instants.")
REPLY_NOTHING = "Pardon, je n'ai pas de réponse à cela. Pouvez-vous reformuler ?"
REPLY_FLOOD = ("Vous m'écrivez plus vite que je ne peux lire : patientez quelques secondes, "
               "puis renvoyez votre dernier message.")
REPLY_RATED = "Votre réponse est déjà notée, merci."
REPLY_FIELDS = ("text", "buttons", "image", "custom", "attachment")


def sender_ref(sender: str) -> str:
    """A short stable reference for logs: never the raw channel identity."""
    return hashlib.sha256(sender.encode()).hexdigest()[:10]


def _clean_message(message: str) -> str:
    # Control characters (NUL, escape sequences) carry no meaning for the bot.
    return "".join(ch for ch in message if ch.isprintable() or ch in "\n\t").strip()


def safe_metadata(metadata: Optional[Dict[str, Any]], channel: str) -> Dict[str, Any]:
    """What of a client's metadata goes to Rasa: a shared position, and the channel,
    which is the gateway's word. Anything else would be stored in the tracker and sent
    to the action server on every later turn (a client can send a megabyte)."""
    kept: Dict[str, Any] = {"comptoir_channel": channel}
    place = place_from_metadata(metadata)  # what the actions will read of it, checked alike
    if place is not None:
        kept["location"] = {"latitude": place.latitude, "longitude": place.longitude}
    return kept


def _say(sender: str, text: str) -> List[Dict[str, Any]]:
    return [{"recipient_id": sender, "text": text}]


Answer = Callable[[List[Dict[str, Any]]], Awaitable[Any]]


async def converse(app: web.Application, sender: str, message: str,
                   metadata: Optional[Dict[str, Any]] = None, channel: str = "web",
                   answer: Optional[Answer] = None) -> List[Dict[str, Any]]:
    """One customer turn through Rasa, with a polite answer for every failure.

    Channels (REST, Telegram, web widget) all call this, so they behave alike: one
    turn at a time per conversation, in arrival order, and one flood limit. A channel
    that sends the replies itself passes `answer`, called while the conversation is
    still held, so that two quick messages are also answered in order. The channel is
    the gateway's word, never the client's: it overrides any metadata.
    """
    started = time.monotonic()
    message = _clean_message(message)
    metadata = safe_metadata(metadata, channel)
    if not message:
        return await _answered(answer, _say(sender, REPLY_EMPTY))
    if len(message) > MAX_MESSAGE_CHARS:
        return await _answered(answer, _say(sender, REPLY_TOO_LONG))
    # A flood is slowed down to what a person types and, past a point, answered at once
    # (the wait is taken on arrival, so later messages wait longer and keep their order).
    # One limit across gateways (a flood spread over them is slowed down all the same),
    # asked in arrival order: with several gateways it is a call to Redis, and calls in
    # flight could overtake one another.
    async with app[CONVERSATIONS].hold(("arrival", sender)):
        wait = await app[SHARED].wait(f"flood:{channel}:{sender}", FLOOD_RATE, FLOOD_BURST)
    if wait > MAX_FLOOD_WAIT:
        logger.info("turn sender=%s refused: too many messages", sender_ref(sender))
        return await _answered(answer, _say(sender, REPLY_FLOOD))
    if wait > 0:
        await asyncio.sleep(wait)
    # One turn at a time per conversation, in arrival order, whatever the channel does.
    async with app[CONVERSATIONS].hold(sender):
        return await _answered(answer, await _turn(app, sender, message, metadata, channel,
                                                   started))


async def _answered(answer: Optional[Answer], replies: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    if answer is not None:
        await answer(replies)
    return replies


async def _turn(app: web.Application, sender: str, message: str, metadata: Dict[str, Any],
                channel: str, started: float) -> List[Dict[str, Any]]:
    rasa = app[RASA]
    score = satisfaction.score_of(message)
    if score is not None:
        return await _rated(app, sender, score)
    ticket_id, pending = await _turn_start(app, channel, sender, message)
    # Queued messages (alerts, an agent's reply that could not be pushed) come after the
    # answer: the REST channel cannot push, so they ride along with it.
    queued = [{"recipient_id": sender, **queued_message} for queued_message in pending]
    if ticket_id is not None:
        # A person has the conversation: the bot stays quiet, Rasa (paused) still records it.
        try:
            await rasa.send(sender, message, metadata)
        except RasaUnavailable:
            logger.warning("rasa unavailable while handed over: message kept in the ticket")
        await app[CONSOLE].customer_message(ticket_id, message)
        logger.info("turn sender=%s handed over to ticket=%d", sender_ref(sender), ticket_id)
        return queued
    try:
        raw_replies = await rasa.send(sender, message, metadata)
    except RasaUnavailable as error:
        logger.warning("rasa unavailable for sender=%s: %s", sender_ref(sender), error)
        return _say(sender, REPLY_RASA_DOWN) + queued
    replies = []
    for item in raw_replies:
        if not isinstance(item, dict):
            continue
        custom = item.get("custom")
        if isinstance(custom, dict) and "comptoir_erase_conversations" in custom:
            # Erasure: Rasa has saved this turn; now its conversations leave the tracker store.
            await _erase_conversations(app, list(custom["comptoir_erase_conversations"]) + [sender])
            continue
        kept = {key: item[key] for key in REPLY_FIELDS if key in item}
        if set(kept) == {"attachment"} and replies and "attachment" not in replies[-1]:
            # Rasa sends a message's card apart from its text: they go out as one again.
            replies[-1]["attachment"] = kept["attachment"]
        elif kept:
            replies.append({"recipient_id": sender, **kept})
    if not replies:
        # Rasa swallows action-server failures and answers nothing: never leave silence.
        replies = _say(sender, REPLY_NOTHING if await rasa.action_server_up() else REPLY_ACTIONS_DOWN)
    replies += queued
    logger.info("turn sender=%s replies=%d ms=%.0f", sender_ref(sender), len(replies),
                (time.monotonic() - started) * 1000)
    return replies


async def _rated(app: web.Application, sender: str, score: int) -> List[Dict[str, Any]]:
    """A tap on the satisfaction question: kept with the conversation's intent and channel."""
    secret = app[SETTINGS].identity_secret
    try:
        kept = await in_session(app[SESSIONS], lambda session: satisfaction.answer(
            session, secret, sender, score, utcnow()))
    except SQLAlchemyError as error:
        logger.warning("satisfaction answer not kept: %s", type(error).__name__)
        kept = True  # the customer is thanked all the same
    logger.info("turn sender=%s satisfaction=%s", sender_ref(sender), score if kept else "late")
    return _say(sender, satisfaction.THANKS[score] if kept else REPLY_RATED)


async def _turn_start(app: web.Application, channel: str, sender: str,
                      message: str) -> Tuple[Optional[int], List[Dict[str, Any]]]:
    """One database visit per turn: the open ticket of this conversation (the customer's
    message is added to it) and the outbox messages waiting for this chat (taken once)."""
    def start(session) -> Tuple[Optional[int], List[Dict[str, Any]]]:
        ticket = tickets.active_ticket(session, channel, sender)
        if ticket is not None:
            tickets.add_message(session, ticket.id, "customer", message)
        return (ticket.id if ticket else None), take_pending(session, channel, sender)

    try:
        return await in_session(app[SESSIONS], start)
    except SQLAlchemyError as error:
        logger.warning("handover check and outbox skipped: %s", type(error).__name__)
        return None, []


async def _erase_conversations(app: web.Application, senders: List[str]) -> None:
    def erase() -> int:
        engine = make_engine(app[SETTINGS].tracker_store_url)
        try:
            return erase_conversations(engine, senders)
        finally:
            engine.dispose()

    try:
        removed = await asyncio.to_thread(erase)
        logger.info("erasure: %d tracker events removed", removed)
    except SQLAlchemyError as error:
        logger.error("erasure: tracker store not cleaned: %s", type(error).__name__)
