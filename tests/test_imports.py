"""A retailer's own files imported into the shop: the business-profile store sheet and a
CRM export of members and consents; checked row by row, reported in French by line and
column, all or nothing, idempotent."""
import datetime as dt
import subprocess
import sys

from sqlalchemy import func, select, update

from bot.core.chats import identity_for
from bot.core.models import (ConsentLedgerEntry, Customer, OutboundMessage, Stock, Store,
                             StoreClosure, StoreHours, Variant)
from bot.core.settings import PROJECT_ROOT
from bot.customers.consent import consent_granted
from bot.imports.customers import import_consents, import_customers
from bot.imports.inventory import import_inventory
from bot.imports.stores import import_stores
from bot.stock.alerts import subscribe_here
from bot.stores import directory
from tests.harness import stock_quantity, table_file

HEADER = ("Store code\tBusiness name\tAddress line 1\tAddress line 2\tLocality\tPostal code\t"
          "Latitude\tLongitude\tPrimary phone\tMonday hours\tTuesday hours\tWednesday hours\t"
          "Thursday hours\tFriday hours\tSaturday hours\tSunday hours\tSpecial hours")
ANNECY = ("ANN-CTR\tComptoir Annecy\t4 rue Royale\tGalerie du lac\tAnnecy\t74000\t45.8992\t6.1294\t"
          "+33 4 50 00 00 00\t09:30-12:30,14:00-19:00\t09:30-19:00\t09:30-19:00\t09:30-19:00\t"
          "09:30-19:00\t09:00-19:30\tx\t2026-12-24: 09:00-16:00, 2026-12-25: x")
NANCY = ("NAN-STA\tComptoir Nancy\t2 place Stanislas\t\tNancy\t54000\t\t\t\t10:00-19:00\t10:00-19:00\t"
         "10:00-19:00\t10:00-19:00\t10:00-19:00\t10:00-19:00\t\t")


def sheet(tmp_path, *rows, name="stores.tsv"):
    return table_file(tmp_path / name, HEADER, rows)


def stores(shop):
    with shop() as session:
        return {s.code: s for s in session.execute(select(Store)).scalars()}


def test_a_store_sheet_adds_stores_with_their_hours_special_days_and_no_invented_coordinates(shop, tmp_path):
    report = import_stores(shop, sheet(tmp_path, ANNECY, NANCY))
    assert report.written and sorted(report.added) == ["ANN-CTR", "NAN-STA"] and not report.problems
    assert [str(n) for n in report.notes] == [
        "ligne 3, colonne Latitude : coordonnées absentes : ce magasin n'entre pas dans les "
        "calculs de distance"]
    with shop() as session:
        annecy = session.execute(select(Store).where(Store.code == "ANN-CTR")).scalar_one()
        assert (annecy.name, annecy.address, annecy.city, annecy.postcode, annecy.phone) == (
            "Comptoir Annecy", "4 rue Royale, Galerie du lac", "Annecy", "74000", "+33450000000")
        assert (annecy.latitude, annecy.longitude) == (45.8992, 6.1294)
        monday = sorted((h.opens_at, h.closes_at) for h in annecy.hours if h.weekday == 0)
        assert monday == [(dt.time(9, 30), dt.time(12, 30)), (dt.time(14), dt.time(19))]
        assert not [h for h in annecy.hours if h.weekday == 6]  # closed on Sundays
        special = {c.day: (c.opens_at, c.closes_at) for c in annecy.closures}
        assert special == {dt.date(2026, 12, 24): (dt.time(9), dt.time(16)),
                           dt.date(2026, 12, 25): (None, None)}
        nancy = session.execute(select(Store).where(Store.code == "NAN-STA")).scalar_one()
        assert (nancy.latitude, nancy.longitude) == (None, None)
        # The assistant answers for it at once: no retraining, no restart.
        christmas_eve = dt.datetime(2026, 12, 24, 10, tzinfo=dt.timezone.utc)
        answer = "\n".join(directory.store_hours_answer(session, "Annecy", christmas_eve, None))
    assert "Comptoir Annecy" in answer and "16h" in answer


