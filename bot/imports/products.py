"""`python -m bot import products FILE`: the product feed of Google Merchant Center, as
TSV, CSV or its XML (RSS 2.0 with the `g:` namespace) form.

Each item of the feed is a variant (`id`, its SKU); items sharing an `item_group_id` are
the variants of one product (the group id is the product's SKU; an item without a group
is a product of its own). Read: `title`, `description`, `brand`, `gtin` (kept as the
EAN), `item_group_id`, `color`, `size`, `product_type` ("Running > Chaussures de
running": the first level is the department, the last the category; else
`google_product_category`), `price` ("140.00 EUR"), `image_link`, `link`. `mpn`,
`gender`, `availability` and the rest are read and not kept (stock comes from the
inventory feed).

A product's name is the title its variants share (a title that goes on with the size or
colour, "Pegasus 41 - 42 noir", is cut to what they have in common); its price is the
lowest of its variants' (said, when they differ). Products and variants are matched by
their ids: new ones are added, changed ones updated, a withdrawn product that comes back
is offered again. With `delete_missing`, products absent from the file are withdrawn (no
longer offered; nothing is deleted, so holds, purchases and alerts keep what they point
to), and variants absent from a product of the file are deleted unless a hold, purchase,
restock or alert points to them (then kept, and said).
"""
from __future__ import annotations

import re
import xml.parsers.expat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

from sqlalchemy import select, union
from sqlalchemy.orm import Session, sessionmaker

from bot.core.models import Product, Purchase, Reservation, Restock, StockAlert, Variant, utcnow
from bot.imports.feed import FeedError, Problem, Report, RowError, finish, read_rows, with_progress

REQUIRED = ("id", "title", "price")
PRICE_RE = re.compile(r"^(\d{1,7})(?:[.,](\d{1,2}))?(?:\s*([A-Za-z]{3}))?$")
CURRENCY = "EUR"
URL_RE = re.compile(r"^(https?://[^\s<>\"]+|/[^\s<>\"]*)$")
ID_RE = re.compile(r"^[^\s<>\"]{1,50}$")
XML_NAMESPACE = "http://base.google.com/ns/1.0"
Row = Tuple[int, Dict[str, str]]


@dataclass
class ItemRow:
    """One item of the feed, checked."""

    line: int
    id: str
    group: str
    title: str
    brand: str
    description: str
    ean: Optional[str]
    size: Optional[str]
    colour: Optional[str]
    department: str
    category: str
    price_cents: int
    image_url: Optional[str]
    link: Optional[str]


@dataclass
class ProductRow:
    """The items of one group: a product and its variants."""

    sku: str
    items: List[ItemRow] = field(default_factory=list)

    @property
    def name(self) -> str:
        titles = [item.title for item in self.items]
        if len(set(titles)) == 1:
            return titles[0]
        words = [title.split() for title in titles]
        common = []
        for column in zip(*words):
            if len(set(column)) > 1:
                break
            common.append(column[0])
        name = " ".join(common).rstrip(" -–,/(|")
        return name or titles[0]


def parse_price(cell: str) -> int:
    """"140.00 EUR", "140 EUR", "12,50" -> cents; RowError otherwise."""
    match = PRICE_RE.match(cell.strip())
    if not match:
        raise RowError("price", f"« {cell} » n'est pas un prix")
    currency = (match.group(3) or CURRENCY).upper()
    if currency != CURRENCY:
        raise RowError("price", f"« {cell} » : seuls les prix en euros (EUR) sont pris en charge")
    return int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))


def parse_gtin(cell: str) -> Optional[str]:
    """A GTIN-8, -12, -13 or -14 with its check digit, kept as an EAN-13 (or 8)."""
    if not cell:
        return None
    digits = cell.replace(" ", "")
    if not digits.isdigit() or len(digits) not in (8, 12, 13, 14):
        raise RowError("gtin", f"« {cell} » n'est pas un GTIN (8, 12, 13 ou 14 chiffres)")
    body, check = digits[:-1], int(digits[-1])
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    if (10 - total % 10) % 10 != check:
        raise RowError("gtin", f"« {cell} » : la clé de contrôle ne correspond pas")
    if len(digits) == 12:
        return "0" + digits
    if len(digits) == 14:
        if digits[0] != "0":
            raise RowError("gtin", f"« {cell} » : un GTIN-14 d'emballage n'est pas un article")
        return digits[1:]
    return digits


def _url(row: Dict[str, str], column: str) -> Optional[str]:
    cell = row.get(column, "")
    if not cell:
        return None
    if len(cell) > 500 or not URL_RE.match(cell):
        raise RowError(column, f"« {cell[:60]} » n'est pas une adresse web (https://…)")
    return cell


