"""Rasa's command line with three per-turn costs of Rasa 3.6 removed.

    python -m bot.ops.rasa_server run --model ... (the same arguments as `python -m rasa`)

`python -m bot up` starts the Rasa servers through this module. Profiled under the
end-to-end benchmark (py-spy on the Rasa process), three things Rasa does on every turn
cost much of its CPU besides NLU and dialogue:

- Every answer of the action server is checked with `jsonschema.validate`, which first
  validates Rasa's own, constant response schema against the JSON Schema metaschema:
  about 4.5 ms per custom action. Here the schema is checked once and the compiled
  validator is reused; answers are checked against the same schema and a bad answer
  raises the same `ValidationError` with Rasa's message.
- The SQLite tracker store commits every turn with a full fsync. The file is in WAL
  mode (`bot.ops.supervisor.prepare_sqlite_tracker_store`), where `synchronous=NORMAL`
  keeps every commit through a crash or a `kill -9` of any process; only an operating
  system crash or a power cut can lose the last turns' conversation events. The shop
  database (consents, holds, vouchers) is not touched by this.
- SQLAlchemy 1.4 gives an SQLite file no connection pool, so Rasa's SQL tracker store
  opened a new connection (and ran the pragma above) for every load and save of a
  conversation, and closed it (closing the last connection of a WAL database also
  checkpoints it): about 6 % of Rasa's busy time in py-spy's samples, and p50 29 -> 24 ms,
  p99 125 -> 88 ms under the benchmark once removed. Here the SQLite tracker store keeps
  its connections in a pool, as PostgreSQL's already does.

And one cost that grows: Rasa loads, replays and featurizes every event of the current
conversation session on each turn, and sends them all to the action server, so a turn
got slower with every message (6x by the 300th). A session of more than
`SESSION_WINDOW_TURNS` customer messages is continued in a new one (`continue_long_sessions`):
the same `action_session_start` Rasa runs after an hour of silence, with every slot
carried over and the `SessionStarted` event marked `continued`, at a turn that follows
an understood message. Nothing the dialogue
uses is lost: every rule covers one turn and context lives in slots (config.yml), and
the gateway reads the continued sessions as one conversation (`bot.web.history.replay`). A
paused conversation (a person has it) is not continued. The action server is sent the
tracker's state with the events of the customer's two latest messages, what the actions
read (`action_call_format`), and no domain (`enable_selective_domain`). Once the model
is loaded, what it built is frozen out of the garbage collector's walks (`bot.core.gcwatch`).
A model swapped in through `PUT /model` (a retraining) loads on a worker thread, so
conversations go on with the old model meanwhile (`load_off_the_loop`).

Memory: DIET is loaded for predicting only (`load_for_inference`), without the training
graph Rasa traces to build its weights.
"""
from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from functools import lru_cache
from typing import Any, Dict, List, Optional, Text, Union

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.engine.url import URL

from bot.assistant.client import CONTINUED
from bot.assistant.fallback import MISSES
from bot.core import gcwatch
from bot.core.db import sqlite_file_pool


