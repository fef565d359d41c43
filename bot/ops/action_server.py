"""The action server, as `python -m rasa_sdk` starts it, with a token.

rasa_sdk 3.6 answers anyone who can reach its port, and the actions trust what the
tracker they are sent says (the channel, the sender): a local process could speak as
a verified Telegram customer. Rasa sends the action endpoint's `token` as a query
parameter (`token:` in endpoints.yml); here every call but /health must carry it.

    python -m bot.ops.action_server --actions actions --port 5055   (ACTION_TOKEN in the environment)
"""
from __future__ import annotations

import logging
import os
from typing import Any, Optional

from rasa_sdk import utils
from rasa_sdk.constants import APPLICATION_ROOT_LOGGER_NAME
from rasa_sdk.endpoint import create_app, create_argument_parser
from sanic import response
from sanic.request import Request

from actions.common import warm_up
from bot.core import gcwatch
from bot.core.signing import same

TOKEN_ENV = "ACTION_TOKEN"
OPEN_PATHS = ("/health",)


def require_token(app: Any, token: str) -> None:
    @app.middleware("request")
    async def check(request: Request) -> Optional[Any]:
        if request.path in OPEN_PATHS:
            return None
        supplied = request.args.get("token", "")
        if not token or not same(token, supplied):
            return response.json({"error": "token required"}, status=401)
        return None


async def _freeze_when_started(_app: Any, _loop: Any) -> None:
    """The actions and the catalog are loaded: keep what start-up built out of the
    collector's walks."""
    warm_up()
    gcwatch.freeze_and_watch("actions")


def main() -> None:
    args = create_argument_parser().parse_args()
    utils.configure_colored_logging(args.loglevel)
    utils.configure_file_logging(logging.getLogger(APPLICATION_ROOT_LOGGER_NAME), args.log_file,
                                 args.loglevel, args.logging_config_file)
    utils.update_sanic_log_level()
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        raise SystemExit(f"{TOKEN_ENV} must be set: the action server answers no one without it")
    app = create_app(args.actions, cors_origins=None)
    require_token(app, token)
    app.register_listener(_freeze_when_started, "after_server_start")
    app.run(os.environ.get("SANIC_HOST", "127.0.0.1"), args.port, workers=1)


if __name__ == "__main__":
    main()
