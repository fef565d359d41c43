"""The gateway: one aiohttp application in front of Rasa.

It owns the customer-facing endpoints (the REST channel, Telegram, the web chat), the
support console, the handover routing, stock updates, export downloads and the periodic
jobs, and turns every failure of the parts behind it into a polite French answer.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import time
from typing import Any, Dict, List, Optional, Tuple

import aiohttp
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from bot.assistant.client import RasaClient, RasaUnavailable
from bot.core import gcwatch
from bot.core.chats import find_identity, identity_for
from bot.core.db import in_session, make_engine, make_session_factory, ping
from bot.core.messaging import Messenger, send_queued_mail
from bot.core.models import ChatIdentity, Customer, OutboundMessage, Product
from bot.core.outbox import claim_for_channel, release, take_pending
from bot.core.ratelimit import KeyedLocks, RateLimiter
from bot.core.redact import export_links_masked, hidden_if_personal
from bot.core.settings import Settings
from bot.handover import tickets
from bot.offers.pushes import run_birthday_pushes
from bot.offers.rules import load_rules
from bot.ops.rasa_server import CONTINUED
from bot.ops.supervisor import STOP_GRACE_SECONDS
from bot.privacy.consent import stop_chat
from bot.privacy.requests import erase_conversations, export, export_zip, use_export_link
from bot.privacy.verification import accept_customer_token, verified_customer
from bot.stock.importer import StockUpdateError, apply_stock_updates
from bot.stock.reservations import expire_due
from bot.stores.geo import place_from_metadata
from integrations.console import Console
from integrations.till import Till
from integrations.webchat import WebChat

logger = logging.getLogger("comptoir.gateway")

SETTINGS = web.AppKey("settings", Settings)
RASA = web.AppKey("rasa", RasaClient)
ENGINE = web.AppKey("engine", Engine)
SESSIONS = web.AppKey("sessions", sessionmaker)
TELEGRAM = web.AppKey("telegram", object)
WEBCHAT = web.AppKey("webchat", object)
CONSOLE = web.AppKey("console", object)
TILL = web.AppKey("till", Till)
CONVERSATIONS = web.AppKey("conversations", KeyedLocks)
LIMITER = web.AppKey("limiter", RateLimiter)
HOLD_EXPIRY_INTERVAL = 60
BIRTHDAY_PUSH_INTERVAL = 300  # the job is idempotent: running it often only narrows delays
OUTBOX_INTERVAL = 2
MAIL_INTERVAL = 1  # one-time codes: the shopper is waiting for theirs
# Holds last 48 h and are cancelled from the same chat: a web session id outlives them.
WEB_SESSION_DAYS = 7

MAX_MESSAGE_CHARS = 2000
MAX_SENDER_CHARS = 128
MAX_BODY_BYTES = 1024 * 1024
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

REPLY_FIELDS = ("text", "buttons", "image", "custom", "attachment")


def sender_ref(sender: str) -> str:
    """A short stable reference for logs: never the raw channel identity."""
    return hashlib.sha256(sender.encode()).hexdigest()[:10]


def _clean_message(message: str) -> str:
    # Control characters (NUL, escape sequences) carry no meaning for the bot.
    return "".join(ch for ch in message if ch.isprintable() or ch in "\n\t").strip()


class BadRequest(web.HTTPBadRequest):
    def __init__(self, reason_fr: str) -> None:
        super().__init__(text=json.dumps({"error": reason_fr}), content_type="application/json")


async def _read_rest_body(request: web.Request) -> Dict[str, Any]:
    try:
        raw = await request.read()
        body = await asyncio.to_thread(_decode_json, raw) if len(raw) > 65536 else _decode_json(raw)
    except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
        raise BadRequest("Requête invalide : le corps doit être du JSON encodé en UTF-8.")
    if not isinstance(body, dict):
        raise BadRequest("Requête invalide : un objet JSON est attendu.")
    if "message" not in body:
        raise BadRequest("Requête invalide : le champ « message » est manquant.")
    sender, message = body.get("sender"), body["message"]
    if not isinstance(sender, str) or not sender.strip() or len(sender) > MAX_SENDER_CHARS \
            or not sender.isprintable():
        raise BadRequest("Requête invalide : « sender » doit être un identifiant texte "
                         f"de 1 à {MAX_SENDER_CHARS} caractères.")
    if ":" in sender:
        # "telegram:42" is a Telegram user's conversation, "effacé:7" an erased ticket: a
        # REST client must not be able to speak in, or erase, another channel's chat.
        raise BadRequest("Requête invalide : « sender » ne peut pas contenir « : », réservé "
                         "aux conversations des autres canaux.")
    if message is None:
        message = ""
    if not isinstance(message, str):
        raise BadRequest("Requête invalide : « message » doit être du texte.")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise BadRequest("Requête invalide : « metadata » doit être un objet JSON.")
    return {"sender": sender, "message": message, "metadata": metadata}


def _decode_json(raw: bytes) -> Any:
    return json.loads(raw.decode("utf-8"))


def _check_bearer(request: web.Request, token: Optional[str]) -> None:
    """401 unless the request carries `Bearer <token>`; no token configured refuses all."""
    supplied = request.headers.get("Authorization", "")
    if token is None or not hmac.compare_digest(supplied.encode(), f"Bearer {token}".encode()):
        raise web.HTTPUnauthorized(
            text=json.dumps({"error": "Jeton d'accès manquant ou invalide."}),
            content_type="application/json", headers={"WWW-Authenticate": "Bearer"})


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


async def converse(app: web.Application, sender: str, message: str,
                   metadata: Optional[Dict[str, Any]] = None,
                   channel: str = "web") -> List[Dict[str, Any]]:
    """One customer turn through Rasa, with a polite answer for every failure.

    Channels (REST, Telegram, web widget) all call this, so they behave alike. The
    channel is the gateway's word, never the client's: it overrides any metadata.
    """
    started = time.monotonic()
    message = _clean_message(message)
    metadata = safe_metadata(metadata, channel)
    if not message:
        return _say(sender, REPLY_EMPTY)
    if len(message) > MAX_MESSAGE_CHARS:
        return _say(sender, REPLY_TOO_LONG)
    # A flood is slowed down to what a person types and, past a point, answered at once
    # (the wait is taken on arrival, so later messages wait longer and keep their order).
    wait = app[LIMITER].wait(f"{channel}:{sender}")
    if wait > MAX_FLOOD_WAIT:
        logger.info("turn sender=%s refused: too many messages", sender_ref(sender))
        return _say(sender, REPLY_FLOOD)
    if wait > 0:
        await asyncio.sleep(wait)
    # One turn at a time per conversation, in arrival order, whatever the channel does.
    async with app[CONVERSATIONS].hold(sender):
        return await _turn(app, sender, message, metadata, channel, started)


async def _turn(app: web.Application, sender: str, message: str, metadata: Dict[str, Any],
                channel: str, started: float) -> List[Dict[str, Any]]:
    rasa = app[RASA]
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
        if kept:
            replies.append({"recipient_id": sender, **kept})
    if not replies:
        # Rasa swallows action-server failures and answers nothing: never leave silence.
        replies = _say(sender, REPLY_NOTHING if await rasa.action_server_up() else REPLY_ACTIONS_DOWN)
    replies += queued
    logger.info("turn sender=%s replies=%d ms=%.0f", sender_ref(sender), len(replies),
                (time.monotonic() - started) * 1000)
    return replies


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


async def deliver_to_customer(app: web.Application, channel: str, sender: str, text: str,
                              events: List[Dict[str, Any]]) -> None:
    """An agent's words (or the bot's, on hand-back) to the customer's own channel.

    Recorded in the Rasa conversation first, then pushed; a chat that cannot be reached
    right now gets it from the outbox (next push round, or with its next answer).
    """
    try:
        await app[RASA].append_events(sender, events)
    except RasaUnavailable as error:
        logger.warning("could not record the agent's reply in the tracker: %s", error)
    telegram = app.get(TELEGRAM)
    pushed = False
    if channel == "telegram" and telegram is not None:
        pushed = await telegram.push(sender, {"text": text})
    elif channel == "web":
        pushed = await app[WEBCHAT].push(sender, {"text": text})
    if not pushed:
        def queue(session) -> None:
            identity = identity_for(session, channel, sender)
            session.add(OutboundMessage(identity_id=identity.id, kind="agent", text=text))

        await in_session(app[SESSIONS], queue)


async def agent_reply(app: web.Application, channel: str, sender: str, text: str,
                      agent: str) -> None:
    await deliver_to_customer(app, channel, sender, text,
                              [{"event": "bot", "text": text, "metadata": {"agent": agent}}])


async def resume_bot(app: web.Application, channel: str, sender: str, text: str) -> None:
    # action_listen last: rules see a conversation waiting for the customer, as usual.
    await deliver_to_customer(app, channel, sender, text,
                              [{"event": "resume"}, {"event": "bot", "text": text},
                               {"event": "action", "name": "action_listen"}])


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
        known = dict(await in_session(app[SESSIONS], lambda session: session.execute(
            select(Product.sku, Product.name).where(Product.sku.in_(skus))).all()))
        extra = [{"product": f"{known.get(e['product'], '')} ({e['product']})".strip()}
                 if "product" in e else e for e in extra]
    return [dict(m) for m in shown] + extra


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


async def export_download(request: web.Request) -> web.Response:
    """GET /exports/{token}: a customer's data export, once, within 24 hours of asking."""
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    token = request.match_info["token"]
    customer_id = await in_session(request.app[SESSIONS],
                                   lambda session: use_export_link(session, token, now))
    if customer_id is None:
        return web.Response(status=410, content_type="text/plain", charset="utf-8",
                            text="Ce lien d'export n'est pas valide, a déjà servi ou a expiré. "
                                 "Redemandez-le au chat.")

    def senders(session) -> Optional[List[str]]:
        customer = session.get(Customer, customer_id)
        if customer is None or customer.erased_at is not None:
            return None
        return [i.external_id for i in session.execute(select(ChatIdentity).where(
            ChatIdentity.customer_id == customer_id)).scalars()]

    known = await in_session(request.app[SESSIONS], senders)
    if known is None:
        return web.Response(status=410, content_type="text/plain", charset="utf-8",
                            text="Ces données ont été supprimées.")
    conversations = {}
    for sender in known:
        conversations[sender] = await history(request.app, sender)

    body = await in_session(request.app[SESSIONS],
                            lambda session: export_zip(export(session, customer_id, conversations)))
    return web.Response(body=body, content_type="application/zip", headers={
        "Content-Disposition": 'attachment; filename="mes-donnees-comptoir.zip"',
        "Cache-Control": "no-store"})