@lru_cache(maxsize=1)
def _action_response_validator() -> Any:
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_action_result(self: Any, result: Dict[Text, Any]) -> bool:
    """`RemoteAction._validate_action_result` with the validator compiled once."""
    from jsonschema.exceptions import best_match
    from rasa.shared.constants import DOCS_BASE_URL

    error = best_match(_action_response_validator().iter_errors(result))
    if error is not None:
        error.message += (
            f". Failed to validate Action server response from API, "
            f"make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise error
    return True


def _sqlite_synchronous_normal(dbapi_connection: Any, _record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


@lru_cache(maxsize=1)
def _rasa_create_engine_kwargs() -> Any:
    from rasa.core import tracker_store

    return tracker_store.create_engine_kwargs


def tracker_store_engine_kwargs(url: Union[Text, URL]) -> Dict[Text, Any]:
    """Rasa's `create_engine` arguments for its SQL tracker store, with the shop
    database's pool for an SQLite file (`bot.core.db.sqlite_file_pool`)."""
    return {**sqlite_file_pool(str(url)), **_rasa_create_engine_kwargs()(url)}


# Customer messages in one Rasa session before it is continued in a new one: a turn then
# costs about what the 10th of a conversation does, whatever its length.
SESSION_WINDOW_TURNS = 20


def may_continue_in_new_session(tracker: Any, window: int) -> bool:
    """At least `window` customer messages since the latest session start, the last one
    understood: after a miss, the next turn reads the message before (a clarifying
    question's answer stands for it; two misses in a row offer a person)."""
    from rasa.shared.core.events import SessionStarted, UserUttered

    turns, last_intent = 0, None
    for event in reversed(tracker.events):
        if isinstance(event, SessionStarted):
            break
        if isinstance(event, UserUttered):
            last_intent = last_intent if turns else event.intent_name
            turns += 1
    return turns >= window and last_intent not in MISSES


def continued_session_start() -> Any:
    """`action_session_start` that carries every slot's current value over (not each of
    its past values, as Rasa's carry-over does: those would pile up session after session)."""
    from rasa.core.actions.action import ActionSessionStart
    from rasa.shared.core.constants import ACTION_LISTEN_NAME
    from rasa.shared.core.events import ActionExecuted, SessionStarted, SlotSet

    class ContinuedSessionStart(ActionSessionStart):
        async def run(self, output_channel: Any, nlg: Any, tracker: Any, domain: Any) -> List[Any]:
            # The session start first: the tracker store loads the events stamped at or
            # after it, so the slots set after it are the new session's.
            started = SessionStarted(metadata={CONTINUED: True})
            carried = [SlotSet(name, slot.value) for name, slot in tracker.slots.items()
                       if slot.value != slot.initial_value]
            return [started, *carried, ActionExecuted(ACTION_LISTEN_NAME)]

    return ContinuedSessionStart()


def continue_long_sessions(update_session: Any, window: int) -> Any:
    """`MessageProcessor._update_tracker_session`, which also continues a session of more
    than `window` customer messages in a new one."""
    async def _update_tracker_session(self: Any, tracker: Any, output_channel: Any,
                                      metadata: Optional[Dict] = None) -> None:
        if (may_continue_in_new_session(tracker, window) and not tracker.is_paused()
                and not tracker.active_loop_name and not self._has_session_expired(tracker)):
            from rasa.core.policies.policy import PolicyPrediction
            from rasa.shared.core.constants import ACTION_SESSION_START_NAME

            await self._run_action(
                action=continued_session_start(), tracker=tracker, output_channel=output_channel,
                nlg=self.nlg,
                prediction=PolicyPrediction.for_action_name(self.domain, ACTION_SESSION_START_NAME))
            return
        await update_session(self, tracker, output_channel, metadata)

    _update_tracker_session.wrapped = update_session  # type: ignore[attr-defined]
    return _update_tracker_session


# The actions read the slots, the latest message and, of the events, the customer's two
# latest messages at most (`actions.common.clarified_text`, the second miss in a row).
ACTION_CALL_USER_TURNS = 2
REFREEZE_AFTER_SWAP = 2.0  # seconds: the old model is unreachable by then


def recent_events(tracker: Any, user_turns: int) -> List[Any]:
    """The tracker's events from its `user_turns`-th latest customer message on."""
    from rasa.shared.core.events import UserUttered

    events = list(tracker.events)
    said = [index for index, event in enumerate(events) if isinstance(event, UserUttered)]
    return events[said[-user_turns]:] if len(said) >= user_turns else events


def action_call_format(self: Any, tracker: Any, domain: Any) -> Dict[Text, Any]:
    """`RemoteAction._action_call_format` sending the action server what our actions read:
    the tracker's state with its recent events (not the whole session's), and the domain
    only to an action that asks for it (`enable_selective_domain`, endpoints file)."""
    import rasa
    from rasa.shared.core.trackers import EventVerbosity

    state = tracker.current_state(EventVerbosity.NONE)
    state["events"] = [event.as_dict() for event in recent_events(tracker, ACTION_CALL_USER_TURNS)]
    call = {"next_action": self._name, "sender_id": tracker.sender_id, "tracker": state,
            "version": rasa.__version__}
    if (not self._is_selective_domain_enabled()
            or domain.does_custom_action_explicitly_need_domain(self.name())):
        call["domain"] = domain.as_dict()
    return call


def load_for_inference(load: Any) -> Any:
    """`RasaModel.load` (DIET) that builds the model for predicting only.

    Rasa builds a loaded model's weights by training it on one example (`fit`), then
    loads the trained weights over them: that traces the whole training graph, gradients
    and optimizer included, about 330 MB of the Rasa process that no prediction uses.
    Here the weights are read from the checkpoint as the prediction on one example
    creates them (TensorFlow restores a variable created after `load_weights`); the
    optimizer's saved state is left unread. Predictions are the same to the last digit
    (tests/test_rasa_server.py). Fine-tuning (`rasa train --finetune`) keeps Rasa's way."""
    def load_model(cls: Any, model_file_name: Text, model_data_example: Any,
                   predict_data_example: Any = None, finetune_mode: bool = False,
                   *args: Any, **kwargs: Any) -> Any:
        if finetune_mode or not predict_data_example:
            return load.__func__(cls, model_file_name, model_data_example, predict_data_example,
                                 finetune_mode, *args, **kwargs)
        model = cls(*args, **kwargs)
        model.load_weights(model_file_name).expect_partial()
        model.run_inference(predict_data_example)
        return model

    load_model.wrapped = load  # type: ignore[attr-defined]
    return classmethod(load_model)


def freeze_after_load(load_agent: Any) -> Any:
    """Rasa's `load_agent_on_start`, then what the model load built is frozen out of the
    garbage collector's walks and collection pauses are timed (`bot.core.gcwatch`)."""
    async def load_agent_on_start(*args: Any, **kwargs: Any) -> Any:
        loaded = await load_agent(*args, **kwargs)
        gcwatch.freeze_and_watch("rasa")
        return loaded

    load_agent_on_start.wrapped = load_agent  # type: ignore[attr-defined]
    return load_agent_on_start


def load_off_the_loop(load_agent: Any) -> Any:
    """Rasa's `_load_agent` for `PUT /model`, on a worker thread: Rasa runs it on the
    server's event loop, where conversations would wait for the whole load (seconds).
    The old model answers until Rasa swaps the new one in; then the old one is freed and
    what is left is frozen again (`bot.core.gcwatch.refreeze`)."""
    async def _load_agent(*args: Any, **kwargs: Any) -> Any:
        loaded = await asyncio.to_thread(asyncio.run, load_agent(*args, **kwargs))
        # Rasa swaps the agent once this returns: the old one is garbage a moment later.
        asyncio.get_running_loop().call_later(REFREEZE_AFTER_SWAP, gcwatch.refreeze, "rasa")
        return loaded

    _load_agent.wrapped = load_agent  # type: ignore[attr-defined]
    return _load_agent


def install() -> None:
    from rasa import server
    from rasa.core import run, tracker_store
    from rasa.core.actions.action import RemoteAction
    from rasa.core.processor import MessageProcessor
    from rasa.utils.tensorflow.models import RasaModel

    RemoteAction._validate_action_result = validate_action_result
    if not hasattr(RasaModel.load, "wrapped"):
        RasaModel.load = load_for_inference(RasaModel.__dict__["load"])
    RemoteAction._action_call_format = action_call_format
    if not hasattr(run.load_agent_on_start, "wrapped"):
        run.load_agent_on_start = freeze_after_load(run.load_agent_on_start)
    if not hasattr(server._load_agent, "wrapped"):
        server._load_agent = load_off_the_loop(server._load_agent)
    if not hasattr(MessageProcessor._update_tracker_session, "wrapped"):
        MessageProcessor._update_tracker_session = continue_long_sessions(
            MessageProcessor._update_tracker_session, SESSION_WINDOW_TURNS)
    _rasa_create_engine_kwargs()  # Rasa's own, kept before it is replaced
    tracker_store.create_engine_kwargs = tracker_store_engine_kwargs
    if not event.contains(Engine, "connect", _sqlite_synchronous_normal):
        event.listen(Engine, "connect", _sqlite_synchronous_normal)


def main() -> None:
    install()
    from rasa.__main__ import main as rasa_main

    sys.argv = with_auth_token(sys.argv, os.environ.get("RASA_TOKEN", ""))
    rasa_main()


def with_auth_token(argv: List[str], token: str) -> List[str]:
    """The API token comes from the environment, so that it is not in the command line
    others can read (`ps`); Rasa only takes it as an argument, added here inside the
    process ("=": a token may begin with "-")."""
    if token and len(argv) > 1 and argv[1] == "run":
        return [*argv, f"--auth-token={token}"]
    return list(argv)


if __name__ == "__main__":
    main()
