"""Talk to the Rasa server (REST channel and HTTP API) and probe the action server."""
from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional

import aiohttp


class RasaUnavailable(RuntimeError):
    """Rasa did not answer (down, starting, overloaded or erroring)."""


class RasaClient:
    def __init__(self, session: aiohttp.ClientSession, rasa_url: str, token: str,
                 action_server_url: str, timeout: float = 30.0) -> None:
        self._session = session
        self._rasa_url = rasa_url.rstrip("/")
        self._token = token
        self._action_server_url = action_server_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def send(self, sender: str, message: str,
                   metadata: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
        payload: Dict[str, Any] = {"sender": sender, "message": message}
        if metadata:
            payload["metadata"] = metadata
        try:
            async with self._session.post(f"{self._rasa_url}/webhooks/rest/webhook",
                                          json=payload, timeout=self._timeout) as response:
                if response.status != 200:
                    raise RasaUnavailable(f"rasa answered HTTP {response.status}")
                replies = await response.json()
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            raise RasaUnavailable(type(error).__name__) from error
        if not isinstance(replies, list):
            raise RasaUnavailable("rasa answered something other than a list")
        return replies

    async def status(self) -> Dict[str, Any]:
        """Rasa's /status (needs the API token): raises unless a model is loaded."""
        try:
            async with self._session.get(f"{self._rasa_url}/status",
                                         params={"token": self._token},
                                         timeout=aiohttp.ClientTimeout(total=3)) as response:
                if response.status != 200:
                    raise RasaUnavailable(f"rasa status HTTP {response.status}")
                body = await response.json()
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            raise RasaUnavailable(type(error).__name__) from error
        if not body.get("model_file"):
            raise RasaUnavailable("no model loaded")
        return body

    async def action_server_up(self) -> bool:
        try:
            async with self._session.get(f"{self._action_server_url}/health",
                                         timeout=aiohttp.ClientTimeout(total=3)) as response:
                return response.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return False

    async def tracker_events(self, sender: str) -> List[Dict[str, Any]]:
        """All events of a conversation (Rasa's HTTP API, with the token)."""
        from urllib.parse import quote

        try:
            async with self._session.get(
                    f"{self._rasa_url}/conversations/{quote(sender, safe='')}/tracker",
                    params={"token": self._token, "include_events": "ALL"},
                    timeout=aiohttp.ClientTimeout(total=10)) as response:
                if response.status != 200:
                    raise RasaUnavailable(f"rasa tracker HTTP {response.status}")
                return (await response.json()).get("events") or []
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            raise RasaUnavailable(type(error).__name__) from error

    async def append_events(self, sender: str, events: List[Dict[str, Any]]) -> None:
        """Record events in a conversation (an agent's reply, a resume) through the API."""
        from urllib.parse import quote

        try:
            async with self._session.post(
                    f"{self._rasa_url}/conversations/{quote(sender, safe='')}/tracker/events",
                    params={"token": self._token}, json=events,
                    timeout=aiohttp.ClientTimeout(total=10)) as response:
                if response.status != 200:
                    raise RasaUnavailable(f"rasa events HTTP {response.status}")
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise RasaUnavailable(type(error).__name__) from error
