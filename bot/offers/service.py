"""Birthday offers and the loyalty card.

The offer window, the choice of a personal offer (rules kept as data in
`bot/offers/offer_rules.yml`), one voucher per member and year, vouchers checked and used by a
till, card status and activation, and the daily birthday push (at most once a year).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import json
import re
import secrets
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import extract, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.core.models import (BirthdayPush, ChatIdentity, Consent, Customer, OutboundMessage,
                             Product, Purchase, Store, Variant, Voucher)
from bot.core.text import MONTHS_FR, format_count, format_date, normalise
from bot.privacy.consent import allows_personalisation, consent_granted

RULES_FILE = Path(__file__).with_name("offer_rules.yml")
BIRTHDAY_NO_YEAR = 1904  # a leap year, so 29 February fits when only day and month are known
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud at a till
VOUCHER_RE = re.compile(r"\bANNIV-[A-Z0-9]{4}-[A-Z0-9]{4}\b", re.IGNORECASE)
DEFAULT_TIMEZONE = "Europe/Paris"
PUSH_CHANNELS = ("telegram", "email", "sms")


# Rules ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OfferRule:
    name: str
    bought: Tuple[str, ...]
    offer: Tuple[str, ...]
    percent_off: int
    label: str


@dataclass(frozen=True)
class OfferRules:
    days_before: int
    days_after: int
    min_valid_days: int
    quiet_start: dt.time
    quiet_end: dt.time
    generic_amount_cents: int
    generic_minimum_cents: int
    generic_label: str
    history_days: int
    recent_days: int
    rules: Tuple[OfferRule, ...]
    points_per_reward: int
    reward_cents: int


class RulesError(ValueError):
    """The offer rules file is not usable; the message names what is wrong."""


@lru_cache(maxsize=4)
def load_rules(path: Path = RULES_FILE) -> OfferRules:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        birthday, generic = data["birthday"], data["generic"]
        personalised, loyalty = data["personalised"], data["loyalty"]
        start, end = (dt.time.fromisoformat(t) for t in birthday["quiet_hours"])
        rules = tuple(OfferRule(name=str(r["name"]), bought=tuple(r["bought"]),
                                offer=tuple(r["offer"]), percent_off=int(r["percent_off"]),
                                label=str(r["label"])) for r in personalised["rules"])
        loaded = OfferRules(
            days_before=int(birthday["days_before"]), days_after=int(birthday["days_after"]),
            min_valid_days=int(birthday["min_valid_days"]), quiet_start=start, quiet_end=end,
            generic_amount_cents=round(float(generic["amount_eur"]) * 100),
            generic_minimum_cents=round(float(generic.get("minimum_eur") or 0) * 100),
            generic_label=str(generic["label"]),
            history_days=int(personalised["history_days"]),
            recent_days=int(personalised["recent_days"]), rules=rules,
            points_per_reward=int(loyalty["points_per_reward"]),
            reward_cents=round(float(loyalty["reward_eur"]) * 100))
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as error:
        raise RulesError(f"{path}: {type(error).__name__}: {error}") from error
    if loaded.days_before < 0 or loaded.days_after < 0 or loaded.quiet_start >= loaded.quiet_end:
        raise RulesError(f"{path}: the window and quiet hours must be positive spans")
    for rule in loaded.rules:
        if not rule.bought or not rule.offer or not 0 < rule.percent_off < 100:
            raise RulesError(f"{path}: rule {rule.name!r} needs bought, offer and 1-99 % off")
    return loaded


# Window --------------------------------------------------------------------------------------

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


# Choosing the offer --------------------------------------------------------------------------

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


# Vouchers ------------------------------------------------------------------------------------

def new_voucher_code() -> str:
    pick = lambda: "".join(secrets.choice(CODE_ALPHABET) for _ in range(4))  # noqa: E731
    return f"ANNIV-{pick()}-{pick()}"


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


def euros(cents: int) -> str:
    return f"{cents // 100} €" if cents % 100 == 0 else f"{cents / 100:.2f} €".replace(".", ",")


def voucher_value(voucher: Voucher) -> str:
    if voucher.percent_off:
        value = f"{voucher.percent_off} % de remise sur {voucher.applies_to}"
    else:
        value = f"{euros(voucher.amount_cents or 0)} de remise sur {voucher.applies_to}"
    if voucher.minimum_cents:
        value += f", dès {euros(voucher.minimum_cents)} d'achat"
    return value


def voucher_text(voucher: Voucher) -> str:
    return (f"Votre bon : {voucher.code}\n{voucher_value(voucher)[0].upper()}{voucher_value(voucher)[1:]}."
            f"\nValable jusqu'au {format_date(voucher.expires_on)} inclus, en magasin (montrez "
            "le code en caisse) et en ligne (saisissez-le au paiement). Une seule utilisation.")


def _signature(secret: str, code: str) -> str:
    return hmac.new(secret.encode(), f"voucher-image:{code}".encode(), hashlib.sha256).hexdigest()[:20]


def image_path(secret: str, code: str) -> str:
    """Where the gateway serves this voucher's scannable code; signed, so the route is
    not an open code generator."""
    return f"/vouchers/{code}/{_signature(secret, code)}.png"


IMAGE_PATH_RE = re.compile(r"/vouchers/(ANNIV-[A-Z0-9]{4}-[A-Z0-9]{4})/([0-9a-f]{20})\.png$")


def code_from_image_path(secret: str, path: str) -> Optional[str]:
    match = IMAGE_PATH_RE.search(path)
    if match and hmac.compare_digest(match.group(2), _signature(secret, match.group(1))):
        return match.group(1)
    return None


def qr_png(code: str) -> bytes:
    import segno

    buffer = io.BytesIO()
    segno.make(code, error="m").save(buffer, kind="png", scale=8, border=4)
    return buffer.getvalue()


@dataclass
class VoucherCheck:
    status: str  # valid, used, expired, unknown
    reason: str  # French, for the till or the customer
    voucher: Optional[Voucher] = None

    def as_json(self) -> Dict[str, object]:
        data: Dict[str, object] = {"status": self.status, "reason": self.reason}
        v = self.voucher
        if v is not None:
            data.update(code=v.code, value=voucher_value(v), percent_off=v.percent_off,
                        amount_cents=v.amount_cents, minimum_cents=v.minimum_cents,
                        categories=json.loads(v.categories) if v.categories else None,
                        expires_on=v.expires_on.isoformat(),
                        used_at=v.used_at.isoformat(timespec="seconds") if v.used_at else None,
                        used_where=v.used_where)
        return data


def _find_voucher(session: Session, code: str) -> Optional[Voucher]:
    return session.execute(select(Voucher).where(
        Voucher.code == code.strip().upper())).scalar_one_or_none()


def check_voucher(session: Session, code: str, today: dt.date) -> VoucherCheck:
    voucher = _find_voucher(session, code)
    if voucher is None:
        return VoucherCheck("unknown", "Ce bon n'existe pas. Vérifiez le code saisi.")
    if voucher.used_at is not None:
        where = f" ({voucher.used_where})" if voucher.used_where else ""
        return VoucherCheck("used", f"Ce bon a déjà été utilisé le "
                            f"{voucher.used_at:%d/%m/%Y}{where}.", voucher)
    if voucher.expires_on < today:
        return VoucherCheck("expired", f"Ce bon a expiré le {voucher.expires_on:%d/%m/%Y}.", voucher)
    return VoucherCheck("valid", f"Bon valable : {voucher_value(voucher)}, jusqu'au "
                        f"{voucher.expires_on:%d/%m/%Y}.", voucher)


def use_voucher(session: Session, code: str, where: str, now: dt.datetime,
                today: dt.date) -> VoucherCheck:
    """Mark a voucher used, once: of two tills scanning it at the same time, one wins and
    the other is told it is already used."""
    checked = check_voucher(session, code, today)
    if checked.status != "valid":
        return checked
    won = session.execute(
        update(Voucher).where(Voucher.id == checked.voucher.id, Voucher.used_at.is_(None),
                              Voucher.expires_on >= today)
        .values(used_at=now, used_where=where[:40])
        .execution_options(synchronize_session=False)).rowcount
    session.expire(checked.voucher)
    if won != 1:
        return check_voucher(session, code, today)
    return VoucherCheck("used_now", f"Bon accepté : {voucher_value(checked.voucher)}.",
                        checked.voucher)


# Birthdays given in a chat ---------------------------------------------------------------------

MONTHS_PLAIN = [normalise(m) for m in MONTHS_FR]


def read_birthday(text: str, today: dt.date) -> Optional[dt.date]:
    """"12 mars", "le 12 mars 1985", "12/03/1985", "12/03", "1er avril": a birth date, the
    year BIRTHDAY_NO_YEAR when only the day and month are given."""
    plain = f" {normalise(text)} "
    day = month = year = None
    named = re.search(r" (1er|\d{1,2}) (" + "|".join(MONTHS_PLAIN) + r")(?: (\d{4}))? ", plain)
    numeric = re.search(r"\b(\d{1,2})[/.-](\d{1,2})(?:[/.-](\d{4}|\d{2}))?\b", text)
    if named:
        day = 1 if named.group(1) == "1er" else int(named.group(1))
        month = MONTHS_PLAIN.index(named.group(2)) + 1
        year = int(named.group(3)) if named.group(3) else None
    elif numeric:
        day, month = int(numeric.group(1)), int(numeric.group(2))
        if numeric.group(3):
            year = int(numeric.group(3))
            if year < 100:  # "12/03/85"
                year += 1900 if year > today.year % 100 else 2000
    else:
        return None
    try:
        value = dt.date(year or BIRTHDAY_NO_YEAR, month, day)
    except ValueError:
        return None
    if year is not None and not (today.year - 120 <= year and value <= today):
        return None
    return value


def format_birthday(value: dt.date) -> str:
    day = "1er" if value.day == 1 else str(value.day)
    text = f"{day} {MONTHS_FR[value.month - 1]}"
    return text if value.year == BIRTHDAY_NO_YEAR else f"{text} {value.year}"


# Loyalty card ------------------------------------------------------------------------------

def mask_card(card: Optional[str]) -> str:
    return f"•••• {card[-4:]}" if card else "—"


def card_text(customer: Customer, rules: OfferRules) -> str:
    card = mask_card(customer.loyalty_card)
    if customer.loyalty_status == "pending":
        return (f"Votre carte {card} n'est pas encore activée. Je peux l'activer maintenant : "
                "elle fonctionnera aussitôt dans tous nos magasins et en ligne.")
    if customer.loyalty_status == "suspended":
        return (f"Votre carte {card} est suspendue. Un conseiller peut regarder avec vous "
                "pourquoi et la réactiver.")
    points = customer.loyalty_points
    reward, per = euros(rules.reward_cents), rules.points_per_reward
    text = (f"Votre carte {card} est active, dans tous nos magasins et en ligne. "
            f"Vous avez {format_count(points)} points")
    if points >= per:
        text += f" : de quoi obtenir {points // per} bon(s) de {reward} (un bon tous les {format_count(per)} points)."
    else:
        text += f". Encore {format_count(per - points)} points et vous recevez un bon de {reward}."
    return text


def programme_text(rules: OfferRules) -> str:
    return (f"Notre carte de fidélité est gratuite : 1 point par euro dépensé, un bon de "
            f"{euros(rules.reward_cents)} tous les {format_count(rules.points_per_reward)} points, et une offre "
            "pour votre anniversaire. Demandez-la en caisse dans n'importe quel magasin ou lors "
            "d'une commande en ligne ; vous pourrez ensuite l'activer ici, en m'écrivant "
            "« activer ma carte ».")


def activate_card(session: Session, customer: Customer, card_given: Optional[str],
                  via: str, now: dt.datetime) -> str:
    """Activate the member's own card from any chat or store: "activated", "already",
    "mismatch" (a number that is not this customer's card), "no_card" or "suspended"."""
    if card_given and card_given != customer.loyalty_card:
        return "mismatch"
    if customer.loyalty_status == "none" or not customer.loyalty_card:
        return "no_card"
    if customer.loyalty_status == "suspended":
        return "suspended"
    if customer.loyalty_status == "active":
        return "already"
    done = session.execute(
        update(Customer).where(Customer.id == customer.id, Customer.loyalty_status == "pending")
        .values(loyalty_status="active", loyalty_activated_at=now, loyalty_activated_via=via[:16])
        .execution_options(synchronize_session=False)).rowcount
    session.expire(customer)
    return "activated" if done == 1 else "already"


CARD_OUTCOMES_FR = {
    "activated": "Carte activée : elle fonctionne dès maintenant dans tous les magasins et en ligne.",
    "already": "Cette carte est déjà active.",
    "suspended": "Cette carte est suspendue : voyez avec le service client.",
    "no_card": "Ce client n'a pas de carte de fidélité.",
    "unknown": "Ce numéro de carte est inconnu.",
}


def activate_card_number(session: Session, card: str, store_code: str, now: dt.datetime) -> str:
    """A till activates a card handed over in any store: same outcomes, plus "unknown"."""
    customer = session.execute(select(Customer).where(
        Customer.loyalty_card == card.strip(), Customer.erased_at.is_(None))).scalar_one_or_none()
    if customer is None:
        return "unknown"
    return activate_card(session, customer, None, store_code, now)


# The daily birthday push ------------------------------------------------------------------------

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
        push.status, push.sent_at = "sent", dt.datetime.utcnow()  # handed to the chat outbox
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
                            sent_at=dt.datetime.utcnow() if sent else None))


