"""Catalog search: find products as shoppers name them.

Accent-, case- and typo-tolerant; brand only, model only, plural, SKU or EAN. An
inverted index over name, brand and category tokens is scored by token rarity (a
model name like "pegasus" weighs more than "nike" or "homme"); typos are matched
against the index vocabulary with rapidfuzz, so a search stays in milliseconds on a
50,000-SKU catalog. Sizes and colours are then read against the product's own values.
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple  # noqa: F401

from rapidfuzz import fuzz, process
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core.models import Product, Variant
from bot.core.text import format_euros, normalise

# Words that say nothing about which product is meant.
STOPWORDS = frozenset("""
a ai al alors as au aussi aux avec avez avoir avz b c ca ce ces cet cette chez combien
comment d dans de des dispo disponible disponibles dispos du e elle en encore est et
etes etre eu faut gens il ils j je jvoudrais jveux l la le les leur lui m ma magasin
magasins me mes moi mon n ne nous on ou par pas peu peut plus pour pr qu quand que quel
quelle quels qui reste restent s sa sans se ses si slt son stock stocks stp sur svp t ta
taille tailles te tes toi ton tu un une vos votre vous vs y bonjour salut merci avoir
cherche chercher voudrais veux voulais aurais auriez acheter trouver ligne internet
online site web pointure couleur coloris est-ce possible svp encore
mettre mettez mets met cote reserver reservez reserve garder gardez garde prevenir previens
prevenez revient reviendra retour annuler annulez annule reservation dire dites savoir
quoi ou lequel laquelle celui celle ceux ici la-bas pres proche loin moins faut besoin
piece pieces aimerais voulez voudrait rechange
""".split())

# Shoppers' words for what the catalog calls otherwise. Data, not code paths.
SYNONYMS = {
    "cafetiere": "cafe", "expresso": "cafe", "espresso": "cafe", "nespresso": "nespresso",
    "basket": "chaussure", "sneaker": "chaussure", "pompe": "chaussure", "godasse": "chaussure",
    "running": "running", "footing": "running", "jogging": "running", "course": "running",
    "tshirt": "t shirt", "teeshirt": "t shirt", "tee": "t shirt",
    "bouquin": "livre", "roman": "livre", "bd": "livre",
    "montre": "forerunner", "gps": "forerunner",
    "detartrant": "detartrant", "anticalcaire": "detartrant",
}

SIZE_MARKERS = frozenset({"taille", "pointure", "en", "du", "size", "t"})
EAN_RE = re.compile(r"\b(\d{13})\b")
SKU_RE = re.compile(r"\b(p\d{6})(?:[- ](\d{2}))?\b", re.IGNORECASE)


def singular(token: str) -> str:
    if len(token) > 3 and token[-1] in "sx" and not token.endswith("ss"):
        return token[:-1]
    return token


def tokens_of(text: str) -> List[str]:
    out = []
    for token in normalise(text).split():
        if token not in STOPWORDS:
            token = singular(token)
            out.extend(SYNONYMS.get(token, token).split())
    return out


@dataclass(frozen=True)
class VariantInfo:
    id: int
    sku: str
    ean: Optional[str]  # a variant imported without a GTIN has none
    size: Optional[str]
    colour: Optional[str]

    @property
    def label(self) -> str:
        return ", ".join(v for v in (self.size, self.colour) if v)


@dataclass(frozen=True)
class ProductInfo:
    id: int
    sku: str
    name: str
    brand: str
    department: str
    category: str
    price_cents: int
    variants: Tuple[VariantInfo, ...]
    image_url: Optional[str] = None  # with a link, the stock answer shows a card
    link: Optional[str] = None

    @property
    def sizes(self) -> List[str]:
        return list(dict.fromkeys(v.size for v in self.variants if v.size))

    @property
    def colours(self) -> List[str]:
        return list(dict.fromkeys(v.colour for v in self.variants if v.colour))

    def variant(self, size: Optional[str], colour: Optional[str]) -> Optional[VariantInfo]:
        """The variant with this size and colour; None if still ambiguous or absent."""
        candidates = [v for v in self.variants
                      if (size is None or v.size == size) and (colour is None or v.colour == colour)]
        return candidates[0] if len(candidates) == 1 else None

    @property
    def price(self) -> str:
        return format_euros(self.price_cents)


@dataclass
class SearchResult:
    matches: List[ProductInfo] = field(default_factory=list)  # best first
    exact: bool = False  # one product named without doubt (SKU, EAN or a clear winner)
    variant: Optional[VariantInfo] = None  # when an EAN or variant SKU named it
    suggestions: List[ProductInfo] = field(default_factory=list)  # close names when none
    leftover: List[str] = field(default_factory=list)  # query words not used by the match
    score: float = 0.0  # of the best match: ~5 for one rare exact word, more for several


def product_names(session: Session, skus: Iterable[str]) -> Dict[str, str]:
    """{sku: name} of the products among `skus` (the ones the bot talked about)."""
    return dict(session.execute(select(Product.sku, Product.name)
                                .where(Product.sku.in_(list(skus)))).all())


def catalog_signature(session: Session) -> Tuple[object, ...]:
    """What changes when products are added, withdrawn, changed by an import or get new
    variants: cheap to ask often, so a running assistant notices within seconds."""
    products = session.execute(select(func.count(Product.id), func.max(Product.id),
                                      func.max(Product.updated_at))
                               .where(Product.active.is_(True))).one()
    variants = session.execute(select(func.count(Variant.id), func.max(Variant.id))).one()
    return tuple(value or 0 for value in (*products, *variants))


class CatalogIndex:
    """An in-memory search index over active products; build it once, query often."""

    def __init__(self, products: Iterable[ProductInfo]) -> None:
        self.products: Dict[int, ProductInfo] = {}
        self.by_sku: Dict[str, ProductInfo] = {}
        self.by_variant_sku: Dict[str, Tuple[ProductInfo, VariantInfo]] = {}
        self.by_ean: Dict[str, Tuple[ProductInfo, VariantInfo]] = {}
        postings: Dict[str, Set[int]] = defaultdict(set)
        self.product_tokens: Dict[int, Dict[str, float]] = {}
        for product in products:
            self.products[product.id] = product
            self.by_sku[product.sku.lower()] = product
            for variant in product.variants:
                self.by_variant_sku[variant.sku.lower()] = (product, variant)
                if variant.ean:
                    self.by_ean[variant.ean] = (product, variant)
            weights: Dict[str, float] = {}
            for token in tokens_of(f"{product.brand} {product.name}"):
                weights[token] = 1.0
            for token in tokens_of(product.category):
                weights.setdefault(token, 0.8)
            self.product_tokens[product.id] = weights
            for token in weights:
                postings[token].add(product.id)
        total = max(1, len(self.products))
        self.postings = dict(postings)
        self.idf = {t: math.log(1 + total / len(ids)) for t, ids in self.postings.items()}
        self.vocabulary = list(self.postings)
        self.display_names = {pid: normalise(f"{p.brand} {p.name}") for pid, p in self.products.items()}
        # Sizes and colours: words of a product named that say which variant, not which product.
        self.variant_words = {token for p in self.products.values() for value in p.sizes + p.colours
                              for token in tokens_of(value)}
        # A brand as shoppers type it: "de longhi" and "delonghi" both name De'Longhi.
        self.brand_forms: Dict[str, str] = {}
        for brand in {p.brand for p in self.products.values()}:
            self.brand_forms[normalise(brand)] = brand
            self.brand_forms[normalise(brand).replace(" ", "")] = brand

    @classmethod
    def load(cls, session: Session) -> "CatalogIndex":
        variants: Dict[int, List[VariantInfo]] = defaultdict(list)
        for row in session.execute(select(Variant.id, Variant.product_id, Variant.sku, Variant.ean,
                                          Variant.size, Variant.colour).order_by(Variant.id)):
            variants[row.product_id].append(VariantInfo(row.id, row.sku, row.ean, row.size, row.colour))
        products = [
            ProductInfo(p.id, p.sku, p.name, p.brand, p.department, p.category, p.price_cents,
                        tuple(variants[p.id]), p.image_url, p.link)
            for p in session.execute(select(Product).where(Product.active.is_(True))
                                     .order_by(Product.id)).scalars()
        ]
        return cls(products)

    def _vocabulary_matches(self, token: str) -> List[Tuple[str, float]]:
        """Index tokens that this query token may mean, with a closeness factor."""
        if token in self.postings:
            found = [(token, 1.0)]
            if len(token) < 5 or token.isdigit():
                return found
        else:
            found = []
        if len(token) < 4 or any(c.isdigit() for c in token):
            return found  # short words and model numbers must match exactly
        for candidate, score, _ in process.extract(token, self.vocabulary, scorer=fuzz.ratio,
                                                   score_cutoff=80, limit=5):
            if candidate != token:
                found.append((candidate, score / 100))
        # A prefix typed in full ("pegas", "magnif") is a strong hint too.
        if not found and len(token) >= 5:
            found = [(v, 0.9) for v in self.vocabulary if v.startswith(token)][:5]
        return found

    def search(self, query: str, limit: int = 5) -> SearchResult:
        raw = query.strip()
        ean = EAN_RE.search(raw)
        if ean and ean.group(1) in self.by_ean:
            product, variant = self.by_ean[ean.group(1)]
            return SearchResult([product], exact=True, variant=variant, score=100.0)
        sku = SKU_RE.search(raw)
        if sku:
            key = sku.group(1).lower() + (f"-{sku.group(2)}" if sku.group(2) else "")
            if key in self.by_variant_sku:
                product, variant = self.by_variant_sku[key]
                return SearchResult([product], exact=True, variant=variant, score=100.0)
            if sku.group(1).lower() in self.by_sku:
                return SearchResult([self.by_sku[sku.group(1).lower()]], exact=True, score=100.0)
        words = [t for t in tokens_of(raw) if t not in STOPWORDS]
        scores: Dict[int, float] = defaultdict(float)
        used_by: Dict[int, Set[str]] = defaultdict(set)
        for word in dict.fromkeys(words):
            for token, closeness in self._vocabulary_matches(word):
                idf = self.idf[token]
                for product_id in self.postings[token]:
                    gain = idf * closeness * self.product_tokens[product_id][token]
                    scores[product_id] += gain
                    used_by[product_id].add(word)
        if not scores:
            return SearchResult(suggestions=self.suggest(raw), leftover=words)
        # Numbers alone ("1", "42") name no product: sizes and quantities look the same.
        scores = {pid: score for pid, score in scores.items()
                  if any(not word.isdigit() for word in used_by[pid])}
        if not scores:
            return SearchResult(suggestions=self.suggest(raw), leftover=words)
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        best = ranked[0][1]
        # Only model words matched ("homme", a category): too vague to call a match.
        if best < 2.0:
            return SearchResult(suggestions=self.suggest(raw), leftover=words)
        top = [pid for pid, score in ranked if score >= best * 0.97][:limit]
        if len(top) < limit:
            top += [pid for pid, score in ranked[len(top):limit] if score >= best * 0.75]
        matches = [self.products[pid] for pid in top]
        leftover = [w for w in words if w not in used_by[top[0]]]
        clear_winner = len(ranked) == 1 or ranked[1][1] < best * 0.97
        return SearchResult(matches, exact=clear_winner, leftover=leftover, score=best)

    def knows(self, word: str) -> bool:
        """Whether a query word (as `tokens_of` gives it) names something in the catalog, a
        size or a colour, a typo or two included ("pegasuss"), not a loose likeness
        ("zorbla" and "zola")."""
        return word in self.variant_words or any(
            closeness >= 0.85 for _token, closeness in self._vocabulary_matches(word))

    def suggest(self, query: str, limit: int = 3) -> List[ProductInfo]:
        wanted = " ".join(t for t in normalise(query).split() if t not in STOPWORDS)
        if len(wanted) < 3:
            return []
        found = process.extract(wanted, self.display_names, scorer=fuzz.WRatio, score_cutoff=60,
                                limit=limit)
        return [self.products[key] for _name, _score, key in found]


def read_variant(product: ProductInfo, text: str) -> Tuple[Optional[str], Optional[str]]:
    """Size and colour of `product` named in the shopper's message, if any.

    Words of the product's own name do not count: "Pegasus 41 en 42" is size 42.
    """
    name_words = set(normalise(f"{product.brand} {product.name}").split())
    all_words = normalise(text).split()
    words = [w for w in all_words if w not in name_words]
    plain = f" {' '.join(words)} "
    sizes = {normalise(c): c for c in product.sizes}
    size = None
    # "taille 41", "pointure 41", "en 41": a size even when the model is "Pegasus 41".
    for marker, value in zip(all_words, all_words[1:]):
        if marker in SIZE_MARKERS and value in sizes:
            size = sizes[value]
            break
    for candidate in product.sizes if size is None else ():
        if f" {normalise(candidate)} " in plain:
            size = candidate
            break
    colour = None
    for candidate in sorted(product.colours, key=len, reverse=True):
        key = normalise(candidate)
        if f" {key} " in plain:
            colour = candidate
            break
    if colour is None:
        for word in plain.split():
            for candidate in product.colours:
                key = normalise(candidate)
                if " " not in key and len(word) >= 4 and fuzz.ratio(singular(word), key) >= 85:
                    colour = candidate
                    break
            if colour:
                break
    return size, colour


def match_value(value: str, allowed: Sequence[str]) -> Optional[str]:
    """A value typed or tapped by the shopper, matched to one of `allowed`."""
    key = normalise(value)
    for candidate in allowed:
        if normalise(candidate) == key:
            return candidate
    best = process.extractOne(key, {c: normalise(c) for c in allowed}, scorer=fuzz.ratio,
                              score_cutoff=80)
    return best[2] if best else None
