"""Train the Rasa model only when config, domain, training data or review labels changed.

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
from typing import Callable, Iterable, List, Sequence

from sqlalchemy.exc import SQLAlchemyError

from bot.core.db import make_engine, make_session_factory, session_scope
from bot.core.settings import PROJECT_ROOT, Settings
from bot.review.inbox import reviewed_yaml
from bot.review.retrain import CURRENT

TRAINING_INPUTS = ("config.yml", "domain.yml", "nlu_data", "bot/assistant/nlu.py")  # nlu.py: our NLU component


def _input_files(root: Path, extra_data: Sequence[Path] = ()) -> Iterable[Path]:
    for name in TRAINING_INPUTS:
        path = root / name
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".yml", ".yaml"))
        elif path.exists():
            yield path
    yield from extra_data


def _name(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:  # reviewed data, under var/
        return path.name


def training_hash(root: Path = PROJECT_ROOT, extra_data: Sequence[Path] = ()) -> str:
    digest = hashlib.sha256()
    try:
        from importlib.metadata import version

        digest.update(f"rasa=={version('rasa')}\n".encode())
    except Exception:
        pass
    for path in _input_files(root, extra_data):
        digest.update(_name(path, root).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def model_path(models_dir: Path, root: Path = PROJECT_ROOT, extra_data: Sequence[Path] = ()) -> Path:
    return models_dir / f"comptoir-{training_hash(root, extra_data)}.tar.gz"


def ensure_model(models_dir: Path, root: Path = PROJECT_ROOT,
                 progress: Callable[[str], None] = print, force: bool = False,
                 extra_data: Sequence[Path] = ()) -> Path:
    """Return the model for the current inputs, training it first if it is missing.
    `extra_data`: more NLU files to train on (the review inbox's labels)."""
    models_dir.mkdir(parents=True, exist_ok=True)
    target = model_path(models_dir, root, extra_data)
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
                "--domain", "domain.yml", "--data", "nlu_data", *map(str, extra_data), "--out", out,
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


def point_current(models_dir: Path, model: Path) -> Path:
    """`models/current.tar.gz`, the model Rasa (re)starts with, now pointing at `model`
    (a relative symbolic link, replaced atomically)."""
    link = models_dir / CURRENT
    staged = models_dir / f".{CURRENT}.{os.getpid()}"
    staged.unlink(missing_ok=True)
    staged.symlink_to(model.name)
    os.replace(staged, link)
    return link


def reviewed_data_file(settings: Settings) -> Path:
    return settings.var_dir / "reviewed" / "nlu.yml"


def export_reviewed(settings: Settings, progress: Callable[[str], None]) -> List[Path]:
    """Write the labelled messages where training reads them; [] when there are none or
    the shop database cannot say (the training then goes on without them)."""
    path = reviewed_data_file(settings)
    url = settings.database_url
    if url.startswith("sqlite") and not Path(url.split("///", 1)[1]).exists():
        return []  # no shop yet: nothing reviewed (and no empty database file created)
    engine = make_engine(url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            text = reviewed_yaml(session)
    except SQLAlchemyError as error:
        progress(f"review labels not read ({type(error).__name__}): training without them")
        return [path] if path.exists() else []
    finally:
        engine.dispose()
    if text is None:
        path.unlink(missing_ok=True)
        return []
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    progress(f"training includes {text.count(chr(10) + '    - ')} reviewed examples ({path})")
    return [path]


def train_current(settings: Settings, progress: Callable[[str], None] = print,
                  force: bool = False) -> Path:
    """The model for the project's data and the review labels, trained if need be;
    `models/current.tar.gz` points at it."""
    model = ensure_model(settings.models_dir, progress=progress, force=force,
                         extra_data=export_reviewed(settings, progress))
    point_current(settings.models_dir, model)
    return model
