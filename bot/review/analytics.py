"""How conversations go, and what shoppers asked for: aggregates only, no message text.

Embedded, the figures come from Rasa's SQL tracker store (its `events` table: who wrote,
when, with what intent, which actions ran) and from the shop database (handovers by
trigger, demand signals, alerts, holds). A day is a day in the shop's time zone.

- conversations: chats with at least one customer message that day;
- messages: customer messages (a button pressed counts as one);
- containment: the share of those conversations in which no person was asked for
  (`action_handover` did not run that day);
- fallback rate: messages the model did not understand (`nlu_fallback`); clarification
  rate: those answered with a clarifying question (the same choice as
  `bot.assistant.fallback`, from the ranking stored with the message; a second miss in
  a row offers a person instead); out-of-scope rate: messages not Comptoir's to answer;
- satisfaction: the share of "yes" among the answers to the one-tap question, after
  the bot alone or after an agent.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple
from zoneinfo import ZoneInfo

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, func, inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from bot.assistant.fallback import likely_intents
from bot.core.models import (DemandSignal, HandoverTicket, Product, Reservation, SatisfactionAnswer,
                             StockAlert, Store, Variant)
from bot.core.text import normalise

# Rasa 3.6's SQL tracker store table (rasa.core.tracker_store.SQLTrackerStore.SQLEvent);
# tests/test_review_analytics.py checks that the two agree.
tracker_metadata = MetaData()
EVENTS = Table(
    "events", tracker_metadata,
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(255), nullable=False, index=True),
    Column("type_name", String(255), nullable=False),
    Column("timestamp", Float),
    Column("intent_name", String(255)),
    Column("action_name", String(255)),
    Column("data", Text))

MAX_DAYS = 366
TOP = 15
KINDS_FR = {"bot": "le bot seul", "handover": "un conseiller"}


@dataclass
class Day:
    day: dt.date
    conversations: int = 0
    messages: int = 0
    contained: int = 0
    fallbacks: int = 0
    clarifications: int = 0
    out_of_scope: int = 0

    def row(self) -> Dict[str, Any]:
        return {"day": self.day.isoformat(), "conversations": self.conversations,
                "messages": self.messages,
                "containment": _rate(self.contained, self.conversations),
                "fallback_rate": _rate(self.fallbacks, self.messages),
                "clarification_rate": _rate(self.clarifications, self.messages),
                "out_of_scope_rate": _rate(self.out_of_scope, self.messages)}


@dataclass
class Dashboard:
    start: dt.date
    end: dt.date  # inclusive
    days: List[Day]
    intents: List[Tuple[str, int]]
    handovers: List[Tuple[str, str, int]]  # day, trigger, count
    not_available: List[Tuple[str, str, str, int]]  # product, variant, store, count
    not_carried: List[Tuple[str, int]]
    alerts: List[Tuple[str, int]]
    holds: List[Tuple[str, int, int]]  # product, made, collected
    satisfaction: List[Tuple[str, str, int, int, int]]  # day, kind, asked, answered, satisfied
    totals: Dict[str, Any] = field(default_factory=dict)

    def tables(self) -> Dict[str, Tuple[List[str], List[List[Any]]]]:
        """Every table of the dashboard as (French headers, rows): what the CSV export writes."""
        return {
            "jours": (["jour", "conversations", "messages", "autonomie", "incompris", "clarifications",
                       "hors sujet"],
                      [list(d.row().values()) for d in self.days]),
            "intentions": (["intention", "messages"], [list(i) for i in self.intents]),
            "transferts": (["jour", "déclencheur", "transferts"], [list(h) for h in self.handovers]),
            "indisponibles": (["produit", "article", "magasin", "demandes"],
                              [list(n) for n in self.not_available]),
            "non-references": (["demandé", "demandes"], [list(n) for n in self.not_carried]),
            "alertes": (["produit", "alertes"], [list(a) for a in self.alerts]),
            "reservations": (["produit", "faites", "retirées"], [list(h) for h in self.holds]),
            "satisfaction": (["jour", "après", "questions", "réponses", "satisfaits"],
                             [[day, KINDS_FR[kind], *counts] for day, kind, *counts in self.satisfaction]),
        }

    def as_dict(self) -> Dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "totals": self.totals,
                "days": [d.row() for d in self.days], "intents": self.intents,
                "handovers": self.handovers, "not_available": self.not_available,
                "not_carried": self.not_carried, "alerts": self.alerts, "holds": self.holds,
                "satisfaction": self.satisfaction}


def _rate(part: int, whole: int) -> Optional[float]:
    return round(part / whole, 4) if whole else None


def _local_day(moment: dt.datetime, zone: ZoneInfo) -> dt.date:
    """The shop's day of a moment (naive means UTC, as the shop database stores time)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(zone).date()


