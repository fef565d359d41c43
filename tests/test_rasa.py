"""The Rasa project: data is valid, stories hold, the NLU understands held-out phrasings."""
import json
import subprocess
import sys

import pytest

from bot.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow


def rasa(*args, timeout=600):
    result = subprocess.run([sys.executable, "-m", "rasa", *args], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=timeout,
                            env={**__import__("os").environ, "RASA_TELEMETRY_ENABLED": "false",
                                 "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_training_data_and_domain_are_consistent():
    rasa("data", "validate", "--config", "config.yml", "--domain", "domain.yml",
         "--data", "nlu_data", "--fail-on-warnings")


def test_test_stories_pass_without_prediction_errors(trained_model, tmp_path):
    rasa("test", "core", "--model", str(trained_model), "--stories", "tests/stories",
         "--fail-on-prediction-errors", "--out", str(tmp_path / "core"))


def test_held_out_messages_are_understood(trained_model, tmp_path):
    out = tmp_path / "nlu"
    rasa("test", "nlu", "--model", str(trained_model), "--nlu", "tests/nlu", "--out", str(out))
    report = json.loads((out / "intent_report.json").read_text())
    macro_f1 = report["macro avg"]["f1-score"]
    worst = sorted((v["f1-score"], k) for k, v in report.items() if isinstance(v, dict)
                   and "f1-score" in v and k not in ("macro avg", "weighted avg", "micro avg"))
    assert macro_f1 >= 0.9, f"macro F1 {macro_f1:.2f}; worst intents: {worst[:3]}"