def test_importing_the_same_sheet_again_changes_nothing_and_a_change_is_an_update(shop, tmp_path):
    import_stores(shop, sheet(tmp_path, ANNECY, NANCY))
    again = import_stores(shop, sheet(tmp_path, ANNECY, NANCY))
    assert (again.added, again.updated, again.unchanged) == ([], [], 2)
    later = import_stores(shop, sheet(tmp_path, ANNECY.replace("09:00-19:30", "09:00-20:00"), NANCY))
    assert (later.added, later.updated, later.unchanged) == ([], ["ANN-CTR"], 1)
    with shop() as session:
        saturday = session.execute(select(StoreHours.closes_at).join(Store).where(
            Store.code == "ANN-CTR", StoreHours.weekday == 5)).scalars().all()
    assert saturday == [dt.time(20)]


def test_one_bad_row_refuses_the_whole_sheet_with_its_line_and_column_in_french(shop, tmp_path):
    before = stores(shop)
    bad = NANCY.replace("54000", "5400").replace("NAN-STA", "NAN-GAR")
    worse = ANNECY.replace("ANN-CTR", "ANN-SUD").replace("09:30-19:00\t09:00-19:30", "9h00-19h30\t19:00-09:00")
    report = import_stores(shop, sheet(tmp_path, ANNECY, bad, worse))
    assert not report.written
    assert [str(p) for p in report.problems] == [
        "ligne 3, colonne Postal code : « 5400 » n'est pas un code postal",
        "ligne 4, colonne Saturday hours : « 19:00-09:00 » ferme avant d'ouvrir"]
    assert stores(shop).keys() == before.keys()  # nothing written, not even Annecy


def test_skip_invalid_loads_the_good_rows_and_dry_run_writes_nothing(shop, tmp_path):
    bad = NANCY.replace("NAN-STA", "NAN STA")
    dry = import_stores(shop, sheet(tmp_path, ANNECY, bad), dry_run=True, skip_invalid=True)
    assert (dry.added, dry.written) == (["ANN-CTR"], False) and "ANN-CTR" not in stores(shop)
    assert [p.column for p in dry.problems] == ["Store code"]
    done = import_stores(shop, sheet(tmp_path, ANNECY, bad), skip_invalid=True)
    assert done.written and done.added == ["ANN-CTR"] and "ANN-CTR" in stores(shop)


def test_the_online_shop_and_a_code_twice_are_refused(shop, tmp_path):
    online = ANNECY.replace("ANN-CTR", "WEB")
    twice = NANCY.replace("NAN-STA", "ANN-CTR")
    report = import_stores(shop, sheet(tmp_path, online, ANNECY, twice))
    assert not report.written
    assert [str(p) for p in report.problems] == [
        "ligne 4, colonne Store code : « ANN-CTR » figure déjà ligne 3",
        "ligne 2, colonne Labels : « WEB » est la boutique en ligne : libellé online attendu"]
    with shop() as session:
        assert session.execute(select(StoreClosure).join(Store).where(Store.code == "WEB")).first() is None