async def rest_webhook(request: web.Request) -> web.Response:
    """Same JSON in and out as Rasa's REST channel, so any Rasa REST client works."""
    token = request.app[SETTINGS].gateway_rest_token
    if token is not None:  # open on loopback; settings demand a token beyond it
        _check_bearer(request, token)
    if request.content_type != "application/json":
        # A web page open in a browser on this machine could post a "simple" form or
        # text/plain request to a loopback gateway; JSON makes the browser ask first.
        raise web.HTTPUnsupportedMediaType(
            text=json.dumps({"error": "Requête invalide : envoyez du JSON "
                                      "(Content-Type: application/json)."}),
            content_type="application/json")
    body = await _read_rest_body(request)
    replies = await converse(request.app, body["sender"], body["message"], body["metadata"])
    return web.json_response(replies)


async def _check(name: str, probe) -> Dict[str, Any]:
    started = time.monotonic()
    try:
        detail = await asyncio.wait_for(probe(), timeout=3)
        state = {"status": "up" if detail is not False else "down"}
        if isinstance(detail, dict):
            state.update(detail)
    except Exception as error:  # a health probe reports, it never raises
        state = {"status": "down", "error": type(error).__name__}
    state["ms"] = round((time.monotonic() - started) * 1000, 1)
    return state


