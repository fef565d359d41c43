"""What the gateway application holds, by key: settings, the Rasa client, the shop
database, the channels, the console, and the per-conversation locks, and what several gateways share.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable, Dict

from aiohttp import web
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from bot.assistant.client import RasaClient
from bot.core.ratelimit import KeyedLocks
from bot.core.settings import Settings
from bot.core.shared import Shared
from integrations.till import Till

# Sends one message ({"text", "image", "buttons"}) to a chat of a channel; False when
# the chat cannot be reached now (the message then waits in the outbox).
Push = Callable[[str, Dict[str, Any]], Awaitable[bool]]

SETTINGS = web.AppKey("settings", Settings)
RASA = web.AppKey("rasa", RasaClient)
ENGINE = web.AppKey("engine", Engine)
SESSIONS = web.AppKey("sessions", sessionmaker)
TELEGRAM = web.AppKey("telegram", object)
WEBCHAT = web.AppKey("webchat", object)
CONSOLE = web.AppKey("console", object)
TILL = web.AppKey("till", Till)
CONVERSATIONS = web.AppKey("conversations", KeyedLocks)
SHARED = web.AppKey("shared", Shared)  # flood limits, presence, events: one gateway or several
DELIVERY = web.AppKey("delivery", dict)  # {channel: Push}, for the channels that can push
