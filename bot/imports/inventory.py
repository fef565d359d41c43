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
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.core.models import Stock, StockAlert, Store, Variant, utcnow
from bot.imports.feed import Problem, Report, RowError, finish, read_rows, with_progress
from bot.stock.alerts import fire_alerts
from bot.stock.availability import StockChange

REQUIRED = ("store_code", "id", "availability")
AVAILABILITY = ("in_stock", "out_of_stock", "limited_availability", "on_display_to_order")
ONLINE = "online"


def _quantity(row: Dict[str, str]) -> int:
    availability = row["availability"].lower().replace(" ", "_")
    if availability not in AVAILABILITY:
        raise RowError("availability", f"« {row['availability']} » n'est pas une disponibilité "
                                       f"({', '.join(AVAILABILITY)})")
    text = row.get("quantity", "")
    if not text:
        if availability == "out_of_stock":
            return 0
        raise RowError("quantity", "nombre d'unités manquant")
    if not text.isdigit() or int(text) > 1_000_000:
        raise RowError("quantity", f"« {text} » n'est pas un nombre d'unités")
    quantity = int(text)
    if availability == "out_of_stock" and quantity > 0:
        raise RowError("availability", f"« out_of_stock » avec {quantity} unités")
    return quantity


def import_inventory(factory: sessionmaker, path: Path, dry_run: bool = False,
                     skip_invalid: bool = False) -> Report:
    report = Report("stock")
    rows = read_rows(path, REQUIRED)
    with factory() as session:
        stores = dict(session.execute(select(Store.code, Store.id)).all())
        online = session.execute(select(Store.id).where(Store.kind == "online")).scalars().first()
        skus = dict(session.execute(select(Variant.sku, Variant.id)).all())
        eans = dict(session.execute(select(Variant.ean, Variant.id).where(Variant.ean.is_not(None))).all())
        current = {(v, s): (q, r) for v, s, q, r in session.execute(
            select(Stock.variant_id, Stock.store_id, Stock.quantity, Stock.reserved)).all()}
        changes: List[Tuple[int, str, int, int, int]] = []
        seen: Dict[Tuple[int, int], int] = {}
        for line, row in rows:
            try:
                code = row["store_code"]
                store_id = online if code.lower() == ONLINE else stores.get(code)
                if store_id is None:
                    raise RowError("store_code", f"« {code} » n'est pas un magasin connu")
                item = row["id"]
                variant_id = skus.get(item) or (eans.get(item) if item.isdigit() else None)
                if variant_id is None:
                    raise RowError("id", f"« {item[:40]} » n'est pas un article connu")
                quantity = _quantity(row)
                if (variant_id, store_id) in seen:
                    raise RowError("id", f"« {item} » à « {code} » figure déjà ligne "
                                         f"{seen[variant_id, store_id]}")
                held = current.get((variant_id, store_id), (0, 0))[1]
                if quantity < held:
                    raise RowError("quantity", f"{held} unités sont réservées pour un retrait : "
                                               f"le stock ne peut pas descendre à {quantity}")
            except RowError as error:
                report.problems.append(Problem(line, error.column, str(error)))
                continue
            seen[variant_id, store_id] = line
            changes.append((line, f"{item}@{code}", variant_id, store_id, quantity))
        _write(session, changes, current, report)
        finish(session, report, dry_run, skip_invalid)
    return report


def _write(session: Session, changes: List[Tuple[int, str, int, int, int]],
           current: Dict[Tuple[int, int], Tuple[int, int]], report: Report) -> None:
    """Set the quantities in bulk (one statement per kind of change, not one per line),
    then fire the alerts of the variants that come back: what `set_stock` does line by
    line, for a whole feed."""
    now = utcnow()
    updates, inserts, back = [], [], []
    for _line, label, variant_id, store_id, quantity in with_progress(changes, "stock"):
        before = current.get((variant_id, store_id))
        if before is not None and before[0] == quantity:
            report.unchanged += 1
            continue
        held = before[1] if before else 0
        row = {"v": variant_id, "s": store_id, "q": quantity, "now": now}
        (updates if before else inserts).append(row)
        (report.updated if before else report.added).append(label)
        if StockChange(variant_id, store_id, (before[0] if before else 0) - held,
                       quantity - held).back_in_stock:
            back.append((variant_id, store_id))
    if updates:
        session.execute(update(Stock).where(Stock.variant_id == bindparam("v"),
                                            Stock.store_id == bindparam("s"))
                        .values(quantity=bindparam("q"), updated_at=bindparam("now"))
                        .execution_options(synchronize_session=False), updates)
    if inserts:
        session.execute(insert(Stock), [{"variant_id": r["v"], "store_id": r["s"], "quantity": r["q"],
                                         "reserved": 0, "updated_at": now} for r in inserts])
    waiting = set(session.execute(select(StockAlert.variant_id).where(
        StockAlert.sent_at.is_(None))).scalars())
    for variant_id, store_id in back:
        if variant_id in waiting:
            fire_alerts(session, variant_id, store_id)
