"""Small text helpers shared by services: normalisation and French formatting."""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Optional

WEEKDAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
MONTHS_FR = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
             "septembre", "octobre", "novembre", "décembre")


def normalise(value: str) -> str:
    """Lower case, no accents, punctuation and hyphens as spaces, single spaces."""
    plain = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    plain = re.sub(r"[^a-z0-9]+", " ", plain.lower())
    return plain.strip()


def format_time(value: dt.time) -> str:
    return f"{value.hour}h{value.minute:02d}" if value.minute else f"{value.hour}h"


def format_date(value: dt.date) -> str:
    day = "1er" if value.day == 1 else str(value.day)
    return f"{WEEKDAYS_FR[value.weekday()]} {day} {MONTHS_FR[value.month - 1]}"


def format_count(value: int) -> str:
    """A whole number the French way: 1 234 567."""
    return f"{value:,}".replace(",", " ")


def format_euros(cents: int) -> str:
    """A price the French way: "140 €", "12,50 €"."""
    euros, rest = divmod(cents, 100)
    return f"{euros} €" if not rest else f"{euros},{rest:02d} €"


def clip(value: str, limit: int = 60) -> str:
    """A customer's words, made safe to quote back: one line, bounded length."""
    single = " ".join(value.split())
    return single if len(single) <= limit else single[: limit - 1] + "…"


def day_asked(text: str, today: dt.date) -> Optional[dt.date]:
    """The day a shopper asks about: "dimanche", "demain", "le 25 décembre", "25/12"."""
    plain = f" {normalise(text)} "
    if " apres demain " in plain:
        return today + dt.timedelta(days=2)
    if " demain " in plain:
        return today + dt.timedelta(days=1)
    if " aujourd hui " in plain or " ce soir " in plain or " maintenant " in plain:
        return today
    months = [normalise(m) for m in MONTHS_FR]
    match = re.search(r" (1er|\d{1,2}) (" + "|".join(months) + r") ", plain)
    numeric = re.search(r"\b(\d{1,2})/(\d{1,2})\b", text)
    if match or numeric:
        if match:
            day = 1 if match.group(1) == "1er" else int(match.group(1))
            month = months.index(match.group(2)) + 1
        else:
            day, month = int(numeric.group(1)), int(numeric.group(2))
        for year in (today.year, today.year + 1):
            try:
                candidate = dt.date(year, month, day)
            except ValueError:
                return None
            if candidate >= today:
                return candidate
        return None
    for index, name in enumerate(WEEKDAYS_FR):
        if f" {name} " in plain:
            return today + dt.timedelta(days=(index - today.weekday()) % 7)
    return None
