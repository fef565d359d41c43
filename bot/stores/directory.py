"""Stores: find a store by city or name, and describe its opening hours in French."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple
from zoneinfo import ZoneInfo

from rapidfuzz import fuzz
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot.core.models import Store
from bot.core.text import WEEKDAYS_FR, format_date, format_time, normalise  # noqa: F401 (re-export)

Span = Tuple[dt.time, dt.time]


@dataclass(frozen=True)
class StoreHoursView:
    code: str
    name: str
    address: str
    postcode: str
    city: str
    weekly: Tuple[Tuple[Span, ...], ...]  # index 0 = Monday
    today_line: str
    upcoming_closures: Tuple[str, ...]


def _stores(session: Session) -> List[Store]:
    query = (select(Store).where(Store.kind == "store")
             .options(selectinload(Store.hours), selectinload(Store.closures)))
    return list(session.execute(query).scalars())


def find_stores(session: Session, query: str, limit: int = 3) -> List[Store]:
    """Stores matching a city or store name, tolerant of accents, case and typos."""
    wanted = normalise(query)
    if not wanted:
        return []
    stores = _stores(session)
    by_city = [s for s in stores if normalise(s.city) == wanted]
    if by_city:
        return by_city[:limit]
    by_name = [s for s in stores if normalise(s.name) == wanted]
    if by_name:
        return by_name
    if len(wanted) >= 3:
        # "aix" for Aix-en-Provence, "part dieu" for Lyon Part-Dieu
        contained = [s for s in stores
                     if f" {wanted} " in f" {normalise(s.name)} {normalise(s.city)} "
                     or normalise(s.city).startswith(wanted + " ")]
        if contained:
            return contained[:limit]

    def score(store: Store) -> float:
        return max(fuzz.ratio(wanted, normalise(store.city)),
                   fuzz.token_set_ratio(wanted, normalise(store.name)))

    scored = sorted(((score(s), s.id, s) for s in stores), key=lambda item: (-item[0], item[1]))
    best = scored[0][0] if scored else 0
    if best < 80:
        return []
    return [s for value, _id, s in scored if value >= best - 3][:limit]


def place_named_in(session: Session, text: str) -> Optional[str]:
    """The store name or city a message names word for word ("horaires du magasin de lille
    svp"), longest first, for when the NLU extracted no city."""
    plain = f" {normalise(text)} "
    names = {normalise(name) for store in _stores(session) for name in (store.name, store.city)}
    return next((name for name in sorted(names, key=len, reverse=True)
                 if name and f" {name} " in plain), None)


def cities(session: Session) -> List[str]:
    return sorted({s.city for s in _stores(session)})


def _describe_week(weekly: Sequence[Sequence[Span]]) -> str:
    def spans_text(spans: Sequence[Span]) -> str:
        if not spans:
            return "fermé"
        return " et ".join(f"{format_time(a)}–{format_time(b)}" for a, b in spans)

    parts, start = [], 0
    for day in range(1, 8):
        if day == 7 or tuple(weekly[day]) != tuple(weekly[start]):
            label = WEEKDAYS_FR[start] if day - 1 == start else \
                f"du {WEEKDAYS_FR[start]} au {WEEKDAYS_FR[day - 1]}"
            parts.append(f"{label} : {spans_text(weekly[start])}")
            start = day
    return " ; ".join(parts)


def hours_view(store: Store, now: dt.datetime) -> StoreHoursView:
    """Opening hours of `store` as seen at `now` (aware datetime)."""
    local = now.astimezone(ZoneInfo(store.timezone))
    weekly = tuple(
        tuple(sorted((h.opens_at, h.closes_at) for h in store.hours if h.weekday == day))
        for day in range(7)
    )
    closures = {c.day: c for c in store.closures}
    today = local.date()
    special = closures.get(today)
    if special is not None and special.opens_at is None:
        today_line = f"fermé aujourd'hui ({special.reason})"
    else:
        spans = ((special.opens_at, special.closes_at),) if special else weekly[today.weekday()]
        current = local.time().replace(tzinfo=None)
        if not spans:
            today_line = "fermé aujourd'hui"
        elif any(a <= current < b for a, b in spans):
            today_line = f"ouvert en ce moment, jusqu'à {format_time(next(b for a, b in spans if a <= current < b))}"
        else:
            today_line = "aujourd'hui : " + " et ".join(
                f"{format_time(a)}–{format_time(b)}" for a, b in spans)
            if all(current >= b for _a, b in spans):
                today_line += " (fermé à cette heure)"
    upcoming = []
    for day in sorted(closures):
        if today < day <= today + dt.timedelta(days=14):
            closure = closures[day]
            if closure.opens_at is None:
                upcoming.append(f"fermé le {format_date(day)} ({closure.reason})")
            else:
                upcoming.append(f"le {format_date(day)} ({closure.reason}) : "
                                f"{format_time(closure.opens_at)}–{format_time(closure.closes_at)}")
    return StoreHoursView(store.code, store.name, store.address, store.postcode, store.city,
                          weekly, today_line, tuple(upcoming))


def hours_on(store: Store, day: dt.date) -> str:
    """Opening of `store` on `day`, exceptional closures and special hours included."""
    closure = next((c for c in store.closures if c.day == day), None)
    if closure is not None and closure.opens_at is None:
        return f"fermé ({closure.reason})"
    if closure is not None:
        return f"{format_time(closure.opens_at)}–{format_time(closure.closes_at)} ({closure.reason})"
    spans = sorted((h.opens_at, h.closes_at) for h in store.hours if h.weekday == day.weekday())
    if not spans:
        return "fermé"
    return "ouvert " + " et ".join(f"{format_time(a)}–{format_time(b)}" for a, b in spans)


def describe_hours(view: StoreHoursView, day_line: Optional[str] = None) -> str:
    lines = [f"{view.name} — {view.address}, {view.postcode} {view.city}"]
    if day_line:
        lines.append(day_line)
    lines += [f"{view.today_line[0].upper()}{view.today_line[1:]}.",
              f"Horaires : {_describe_week(view.weekly)}."]
    if view.upcoming_closures:
        lines.append("À noter : " + " ; ".join(view.upcoming_closures) + ".")
    return "\n".join(lines)


def store_hours_answer(session: Session, query: str, now: dt.datetime,
                       day: Optional[dt.date] = None) -> Optional[List[str]]:
    """French texts describing the stores matching `query`, or None when none matches.

    With `day` (asked by the shopper), the opening on that day comes first.
    """
    stores = find_stores(session, query)
    if not stores:
        return None
    texts = []
    for store in stores:
        view = hours_view(store, now)
        local_today = now.astimezone(ZoneInfo(store.timezone)).date()
        day_line = None
        if day is not None and day != local_today:
            day_line = f"Le {format_date(day)} : {hours_on(store, day)}."
        texts.append(describe_hours(view, day_line))
    return texts
