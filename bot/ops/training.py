"""Train the Rasa model only when config, domain or training data changed.

The model file is named after a hash of everything that shapes it, so an unchanged
project finds its model in `models/` and never retrains.

The shop's catalog is not part of the model: no lookup tables nor examples are generated
from the shop database. Product names are an open class; the hand-written data names
hundreds of invented and real products, so the model learns where a product sits in a
sentence, and the actions look the words up in the live catalog index. Adding,
renaming or withdrawing a product never retrains.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable

from bot.core.settings import PROJECT_ROOT

TRAINING_INPUTS = ("config.yml", "domain.yml", "nlu_data", "bot/assistant/nlu.py")  # nlu.py: our NLU component


def _input_files(root: Path) -> Iterable[Path]:
    for name in TRAINING_INPUTS:
        path = root / name
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".yml", ".yaml"))
        elif path.exists():
            yield path


def training_hash(root: Path = PROJECT_ROOT) -> str:
    digest = hashlib.sha256()
    try:
        from importlib.metadata import version

        digest.update(f"rasa=={version('rasa')}\n".encode())
    except Exception:
        pass
    for path in _input_files(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def model_path(models_dir: Path, root: Path = PROJECT_ROOT) -> Path:
    return models_dir / f"comptoir-{training_hash(root)}.tar.gz"


def ensure_model(models_dir: Path, root: Path = PROJECT_ROOT,
                 progress: Callable[[str], None] = print, force: bool = False) -> Path:
    """Return the model for the current inputs, training it first if it is missing."""
    models_dir.mkdir(parents=True, exist_ok=True)
    target = model_path(models_dir, root)
    with open(models_dir / ".train.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one training at a time (tests, make run)
        if target.exists() and not force:
            progress(f"model {target.name} is up to date (cache hit, no training)")
            return target
        progress(f"training {target.name} (config, domain or data changed; 2 to 3 minutes on 2 cores)...")
        started = time.monotonic()
        with tempfile.TemporaryDirectory(dir=models_dir) as out:
            command = [
                sys.executable, "-m", "rasa", "train", "--config", "config.yml",
                "--domain", "domain.yml", "--data", "nlu_data", "--out", out,
                "--fixed-model-name", target.name[: -len(".tar.gz")],
            ]
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
            result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
            if result.returncode != 0:
                sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
                raise RuntimeError(f"rasa train failed with exit code {result.returncode}")
            os.replace(Path(out) / target.name, target)
        progress(f"trained {target.name} in {time.monotonic() - started:.0f} s")
        for old in models_dir.glob("comptoir-*.tar.gz"):
            if old != target and old.stat().st_mtime < target.stat().st_mtime - 1:
                old.unlink()  # keep only the current model
        return target
