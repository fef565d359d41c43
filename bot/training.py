"""Train the Rasa model only when config, domain or training data changed.

The model file is named after a hash of everything that shapes it, so an unchanged
project finds its model in `models/` and never retrains. Lookup tables of product
models, brands and store places are generated from the shop database just before, so
a product added to the catalog is understood after the next training, with no hand
edit of the training files; they are part of the hash.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, List, Optional

from bot.settings import PROJECT_ROOT

TRAINING_INPUTS = ("config.yml", "domain.yml", "nlu_data", "bot/nlu.py")  # nlu.py: our NLU component
GENDERS = (" homme", " femme", " enfant", " mixte")


def _input_files(root: Path) -> Iterable[Path]:
    for name in TRAINING_INPUTS:
        path = root / name
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".yml", ".yaml"))
        elif path.exists():
            yield path


def training_hash(root: Path = PROJECT_ROOT, generated: Optional[Path] = None) -> str:
    digest = hashlib.sha256()
    try:
        from importlib.metadata import version

        digest.update(f"rasa=={version('rasa')}\n".encode())
    except Exception:
        pass
    for path in _input_files(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    if generated is not None and generated.exists():
        digest.update(b"generated/" + generated.name.encode() + b"\0" + generated.read_bytes())
    return digest.hexdigest()[:16]


def model_path(models_dir: Path, root: Path = PROJECT_ROOT, generated: Optional[Path] = None) -> Path:
    return models_dir / f"comptoir-{training_hash(root, generated)}.tar.gz"


def catalog_lookups(database_url: str) -> dict:
    """Lookup tables from the shop database: product models (brand and cut left out),
    brands, and store names and cities."""
    from sqlalchemy import select

    from bot.db import make_engine, make_session_factory
    from bot.models import Product, Store

    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            products = session.execute(select(Product.brand, Product.name)
                                        .where(Product.active.is_(True))).all()
            stores = session.execute(select(Store.name, Store.city).where(Store.kind == "store")).all()
    finally:
        engine.dispose()
    models = set()
    for brand, name in products:
        model = name[len(brand):].strip() if name.lower().startswith(brand.lower()) else name
        model = re.sub(r"\s*\([^)]*\)$", "", model)  # "1984 (poche)": the format is a variant
        for gender in GENDERS:
            if model.endswith(gender):
                model = model[: -len(gender)]
        if len(model) >= 3:
            models.add(model)
    places = {value for row in stores for value in row if value}

    def table(name: str, values: Iterable[str]) -> dict:
        return {"lookup": name, "examples": "".join(f"- {v}\n" for v in sorted(values))}

    tables = [table("product_name", models), table("brand", {b for b, _ in products}),
              table("store_place", places)]
    return {"version": "3.1", "nlu": [t for t in tables if t["examples"]]}


def write_lookups(database_url: str, target: Path) -> Optional[Path]:
    """Write the catalog lookup tables to `target`; None (and no file) if the shop
    database cannot be read, so training goes on with the hand-written data only."""
    import yaml
    from sqlalchemy.exc import SQLAlchemyError

    try:
        data = catalog_lookups(database_url)
    except SQLAlchemyError:
        data = {"nlu": []}
    if not data["nlu"]:  # unreadable or empty shop: nothing to generate
        target.unlink(missing_ok=True)
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    text = "# Generated from the shop database at training time (bot/training.py); do not edit.\n"
    text += yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=1000)
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    return target


def ensure_model(models_dir: Path, root: Path = PROJECT_ROOT,
                 progress: Callable[[str], None] = print, force: bool = False,
                 database_url: Optional[str] = None, generated_dir: Optional[Path] = None) -> Path:
    """Return the model for the current inputs, training it first if it is missing.

    With `database_url`, catalog lookup tables are generated into `generated_dir` first
    and trained on with the hand-written data."""
    models_dir.mkdir(parents=True, exist_ok=True)
    generated = None
    if database_url:
        generated = write_lookups(database_url, (generated_dir or models_dir / "generated") / "lookups.yml")
        if generated is None:
            progress("shop database unreadable or empty: training without the catalog lookup tables")
    target = model_path(models_dir, root, generated)
    with open(models_dir / ".train.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one training at a time (tests, make run)
        if target.exists() and not force:
            progress(f"model {target.name} is up to date (cache hit, no training)")
            return target
        progress(f"training {target.name} (config, domain or data changed; about 7 minutes on 2 cores)...")
        started = time.monotonic()
        with tempfile.TemporaryDirectory(dir=models_dir) as out:
            data: List[str] = ["nlu_data"] + ([str(generated)] if generated else [])
            command = [
                sys.executable, "-m", "rasa", "train", "--config", "config.yml",
                "--domain", "domain.yml", "--data", *data, "--out", out,
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
