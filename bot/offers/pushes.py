"""The daily birthday push: members whose birthday it is, on the channel they agreed to,
within quiet hours, at most once a year (safe across restarts and replicas).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple
from zoneinfo import ZoneInfo

from sqlalchemy import extract, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.core.db import session_scope
from bot.core.models import (BirthdayPush, ChatIdentity, Consent, Customer, OutboundMessage, Store,
                             Voucher, utcnow)
from bot.core.text import format_euros
from bot.customers.consent import consent_granted
from bot.offers.birthday import (Offer, birthday_voucher, choose_offer, issue_birthday_voucher,
                                 window_for)
from bot.offers.rules import DEFAULT_TIMEZONE, OfferRules
from bot.offers.vouchers import image_path, voucher_text, voucher_value


PUSH_CHANNELS = ("telegram", "email", "sms")


@dataclass(frozen=True)
class PushPlan:
    customer_id: int
    first_name: str
    channel: str
    offer: Offer
    local_date: dt.date
    existing_voucher: Optional[str]


def _birthday_is(day: dt.date):
    """Condition: the customer's birthday (month, day) falls on `day` (29 February is
    celebrated on the 28th in other years)."""
    same = (extract("month", Customer.birthday) == day.month) & \
        (extract("day", Customer.birthday) == day.day)
    leap = dt.date(day.year, 3, 1) - dt.timedelta(days=1)
    if day.month == 2 and day.day == 28 and leap.day == 28:
        same = same | ((extract("month", Customer.birthday) == 2) & (extract("day", Customer.birthday) == 29))
    return same


def _reachable_channel(session: Session, customer: Customer) -> Optional[Tuple[str, Optional[ChatIdentity]]]:
    """The first channel, preferred one first, where the member agreed to birthday
    messages and the shop can reach them."""
    order = sorted(PUSH_CHANNELS, key=lambda c: c != customer.preferred_channel)
    for channel in order:
        if not consent_granted(session, "birthday", channel, customer_id=customer.id):
            continue
        if channel == "email" and customer.email:
            return channel, None
        if channel == "sms" and customer.phone:
            return channel, None
        if channel == "telegram":
            chats = session.execute(select(ChatIdentity).where(
                ChatIdentity.customer_id == customer.id, ChatIdentity.channel == "telegram",
                ChatIdentity.verified_at.isnot(None)).order_by(ChatIdentity.last_seen_at.desc())).scalars()
            for chat in chats:
                stopped = session.execute(select(Consent.granted).where(
                    Consent.identity_id == chat.id, Consent.purpose == "birthday",
                    Consent.channel == "telegram")).scalar_one_or_none() is False
                if not stopped:
                    return channel, chat
    return None


def _timezones(session: Session) -> List[str]:
    zones = set(session.execute(select(Store.timezone).distinct()).scalars())
    return sorted(zones | {DEFAULT_TIMEZONE})


def _home_zone(zone: str):
    """Members of stores in `zone` (members without a home store count as Paris)."""
    in_zone = Customer.home_store_id.in_(select(Store.id).where(Store.timezone == zone))
    return or_(in_zone, Customer.home_store_id.is_(None)) if zone == DEFAULT_TIMEZONE else in_zone


def plan_pushes(session: Session, rules: OfferRules, now: dt.datetime,
                ignore_quiet_hours: bool = False) -> List[PushPlan]:
    """Who gets a birthday message at `now` (aware), on which channel, with what offer.
    Members already pushed this year, or whose voucher is used, are left out."""
    plans: List[PushPlan] = []
    for zone in _timezones(session):
        local = now.astimezone(ZoneInfo(zone))
        if not ignore_quiet_hours and not rules.quiet_start <= local.time() < rules.quiet_end:
            continue
        today = local.date()
        pushed = select(BirthdayPush.customer_id).where(BirthdayPush.year == today.year)
        members = session.execute(
            select(Customer).where(Customer.loyalty_status == "active", Customer.erased_at.is_(None),
                                   Customer.birthday.isnot(None), _birthday_is(today),
                                   _home_zone(zone), Customer.id.not_in(pushed))
            .order_by(Customer.id)).scalars().all()
        for customer in members:
            found = _reachable_channel(session, customer)
            if found is None:
                continue
            voucher = birthday_voucher(session, customer.id, today.year)
            if voucher is not None and voucher.used_at is not None:
                continue
            offer = choose_offer(session, customer.id, today, rules) if voucher is None else \
                Offer(rule=voucher.rule or "", label=voucher.applies_to,
                      percent_off=voucher.percent_off, amount_cents=voucher.amount_cents,
                      minimum_cents=voucher.minimum_cents)
            plans.append(PushPlan(customer.id, customer.first_name or "", found[0], offer, today,
                                  voucher.code if voucher else None))
    return plans


def birthday_message(customer: Customer, voucher: Voucher) -> str:
    name = f" {customer.first_name}" if customer.first_name else ""
    return (f"Joyeux anniversaire{name} ! Pour l'occasion, voici votre cadeau : "
            f"{voucher_value(voucher)}.\n{voucher_text(voucher)}\n"
            "Pour ne plus recevoir ces messages, répondez STOP.")


def queue_push(session: Session, plan: PushPlan, rules: OfferRules, secret: str,
               public_url: str) -> Optional[BirthdayPush]:
    """In one transaction: this year's voucher, the push row (the once-a-year guard) and,
    for Telegram, the chat outbox message. None when another run queued it first."""
    customer = session.get(Customer, plan.customer_id)
    found = _reachable_channel(session, customer)
    if found is None:
        return None
    channel, chat = found
    window, _ = window_for(customer.birthday, plan.local_date, rules)
    voucher, _ = issue_birthday_voucher(session, customer, window, plan.local_date, rules)
    try:
        with session.begin_nested():
            push = BirthdayPush(customer_id=customer.id, year=plan.local_date.year,
                                voucher_id=voucher.id, channel=channel)
            session.add(push)
    except IntegrityError:
        return None
    if chat is not None:
        session.add(OutboundMessage(identity_id=chat.id, kind="birthday",
                                    text=birthday_message(customer, voucher),
                                    image_url=public_url + image_path(secret, voucher.code)))
        push.status, push.sent_at = "sent", utcnow()  # handed to the chat outbox
    return push


def claim_queued(session: Session, limit: int = 50) -> List[int]:
    """Email and SMS pushes to send now, each claimed by exactly one runner. A claim that
    never completes (crash mid-send) stays `sending`: at most once, never twice."""
    ids = session.execute(select(BirthdayPush.id).where(BirthdayPush.status == "queued")
                          .order_by(BirthdayPush.id).limit(limit)).scalars().all()
    claimed = []
    for push_id in ids:
        won = session.execute(update(BirthdayPush).where(
            BirthdayPush.id == push_id, BirthdayPush.status == "queued")
            .values(status="sending").execution_options(synchronize_session=False)).rowcount
        if won == 1:
            claimed.append(push_id)
    return claimed


def push_content(session: Session, push_id: int, secret: str,
                 public_url: str) -> Tuple[str, str, str, str]:
    """(channel, address, subject, body) of a claimed push."""
    push = session.get(BirthdayPush, push_id)
    customer = session.get(Customer, push.customer_id)
    voucher = session.get(Voucher, push.voucher_id)
    body = birthday_message(customer, voucher)
    if push.channel == "email":
        body += f"\nVotre code à présenter en caisse : {public_url}{image_path(secret, voucher.code)}"
        return "email", customer.email, "Joyeux anniversaire ! Votre cadeau vous attend", body
    return "sms", customer.phone, "", (f"Joyeux anniversaire ! Votre bon {voucher.code} : "
                                       f"{voucher_value(voucher)}, jusqu'au "
                                       f"{voucher.expires_on:%d/%m}. Répondez STOP pour ne "
                                       "plus recevoir de SMS.")


def mark_push(session: Session, push_id: int, sent: bool) -> None:
    session.execute(update(BirthdayPush).where(BirthdayPush.id == push_id)
                    .values(status="sent" if sent else "failed",
                            sent_at=utcnow() if sent else None))


def plan_summary(plans: Sequence[PushPlan]) -> List[str]:
    lines = []
    for plan in plans:
        offer = plan.offer
        value = f"{offer.percent_off} %" if offer.percent_off else format_euros(offer.amount_cents or 0)
        again = f" (bon déjà émis {plan.existing_voucher})" if plan.existing_voucher else ""
        lines.append(f"client {plan.customer_id}\t{plan.channel}\t{offer.rule}\t{value} sur "
                     f"{offer.label}{again}")
    return lines


def run_birthday_pushes(factory, rules: OfferRules, now: dt.datetime, secret: str,
                        public_url: str, messenger) -> Tuple[int, int]:
    """The daily job (safe to run often, twice at once, or again after a crash): queue
    today's pushes within quiet hours, then send the queued emails and SMS.
    Returns (queued, sent)."""
    with session_scope(factory) as session:
        plans = plan_pushes(session, rules, now)
    queued = 0
    for plan in plans:  # one transaction per member: a crash loses nobody's place
        with session_scope(factory) as session:
            queued += queue_push(session, plan, rules, secret, public_url) is not None
    return queued, deliver_queued(factory, secret, public_url, messenger)


def deliver_queued(factory, secret: str, public_url: str, messenger) -> int:
    with session_scope(factory) as session:
        claimed = claim_queued(session)
    sent = 0
    for push_id in claimed:
        with session_scope(factory) as session:
            channel, address, subject, body = push_content(session, push_id, secret, public_url)
        try:
            if channel == "email":
                messenger.email(address, subject, body)
            else:
                messenger.sms(address, body)
            ok = True
        except OSError:
            ok = False
        with session_scope(factory) as session:
            mark_push(session, push_id, ok)
        sent += ok
    return sent