def _bounds(start: dt.date, end: dt.date, zone: ZoneInfo) -> Tuple[dt.datetime, dt.datetime]:
    """The period as naive UTC datetimes (how the shop database stores time)."""
    first = dt.datetime.combine(start, dt.time(), zone).astimezone(dt.timezone.utc)
    last = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.timezone.utc)
    return first.replace(tzinfo=None), last.replace(tzinfo=None)


def dashboard(shop: Session, trackers: Optional[Connection], start: dt.date, end: dt.date,
              timezone: str) -> Dashboard:
    """The figures of a period (at most a year), from the tracker store and the shop."""
    if end < start or (end - start).days >= MAX_DAYS:
        raise ValueError("the period must run forward and last at most a year")
    zone = ZoneInfo(timezone)
    since, until = _bounds(start, end, zone)
    days = {start + dt.timedelta(days=i): Day(start + dt.timedelta(days=i))
            for i in range((end - start).days + 1)}
    intents: Counter = Counter()
    if trackers is not None and inspect(trackers).has_table("events"):  # Rasa made it yet
        _conversations(trackers, since, until, zone, days, intents)
    board = Dashboard(start, end, list(days.values()), intents.most_common(TOP),
                      _handovers(shop, since, until, zone), *_demand(shop, since, until),
                      _satisfaction(shop, since, until, zone))
    conversations = sum(d.conversations for d in board.days)
    messages = sum(d.messages for d in board.days)
    board.totals = {
        "conversations": conversations, "messages": messages,
        "containment": _rate(sum(d.contained for d in board.days), conversations),
        "fallback_rate": _rate(sum(d.fallbacks for d in board.days), messages),
        "clarification_rate": _rate(sum(d.clarifications for d in board.days), messages),
        "out_of_scope_rate": _rate(sum(d.out_of_scope for d in board.days), messages),
        "handovers": sum(count for _day, _trigger, count in board.handovers),
        "satisfaction": _rate(sum(row[4] for row in board.satisfaction),
                              sum(row[3] for row in board.satisfaction)),
        "satisfaction_answers": sum(row[3] for row in board.satisfaction)}
    return board


def _conversations(trackers: Connection, since: dt.datetime, until: dt.datetime, zone: ZoneInfo,
                   days: Dict[dt.date, Day], intents: Counter) -> None:
    utc = dt.timezone.utc
    rows = trackers.execute(
        select(EVENTS.c.sender_id, EVENTS.c.type_name, EVENTS.c.timestamp, EVENTS.c.intent_name,
               EVENTS.c.action_name, EVENTS.c.data)
        .where(EVENTS.c.timestamp >= since.replace(tzinfo=utc).timestamp(),
               EVENTS.c.timestamp < until.replace(tzinfo=utc).timestamp(),
               EVENTS.c.type_name.in_(("user", "action")))
        .order_by(EVENTS.c.sender_id, EVENTS.c.timestamp, EVENTS.c.id))
    talked: Dict[dt.date, set] = defaultdict(set)
    handed: Dict[dt.date, set] = defaultdict(set)
    previous: Dict[str, Optional[str]] = {}
    for sender, kind, stamp, intent, action, data in rows:
        day = _local_day(dt.datetime.fromtimestamp(stamp, dt.timezone.utc), zone)
        if day not in days:
            continue
        if kind == "action":
            if action == "action_handover":
                handed[day].add(sender)
            continue
        figures = days[day]
        talked[day].add(sender)
        figures.messages += 1
        if intent:
            intents[intent] += 1
        if intent == "nlu_fallback":
            figures.fallbacks += 1
            if previous.get(sender) not in ("nlu_fallback", "out_of_scope") and \
                    likely_intents(_ranking(data)):
                figures.clarifications += 1
        elif intent == "out_of_scope":
            figures.out_of_scope += 1
        previous[sender] = intent
    for day, figures in days.items():
        figures.conversations = len(talked[day])
        figures.contained = len(talked[day] - handed[day])


def _ranking(data: Optional[str]) -> List[Dict[str, Any]]:
    try:
        parsed = json.loads(data or "{}")
    except ValueError:
        return []
    return (parsed.get("parse_data") or {}).get("intent_ranking") or []


