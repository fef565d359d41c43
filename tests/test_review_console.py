"""The retailer's side of the console: who may see it, the review inbox (groups, labels,
conflicts), the reviewed examples in the next training's data, and the dashboard's
figures against counts made here from the raw data."""
import datetime as dt
import json
import re
from collections import defaultdict
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.core.db import make_engine
from bot.core.models import DemandSignal, ReviewMessage, SatisfactionAnswer, utcnow
from bot.core.settings import PROJECT_ROOT, load_settings
from bot.handover.agents import create_agent
from bot.ops.demo_history import SENDER_PREFIX, seed_history
from bot.ops.training import export_reviewed, training_hash
from bot.review import analytics, capture, inbox
from bot.web.app import init_app
from tests.harness import SEED_DAY, free_port

PASSWORD = "correct horse battery"
ZONE = ZoneInfo("Europe/Paris")


@pytest.fixture
def settings(tmp_path, shop_url, shop):
    with shop.begin() as session:
        create_agent(session, "alice", "Alice", PASSWORD)
        create_agent(session, "rita", "Rita", PASSWORD, role="reviewer")
        create_agent(session, "adam", "Adam", PASSWORD, role="admin")
    return load_settings({"COMPTOIR_VAR_DIR": str(tmp_path), "DATABASE_URL": shop_url,
                          "TRACKER_STORE_URL": f"sqlite:///{tmp_path / 'trackers.db'}",
                          "RASA_PORT": str(free_port()), "ACTION_PORT": str(free_port())})


@pytest.fixture
async def client(aiohttp_client, settings):
    return await aiohttp_client(init_app(settings))


async def login(client, username):
    page = await client.get("/console")
    token = re.search(r'name="csrf" value="([^"]+)"', await page.text()).group(1)
    response = await client.post("/console/login", data={"csrf": token, "username": username,
                                                        "password": PASSWORD})
    assert response.status == 200
    return (await response.json())["csrf"]


def keep(shop, *texts, reason="fallback", guess="nlu_fallback"):
    with shop.begin() as session:
        for number, text in enumerate(texts):
            capture.note_turn(session, capture.Turn(text, "web", f"web-{number}", guess, 0.3), reason,
                              [], "secret", utcnow())


async def test_only_reviewers_see_the_inbox_and_dashboard_and_only_admins_retrain(client):
    for path in ("/console/api/review", "/console/api/dashboard", "/console/api/retrain"):
        assert (await client.get(path)).status == 401, path
    csrf = await login(client, "alice")
    for path in ("/console/api/review", "/console/api/dashboard", "/console/api/dashboard/jours.csv"):
        response = await client.get(path)
        assert response.status == 403, path
        assert "relecteur" in (await response.json())["error"]
    await client.post("/console/logout", headers={"X-CSRF-Token": csrf})
    csrf = await login(client, "rita")
    assert (await client.get("/console/api/review")).status == 200
    assert (await client.get("/console/api/dashboard")).status == 200
    refused = await client.post("/console/api/retrain", headers={"X-CSRF-Token": csrf})
    assert refused.status == 403 and "administrateur" in (await refused.json())["error"]
    assert (await client.post("/console/api/review/label", json={"ids": [1], "label": "greet"})).status == 403


async def test_similar_messages_are_grouped_most_frequent_first_and_labelled_together(client, shop):
    keep(shop, "vous livrez en corse ?", "Vous livrez en Corse ?", "vous livrez bien en corse",
         "le modèle en vitrine samedi est encore là ?", "vous livrez en Corse svp ?")
    csrf = await login(client, "rita")
    inbox_page = await (await client.get("/console/api/review")).json()
    first, second = inbox_page["groups"]
    assert (first["count"], second["count"]) == (4, 1)
    assert first["text"] == "vous livrez en Corse svp ?"  # the newest wording shows the group
    assert {"intent": "out_of_scope", "title": "Hors sujet (pas une question pour Comptoir)"} \
        in inbox_page["labels"]
    done = await client.post("/console/api/review/label", headers={"X-CSRF-Token": csrf},
                             json={"ids": first["ids"], "label": "out_of_scope"})
    assert (done.status, (await done.json())["labelled"]) == (200, 4)
    ignored = await client.post("/console/api/review/label", headers={"X-CSRF-Token": csrf},
                                json={"ids": second["ids"], "label": "ignorer"})
    assert ignored.status == 200
    assert (await (await client.get("/console/api/review")).json())["groups"] == []
    with shop() as session:
        rows = session.execute(select(ReviewMessage.status, ReviewMessage.label)).all()
    assert sorted(rows, key=str) == sorted([("labelled", "out_of_scope")] * 4 + [("ignored", None)], key=str)


