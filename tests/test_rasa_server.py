"""The Rasa launcher's fixes keep Rasa's behaviour: the action server's answers are
still validated against Rasa's schema, the SQLite tracker store keeps its commits, and
it keeps them through a pool of connections; a long conversation goes on in a new
session with everything it knew, and the actions get what they read."""
import sqlite3

import jsonschema
import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine

from bot.core.settings import PROJECT_ROOT
from bot.ops import rasa_server

VALID = {"events": [{"event": "slot", "name": "stock_size", "value": "42"}],
         "responses": [{"text": "Il en reste 4 à Lyon Part-Dieu."}]}
INVALID = [{"events": "not a list", "responses": []},
           {"events": [{"no_event_key": 1}], "responses": []},
           {"events": [], "responses": "texte"}]


@pytest.fixture
def installed():
    """The launcher's fixes, undone afterwards (they are process-wide, as in Rasa's)."""
    from rasa.core import run, tracker_store
    from rasa.core.actions.action import RemoteAction
    from rasa.core.processor import MessageProcessor

    from rasa.utils.tensorflow.models import RasaModel

    originals = [(RemoteAction, "_validate_action_result"), (RemoteAction, "_action_call_format"),
                 (MessageProcessor, "_update_tracker_session"), (run, "load_agent_on_start"),
                 (tracker_store, "create_engine_kwargs"), (RasaModel, "load")]
    kept = [(owner, name, vars(owner)[name]) for owner, name in originals]
    rasa_server.install()
    yield
    for owner, name, value in kept:
        setattr(owner, name, value)
    event.remove(Engine, "connect", rasa_server._sqlite_synchronous_normal)


@pytest.fixture
def remote_action(installed):
    from rasa.core.actions.action import RemoteAction

    return RemoteAction("action_check_stock", None)


def test_a_valid_action_server_answer_is_accepted(remote_action):
    jsonschema.validate(VALID, remote_action.action_response_format_spec())
    assert remote_action._validate_action_result(VALID) is True


@pytest.mark.parametrize("answer", INVALID)
def test_a_bad_action_server_answer_is_refused_as_rasa_would(remote_action, answer):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(answer, remote_action.action_response_format_spec())
    with pytest.raises(jsonschema.ValidationError) as refused:
        remote_action._validate_action_result(answer)
    assert "Failed to validate Action server response" in refused.value.message


def test_the_wal_tracker_store_commits_without_a_full_fsync_and_keeps_its_rows(tmp_path, installed):
    path = tmp_path / "trackers.db"
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
    engine = create_engine(f"sqlite:///{path}", future=True)
    with engine.begin() as connection:
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
        connection.execute(text("CREATE TABLE events (id INTEGER PRIMARY KEY, data TEXT)"))
        connection.execute(text("INSERT INTO events (data) VALUES ('bonjour')"))
    engine.dispose()
    with sqlite3.connect(path) as connection:  # another process would see it the same way
        assert connection.execute("SELECT data FROM events").fetchall() == [("bonjour",)]


def test_a_database_not_in_wal_mode_keeps_sqlites_default(tmp_path, installed):
    engine = create_engine(f"sqlite:///{tmp_path / 'shop.db'}", future=True)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    engine.dispose()


async def test_the_sqlite_tracker_store_reuses_its_connection_and_keeps_conversations(tmp_path, installed):
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(tmp_path / "trackers.db"))
    connects = []
    event.listen(store.engine, "connect", lambda *_: connects.append(1))
    for turn in range(5):
        tracker = await store.retrieve("client-1") or DialogueStateTracker("client-1", [])
        tracker.update(UserUttered(f"message {turn}"))
        await store.save(tracker)
    # The connection that created the tables served all ten visits (Rasa alone opened ten).
    assert connects == []
    store.engine.dispose()
    again = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(tmp_path / "trackers.db"))
    kept = await again.retrieve("client-1")
    assert [e.text for e in kept.events if isinstance(e, UserUttered)] == [
        f"message {turn}" for turn in range(5)]
    again.engine.dispose()


def test_postgresql_tracker_stores_keep_rasas_own_arguments(installed):
    from rasa.core import tracker_store

    kwargs = tracker_store.create_engine_kwargs("postgresql://rasa@db/trackers")
    assert kwargs["pool_size"] == 50 and "poolclass" not in kwargs
    assert tracker_store.create_engine_kwargs("sqlite://") == {}  # in memory: no pool


def user(text, intent):
    from rasa.shared.core.events import UserUttered

    return UserUttered(text, {"name": intent, "confidence": 0.9},
                       parse_data={"text": text, "intent": {"name": intent, "confidence": 0.9}})


def turns(count, intent="thank"):
    from rasa.shared.core.events import ActionExecuted, BotUttered

    events = []
    for turn in range(count):
        events += [user(f"message {turn}", intent), ActionExecuted("utter_you_are_welcome"),
                   BotUttered("Avec plaisir !"), ActionExecuted("action_listen")]
    return events


def tracker_of(events):
    from rasa.shared.core.trackers import DialogueStateTracker

    return DialogueStateTracker.from_events("client-1", events)