def _handovers(shop: Session, since: dt.datetime, until: dt.datetime,
               zone: ZoneInfo) -> List[Tuple[str, str, int]]:
    counts: Counter = Counter()
    for created, reason in shop.execute(select(HandoverTicket.created_at, HandoverTicket.reason).where(
            HandoverTicket.created_at >= since, HandoverTicket.created_at < until)):
        day = _local_day(created, zone).isoformat()
        counts[(day, reason)] += 1
    return [(day, reason, count) for (day, reason), count in sorted(counts.items())]


def _satisfaction(shop: Session, since: dt.datetime, until: dt.datetime,
                  zone: ZoneInfo) -> List[Tuple[str, str, int, int, int]]:
    counts: Dict[Tuple[str, str], List[int]] = defaultdict(lambda: [0, 0, 0])
    for asked, kind, score in shop.execute(select(
            SatisfactionAnswer.asked_at, SatisfactionAnswer.kind, SatisfactionAnswer.score).where(
            SatisfactionAnswer.asked_at >= since, SatisfactionAnswer.asked_at < until)):
        row = counts[(_local_day(asked, zone).isoformat(), kind)]
        row[0] += 1
        if score is not None:
            row[1] += 1
            row[2] += score
    return [(day, kind, *row) for (day, kind), row in sorted(counts.items())]


def _demand(shop: Session, since: dt.datetime, until: dt.datetime):
    in_period = (DemandSignal.created_at >= since, DemandSignal.created_at < until)
    names = dict(shop.execute(select(Product.sku, Product.name)).all())
    variants = {sku: " ".join(filter(None, (size, colour))) for sku, size, colour in shop.execute(
        select(Variant.sku, Variant.size, Variant.colour)).all()}
    stores = dict(shop.execute(select(Store.code, Store.name)).all())
    stores.setdefault("online", "En ligne")
    missing = shop.execute(
        select(DemandSignal.product_sku, DemandSignal.variant_sku, DemandSignal.store_code,
               func.count()).where(DemandSignal.kind == "not_available", *in_period)
        .group_by(DemandSignal.product_sku, DemandSignal.variant_sku, DemandSignal.store_code)).all()
    not_available = sorted(((names.get(p, p or "?"), variants.get(v, v or ""), stores.get(s, s or "?"), n)
                            for p, v, s, n in missing), key=lambda row: (-row[3], row[0], row[2]))
    asked: Counter = Counter()
    shown: Dict[str, str] = {}
    for (said,) in shop.execute(select(DemandSignal.asked).where(
            DemandSignal.kind == "not_carried", *in_period)):
        key = normalise(said or "")
        if key:
            asked[key] += 1
            shown.setdefault(key, said.strip())
    not_carried = [(shown[key], n) for key, n in asked.most_common(TOP * 2)]
    alerts = shop.execute(
        select(Product.name, func.count()).select_from(StockAlert)
        .join(Variant, Variant.id == StockAlert.variant_id).join(Product, Product.id == Variant.product_id)
        .where(StockAlert.created_at >= since, StockAlert.created_at < until)
        .group_by(Product.name).order_by(func.count().desc(), Product.name).limit(TOP * 2)).all()
    holds: Dict[str, List[int]] = defaultdict(lambda: [0, 0])
    for name, status, count in shop.execute(
            select(Product.name, Reservation.status, func.count()).select_from(Reservation)
            .join(Variant, Variant.id == Reservation.variant_id)
            .join(Product, Product.id == Variant.product_id)
            .where(Reservation.created_at >= since, Reservation.created_at < until)
            .group_by(Product.name, Reservation.status)):
        holds[name][0] += count
        if status == "collected":
            holds[name][1] += count
    held = sorted(((name, made, collected) for name, (made, collected) in holds.items()),
                  key=lambda row: (-row[1], row[0]))[:TOP * 2]
    return not_available, not_carried, [tuple(a) for a in alerts], held


def parse_period(start: Optional[str], end: Optional[str], today: dt.date,
                 default_days: int = 30) -> Tuple[dt.date, dt.date]:
    """A period from the console's query (`?du=2026-11-01&au=2026-11-30`); the last
    `default_days` days when not given."""
    last = dt.date.fromisoformat(end) if end else today
    first = dt.date.fromisoformat(start) if start else last - dt.timedelta(days=default_days - 1)
    return first, last


def _cell(value: Any) -> Any:
    """A spreadsheet must not run what a shopper typed ("=HYPERLINK(...)")."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_text(headers: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """A table as CSV (semicolons and a BOM: what French spreadsheets open as is)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(list(headers))
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return out.getvalue()
