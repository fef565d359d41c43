"""The Rasa launcher's fixes keep Rasa's behaviour: the action server's answers are
still validated against Rasa's schema, the SQLite tracker store keeps its commits, and
it keeps them through a pool of connections."""
import sqlite3

import jsonschema
import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine

from bot import rasa_server

VALID = {"events": [{"event": "slot", "name": "stock_size", "value": "42"}],
         "responses": [{"text": "Il en reste 4 à Lyon Part-Dieu."}]}
INVALID = [{"events": "not a list", "responses": []},
           {"events": [{"no_event_key": 1}], "responses": []},
           {"events": [], "responses": "texte"}]


@pytest.fixture
def installed():
    """The launcher's fixes, undone afterwards (they are process-wide, as in Rasa's)."""
    from rasa.core import tracker_store
    from rasa.core.actions.action import RemoteAction

    original = RemoteAction._validate_action_result
    original_kwargs = tracker_store.create_engine_kwargs
    rasa_server.install()
    yield
    RemoteAction._validate_action_result = original
    tracker_store.create_engine_kwargs = original_kwargs
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
