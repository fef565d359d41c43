"""Scores of the NLU on an evaluation set, as the running assistant would understand it.

Two sets are scored the same way: `tests/nlu` (held out from the training data, written
by the same hands) and `tests/nlu_real` (messages written the way shoppers write to a
shop: long, polite, a story before the request, products we do not carry).

Every message is parsed by the trained model with the whole pipeline, FallbackClassifier
included (`rasa test nlu` leaves the fallback out, so it cannot say how often the bot
would ask a clarifying question). A message is:
- *understood* when its intent is predicted and the fallback does not step in;
- for an out-of-scope message, *routed* when the bot does not pretend to answer it: the
  out-of-scope answer, the fallback (a clarifying question) or a person.
Intent macro F1 is computed over the final intents (nlu_fallback counts as a wrong
intent for an in-scope message). Entity scores stay with `rasa test nlu`'s report
(bench/nlu_report.py prints both).

    python -m bot.ops.nlu_eval MODEL DATA_DIR [DATA_DIR ...]   # prints one JSON object per set
"""
from __future__ import annotations

import json
import re
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

ROUTED = ("out_of_scope", "nlu_fallback", "request_human")
DERIVED = ("in_scope_accuracy", "routed_share")  # properties printed beside the fields
ANNOTATION = re.compile(r"\[([^\]]+)\]\((?:[a-z_]+)\)|\[([^\]]+)\]\{[^}]*\}")


def examples(data_dir: Path) -> List[Tuple[str, str]]:
    """(intent, text) of every example in the set's YAML files, annotations removed."""
    import yaml

    found = []
    for path in sorted(Path(data_dir).glob("*.yml")):
        for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu", []):
            if "intent" not in block:
                continue
            for line in block["examples"].splitlines():
                if line.startswith("- "):
                    text = ANNOTATION.sub(lambda m: m.group(1) or m.group(2), line[2:].strip())
                    found.append((block["intent"], text))
    return found


@dataclass
class SetScores:
    name: str
    messages: int
    in_scope: int
    understood: int        # in scope, right intent, no fallback
    clarified: int         # in scope, the fallback stepped in (a clarifying question)
    out_of_scope: int
    routed: int            # out of scope, sent to out-of-scope, fallback or a person
    macro_f1: float
    worst: List[Tuple[float, str]] = field(default_factory=list)
    confusions: List[Tuple[int, str, str]] = field(default_factory=list)

    @property
    def in_scope_accuracy(self) -> float:
        return self.understood / self.in_scope if self.in_scope else 0.0

    @property
    def routed_share(self) -> float:
        return self.routed / self.out_of_scope if self.out_of_scope else 1.0

    @classmethod
    def from_json(cls, line: str) -> "SetScores":
        """A set's scores as `python -m bot.ops.nlu_eval` prints them (derived figures dropped)."""
        data = json.loads(line)
        for derived in DERIVED:
            data.pop(derived, None)
        return cls(**data)

    def lines(self) -> List[str]:
        return [
            f"{self.name}: {self.messages} messages ({self.in_scope} in scope, {self.out_of_scope} out of scope)",
            f"  in-scope accuracy {self.in_scope_accuracy:.3f} ({self.understood}/{self.in_scope}; "
            f"{self.clarified} more get a clarifying question), intent macro F1 {self.macro_f1:.3f}",
            f"  out of scope routed to out-of-scope, fallback or a person: {self.routed}/{self.out_of_scope} "
            f"({self.routed_share:.0%})",
            "  worst intents: " + ", ".join(f"{name} {f1:.2f}" for f1, name in self.worst[:5]),
        ]


def macro_f1(pairs: Iterable[Tuple[str, str]]) -> Tuple[float, List[Tuple[float, str]]]:
    """Macro F1 over the intents of the set (labels), and each intent's F1, lowest first."""
    pairs = list(pairs)
    labels = sorted({gold for gold, _ in pairs})
    f1s = []
    for label in labels:
        tp = sum(1 for gold, guess in pairs if gold == label and guess == label)
        fp = sum(1 for gold, guess in pairs if gold != label and guess == label)
        fn = sum(1 for gold, guess in pairs if gold == label and guess != label)
        f1s.append((2 * tp / (2 * tp + fp + fn) if tp else 0.0, label))
    return (sum(f for f, _ in f1s) / len(f1s) if f1s else 0.0), sorted(f1s)


def score(name: str, gold_and_guess: List[Tuple[str, str]]) -> SetScores:
    inside = [(g, p) for g, p in gold_and_guess if g != "out_of_scope"]
    outside = [(g, p) for g, p in gold_and_guess if g == "out_of_scope"]
    f1, per_intent = macro_f1(gold_and_guess)
    confusions = Counter((g, p) for g, p in gold_and_guess if g != p and not (g == "out_of_scope" and p in ROUTED))
    return SetScores(
        name=name, messages=len(gold_and_guess), in_scope=len(inside),
        understood=sum(g == p for g, p in inside), clarified=sum(p == "nlu_fallback" for _, p in inside),
        out_of_scope=len(outside), routed=sum(p in ROUTED for _, p in outside), macro_f1=f1,
        worst=per_intent, confusions=[(n, g, p) for (g, p), n in confusions.most_common(15)])


def evaluate(model: str, data_dirs: List[str]) -> List[SetScores]:
    """Parse every example of each set with the model (in this process: it loads Rasa)."""
    import asyncio
    import logging

    import structlog
    from rasa.core.agent import Agent

    agent = Agent.load(model)
    # Rasa logs every parse at debug level to stdout; this prints scores there.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    async def parse_all(texts: List[str]) -> List[str]:
        return [(await agent.parse_message(text))["intent"]["name"] for text in texts]

    results = []
    for data_dir in data_dirs:
        found = examples(Path(data_dir))
        guesses = asyncio.run(parse_all([text for _, text in found]))
        results.append(score(data_dir, [(gold, guess) for (gold, _), guess in zip(found, guesses)]))
    return results


def main(argv: List[str]) -> int:
    if len(argv) < 2:
        sys.exit(__doc__)
    for result in evaluate(argv[0], argv[1:]):
        data: Dict = asdict(result)
        data.update({name: getattr(result, name) for name in DERIVED})
        print(json.dumps(data, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
