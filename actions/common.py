"""What every action shares: the shop database (reached lazily and off the event loop),
the catalog index, and the translation between trackers and `bot` services."""
from __future__ import annotations

import abc
import datetime as dt
import logging
import threading
import time
from functools import lru_cache
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.core import gcwatch
from bot.core.db import in_session, make_engine, make_session_factory
from bot.core.models import utcnow
from bot.core.replies import Note, Pending, Reply
from bot.core.settings import load_settings
from bot.customers.verification import Verifier
from bot.offers.desk import OffersDesk
from bot.offers.rules import load_rules
from bot.privacy.desk import PrivacyDesk
from bot.privacy.proof import PrivacyAsk
from bot.review import capture
from bot.stock.catalog import CatalogIndex, catalog_signature
from bot.stock.resolve import CONTEXT_SLOTS, StockAsk

logger = logging.getLogger(__name__)
T = TypeVar("T")
CATALOG_TTL_SECONDS = 300
CATALOG_CHECK_SECONDS = 2.0
CHANNELS = ("web", "telegram")
ENTITY_FIELDS = ("product", "size", "colour", "city", "postcode", "quantity", "code",
                 "alert_channel")


class ShopUnavailable(RuntimeError):
    """The shop database could not answer; the action apologises to the customer."""


@lru_cache(maxsize=1)
def settings():
    return load_settings()


@lru_cache(maxsize=1)
def session_factory() -> sessionmaker:
    return make_session_factory(make_engine(settings().database_url, settings().db_busy_timeout))


async def in_shop(work: Callable[[Session], T]) -> T:
    """Run `work(session)` in a short transaction on a worker thread."""

    try:
        return await in_session(session_factory(), work)
    except SQLAlchemyError as error:
        logger.error("shop database unavailable: %s", type(error).__name__)
        raise ShopUnavailable() from error


class _CatalogCache:
    """The catalog index, rebuilt when products are added, withdrawn or get variants
    (checked at most every few seconds), and every few minutes in any case (renames)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._index: Optional[CatalogIndex] = None
        self._signature: Tuple[object, ...] = ()
        self._loaded_at = self._checked_at = 0.0

    def get(self, session: Session) -> CatalogIndex:
        with self._lock:
            now = time.monotonic()
            stale = self._index is None or now - self._loaded_at > CATALOG_TTL_SECONDS
            if stale or now - self._checked_at > CATALOG_CHECK_SECONDS:
                self._checked_at = now
                signature = catalog_signature(session)
                stale = stale or signature != self._signature
            if stale:
                self._signature = signature
                self._index = CatalogIndex.load(session)
                self._loaded_at = self._checked_at = now
                gcwatch.keep_loaded()  # tens of thousands of objects, walked by no collection
            return self._index

    def clear(self) -> None:
        with self._lock:
            self._index = None


catalog = _CatalogCache()


def warm_up() -> None:
    """Load what every turn needs (settings, the shop's connections, the catalog) before
    the server's start-up is frozen; a shop database that is not there yet is loaded on
    the first turn instead."""
    try:
        with session_factory()() as session:
            catalog.get(session)
    except SQLAlchemyError as error:
        logger.warning("catalog not loaded at start-up: %s", type(error).__name__)


def reset_caches() -> None:
    """Forget settings, engine and catalog (tests switch databases between cases)."""
    settings.cache_clear()
    session_factory.cache_clear()
    catalog.clear()


def latest_metadata(tracker: Tracker) -> Dict[str, Any]:
    metadata = tracker.latest_message.get("metadata")
    if isinstance(metadata, dict):
        return metadata
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return event.get("metadata") or {}
    return {}


def chat_channel(tracker: Tracker) -> str:
    """The conversation's channel, as the gateway stamped it on the message ("web" for a
    conversation that reached Rasa otherwise, as tests do)."""
    channel = latest_metadata(tracker).get("comptoir_channel")
    return channel if channel in CHANNELS else "web"


def user_intent(event: Dict[str, Any]) -> Optional[str]:
    """The intent Rasa gave a `user` event of the tracker."""
    return ((event.get("parse_data") or {}).get("intent") or {}).get("name")


def clarified_text(tracker: Tracker) -> Optional[str]:
    """After a clarifying question, the chosen button ("/check_stock{...}") stands for the
    message it clarified: that message's words, which may still name a product, a field
    or a channel. None for any other turn."""
    if not (tracker.latest_message.get("text") or "").startswith("/"):
        return None
    turns = [e for e in tracker.events if e.get("event") == "user"]
    if len(turns) >= 2 and user_intent(turns[-2]) == "nlu_fallback":
        clarified = turns[-2].get("text") or ""
        return None if clarified.startswith("/") else clarified
    return None


def shopper_text(tracker: Tracker) -> str:
    """The words the shopper wrote for this turn; a button's payload names no product."""
    text = tracker.latest_message.get("text") or ""
    return (clarified_text(tracker) or "") if text.startswith("/") else text


