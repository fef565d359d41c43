"""Support hours: when agents answer, in the shop's time zone ("lun-sam 09:00-19:00"),
and how that is said to a shopper."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import List
from zoneinfo import ZoneInfo

from bot.core.text import WEEKDAYS_FR, format_time

DAYS = {"lun": 0, "mar": 1, "mer": 2, "jeu": 3, "ven": 4, "sam": 5, "dim": 6}
HOURS_RE = re.compile(r"^(lun|mar|mer|jeu|ven|sam|dim)-(lun|mar|mer|jeu|ven|sam|dim) "
                      r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


@dataclass(frozen=True)
class SupportHours:
    """When agents answer, in the shop's time zone: "lun-sam 09:00-19:00"."""

    first_day: int
    last_day: int
    opens: dt.time
    closes: dt.time
    timezone: str = "Europe/Paris"

    @classmethod
    def parse(cls, text: str, timezone: str = "Europe/Paris") -> "SupportHours":
        match = HOURS_RE.match(text.strip().lower())
        if not match:
            raise ValueError("expected a value like 'lun-sam 09:00-19:00'")
        first, last, oh, om, ch, cm = match.groups()
        return cls(DAYS[first], DAYS[last], dt.time(int(oh), int(om)), dt.time(int(ch), int(cm)),
                   timezone)

    def _days(self) -> List[int]:
        days, day = [], self.first_day
        while True:
            days.append(day)
            if day == self.last_day:
                return days
            day = (day + 1) % 7

    def is_open(self, now: dt.datetime) -> bool:
        """Open now? "00:00-00:00" means around the clock on those days."""
        local = now.astimezone(ZoneInfo(self.timezone))
        if local.weekday() not in self._days():
            return False
        return self.opens == self.closes or self.opens <= local.time() < self.closes

    def next_opening(self, now: dt.datetime) -> dt.datetime:
        local = now.astimezone(ZoneInfo(self.timezone))
        for offset in range(8):
            day = local.date() + dt.timedelta(days=offset)
            start = dt.datetime.combine(day, self.opens, tzinfo=local.tzinfo)
            if day.weekday() in self._days() and start > local:
                return start
        raise AssertionError("support hours never open")

    def describe_next(self, now: dt.datetime) -> str:
        start = self.next_opening(now)
        local = now.astimezone(ZoneInfo(self.timezone))
        when = ("aujourd'hui" if start.date() == local.date() else
                "demain" if start.date() == local.date() + dt.timedelta(days=1) else
                WEEKDAYS_FR[start.weekday()])
        return f"{when} à partir de {format_time(start.time())}"

    def describe(self) -> str:
        """ "lundi au samedi de 9 h à 19 h"."""
        return (f"{WEEKDAYS_FR[self.first_day]} au {WEEKDAYS_FR[self.last_day]} de "
                f"{format_time(self.opens)} à {format_time(self.closes)}")


@lru_cache(maxsize=8)
def support_hours(text: str, timezone: str) -> SupportHours:
    """SUPPORT_HOURS parsed once per value (checked at start-up by the command line)."""
    return SupportHours.parse(text, timezone)


def wait_text(minutes: int) -> str:
    return "moins de 5 minutes" if minutes <= 4 else f"environ {minutes} minutes"