def _text(row: Dict[str, str], column: str, limit: int, required: bool = False) -> str:
    cell = row.get(column, "")
    if required and not cell:
        raise RowError(column, "valeur manquante")
    if len(cell) > limit:
        raise RowError(column, f"plus de {limit} caractères")
    return cell


def parse_item(line: int, row: Dict[str, str]) -> ItemRow:
    """One item, checked; RowError names the first column at fault."""
    item_id = row["id"]
    if not ID_RE.match(item_id):
        raise RowError("id", f"« {item_id[:60]} » n'est pas un identifiant (1 à 50 caractères, sans espace)")
    group = row.get("item_group_id", "")
    if group and not ID_RE.match(group):
        raise RowError("item_group_id", f"« {group[:60]} » n'est pas un identifiant")
    levels = [level.strip() for level in re.split(r">", row.get("product_type", "")
                                                  or row.get("google_product_category", ""))
              if level.strip()]
    return ItemRow(
        line=line, id=item_id, group=group or item_id,
        title=_text(row, "title", 160, required=True), brand=_text(row, "brand", 80, required=True),
        description=_text(row, "description", 5000), ean=parse_gtin(row.get("gtin", "")),
        size=_text(row, "size", 16) or None, colour=_text(row, "color", 40) or None,
        department=(levels[0] if levels else "")[:40], category=(levels[-1] if levels else "")[:80],
        price_cents=parse_price(row["price"]), image_url=_url(row, "image_link"), link=_url(row, "link"))


def read_feed(path: Path) -> List[Row]:
    """(line, row) of a product feed: XML if it looks like XML, else CSV or TSV."""
    try:
        with open(path, "rb") as handle:
            start = handle.read(200).lstrip(b"\xef\xbb\xbf \t\r\n")
    except FileNotFoundError:
        raise FeedError(f"fichier introuvable : {path}") from None
    if start.startswith(b"<"):
        return read_xml(path)
    return read_rows(path, REQUIRED)


def _refuse_entities(*_declaration) -> None:
    """A feed declares no entities: refusing them refuses XML bombs (entities expanding
    into billions of characters) and external entities (a file of this machine)."""
    raise FeedError("le fichier XML déclare des entités (<!ENTITY>) : refusé")


def read_xml(path: Path) -> List[Row]:
    """The items of an RSS 2.0 (or Atom) product feed, keyed by their local names
    (`g:price` -> price), each with the line where it starts."""
    rows: List[Row] = []
    current: Optional[Dict[str, str]] = None
    stack: List[str] = []
    text: List[str] = []
    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")

    def start(name: str, _attributes) -> None:
        nonlocal current
        local = name.rsplit(" ", 1)[-1]
        if local in ("item", "entry") and current is None:
            current = {}
            rows.append((parser.CurrentLineNumber, current))
        stack.append(local)
        text.clear()

    def end(name: str) -> None:
        nonlocal current
        local = stack.pop()
        if current is not None and local in ("item", "entry"):
            current = None
        elif current is not None and len(stack) and stack[-1] in ("item", "entry"):
            current.setdefault(local.lower(), "".join(text).strip())
        text.clear()

    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.CharacterDataHandler = text.append
    parser.EntityDeclHandler = _refuse_entities
    try:
        with open(path, "rb") as handle:
            parser.ParseFile(handle)
    except xml.parsers.expat.ExpatError as error:
        raise FeedError(f"XML illisible ligne {error.lineno} : {xml.parsers.expat.errors.messages[error.code]}") from None
    if not rows:
        raise FeedError("aucun article (<item>) dans le fichier XML")
    for line, row in rows:
        for column in REQUIRED:
            row.setdefault(column, "")
    return rows


def _group(report: Report, items: List[ItemRow]) -> List[ProductRow]:
    """Items grouped into products, refusing what cannot be one: an id twice, two items of
    a product with the same size and colour, a GTIN twice."""
    products: Dict[str, ProductRow] = {}
    ids: Dict[str, int] = {}
    eans: Dict[str, int] = {}
    for item in items:
        product = products.setdefault(item.group, ProductRow(item.group))
        twin = next((other for other in product.items
                     if (other.size, other.colour) == (item.size, item.colour)), None)
        if item.id in ids:
            report.problems.append(Problem(item.line, "id", f"« {item.id} » figure déjà ligne {ids[item.id]}"))
        elif item.ean and item.ean in eans:
            report.problems.append(Problem(item.line, "gtin", f"« {item.ean} » figure déjà ligne {eans[item.ean]}"))
        elif twin is not None:
            report.problems.append(Problem(item.line, "size", f"même taille et couleur que la ligne {twin.line}"))
        else:
            ids[item.id] = item.line
            if item.ean:
                eans[item.ean] = item.line
            product.items.append(item)
    return [product for product in products.values() if product.items]


