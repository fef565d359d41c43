"""Holds for pickup: atomic on stock, with a code, cancellable, expiring by themselves."""
from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import List, Optional

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.core.models import Reservation, Stock, Store

MAX_HOLD_QUANTITY = 5
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L to misread at the till


@dataclass(frozen=True)
class HoldLimits:
    """What one holder may keep aside: a hold costs nothing, so without limits a script
    could empty every shelf for two days."""

    open_holds: int  # active at once
    units_per_article: int  # of one variant, all stores together
    created_per_day: int  # cancelled ones count: holding and cancelling in a loop is hoarding


# An unverified conversation is only a sender id (free to make up); a verified customer
# is a loyalty member, all their chats counted together.
UNVERIFIED = HoldLimits(open_holds=2, units_per_article=2, created_per_day=5)
VERIFIED = HoldLimits(open_holds=MAX_HOLD_QUANTITY, units_per_article=MAX_HOLD_QUANTITY,
                      created_per_day=10)


class HoldRefused(Exception):
    """A hold that cannot be made; `reason` is one of: quantity, online, unavailable,
    and for a holder at their limits (`limits` says which apply): open_holds,
    units_per_article, created_per_day, unverified_share."""

    def __init__(self, reason: str, limits: Optional[HoldLimits] = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.limits = limits


def limits_for(customer_id: Optional[int]) -> HoldLimits:
    return VERIFIED if customer_id is not None else UNVERIFIED


def _check_limits(session: Session, variant_id: int, quantity: int, now: dt.datetime,
                  identity_id: Optional[int], customer_id: Optional[int]) -> None:
    if identity_id is None and customer_id is None:
        return  # staff tools and imports hold for nobody in particular
    limits = limits_for(customer_id)
    holders = []
    if identity_id is not None:
        holders.append(Reservation.identity_id == identity_id)
    if customer_id is not None:
        holders.append(Reservation.customer_id == customer_id)
    mine = or_(*holders)
    held, same_article = session.execute(select(func.count(), func.coalesce(func.sum(
        case((Reservation.variant_id == variant_id, Reservation.quantity), else_=0)), 0))
        .where(mine, Reservation.status == "active")).one()
    if held >= limits.open_holds:
        raise HoldRefused("open_holds", limits)
    if same_article + quantity > limits.units_per_article:
        raise HoldRefused("units_per_article", limits)
    made_today = session.execute(select(func.count()).select_from(Reservation).where(
        mine, Reservation.created_at > now - dt.timedelta(days=1))).scalar()
    if made_today >= limits.created_per_day:
        raise HoldRefused("created_per_day", limits)


def unverified_share(on_hand: int) -> int:
    """How many units of an item in a store holds by unverified conversations may take
    together: half, rounded up. Sender ids cost nothing, so a script can open as many
    conversations as it likes; the other half stays for the shelf and for members."""
    return (on_hand + 1) // 2


def _check_unverified_share(session: Session, variant_id: int, store_id: int, quantity: int) -> None:
    on_hand = session.execute(select(Stock.quantity).where(
        Stock.variant_id == variant_id, Stock.store_id == store_id)).scalar_one()
    held = session.execute(select(func.coalesce(func.sum(Reservation.quantity), 0)).where(
        Reservation.variant_id == variant_id, Reservation.store_id == store_id,
        Reservation.status == "active", Reservation.customer_id.is_(None))).scalar()
    if held + quantity > unverified_share(on_hand):
        session.execute(update(Stock).where(Stock.variant_id == variant_id, Stock.store_id == store_id)
                        .values(reserved=Stock.reserved - quantity)
                        .execution_options(synchronize_session=False))  # a caller may commit
        raise HoldRefused("unverified_share", UNVERIFIED)


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(6))


