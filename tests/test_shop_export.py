"""`python -m bot seed --export DIR` writes the demo shop as the files a retailer has, and
`python -m bot import ...` of those files into an empty database gives the same shop."""
import subprocess
import sys

from sqlalchemy import select

from bot.core.db import make_engine, make_session_factory
from bot.core.models import (Consent, Customer, Product, Stock, Store, StoreClosure, StoreHours,
                             Variant)
from bot.core.settings import PROJECT_ROOT
from bot.imports.export import IMPORT_ORDER


def run_bot(url, tmp_path, *args):
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": url, "COMPTOIR_VAR_DIR": str(tmp_path / "var")}
    done = subprocess.run([sys.executable, "-m", "bot", *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def snapshot(url):
    """What a shopper or an agent can be told about the shop, keyed by the retailer's codes."""
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        codes = dict(session.execute(select(Store.id, Store.code)).all())
        hours, closures = {}, {}
        for h in session.execute(select(StoreHours)).scalars():
            hours.setdefault(codes[h.store_id], set()).add((h.weekday, h.opens_at, h.closes_at))
        for c in session.execute(select(StoreClosure)).scalars():
            closures.setdefault(codes[c.store_id], set()).add((c.day, c.opens_at, c.closes_at))
        stores = {s.code: (s.kind, s.name, s.address, s.city, s.postcode, s.latitude, s.longitude,
                           s.phone, hours.get(s.code), closures.get(s.code))
                  for s in session.execute(select(Store)).scalars()}
        products = {p.sku: (p.name, p.brand, p.department, p.category, p.price_cents, p.description,
                            p.image_url, p.link)
                    for p in session.execute(select(Product).where(Product.active.is_(True))).scalars()}
        variants = {v.sku: (p_sku, v.ean, v.size, v.colour) for v, p_sku in session.execute(
            select(Variant, Product.sku).join(Product).where(Product.active.is_(True)))}
        stock = {(codes[store_id], sku): quantity for store_id, sku, quantity in session.execute(
            select(Stock.store_id, Variant.sku, Stock.quantity).join(Variant, Variant.id == Stock.variant_id))}
        customers = {c.loyalty_card: (c.first_name, c.last_name, c.email, c.phone, codes.get(c.home_store_id),
                                      c.preferred_channel, c.birthday, c.loyalty_status, c.loyalty_points)
                     for c in session.execute(select(Customer).where(Customer.loyalty_card.is_not(None),
                                                                     Customer.erased_at.is_(None))).scalars()}
        consents = {(card, c.purpose, c.channel): c.granted for c, card in session.execute(
            select(Consent, Customer.loyalty_card).join(Customer, Customer.id == Consent.customer_id)
            .where(Customer.loyalty_card.is_not(None)))}
    engine.dispose()
    return dict(stores=stores, products=products, variants=variants, stock=stock, customers=customers,
                consents=consents)


def test_the_exported_demo_shop_imported_into_an_empty_database_is_the_same_shop(shop_url, tmp_path):
    files = tmp_path / "shop"
    said = run_bot(shop_url, tmp_path, "seed", "--export", str(files))
    assert "exported to" in said and "products.tsv" in said
    header = (files / "products.tsv").read_text(encoding="utf-8").split("\n", 1)[0]
    assert header.split("\t")[:3] == ["id", "item_group_id", "title"]

    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    for kind, name in IMPORT_ORDER:
        said = run_bot(empty, tmp_path, "import", kind, str(files / name))
        assert "(écrit)" in said and "refusée" in said, said
    before, after = snapshot(shop_url), snapshot(empty)
    for part in before:
        assert before[part] == after[part], part
    assert len(after["variants"]) > 1000 and len(after["stock"]) > 10000 and after["consents"]

    # Importing the same files again changes nothing.
    for kind, name in IMPORT_ORDER:
        said = run_bot(empty, tmp_path, "import", kind, str(files / name))
        assert " 0 ajouté(s), 0 modifié(s)," in said, said
