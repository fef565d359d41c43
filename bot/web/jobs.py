"""Periodic jobs: holds past their time go back to stock, queued mail leaves, birthday
offers go out on the day, within quiet hours, at most once a year (safe across
restarts and replicas), and review messages past their retention period are purged.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from bot.core.db import session_scope
from bot.core.messaging import Messenger, send_queued_mail
from bot.offers.pushes import run_birthday_pushes
from bot.offers.rules import load_rules
from bot.review.capture import purge
from bot.stock.reservations import expire_due
from bot.web.keys import SESSIONS, SETTINGS

logger = logging.getLogger("comptoir.gateway")

HOLD_EXPIRY_INTERVAL = 60
REVIEW_PURGE_INTERVAL = 3600
BIRTHDAY_PUSH_INTERVAL = 300  # the job is idempotent: running it often only narrows delays
MAIL_INTERVAL = 1  # one-time codes: the shopper is waiting for theirs


async def _every(seconds: float, name: str, job) -> None:
    """Run a blocking job on a worker thread every `seconds`; a database that is down
    only skips a round."""
    while True:
        try:
            await asyncio.to_thread(job)
        except SQLAlchemyError as error:
            logger.warning("%s skipped: %s", name, type(error).__name__)
        await asyncio.sleep(seconds)


async def scheduler(app: web.Application):
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

    def purge_review() -> None:
        with session_scope(app[SESSIONS]) as session:
            purged = purge(session, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
                           settings.review_retention_days)
        if purged:
            logger.info("review: %d messages past their retention period purged", purged)

    tasks = [asyncio.create_task(_every(MAIL_INTERVAL, "mail outbox", send_mail)),
             asyncio.create_task(_every(HOLD_EXPIRY_INTERVAL, "hold expiry", expire_holds)),
             asyncio.create_task(_every(BIRTHDAY_PUSH_INTERVAL, "birthday pushes", birthday_pushes)),
             asyncio.create_task(_every(REVIEW_PURGE_INTERVAL, "review purge", purge_review))]
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
