"""Rasa's command line with three per-turn costs of Rasa 3.6 removed.

    python -m bot.rasa_server run --model ... (the same arguments as `python -m rasa`)

`python -m bot up` starts the Rasa servers through this module. Profiled under the
end-to-end benchmark (py-spy on the Rasa process), three things Rasa does on every turn
cost much of its CPU besides NLU and dialogue:

- Every answer of the action server is checked with `jsonschema.validate`, which first
  validates Rasa's own, constant response schema against the JSON Schema metaschema:
  about 4.5 ms per custom action. Here the schema is checked once and the compiled
  validator is reused; answers are checked against the same schema and a bad answer
  raises the same `ValidationError` with Rasa's message.
- The SQLite tracker store commits every turn with a full fsync. The file is in WAL
  mode (`bot.supervisor.prepare_sqlite_tracker_store`), where `synchronous=NORMAL`
  keeps every commit through a crash or a `kill -9` of any process; only an operating
  system crash or a power cut can lose the last turns' conversation events. The shop
  database (consents, holds, vouchers) is not touched by this.
- SQLAlchemy 1.4 gives an SQLite file no connection pool, so Rasa's SQL tracker store
  opened a new connection (and ran the pragma above) for every load and save of a
  conversation, and closed it (closing the last connection of a WAL database also
  checkpoints it): about 6 % of Rasa's busy time in py-spy's samples, and p50 29 -> 24 ms,
  p99 125 -> 88 ms under the benchmark once removed. Here the SQLite tracker store keeps
  its connections in a pool, as PostgreSQL's already does.
"""
from __future__ import annotations

import os
import sqlite3
import sys
from functools import lru_cache
from typing import Any, Dict, List, Text, Union

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.engine.url import URL


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
    database's pool for an SQLite file (`bot.db.sqlite_file_pool`)."""
    from bot.db import sqlite_file_pool

    return {**sqlite_file_pool(str(url)), **_rasa_create_engine_kwargs()(url)}


def install() -> None:
    from rasa.core import tracker_store
    from rasa.core.actions.action import RemoteAction

    RemoteAction._validate_action_result = validate_action_result
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
