"""Support console: staff log in, see the queue, claim a ticket, read the transcript and
a summary, reply live over a WebSocket, leave notes, hand back or close.

Cookies are HttpOnly and SameSite=Strict; every state-changing call carries the
session's CSRF token (header or WebSocket message); five wrong passwords lock an
account for fifteen minutes. Tickets, messages and notes live in the shop database,
so a gateway restart loses none of them. With several gateways, what one gateway says
to agents (a customer's words, the queue moving, a logout) goes to every gateway through
`Shared` events, and each tells the agents connected to it.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import weakref
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

from aiohttp import WSCloseCode, WSMsgType, web

from bot.core.db import in_session
from bot.core.models import utcnow
from bot.core.redact import mask
from bot.core.shared import Shared
from bot.core.signing import same
from bot.handover import agents, tickets
from bot.privacy import requests as privacy

logger = logging.getLogger("comptoir.console")
STATIC = Path(__file__).parent / "static"
COOKIE = "comptoir_console"
LOGIN_CSRF_COOKIE = "comptoir_login_csrf"
MAX_TEXT = 2000

Deliver = Callable[[str, str, str, str], Awaitable[None]]  # channel, sender, text, agent
Resume = Callable[[str, str, str, bool], Awaitable[None]]  # channel, sender, text, closed
Transcript = Callable[[str], Awaitable[List[Dict[str, Any]]]]


TOPIC = "console"  # the gateways' events for agents' live sockets


def _token_ref(token: str) -> str:
    """A login session named between gateways without its cookie's value."""
    return hashlib.sha256(token.encode()).hexdigest()


