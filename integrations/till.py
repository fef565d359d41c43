"""The shop's tills and web checkout: vouchers checked and used, cards activated in any
store, holds picked up, and the voucher codes' images shown to customers.

    GET  /api/vouchers/{code}            -> {"status": "valid" | "used" | "expired", "reason", ...}
    POST /api/vouchers/{code}/use        {"store": "LYS-PDI"} -> 200, or 409 with the reason
    POST /api/cards/{card}/activate      {"store": "LYS-PDI"} -> 200, 404 or 409
    POST /api/holds/{code}/collect       {"store": "LYS-PDI"} -> 200, 404 or 409 (a hold picked up)
    GET  /vouchers/{code}/{signature}.png  the scannable code (signed path, no token)

The /api routes want TILL_API_TOKEN as a bearer token; none set refuses them all.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from typing import Callable, Optional
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.orm import sessionmaker

from bot.core.db import in_session
from bot.core.http import require_bearer
from bot.core.models import utcnow
from bot.core.settings import Settings
from bot.offers.loyalty import CARD_OUTCOMES_FR, activate_card_number
from bot.offers.vouchers import check_voucher, code_from_image_path, qr_png, use_voucher
from bot.stock.reservations import COLLECT_OUTCOMES_FR, collect as collect_hold

PLACE_RE = re.compile(r"^[A-Z0-9-]{2,16}$")
CARD_STATUS = {"activated": 200, "already": 200, "unknown": 404, "no_card": 404, "suspended": 409}


def _json(http_status: int, body: dict) -> web.Response:
    return web.json_response(body, status=http_status, dumps=lambda d: json.dumps(d, ensure_ascii=False))


class Till:
    def __init__(self, settings: Settings, sessions: Callable[[], sessionmaker]) -> None:
        self.settings = settings
        self.sessions = sessions

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/vouchers/{code}", self.check)
        app.router.add_post("/api/vouchers/{code}/use", self.use)
        app.router.add_post("/api/cards/{card}/activate", self.activate)
        app.router.add_post("/api/holds/{code}/collect", self.collect)
        app.router.add_get("/vouchers/{code}/{signature}.png", self.image)

    def _authorise(self, request: web.Request) -> None:
        require_bearer(request, self.settings.till_api_token)

    def _today(self) -> dt.date:
        return dt.datetime.now(dt.timezone.utc).astimezone(ZoneInfo(self.settings.timezone)).date()

    async def _place(self, request: web.Request) -> str:
        try:
            body = await request.json()
            place = str(body.get("store", "")).strip().upper()
        except (ValueError, AttributeError):
            place = ""
        if not PLACE_RE.match(place):
            raise web.HTTPBadRequest(text=json.dumps({"error": "Indiquez le magasin : {\"store\": \"LYS-PDI\"} (ou WEB)."}),
                                     content_type="application/json")
        return place

    async def check(self, request: web.Request) -> web.Response:
        self._authorise(request)
        code, today = request.match_info["code"], self._today()
        result = await in_session(self.sessions(), lambda s: check_voucher(s, code, today).as_json())
        return _json(404 if result["status"] == "unknown" else 200, result)

    async def use(self, request: web.Request) -> web.Response:
        self._authorise(request)
        place, code, today = await self._place(request), request.match_info["code"], self._today()
        now = utcnow()
        result = await in_session(self.sessions(),
                                  lambda s: use_voucher(s, code, place, now, today).as_json())
        status = {"used_now": 200, "unknown": 404}.get(result["status"], 409)
        return _json(status, result)

    async def activate(self, request: web.Request) -> web.Response:
        self._authorise(request)
        place, card = await self._place(request), request.match_info["card"]
        now = utcnow()
        outcome = await in_session(self.sessions(),
                                   lambda s: activate_card_number(s, card, place, now))
        return _json(CARD_STATUS[outcome], {"status": outcome, "reason": CARD_OUTCOMES_FR[outcome]})

    async def collect(self, request: web.Request) -> web.Response:
        self._authorise(request)
        place, code = await self._place(request), request.match_info["code"]
        outcome = await in_session(self.sessions(), lambda s: collect_hold(s, code, place))
        status = {"collected": 200, "unknown": 404}.get(outcome, 409)
        return _json(status, {"status": outcome, "reason": COLLECT_OUTCOMES_FR[outcome]})

    async def image(self, request: web.Request) -> web.Response:
        code = self.code_of(request.path)
        if code is None:
            raise web.HTTPNotFound()
        return web.Response(body=qr_png(code), content_type="image/png",
                            headers={"Cache-Control": "private, max-age=86400"})

    def code_of(self, url: str) -> Optional[str]:
        return code_from_image_path(self.settings.identity_secret, url)

    def local_image(self, url: str) -> Optional[bytes]:
        """The PNG for one of our voucher URLs (Telegram uploads it), else None."""
        if not url.startswith(self.settings.gateway_url):
            return None
        code = self.code_of(url)
        return qr_png(code) if code else None
