"""Web chat: a socket.io endpoint speaking Rasa's `socketio` channel protocol.

Events as in Rasa (`session_request` -> `session_confirm`, `user_uttered` ->
`bot_uttered`), so rasa-webchat and Rasa's chat widget connect unchanged; plus
`history_request` -> `history` for Comptoir's own widget, rebuilt from the Rasa
tracker so a reload or a dropped connection loses nothing.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import weakref
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional

import socketio
from aiohttp import web

from bot.core.replies import card_of
from bot.core.settings import Settings
from bot.core.shared import Shared

logger = logging.getLogger("comptoir.webchat")
STATIC = Path(__file__).parent / "static"
SESSION_RE = re.compile(r"^(?:[0-9a-f]{32}|[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}|[A-Za-z0-9_-]{32,64})$")
MAX_EVENT_BYTES = 64 * 1024

Converse = Callable[..., Awaitable[List[Dict[str, Any]]]]
History = Callable[[str], Awaitable[List[Dict[str, Any]]]]


CLOSE_WAIT_SECONDS = 2.0  # on shutdown, for the widgets to receive their close packet
# A gateway says every PRESENCE_SECONDS which web chats it holds open; a gateway gone
# without a word is forgotten PRESENCE_TTL seconds later (its widgets reconnect elsewhere).
PRESENCE_SECONDS, PRESENCE_TTL = 20.0, 60.0


def valid_session_id(value: Any) -> Optional[str]:
    """A session id is a long random value: anything else is replaced by a new one."""
    return value if isinstance(value, str) and SESSION_RE.match(value) else None


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def to_socketio(reply: Dict[str, Any]) -> List[Dict[str, Any]]:
    """A REST-style reply as Rasa's SocketIOOutput would emit it."""
    out: List[Dict[str, Any]] = []
    if card_of(reply):
        # A product card holds the answer and its buttons: the widgets show it alone.
        return [{"attachment": reply["attachment"]}]
    if reply.get("image"):
        out.append({"attachment": {"type": "image", "payload": {"src": reply["image"]}}})
    text = (reply.get("text") or "").strip()
    if text and reply.get("buttons"):
        out.append({"text": text, "quick_replies": [
            {"content_type": "text", "title": b["title"], "payload": b["payload"]}
            for b in reply["buttons"]]})
    elif text:
        out.append({"text": text})
    if reply.get("custom"):
        out.append(reply["custom"])
    return out


def _group(session_id: str) -> str:
    return f"web:{session_id}"


def _safe_metadata(data: Dict[str, Any]) -> Dict[str, Any]:
    """From the browser only a shared location is taken; the channel is ours to say."""
    custom = data.get("customData")
    if isinstance(custom, dict) and isinstance(custom.get("location"), dict):
        return {"location": custom["location"]}
    return {}