async def health(request: web.Request) -> web.Response:
    app = request.app
    rasa = app[RASA]

    async def rasa_probe():
        status = await rasa.status()
        return {"model": str(status.get("model_file", "")).rsplit("/", 1)[-1],
                "replicas_up": status["replicas_up"]}

    async def database_probe():
        await asyncio.to_thread(ping, app[ENGINE])
        return True

    names = ("rasa", "action_server", "database")
    results = await asyncio.gather(
        _check("rasa", rasa_probe), _check("action_server", rasa.action_server_up),
        _check("database", database_probe))
    components = dict(zip(names, results))
    all_up = all(c["status"] == "up" for c in components.values())
    return web.json_response({"status": "ok" if all_up else "degraded", "components": components},
                             status=200 if all_up else 503)


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
                          "buttons": buttons, "image": data.get("image")})
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


async def web_session_alive(app: web.Application, session_id: str) -> bool:
    """May a browser go on with this session id? Not after WEB_SESSION_DAYS without a
    message: the widget keeps its id in the shop site's storage, for anyone at that
    browser later."""
    def alive(session) -> bool:
        identity = find_identity(session, "web", session_id)
        if identity is None or identity.last_seen_at is None:
            return True  # a new id the widget made up: a new conversation
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        return now - identity.last_seen_at <= dt.timedelta(days=WEB_SESSION_DAYS)

    try:
        return await in_session(app[SESSIONS], alive)
    except SQLAlchemyError:
        return True


