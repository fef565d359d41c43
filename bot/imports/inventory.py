"""`python -m bot import inventory FILE`: the local inventory feed of Google Merchant
Center (CSV or TSV): `store_code`, `id`, `quantity`, `availability`, and optionally
`pickup_method` and `pickup_sla`, which are read and not kept.

`id` is the product feed's item id, here a variant's SKU (or its GTIN, the EAN); the
store code `online` (or the web store's own code) is the online warehouse. A line with
an availability and no quantity counts as 0 when out of stock, and is refused otherwise
(a number of units is needed to answer "how many left"). Setting a quantity fires the
back-in-stock alerts of a variant that comes back, as `stock import` does (here written in
bulk, by the same rule); lines whose quantity is already so are left alone, so a second
import changes nothing. Held units stay held: a count below them is refused.

Feeds run to millions of lines (50,000 SKUs x 200 stores): lines are checked as they
are read, against the current stock read once into a compact map, and the changed ones
written a chunk at a time in the import's one transaction (bench/import_bench.py).
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Dict, List, Tuple

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from bot.core.models import StockAlert, Store, Variant, utcnow
from bot.imports.feed import Problem, Report, RowError, finish, open_rows
from bot.stock.alerts import fire_alerts
from bot.stock.availability import StockChange

REQUIRED = ("store_code", "id", "availability")
AVAILABILITY = ("in_stock", "out_of_stock", "limited_availability", "on_display_to_order")
ONLINE = "online"
PROGRESS_FROM_BYTES = 100_000  # about 2,000 lines
CHUNK = 50_000  # rows a statement writes at once
STORE_BITS = 20  # a (variant, store) pair as one int: variant_id << 20 | store_id


def _quantity(availability: str, text: str) -> int:
    if availability not in AVAILABILITY:
        availability = availability.lower().replace(" ", "_")
        if availability not in AVAILABILITY:
            raise RowError("availability", f"« {availability} » n'est pas une disponibilité "
                                           f"({', '.join(AVAILABILITY)})")
    if not text:
        if availability == "out_of_stock":
            return 0
        raise RowError("quantity", "nombre d'unités manquant")
    if not text.isdigit() or len(text) > 7:
        raise RowError("quantity", f"« {text} » n'est pas un nombre d'unités")
    quantity = int(text)
    if availability == "out_of_stock" and quantity > 0:
        raise RowError("availability", f"« out_of_stock » avec {quantity} unités")
    return quantity


class _Stock:
    """The current stock, compactly: {pair: quantity}, and the held units where any
    (read with the database's own cursor: ten million rows through the ORM's result
    objects cost more than the whole check of the feed)."""

    def __init__(self, session: Session) -> None:
        self.quantity: Dict[int, int] = {}
        self.held: Dict[int, int] = {}
        dbapi = session.connection().connection
        pair = f"CAST(variant_id AS BIGINT) * {1 << STORE_BITS} + store_id"
        for target, sql in ((self.quantity, f"SELECT {pair}, quantity FROM stock"),
                            (self.held, f"SELECT {pair}, reserved FROM stock WHERE reserved > 0")):
            # PostgreSQL: a named (server-side) cursor, or every row is fetched at once.
            cursor = dbapi.cursor("comptoir_stock") if session.bind.dialect.name == "postgresql" \
                else dbapi.cursor()
            try:
                cursor.execute(sql)
                while True:
                    rows = cursor.fetchmany(200_000)
                    if not rows:
                        break
                    target.update(rows)
            finally:
                cursor.close()


class _Writer:
    """Changed lines written as they come, a chunk at a time, in the import's
    transaction (nothing is written for a dry run or once a line was refused)."""

    def __init__(self, session: Session, enabled: bool) -> None:
        self.session, self.enabled = session, enabled
        self.postgres = session.bind.dialect.name == "postgresql"
        if enabled and not self.postgres:
            # SQLite's page cache (2 MB by default) for this connection only: millions of
            # lines change an index far larger than that.
            session.connection().exec_driver_sql(f"PRAGMA cache_size = -{256 * 1024}")
        self.now = utcnow()
        self.updates: List[Tuple[int, int, int]] = []
        self.inserts: List[Tuple[int, int, int]] = []
        self.staged = 0  # PostgreSQL: changed quantities waiting in the temporary table

    def _copy(self, dbapi, updates: List[Tuple[int, int, int]], inserts: List[Tuple[int, int, int]]) -> None:
        """PostgreSQL: COPY, the fastest way in (rows sent even in pages of 10,000 go in at
        30,000 a second). The changed quantities gather in a temporary table, applied by
        one UPDATE … FROM at the end (one pass over the stock, not one per chunk)."""
        now = self.now.isoformat(sep=" ")
        with dbapi.cursor() as cursor:
            if updates:
                if not self.staged:
                    cursor.execute("CREATE TEMPORARY TABLE stock_import (vid integer, sid integer, "
                                   "q integer) ON COMMIT DROP")
                cursor.copy_expert("COPY stock_import FROM STDIN", io.StringIO(
                    "".join(f"{v}\t{s}\t{q}\n" for v, s, q in updates)))
                self.staged += len(updates)
            if inserts:
                cursor.copy_expert("COPY stock (variant_id, store_id, quantity, reserved, updated_at) "
                                   "FROM STDIN", io.StringIO(
                                       "".join(f"{v}\t{s}\t{q}\t0\t{now}\n" for v, s, q in inserts)))

    def finish(self) -> None:
        """The last chunk, then (PostgreSQL) the staged quantities in one statement."""
        self.flush()
        if self.enabled and self.staged:
            with self.session.connection().connection.cursor() as cursor:
                cursor.execute("ANALYZE stock_import")
                cursor.execute("UPDATE stock SET quantity = t.q, updated_at = %s FROM stock_import t "
                               "WHERE stock.variant_id = t.vid AND stock.store_id = t.sid", (self.now,))

    def update(self, variant_id: int, store_id: int, quantity: int) -> None:
        self.updates.append((variant_id, store_id, quantity))
        if len(self.updates) >= CHUNK:
            self.flush()

    def insert(self, variant_id: int, store_id: int, quantity: int) -> None:
        self.inserts.append((variant_id, store_id, quantity))
        if len(self.inserts) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        updates, inserts, self.updates, self.inserts = self.updates, self.inserts, [], []
        if not self.enabled:
            return
        connection, now = self.session.connection(), self.now
        if self.postgres:
            self._copy(connection.connection, updates, inserts)
        else:
            # In key order: each statement then walks the stock's index forwards.
            updates.sort()
            inserts.sort()
            if updates:
                connection.exec_driver_sql("UPDATE stock SET quantity = ?, updated_at = ? "
                                           "WHERE variant_id = ? AND store_id = ?",
                                           [(q, now, v, s) for v, s, q in updates])
            if inserts:
                connection.exec_driver_sql("INSERT INTO stock (variant_id, store_id, quantity, reserved, "
                                           "updated_at) VALUES (?, ?, ?, 0, ?)",
                                           [(v, s, q, now) for v, s, q in inserts])


def import_inventory(factory: sessionmaker, path: Path, dry_run: bool = False,
                     skip_invalid: bool = False) -> Report:
    """Check every line as it is read, against the stock read once, and write the changed
    lines in bulk as they come; at the end, commit or roll everything back."""
    report = Report("stock")
    columns, rows = open_rows(path, REQUIRED)
    at_store, at_item, at_availability = columns["store_code"], columns["id"], columns["availability"]
    at_quantity = columns.get("quantity")
    width = max(columns.values()) + 1
    with factory() as session:
        stores = dict(session.execute(select(Store.code, Store.id)).all())
        online = session.execute(select(Store.id).where(Store.kind == "online")).scalars().first()
        skus = dict(session.execute(select(Variant.sku, Variant.id)).all())
        eans = dict(session.execute(select(Variant.ean, Variant.id).where(Variant.ean.is_not(None))).all())
        waiting = set(session.execute(select(StockAlert.variant_id).where(
            StockAlert.sent_at.is_(None))).scalars())
        current = _Stock(session)
        writer = _Writer(session, enabled=not dry_run)
        seen: Dict[int, int] = {}  # pair -> line
        back: List[Tuple[int, int]] = []
        unchanged = 0
        progress = tqdm(desc="stock", unit=" lignes", disable=os.path.getsize(path) < PROGRESS_FROM_BYTES)
        for line, values in rows:
            if not line & 0xFFFF:  # now and then: a bar updated per line costs more than the line
                progress.update(0x10000)
            if len(values) < width:
                values = values + [""] * (width - len(values))
            try:
                code, item = values[at_store], values[at_item]
                store_id = stores.get(code)
                if store_id is None:
                    code = code.strip()
                    store_id = stores.get(code) or (online if code.lower() == ONLINE else None)
                    if store_id is None:
                        raise RowError("store_code", f"« {code} » n'est pas un magasin connu")
                variant_id = skus.get(item)
                if variant_id is None:
                    item = item.strip()
                    variant_id = skus.get(item) or (eans.get(item) if item.isdigit() else None)
                    if variant_id is None:
                        raise RowError("id", f"« {item[:40]} » n'est pas un article connu")
                availability = values[at_availability]
                count = values[at_quantity] if at_quantity is not None else ""
                if availability == "in_stock" and count.isdigit() and len(count) < 8:
                    quantity = int(count)  # the common line, checked quickly
                else:
                    quantity = _quantity(availability.strip(), count.strip())
                pair = variant_id << STORE_BITS | store_id
                if pair in seen:
                    raise RowError("id", f"« {item} » à « {code} » figure déjà ligne {seen[pair]}")
                held = current.held.get(pair, 0)
                if quantity < held:
                    raise RowError("quantity", f"{held} unités sont réservées pour un retrait : "
                                               f"le stock ne peut pas descendre à {quantity}")
            except RowError as error:
                report.problems.append(Problem(line, error.column, str(error)))
                writer.enabled = writer.enabled and skip_invalid
                continue
            seen[pair] = line
            before = current.quantity.get(pair)
            if before == quantity:
                unchanged += 1
                continue
            if before is None:
                writer.insert(variant_id, store_id, quantity)
                report.added.add(lambda: f"{item}@{code}")
            else:
                writer.update(variant_id, store_id, quantity)
                report.updated.add(lambda: f"{item}@{code}")
            if variant_id in waiting and StockChange(variant_id, store_id, (before or 0) - held,
                                                     quantity - held).back_in_stock:
                back.append((variant_id, store_id))
        progress.close()
        report.unchanged = unchanged
        del seen, current
        writer.finish()
        if writer.enabled:
            for variant_id, store_id in back:
                fire_alerts(session, variant_id, store_id)
        finish(session, report, dry_run, skip_invalid)
    return report