async def test_a_label_that_contradicts_the_training_data_is_refused_with_the_reason(client, shop):
    keep(shop, "Bonjour !")  # a greeting in nlu_data/nlu/basics.yml
    csrf = await login(client, "rita")
    [group] = (await (await client.get("/console/api/review")).json())["groups"]
    refused = await client.post("/console/api/review/label", headers={"X-CSRF-Token": csrf},
                                json={"ids": group["ids"], "label": "check_stock"})
    assert refused.status == 409
    assert (await refused.json())["error"].startswith("« Bonjour ! » figure déjà dans les exemples "
                                                      "de « Salutation »")
    assert (await client.post("/console/api/review/label", headers={"X-CSRF-Token": csrf},
                              json={"ids": group["ids"], "label": "greet"})).status == 200
    unknown = await client.post("/console/api/review/label", headers={"X-CSRF-Token": csrf},
                                json={"ids": group["ids"], "label": "buy_a_car"})
    assert unknown.status == 400


def test_labels_are_in_the_next_trainings_data_as_rasa_reads_it(settings, shop):
    from rasa.shared.importers.importer import TrainingDataImporter

    text = "mon fils veut les pegasus pour son anniversaire, écrivez à paul.r@gmail.com"
    keep(shop, text)
    before = training_hash(PROJECT_ROOT)
    assert export_reviewed(settings, print) == []  # nothing labelled yet: no file, same model
    with shop.begin() as session:
        [row] = session.execute(select(ReviewMessage)).scalars().all()
        start = row.text.index("pegasus")
        assert inbox.label(session, [row.id], "check_stock", None, utcnow(),
                           entity=(row.id, "product", start, start + len("pegasus"))).done == 1
    [data] = export_reviewed(settings, print)
    assert training_hash(PROJECT_ROOT, [data]) != before  # the model retrains with it
    importer = TrainingDataImporter.load_from_config(
        str(PROJECT_ROOT / "config.yml"), str(PROJECT_ROOT / "domain.yml"),
        [str(PROJECT_ROOT / "nlu_data"), str(data)])
    nlu = importer.get_nlu_data()
    [example] = [m for m in nlu.intent_examples if "anniversaire, écrivez" in m.get("text")]
    assert example.get("text") == ("mon fils veut les pegasus pour son anniversaire, écrivez à "
                                   "prenom.nom@example.org")  # masked, then a placeholder
    assert example.get("intent") == "check_stock"
    assert [(e["entity"], e["value"]) for e in example.get("entities")] == [("product", "pegasus")]


def test_the_tracker_table_is_rasas():
    from rasa.core.tracker_store import SQLTrackerStore

    rasa = SQLTrackerStore.SQLEvent.__table__
    assert [(c.name, type(c.type), c.nullable) for c in analytics.EVENTS.columns] == [
        (c.name, type(c.type), c.nullable) for c in rasa.columns]


@pytest.fixture
def history(settings, shop_url):
    shop_engine, trackers = make_engine(shop_url), make_engine(settings.tracker_store_url)
    written = seed_history(shop_engine, trackers, 42, SEED_DAY, settings.identity_secret)
    yield written, trackers
    shop_engine.dispose()
    trackers.dispose()


