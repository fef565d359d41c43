"""A customer's birthday, day and month only: read from what a shopper writes ("12 mars",
"1er avril", "12/03", "12/03/1985", "--03-12": a year given is not kept) and said back ("12 mars").
A birthday offer needs no year, and no answer or export needs the customer's age."""
from __future__ import annotations

import datetime as dt
import re
from typing import Optional

from bot.core.models import BIRTHDAY_NO_YEAR
from bot.core.text import MONTHS_FR, normalise

MONTHS_PLAIN = [normalise(m) for m in MONTHS_FR]


def read_birthday(text: str) -> Optional[dt.date]:
    """The day and month written, as a date in BIRTHDAY_NO_YEAR; None without one. ISO
    forms ("1985-03-12", "--03-12") are read month first, the French ones day first."""
    plain = f" {normalise(text)} "
    named = re.search(r" (1er|\d{1,2}) (" + "|".join(MONTHS_PLAIN) + r")(?: \d{4})? ", plain)
    iso = re.search(r"(?<![\d-])(?:\d{4}-|--)(\d{2})-(\d{2})(?!\d)", text)
    numeric = re.search(r"\b(\d{1,2})[/.-](\d{1,2})(?:[/.-](?:\d{4}|\d{2}))?\b", text)
    if named:
        day = 1 if named.group(1) == "1er" else int(named.group(1))
        month = MONTHS_PLAIN.index(named.group(2)) + 1
    elif iso:
        month, day = int(iso.group(1)), int(iso.group(2))
    elif numeric:
        day, month = int(numeric.group(1)), int(numeric.group(2))
    else:
        return None
    try:
        return dt.date(BIRTHDAY_NO_YEAR, month, day)
    except ValueError:  # 31/02, 12/13
        return None


def format_birthday(value: dt.date) -> str:
    """ "12 mars", "1er avril": never a year."""
    day = "1er" if value.day == 1 else str(value.day)
    return f"{day} {MONTHS_FR[value.month - 1]}"


def iso_day_month(value: dt.date) -> str:
    """ISO 8601's form for a day of the year without a year: "--03-12"."""
    return f"--{value.month:02d}-{value.day:02d}"