def stock_ask(tracker: Tracker) -> StockAsk:
    metadata = latest_metadata(tracker)
    entities = {}
    for name in ENTITY_FIELDS:
        # DIET may cut "hoka speedgoat 6" in pieces: keep every piece, in order.
        values = [str(v) for v in tracker.get_latest_entity_values(name) if v is not None]
        entities[name] = (" ".join(dict.fromkeys(values)) if name == "product" else values[0]) \
            if values else None
    return StockAsk(
        text=shopper_text(tracker),
        channel=chat_channel(tracker),
        sender=tracker.sender_id, metadata=metadata,
        context={name: tracker.get_slot(name) for name in CONTEXT_SLOTS}, **entities)


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def slot_changes(tracker: Tracker, slots: Dict[str, Any]) -> List[Dict[str, Any]]:
    """`SlotSet` events for the slots whose value changes, none for a value a slot already
    has: every event stays in the conversation, and Rasa reads them all on each turn."""
    return [SlotSet(name, value) for name, value in slots.items() if tracker.get_slot(name) != value]


def dispatch(reply: Reply, dispatcher: CollectingDispatcher, tracker: Tracker) -> List[Dict[str, Any]]:
    for message in reply.messages:
        if "custom" in message:
            dispatcher.utter_message(json_message=message["custom"])
        else:
            dispatcher.utter_message(text=message["text"] or None, buttons=message["buttons"] or None,
                                     image=message.get("image"), attachment=message.get("attachment"))
    return slot_changes(tracker, reply.slots)


class DeskAction(Action, metaclass=abc.ABCMeta):
    """An action that asks a `bot` desk for its reply; the database down gets an apology."""

    @abc.abstractmethod
    def name(self) -> str:
        ...

    @abc.abstractmethod
    async def reply(self, tracker: Tracker) -> Reply:
        ...

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[str, Any]) -> List[Dict[str, Any]]:
        try:
            reply = await self.reply(tracker)
        except ShopUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return []
        await note_turn(tracker, notes=reply.notes)
        return dispatch(reply, dispatcher, tracker)


async def note_turn(tracker: Tracker, reason: Optional[str] = None,
                    notes: Sequence[Note] = ()) -> None:
    """What this turn tells the retailer (a message to review, demand signals), kept
    masked and with no one's identity; the shopper's answer never waits on a failure."""
    latest = tracker.latest_message
    intent = latest.get("intent") or {}
    confidence = intent.get("confidence")
    turn = capture.Turn(text=latest.get("text") or "", channel=chat_channel(tracker),
                        sender=tracker.sender_id, intent=intent.get("name"),
                        confidence=float(confidence) if confidence is not None else None,
                        store_code=tracker.get_slot("stock_store"))
    if reason is None and not notes and not capture.worth_a_look(turn):
        return
    try:
        await in_shop(lambda session: capture.note_turn(session, turn, reason, notes,
                                                        settings().identity_secret, utcnow()))
    except ShopUnavailable:
        logger.warning("review capture skipped: shop database unavailable")


def privacy_ask(tracker: Tracker) -> PrivacyAsk:
    return PrivacyAsk(text=clarified_text(tracker) or tracker.latest_message.get("text") or "",
                      channel=chat_channel(tracker),
                      sender=tracker.sender_id, pending=Pending.read(tracker.get_slot("pending")),
                      confirm=next(tracker.get_latest_entity_values("confirm"), None),
                      public_url=settings().public_url)


def personal_desks(session: Session) -> Tuple[PrivacyDesk, OffersDesk]:
    """The privacy desk and the offers desk beside it, for one turn: a good code may go on
    with an act of either (Pending("contact", "birthday") after a proof)."""
    config = settings()
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    privacy = PrivacyDesk(session, Verifier(config.identity_secret), now, config.identity_secret)
    return privacy, OffersDesk(privacy, load_rules(config.offer_rules_file))