def test_a_session_is_continued_once_it_is_long_and_its_last_message_understood():
    from rasa.shared.core.events import SessionStarted

    window = rasa_server.SESSION_WINDOW_TURNS
    assert not rasa_server.may_continue_in_new_session(tracker_of(turns(window - 1)), window)
    assert rasa_server.may_continue_in_new_session(tracker_of(turns(window)), window)
    # Only the current session counts.
    restarted = turns(window) + [SessionStarted()] + turns(3)
    assert not rasa_server.may_continue_in_new_session(tracker_of(restarted), window)
    # After a miss the next turn may need the message before it (a clarifying question's
    # answer, a second miss offering a person): it stays in the same session.
    missed = turns(window - 1) + turns(1, intent="nlu_fallback")
    assert not rasa_server.may_continue_in_new_session(tracker_of(missed), window)
    assert rasa_server.may_continue_in_new_session(tracker_of(missed + turns(1)), window)


def test_the_action_server_gets_the_state_and_the_two_latest_messages(installed):
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import SlotSet
    from rasa.utils.endpoints import EndpointConfig
    from rasa_sdk import Tracker

    from actions.common import clarified_text

    domain = Domain.load(str(PROJECT_ROOT / "domain.yml"))
    events = ([SlotSet("stock_product", "NIKE-PEG41")] + turns(40)
              + [user("vous avez les chaussures de rando du catalogue ?", "nlu_fallback")]
              + [user("/check_stock", "check_stock")])
    tracker = tracker_of(events)
    call = RemoteAction("action_check_stock", EndpointConfig(
        "http://actions", enable_selective_domain=True))._action_call_format(tracker, domain)
    sent = call["tracker"]
    assert [e["event"] for e in sent["events"]] == ["user", "user"]
    assert sent["slots"]["stock_product"] == "NIKE-PEG41"  # slots set long ago are there
    assert sent["latest_message"]["text"] == "/check_stock"
    assert "domain" not in call  # no action of ours reads it
    # What the actions read of the events still reads the same.
    assert clarified_text(Tracker.from_dict(sent)) == "vous avez les chaussures de rando du catalogue ?"
    # Rasa's own format, for an endpoint that did not ask for less: the domain goes.
    assert "domain" in RemoteAction("action_check_stock", None)._action_call_format(tracker, domain)


async def test_a_long_conversation_goes_on_in_new_sessions_with_what_it_knew(
        tmp_path, installed, trained_model):
    """The real model and tracker store: 50 turns of greetings and "are you a robot?"
    (answered by responses: no action server here). Rasa loads a
    bounded session on each turn, the slots set at the start are still there, the
    conversation is answered all along, and a paused one is never continued."""
    from rasa.core.agent import Agent
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ConversationPaused, SessionStarted, SlotSet

    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(tmp_path / "trackers.db"))
    agent = Agent.load(str(trained_model), tracker_store=store)
    tracker = await agent.processor.fetch_tracker_and_update_session("client-1")
    tracker.update(SlotSet("stock_product", "NIKE-PEG41"))
    await store.save(tracker)
    loaded_sizes = []
    for turn in range(50):
        replies = await agent.handle_text("tu es un robot ?" if turn % 2 else "bonjour",
                                          sender_id="client-1")
        assert replies and replies[0]["text"], f"no answer at turn {turn}"
        loaded_sizes.append(len((await store.retrieve("client-1")).events))
    current = await store.retrieve("client-1")
    assert current.get_slot("stock_product") == "NIKE-PEG41"
    full = await store.retrieve_full_tracker("client-1")
    starts = [e for e in full.events if isinstance(e, SessionStarted)]
    assert len(starts) == 1 + 50 // rasa_server.SESSION_WINDOW_TURNS
    assert all(e.metadata.get(rasa_server.CONTINUED) for e in starts[1:])
    assert max(loaded_sizes) <= 2 * max(loaded_sizes[:rasa_server.SESSION_WINDOW_TURNS])

    paused = await store.retrieve("client-1")
    paused.update(ConversationPaused())
    await store.save(paused)
    for _ in range(rasa_server.SESSION_WINDOW_TURNS + 2):
        await agent.handle_text("merci", sender_id="client-1")
    full = await store.retrieve_full_tracker("client-1")
    assert len([e for e in full.events if isinstance(e, SessionStarted)]) == len(starts)
    store.engine.dispose()


def parsed(agent, texts):
    import asyncio

    async def parse_all():
        return [await agent.parse_message(text) for text in texts]

    return [(p["intent"]["name"], p["intent"]["confidence"], [(e["entity"], e["value"]) for e in p["entities"]],
             [(r["name"], r["confidence"]) for r in p["intent_ranking"]])
            for p in asyncio.run(parse_all())]


def test_the_model_loaded_for_predicting_only_predicts_the_same(trained_model):
    """The launcher loads DIET without tracing its training graph (a third of Rasa's
    memory): on shoppers' messages its intents, confidences and entities are exactly
    those of Rasa's own load."""
    from rasa.core.agent import Agent
    from rasa.utils.tensorflow.models import RasaModel

    texts = ["Bonjour, vous avez les Pegasus 41 en bleu à Lille ?", "je voudrais supprimer mes données",
             "Merci beaucoup, bonne journée ! Cordialement, M. Durand", "un code promo pour mon anniversaire ?",
             "vous livrez en Corse ?", "horaires du magasin de lyon part dieu svp", "parler à un conseiller",
             "J'ai acheté une cafetière l'an dernier, le filtre est usé. Vous avez le même ?"]
    expected = parsed(Agent.load(str(trained_model)), texts)
    rasas_own = RasaModel.__dict__["load"]
    RasaModel.load = rasa_server.load_for_inference(rasas_own)
    try:
        assert parsed(Agent.load(str(trained_model)), texts) == expected
    finally:
        RasaModel.load = rasas_own
    assert len({intent for intent, *_ in expected}) >= 5  # a varied sample, not one answer