class Console:
    def __init__(self, sessions: Callable[[], Any], deliver: Deliver, resume: Resume,
                 transcript: Transcript, shared: Shared, secure_cookies: bool = False,
                 public_origin: Optional[str] = None, trusted_proxies: Tuple[str, ...] = ()) -> None:
        self.sessions = sessions  # the shop's sessionmaker, known once the app has started
        self.shared = shared
        shared.subscribe(TOPIC, self._on_event)
        self.deliver = deliver
        self.resume = resume
        self.transcript = transcript
        self.secure = secure_cookies
        # Behind a TLS-terminating proxy the request says http://internal-host: the
        # browser's Origin is the public address.
        self.public_origin = public_origin
        self.trusted_proxies = trusted_proxies
        # Each live socket with the agent and the login session it belongs to: a customer's
        # words go to the agent handling the ticket only, and logging out closes them.
        self.sockets: "weakref.WeakKeyDictionary[web.WebSocketResponse, Tuple[int, str]]" = \
            weakref.WeakKeyDictionary()
        self._last_queue: Optional[str] = None

    # Plumbing ------------------------------------------------------------------------
    async def db(self, work):
        return await in_session(self.sessions(), work)

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/console", self.page)
        app.router.add_get("/console/console.js", script("console.js"))
        app.router.add_get("/console/console-lib.js", script("console-lib.js"))
        app.router.add_post("/console/login", self.login)
        app.router.add_post("/console/logout", self.logout)
        app.router.add_get("/console/api/me", self.me)
        app.router.add_get("/console/api/queue", self.queue_view)
        app.router.add_get("/console/api/tickets/{id:\\d+}", self.ticket_view)
        app.router.add_post("/console/api/tickets/{id:\\d+}/{action:claim|reply|note|handback|close}",
                            self.ticket_action)
        app.router.add_get("/console/api/requests", self.requests_view)
        app.router.add_post("/console/api/requests/{id:\\d+}", self.request_update)
        app.router.add_get("/console/ws", self.websocket)
        app.cleanup_ctx.append(self._watch_queue)
        app.on_shutdown.append(self._close_sockets)

    async def page(self, request: web.Request) -> web.Response:
        csrf = secrets.token_urlsafe(24)
        html = (STATIC / "console.html").read_text(encoding="utf-8").replace("{{LOGIN_CSRF}}", csrf)
        response = web.Response(text=html, content_type="text/html", headers={
            "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                       "connect-src 'self' ws: wss:; frame-ancestors 'none'",
            "Cache-Control": "no-store"})
        response.set_cookie(LOGIN_CSRF_COOKIE, csrf, httponly=True, samesite="Strict",
                            secure=self.secure, path="/console")
        return response

    async def agent(self, request: web.Request, csrf: bool = False) -> agents.SessionInfo:
        """The logged-in agent, or 401; with `csrf`, the request must carry the token."""
        token = request.cookies.get(COOKIE)
        info = await self.db(lambda s: agents.session_for(s, token))
        if info is None:
            raise web.HTTPUnauthorized(text=json.dumps({"error": "Connexion requise."}),
                                       content_type="application/json")
        if csrf and not same(info.csrf_token, request.headers.get("X-CSRF-Token", "")):
            raise web.HTTPForbidden(text=json.dumps({"error": "Jeton CSRF manquant ou invalide."}),
                                    content_type="application/json")
        return info

    # Authentication ------------------------------------------------------------------
    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not cookie or not same(cookie, str(form.get("csrf", ""))):
            return web.json_response({"error": "Session de connexion expirée, rechargez la page."},
                                     status=403)
        username, password = str(form.get("username", ""))[:64], str(form.get("password", ""))[:256]
        address = client_address(request, self.trusted_proxies)
        done = await self.db(lambda s: agents.login(s, username, password, address=address))
        if done is None:
            logger.info("console login refused")
            return web.json_response({"error": "Identifiant ou mot de passe incorrect, ou compte "
                                               "temporairement bloqué."}, status=401)
        response = web.json_response({"name": done.display_name, "csrf": done.csrf_token,
                                      "role": done.role})
        response.set_cookie(COOKIE, done.token, httponly=True, samesite="Strict", secure=self.secure,
                            path="/console", max_age=agents.SESSION_HOURS * 3600)
        response.del_cookie(LOGIN_CSRF_COOKIE, path="/console")
        return response

    async def logout(self, request: web.Request) -> web.Response:
        await self.agent(request, csrf=True)
        token = request.cookies.get(COOKIE, "")
        await self.db(lambda s: agents.logout(s, token))
        await self.shared.publish(TOPIC, {"logout": _token_ref(token)})
        response = web.json_response({"ok": True})
        response.del_cookie(COOKIE, path="/console")
        return response

    async def me(self, request: web.Request) -> web.Response:
        info = await self.agent(request)
        return web.json_response({"name": info.display_name, "csrf": info.csrf_token,
                                  "role": info.role})

    # Queue and tickets ----------------------------------------------------------------
    def _queue(self, session) -> List[Dict[str, Any]]:
        now = utcnow()
        return [{"id": t.id, "channel": t.channel, "status": t.status, "reason": t.reason,
                 "priority": t.priority, "off_hours": t.off_hours,
                 "contact_preference": t.contact_preference, "claimed_by": t.claimed_by,
                 "waiting_minutes": int((now - t.created_at).total_seconds() // 60)}
                for t in tickets.queue(session)]

    async def queue_view(self, request: web.Request) -> web.Response:
        await self.agent(request)
        return web.json_response({"tickets": await self.db(self._queue)})

    async def ticket_view(self, request: web.Request) -> web.Response:
        """The conversation, for the agent handling the ticket only; every view is logged,
        and personal data, codes and export links are masked in what is shown."""
        info = await self.agent(request)
        ticket_id = int(request.match_info["id"])

        data = await self.db(lambda s: tickets.for_agent(s, ticket_id, info.agent_id))
        if data is None:
            raise web.HTTPNotFound(text=json.dumps({"error": "Ticket introuvable."}),
                                   content_type="application/json")
        if data.get("refused"):
            raise web.HTTPForbidden(text=json.dumps({
                "error": "Seul le conseiller qui a pris ce ticket en charge voit la conversation."}),
                content_type="application/json")
        events = await self.transcript(data.pop("sender"))
        data["transcript"] = [{"sender": e["sender"], "text": mask(e["text"])}
                              for e in events if "sender" in e]
        data["summary"] = summarise(events, data["transcript"])
        return web.json_response(data)

    async def ticket_action(self, request: web.Request) -> web.Response:
        info = await self.agent(request, csrf=True)
        body = await request.json() if request.can_read_body else {}
        result = await self.act(info, int(request.match_info["id"]), request.match_info["action"],
                                str((body or {}).get("text", "")))
        return web.json_response(result, status=200 if result.get("ok") else 409)

    async def act(self, info: agents.SessionInfo, ticket_id: int, action: str,
                  text: str = "") -> Dict[str, Any]:
        """What an agent does to a ticket, from the HTTP API or the WebSocket."""
        text = text.strip()[:MAX_TEXT]
        ticket = await self.db(lambda s: tickets.get(s, ticket_id))
        if ticket is None:
            return {"ok": False, "error": "Ticket introuvable."}
        if action == "claim":
            won = await self.db(lambda s: tickets.claim(s, ticket_id, info.agent_id,
                                                         info.display_name))
            await self.broadcast_queue()
            return {"ok": won} if won else {"ok": False, "error": "Ce ticket est déjà pris."}
        if not tickets.handled_by(ticket, info.agent_id):
            return {"ok": False, "error": "Prenez d'abord ce ticket en charge."}
        if action == "reply":
            if not text:
                return {"ok": False, "error": "Message vide."}
            await self.db(lambda s: tickets.add_message(s, ticket_id, "agent", text, info.agent_id))
            await self.deliver(ticket.channel, ticket.sender_id, text, info.display_name)
            await self.send_to(info.agent_id, {"type": "message", "ticket_id": ticket_id,
                                               "author": "agent", "text": mask(text)})
        elif action == "note":
            if not text:
                return {"ok": False, "error": "Note vide."}
            await self.db(lambda s: tickets.add_note(s, ticket_id, info.agent_id, text))
        else:
            status = "handed_back" if action == "handback" else "closed"
            done = await self.db(lambda s: tickets.finish(s, ticket_id, status))
            if done is None:
                return {"ok": False, "error": "Ce ticket est déjà terminé."}
            await self.resume(ticket.channel, ticket.sender_id,
                              "Je reprends la main. Puis-je vous aider pour autre chose ?"
                              if action == "handback" else
                              "Votre échange avec notre conseiller est terminé. Je reste à votre "
                              "disposition si besoin.", action == "close")
            await self.broadcast_queue()
        return {"ok": True}

    # Personal-data requests -------------------------------------------------------------
    async def requests_view(self, request: web.Request) -> web.Response:
        await self.agent(request)

        def load(session):
            now = utcnow()
            return [{"id": r.id, "kind": r.kind, "status": r.status,
                     "created_at": r.created_at.isoformat(), "due_at": r.due_at.isoformat(),
                     "overdue": r.due_at < now} for r in privacy.list_requests(session)]

        return web.json_response({"requests": await self.db(load)})

    async def request_update(self, request: web.Request) -> web.Response:
        info = await self.agent(request, csrf=True)
        status = str((await request.json()).get("status", ""))
        if status not in privacy.REQUEST_STATUSES:
            return web.json_response({"error": "Statut inconnu."}, status=400)
        request_id = int(request.match_info["id"])
        moved = await self.db(lambda s: privacy.move_request(s, request_id, status, info.agent_id,
                                                              utcnow()))
        if moved is None:
            raise web.HTTPNotFound()
        return web.json_response({"ok": True})

    # Live ----------------------------------------------------------------------------------
    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        origin = request.headers.get("Origin")
        if origin and origin not in (f"{request.scheme}://{request.host}", self.public_origin):
            raise web.HTTPForbidden(text="origine refusée")
        info = await self.agent(request)
        ws = web.WebSocketResponse(heartbeat=20, max_msg_size=64 * 1024)
        await ws.prepare(request)
        self.sockets[ws] = (info.agent_id, request.cookies.get(COOKIE, ""))
        await ws.send_json({"type": "queue", "tickets": await self.db(self._queue)})
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                data = json.loads(message.data)
                if not same(info.csrf_token, str(data.get("csrf", ""))):
                    await ws.send_json({"type": "error", "error": "Jeton CSRF invalide."})
                    continue
                result = await self.act(info, int(data["ticket_id"]), str(data["action"]),
                                        str(data.get("text", "")))
                await ws.send_json({"type": "result", "action": data["action"], **result})
            except (ValueError, KeyError, TypeError):
                await ws.send_json({"type": "error", "error": "Message invalide."})
        return ws

    async def _close_sockets(self, _app: web.Application) -> None:
        for ws in list(self.sockets.keys()):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"arret du serveur")

    async def send_to(self, agent_id: int, event: Dict[str, Any]) -> None:
        """To this agent's live sockets, on whichever gateway they are."""
        await self.shared.publish(TOPIC, {"agent_id": agent_id, "event": event})

    async def _on_event(self, message: Dict[str, Any]) -> None:
        """An event from any gateway (this one included), for the sockets held here."""
        if "queue" in message:
            await self._local_queue(force=True)
        elif "logout" in message:
            for ws, (_agent_id, ws_token) in list(self.sockets.items()):
                if same(_token_ref(ws_token), str(message["logout"])):
                    await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"deconnexion")
        elif "agent_id" in message and isinstance(message.get("event"), dict):
            await self._send([ws for ws, (owner, _token) in list(self.sockets.items())
                              if owner == message["agent_id"]], message["event"])

    @staticmethod
    async def _send(sockets: List[web.WebSocketResponse], event: Dict[str, Any]) -> None:
        for ws in sockets:
            if not ws.closed:
                with contextlib.suppress(ConnectionResetError, RuntimeError):
                    await ws.send_json(event)

    async def customer_message(self, ticket_id: int, text: str) -> None:
        """A customer's words during a handover: to the agent handling it, masked; the
        others only see the queue move."""
        ticket = await self.db(lambda s: tickets.get(s, ticket_id))
        if ticket is not None and ticket.status == "claimed" and ticket.claimed_by_agent_id:
            await self.send_to(ticket.claimed_by_agent_id, {
                "type": "message", "ticket_id": ticket_id, "author": "customer", "text": mask(text)})

    async def broadcast_queue(self) -> None:
        """The queue moved (a claim, a close): every gateway sends it to its agents now."""
        await self.shared.publish(TOPIC, {"queue": True})

    async def _local_queue(self, force: bool = False) -> None:
        """The queue to the agents connected here, when it changed (or `force`)."""
        if not self.sockets:
            return
        queue = await self.db(self._queue)
        snapshot = json.dumps([(t["id"], t["status"], t["claimed_by"]) for t in queue])
        if force or snapshot != self._last_queue:
            self._last_queue = snapshot
            await self._send(list(self.sockets.keys()), {"type": "queue", "tickets": queue})

    async def _watch_queue(self, app: web.Application):
        async def loop():
            while True:
                await asyncio.sleep(1.5)
                # New tickets come from any gateway's turns: each gateway looks for itself.
                with contextlib.suppress(Exception):
                    await self._local_queue()

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def script(name: str) -> Callable[[web.Request], Awaitable[web.FileResponse]]:
    """The handler serving one of the console's scripts (under static/)."""
    async def serve(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / name, headers={
            "Content-Type": "application/javascript; charset=utf-8", "Cache-Control": "no-cache"})
    return serve


def client_address(request: web.Request, trusted_proxies: Tuple[str, ...]) -> str:
    """Who is at the other end: the peer, or, when the peer is a proxy we trust, the last
    address it appended to X-Forwarded-For that is not one of our proxies."""
    address = request.remote or ""
    if address not in trusted_proxies:
        return address
    forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",")]
    for hop in reversed([part for part in forwarded if part]):
        if hop not in trusted_proxies:
            return hop
    return address


def summarise(events: List[Dict[str, Any]], transcript: List[Dict[str, Any]]) -> Dict[str, Any]:
    """What the customer wanted and what the bot tried, for an agent in a hurry."""
    asked = [m["text"] for m in transcript if m["sender"] == "user"][-3:]
    said = [m["text"] for m in transcript if m["sender"] == "bot"][-2:]
    return {"last_customer_messages": asked, "last_bot_answers": said,
            "intents": [e.get("intent") for e in events if e.get("intent")][-5:],
            "product": next((e["product"] for e in reversed(events) if e.get("product")), None)}
