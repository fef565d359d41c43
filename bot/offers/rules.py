"""The offer rules, kept as data in `bot/offers/offer_rules.yml` (OFFER_RULES names another
file): the birthday window, quiet hours, the generic and personalised offers, the
loyalty reward. Read and checked once at start-up.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Tuple

import yaml

from bot.core.settings import DEFAULT_OFFER_RULES


RULES_FILE = DEFAULT_OFFER_RULES
DEFAULT_TIMEZONE = "Europe/Paris"


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
