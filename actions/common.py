"""What every action shares: the shop database, reached lazily and off the event loop."""
from __future__ import annotations

import asyncio
import logging
from functools import lru_cache
from typing import Callable, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.db import make_engine, make_session_factory, session_scope

logger = logging.getLogger(__name__)
T = TypeVar("T")


class ShopUnavailable(RuntimeError):
    """The shop database could not answer; the action apologises to the customer."""


@lru_cache(maxsize=1)
def session_factory() -> sessionmaker:
    from bot.settings import load_settings

    return make_session_factory(make_engine(load_settings().database_url))


async def in_shop(work: Callable[[Session], T]) -> T:
    """Run `work(session)` in a short transaction on a worker thread."""

    def run() -> T:
        with session_scope(session_factory()) as session:
            return work(session)

    try:
        return await asyncio.to_thread(run)
    except SQLAlchemyError as error:
        logger.error("shop database unavailable: %s", type(error).__name__)
        raise ShopUnavailable() from error