async def stop_chat_consents(app: web.Application, channel: str, external_id: str) -> None:
    await in_session(app[SESSIONS], lambda session: stop_chat(session, channel, external_id))


@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        # The route, not the path: a path can hold a token (/exports/<token>).
        route = request.match_info.route.resource.canonical if request.match_info.route.resource \
            else "?"
        logger.exception("unhandled error on %s %s", request.method, route)
        return web.json_response(
            {"error": "Une erreur inattendue s'est produite. Réessayez dans un instant."},
            status=500)


def _resources(settings: Settings):
    async def context(app: web.Application):
        session = aiohttp.ClientSession()
        engine = make_engine(settings.database_url, settings.db_busy_timeout)
        app[RASA] = RasaClient(session, settings.rasa_urls, settings.rasa_token,
                               settings.action_server_url)
        app[ENGINE] = engine
        app[SESSIONS] = make_session_factory(engine)
        yield
        await session.close()
        engine.dispose()

    return context


def _channels(settings: Settings):
    """Telegram (when a token is set) and the web chat, both through `converse`."""
    async def context(app: web.Application):
        async def channel_converse(sender, message, metadata, channel):
            return await converse(app, sender, message, metadata, channel)

        telegram = None
        if settings.telegram_token:
            from integrations.telegram import TelegramChannel

            telegram = TelegramChannel(
                settings, channel_converse,
                lambda sender: stop_chat_consents(app, "telegram", sender),
                local_image=app[TILL].local_image)
            app[TELEGRAM] = telegram
            try:
                await telegram.start()
            except Exception as error:  # Telegram unreachable: the rest of the shop still runs
                logger.error("telegram channel not started: %s", type(error).__name__)
                telegram = None
        pusher = asyncio.create_task(_push_outbox(app, telegram))
        yield
        pusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pusher
        if telegram is not None:
            await telegram.stop()

    return context


async def _push_outbox(app: web.Application, telegram) -> None:
    """Deliver queued messages (alerts...) to chats that can receive a push."""
    webchat = app[WEBCHAT]
    while True:
        await asyncio.sleep(OUTBOX_INTERVAL)
        for channel, channel_push in (("telegram", telegram.push if telegram else None),
                                      ("web", webchat.push)):
            if channel_push is None:
                continue
            try:
                claimed = await in_session(app[SESSIONS],
                                           lambda session: claim_for_channel(session, channel))
                for message_id, external_id, message in claimed:
                    if not await channel_push(external_id, message):
                        await in_session(app[SESSIONS],
                                         lambda session: release(session, message_id))
            except SQLAlchemyError as error:
                logger.warning("outbox push skipped: %s", type(error).__name__)


async def telegram_webhook(request: web.Request) -> web.Response:
    channel = request.app.get(TELEGRAM)
    if channel is None:
        raise web.HTTPNotFound()
    return await channel.webhook(request)


async def _every(seconds: float, name: str, job) -> None:
    """Run a blocking job on a worker thread every `seconds`; a database that is down
    only skips a round."""
    while True:
        try:
            await asyncio.to_thread(job)
        except SQLAlchemyError as error:
            logger.warning("%s skipped: %s", name, type(error).__name__)
        await asyncio.sleep(seconds)


