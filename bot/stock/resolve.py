"""What the shopper means: the product (the entity, else the words of the message, else
the one in context), its variant (size and colour said now or before) and the place (a
store named, a city, a postcode, a shared position, or a verified customer's home store).

Resolution only: `bot.stock.desk` decides what to answer and `bot.stock.wording` says it.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.chats import find_identity
from bot.core.models import Customer, Store
from bot.core.text import normalise
from bot.customers.verification import verified_customer
from bot.stock.catalog import (CatalogIndex, ProductInfo, SearchResult, VariantInfo, match_value,
                               read_variant, tokens_of)
from bot.stores import directory
from bot.stores.geo import Gazetteer, Place, place_from_metadata

CONTEXT_SLOTS = ("stock_product", "stock_variant", "stock_size", "stock_colour", "stock_store",
                 "pending")
# Without a product entity, a message replaces the product in context only if it names
# another one clearly (one rare word typed right, or several words).
SWITCH_SCORE = 5.0


@dataclass
class StockAsk:
    text: str
    channel: str  # "web" or "telegram"
    sender: str
    product: Optional[str] = None
    size: Optional[str] = None
    colour: Optional[str] = None
    city: Optional[str] = None
    postcode: Optional[str] = None
    quantity: Optional[str] = None
    code: Optional[str] = None
    alert_channel: Optional[str] = None
    metadata: Dict[str, Any] = field(default_factory=dict)
    context: Dict[str, Optional[str]] = field(default_factory=dict)  # CONTEXT_SLOTS values


@dataclass
class ProductMeant:
    """One product; or several that match (`choices`); or none we sell (`not_carried`,
    with what the search found nearest)."""

    product: Optional[ProductInfo] = None
    choices: List[ProductInfo] = field(default_factory=list)
    not_carried: Optional[SearchResult] = None


@dataclass
class VariantMeant:
    """The variant, or the size and colour known so far when one is still missing."""

    variant: Optional[VariantInfo]
    size: Optional[str]
    colour: Optional[str]


class Resolver:
    """Reads a `StockAsk` against the catalog index and the store directory."""

    def __init__(self, session: Session, index: CatalogIndex, now: dt.datetime) -> None:
        self.session = session
        self.index = index
        self.now = now
        physical = session.execute(select(Store).where(Store.kind == "store")).scalars().all()
        self.gazetteer = Gazetteer((s.city, s.postcode, s.latitude, s.longitude) for s in physical)
        self.store_words = {w for s in physical for w in normalise(s.name).split()}

    def context_product(self, ask: StockAsk) -> Optional[ProductInfo]:
        sku = ask.context.get("stock_product")
        return self.index.by_sku.get(sku.lower()) if sku else None

    def context_variant(self, ask: StockAsk) -> Optional[Tuple[ProductInfo, VariantInfo]]:
        sku = ask.context.get("stock_variant")
        return self.index.by_variant_sku.get(sku.lower()) if sku else None

    def _strip_known_words(self, text: str, product: Optional[ProductInfo]) -> str:
        """The message without sizes, colours and places: what may name a new product."""
        noise = {w for name in self.gazetteer.known_city_words() for w in name.split()}
        noise |= self.store_words
        if product is not None:
            noise |= {normalise(v) for v in product.sizes + product.colours}
        words = normalise(text).split()
        return " ".join(w for w in words if w not in noise)

    def place(self, ask: StockAsk) -> Tuple[Optional[Store], Optional[Place]]:
        """The store the shopper means, and the point to measure distances from."""
        named = self.named_place(ask)
        if named is not None:
            return named
        code = ask.context.get("stock_store")
        if code:
            store = self.session.execute(select(Store).where(Store.code == code)).scalar_one_or_none()
            if store:
                return store, Place(store.city, store.latitude, store.longitude)
        home = self.home_store(ask)
        if home is not None:
            return home, Place(home.city, home.latitude, home.longitude)
        return None, None

    def named_place(self, ask: StockAsk) -> Optional[Tuple[Optional[Store], Place]]:
        """The place given in this message (shared location, city, postcode), if any."""
        located = place_from_metadata(ask.metadata)
        if located:
            return None, located
        for query in (ask.city, ask.postcode):
            if query:
                found = directory.find_stores(self.session, query)
                if found and not query.isdigit():
                    store = found[0]
                    return store, Place(store.city, store.latitude, store.longitude)
                place = (self.gazetteer.from_postcode(query) if query.isdigit()
                         else self.gazetteer.from_city(query))
                if place:
                    return None, place
        place = self.gazetteer.find_in_text(ask.text)
        if place:
            found = directory.find_stores(self.session, place.label)
            if found and normalise(found[0].city) == normalise(place.label):
                named = [s for s in found if f" {normalise(s.name)} " in f" {normalise(ask.text)} "]
                return (named or found)[0], place
            return None, place
        return None

    def home_store(self, ask: StockAsk) -> Optional[Store]:
        """A verified customer's home store, when they name no place."""
        identity = find_identity(self.session, ask.channel, ask.sender)
        customer_id = verified_customer(identity, self.now.replace(tzinfo=None))
        customer = self.session.get(Customer, customer_id) if customer_id else None
        if customer is None or customer.home_store_id is None:
            return None
        return self.session.get(Store, customer.home_store_id)

    def names_a_product(self, ask: StockAsk) -> bool:
        """Does the message name a product of ours, with or without an entity?"""
        return bool(ask.product) or bool(
            self.index.search(self._strip_known_words(ask.text, None)).matches)

    def product(self, ask: StockAsk) -> ProductMeant:
        """The product meant; a product found by a variant's reference also fixes the
        variant (`ask.context["stock_variant"]`)."""
        context = self.context_product(ask)
        if ask.product:
            result = self.index.search(ask.product)
            if result.matches and not result.exact:
                # The entity may be shorter than what was said ("pegasus 41" + "homme").
                wider = self.index.search(self._strip_known_words(ask.text, None))
                if wider.exact and (wider.matches[0] in result.matches
                                    or wider.score >= result.score):
                    result = wider
            if result.variant is not None:
                ask.context["stock_variant"] = result.variant.sku
        else:
            candidate = self._strip_known_words(ask.text, context)
            result = self.index.search(candidate)
            if result.variant is not None:
                ask.context["stock_variant"] = result.variant.sku
            elif context is not None and (result.score < SWITCH_SCORE or context in result.matches):
                # sizes, colours, places or small talk about the same item
                return ProductMeant(product=context)
        # "parfum chloé nomade" finds the only eau parfumée we sell: not the one asked for.
        not_ours = result.score < 100 and bool(self._unknown_words(ask))
        if result.matches and not not_ours and (result.exact or len(result.matches) == 1):
            return ProductMeant(product=result.matches[0])
        if result.matches and not not_ours:
            return ProductMeant(choices=result.matches)
        if context is not None and not ask.product:
            return ProductMeant(product=context)
        return ProductMeant(not_carried=result)

    def _unknown_words(self, ask: StockAsk) -> List[str]:
        """Words of the product named that match nothing we sell: "nuxe merveillance"
        finds Nuxe products, but not that one."""
        return [w for w in tokens_of(ask.product or "") if len(w) >= 3 and not w.isdigit()
                and not self.index.knows(w)]

    def variant(self, ask: StockAsk, product: ProductInfo) -> VariantMeant:
        """The size and colour said now, else before; a single size or colour goes without
        saying."""
        size = colour = None
        if ask.context.get("stock_product") == product.sku:  # what was already said
            size, colour = ask.context.get("stock_size"), ask.context.get("stock_colour")
        known = self.context_variant(ask)
        if known and known[0].id == product.id:
            size, colour = known[1].size, known[1].colour
        text_size, text_colour = read_variant(product, ask.text)
        size, colour = text_size or size, text_colour or colour
        if ask.size:
            size = match_value(ask.size, product.sizes) or size
        if ask.colour:
            colour = match_value(ask.colour, product.colours) or colour
        if len(product.sizes) <= 1:
            size = product.sizes[0] if product.sizes else None
        if len(product.colours) <= 1:
            colour = product.colours[0] if product.colours else None
        return VariantMeant(product.variant(size, colour), size, colour)


def parse_quantity(value: Optional[str]) -> Optional[int]:
    if value is None or not str(value).strip():
        return 1
    words = {"un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6,
             "sept": 7, "huit": 8, "neuf": 9, "dix": 10}
    if re.search(r"-\s*\d", str(value)):
        return None  # "-3"
    key = normalise(str(value))
    if key in words:
        return words[key]
    digits = "".join(c for c in key if c.isdigit())
    if not digits or len(digits) > 6:
        return None
    return int(digits)

