"""action_store_hours: what the customer reads, from the real shop database."""
import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import common
from actions.stores import ActionStoreHours
from tests.conftest import free_port


def tracker(city=None):
    return Tracker.from_dict({"sender_id": "test", "slots": {"city": city},
                              "latest_message": {"text": "horaires", "intent": {
                                  "name": "ask_store_hours"}}})


@pytest.fixture
def shop_database(monkeypatch, seeded_sqlite_url):
    monkeypatch.setenv("DATABASE_URL", seeded_sqlite_url)
    common.session_factory.cache_clear()
    yield
    common.session_factory.cache_clear()


async def run(city):
    dispatcher = CollectingDispatcher()
    events = await ActionStoreHours().run(dispatcher, tracker(city), {})
    return dispatcher.messages, events


async def test_hours_of_the_store_in_the_city_asked(shop_database):
    messages, events = await run("lille")
    assert len(messages) == 1
    assert messages[0]["text"].startswith("Lille Centre — 31 rue Neuve, 59000 Lille")
    assert "Horaires : du lundi au samedi" in messages[0]["text"]
    assert events == [SlotSet("city", None)]


async def test_a_city_with_two_stores_gets_both(shop_database):
    messages, _ = await run("Paris")
    assert [m["text"].split(" — ")[0] for m in messages] == ["Paris Rivoli", "Paris Montparnasse"]


async def test_no_city_yet_asks_which_store(shop_database):
    messages, events = await run(None)
    assert messages[0]["response"] == "utter_ask_city"
    assert events == []


async def test_unknown_city_says_where_the_stores_are(shop_database):
    messages, _ = await run("Quimper <script>alert(1)</script>" + "x" * 500)
    text = messages[0]["text"]
    assert text.startswith("Je ne trouve pas de magasin à « Quimper")
    assert len(text) < 600 and "Lille" in text and "en ligne" in text


async def test_database_down_gives_a_polite_message(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"postgresql://nobody@127.0.0.1:{free_port()}/shop")
    common.session_factory.cache_clear()
    try:
        messages, events = await run("Lille")
    finally:
        common.session_factory.cache_clear()
    assert [m["response"] for m in messages] == ["utter_service_unavailable"]
    assert events == []
