"""The gateway's own HTTP endpoints: the REST channel, health, data export downloads, the
stock API and the Telegram webhook.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from typing import Any, Dict

from aiohttp import web

from bot.core.db import in_session, ping
from bot.core.http import require_bearer
from bot.privacy.requests import customer_chats, export, export_zip, use_export_link
from bot.stock.importer import StockUpdateError, apply_stock_updates
from bot.web.conversation import MAX_SENDER_CHARS, converse
from bot.web.history import history
from bot.web.keys import ENGINE, RASA, SESSIONS, SETTINGS, SHARED, TELEGRAM


MAX_STOCK_UPDATES = 10000
MAX_BODY_BYTES = 1024 * 1024


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

    known = await in_session(request.app[SESSIONS],
                             lambda session: customer_chats(session, customer_id))
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
        require_bearer(request, token)
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

    async def shared_probe():
        return {"kind": app[SHARED].kind} if await app[SHARED].ping() else False

    names = ("rasa", "action_server", "database", "shared")
    results = await asyncio.gather(
        _check("rasa", rasa_probe), _check("action_server", rasa.action_server_up),
        _check("database", database_probe), _check("shared", shared_probe))
    components = dict(zip(names, results))
    all_up = all(c["status"] == "up" for c in components.values())
    # Without Redis, gateways go on answering (each with its own limits and sockets): a
    # balancer must not take them all out for it, so it is reported, not a 503.
    answering = all(components[name]["status"] == "up" for name in names if name != "shared")
    return web.json_response({"status": "ok" if all_up else "degraded", "components": components},
                             status=200 if answering else 503)


async def telegram_webhook(request: web.Request) -> web.Response:
    channel = request.app.get(TELEGRAM)
    if channel is None:
        raise web.HTTPNotFound()
    return await channel.webhook(request)


async def stock_update(request: web.Request) -> web.Response:
    """POST /api/stock: set on-hand quantities (a till, a warehouse system).

    Body: {"updates": [{"sku" or "ean": ..., "store": "LYS-PDI", "quantity": 4}, ...]}.
    Needs STOCK_API_TOKEN as a bearer token; answers how many alerts were queued.
    """
    require_bearer(request, request.app[SETTINGS].stock_api_token)
    try:
        body = await request.json()
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested thousands deep
        body = None
    updates = body.get("updates") if isinstance(body, dict) else None
    if not isinstance(updates, list) or len(updates) > MAX_STOCK_UPDATES:
        raise BadRequest("Requête invalide : {\"updates\": [{\"sku\", \"store\", \"quantity\"}]} "
                         f"attendu, au plus {MAX_STOCK_UPDATES} lignes.")
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
