"""The gateway application: its parts put together and run. Nothing else lives here.

    database, Rasa client       _resources (opened on start-up, closed on the way out)
    web chat, console, tills    their own routes, built once
    Telegram (token set)        _channels (started with the app: it polls or takes webhooks)
    delivery registry           {channel: push} for agent replies and the outbox
    shared state                bot.core.shared: in memory, or Redis for several gateways
    turns                       bot.web.conversation.converse, for every channel
    jobs                        bot.web.jobs.scheduler, bot.web.delivery.push_outbox
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import partial

import aiohttp
from aiohttp import web

from bot.assistant.client import RasaClient
from bot.core import gcwatch
from bot.core.db import make_engine, make_session_factory
from bot.core.ratelimit import KeyedLocks
from bot.core.settings import Settings
from bot.core.shared import make_shared
from bot.review.retrain import Retraining
from bot.web.conversation import converse
from bot.web.delivery import agent_reply, push_outbox, resume_bot, stop_chat_consents
from bot.web.history import replay, ticket_context
from bot.web.jobs import scheduler
from bot.web import media
from bot.web.keys import (CONSOLE, CONVERSATIONS, DELIVERY, ENGINE, RASA, SESSIONS, SETTINGS,
                          SHARED, TELEGRAM, TILL, WEBCHAT)
from bot.web.sessions import accept_web_token, web_session_alive
from bot.web.views import MAX_BODY_BYTES, setup_routes, telegram_webhook
from integrations.console import Console
from integrations.console.retailer import Retailer
from integrations.till import Till
from integrations.webchat import WebChat

logger = logging.getLogger("comptoir.gateway")


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


async def _shared(app: web.Application):
    """What gateways share, started once every part has subscribed to its events."""
    await app[SHARED].start()
    yield
    await app[SHARED].close()


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
    """Telegram, when a token is set (its library is only loaded then), and the outbox
    pusher for every channel that can push."""
    async def context(app: web.Application):
        telegram = None
        if settings.telegram_token:
            from integrations.telegram import TelegramChannel

            async def local_image(url: str):
                """Our own pictures are uploaded: Telegram cannot fetch a private gateway."""
                return app[TILL].local_image(url) or await media.picture_bytes(app, url)

            telegram = TelegramChannel(settings, partial(converse, app),
                                       partial(stop_chat_consents, app, "telegram"),
                                       local_image=local_image, shared=app[SHARED])
            app[TELEGRAM] = telegram
            try:
                await telegram.start()
                app[DELIVERY]["telegram"] = telegram.push
            except Exception as error:  # Telegram unreachable: the rest of the shop still runs
                logger.error("telegram channel not started: %s", type(error).__name__)
                telegram = None
        pusher = asyncio.create_task(push_outbox(app))
        yield
        pusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pusher
        if telegram is not None:
            app[DELIVERY].pop("telegram", None)
            await telegram.stop()

    return context


def init_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app[CONVERSATIONS] = KeyedLocks()
    app[SHARED] = shared = make_shared(settings.redis_url, settings.shared_prefix)
    app[DELIVERY] = {}
    app.cleanup_ctx.append(_shared)
    app.cleanup_ctx.append(_resources(settings))
    app.cleanup_ctx.append(scheduler)
    app.cleanup_ctx.append(_channels(settings))
    setup_routes(app)
    media.setup_routes(app)
    if settings.telegram_webhook_url:
        app.router.add_post("/webhooks/telegram", telegram_webhook)

    webchat = WebChat(settings, shared, partial(converse, app), partial(replay, app),
                      partial(accept_web_token, app), partial(web_session_alive, app))
    webchat.attach(app)
    app[WEBCHAT] = webchat
    app[DELIVERY]["web"] = webchat.push
    console = Console(lambda: app[SESSIONS], partial(agent_reply, app), partial(resume_bot, app),
                      partial(ticket_context, app), shared,
                      secure_cookies=settings.behind_tls or not settings.gateway_is_loopback,
                      public_origin=settings.public_url,
                      trusted_proxies=settings.trusted_proxies)
    console.routes(app)
    app[CONSOLE] = console
    Retailer(console, Retraining(settings, lambda: app[RASA], shared), settings.tracker_store_url,
             settings.timezone).routes(app)
    till = Till(settings, lambda: app[SESSIONS])
    till.routes(app)
    app[TILL] = till
    return app


async def _freeze_started_objects(_app: web.Application) -> None:
    gcwatch.freeze_and_watch("gateway")


def run_gateway(settings: Settings, shutdown_timeout: float) -> None:
    app = init_app(settings)
    app.on_startup.append(_freeze_started_objects)
    web.run_app(app, host=settings.gateway_host, port=settings.gateway_port,
                shutdown_timeout=shutdown_timeout,
                access_log=None, print=lambda *_: logger.info(
                    "gateway listening on %s", settings.gateway_url))