async def test_the_dashboard_counts_what_the_trackers_and_the_shop_hold(client, history, shop):
    written, trackers = history
    start, end = SEED_DAY - dt.timedelta(days=30), SEED_DAY - dt.timedelta(days=1)
    # Counted here from the raw rows: who wrote on which day, who was handed over.
    talked, handed, messages = defaultdict(set), defaultdict(set), 0
    with trackers.connect() as connection:
        for sender, kind, stamp, action in connection.execute(select(
                analytics.EVENTS.c.sender_id, analytics.EVENTS.c.type_name,
                analytics.EVENTS.c.timestamp, analytics.EVENTS.c.action_name)):
            day = dt.datetime.fromtimestamp(stamp, ZONE).date()
            if kind == "user":
                talked[day].add(sender)
                messages += 1
            elif action == "action_handover":
                handed[day].add(sender)
    assert all(sender.startswith(SENDER_PREFIX) for senders in talked.values() for sender in senders)
    with shop() as session:
        not_carried = session.execute(select(DemandSignal.asked).where(
            DemandSignal.kind == "not_carried")).scalars().all()
        scores = session.execute(select(SatisfactionAnswer.score).where(
            SatisfactionAnswer.score.is_not(None))).scalars().all()
    await login(client, "rita")
    board = await (await client.get(f"/console/api/dashboard?du={start}&au={end}")).json()
    days = {d["day"]: d for d in board["days"]}
    assert len(days) == 30
    for day, senders in talked.items():
        assert days[day.isoformat()]["conversations"] == len(senders) == written.conversations[day.isoformat()]
    conversations = sum(len(s) for s in talked.values())
    contained = sum(len(talked[d] - handed[d]) for d in talked)
    assert board["totals"]["conversations"] == conversations
    assert board["totals"]["messages"] == messages == written.messages
    assert board["totals"]["containment"] == round(contained / conversations, 4)
    assert board["totals"]["handovers"] == written.handovers == sum(len(s) for s in handed.values())
    assert sum(n for _asked, n in board["not_carried"]) == len(not_carried) > 0
    assert board["totals"]["satisfaction_answers"] == len(scores) > 0
    assert board["totals"]["satisfaction"] == round(sum(scores) / len(scores), 4)
    assert {kind for _day, kind, *_counts in board["satisfaction"]} == {"bot", "handover"}
    assert board["intents"][0][1] >= board["intents"][-1][1]
    # The seeding day itself had no conversation yet.
    today = await (await client.get(f"/console/api/dashboard?du={SEED_DAY}&au={SEED_DAY}")).json()
    assert today["totals"]["conversations"] == 0 and today["totals"]["containment"] is None
    bad = await client.get(f"/console/api/dashboard?du={end}&au={start}")
    assert bad.status == 400 and "période" in (await bad.json())["error"]


async def test_every_table_exports_as_csv_and_a_formula_stays_text(client, history, shop):
    with shop.begin() as session:
        session.add(DemandSignal(kind="not_carried", asked="=HYPERLINK(\"http://x\")", channel="web",
                                 conversation_ref="r", created_at=utcnow() - dt.timedelta(days=1)))
    await login(client, "rita")
    period = f"du={SEED_DAY - dt.timedelta(days=30)}&au={dt.date.today()}"
    for table in ("jours", "intentions", "transferts", "indisponibles", "non-references",
                  "alertes", "reservations", "satisfaction"):
        response = await client.get(f"/console/api/dashboard/{table}.csv?{period}")
        assert response.status == 200, table
        assert response.headers["Content-Disposition"].startswith(f'attachment; filename="comptoir-{table}-')
        body = (await response.read()).decode("utf-8-sig")
        assert len(body.splitlines()) > 1, table  # headers and rows
    carried = (await (await client.get(f"/console/api/dashboard/non-references.csv?{period}")).read()).decode()
    assert "'=HYPERLINK" in carried and "\n=HYPERLINK" not in carried
    assert (await client.get(f"/console/api/dashboard/secrets.csv?{period}")).status == 404


async def test_the_dashboard_shows_no_message_text(client, history, shop):
    await login(client, "rita")
    board = json.dumps(await (await client.get(
        f"/console/api/dashboard?du={SEED_DAY - dt.timedelta(days=30)}&au={SEED_DAY}")).json())
    with shop() as session:
        texts = session.execute(select(ReviewMessage.text)).scalars().all()
    assert texts and not any(text in board for text in texts)
