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
are read, a chunk at a time (NumPy), against the current stock read once into dense
arrays, and the changed ones written a chunk at a time in the import's one transaction
(bench/import_bench.py).
"""
from __future__ import annotations

import io
import itertools
import os
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from bot.core.models import Stock, StockAlert, Store, Variant, utcnow
from bot.imports.feed import Names, Problem, Report, RowError, finish, open_chunks
from bot.stock.alerts import fire_alerts
from bot.stock.availability import StockChange

REQUIRED = ("store_code", "id", "availability")
AVAILABILITY = ("in_stock", "out_of_stock", "limited_availability", "on_display_to_order")
ONLINE = "online"
PROGRESS_FROM_BYTES = 100_000  # about 2,000 lines
CHUNK = 50_000  # lines checked at once, and rows a statement writes at once


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
    if not text.isdecimal() or len(text) > 7:
        raise RowError("quantity", f"« {text} » n'est pas un nombre d'unités")
    quantity = int(text)
    if availability == "out_of_stock" and quantity > 0:
        raise RowError("availability", f"« out_of_stock » avec {quantity} unités")
    return quantity


PACK = 10_000_000  # a stock line read as one number: (variant id * W + store id) * PACK + quantity


def _stock_lines(session: Session, width: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every stock line's variant id, store id and quantity, each line read as one number
    in one piece of text and parsed by NumPy (ten million rows as Python tuples cost
    more than checking the whole feed). A quantity that does not fit is read apart."""
    packed = f"(CAST(variant_id AS BIGINT) * {width} + store_id) * {PACK} + quantity"
    fits = f"quantity BETWEEN 0 AND {PACK - 1}"
    connection = session.connection()
    if session.bind.dialect.name == "postgresql":
        text = io.StringIO()
        with connection.connection.cursor() as cursor:
            cursor.copy_expert(f"COPY (SELECT {packed} FROM stock WHERE {fits}) TO STDOUT", text)
        text = text.getvalue()
    else:
        text = connection.exec_driver_sql(
            f"SELECT group_concat({packed}, ' ') FROM stock WHERE {fits}").scalar() or ""
    numbers = np.fromstring(text, dtype=np.int64, sep=" ") if text else np.zeros(0, dtype=np.int64)
    pairs, quantity = np.divmod(numbers, PACK)
    odd = np.array(connection.exec_driver_sql(
        f"SELECT variant_id, store_id, quantity FROM stock WHERE NOT ({fits})").all(),
        dtype=np.int64).reshape(-1, 3)
    return (np.concatenate([pairs // width, odd[:, 0]]), np.concatenate([pairs % width, odd[:, 1]]),
            np.concatenate([quantity, odd[:, 2]]))


class _Shop:
    """What a feed's lines are checked against: store and item ids, and the current stock
    and held units as dense arrays with one cell per (variant, store), at `key` (ten
    million lines checked one by one in Python took a minute, a chunk at a time in
    NumPy seconds; a dict of ten million entries held a gigabyte, these arrays 160 MB)."""

    def __init__(self, session: Session) -> None:
        self.stores = dict(session.execute(select(Store.code, Store.id)).all())
        self.online = session.execute(select(Store.id).where(Store.kind == "online")).scalars().first()
        self.skus = dict(session.execute(select(Variant.sku, Variant.id)).all())
        self.eans = dict(session.execute(select(Variant.ean, Variant.id).where(Variant.ean.is_not(None))).all())
        self.waiting = np.array(sorted(set(session.execute(select(StockAlert.variant_id).where(
            StockAlert.sent_at.is_(None))).scalars())), dtype=np.int64)
        self.variant_ids = np.array(sorted(self.skus.values()), dtype=np.int64)
        self.store_ids = np.array(sorted(self.stores.values()), dtype=np.int64)
        size = max(len(self.variant_ids) * len(self.store_ids), 1)
        self.quantity = np.full(size, -1, dtype=np.int32)  # -1: no stock line yet
        self.held = np.zeros(size, dtype=np.int32)
        self.first_line = np.zeros(size, dtype=np.int64)  # 0: not in the feed (yet)
        variant_id, store_id, quantity = _stock_lines(session, int(self.store_ids[-1]) + 1
                                                       if len(self.store_ids) else 1)
        self.quantity[self.key(variant_id, store_id)] = quantity
        held = np.array(session.execute(select(Stock.variant_id, Stock.store_id, Stock.reserved)
                                        .where(Stock.reserved > 0)).all(), dtype=np.int64).reshape(-1, 3)
        self.held[self.key(held[:, 0], held[:, 1])] = held[:, 2]

    def key(self, variant_id: np.ndarray, store_id: np.ndarray) -> np.ndarray:
        """The cells of these (variant, store) pairs, all known ids."""
        return (np.searchsorted(self.variant_ids, variant_id) * len(self.store_ids)
                + np.searchsorted(self.store_ids, store_id))

    def resolve(self, values: List[str], at: Tuple[int, int, int, Optional[int]]) -> Tuple[int, int, int]:
        """One line checked the long way (spaces, `online`, a GTIN, every error): (variant
        id, store id, quantity), or RowError."""
        at_store, at_item, at_availability, at_quantity = at
        code, item = values[at_store].strip(), values[at_item].strip()
        store_id = self.stores.get(code) or (self.online if code.lower() == ONLINE else None)
        if store_id is None:
            raise RowError("store_code", f"« {code} » n'est pas un magasin connu")
        variant_id = self.skus.get(item) or (self.eans.get(item) if item.isdigit() else None)
        if variant_id is None:
            raise RowError("id", f"« {item[:40]} » n'est pas un article connu")
        count = values[at_quantity] if at_quantity is not None else ""
        return variant_id, store_id, _quantity(values[at_availability].strip(), count.strip())


class _Writer:
    """Changed lines written a chunk at a time, in the import's transaction (nothing is
    written for a dry run or once a line was refused)."""

    def __init__(self, session: Session, enabled: bool) -> None:
        self.session, self.enabled = session, enabled
        self.postgres = session.bind.dialect.name == "postgresql"
        if enabled and not self.postgres:
            # SQLite's page cache (2 MB by default) for this connection only: millions of
            # lines change an index far larger than that.
            session.connection().exec_driver_sql(f"PRAGMA cache_size = -{256 * 1024}")
        self.now = utcnow()
        self.staged = 0  # PostgreSQL: changed quantities waiting in the temporary table

    def update(self, variant_id: np.ndarray, store_id: np.ndarray, quantity: np.ndarray) -> None:
        self._write(variant_id, store_id, quantity, insert=False)

    def insert(self, variant_id: np.ndarray, store_id: np.ndarray, quantity: np.ndarray) -> None:
        self._write(variant_id, store_id, quantity, insert=True)

    def _write(self, variant_id: np.ndarray, store_id: np.ndarray, quantity: np.ndarray,
               insert: bool) -> None:
        if not self.enabled or not len(variant_id):
            return
        # In key order: each statement then walks the stock's index forwards.
        order = np.lexsort((store_id, variant_id))
        rows = (variant_id[order].tolist(), store_id[order].tolist(), quantity[order].tolist())
        connection = self.session.connection()
        if self.postgres:
            self._copy(connection.connection, rows, insert)
        elif insert:
            connection.exec_driver_sql("INSERT INTO stock (variant_id, store_id, quantity, reserved, "
                                       "updated_at) VALUES (?, ?, ?, 0, ?)",
                                       list(zip(*rows, itertools.repeat(self.now))))
        else:
            connection.exec_driver_sql("UPDATE stock SET quantity = ?, updated_at = ? "
                                       "WHERE variant_id = ? AND store_id = ?",
                                       list(zip(rows[2], itertools.repeat(self.now), rows[0], rows[1])))

    def _copy(self, dbapi, rows: Tuple[List[int], List[int], List[int]], insert: bool) -> None:
        """PostgreSQL: COPY, the fastest way in (rows sent even in pages of 10,000 go in at
        30,000 a second). The changed quantities gather in a temporary table, applied by
        one UPDATE … FROM at the end (one pass over the stock, not one per chunk)."""
        with dbapi.cursor() as cursor:
            if insert:
                line = "{}\t{}\t{}\t0\t" + self.now.isoformat(sep=" ") + "\n"
                cursor.copy_expert("COPY stock (variant_id, store_id, quantity, reserved, updated_at) "
                                   "FROM STDIN", io.StringIO("".join(map(line.format, *rows))))
                return
            if not self.staged:
                cursor.execute("CREATE TEMPORARY TABLE stock_import (vid integer, sid integer, "
                               "q integer) ON COMMIT DROP")
            cursor.copy_expert("COPY stock_import FROM STDIN",
                               io.StringIO("".join(map("{}\t{}\t{}\n".format, *rows))))
            self.staged += len(rows[0])

    def finish(self) -> None:
        """PostgreSQL: the staged quantities in one statement."""
        if self.enabled and self.staged:
            with self.session.connection().connection.cursor() as cursor:
                cursor.execute("ANALYZE stock_import")
                cursor.execute("UPDATE stock SET quantity = t.q, updated_at = %s FROM stock_import t "
                               "WHERE stock.variant_id = t.vid AND stock.store_id = t.sid", (self.now,))


def import_inventory(factory: sessionmaker, path: Path, dry_run: bool = False,
                     skip_invalid: bool = False) -> Report:
    """Check every line as it is read, a chunk at a time, against the stock read once,
    and write the changed lines in bulk as they come; at the end, commit or roll
    everything back."""
    report = Report("stock")
    columns, chunks = open_chunks(path, REQUIRED, CHUNK)
    at = (columns["store_code"], columns["id"], columns["availability"], columns.get("quantity"))
    with factory() as session:
        shop = _Shop(session)
        writer = _Writer(session, enabled=not dry_run)
        back: List[Tuple[int, int]] = []
        progress = tqdm(desc="stock", unit=" lignes", disable=os.path.getsize(path) < PROGRESS_FROM_BYTES)
        for chunk in chunks:
            progress.update(len(chunk))
            problems = _check_chunk(shop, chunk, at, report, writer, back)
            if problems:
                report.problems.extend(problems)
                writer.enabled = writer.enabled and skip_invalid
        progress.close()
        del shop
        writer.finish()
        if writer.enabled:
            for variant_id, store_id in back:
                fire_alerts(session, variant_id, store_id)
        finish(session, report, dry_run, skip_invalid)
    return report


def _check_chunk(shop: _Shop, chunk: List[Tuple[int, List[str]]], at: Tuple[int, int, int, Optional[int]],
                 report: Report, writer: "_Writer", back: List[Tuple[int, int]]) -> List[Problem]:
    """One chunk of lines: the common line (a known store code and SKU, a plain count)
    checked for the whole chunk at once, any other line the long way; then, in line
    order, repeated lines and counts under the held units refused, and what changed
    handed to the writer. Returns the chunk's problems, by line."""
    lines = np.fromiter((line for line, _values in chunk), dtype=np.int64, count=len(chunk))
    at_store, at_item, at_availability, at_quantity = at
    width = max(index for index in at if index is not None) + 1
    cells = [values if len(values) >= width else values + [""] * (width - len(values))
             for _line, values in chunk]
    codes = [values[at_store] for values in cells]
    items = [values[at_item] for values in cells]
    availability = np.array([values[at_availability] for values in cells] or [""])
    counts = np.array([values[at_quantity] for values in cells] if at_quantity is not None
                      else [""] * len(cells) or [""])
    store_id = np.fromiter(map(shop.stores.get, codes, itertools.repeat(-1)), dtype=np.int64, count=len(cells))
    variant_id = np.fromiter(map(shop.skus.get, items, itertools.repeat(-1)), dtype=np.int64, count=len(cells))
    plain = np.char.isdecimal(counts) & (np.char.str_len(counts) < 8)
    quantity = np.zeros(len(cells), dtype=np.int64)
    try:
        quantity[plain] = counts[plain].astype(np.int64)
    except ValueError:  # digits of another script: those lines the long way
        plain &= np.array([count.isascii() for count in counts.tolist()])
        quantity[plain] = counts[plain].astype(np.int64)
    fast = (store_id >= 0) & (variant_id >= 0) & plain & (
        np.isin(availability, ("in_stock", "limited_availability", "on_display_to_order"))
        | ((availability == "out_of_stock") & (quantity == 0)))
    problems: List[Problem] = []
    valid = fast.copy()
    for index in np.flatnonzero(~fast).tolist():  # the uncommon lines, the long way
        try:
            variant_id[index], store_id[index], quantity[index] = shop.resolve(cells[index], at)
            valid[index] = True
        except RowError as error:
            problems.append(Problem(int(lines[index]), error.column, str(error)))
    key = np.where(valid, shop.key(variant_id, store_id), 0)
    held = np.where(valid, shop.held[key], 0)
    # In line order, as one line at a time would: a line repeating an earlier accepted
    # line (of an earlier chunk, or of this one) is refused, then a count under the held units.
    kept = np.flatnonzero(valid & (quantity >= held))
    known, first = np.unique(key[kept], return_index=True)
    first = kept[first]  # each pair's first line in this chunk that can stand
    at_known = np.minimum(np.searchsorted(known, key), max(len(known) - 1, 0))
    earlier_here = (known[at_known] == key) & (first[at_known] < np.arange(len(key))) if len(known) \
        else np.zeros(len(key), dtype=bool)
    repeated = valid & ((shop.first_line[key] > 0) | earlier_here)
    for index in np.flatnonzero(repeated).tolist():
        line = int(shop.first_line[key[index]]) or int(lines[first[at_known[index]]])
        problems.append(Problem(int(lines[index]), "id", f"« {cells[index][at_item].strip()} » à "
                                f"« {cells[index][at_store].strip()} » figure déjà ligne {line}"))
    under = valid & ~repeated & (quantity < held)
    for index in np.flatnonzero(under).tolist():
        problems.append(Problem(int(lines[index]), "quantity", f"{held[index]} unités sont réservées "
                                f"pour un retrait : le stock ne peut pas descendre à {quantity[index]}"))
    valid &= ~(repeated | under)
    shop.first_line[key[valid]] = lines[valid]
    before = np.where(valid, shop.quantity[key], 0)
    report.unchanged += int(np.count_nonzero(valid & (before == quantity)))
    changed = valid & (before != quantity)
    for names, rows in ((report.added, np.flatnonzero(changed & (before < 0))),
                        (report.updated, np.flatnonzero(changed & (before >= 0)))):
        names.add_many(len(rows), lambda rows=rows: [f"{items[i].strip()}@{codes[i].strip()}"
                                                     for i in rows[:Names.KEPT].tolist()])
        (writer.insert if names is report.added else writer.update)(
            variant_id[rows], store_id[rows], quantity[rows])
    if len(shop.waiting):
        for index in np.flatnonzero(changed & np.isin(variant_id, shop.waiting)).tolist():
            if StockChange(int(variant_id[index]), int(store_id[index]),
                           max(int(before[index]), 0) - int(held[index]),
                           int(quantity[index]) - int(held[index])).back_in_stock:
                back.append((int(variant_id[index]), int(store_id[index])))
    problems.sort(key=lambda problem: problem.line)
    return problems