async def _scheduler(app: web.Application):
    """Periodic jobs: holds past their time go back to stock; birthday offers go out on
    the day, within quiet hours, at most once a year (safe across restarts and replicas)."""
    settings = app[SETTINGS]
    messenger = Messenger(settings.outbox_dir, settings.smtp_url, settings.mail_from)

    def expire_holds() -> None:
        expired = expire_due(app[SESSIONS], dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
        if expired:
            logger.info("expired %d holds", expired)

    def birthday_pushes() -> None:
        queued, sent = run_birthday_pushes(app[SESSIONS], load_rules(settings.offer_rules_file),
                                           dt.datetime.now(dt.timezone.utc), settings.identity_secret,
                                           settings.public_url, messenger)
        if queued or sent:
            logger.info("birthday pushes: %d queued, %d emails/SMS sent", queued, sent)

    def send_mail() -> None:
        send_queued_mail(app[SESSIONS], messenger)

    tasks = [asyncio.create_task(_every(MAIL_INTERVAL, "mail outbox", send_mail)),
             asyncio.create_task(_every(HOLD_EXPIRY_INTERVAL, "hold expiry", expire_holds)),
             asyncio.create_task(_every(BIRTHDAY_PUSH_INTERVAL, "birthday pushes", birthday_pushes))]
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def stock_update(request: web.Request) -> web.Response:
    """POST /api/stock: set on-hand quantities (a till, a warehouse system).

    Body: {"updates": [{"sku" or "ean": ..., "store": "LYS-PDI", "quantity": 4}, ...]}.
    Needs STOCK_API_TOKEN as a bearer token; answers how many alerts were queued.
    """
    _check_bearer(request, request.app[SETTINGS].stock_api_token)
    try:
        body = await request.json()
        updates = body["updates"]
        assert isinstance(updates, list) and len(updates) <= 10000
    except Exception:
        raise BadRequest("Requête invalide : {\"updates\": [{\"sku\", \"store\", \"quantity\"}]} attendu.")
    try:
        result = await asyncio.to_thread(apply_stock_updates, request.app[SESSIONS], updates)
    except StockUpdateError as error:
        raise BadRequest(f"Requête invalide : {error}")
    return web.json_response(result)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/health", health)
    app.router.add_post("/webhooks/rest/webhook", rest_webhook)
    app.router.add_post("/api/stock", stock_update)
    app.router.add_get("/exports/{token}", export_download)


def init_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app[CONVERSATIONS] = KeyedLocks()
    app[LIMITER] = RateLimiter(rate=FLOOD_RATE, burst=FLOOD_BURST)
    app.cleanup_ctx.append(_resources(settings))
    app.cleanup_ctx.append(_scheduler)
    app.cleanup_ctx.append(_channels(settings))
    setup_routes(app)
    if settings.telegram_webhook_url:
        app.router.add_post("/webhooks/telegram", telegram_webhook)

    async def channel_converse(sender, message, metadata, channel):
        return await converse(app, sender, message, metadata, channel)

    async def accept_token(session_id: str, token: str) -> bool:
        def accept(session) -> bool:
            now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
            identity = identity_for(session, "web", session_id)
            return accept_customer_token(session, settings.customer_token_secret, token,
                                         identity, now) is not None

        return await in_session(app[SESSIONS], accept)

    webchat = WebChat(settings, channel_converse, lambda sender: replay(app, sender), accept_token,
                      lambda session_id: web_session_alive(app, session_id))
    webchat.attach(app)
    app[WEBCHAT] = webchat
    console = Console(lambda: app[SESSIONS],
                      lambda channel, sender, text, agent: agent_reply(app, channel, sender, text, agent),
                      lambda channel, sender, text: resume_bot(app, channel, sender, text),
                      lambda sender: ticket_context(app, sender),
                      secure_cookies=settings.behind_tls or not settings.gateway_is_loopback,
                      public_origin=settings.public_url,
                      trusted_proxies=settings.trusted_proxies)
    console.routes(app)
    app[CONSOLE] = console
    till = Till(settings, lambda: app[SESSIONS])
    till.routes(app)
    app[TILL] = till
    return app


async def _freeze_started_objects(_app: web.Application) -> None:
    gcwatch.freeze_and_watch("gateway")


def run_gateway(settings: Settings) -> None:
    # Turns in progress get a few seconds to finish on the way out (aiohttp's default, 60 s,
    # is past the supervisor's grace period: the gateway would be killed before its
    # cleanup, Telegram's included, had run).
    app = init_app(settings)
    app.on_startup.append(_freeze_started_objects)
    web.run_app(app, host=settings.gateway_host, port=settings.gateway_port,
                shutdown_timeout=STOP_GRACE_SECONDS / 4,
                access_log=None, print=lambda *_: logger.info(
                    "gateway listening on %s", settings.gateway_url))
