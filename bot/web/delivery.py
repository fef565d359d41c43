"""Messages the customer did not ask for just now (an agent's reply, the bot taking over
again, alerts and offers from the outbox) delivered to the customer's own channel, or
kept in the outbox until it can be.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from bot.assistant.client import RasaUnavailable
from bot.core.chats import identity_for
from bot.core.db import in_session
from bot.core.models import OutboundMessage, utcnow
from bot.core.outbox import claim_for_channel, release
from bot.customers.consent import stop_chat
from bot.review import satisfaction
from bot.web.keys import DELIVERY, RASA, SESSIONS, SETTINGS

logger = logging.getLogger("comptoir.gateway")
OUTBOX_INTERVAL = 2


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
    push = app[DELIVERY].get(channel)
    if push is None or not await push(sender, {"text": text}):
        def queue(session) -> None:
            identity = identity_for(session, channel, sender)
            session.add(OutboundMessage(identity_id=identity.id, kind="agent", text=text))

        await in_session(app[SESSIONS], queue)


async def agent_reply(app: web.Application, channel: str, sender: str, text: str,
                      agent: str) -> None:
    await deliver_to_customer(app, channel, sender, text,
                              [{"event": "bot", "text": text, "metadata": {"agent": agent}}])


async def resume_bot(app: web.Application, channel: str, sender: str, text: str,
                     closed: bool = False) -> None:
    """The bot answers again (an agent handed back or closed the ticket); after a close,
    the satisfaction question."""
    # action_listen last: rules see a conversation waiting for the customer, as usual.
    await deliver_to_customer(app, channel, sender, text,
                              [{"event": "resume"}, {"event": "bot", "text": text},
                               {"event": "action", "name": "action_listen"}])
    if closed:
        await ask_satisfaction(app, channel, sender)


async def ask_satisfaction(app: web.Application, channel: str, sender: str) -> None:
    """The question after a handover, in the conversation and now only: a chat that
    cannot be reached now (REST, a closed web chat) is not asked later."""
    push = app[DELIVERY].get(channel)
    if push is None:
        return
    secret, now = app[SETTINGS].identity_secret, utcnow()
    try:
        asked = await in_session(app[SESSIONS], lambda session: satisfaction.ask(
            session, secret, sender, channel, "handover", "request_human", now))
        if asked and not await push(sender, {"text": satisfaction.QUESTION,
                                             "buttons": satisfaction.BUTTONS}):
            await in_session(app[SESSIONS], lambda session: satisfaction.withdraw(
                session, secret, sender, now))
    except SQLAlchemyError as error:
        logger.warning("satisfaction question skipped: %s", type(error).__name__)


async def stop_chat_consents(app: web.Application, channel: str, external_id: str) -> None:
    await in_session(app[SESSIONS], lambda session: stop_chat(session, channel, external_id))


async def push_outbox(app: web.Application) -> None:
    """Deliver queued messages (alerts...) to chats of the channels that can push."""
    while True:
        await asyncio.sleep(OUTBOX_INTERVAL)
        for channel, channel_push in list(app[DELIVERY].items()):
            try:
                claimed = await in_session(app[SESSIONS],
                                           lambda session: claim_for_channel(session, channel))
                for message_id, external_id, message in claimed:
                    if not await channel_push(external_id, message):
                        await in_session(app[SESSIONS],
                                         lambda session: release(session, message_id))
            except SQLAlchemyError as error:
                logger.warning("outbox push skipped: %s", type(error).__name__)
