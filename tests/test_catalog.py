"""Finding products as shoppers name them."""
import pytest

from bot.core.db import make_engine, make_session_factory
from bot.stock.catalog import CatalogIndex, match_value, read_variant


@pytest.fixture(scope="module")
def index(seeded_sqlite_url):
    engine = make_engine(seeded_sqlite_url)
    with make_session_factory(engine)() as session:
        yield CatalogIndex.load(session)
    engine.dispose()


def names(result):
    return [p.name for p in result.matches]


@pytest.mark.parametrize("query", [
    "Pegasus 41", "pegasus 41", "PEGASUS 41", "pegasu 41", "pégasus 41", "les pegasus 41",
    "Vous avez les Pegasus 41 en 42 ?", "nike pegasus",
])
def test_model_with_typos_accents_and_plural_finds_both_cuts(index, query):
    assert set(names(index.search(query))[:2]) == {"Nike Pegasus 41 homme", "Nike Pegasus 41 femme"}


def test_the_cut_named_makes_one_clear_match(index):
    result = index.search("pegasus 41 femme en 38")
    assert result.exact and result.matches[0].name == "Nike Pegasus 41 femme"


def test_brand_only_lists_several_products_of_that_brand(index):
    result = index.search("nike")
    assert not result.exact and len(result.matches) == 5
    assert all(p.brand == "Nike" for p in result.matches)


def test_ean_and_sku_name_a_variant_exactly(index):
    product = index.search("huile prodigieuse nuxe").matches[0]
    variant = product.variants[1]
    by_ean = index.search(f"vous avez le {variant.ean} ?")
    assert by_ean.exact and by_ean.variant == variant
    by_sku = index.search(variant.sku.lower())
    assert by_sku.exact and by_sku.variant == variant
    assert index.search(product.sku).matches == [product]


def test_plural_and_synonym_find_machine_filters(index):
    result = index.search("il vous reste des filtres pour ma cafetiere ?")
    assert len(result.matches) >= 3
    assert all("filtre" in p.name.lower() for p in result.matches[:3])


@pytest.mark.parametrize("query", ["zzzqqq", "", "😀😀", "'; -- 1=1", "<script></script>", "42", "a" * 5000])
def test_nonsense_finds_nothing_and_does_not_crash(index, query):
    assert index.search(query).matches == []


def test_a_near_miss_gets_suggestions(index):
    result = index.search("magnificat")
    assert "Magnifica" in " ".join(names(result) + [p.name for p in result.suggestions])


def test_size_and_colour_are_read_without_the_model_number(index):
    pegasus = index.search("pegasus 41 homme").matches[0]
    assert read_variant(pegasus, "Vous avez les Pegasus 41 en 42 ?") == ("42", None)
    assert read_variant(pegasus, "en 43 noire svp") == ("43", "noir")
    assert read_variant(pegasus, "taille 41") == ("41", None)


def test_values_typed_or_tapped_match_the_products_own(index):
    tee = index.search("nike t-shirt de running homme").matches[0]
    assert read_variant(tee, "taille M en bleu") == ("M", "bleu")
    assert match_value("xl", tee.sizes) == "XL"
    assert match_value("bleue", tee.colours) == "bleu"
    assert match_value("violet", tee.colours) is None
