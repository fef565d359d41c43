"""Inventory import benchmark on the scale demo shop (50,000 SKUs x 201 locations).

    python bench/import_bench.py                     # SQLite file under var/bench/
    python bench/import_bench.py --database-url postgresql://postgres@127.0.0.1/bench

Seeds the scale shop afresh (`seed --scale --reset`: each run starts from the same
stock; the database given is emptied, so give it a throwaway one), writes local
inventory feeds of every variant at every location (about 10 million lines), then times
`python -m bot import inventory` as a user runs it, each in its own process:
  1. a full feed with new quantities (most lines change; the pairs not stocked yet are added),
  2. the same feed again (nothing changes),
  3. the next day's feed (one line in ten changes).
Prints the seconds and the peak memory of each. Target: under a minute each.
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select  # noqa: E402

from bot.core.db import make_engine, make_session_factory  # noqa: E402
from bot.core.models import Store, Variant  # noqa: E402
from bot.core.settings import PROJECT_ROOT  # noqa: E402


def write_feed(path: Path, stores, skus, quantities) -> int:
    lines = 0
    with open(path, "w", encoding="utf-8") as out:
        out.write("store_code\tid\tquantity\tavailability\n")
        for store_index, code in enumerate(stores):
            rows = []
            for sku_index, sku in enumerate(skus):
                quantity = quantities(store_index, sku_index)
                rows.append(f"{code}\t{sku}\t{quantity}\t{'in_stock' if quantity else 'out_of_stock'}\n")
            out.writelines(rows)
            lines += len(rows)
    return lines


def run_import(url: str, feed: Path) -> tuple:
    """Seconds, this process's own peak memory (KB) and the report's first line."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.monotonic()
        child = subprocess.Popen([sys.executable, "-m", "bot", "import", "inventory", str(feed)],
                                 cwd=PROJECT_ROOT, env={**os.environ, "DATABASE_URL": url},
                                 stdout=out, stderr=err, text=True)
        _pid, status, usage = os.wait4(child.pid, 0)
        seconds = time.monotonic() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        said, errors = out.read(), err.read()
    if child.returncode != 0:
        raise SystemExit(f"import failed:\n{said[-2000:]}\n{errors[-2000:]}")
    return seconds, usage.ru_maxrss, said.strip().splitlines()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    work = PROJECT_ROOT / "var" / "bench"
    parser.add_argument("--database-url", default=f"sqlite:///{work / 'import.db'}")
    args = parser.parse_args()
    work.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "bot", "seed", "--scale", "--reset", "--date", "2026-03-12"],
                   cwd=PROJECT_ROOT, env={**os.environ, "DATABASE_URL": args.database_url},
                   check=True, capture_output=True)
    print(f"seeded the scale shop in {time.monotonic() - started:.0f} s")
    engine = make_engine(args.database_url)
    with make_session_factory(engine)() as session:
        stores = list(session.execute(select(Store.code).order_by(Store.id)).scalars())
        skus = list(session.execute(select(Variant.sku).order_by(Variant.id)).scalars())
    engine.dispose()

    rng = random.Random(7)
    full = [rng.randint(0, 12) for _ in range(len(skus) * len(stores))]
    changed = set(rng.sample(range(len(full)), len(full) // 10))
    feeds = {"full": work / "inventory-full.tsv", "next day": work / "inventory-next-day.tsv"}
    started = time.monotonic()
    lines = write_feed(feeds["full"], stores, skus, lambda s, v: full[s * len(skus) + v])
    write_feed(feeds["next day"], stores, skus,
               lambda s, v: (full[s * len(skus) + v] + 1) if s * len(skus) + v in changed
               else full[s * len(skus) + v])
    print(f"{len(skus):,} SKUs x {len(stores)} locations = {lines:,} lines per feed "
          f"(written in {time.monotonic() - started:.0f} s)")
    print(f"database: {engine.url.render_as_string(hide_password=True)}")
    for label, feed in (("1. full feed, new quantities", feeds["full"]),
                        ("2. the same feed again", feeds["full"]),
                        ("3. next day, 1 line in 10 changed", feeds["next day"])):
        seconds, peak_kb, said = run_import(args.database_url, feed)
        print(f"{label:<36} {seconds:6.1f} s   peak memory {peak_kb / 1024:,.0f} MB   ({said})")


if __name__ == "__main__":
    main()