def hold(session: Session, variant_id: int, store_id: int, quantity: int, *, now: dt.datetime,
         hours: int = 48, identity_id: Optional[int] = None,
         customer_id: Optional[int] = None) -> Reservation:
    """Reserve units atomically: two shoppers can never hold the same last unit."""
    if not 1 <= quantity <= MAX_HOLD_QUANTITY:
        raise HoldRefused("quantity")
    _check_limits(session, variant_id, quantity, now, identity_id, customer_id)
    kind = session.execute(select(Store.kind).where(Store.id == store_id)).scalar_one()
    if kind != "store":
        raise HoldRefused("online")
    # The check and the increment are one statement: the database arbitrates.
    taken = session.execute(
        update(Stock)
        .where(Stock.variant_id == variant_id, Stock.store_id == store_id,
               Stock.quantity - Stock.reserved >= quantity)
        .values(reserved=Stock.reserved + quantity)
        .execution_options(synchronize_session=False)
    ).rowcount
    if taken != 1:
        raise HoldRefused("unavailable")
    if customer_id is None and identity_id is not None:
        # Checked after the increment: the stock row is now ours until commit (a row lock
        # on PostgreSQL, the write lock on SQLite), so two conversations cannot both take
        # the last of the unverified share. Not in a savepoint: on SQLite a savepoint that
        # opens the transaction commits it when released, before the hold is written.
        _check_unverified_share(session, variant_id, store_id, quantity)
    for _ in range(5):
        try:
            with session.begin_nested():
                reservation = Reservation(
                    code=new_code(), variant_id=variant_id, store_id=store_id, quantity=quantity,
                    identity_id=identity_id, customer_id=customer_id, status="active",
                    created_at=now, expires_at=now + dt.timedelta(hours=hours))
                session.add(reservation)
            return reservation
        except IntegrityError:  # code collision: draw another
            continue
    raise RuntimeError("could not draw a unique reservation code")


def release_hold(session: Session, reservation_id: int, status: str) -> Optional[Reservation]:
    """Move an active hold to `status` and give its units back, exactly once."""
    moved = session.execute(
        update(Reservation).where(Reservation.id == reservation_id, Reservation.status == "active")
        .values(status=status).execution_options(synchronize_session=False)).rowcount
    if moved != 1:
        return None
    reservation = session.get(Reservation, reservation_id)
    session.refresh(reservation)
    session.execute(
        update(Stock).where(Stock.variant_id == reservation.variant_id,
                            Stock.store_id == reservation.store_id)
        .values(reserved=Stock.reserved - reservation.quantity)
        .execution_options(synchronize_session=False))
    return reservation


# What a till is told when a hold's code is scanned.
COLLECT_OUTCOMES_FR = {
    "collected": "Réservation retirée : remettez l'article au client.",
    "unknown": "Code de retrait inconnu.",
    "other_store": "Cette réservation est à retirer dans un autre magasin.",
    "expired": "Cette réservation a expiré : l'article est retourné en rayon.",
    "cancelled": "Cette réservation a été annulée.",
    "already": "Cette réservation a déjà été retirée."}


def collect(session: Session, code: str, store_code: str) -> str:
    """The customer picks a hold up at the till of its store: its units leave the shop
    (on-hand and reserved both drop), exactly once. Returns the outcome's key."""
    reservation = session.execute(select(Reservation).where(
        Reservation.code == code.strip().upper())).scalar_one_or_none()
    if reservation is None:
        return "unknown"
    if session.get(Store, reservation.store_id).code != store_code.strip().upper():
        return "other_store"
    if reservation.status != "active":
        return {"collected": "already"}.get(reservation.status, reservation.status)
    moved = session.execute(
        update(Reservation).where(Reservation.id == reservation.id, Reservation.status == "active")
        .values(status="collected").execution_options(synchronize_session=False)).rowcount
    if moved != 1:
        return "already"  # another till, a moment before
    session.execute(
        update(Stock).where(Stock.variant_id == reservation.variant_id,
                            Stock.store_id == reservation.store_id)
        .values(reserved=Stock.reserved - reservation.quantity,
                quantity=Stock.quantity - reservation.quantity)
        .execution_options(synchronize_session=False))
    return "collected"


def active_holds(session: Session, identity_id: int) -> List[Reservation]:
    return list(session.execute(
        select(Reservation).where(Reservation.identity_id == identity_id,
                                  Reservation.status == "active")
        .order_by(Reservation.created_at)).scalars())


def cancel(session: Session, identity_id: int, code: Optional[str] = None) -> List[Reservation]:
    """Cancel this identity's active holds (or the one with `code`); others' are untouchable."""
    cancelled = []
    for reservation in active_holds(session, identity_id):
        if code and reservation.code != code.strip().upper():
            continue
        done = release_hold(session, reservation.id, "cancelled")
        if done:
            cancelled.append(done)
    return cancelled


def expire_due(factory: sessionmaker, now: dt.datetime) -> int:
    """Expire holds past their time and free their units; safe to run concurrently."""
    with factory.begin() as session:
        due = session.execute(select(Reservation.id).where(
            Reservation.status == "active", Reservation.expires_at <= now)).scalars().all()
    expired = 0
    for reservation_id in due:
        with factory.begin() as session:
            if release_hold(session, reservation_id, "expired"):
                expired += 1
    return expired
