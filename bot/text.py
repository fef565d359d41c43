"""Small text helpers shared by services: normalisation and French formatting."""
from __future__ import annotations

import datetime as dt
import re
import unicodedata

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


def clip(value: str, limit: int = 60) -> str:
    """A customer's words, made safe to quote back: one line, bounded length."""
    single = " ".join(value.split())
    return single if len(single) <= limit else single[: limit - 1] + "…"
