"""action_store_hours: what the customer reads, from the real shop database."""
import datetime as dt

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import common
from actions.stores import ActionStoreHours
from bot.core.text import day_asked, format_date
from tests.harness import free_port


def tracker(city=None, text="horaires", pending=None):
    return Tracker.from_dict({"sender_id": "test", "slots": {"city": city, "pending": pending},
                              "latest_message": {"text": text, "intent": {
                                  "name": "ask_store_info"}}})


async def run(city, pending=None):
    dispatcher = CollectingDispatcher()
    events = await ActionStoreHours().run(dispatcher, tracker(city, pending=pending), {})
    return dispatcher.messages, events


async def test_hours_of_the_store_in_the_city_asked(shop_database):
    messages, events = await run("lille")
    assert len(messages) == 1
    assert messages[0]["text"].startswith("Lille Centre — 31 rue Neuve, 59000 Lille")
    assert "Horaires : du lundi au samedi" in messages[0]["text"]
    # The city is forgotten; `pending`, already empty, gets no event (every event stays
    # in the conversation and is read again on each turn).
    assert events == [SlotSet("city", None)]


async def test_the_question_waiting_for_a_city_is_closed_once_answered(shop_database):
    _, events = await run("lille", pending="hours_store")
    assert events == [SlotSet("city", None), SlotSet("pending", None)]


async def test_a_store_named_in_the_words_is_found_without_a_city_entity(shop_database):
    dispatcher = CollectingDispatcher()
    await ActionStoreHours().run(dispatcher, tracker(None, "horaires du magasin de lyon part dieu svp"), {})
    assert dispatcher.messages[0]["text"].startswith("Lyon Part-Dieu — 17 rue du Docteur Bouchut")
    asked = CollectingDispatcher()
    await ActionStoreHours().run(asked, tracker(None, "vous êtes ouverts dimanche ?"), {})
    assert asked.messages[0]["response"] == "utter_ask_city"


async def test_a_city_with_two_stores_gets_both(shop_database):
    messages, _ = await run("Paris")
    assert [m["text"].split(" — ")[0] for m in messages] == ["Paris Rivoli", "Paris Montparnasse"]


async def test_no_city_yet_asks_which_store(shop_database):
    messages, events = await run(None)
    assert messages[0]["response"] == "utter_ask_city"
    assert events == [SlotSet("pending", "hours_store")]


async def test_unknown_city_says_where_the_stores_are(shop_database):
    messages, _ = await run("Quimper <script>alert(1)</script>" + "x" * 500)
    text = messages[0]["text"]
    assert text.startswith("Je ne trouve pas de magasin à « Quimper")
    assert len(text) < 600 and "Lille" in text and "en ligne" in text


async def test_database_down_gives_a_polite_message(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"postgresql://nobody@127.0.0.1:{free_port()}/shop")
    common.reset_caches()
    try:
        messages, events = await run("Lille")
    finally:
        common.reset_caches()
    assert [m["response"] for m in messages] == ["utter_service_unavailable"]
    assert events == []


async def test_the_day_asked_is_answered_with_its_closure(monkeypatch, tmp_path):
    """The action reads the real clock, and the demo shop seeds its bank holidays for the
    seeding year and the next: so this shop is seeded today, and the next 25 December is
    always among them (the shared demo shop, seeded on a fixed day, runs out in 2027)."""
    from bot.core.db import make_engine, migrate
    from bot.ops.demo import seed_demo_shop

    url = f"sqlite:///{tmp_path / 'today.db'}"
    migrate(url)
    engine = make_engine(url)
    seed_demo_shop(engine, 42, dt.date.today())
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    common.reset_caches()
    dispatcher = CollectingDispatcher()
    await ActionStoreHours().run(dispatcher, tracker("Lille", "vous êtes ouverts le 25 décembre ?"), {})
    common.reset_caches()
    christmas = day_asked("25 décembre", dt.date.today())
    assert f"Le {format_date(christmas)} : fermé (Noël)." in dispatcher.messages[0]["text"]


async def test_the_day_is_remembered_while_the_city_is_asked(shop_database):
    dispatcher = CollectingDispatcher()
    events = await ActionStoreHours().run(dispatcher, tracker(None, "ouvert le 25/12 ?"), {})
    (event,) = events
    assert event["value"].startswith("hours_store ") and event["value"].endswith("-12-25")