def test_the_command_line_reports_and_refuses_a_file_that_is_not_a_store_sheet(shop_url, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": shop_url, "COMPTOIR_VAR_DIR": str(tmp_path / "var")}
    ok = subprocess.run([sys.executable, "-m", "bot", "import", "stores", str(sheet(tmp_path, NANCY)),
                         "--dry-run"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("magasins : 1 ajouté(s), 0 modifié(s), 0 inchangé(s), 0 ligne(s) "
                                "refusée(s) (rien n'est écrit)")
    other = tmp_path / "products.csv"
    other.write_text("id,title,price\nP1,Chaussure,12 EUR\n", encoding="utf-8")
    refused = subprocess.run([sys.executable, "-m", "bot", "import", "stores", str(other)],
                             cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1
    assert "colonnes manquantes : Store code, Business name, Address line 1" in refused.stderr


MEMBERS = ("card,first_name,last_name,email,phone,home_store,preferred_channel,birthday,status\n"
           "800000009001,Ysaline,Quenot,ysaline.quenot@exemple.fr,07 99 88 77 66,LYS-PDI,email,"
           "1990-07-14,active\n"
           "800000009002,Hugo,Lefort,,,,,29/02,pending\n")
CONSENTS = ("card;purpose;channel;state;when;source\n"
            "800000009001;offers;email;granted;2026-02-01T10:30;formulaire magasin LYS-PDI\n"
            "800000009001;birthday;email;granted;2026-02-01;formulaire magasin LYS-PDI\n"
            "800000009002;offers;sms;withdrawn;2026-02-03;site web\n")


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_loyalty_members_from_a_crm_export_keep_their_birthday_without_the_year(shop, tmp_path):
    report = import_customers(shop, write(tmp_path, "members.csv", MEMBERS))
    assert report.written and report.added == ["800000009001", "800000009002"] and not report.problems
    with shop() as session:
        ysaline = session.execute(select(Customer).where(Customer.loyalty_card == "800000009001")).scalar_one()
        home = session.get(Store, ysaline.home_store_id)
        assert (ysaline.email, ysaline.phone, home.code, ysaline.preferred_channel, ysaline.loyalty_status) == (
            "ysaline.quenot@exemple.fr", "+33799887766", "LYS-PDI", "email", "active")
        assert ysaline.birthday == dt.date(1904, 7, 14)  # the year 1990 is not kept
        hugo = session.execute(select(Customer).where(Customer.loyalty_card == "800000009002")).scalar_one()
        assert (hugo.birthday, hugo.loyalty_status, hugo.email) == (dt.date(1904, 2, 29), "pending", None)
    again = import_customers(shop, write(tmp_path, "members.csv", MEMBERS))
    assert (again.added, again.updated, again.unchanged) == ([], [], 2)
    renamed = import_customers(shop, write(tmp_path, "names.csv", "card,last_name\n800000009001,Quenot-Roy\n"))
    assert renamed.updated == ["800000009001"]
    with shop() as session:  # columns the file leaves out are kept
        ysaline = session.execute(select(Customer).where(Customer.loyalty_card == "800000009001")).scalar_one()
        assert (ysaline.last_name, ysaline.email, ysaline.birthday) == (
            "Quenot-Roy", "ysaline.quenot@exemple.fr", dt.date(1904, 7, 14))


def test_a_member_file_with_mistakes_is_refused_line_by_line(shop, tmp_path):
    bad = (MEMBERS.replace("ysaline.quenot@exemple.fr", "ysaline.quenot@")
           .replace("29/02", "31/02").replace("LYS-PDI", "ZZZ-999")
           + "800000000001,Camille,Martin,ysaline.new@exemple.fr,,,,,active\n"
           + "12345,Jo,Bar,,,,,,\n")
    report = import_customers(shop, write(tmp_path, "members.csv", bad))
    assert not report.written
    assert [str(p) for p in report.problems] == [
        "ligne 2, colonne email : « ysaline.quenot@ » n'est pas une adresse e-mail",
        "ligne 3, colonne birthday : « 31/02 » n'est pas une date qui existe",
        "ligne 5, colonne card : « 12345 » n'est pas un numéro de carte (12 chiffres)"]
    taken = MEMBERS + "800000009003,Alex,Roy,camille.martin@example.org,,,,,\n"
    report = import_customers(shop, write(tmp_path, "members.csv", taken), skip_invalid=True)
    assert [str(p) for p in report.problems] == [
        "ligne 4, colonne email : déjà celui de la carte 800000000001"]
    assert report.written and report.added == ["800000009001", "800000009002"]


def test_consents_are_ledgered_as_an_import_with_their_evidence_once(shop, tmp_path):
    import_customers(shop, write(tmp_path, "members.csv", MEMBERS))
    report = import_consents(shop, write(tmp_path, "consents.csv", CONSENTS))
    assert report.written and len(report.updated) == 3 and not report.problems
    with shop() as session:
        ysaline = session.execute(select(Customer.id).where(Customer.loyalty_card == "800000009001")).scalar()
        assert consent_granted(session, "offers", "email", customer_id=ysaline)
        ledger = session.execute(select(ConsentLedgerEntry).where(
            ConsentLedgerEntry.customer_id == ysaline).order_by(ConsentLedgerEntry.id)).scalars().all()
        assert [(e.purpose, e.new_state, e.source_channel) for e in ledger] == [
            ("offers", True, "import"), ("birthday", True, "import")]
        assert ledger[0].source_conversation == "formulaire magasin LYS-PDI ; décidé le 2026-02-01T10:30"
        count = session.execute(select(func.count()).select_from(ConsentLedgerEntry)).scalar()
    again = import_consents(shop, write(tmp_path, "consents.csv", CONSENTS))
    assert (again.updated, again.unchanged) == ([], 3)
    with shop() as session:
        assert session.execute(select(func.count()).select_from(ConsentLedgerEntry)).scalar() == count


def test_a_consent_for_an_unknown_card_or_purpose_refuses_the_file(shop, tmp_path):
    bad = CONSENTS + "800000009999;offers;email;granted;2026-02-01;site web\n" \
                     "800000000001;lottery;email;granted;2026-02-01;site web\n"
    report = import_consents(shop, write(tmp_path, "consents.csv", bad))
    assert not report.written
    assert [p.line for p in report.problems][:1] == [2]  # members not imported yet
    assert "ligne 6, colonne purpose : « lottery » n'est pas un usage" in str(report.problems[-1])


def test_a_local_inventory_feed_sets_stock_fires_alerts_once_and_changes_nothing_twice(shop, tmp_path):
    with shop.begin() as session:  # a shopper waits for this variant at Lille
        variant = session.execute(select(Variant).where(Variant.sku == "P000001-05")).scalar_one()
        lille = session.execute(select(Store).where(Store.code == "LIL-CTR")).scalar_one()
        identity = identity_for(session, "web", "web-waiting-1")
        session.execute(update(Stock).where(Stock.variant_id == variant.id, Stock.store_id == lille.id)
                        .values(quantity=0, reserved=0))
        assert subscribe_here(session, identity, variant.id, lille.id)
        ean = variant.ean
    feed = ("store_code\tid\tquantity\tavailability\tpickup_method\tpickup_sla\n"
            "LIL-CTR\tP000001-05\t6\tin_stock\tbuy\tsame day\n"
            f"online\t{ean}\t\tout_of_stock\t\t\n")
    report = import_inventory(shop, write(tmp_path, "inventory.tsv", feed))
    assert report.written and not report.problems
    assert (stock_quantity(shop, "P000001-05", "LIL-CTR"), stock_quantity(shop, "P000001-05", "WEB")) == (6, 0)
    with shop() as session:
        alerts = session.execute(select(OutboundMessage).where(OutboundMessage.kind == "back_in_stock")).scalars().all()
    assert [a.text for a in alerts] == [alerts[0].text] and "de retour en stock à Lille" in alerts[0].text
    again = import_inventory(shop, write(tmp_path, "inventory.tsv", feed))
    assert (again.added, again.updated, again.unchanged) == ([], [], 2)


def test_an_inventory_line_that_cannot_be_true_refuses_the_feed(shop, tmp_path):
    before = stock_quantity(shop, "P000001-05", "LIL-CTR")
    feed = ("store_code,id,quantity,availability\n"
            "LIL-CTR,P000001-05,3,in_stock\n"
            "ZZZ-000,P000001-05,3,in_stock\n"
            "LIL-CTR,P999999-99,1,in_stock\n"
            "LIL-CTR,P000001-14,2,out_of_stock\n"
            "LIL-CTR,P000001-15,,in_stock\n"
            "LIL-CTR,P000001-05,4,in_stock\n")
    report = import_inventory(shop, write(tmp_path, "inventory.csv", feed))
    assert not report.written
    assert [str(p) for p in report.problems] == [
        "ligne 3, colonne store_code : « ZZZ-000 » n'est pas un magasin connu",
        "ligne 4, colonne id : « P999999-99 » n'est pas un article connu",
        "ligne 5, colonne availability : « out_of_stock » avec 2 unités",
        "ligne 6, colonne quantity : nombre d'unités manquant",
        "ligne 7, colonne id : « P000001-05 » à « LIL-CTR » figure déjà ligne 2"]
    assert stock_quantity(shop, "P000001-05", "LIL-CTR") == before


def test_lines_are_judged_alike_however_the_feed_is_cut_into_chunks(shop, tmp_path, monkeypatch):
    """Lines are checked a chunk at a time: a repeated line, a held count, a line needing
    the long way (spaces, the online store, a GTIN, digits of another script) give the
    same report whether they fall in one chunk or across several."""
    from bot.imports import inventory

    with shop.begin() as session:
        variant = session.execute(select(Variant).where(Variant.sku == "P000001-07")).scalar_one()
        lille = session.execute(select(Store).where(Store.code == "LIL-CTR")).scalar_one()
        session.execute(update(Stock).where(Stock.variant_id == variant.id, Stock.store_id == lille.id)
                        .values(quantity=3, reserved=2))
        ean = session.execute(select(Variant.ean).where(Variant.sku == "P000001-08")).scalar_one()
    feed = write(tmp_path, "inventory.csv", "store_code,id,quantity,availability\n"
                 "LIL-CTR,P000001-05,3,in_stock\n"
                 " LIL-CTR ,P000001-06,2,in_stock\n"
                 "LIL-CTR,P000001-06,4,in_stock\n"
                 "LIL-CTR,P000001-07,1,in_stock\n"
                 "LIL-CTR,P000001-07,5,in_stock\n"
                 "LIL-CTR,P000001-05,1,in_stock\n"
                 f"online,{ean},,out_of_stock\n"
                 "LIL-CTR,P000001-09,\u0663,In Stock\n"
                 "LIL-CTR,P000001-10,\u00b2,in_stock\n")
    reports = []
    for chunk in (50_000, 1, 2, 3):
        monkeypatch.setattr(inventory, "CHUNK", chunk)
        report = import_inventory(shop, feed, dry_run=True)
        reports.append(([str(p) for p in report.problems], len(report.updated), len(report.added),
                        report.unchanged))
    assert reports[0][0] == [
        "ligne 4, colonne id : « P000001-06 » à « LIL-CTR » figure déjà ligne 3",
        "ligne 5, colonne quantity : 2 unités sont réservées pour un retrait : le stock ne peut "
        "pas descendre à 1",
        "ligne 7, colonne id : « P000001-05 » à « LIL-CTR » figure déjà ligne 2",
        "ligne 10, colonne quantity : « \u00b2 » n'est pas un nombre d'unités"]
    assert reports[0][1] + reports[0][2] + reports[0][3] == 5  # lines 2, 3, 6, 8 and 9 taken
    assert reports == [reports[0]] * 4


def test_held_units_stay_held_and_a_new_stock_line_is_added(shop, tmp_path):
    with shop.begin() as session:
        variant = session.execute(select(Variant).where(Variant.sku == "P000001-05")).scalar_one()
        lille = session.execute(select(Store).where(Store.code == "LIL-CTR")).scalar_one()
        session.execute(update(Stock).where(Stock.variant_id == variant.id, Stock.store_id == lille.id)
                        .values(quantity=3, reserved=2))
        nowhere = session.execute(select(Store).where(Store.code == "NCE-MAS")).scalar_one()
        session.execute(Stock.__table__.delete().where(Stock.variant_id == variant.id,
                                                       Stock.store_id == nowhere.id))
    too_low = import_inventory(shop, write(tmp_path, "low.csv", "store_code,id,quantity,availability\n"
                                                                "LIL-CTR,P000001-05,1,limited_availability\n"))
    assert [str(p) for p in too_low.problems] == [
        "ligne 2, colonne quantity : 2 unités sont réservées pour un retrait : le stock ne peut "
        "pas descendre à 1"]
    added = import_inventory(shop, write(tmp_path, "new.csv", "store_code,id,quantity,availability\n"
                                                              "NCE-MAS,P000001-05,5,in_stock\n"))
    assert added.added == ["P000001-05@NCE-MAS"] and stock_quantity(shop, "P000001-05", "NCE-MAS") == 5
    assert stock_quantity(shop, "P000001-05", "LIL-CTR") == 3


def test_an_inventory_feed_updates_and_adds_stock_lines_on_postgresql(postgres_url, tmp_path):
    """The bulk update has its own statement on PostgreSQL (one per page of lines)."""
    from bot.core.db import make_engine, make_session_factory, migrate
    from bot.core.models import Product

    migrate(postgres_url)
    engine = make_engine(postgres_url)
    shop = make_session_factory(engine)
    with shop.begin() as session:
        store = Store(code="LYS-PDI", name="Lyon Part-Dieu", kind="store")
        product = Product(sku="P1", name="Chaussure", brand="Marque", department="running",
                          category="chaussures", price_cents=10000)
        product.variants = [Variant(sku="P1-01", ean="3000000000017"), Variant(sku="P1-02")]
        session.add_all([store, product])
        session.flush()
        session.add(Stock(variant_id=product.variants[0].id, store_id=store.id, quantity=2, reserved=1))
    feed = write(tmp_path, "inventory.csv", "store_code,id,quantity,availability\n"
                                            "LYS-PDI,3000000000017,7,in_stock\nLYS-PDI,P1-02,3,in_stock\n")
    report = import_inventory(shop, feed)
    assert (report.updated, report.added, report.written) == (["3000000000017@LYS-PDI"], ["P1-02@LYS-PDI"], True)
    with shop() as session:
        lines = session.execute(select(Variant.sku, Stock.quantity, Stock.reserved)
                                .join(Stock, Stock.variant_id == Variant.id).order_by(Variant.sku)).all()
    assert [tuple(line) for line in lines] == [("P1-01", 7, 1), ("P1-02", 3, 0)]
    assert import_inventory(shop, feed).unchanged == 2
    engine.dispose()
