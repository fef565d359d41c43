"""The review inbox: misunderstood messages grouped by likeness, labelled by staff, and
the labels turned into training data.

Reviewed training data is a table exported at training, not a file the console writes
under `nlu_data/`: several gateways (and a read-only checkout in production) can label
at once, a label can be undone, and an erasure removes the customer's messages from the
next training as well. `python -m bot train` writes the labelled messages to
`var/reviewed/nlu.yml` (sorted, so an unchanged set keeps the model's hash) and trains
on it beside `nlu_data/`.

The texts were masked before they were stored; the export puts a plausible value of
the same shape where a marker stands ("[e-mail]" -> "prenom.nom@example.org"), so the
model learns from sentences shaped like those it will read.
"""
from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import yaml
from rapidfuzz import fuzz, process
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.assistant.fallback import CHOICES
from bot.core.models import ReviewMessage
from bot.core.settings import PROJECT_ROOT
from bot.core.text import normalise

OUT_OF_SCOPE = "out_of_scope"
IGNORE = "ignorer"
SIMILAR = 80  # token_sort_ratio of two normalised texts for one group
MAX_GROUPED = 2000  # the newest messages waiting; older ones come as these are labelled
# Intents no reviewer would give a written message (button payloads, internal).
NOT_LABELS = {"nlu_fallback", "session_start"}
ENTITY_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")
PLACEHOLDERS = {"[e-mail]": "prenom.nom@example.org", "[téléphone]": "06 12 34 56 78",
                "[carte]": "8000 0000 0001", "[code]": "482913", "[adresse]": "12 rue de la Paix",
                "[date]": "14/03/1990", "[lien d'export]": "le lien", "[message masqué]": ""}


@dataclass
class Group:
    """Messages that say much the same thing, newest first, with what the model guessed."""

    text: str  # the newest message, shown for the group
    ids: List[int] = field(default_factory=list)
    guesses: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    channels: Counter = field(default_factory=Counter)
    first_seen: Optional[dt.datetime] = None
    last_seen: Optional[dt.datetime] = None
    examples: List[str] = field(default_factory=list)  # up to five other wordings

    def as_dict(self) -> Dict[str, object]:
        guess = self.guesses.most_common(1)[0][0] if self.guesses else None
        return {"text": self.text, "ids": self.ids, "count": len(self.ids), "guess": guess,
                "guess_title": TITLES.get(guess, guess) if guess not in (None, "?") else None,
                "reasons": dict(self.reasons), "channels": dict(self.channels),
                "first_seen": self.first_seen.isoformat() if self.first_seen else None,
                "last_seen": self.last_seen.isoformat() if self.last_seen else None,
                "examples": self.examples}


def groups(session: Session, limit: int = 50) -> List[Group]:
    """Messages waiting for review, similar ones together, the most frequent first."""
    rows = session.execute(select(ReviewMessage).where(ReviewMessage.status == "new")
                           .order_by(ReviewMessage.created_at.desc(), ReviewMessage.id.desc())
                           .limit(MAX_GROUPED)).scalars().all()
    found: List[Group] = []
    keys: List[str] = []
    for row in rows:
        key = normalise(row.text)
        match = process.extractOne(key, keys, scorer=fuzz.token_sort_ratio,
                                   score_cutoff=SIMILAR) if keys else None
        if match is None:
            group = Group(text=row.text, last_seen=row.created_at)
            found.append(group)
            keys.append(key)
        else:
            group = found[match[2]]
            if len(group.examples) < 5 and row.text != group.text and row.text not in group.examples:
                group.examples.append(row.text)
        group.ids.append(row.id)
        group.guesses[row.guess or "?"] += 1
        group.reasons[row.reason] += 1
        group.channels[row.channel] += 1
        group.first_seen = row.created_at
    found.sort(key=lambda g: (-len(g.ids), -(g.last_seen.timestamp() if g.last_seen else 0)))
    return found[:limit]


# Labels ---------------------------------------------------------------------------------

# What a reviewer reads for each intent (the clarifying question's wording, and the rest).
TITLES: Dict[str, str] = {
    **CHOICES, OUT_OF_SCOPE: "Hors sujet (pas une question pour Comptoir)",
    "greet": "Salutation", "goodbye": "Au revoir", "thank": "Remerciement",
    "bot_challenge": "Demande s'il parle à un robot", "affirm": "Oui", "deny": "Non",
    "inform": "Précision (ville, taille, couleur…)", "handover_contact": "Rappel ou réponse écrite",
    "verify_identity": "Donne son e-mail ou son téléphone", "give_code": "Donne un code reçu",
    "logout": "Se déconnecter", "give_birthday": "Donne sa date d'anniversaire",
    "nlu_fallback": "Non compris"}


@lru_cache(maxsize=4)
def _domain(root: Path) -> Dict[str, object]:
    return yaml.safe_load((root / "domain.yml").read_text(encoding="utf-8")) or {}


def intents(root: Path = PROJECT_ROOT) -> Tuple[str, ...]:
    """The intents a reviewer may choose: the domain's (one at a time)."""
    names = [i if isinstance(i, str) else next(iter(i)) for i in _domain(root).get("intents") or []]
    return tuple(n for n in names if n not in NOT_LABELS and "+" not in n)


ENTITY_TITLES = {"product": "produit", "size": "taille", "colour": "couleur", "city": "ville",
                 "postcode": "code postal", "quantity": "quantité", "code": "code reçu",
                 "alert_channel": "canal d'alerte", "contact": "rappel ou écrit",
                 "confirm": "confirmation", "field": "information à corriger", "date": "date"}


