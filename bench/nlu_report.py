"""NLU quality report: the held-out set, and optionally cross-validation of the training data.

    python bench/nlu_report.py                      # held-out set (tests/nlu) on the current model
    python bench/nlu_report.py --cross-validation   # also 3-fold cross-validation (about 6 minutes)

Prints intent macro F1 and the worst intents, entity F1 per entity, and how many
out-of-scope messages reach the out-of-scope or fallback path. Rasa's own reports,
per-intent precision/recall/F1 and the confusion matrix, are left in results/nlu/
(and results/nlu-cv/).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rasa(*args: str) -> None:
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-m", "rasa", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(result.stdout[-3000:] + result.stderr[-3000:])


def held_out(settings, out: Path) -> None:
    from bot.training import ensure_model

    model = ensure_model(settings.models_dir, database_url=settings.database_url,
                         generated_dir=settings.var_dir / "nlu_generated")
    rasa("test", "nlu", "--model", str(model), "--nlu", "tests/nlu", "--out", str(out),
         "--successes")
    report = json.loads((out / "intent_report.json").read_text())
    intents = {k: v for k, v in report.items() if isinstance(v, dict) and "support" in v
               and k not in ("macro avg", "weighted avg", "micro avg")}
    print(f"held-out set: {sum(v['support'] for v in intents.values())} messages, {len(intents)} intents")
    print(f"intent macro F1 {report['macro avg']['f1-score']:.3f}, accuracy {report.get('accuracy', 0):.3f}")
    print("worst intents: " + ", ".join(f"{k} {v['f1-score']:.2f}" for k, v in
                                        sorted(intents.items(), key=lambda kv: kv[1]["f1-score"])[:5]))
    entities = json.loads((out / "DIETClassifier_report.json").read_text())
    print(f"entity micro F1 {entities['micro avg']['f1-score']:.3f}: " + ", ".join(
        f"{k} {v['f1-score']:.2f}" for k, v in entities.items()
        if isinstance(v, dict) and k not in ("micro avg", "macro avg", "weighted avg", "no_entity")))
    predictions = []
    for name in ("intent_successes.json", "intent_errors.json"):
        if (out / name).exists():
            predictions += json.loads((out / name).read_text())
    asked = [p for p in predictions if p["intent"] == "out_of_scope"]
    routed = [p for p in asked if p["intent_prediction"]["name"] in ("out_of_scope", "nlu_fallback")]
    print(f"out of scope routed to out-of-scope/fallback: {len(routed)}/{len(asked)}")
    errors = [p for p in predictions if p["intent"] != p["intent_prediction"]["name"]]
    print(f"reports and confusion matrix: {out}/ ({len(errors)} misclassified, in intent_errors.json)")


def cross_validation(settings, out: Path) -> None:
    from bot.training import write_catalog_data

    # Lookup tables only: a catalog variant of an example in a test fold would sit in the
    # training folds with its sibling and flatter the figure.
    generated = write_catalog_data(settings.database_url, settings.var_dir / "nlu_cv" / "catalog.yml",
                                   examples=False)
    with tempfile.TemporaryDirectory() as data:  # rasa test nlu reads one folder
        for path in [*(ROOT / "nlu_data" / "nlu").glob("*.yml"), *([generated] if generated else [])]:
            shutil.copy(path, Path(data) / path.name)
        rasa("test", "nlu", "--config", "config.yml", "--nlu", data, "--cross-validation",
             "--folds", "3", "--out", str(out))
    report = json.loads((out / "intent_report.json").read_text())
    print(f"3-fold cross-validation: intent macro F1 {report['macro avg']['f1-score']:.3f} ({out}/)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cross-validation", action="store_true")
    args = parser.parse_args()
    from bot.cli import prepare_shop
    from bot.settings import load_settings

    settings = load_settings()
    prepare_shop(settings)  # the lookup tables trained on come from the shop, as in `bot up`
    held_out(settings, ROOT / "results" / "nlu")
    if args.cross_validation:
        cross_validation(settings, ROOT / "results" / "nlu-cv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
