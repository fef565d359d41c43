"""Stock benchmark on the scale demo shop (200 stores x 50,000 SKUs).

    python bench/stock_bench.py                     # SQLite file under var/bench/
    python bench/stock_bench.py --database-url postgresql://postgres@127.0.0.1/bench

Seeds the scale shop once (reused on later runs), then prints p50/p95/p99 of:
availability of one variant in one store, nearest stores with stock, fuzzy search.
Targets on a 2-core machine: p99 < 10 ms, < 20 ms and < 30 ms.
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select  # noqa: E402

from bot.stock.catalog import CatalogIndex  # noqa: E402
from bot.core.db import make_engine, make_session_factory, migrate  # noqa: E402
from bot.ops.demo import seed_demo_shop  # noqa: E402
from bot.stores.geo import Place  # noqa: E402
from bot.core.models import Store, Variant  # noqa: E402
from bot.core.settings import PROJECT_ROOT  # noqa: E402
from bot.stock.availability import availability, stores_with_stock  # noqa: E402

QUERIES = ["pegasus 41 homme 42", "vous avez les nimbus en 43 ?", "magnifica s", "filtre delonghi",
           "le petit prince poche", "huile prodigieuse", "garmin forerunner 265", "levis 501 w32",
           "tondeuse bosch", "veja v10 blanc", "pegasu 41", "kayanno 31", "cocotte le creuset",
           "raquette babolat pure drive", "ballon de foot adidas", "capsules vertuo"]


def percentiles(samples):
    ordered = sorted(samples)

    def pick(q):
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return pick(0.50), pick(0.95), pick(0.99)


def timed(label, runs, work, target):
    samples = []
    for i in range(runs):
        started = time.perf_counter()
        work(i)
        samples.append((time.perf_counter() - started) * 1000)
    p50, p95, p99 = percentiles(samples)
    verdict = "ok" if p99 < target else "OVER TARGET"
    print(f"| {label} | {runs} | {p50:.2f} | {p95:.2f} | {p99:.2f} | < {target} | {verdict} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url",
                        default=f"sqlite:///{PROJECT_ROOT / 'var' / 'bench' / 'scale-shop.db'}")
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()

    migrate(args.database_url)
    engine = make_engine(args.database_url)
    started = time.perf_counter()
    counts = seed_demo_shop(engine, 42, dt.date(2026, 3, 12), scale=True)
    if counts:
        print(f"seeded the scale shop in {time.perf_counter() - started:.0f} s: "
              f"{counts['stores']} locations, {counts['variants']} SKUs, {counts['stock']} stock rows")
    factory = make_session_factory(engine)
    rng = random.Random(7)
    with factory() as session:
        stores = session.execute(select(Store).where(Store.kind == "store")).scalars().all()
        variant_count = session.execute(select(func.count()).select_from(Variant)).scalar()
        variant_ids = session.execute(select(Variant.id)).scalars().all()
        started = time.perf_counter()
        index = CatalogIndex.load(session)
        print(f"{engine.dialect.name}: {len(stores)} stores, {variant_count} SKUs; "
              f"catalog index built in {time.perf_counter() - started:.1f} s")
    picks = [(rng.choice(variant_ids), rng.choice(stores)) for _ in range(args.runs)]
    today = dt.date(2026, 3, 12)
    print()
    print("| measure | runs | p50 ms | p95 ms | p99 ms | target ms | |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with factory() as session:
        timed("availability of one variant in one store", args.runs,
              lambda i: availability(session, picks[i][0], picks[i][1].id, today), 10)
        timed("nearest stores with stock", args.runs,
              lambda i: stores_with_stock(session, picks[i][0],
                                          Place("x", picks[i][1].latitude, picks[i][1].longitude)), 20)
    timed("fuzzy product search", args.runs, lambda i: index.search(QUERIES[i % len(QUERIES)]), 30)
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
