"""`python -m bot import customers FILE` and `import consents FILE`: loyalty members and
their consents from a CRM export (CSV or TSV).

customers: `card` (12 digits), `first_name`, `last_name`, `email`, `phone`, `home_store`
(a store code), `preferred_channel` (email, sms, post, telegram, web), `birthday` (day
and month: "12/03", "--03-12", or a full date whose year is dropped), `status` (active,
pending or suspended; active by default), `points` (the loyalty balance). Members are
matched by card number.

consents: `card`, `purpose` (offers, birthday, back_in_stock, personalisation),
`channel`, `state` (granted or withdrawn), `when` (the date the customer decided),
`source` (where: "formulaire magasin LYS-PDI", "site web"). Each change is written to the
consent ledger as an import, with its evidence; a consent already in that state is left
alone, so importing the same file twice records nothing twice.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Dict, List, Optional

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from bot.core.models import CONSENT_CHANNELS, CONSENT_PURPOSES, Customer, Store
from bot.customers.birthday import read_birthday
from bot.customers.consent import set_consent
from bot.customers.verification import EMAIL_RE, normalise_phone
from bot.imports.feed import Problem, Report, RowError, finish, read_rows, with_progress

CUSTOMER_COLUMNS = ("card",)
CONSENT_COLUMNS = ("card", "purpose", "channel", "state", "when", "source")
STATUSES = ("active", "pending", "suspended")
STATES = {"granted": True, "accordé": True, "oui": True, "withdrawn": False, "retiré": False,
          "non": False}
IMPORT_SOURCE = "import"  # the consent ledger's source channel for imported decisions
IMPORT_WORDING = "import-crm"


def _card(row: Dict[str, str]) -> str:
    card = row["card"].replace(" ", "")
    if not re.fullmatch(r"\d{12}", card):
        raise RowError("card", f"« {row['card']} » n'est pas un numéro de carte (12 chiffres)")
    return card


def day_and_month(cell: str) -> Optional[dt.date]:
    """The birthday, day and month only (bot.customers.birthday reads every form)."""
    if not cell:
        return None
    day = read_birthday(cell)
    if day is None:
        if re.search(r"\d", cell):
            raise RowError("birthday", f"« {cell} » n'est pas une date qui existe")
        raise RowError("birthday", f"« {cell} » n'est pas un anniversaire (12/03 ou --03-12)")
    return day


def _member(row: Dict[str, str], stores: Dict[str, int]) -> Dict[str, object]:
    """The member's fields from the columns the file has: a column the export leaves out
    changes nothing (an empty cell in a column it has clears that field)."""
    values = _member_values(row, stores)
    columns = {"loyalty_card": "card", "home_store_id": "home_store", "loyalty_status": "status",
               "loyalty_points": "points"}
    return {key: value for key, value in values.items() if columns.get(key, key) in row}


def _member_values(row: Dict[str, str], stores: Dict[str, int]) -> Dict[str, object]:
    values: Dict[str, object] = {"loyalty_card": _card(row)}
    for column in ("first_name", "last_name"):
        name = row.get(column, "")
        if len(name) > 80 or any(c.isdigit() for c in name):
            raise RowError(column, f"« {name[:40]} » n'est pas un nom")
        values[column] = name or None
    email = row.get("email", "").lower()
    if email and not EMAIL_RE.fullmatch(email):
        raise RowError("email", f"« {email[:60]} » n'est pas une adresse e-mail")
    values["email"] = email or None
    phone = row.get("phone", "")
    values["phone"] = normalise_phone(phone) if phone else None
    if phone and values["phone"] is None:
        raise RowError("phone", f"« {phone} » n'est pas un numéro de mobile")
    store = row.get("home_store", "")
    if store and store not in stores:
        raise RowError("home_store", f"« {store} » n'est pas un magasin connu")
    values["home_store_id"] = stores.get(store)
    channel = row.get("preferred_channel", "").lower()
    if channel and channel not in CONSENT_CHANNELS:
        raise RowError("preferred_channel", f"« {channel} » n'est pas un canal "
                                            f"({', '.join(CONSENT_CHANNELS)})")
    values["preferred_channel"] = channel or None
    values["birthday"] = day_and_month(row.get("birthday", ""))
    status = row.get("status", "").lower() or "active"
    if status not in STATUSES:
        raise RowError("status", f"« {status} » n'est pas un statut ({', '.join(STATUSES)})")
    values["loyalty_status"] = status
    points = row.get("points", "") or "0"
    if not points.isdigit() or int(points) > 10_000_000:
        raise RowError("points", f"« {points} » n'est pas un nombre de points")
    values["loyalty_points"] = int(points)
    return values


def import_customers(factory: sessionmaker, path: Path, dry_run: bool = False,
                     skip_invalid: bool = False) -> Report:
    report = Report("clients")
    rows = read_rows(path, CUSTOMER_COLUMNS)
    with factory() as session:
        stores = dict(session.execute(select(Store.code, Store.id)).all())
        members: List[tuple] = []
        seen: Dict[str, int] = {}
        for line, raw in rows:
            try:
                values = _member(raw, stores)
            except RowError as error:
                report.problems.append(Problem(line, error.column, str(error)))
                continue
            card = values["loyalty_card"]
            if card in seen:
                report.problems.append(Problem(line, "card", f"« {card} » figure déjà ligne {seen[card]}"))
                continue
            seen[card] = line
            members.append((line, values))
        for line, values in with_progress(members, "clients"):
            customer = session.execute(select(Customer).where(
                Customer.loyalty_card == values["loyalty_card"])).scalar_one_or_none()
            for column in ("email", "phone"):
                if values.get(column) is None:
                    continue
                other = session.execute(select(Customer.loyalty_card).where(
                    getattr(Customer, column) == values[column])).scalar_one_or_none()
                if other is not None and other != values["loyalty_card"]:
                    report.problems.append(Problem(line, column, f"déjà celui de la carte {other}"))
                    break
            else:
                if customer is None:
                    values.setdefault("loyalty_status", "active")
                    session.add(Customer(**values))
                    report.added.append(str(values["loyalty_card"]))
                elif any(getattr(customer, key) != value for key, value in values.items()):
                    for key, value in values.items():
                        setattr(customer, key, value)
                    report.updated.append(str(values["loyalty_card"]))
                else:
                    report.unchanged += 1
                session.flush()
        finish(session, report, dry_run, skip_invalid)
    return report


def import_consents(factory: sessionmaker, path: Path, dry_run: bool = False,
                    skip_invalid: bool = False) -> Report:
    report = Report("consentements")
    rows = read_rows(path, CONSENT_COLUMNS)
    with factory() as session:
        cards = dict(session.execute(select(Customer.loyalty_card, Customer.id).where(
            Customer.erased_at.is_(None), Customer.loyalty_card.is_not(None))).all())
        for line, raw in with_progress(rows, "consentements"):
            try:
                card = _card(raw)
                if card not in cards:
                    raise RowError("card", f"« {card} » n'est pas une carte connue (importez les "
                                           "clients d'abord)")
                purpose, channel = raw["purpose"].lower(), raw["channel"].lower()
                if purpose not in CONSENT_PURPOSES:
                    raise RowError("purpose", f"« {purpose} » n'est pas un usage "
                                              f"({', '.join(CONSENT_PURPOSES)})")
                if channel not in CONSENT_CHANNELS:
                    raise RowError("channel", f"« {channel} » n'est pas un canal "
                                              f"({', '.join(CONSENT_CHANNELS)})")
                if raw["state"].lower() not in STATES:
                    raise RowError("state", f"« {raw['state']} » : granted ou withdrawn attendu")
                try:
                    when = dt.datetime.fromisoformat(raw["when"])
                except ValueError:
                    raise RowError("when", f"« {raw['when']} » n'est pas une date (2026-03-12 "
                                           "ou 2026-03-12T10:00)") from None
                if not raw["source"] or len(raw["source"]) > 100:
                    raise RowError("source", "la provenance est obligatoire (100 caractères au plus)")
            except RowError as error:
                report.problems.append(Problem(line, error.column, str(error)))
                continue
            evidence = f"{raw['source']} ; décidé le {when.isoformat(timespec='minutes')}"
            changed = set_consent(session, purpose, channel, STATES[raw["state"].lower()],
                                  customer_id=cards[card], source_channel=IMPORT_SOURCE,
                                  source_conversation=evidence[:128], wording_version=IMPORT_WORDING)
            if changed:
                report.updated.append(f"{card} {purpose}/{channel}")
            else:
                report.unchanged += 1
        finish(session, report, dry_run, skip_invalid)
    return report