class WebChat:
    """Widgets' sockets on this gateway. With several gateways (REDIS_URL), a message for
    a web chat reaches its socket whichever gateway holds it (python-socketio's Redis
    manager), and `shared` knows whether any gateway does."""

    def __init__(self, settings: Settings, shared: Shared, converse: Converse, history: History,
                 accept_token: Optional[Callable[[str, str], Awaitable[bool]]] = None,
                 alive: Optional[Callable[[str], Awaitable[bool]]] = None) -> None:
        self.converse = converse
        self.history = history
        self.accept_token = accept_token
        self.alive = alive  # may this session id go on? (it expires after a long silence)
        self.shared = shared
        manager = socketio.AsyncRedisManager(
            settings.redis_url, channel=settings.shared_prefix + "webchat") \
            if settings.redis_url else None
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp", cors_allowed_origins=list(settings.webchat_origins),
            client_manager=manager, max_http_buffer_size=MAX_EVENT_BYTES, logger=False,
            engineio_logger=False)
        self.connected: Dict[str, int] = {}  # session id -> this gateway's open sockets
        self.sio.on("session_request", self.on_session_request)
        self.sio.on("user_uttered", self.on_user_uttered)
        self.sio.on("history_request", self.on_history_request)
        self.sio.on("disconnect", self.on_disconnect)
        self._pings: "weakref.WeakSet[asyncio.Task]" = weakref.WeakSet()
        start_task = self.sio.eio.start_background_task

        def start_tracked(target: Callable, *args: Any, **kwargs: Any) -> asyncio.Task:
            task = start_task(target, *args, **kwargs)
            if getattr(target, "__name__", "") == "_send_ping":  # sleeps a ping interval
                self._pings.add(task)
            return task

        self.sio.eio.start_background_task = start_tracked

    def attach(self, app: web.Application) -> None:
        self.sio.attach(app, socketio_path="socket.io")
        app.cleanup_ctx.append(self._presence)
        app.on_shutdown.append(self._shutdown)
        app.router.add_get("/webchat/widget.js", self.widget)
        app.router.add_get("/", self.demo_page)
        app.router.add_get("/favicon.ico", self.no_icon)

    async def _shutdown(self, _app: web.Application) -> None:
        """Close the widgets' sockets and stop Socket.IO's background task: it runs until
        told to, and aiohttp waits for it on the way out."""
        # Engine.IO's disconnect-all waits until every client has fetched its close packet;
        # a polling client gone without a word never does, and the gateway would hang.
        closing = [asyncio.create_task(socket.close(reason=self.sio.eio.reason.SERVER_DISCONNECT))
                   for socket in list(self.sio.eio.sockets.values())]
        if closing:
            _done, late = await asyncio.wait(closing, timeout=CLOSE_WAIT_SECONDS)
            for task in late:
                task.cancel()
            self.sio.eio.sockets = {}
        await self.sio.shutdown()
        listener = getattr(self.sio.manager, "thread", None)  # the Redis manager's, if any
        if listener is not None:
            listener.cancel()
        for ping in list(self._pings):  # a closed socket's next ping, 25 s away
            ping.cancel()

    async def _presence(self, _app: web.Application):
        """Say now and then which web chats this gateway holds open."""
        async def renew() -> None:
            while True:
                await asyncio.sleep(PRESENCE_SECONDS)
                for session_id in list(self.connected):
                    await self.shared.join(_group(session_id), PRESENCE_TTL)

        task = asyncio.create_task(renew())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for session_id in list(self.connected):
            await self.shared.leave(_group(session_id))

    async def no_icon(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def widget(self, request: web.Request) -> web.Response:
        return web.FileResponse(STATIC / "widget.js", headers={
            "Content-Type": "application/javascript; charset=utf-8", "Cache-Control": "no-cache"})

    async def demo_page(self, request: web.Request) -> web.Response:
        return web.FileResponse(STATIC / "demo.html", headers={
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": "default-src 'self'; img-src 'self' https: data:; "
                                       "style-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:"})

    async def on_session_request(self, sid: str, data: Any = None) -> None:
        current = await self._session_id(sid)
        if current is not None:
            # One session per socket: switching ids on an open socket would step past the
            # per-conversation limits and count this socket in many sessions.
            await self.sio.emit("session_confirm", current, to=sid)
            return
        wanted = valid_session_id((data or {}).get("session_id") if isinstance(data, dict) else None)
        if wanted is not None and self.alive is not None and not await self.alive(wanted):
            wanted = None  # expired: this browser starts a new conversation
        session_id = wanted or new_session_id()
        await self.sio.save_session(sid, {"session_id": session_id})
        await self.sio.enter_room(sid, session_id)
        self.connected[session_id] = self.connected.get(session_id, 0) + 1
        if self.connected[session_id] == 1:
            await self.shared.join(_group(session_id), PRESENCE_TTL)
        await self.sio.emit("session_confirm", session_id, to=sid)

    async def on_disconnect(self, sid: str) -> None:
        try:
            session_id = (await self.sio.get_session(sid)).get("session_id")
        except KeyError:
            return
        if session_id and self.connected.get(session_id, 0) > 1:
            self.connected[session_id] -= 1
        elif session_id in self.connected:
            del self.connected[session_id]
            await self.shared.leave(_group(session_id))

    async def _session_id(self, sid: str) -> Optional[str]:
        try:
            return (await self.sio.get_session(sid)).get("session_id")
        except KeyError:
            return None

    async def on_user_uttered(self, sid: str, data: Any = None) -> None:
        session_id = await self._session_id(sid)
        if session_id is None or not isinstance(data, dict):
            return  # Rasa's protocol: a session first
        message = data.get("message")
        if not isinstance(message, str):
            message = ""
        custom = data.get("customData")
        token = custom.get("customer_token") if isinstance(custom, dict) else None
        if token and self.accept_token is not None:
            # A customer signed in on the retailer's site: the chat is verified at once.
            # A forged, expired or replayed token is simply not accepted.
            await self.accept_token(session_id, str(token))
        async def emit(replies: List[Dict[str, Any]]) -> None:
            for reply in replies:
                for event in to_socketio(reply):
                    await self.sio.emit("bot_uttered", event, room=session_id)

        # The gateway keeps a session's turns in order and slows a flood down.
        await self.converse(session_id, message, _safe_metadata(data), "web", answer=emit)

    async def on_history_request(self, sid: str, data: Any = None) -> None:
        session_id = await self._session_id(sid)
        if session_id is None:
            return
        await self.sio.emit("history", await self.history(session_id), to=sid)

    async def push(self, session_id: str, message: Dict[str, Any]) -> bool:
        """Deliver an outbox message ({"text", "image"}) to an open session, on whichever
        gateway holds it; False if nobody is connected."""
        if not self.connected.get(session_id) and not await self.shared.anyone(_group(session_id)):
            return False
        for uttered in to_socketio(message):
            await self.sio.emit("bot_uttered", uttered, room=session_id)
        return True
