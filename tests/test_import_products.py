"""The product feed (Google Merchant Center's columns) imported into the demo shop: as TSV
and as XML, variants grouped, checked row by row in French, idempotent, and
`--delete-missing` withdrawing without deleting what holds or purchases point to."""
import datetime as dt

import pytest

from sqlalchemy import select

from bot.core.models import Product, Reservation, Stock, Store, Variant
from bot.imports.feed import FeedError
from bot.imports.products import import_products
from bot.stock.catalog import CatalogIndex
from tests.harness import table_file

HEADER = ("id\titem_group_id\ttitle\tdescription\tbrand\tgtin\tmpn\tcolor\tsize\tgender\t"
          "product_type\tprice\timage_link\tlink\tavailability")
TRAIL = [
    "TRL-42-V\tTRL\tSalomon Thundercross - 42 vert\tTrail boueux.\tSalomon\t4006381333931\tL47\tvert\t42\t"
    "male\tRunning > Chaussures de trail\t150.00 EUR\thttps://cdn.example.fr/trl.jpg\t"
    "https://www.example.fr/trl\tin_stock",
    "TRL-43-V\tTRL\tSalomon Thundercross - 43 vert\tTrail boueux.\tSalomon\t\tL47\tvert\t43\tmale\t"
    "Running > Chaussures de trail\t150.00 EUR\thttps://cdn.example.fr/trl.jpg\t"
    "https://www.example.fr/trl\tin_stock",
    "TRL-44-N\tTRL\tSalomon Thundercross - 44 noir\tTrail boueux.\tSalomon\t\tL47\tnoir\t44\tmale\t"
    "Running > Chaussures de trail\t155,00 EUR\thttps://cdn.example.fr/trl.jpg\t"
    "https://www.example.fr/trl\tin_stock",
]
BOTTLE = ("GOURDE-1\t\tGourde isotherme 50 cl\t\tKiprun\t\t\t\t\t\tRunning > Accessoires\t12 EUR\t\t\t"
          "in_stock")


def feed(tmp_path, *rows):
    return table_file(tmp_path / "products.tsv", HEADER, rows)


def product(shop, sku):
    with shop() as session:
        found = session.execute(select(Product).where(Product.sku == sku)).scalar_one_or_none()
        if found is None:
            return None
        variants = sorted((v.sku, v.ean, v.size, v.colour) for v in found.variants)
        return dict(name=found.name, brand=found.brand, department=found.department,
                    category=found.category, price=found.price_cents, active=found.active,
                    image=found.image_url, link=found.link, variants=variants)


def test_a_product_feed_adds_products_with_their_variants_images_and_links(shop, tmp_path):
    report = import_products(shop, feed(tmp_path, *TRAIL, BOTTLE))
    assert report.written and sorted(report.added) == ["GOURDE-1", "TRL"] and not report.problems
    assert product(shop, "TRL") == dict(
        name="Salomon Thundercross", brand="Salomon", department="Running",
        category="Chaussures de trail", price=15000, active=True, image="https://cdn.example.fr/trl.jpg",
        link="https://www.example.fr/trl",
        variants=[("TRL-42-V", "4006381333931", "42", "vert"), ("TRL-43-V", None, "43", "vert"),
                  ("TRL-44-N", None, "44", "noir")])
    assert [str(n) for n in report.notes] == [
        "ligne 2, colonne price : « TRL » : prix différents selon les variantes, le plus bas est "
        "retenu (150.00 EUR)"]
    assert product(shop, "GOURDE-1")["variants"] == [("GOURDE-1", None, None, None)]
    # The assistant's catalog finds it by its name, its EAN and its item id.
    with shop() as session:
        index = CatalogIndex.load(session)
    assert index.search("thundercross").matches[0].sku == "TRL"
    assert index.by_ean["4006381333931"][1].sku == "TRL-42-V"


def test_the_same_feed_as_xml_gives_the_same_products(shop, tmp_path):
    xml = tmp_path / "products.xml"
    xml.write_text("""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:g="http://base.google.com/ns/1.0">
<channel><title>Boutique</title>
<item>
  <g:id>TRL-42-V</g:id><g:item_group_id>TRL</g:item_group_id>
  <title>Salomon Thundercross - 42 vert</title><description>Trail boueux.</description>
  <g:brand>Salomon</g:brand><g:gtin>4006381333931</g:gtin><g:color>vert</g:color><g:size>42</g:size>
  <g:product_type>Running &gt; Chaussures de trail</g:product_type><g:price>150.00 EUR</g:price>
  <g:image_link>https://cdn.example.fr/trl.jpg</g:image_link><link>https://www.example.fr/trl</link>
</item>
<item>
  <g:id>TRL-43-V</g:id><g:item_group_id>TRL</g:item_group_id>
  <title>Salomon Thundercross - 43 vert</title><g:brand>Salomon</g:brand>
  <g:color>vert</g:color><g:size>43</g:size><g:price>12,5O EUR</g:price>
</item>
</channel></rss>
""", encoding="utf-8")
    refused = import_products(shop, xml)
    assert not refused.written and product(shop, "TRL") is None
    assert [str(p) for p in refused.problems] == ["ligne 11, colonne price : « 12,5O EUR » n'est pas un prix"]
    loaded = import_products(shop, xml, skip_invalid=True)
    assert loaded.written and product(shop, "TRL")["variants"] == [("TRL-42-V", "4006381333931", "42", "vert")]
    assert product(shop, "TRL")["link"] == "https://www.example.fr/trl"


