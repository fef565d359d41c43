"""The only way into Rasa's conversations: a REST channel that asks for the gateway's token.

Rasa's `--auth-token` covers its HTTP API but not its input channels: with the stock
`rest` channel any local process could post as any sender, with any metadata, the
channel included. This one, loaded by Rasa from credentials.yml, answers 401 unless
the request carries `Authorization: Bearer <RASA_TOKEN>`, which only the supervisor's
children know (from their environment, never from a command line).
"""
from __future__ import annotations

import os
from typing import Any, Awaitable, Callable, Text

from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request

from bot.core.http import bearer_matches

TOKEN_ENV = "RASA_TOKEN"


class GatewayInput(RestInput):
    @classmethod
    def name(cls) -> Text:
        return "comptoir"

    def blueprint(self, on_new_message: Callable[[Any], Awaitable[Any]]) -> Blueprint:
        blueprint = super().blueprint(on_new_message)

        @blueprint.middleware("request")
        async def require_gateway_token(request: Request) -> Any:
            if not bearer_matches(request.headers.get("Authorization", ""),
                                  os.environ.get(TOKEN_ENV, "")):
                return response.json({"error": "token required"}, status=401)
            return None

        return blueprint
