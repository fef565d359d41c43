"""The birthday offer: its window around the birthday, the choice of a personal offer
(with consent) or the generic one, one voucher per member and year (birthdays are read
and said by `bot.customers.birthday`).
"""
from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass
from typing import Optional, Tuple

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.core.models import Customer, Product, Purchase, Variant, Voucher
from bot.customers.consent import allows_personalisation
from bot.offers.rules import OfferRule, OfferRules
from bot.offers.vouchers import new_voucher_code


def birthday_in(birthday: dt.date, year: int) -> dt.date:
    """The birthday's date in `year` (29 February is kept on the 28th in other years)."""
    try:
        return birthday.replace(year=year)
    except ValueError:
        return dt.date(year, 2, 28)


@dataclass(frozen=True)
class Window:
    birthday: dt.date  # the occurrence this window is for
    opens: dt.date
    closes: dt.date

    def contains(self, day: dt.date) -> bool:
        return self.opens <= day <= self.closes


def window_for(birthday: dt.date, today: dt.date, rules: OfferRules) -> Tuple[Window, bool]:
    """The window around the nearest birthday and whether `today` is in it; when it is
    not, the window returned is the next one to open."""
    windows = [Window(b, b - dt.timedelta(days=rules.days_before), b + dt.timedelta(days=rules.days_after))
               for b in (birthday_in(birthday, y) for y in (today.year - 1, today.year, today.year + 1))]
    for window in windows:
        if window.contains(today):
            return window, True
    return next(w for w in windows if w.opens > today), False


@dataclass(frozen=True)
class Offer:
    rule: str
    label: str
    percent_off: Optional[int] = None
    amount_cents: Optional[int] = None
    minimum_cents: Optional[int] = None
    categories: Optional[Tuple[str, ...]] = None  # None: the whole shop


def generic_offer(rules: OfferRules) -> Offer:
    return Offer(rule="generic", label=rules.generic_label, amount_cents=rules.generic_amount_cents,
                 minimum_cents=rules.generic_minimum_cents or None)


def choose_offer(session: Session, customer_id: int, today: dt.date, rules: OfferRules) -> Offer:
    """The personal offer if the member allows personalisation and a rule fits their own
    purchases; the generic offer otherwise."""
    if not allows_personalisation(session, customer_id):
        return generic_offer(rules)
    since = dt.datetime.combine(today - dt.timedelta(days=rules.history_days), dt.time())
    recent_since = today - dt.timedelta(days=rules.recent_days)
    rows = session.execute(
        select(Product.category, Purchase.purchased_at)
        .join(Variant, Variant.product_id == Product.id)
        .join(Purchase, Purchase.variant_id == Variant.id)
        .where(Purchase.customer_id == customer_id, Purchase.purchased_at >= since)).all()
    counts = Counter(category for category, _ in rows)
    recent = {category for category, when in rows if when.date() >= recent_since}
    best: Optional[Tuple[int, OfferRule, Tuple[str, ...]]] = None
    for rule in rules.rules:
        score = sum(counts[c] for c in rule.bought)
        covered = tuple(c for c in rule.offer if c not in recent)
        if score and covered and (best is None or score > best[0]):
            best = (score, rule, covered)
    if best is None:
        return generic_offer(rules)
    _, rule, covered = best
    label = rule.label if covered == rule.offer else " et ".join(f"« {c} »" for c in covered)
    return Offer(rule=rule.name, label=label, percent_off=rule.percent_off, categories=covered)


def birthday_voucher(session: Session, customer_id: int, year: int) -> Optional[Voucher]:
    return session.execute(select(Voucher).where(
        Voucher.customer_id == customer_id, Voucher.kind == "birthday",
        Voucher.year == year)).scalar_one_or_none()


def issue_birthday_voucher(session: Session, customer: Customer, window: Window, today: dt.date,
                           rules: OfferRules) -> Tuple[Voucher, bool]:
    """This year's voucher: the existing one, or a new one (True). Two requests at once
    still make one voucher (unique customer/kind/year)."""
    year = window.birthday.year
    existing = birthday_voucher(session, customer.id, year)
    if existing is not None:
        return existing, False
    offer = choose_offer(session, customer.id, today, rules)
    expires = max(window.closes, today + dt.timedelta(days=rules.min_valid_days))
    for _ in range(5):
        try:
            with session.begin_nested():
                voucher = Voucher(
                    code=new_voucher_code(), customer_id=customer.id, kind="birthday", year=year,
                    amount_cents=offer.amount_cents, percent_off=offer.percent_off,
                    minimum_cents=offer.minimum_cents, applies_to=offer.label, rule=offer.rule,
                    categories=json.dumps(list(offer.categories), ensure_ascii=False)
                    if offer.categories is not None else None,
                    expires_on=expires)
                session.add(voucher)
            return voucher, True
        except IntegrityError:
            existing = birthday_voucher(session, customer.id, year)
            if existing is not None:  # a concurrent request issued it first
                return existing, False
    raise RuntimeError("could not draw a unique voucher code")