def test_bad_rows_are_reported_by_line_and_column_and_nothing_is_written(shop, tmp_path):
    bad = [
        TRAIL[0].replace("150.00 EUR", "150.00 USD"),
        TRAIL[1].replace("\t\tL47", "\t4006381333932\tL47"),  # wrong check digit
        TRAIL[2].replace("\tSalomon\t", "\t\t"),
        BOTTLE.replace("12 EUR\t\t", "12 EUR\tjavascript:alert(1)\t"),
        TRAIL[0].replace("TRL-42-V", "TRL-45-V"),  # same size and colour as a line before
    ]
    report = import_products(shop, feed(tmp_path, *bad))
    assert not report.written and product(shop, "TRL") is None
    assert [str(p) for p in report.problems] == [
        "ligne 2, colonne price : « 150.00 USD » : seuls les prix en euros (EUR) sont pris en charge",
        "ligne 3, colonne gtin : « 4006381333932 » : la clé de contrôle ne correspond pas",
        "ligne 4, colonne brand : valeur manquante",
        "ligne 5, colonne image_link : « javascript:alert(1) » n'est pas une adresse web (https://…)",
    ]
    # The fifth line is good on its own: the first one, refused, left its size free.
    assert import_products(shop, feed(tmp_path, *bad), dry_run=True, skip_invalid=True).added == ["TRL"]
    assert product(shop, "TRL") is None


def test_importing_the_same_feed_again_changes_nothing_and_a_change_is_an_update(shop, tmp_path):
    import_products(shop, feed(tmp_path, *TRAIL, BOTTLE))
    again = import_products(shop, feed(tmp_path, *TRAIL, BOTTLE))
    assert (again.added, again.updated, again.unchanged) == ([], [], 2)
    renamed = import_products(shop, feed(tmp_path, *TRAIL, BOTTLE.replace("50 cl", "75 cl")))
    assert renamed.updated == ["GOURDE-1"] and product(shop, "GOURDE-1")["name"] == "Gourde isotherme 75 cl"


def test_delete_missing_withdraws_products_and_keeps_what_holds_point_to(shop, tmp_path):
    import_products(shop, feed(tmp_path, *TRAIL, BOTTLE))
    with shop() as session:
        store = session.execute(select(Store).where(Store.kind == "store")).scalars().first()
        held = session.execute(select(Variant).where(Variant.sku == "TRL-43-V")).scalar_one()
        session.add(Stock(variant_id=held.id, store_id=store.id, quantity=2, reserved=1))
        session.add(Reservation(code="HOLD01", variant_id=held.id, store_id=store.id, quantity=1,
                                expires_at=dt.datetime(2030, 1, 1)))
        demo_products = session.execute(select(Product).where(Product.active.is_(True))).scalars().all()
        session.commit()
    only_one_size = feed(tmp_path, TRAIL[0])
    dry = import_products(shop, only_one_size, delete_missing=True, dry_run=True)
    assert not dry.written and product(shop, "GOURDE-1")["active"]
    report = import_products(shop, only_one_size, delete_missing=True)
    assert report.written
    assert set(report.withdrawn) == {p.sku for p in demo_products} - {"TRL"} | {"TRL-44-N"}
    assert product(shop, "GOURDE-1")["active"] is False  # withdrawn, not deleted
    assert [v[0] for v in product(shop, "TRL")["variants"]] == ["TRL-42-V", "TRL-43-V"]
    assert [str(n) for n in report.notes] == [
        "colonne id : « TRL-43-V » n'est plus dans le fichier mais gardé : des réservations, "
        "achats, réassorts ou alertes y renvoient"]
    with shop() as session:
        assert session.execute(select(Reservation.code)).scalars().all()[-1] == "HOLD01"
        index = CatalogIndex.load(session)
    assert index.search("gourde isotherme").matches == []  # no longer offered
    comeback = import_products(shop, feed(tmp_path, BOTTLE))
    assert comeback.updated == ["GOURDE-1"] and product(shop, "GOURDE-1")["active"] is True


def test_an_xml_bomb_an_external_entity_or_broken_xml_is_refused_in_french(shop, tmp_path):
    bomb = tmp_path / "bomb.xml"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa">'
                    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><rss><channel><item>'
                    '<g:id xmlns:g="http://base.google.com/ns/1.0">&b;</g:id></item></channel></rss>')
    external = tmp_path / "external.xml"
    external.write_text('<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                        '<rss><channel><item><title>&x;</title></item></channel></rss>')
    broken = tmp_path / "broken.xml"
    broken.write_text("<rss><channel><item><title>Chaussure</item></channel></rss>")
    for path, said in ((bomb, "déclare des entités"), (external, "déclare des entités"),
                       (broken, "XML illisible ligne 1")):
        with pytest.raises(FeedError, match=said):
            import_products(shop, path)


def test_two_gtins_swapped_are_put_right(shop, tmp_path):
    """The EAN is unique: a swap is freed first, never seen twice by the database."""
    first, second = "4006381333931", "4006381333948"
    with_two = [TRAIL[0], TRAIL[1].replace("\t\tL47", f"\t{second}\tL47"), TRAIL[2]]
    import_products(shop, feed(tmp_path, *with_two))
    swapped = [with_two[0].replace(first, second), with_two[1].replace(second, first), TRAIL[2]]
    report = import_products(shop, feed(tmp_path, *swapped))
    assert report.written and report.updated == ["TRL"] and not report.problems
    assert [v[:2] for v in product(shop, "TRL")["variants"]] == [
        ("TRL-42-V", second), ("TRL-43-V", first), ("TRL-44-N", None)]
