"""Web chat sessions: how long a browser may go on with its session id, and a customer
signed in on the retailer's site verified at once by the token it passes."""
from __future__ import annotations

import datetime as dt

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from bot.core.chats import find_identity, identity_for
from bot.core.db import in_session
from bot.customers.verification import accept_customer_token
from bot.web.keys import SESSIONS, SETTINGS

# Holds last 48 h and are cancelled from the same chat: a web session id outlives them.
WEB_SESSION_DAYS = 7


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


async def accept_web_token(app: web.Application, session_id: str, token: str) -> bool:
    """A forged, expired or replayed token is simply not accepted."""
    secret = app[SETTINGS].customer_token_secret

    def accept(session) -> bool:
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        identity = identity_for(session, "web", session_id)
        return accept_customer_token(session, secret, token, identity, now) is not None

    return await in_session(app[SESSIONS], accept)
