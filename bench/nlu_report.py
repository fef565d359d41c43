"""NLU quality report: the held-out set, and optionally cross-validation of the training data.

    python bench/nlu_report.py                      # both evaluation sets on the current model
    python bench/nlu_report.py --cross-validation   # also 3-fold cross-validation (about 6 minutes)

On the held-out set (tests/nlu) and the shoppers' messages (tests/nlu_real): intent
macro F1, accuracy, in-scope accuracy, the worst intents, entity F1, and how many
out-of-scope messages reach the out-of-scope answer, the fallback or a person. Rasa's own reports,
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


def evaluate(model: Path, data: str, out: Path) -> None:
    """`rasa test nlu` (intent macro F1 without the fallback, as earlier rounds reported
    it, and entity F1), then the live scores of bot.ops.nlu_eval (the fallback included)."""
    rasa("test", "nlu", "--model", str(model), "--nlu", data, "--out", str(out), "--successes")
    report = json.loads((out / "intent_report.json").read_text())
    entities = json.loads((out / "DIETClassifier_report.json").read_text())
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "RASA_TELEMETRY_ENABLED": "false"}
    live = subprocess.run([sys.executable, "-m", "bot.ops.nlu_eval", str(model), data], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    from bot.ops.nlu_eval import SetScores

    print("\n".join(SetScores.from_json(live.stdout.strip().splitlines()[-1]).lines()))
    print(f"  rasa test nlu (no fallback): intent macro F1 {report['macro avg']['f1-score']:.3f}, "
          f"accuracy {report['accuracy']:.3f}; entity micro F1 {entities['micro avg']['f1-score']:.3f}: "
          + ", ".join(f"{k} {v['f1-score']:.2f}" for k, v in entities.items()
                      if isinstance(v, dict) and k not in ("micro avg", "macro avg", "weighted avg", "no_entity")))
    print(f"  reports and confusion matrix: {out}/")


def cross_validation(out: Path) -> None:
    with tempfile.TemporaryDirectory() as data:  # rasa test nlu reads one folder
        for path in (ROOT / "nlu_data" / "nlu").glob("*.yml"):
            shutil.copy(path, Path(data) / path.name)
        rasa("test", "nlu", "--config", "config.yml", "--nlu", data, "--cross-validation",
             "--folds", "3", "--out", str(out))
    report = json.loads((out / "intent_report.json").read_text())
    print(f"3-fold cross-validation: intent macro F1 {report['macro avg']['f1-score']:.3f} ({out}/)")


def main() -> int:
    """Scores of the current model (trained first if the inputs changed), or of --model."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cross-validation", action="store_true")
    parser.add_argument("--model", type=Path, help="a model file instead of the current one")
    args = parser.parse_args()
    from bot.core.settings import load_settings

    settings = load_settings()
    from bot.ops.training import ensure_model

    model = args.model or ensure_model(settings.models_dir)
    evaluate(model, "tests/nlu", ROOT / "results" / "nlu")
    evaluate(model, "tests/nlu_real", ROOT / "results" / "nlu_real")
    if args.cross_validation:
        cross_validation(ROOT / "results" / "nlu-cv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
