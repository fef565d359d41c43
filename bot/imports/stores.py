"""`python -m bot import stores FILE`: the store list as the business-profile bulk sheet
keeps it (CSV or TSV, Google Business Profile's column names):

    Store code, Business name, Address line 1, [Address line 2], Locality, Postal code,
    [Latitude], [Longitude], [Primary phone], [Monday hours] ... [Sunday hours],
    [Special hours], [Labels]

Hours are "09:00-19:00" or several spans "09:30-12:30,14:00-19:00"; "x" (or an empty
cell) is closed that day. Special hours list days: "2026-12-24: 09:00-16:00, 2026-12-25:
x". Stores are matched by their code: new ones are added, changed ones updated (their
weekly hours replaced), special days added or changed; nothing else is removed. A store
without coordinates is kept without them (no distance is computed for it), and said so.
The online shop's warehouse is the row labelled `online` (Labels column); there is one.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.core.models import Store, StoreClosure, StoreHours
from bot.imports.feed import Problem, Report, RowError, finish, read_rows, with_progress

REQUIRED = ("Store code", "Business name", "Address line 1", "Locality", "Postal code")
DAYS = ("Monday hours", "Tuesday hours", "Wednesday hours", "Thursday hours", "Friday hours",
        "Saturday hours", "Sunday hours")
CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
TIME_RE = re.compile(r"^(\d{1,2})[:h](\d{2})$")
CLOSED = ("", "x", "fermé", "ferme", "closed")
ONLINE_LABELS = {"online", "en ligne"}
Span = Tuple[dt.time, dt.time]


@dataclass
class StoreRow:
    code: str
    name: str
    address: str
    city: str
    postcode: str
    latitude: Optional[float]
    longitude: Optional[float]
    phone: Optional[str]
    hours: List[Tuple[int, dt.time, dt.time]] = field(default_factory=list)
    special: Dict[dt.date, Optional[Span]] = field(default_factory=dict)  # None: closed
    kind: str = "store"  # or "online": the online shop's warehouse


def _time(text: str, column: str, cell: str) -> dt.time:
    match = TIME_RE.match(text.strip())
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise RowError(column, f"« {cell} » n'est pas un horaire (par exemple 09:00-19:00)")
    return dt.time(int(match.group(1)), int(match.group(2)))


def parse_spans(cell: str, column: str) -> List[Span]:
    """"09:30-12:30,14:00-19:00" -> two spans; closed -> none."""
    if cell.strip().lower() in CLOSED:
        return []
    spans = []
    for part in cell.split(","):
        if part.count("-") != 1:
            raise RowError(column, f"« {cell} » n'est pas un horaire (par exemple 09:00-19:00)")
        opens, closes = (_time(t, column, cell) for t in part.split("-"))
        if closes <= opens:
            raise RowError(column, f"« {cell} » ferme avant d'ouvrir")
        spans.append((opens, closes))
    return spans


def parse_special(cell: str, column: str = "Special hours") -> Dict[dt.date, Optional[Span]]:
    special: Dict[dt.date, Optional[Span]] = {}
    for entry in (e.strip() for e in re.split(r",\s*(?=\d{4}-)", cell) if e.strip()):
        day_text, _, hours = entry.partition(":")
        try:
            day = dt.date.fromisoformat(day_text.strip())
        except ValueError:
            raise RowError(column, f"« {entry} » : jour attendu sous la forme 2026-12-24") from None
        spans = parse_spans(hours, column)
        if len(spans) > 1:
            raise RowError(column, f"« {entry} » : une seule plage par jour exceptionnel")
        special[day] = spans[0] if spans else None
    return special


def _coordinate(cell: str, column: str, limit: float) -> Optional[float]:
    if not cell:
        return None
    try:
        value = float(cell.replace(",", "."))
    except ValueError:
        raise RowError(column, f"« {cell} » n'est pas une coordonnée") from None
    if not -limit <= value <= limit:
        raise RowError(column, f"« {cell} » est hors des limites (±{limit:g})")
    return value


def parse_row(row: Dict[str, str]) -> StoreRow:
    """One sheet row, checked; RowError names the first column at fault."""
    code = row["store code"]
    if not CODE_RE.match(code):
        raise RowError("Store code", f"« {code} » n'est pas un code de magasin (lettres, chiffres, -)")
    for column, limit in (("Business name", 120), ("Address line 1", 200), ("Locality", 80)):
        if not row[column.lower()]:
            raise RowError(column, "valeur manquante")
        if len(row[column.lower()]) > limit:
            raise RowError(column, f"plus de {limit} caractères")
    postcode = row["postal code"]
    if not re.fullmatch(r"\d{5}", postcode):
        raise RowError("Postal code", f"« {postcode} » n'est pas un code postal")
    latitude = _coordinate(row.get("latitude", ""), "Latitude", 90)
    longitude = _coordinate(row.get("longitude", ""), "Longitude", 180)
    if (latitude is None) != (longitude is None):
        raise RowError("Latitude" if latitude is None else "Longitude",
                       "latitude et longitude vont ensemble")
    phone = row.get("primary phone", "") or None
    if phone is not None and not re.fullmatch(r"\+?[\d .]{6,20}", phone):
        raise RowError("Primary phone", f"« {phone} » n'est pas un numéro de téléphone")
    address = ", ".join(v for v in (row["address line 1"], row.get("address line 2", "")) if v)
    store = StoreRow(code=code, name=row["business name"], address=address[:200],
                     city=row["locality"], postcode=postcode, latitude=latitude,
                     longitude=longitude, phone=phone.replace(" ", "").replace(".", "") if phone else None)
    for weekday, column in enumerate(DAYS):
        store.hours += [(weekday, opens, closes)
                        for opens, closes in parse_spans(row.get(column.lower(), ""), column)]
    store.special = parse_special(row.get("special hours", ""))
    labels = {label.strip().lower() for label in re.split(r"[,;]", row.get("labels", ""))}
    store.kind = "online" if labels & ONLINE_LABELS else "store"
    return store


def _apply(session: Session, row: StoreRow) -> Optional[str]:
    """Write one store; "added", "updated", or None when it was already so."""
    store = session.execute(select(Store).where(Store.code == row.code)).scalar_one_or_none()
    outcome = None
    if store is None:
        store = Store(code=row.code, kind=row.kind)
        session.add(store)
        outcome = "added"
    fields = {"name": row.name, "address": row.address, "city": row.city, "postcode": row.postcode,
              "latitude": row.latitude, "longitude": row.longitude, "phone": row.phone}
    if any(getattr(store, key) != value for key, value in fields.items()):
        for key, value in fields.items():
            setattr(store, key, value)
        outcome = outcome or "updated"
    session.flush()
    current = sorted((h.weekday, h.opens_at, h.closes_at) for h in store.hours)
    if current != sorted(row.hours):
        store.hours = [StoreHours(weekday=w, opens_at=o, closes_at=c) for w, o, c in row.hours]
        outcome = outcome or "updated"
    closures = {c.day: c for c in store.closures}
    for day, span in sorted(row.special.items()):
        opens, closes = span if span else (None, None)
        reason = "Horaires exceptionnels" if span else "Fermeture exceptionnelle"
        known = closures.get(day)
        if known is None:
            store.closures.append(StoreClosure(day=day, reason=reason, opens_at=opens, closes_at=closes))
            outcome = outcome or "updated"
        elif (known.opens_at, known.closes_at) != (opens, closes):
            known.opens_at, known.closes_at, known.reason = opens, closes, reason
            outcome = outcome or "updated"
    return outcome


def _kind_refusal(row: StoreRow, online: Set[str]) -> Optional[str]:
    """Why a row cannot have its kind: the online shop stays labelled, and is one."""
    if row.code in online and row.kind != "online":
        return f"« {row.code} » est la boutique en ligne : libellé online attendu"
    if row.kind == "online" and online - {row.code}:
        return "il y a déjà une boutique en ligne"
    return None


def import_stores(factory: sessionmaker, path: Path, dry_run: bool = False,
                  skip_invalid: bool = False) -> Report:
    """Check every row, then write all of them in one transaction, or none."""
    report = Report("magasins")
    rows: List[StoreRow] = []
    seen: Dict[str, int] = {}
    for line, raw in read_rows(path, REQUIRED):
        try:
            row = parse_row(raw)
        except RowError as error:
            report.problems.append(Problem(line, error.column, str(error)))
            continue
        if row.code in seen:
            report.problems.append(Problem(line, "Store code", f"« {row.code} » figure déjà "
                                                               f"ligne {seen[row.code]}"))
            continue
        seen[row.code] = line
        if row.latitude is None:
            report.notes.append(Problem(line, "Latitude", "coordonnées absentes : ce magasin "
                                        "n'entre pas dans les calculs de distance"))
        rows.append(row)
    with factory() as session:
        online = set(session.execute(select(Store.code).where(Store.kind == "online")).scalars())
        for row in with_progress(rows, "magasins"):
            refusal = _kind_refusal(row, online)
            if refusal:
                report.problems.append(Problem(seen[row.code], "Labels", refusal))
                continue
            if row.kind == "online":
                online.add(row.code)
            outcome = _apply(session, row)
            if outcome == "added":
                report.added.append(row.code)
            elif outcome == "updated":
                report.updated.append(row.code)
            else:
                report.unchanged += 1
        finish(session, report, dry_run, skip_invalid)
    return report
