"""Scores of an NLU evaluation run (`rasa test nlu --successes`), as the README gives them.

Two sets are scored the same way: `tests/nlu` (held out from the training data, written
by the same hands) and `tests/nlu_real` (messages written the way shoppers write to a
shop: long, polite, a story before the request, products we do not carry). A message
labelled `out_of_scope` counts as *routed* when the bot does not pretend to answer it:
the out-of-scope answer, the fallback (which asks a clarifying question) or a person.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

ROUTED = ("out_of_scope", "nlu_fallback", "request_human")


@dataclass(frozen=True)
class NluScores:
    messages: int
    macro_f1: float          # over every intent of the set, out_of_scope included
    accuracy: float          # every message
    in_scope: int
    in_scope_accuracy: float  # messages whose label is not out_of_scope
    out_of_scope: int
    routed: int               # out-of-scope messages routed (see ROUTED)
    entity_f1: float          # DIET's entity micro F1 (0 if the set marks no entity)
    worst: List[tuple]        # (f1, intent), lowest first
    errors: List[dict]        # misclassified messages, as rasa writes them

    @property
    def routed_share(self) -> float:
        return self.routed / self.out_of_scope if self.out_of_scope else 1.0

    def lines(self, name: str) -> List[str]:
        return [
            f"{name}: {self.messages} messages ({self.in_scope} in scope, {self.out_of_scope} out of scope)",
            f"  intent macro F1 {self.macro_f1:.3f}, accuracy {self.accuracy:.3f}, "
            f"in-scope accuracy {self.in_scope_accuracy:.3f}",
            f"  out of scope routed to out-of-scope, fallback or a person: {self.routed}/{self.out_of_scope} "
            f"({self.routed_share:.0%})",
            f"  entity micro F1 {self.entity_f1:.3f}",
            "  worst intents: " + ", ".join(f"{k} {v:.2f}" for v, k in self.worst[:5]),
        ]


def scores(out: Path) -> NluScores:
    """Read the reports `rasa test nlu --successes --out OUT` left in `out`."""
    report = json.loads((out / "intent_report.json").read_text())
    predictions: List[Dict] = []
    for name in ("intent_successes.json", "intent_errors.json"):
        if (out / name).exists():
            predictions += json.loads((out / name).read_text())
    asked = [p for p in predictions if p["intent"] == "out_of_scope"]
    inside = [p for p in predictions if p["intent"] != "out_of_scope"]
    right = [p for p in inside if p["intent_prediction"]["name"] == p["intent"]]
    entities_path = out / "DIETClassifier_report.json"
    entity_f1 = 0.0
    if entities_path.exists():
        entity_f1 = json.loads(entities_path.read_text()).get("micro avg", {}).get("f1-score", 0.0)
    intents = {k: v for k, v in report.items() if isinstance(v, dict) and "f1-score" in v
               and k not in ("macro avg", "weighted avg", "micro avg")}
    return NluScores(
        messages=len(predictions), macro_f1=report["macro avg"]["f1-score"],
        accuracy=report.get("accuracy", 0.0), in_scope=len(inside),
        in_scope_accuracy=len(right) / len(inside) if inside else 0.0, out_of_scope=len(asked),
        routed=sum(p["intent_prediction"]["name"] in ROUTED for p in asked), entity_f1=entity_f1,
        worst=sorted((round(v["f1-score"], 2), k) for k, v in intents.items()),
        errors=[p for p in predictions if p["intent"] != p["intent_prediction"]["name"]])
