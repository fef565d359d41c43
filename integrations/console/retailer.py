"""The retailer's side of the console: the review inbox (label what the bot
misunderstood, then retrain), and the dashboard (how conversations go, demand signals),
with a CSV export of every table.

Reviewers and admins only (an agent's account sees neither); retraining is an admin's.
The review texts were masked before they were stored; the dashboard shows aggregates
only. Same cookies and CSRF token as the rest of the console.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Optional, Tuple
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.core.db import make_engine
from bot.core.models import utcnow
from bot.handover.agents import SessionInfo
from bot.review import analytics, inbox
from bot.review.retrain import Retraining
from integrations.console import script

STATIC = Path(__file__).parent / "static"
PAGE_SECURITY = {"Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                            "img-src 'self' data:; frame-ancestors 'none'",
                 "Cache-Control": "no-store"}
MAX_IDS = 500


def _error(status: int, text: str) -> web.HTTPException:
    kind = {400: web.HTTPBadRequest, 403: web.HTTPForbidden, 409: web.HTTPConflict}[status]
    return kind(text=json.dumps({"error": text}), content_type="application/json")


class Retailer:
    def __init__(self, console: Any, retraining: Retraining, tracker_store_url: str,
                 timezone: str) -> None:
        self.console = console  # for the login, the CSRF check and the shop's sessions
        self.retraining = retraining
        self.tracker_store_url = tracker_store_url
        self.zone = ZoneInfo(timezone)
        self.timezone = timezone
        self._trackers: Optional[Engine] = None

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/console/revue", self.page)
        app.router.add_get("/console/tableau-de-bord", self.page)
        app.router.add_get("/console/retailer.js", script("retailer.js"))
        app.router.add_get("/console/vendor/chart.umd.min.js", script("vendor/chartjs/chart.umd.min.js"))
        app.router.add_get("/console/api/review", self.review_view)
        app.router.add_post("/console/api/review/label", self.review_label)
        app.router.add_get("/console/api/retrain", self.retrain_view)
        app.router.add_post("/console/api/retrain", self.retrain_start)
        app.router.add_get("/console/api/dashboard", self.dashboard_view)
        app.router.add_get("/console/api/dashboard/{table:[a-z-]+}.csv", self.dashboard_csv)
        app.on_cleanup.append(self._close)

    async def _close(self, _app: web.Application) -> None:
        await self.retraining.stop()
        if self._trackers is not None:
            self._trackers.dispose()

    async def page(self, request: web.Request) -> web.Response:
        return web.FileResponse(STATIC / "retailer.html", headers=PAGE_SECURITY)

    async def reviewer(self, request: web.Request, csrf: bool = False,
                       role: str = "reviewer") -> SessionInfo:
        info = await self.console.agent(request, csrf=csrf)
        if not info.may(role):
            raise _error(403, "Réservé aux comptes « relecteur » ou « administrateur »."
                         if role == "reviewer" else "Réservé aux comptes « administrateur ».")
        return info

    # Review inbox -------------------------------------------------------------------------
    async def review_view(self, request: web.Request) -> web.Response:
        await self.reviewer(request)
        groups = await self.console.db(lambda s: [g.as_dict() for g in inbox.groups(s)])
        return web.json_response({"groups": groups, "labels": inbox.choices(),
                                  "entities": inbox.entity_choices(),
                                  "retrain": await self.retraining.status()})

    async def review_label(self, request: web.Request) -> web.Response:
        info = await self.reviewer(request, csrf=True)
        try:
            body = await request.json()
            ids = [int(i) for i in body["ids"]][:MAX_IDS]
            choice = str(body["label"])
            entity = _entity(body.get("entity"))
        except (ValueError, KeyError, TypeError):
            raise _error(400, "Demande incomplète : messages et étiquette attendus.")
        try:
            done = await self.console.db(lambda s: inbox.label(s, ids, choice, info.agent_id,
                                                               utcnow(), entity))
        except ValueError as error:
            raise _error(400, f"Étiquette refusée : {error}.")
        if done.conflicts:
            text, other = done.conflicts[0]
            raise _error(409, f"« {text} » figure déjà dans les exemples de « "
                              f"{inbox.TITLES.get(other, other)} ». Choisissez cette intention, "
                              "ou ignorez le message.")
        return web.json_response({"ok": True, "labelled": done.done})

    # Retraining ----------------------------------------------------------------------------
    async def retrain_view(self, request: web.Request) -> web.Response:
        await self.reviewer(request)
        return web.json_response(await self.retraining.status())

    async def retrain_start(self, request: web.Request) -> web.Response:
        await self.reviewer(request, csrf=True, role="admin")
        if not await self.retraining.start():
            raise _error(409, "Un entraînement est déjà en cours.")
        return web.json_response(await self.retraining.status(), status=202)

    # Dashboard -------------------------------------------------------------------------------
    async def _dashboard(self, request: web.Request) -> analytics.Dashboard:
        await self.reviewer(request)
        try:
            start, end = analytics.parse_period(request.query.get("du"), request.query.get("au"),
                                                dt.datetime.now(self.zone).date())
        except ValueError:
            raise _error(400, "Dates attendues au format 2026-11-30.")

        def compute(shop) -> analytics.Dashboard:
            with self.trackers().connect() as trackers:
                return analytics.dashboard(shop, trackers, start, end, self.timezone)

        try:
            return await self.console.db(compute)
        except ValueError as error:
            raise _error(400, "La période doit aller d'une date à une date postérieure, un an au "
                              "plus.") from error
        except SQLAlchemyError as error:
            raise web.HTTPServiceUnavailable(text=json.dumps(
                {"error": "Les conversations ne sont pas lisibles pour le moment."}),
                content_type="application/json") from error

    def trackers(self) -> Engine:
        if self._trackers is None:
            self._trackers = make_engine(self.tracker_store_url)
        return self._trackers

    async def dashboard_view(self, request: web.Request) -> web.Response:
        board = (await self._dashboard(request)).as_dict()
        board["titles"] = {intent: inbox.TITLES.get(intent, intent) for intent, _count in board["intents"]}
        return web.json_response(board)

    async def dashboard_csv(self, request: web.Request) -> web.Response:
        board = await self._dashboard(request)
        tables = board.tables()
        name = request.match_info["table"]
        if name not in tables:
            raise web.HTTPNotFound()
        headers, rows = tables[name]
        filename = f"comptoir-{name}-{board.start.isoformat()}-{board.end.isoformat()}.csv"
        return web.Response(body=analytics.csv_text(headers, rows).encode("utf-8"), headers={
            "Content-Type": "text/csv; charset=utf-8", "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="{filename}"'})


def _entity(raw: Any) -> Optional[Tuple[int, str, int, int]]:
    if not raw:
        return None
    return int(raw["id"]), str(raw["entity"]), int(raw["start"]), int(raw["end"])

