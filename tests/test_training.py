"""Training data generated from the shop database: what a retrain learns of the catalog."""
import yaml

from bot.models import Product, ProductLink
from bot.training import (ENTITY_RE, catalog_training_data, handwritten_examples, model_path,
                          product_forms, write_catalog_data)
from bot.settings import PROJECT_ROOT


def test_products_are_named_as_shoppers_write_them():
    assert product_forms("Staub", "Staub Cocotte ronde 24 cm") == [
        "Cocotte ronde 24 cm", "cocotte ronde 24 cm", "Staub Cocotte ronde 24 cm",
        "staub cocotte ronde 24 cm", "cocotte staub"]
    assert product_forms("Nike", "Nike Pegasus 41 homme") == [
        "Pegasus 41", "pegasus 41", "Nike Pegasus 41", "nike pegasus 41", "pegasus nike"]
    # A book is named by its title, never by "author title".
    assert product_forms("Albert Camus", "L'Étranger (poche)") == ["L'Étranger", "l'étranger", "l'etranger"]
    # A machine is also named by its brand alone: "des pièces pour ma Jura".
    assert "Jura" in product_forms("Jura", "Jura E8", machine=True)
    assert "Jura" not in product_forms("Jura", "Jura E8")


def tables(data):
    return {item.get("lookup") or item["intent"]: [line[2:] for line in item["examples"].splitlines()
                                                   if line.startswith("- ")]
            for item in data["nlu"]}


def placeholder(example):
    return ENTITY_RE.sub(lambda m: f"[…]({m.group(2)})", example)


def test_a_product_added_to_the_catalog_is_learnt_at_the_next_training(shop_url, shop, tmp_path):
    before = write_catalog_data(shop_url, tmp_path / "before" / "catalog.yml")
    with shop() as session:
        session.add(Product(sku="ZX-TRAIL-3", name="Zorblax Trail 3 homme", brand="Zorblax",
                            department="sport", category="chaussures de running", price_cents=9900))
        session.commit()
    after = write_catalog_data(shop_url, tmp_path / "after" / "catalog.yml")
    data = tables(yaml.safe_load(after.read_text()))
    assert "Trail 3" in data["product_name"] and "Zorblax" in data["brand"]
    # The catalog is part of the model's hash: this change trains a new model.
    assert model_path(tmp_path, PROJECT_ROOT, before) != model_path(tmp_path, PROJECT_ROOT, after)


def test_catalog_variants_keep_the_hand_written_sentences_and_intents(shop_url, shop):
    data = catalog_training_data(shop_url)
    assert data == catalog_training_data(shop_url)  # the same every time: no needless retraining
    handwritten = {}
    for intent, example in handwritten_examples(PROJECT_ROOT):
        handwritten.setdefault(intent, set()).add(placeholder(example))
    generated = {intent: examples for intent, examples in tables(data).items()
                 if intent not in ("product_name", "brand", "store_place")}
    assert sum(map(len, generated.values())) > 200
    for intent, examples in generated.items():
        assert all(placeholder(example) in handwritten[intent] for example in examples), intent
    # Spare parts are asked for machines: only products that have parts are put there.
    with shop() as session:
        machines = {name for (name,) in session.query(Product.name).join(
            ProductLink, ProductLink.product_id == Product.id)}
        brands = dict(session.query(Product.name, Product.brand))
        parts = {name for (name,) in session.query(Product.name).join(
            ProductLink, ProductLink.linked_product_id == Product.id)}
    machine_forms = {form for name in machines for form in product_forms(brands[name], name, machine=True)}

    def named(intents):
        return {m.group(1) for intent in intents for example in generated[intent]
                for m in ENTITY_RE.finditer(example) if m.group(2) == "product"}

    assert named(["ask_parts"]) and named(["ask_parts"]) <= machine_forms
    # ...and a part is never the product of a stock question: "le filtre Claris" is about parts.
    part_forms = {form for name in parts for form in product_forms(brands[name], name)}
    other_forms = {form for name in set(brands) - parts for form in product_forms(brands[name], name)}
    assert named(set(generated) - {"ask_parts"}) and not named(set(generated) - {"ask_parts"}) & (part_forms - other_forms)


def test_an_empty_or_unreadable_shop_generates_nothing(tmp_path):
    assert write_catalog_data(f"sqlite:///{tmp_path / 'none.db'}", tmp_path / "catalog.yml") is None
    assert not (tmp_path / "catalog.yml").exists()