def import_products(factory: sessionmaker, path: Path, dry_run: bool = False,
                    skip_invalid: bool = False, delete_missing: bool = False) -> Report:
    report = Report("produits")
    items: List[ItemRow] = []
    for line, raw in read_feed(path):
        try:
            items.append(parse_item(line, raw))
        except RowError as error:
            report.problems.append(Problem(line, error.column, str(error)))
    products = _group(report, items)
    with factory() as session:
        writer = _Writer(session, report)
        writer.release_eans([item for product in products for item in product.items])
        for product in with_progress(products, "produits"):
            writer.apply(product)
        if delete_missing and (skip_invalid or not report.problems):
            writer.withdraw_missing({p.sku for p in products}, {i.id for p in products for i in p.items})
        finish(session, report, dry_run, skip_invalid)
    return report


class _Writer:
    """Upserts products and their variants, in one session."""

    def __init__(self, session: Session, report: Report) -> None:
        self.session, self.report = session, report
        self.products = {p.sku: p for p in session.execute(select(Product)).scalars()}
        self.variants = {v.sku: v for v in session.execute(select(Variant)).scalars()}
        self.eans = {v.ean: v.sku for v in self.variants.values() if v.ean}
        self.now = utcnow()

    def release_eans(self, items: List[ItemRow]) -> None:
        """GTINs that move from one variant to another (two swapped by mistake, now put
        right) are freed first, so that the unique index never sees one twice."""
        for item in items:
            variant = self.variants.get(item.id)
            if variant is not None and variant.ean and variant.ean != item.ean:
                self.eans.pop(variant.ean, None)
                variant.ean = None
        self.session.flush()

    def apply(self, row: ProductRow) -> None:
        refused = self._foreign_ean(row)
        if refused:
            self.report.problems.append(refused)
            return
        first = row.items[0]
        prices = sorted({item.price_cents for item in row.items})
        if len(prices) > 1:
            self.report.notes.append(Problem(first.line, "price", (
                f"« {row.sku} » : prix différents selon les variantes, le plus bas est retenu "
                f"({prices[0] / 100:.2f} EUR)")))
        fields = dict(name=row.name, brand=first.brand, department=first.department,
                      category=first.category, price_cents=prices[0], description=first.description,
                      image_url=first.image_url, link=first.link, active=True)
        product = self.products.get(row.sku)
        changed = product is None
        if product is None:
            product = self.products[row.sku] = Product(sku=row.sku, **fields)
            self.session.add(product)
        elif any(getattr(product, key) != value for key, value in fields.items()):
            for key, value in fields.items():
                setattr(product, key, value)
            changed = True
        for item in row.items:
            changed = self._variant(product, item) or changed
        if changed:
            product.updated_at = self.now
            (self.report.updated if product.id else self.report.added).append(row.sku)
        else:
            self.report.unchanged += 1

    def _foreign_ean(self, row: ProductRow) -> Optional[Problem]:
        """A GTIN already carried by a variant this file does not rename."""
        ids = {item.id for item in row.items}
        for item in row.items:
            owner = self.eans.get(item.ean) if item.ean else None
            if owner is not None and owner != item.id and owner not in ids:
                return Problem(item.line, "gtin", f"« {item.ean} » est déjà celui de l'article {owner}")
        return None

    def _variant(self, product: Product, item: ItemRow) -> bool:
        values = dict(ean=item.ean, size=item.size, colour=item.colour)
        variant = self.variants.get(item.id)
        if variant is None:
            variant = self.variants[item.id] = Variant(sku=item.id, **values)
            product.variants.append(variant)
        elif (product.id is None or variant.product_id != product.id
              or any(getattr(variant, k) != v for k, v in values.items())):
            if product.id is None or variant.product_id != product.id:
                variant.product = product  # moved to another group
            for key, value in values.items():
                setattr(variant, key, value)
        else:
            return False
        if item.ean:
            self.eans[item.ean] = item.id
        return True

    def withdraw_missing(self, products_in_file: Set[str], items_in_file: Set[str]) -> None:
        """Withdraw the products the file does not list; delete the variants a listed
        product no longer has, unless something points to them."""
        for sku, product in self.products.items():
            if sku not in products_in_file and product.active and product.id is not None:
                product.active = False
                product.updated_at = self.now
                self.report.withdrawn.append(sku)
        pointed = set(self.session.execute(union(
            select(Reservation.variant_id), select(Purchase.variant_id), select(Restock.variant_id),
            select(StockAlert.variant_id))).scalars())
        product_skus = {p.id: sku for sku, p in self.products.items()}
        for sku, variant in self.variants.items():
            if sku in items_in_file or product_skus.get(variant.product_id) not in products_in_file:
                continue
            if variant.id in pointed:
                self.report.notes.append(Problem(None, "id", (
                    f"« {sku} » n'est plus dans le fichier mais gardé : des réservations, achats, "
                    "réassorts ou alertes y renvoient")))
                continue
            self.session.delete(variant)
            self.report.withdrawn.append(sku)