def plan_summary(plans: Sequence[PushPlan]) -> List[str]:
    lines = []
    for plan in plans:
        offer = plan.offer
        value = f"{offer.percent_off} %" if offer.percent_off else euros(offer.amount_cents or 0)
        again = f" (bon déjà émis {plan.existing_voucher})" if plan.existing_voucher else ""
        lines.append(f"client {plan.customer_id}\t{plan.channel}\t{offer.rule}\t{value} sur "
                     f"{offer.label}{again}")
    return lines


def run_birthday_pushes(factory, rules: OfferRules, now: dt.datetime, secret: str,
                        public_url: str, messenger) -> Tuple[int, int]:
    """The daily job (safe to run often, twice at once, or again after a crash): queue
    today's pushes within quiet hours, then send the queued emails and SMS.
    Returns (queued, sent)."""
    from bot.core.db import session_scope

    with session_scope(factory) as session:
        plans = plan_pushes(session, rules, now)
    queued = 0
    for plan in plans:  # one transaction per member: a crash loses nobody's place
        with session_scope(factory) as session:
            queued += queue_push(session, plan, rules, secret, public_url) is not None
    return queued, deliver_queued(factory, secret, public_url, messenger)


def deliver_queued(factory, secret: str, public_url: str, messenger) -> int:
    from bot.core.db import session_scope

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
