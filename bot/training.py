"""Train the Rasa model only when config, domain or training data changed.

The model file is named after a hash of everything that shapes it, so an unchanged
project finds its model in `models/` and never retrains. Training data from the shop
database is generated just before, so a product added to the catalog is understood
after the next training, with no hand edit of the training files; it is part of the
hash:

- lookup tables of product models, brands and store places (regex features);
- the hand-written examples that name a product or a city, again with catalog products
  and cities in their place, in the forms shoppers write them ("Pegasus 41",
  "nike pegasus 41", "cocotte staub", a machine by its brand for spare parts). The
  hand-written data names a hundred-odd products; with these, the model learns where a
  product name sits in a sentence from the whole catalog, multi-word names included.
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


ENTITY_RE = re.compile(r"\[([^\]]+)\]\((product|city)\)")
VARIANTS_PER_EXAMPLE = 1  # catalog variants of each hand-written example naming a product or city
MACHINE_INTENTS = {"ask_parts"}  # "pièces pour ma Magnifica": machines (products with parts), by name or brand


def _model_of(brand: str, name: str) -> str:
    """The model of a product: its name without brand, format ("(poche)") nor cut."""
    model = name[len(brand):].strip() if name.lower().startswith(brand.lower()) else name
    model = re.sub(r"\s*\([^)]*\)$", "", model)
    for gender in GENDERS:
        if model.endswith(gender):
            model = model[: -len(gender)]
    return model


def _plain(text: str) -> str:
    """Lower case without accents, as many shoppers type."""
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFD", text.lower()) if unicodedata.category(c) != "Mn")


def product_forms(brand: str, name: str, machine: bool = False) -> List[str]:
    """How shoppers name a product: the model, with its brand, a category word and the
    brand ("cocotte staub"), in lower case without accents; a machine also by its brand."""
    model = _model_of(brand, name)
    forms = [model, model.lower(), _plain(model)]
    if name.lower().startswith(brand.lower()):  # a maker's product, not a book by its author
        forms += [f"{brand} {model}", _plain(f"{brand} {model}")]
        if " " in model:
            forms.append(f"{model.split()[0].lower()} {brand.lower()}")
        if machine:
            forms.append(brand)
    return [form for form in dict.fromkeys(forms) if len(form) >= 3]


def handwritten_examples(root: Path, kind: str = "intent") -> List[tuple]:
    """(intent, example) of the hand-written NLU data; (table, entry) with kind="lookup"."""
    import yaml

    found = []
    for path in sorted((root / "nlu_data" / "nlu").glob("*.yml")):
        for item in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu", []):
            if kind in item:
                found += [(item[kind], line[2:].strip()) for line in item["examples"].splitlines()
                          if line.startswith("- ")]
    return found


def catalog_examples(examples: List[tuple], products: List[tuple], machines: List[tuple],
                     parts: List[tuple], cities: List[str], seed: int = 42) -> dict:
    """The examples naming a product or a city, with catalog products and cities (of the
    stores and of the hand-written city lookup table) in their place; the same for the
    same inputs, so the training hash stays put. A machine's parts and consumables are
    left out of the other intents' examples: "le filtre Claris" is a spare-parts question."""
    import random

    rng = random.Random(seed)
    all_forms = sorted({f for brand, name in set(products) - set(parts) for f in product_forms(brand, name)})
    machine_forms = sorted({f for brand, name in machines for f in product_forms(brand, name, machine=True)})
    city_forms = sorted({f for city in cities for f in (city, city.lower(), _plain(city))})
    def replace(match: re.Match, products: List[str]) -> str:
        values = products if match.group(2) == "product" else city_forms
        return f"[{rng.choice(values)}]({match.group(2)})" if values else match.group(0)

    by_intent: dict = {}
    for intent, example in examples:
        if not ENTITY_RE.search(example):
            continue
        pool = machine_forms if intent in MACHINE_INTENTS and machine_forms else all_forms
        for _ in range(VARIANTS_PER_EXAMPLE):
            variant = ENTITY_RE.sub(lambda match: replace(match, pool), example)
            if variant != example:
                by_intent.setdefault(intent, {})[variant] = None
    return {intent: list(variants) for intent, variants in by_intent.items()}


def catalog_training_data(database_url: str, root: Path = PROJECT_ROOT, examples: bool = True) -> dict:
    """Training data from the shop database: lookup tables of product models (brand and
    cut left out), brands, and store names and cities; catalog variants of the
    hand-written examples that name a product or a city."""
    from sqlalchemy import select

    from bot.db import make_engine, make_session_factory
    from bot.models import Product, ProductLink, Store

    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            products = session.execute(select(Product.brand, Product.name)
                                        .where(Product.active.is_(True))
                                        .order_by(Product.name)).all()
            machines = session.execute(select(Product.brand, Product.name)
                                        .where(Product.active.is_(True),
                                               Product.id.in_(select(ProductLink.product_id)))
                                        .order_by(Product.name)).all()
            parts = session.execute(select(Product.brand, Product.name)
                                     .where(Product.id.in_(select(ProductLink.linked_product_id)))
                                     .order_by(Product.name)).all()
            stores = session.execute(select(Store.name, Store.city).where(Store.kind == "store")).all()
    finally:
        engine.dispose()
    models = {model for brand, name in products if len(model := _model_of(brand, name)) >= 3}
    places = {value for row in stores for value in row if value}
    cities = {city for _, city in stores if city} | {
        entry for table, entry in handwritten_examples(root, "lookup") if table == "city"}

    def table(name: str, values: Iterable[str]) -> dict:
        return {"lookup": name, "examples": "".join(f"- {v}\n" for v in sorted(values))}

    tables = [table("product_name", models), table("brand", {b for b, _ in products}),
              table("store_place", places)]
    nlu = [t for t in tables if t["examples"]]
    if nlu and examples:
        generated = catalog_examples(handwritten_examples(root), [tuple(p) for p in products],
                                     [tuple(m) for m in machines], [tuple(p) for p in parts],
                                     sorted(cities))
        nlu += [{"intent": intent, "examples": "".join(f"- {v}\n" for v in variants)}
                for intent, variants in generated.items()]
    return {"version": "3.1", "nlu": nlu}


def write_catalog_data(database_url: str, target: Path, root: Path = PROJECT_ROOT,
                       examples: bool = True) -> Optional[Path]:
    """Write the training data generated from the catalog to `target` (without the
    example variants if `examples` is false); None (and no file) if the shop database
    cannot be read, so training goes on with the hand-written data only."""
    import yaml
    from sqlalchemy.exc import SQLAlchemyError

    try:
        data = catalog_training_data(database_url, root, examples)
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
        generated = write_catalog_data(database_url, (generated_dir or models_dir / "generated") / "catalog.yml", root)
        if generated is None:
            progress("shop database unreadable or empty: training without the catalog lookup tables")
    target = model_path(models_dir, root, generated)
    with open(models_dir / ".train.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one training at a time (tests, make run)
        if target.exists() and not force:
            progress(f"model {target.name} is up to date (cache hit, no training)")
            return target
        progress(f"training {target.name} (config, domain, data or catalog changed; about 9 minutes on 2 cores)...")
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
