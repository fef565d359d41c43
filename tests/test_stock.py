"""Stock services on the real demo shop: bands, nearest stores, updates and alerts."""
import datetime as dt

import pytest
from sqlalchemy import func, select

from bot.core.chats import identity_for
from bot.core.models import ConsentLedgerEntry, OutboundMessage, Stock, StockAlert, Store
from bot.core.outbox import take_pending
from bot.stock import alerts, availability
from bot.stock.catalog import CatalogIndex
from bot.stores.geo import Gazetteer, Place, distance_km, place_from_metadata
from tests.harness import SEED_DAY


@pytest.mark.parametrize("available, expected", [(0, "épuisé"), (-1, "épuisé"), (1, "plus que 1"),
                                                 (2, "plus que 2"), (3, "en stock"), (40, "en stock")])
def test_quantity_is_shown_as_a_band(available, expected):
    assert availability.band(available) == expected


def test_distances_are_great_circle_kilometres():
    paris, lyon = (48.8566, 2.3522), (45.7640, 4.8357)
    assert 385 < distance_km(paris, lyon) < 395


def pegasus(session, size="42", colour="bleu"):
    index = CatalogIndex.load(session)
    product = index.search("pegasus 41 homme").matches[0]
    return product, product.variant(size, colour)


def store(session, code):
    return session.execute(select(Store).where(Store.code == code)).scalar_one()


def test_nearest_stores_with_stock_are_sorted_by_distance(shop):
    with shop() as session:
        _product, variant = pegasus(session)
        lyon = store(session, "LYS-PDI")
        found = availability.stores_with_stock(session, variant.id,
                                        Place("Lyon", lyon.latitude, lyon.longitude))
        assert found[0].store.code == "LYS-CON"  # the documented 3 units, 4 km away
        assert found[0].available == 3
        distances = [n.distance_km for n in found]
        assert distances == sorted(distances)
        assert all(n.available > 0 for n in found)


def test_report_for_a_store_that_ran_out_has_restock_nearby_and_alternatives(shop):
    with shop() as session:
        product, variant = pegasus(session)
        lyon = store(session, "LYS-PDI")
        report = availability.stock_report(session, product, variant, lyon, None, SEED_DAY)
        assert report.at_store.available == 0
        assert report.at_store.next_restock == SEED_DAY + dt.timedelta(days=6)
        assert report.online.available == 0
        assert report.nearby[0].store.code == "LYS-CON"
        assert report.alternatives and all(pid != product.id for pid, _ in report.alternatives)


def test_shared_telegram_location_is_read_from_metadata():
    assert place_from_metadata({"location": {"latitude": 45.76, "longitude": 4.83}}).latitude == 45.76
    for bad in (None, {}, {"location": "Lyon"}, {"location": {"latitude": "x", "longitude": 1}},
                {"location": {"latitude": 123, "longitude": 4}}):
        assert place_from_metadata(bad) is None


def test_postcodes_and_cities_without_a_store_are_located(shop):
    with shop() as session:
        stores = session.execute(select(Store).where(Store.kind == "store")).scalars().all()
        gazetteer = Gazetteer((s.city, s.postcode, s.latitude, s.longitude) for s in stores)
    assert gazetteer.from_postcode("69100").label == "Villeurbanne"
    assert gazetteer.from_postcode("69007") is not None  # same department
    assert gazetteer.from_postcode("99999") is None
    assert gazetteer.from_city("Saint-Etienne").label == "Saint-Étienne"
    assert gazetteer.find_in_text("je suis à quimper").label == "Quimper"


def subscribe(shop, sender, variant_id, store_id=None):
    with shop.begin() as session:
        identity = identity_for(session, "web", sender)
        return alerts.subscribe_here(session, identity, variant_id, store_id)


def test_alert_is_recorded_with_consent_in_the_ledger_and_fires_exactly_once(shop):
    with shop() as session:
        _product, variant = pegasus(session)
        online_id = store(session, "WEB").id
    assert subscribe(shop, "web-alice", variant.id) is True
    assert subscribe(shop, "web-alice", variant.id) is False  # already subscribed
    with shop() as session:
        ledger = session.execute(select(ConsentLedgerEntry).where(
            ConsentLedgerEntry.identity_id.isnot(None))).scalars().all()
        assert [(e.purpose, e.channel, e.old_state, e.new_state) for e in ledger] == [
            ("back_in_stock", "web", None, True)]

    with shop.begin() as session:
        change = availability.set_stock(session, variant.id, online_id, 5)
    assert (change.before, change.after) == (0, 5)
    with shop.begin() as session:  # more stock: still back, no second alert
        availability.set_stock(session, variant.id, online_id, 8)
    with shop.begin() as session:  # out and back again: the alert was already used
        availability.set_stock(session, variant.id, online_id, 0)
        availability.set_stock(session, variant.id, online_id, 2)
    with shop.begin() as session:
        messages = take_pending(session, "web", "web-alice")
    assert len(messages) == 1
    assert messages[0]["text"].startswith("Bonne nouvelle : Nike Pegasus 41 homme (42, bleu) est de retour "
                               "en stock en ligne")
    with shop.begin() as session:
        assert take_pending(session, "web", "web-alice") == []  # delivered once


def test_an_alert_for_one_store_waits_for_that_store(shop):
    with shop() as session:
        _product, variant = pegasus(session)
        lyon, lille = store(session, "LYS-PDI").id, store(session, "LIL-CTR").id
        before = session.execute(select(Stock.quantity).where(
            Stock.variant_id == variant.id, Stock.store_id == lille)).scalar()
    subscribe(shop, "web-bob", variant.id, lyon)
    with shop.begin() as session:
        if before:
            availability.set_stock(session, variant.id, lille, 0)
        availability.set_stock(session, variant.id, lille, 3)
        assert session.execute(select(func.count()).select_from(OutboundMessage)).scalar() == 0
        availability.set_stock(session, variant.id, lyon, 2)
        assert session.execute(select(func.count()).select_from(OutboundMessage)).scalar() == 1


def test_withdrawn_consent_means_no_message(shop):
    from bot.customers.consent import set_consent

    with shop() as session:
        _product, variant = pegasus(session)
        online_id = store(session, "WEB").id
    subscribe(shop, "web-carol", variant.id)
    with shop.begin() as session:
        identity = identity_for(session, "web", "web-carol")
        set_consent(session, "back_in_stock", "web", False, identity_id=identity.id,
                    source_channel="web", wording_version=alerts.ALERT_WORDING_VERSION)
        availability.set_stock(session, variant.id, online_id, 4)
    with shop() as session:
        assert session.execute(select(func.count()).select_from(OutboundMessage)).scalar() == 0
        alert = session.execute(select(StockAlert)).scalar_one()
        assert alert.sent_at is not None  # lapsed, will never fire later


def test_stock_count_below_held_units_is_refused(shop):
    from bot.stock.reservations import hold

    with shop() as session:
        _product, variant = pegasus(session, "42", "noir")
        lyon = store(session, "LYS-PDI").id
    with shop.begin() as session:
        hold(session, variant.id, lyon, 3, now=dt.datetime(2026, 3, 12, 10))
    with shop.begin() as session, pytest.raises(ValueError, match="held"):
        availability.set_stock(session, variant.id, lyon, 2)