def entities(root: Path = PROJECT_ROOT) -> Tuple[str, ...]:
    return tuple(_domain(root).get("entities") or ())


def entity_choices(root: Path = PROJECT_ROOT) -> List[Dict[str, str]]:
    """The entities a reviewer may mark, in their words."""
    return [{"entity": name, "title": ENTITY_TITLES.get(name, name)} for name in entities(root)]


def choices(root: Path = PROJECT_ROOT) -> List[Dict[str, str]]:
    """The labels offered in the inbox, in the reviewer's words."""
    return sorted(({"intent": name, "title": TITLES.get(name, name)} for name in intents(root)),
                  key=lambda choice: choice["title"])


def plain_example(line: str) -> str:
    """A training example's words, without its entity annotations."""
    return ENTITY_ANNOTATION.sub(r"\1", line)


@lru_cache(maxsize=4)
def _training_examples(root: Path, stamp: Tuple[Tuple[str, float], ...]) -> Dict[str, str]:
    examples: Dict[str, str] = {}
    for name, _mtime in stamp:
        data = yaml.safe_load((root / name).read_text(encoding="utf-8")) or {}
        for block in data.get("nlu") or []:
            if not isinstance(block, dict) or "intent" not in block:
                continue
            for line in str(block.get("examples") or "").splitlines():
                line = line.strip()
                if line.startswith("- "):
                    examples.setdefault(normalise(plain_example(line[2:])), block["intent"])
    return examples


def training_examples(root: Path = PROJECT_ROOT) -> Dict[str, str]:
    """Every written training example of `nlu_data/`, normalised, with its intent."""
    files = sorted((root / "nlu_data").rglob("*.yml"))
    stamp = tuple((str(p.relative_to(root)), p.stat().st_mtime) for p in files)
    return _training_examples(root, stamp)


@dataclass(frozen=True)
class Labelled:
    done: int  # messages labelled (or ignored)
    conflicts: List[Tuple[str, str]]  # (message, the other intent it already stands under)


def label(session: Session, ids: Sequence[int], choice: str, agent_id: Optional[int],
          now: dt.datetime, entity: Optional[Tuple[int, str, int, int]] = None,
          root: Path = PROJECT_ROOT) -> Labelled:
    """Label messages with an intent, "out_of_scope" or "ignorer". Nothing is written when
    one of them already stands under another intent, in `nlu_data/` or in an earlier
    label: contradictory examples would teach the model nothing but doubt.

    `entity` marks one entity in one of the messages: (message id, entity, start, end).
    """
    if choice != IGNORE and choice not in intents(root):
        raise ValueError(f"unknown label {choice!r}")
    if entity is not None and entity[1] not in entities(root):
        raise ValueError(f"unknown entity {entity[1]!r}")
    rows = session.execute(select(ReviewMessage).where(
        ReviewMessage.id.in_(list(ids)), ReviewMessage.status == "new")).scalars().all()
    if choice == IGNORE:
        for row in rows:
            row.status, row.labelled_by, row.labelled_at = "ignored", agent_id, now
        return Labelled(len(rows), [])
    known = training_examples(root)
    reviewed = dict(session.execute(select(ReviewMessage.text, ReviewMessage.label).where(
        ReviewMessage.status == "labelled")).all())
    reviewed = {normalise(text): intent for text, intent in reviewed.items()}
    conflicts = []
    for row in rows:
        key = normalise(row.text)
        other = known.get(key) or reviewed.get(key)
        if other is not None and other != choice:
            conflicts.append((row.text, other))
    if conflicts:
        return Labelled(0, conflicts)
    for row in rows:
        row.status, row.label, row.labelled_by, row.labelled_at = "labelled", choice, agent_id, now
        if entity is not None and entity[0] == row.id:
            _, name, start, end = entity
            if not (0 <= start < end <= len(row.text)) or not row.text[start:end].strip():
                raise ValueError("the entity must cover words of the message")
            row.entity, row.entity_start, row.entity_end = name, start, end
    return Labelled(len(rows), [])


def unlabel(session: Session, ids: Iterable[int]) -> int:
    """Back to the inbox (a label given by mistake)."""
    return session.execute(update(ReviewMessage).where(ReviewMessage.id.in_(list(ids)))
                           .values(status="new", label=None, entity=None, entity_start=None,
                                   entity_end=None, labelled_by=None, labelled_at=None)).rowcount


# Training data ----------------------------------------------------------------------------

def _example(row: ReviewMessage) -> str:
    text = row.text
    if row.entity and row.entity_start is not None and row.entity_end is not None:
        text = (f"{text[:row.entity_start]}[{text[row.entity_start:row.entity_end]}]"
                f"({row.entity}){text[row.entity_end:]}")
    for marker, value in PLACEHOLDERS.items():
        text = text.replace(marker, value)
    return " ".join(text.split())


def reviewed_yaml(session: Session) -> Optional[str]:
    """The labelled messages as Rasa NLU training data, or None when there are none."""
    rows = session.execute(select(ReviewMessage).where(ReviewMessage.status == "labelled")
                           .order_by(ReviewMessage.label, ReviewMessage.id)).scalars().all()
    by_intent: Dict[str, List[str]] = {}
    for row in rows:
        example = _example(row)
        if example and example not in by_intent.setdefault(row.label, []):
            by_intent[row.label].append(example)
    if not any(by_intent.values()):
        return None
    lines = ["# Written by `python -m bot train` from the review inbox's labels; do not edit.",
             'version: "3.1"', "nlu:"]
    for intent, examples in sorted(by_intent.items()):
        lines += [f"- intent: {intent}", "  examples: |"] + [f"    - {e}" for e in sorted(examples)]
    return "\n".join(lines) + "\n"
