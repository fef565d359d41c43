"""Talk to the Rasa servers (REST channel and HTTP API) and probe the action server.

With several Rasa replicas (RASA_REPLICAS), a conversation goes to the replica its
sender id hashes to, so one customer's messages queue on one process; a replica that
refuses the connection or drops it (down, killed, restarting) hands the message to the
next one. Rasa saves a turn's events only when the turn is done, so a turn cut off by a
dying replica is simply handled again elsewhere. The Redis lock store and the shared
tracker store keep a conversation consistent whichever replica serves it. A timeout is
not retried: the replica may still be handling the message.
"""
from __future__ import annotations

import asyncio
import zlib
from typing import Any, Dict, List, Optional, Sequence, Union
from urllib.parse import quote

import aiohttp


# Rasa's session_started events that only continue a long conversation in a new session
# (bot/ops/rasa_server.py) carry this metadata: the conversation itself goes on.
CONTINUED = "comptoir_continued"


class RasaUnavailable(RuntimeError):
    """Rasa did not answer (down, starting, overloaded or erroring)."""


class RasaClient:
    def __init__(self, session: aiohttp.ClientSession, rasa_urls: Union[str, Sequence[str]],
                 token: str, action_server_url: str, timeout: float = 30.0) -> None:
        self._session = session
        urls = [rasa_urls] if isinstance(rasa_urls, str) else list(rasa_urls)
        self._rasa_urls = [url.rstrip("/") for url in urls]
        self._token = token
        self._action_server_url = action_server_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def _replicas(self, sender: str) -> List[str]:
        """Replicas in the order to try for this conversation."""
        first = zlib.crc32(sender.encode()) % len(self._rasa_urls)
        return self._rasa_urls[first:] + self._rasa_urls[:first]

    async def _call(self, sender: str, method: str, path: str, *, timeout: aiohttp.ClientTimeout,
                    read: bool = True, **kwargs) -> Any:
        """One request for this conversation, to its replica or, if refused, the next."""
        for attempt, url in enumerate(self._replicas(sender), start=1):
            try:
                async with self._session.request(method, url + path, timeout=timeout,
                                                 **kwargs) as response:
                    if response.status != 200:
                        raise RasaUnavailable(f"rasa {path.split('/')[1]} HTTP {response.status}")
                    return await response.json() if read else None
            except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError,
                    aiohttp.ClientOSError) as error:
                # Refused, or the connection dropped (the replica died): try the next one.
                if attempt == len(self._rasa_urls):
                    raise RasaUnavailable(type(error).__name__) from error
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
                raise RasaUnavailable(type(error).__name__) from error

    async def send(self, sender: str, message: str,
                   metadata: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
        payload: Dict[str, Any] = {"sender": sender, "message": message}
        if metadata:
            payload["metadata"] = metadata
        replies = await self._call(sender, "POST", "/webhooks/comptoir/webhook", json=payload,
                                   headers={"Authorization": f"Bearer {self._token}"},
                                   timeout=self._timeout)
        if not isinstance(replies, list):
            raise RasaUnavailable("rasa answered something other than a list")
        return replies

    async def _status_of(self, url: str) -> Dict[str, Any]:
        try:
            async with self._session.get(f"{url}/status", params={"token": self._token},
                                         timeout=aiohttp.ClientTimeout(total=3)) as response:
                if response.status != 200:
                    raise RasaUnavailable(f"rasa status HTTP {response.status}")
                body = await response.json()
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            raise RasaUnavailable(type(error).__name__) from error
        if not body.get("model_file"):
            raise RasaUnavailable("no model loaded")
        return body

    async def status(self) -> Dict[str, Any]:
        """Rasa's /status (needs the API token) of every replica: raises unless at least
        one has a model loaded; says how many are up."""
        results = await asyncio.gather(*(self._status_of(url) for url in self._rasa_urls),
                                       return_exceptions=True)
        up = [r for r in results if isinstance(r, dict)]
        if not up:
            error = results[0]
            raise error if isinstance(error, RasaUnavailable) else RasaUnavailable(str(error))
        return {**up[0], "replicas_up": f"{len(up)}/{len(results)}"}

    async def load_model(self, model: str, timeout: float = 600.0) -> None:
        """Swap a model into every replica, one after the other, so that the others keep
        answering while one loads (Rasa's `PUT /model`; each replica also keeps answering
        with its old model until the new one is loaded)."""
        for url in self._rasa_urls:
            try:
                async with self._session.put(f"{url}/model", params={"token": self._token},
                                             json={"model_file": model},
                                             timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                    if response.status != 204:
                        raise RasaUnavailable(f"rasa model HTTP {response.status}")
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                raise RasaUnavailable(type(error).__name__) from error

    async def action_server_up(self) -> bool:
        try:
            async with self._session.get(f"{self._action_server_url}/health",
                                         timeout=aiohttp.ClientTimeout(total=3)) as response:
                return response.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return False

    async def tracker_events(self, sender: str) -> List[Dict[str, Any]]:
        """All events of a conversation (Rasa's HTTP API, with the token)."""
        body = await self._call(sender, "GET", f"/conversations/{quote(sender, safe='')}/tracker",
                                params={"token": self._token, "include_events": "ALL"},
                                timeout=aiohttp.ClientTimeout(total=10))
        return (body or {}).get("events") or []

    async def append_events(self, sender: str, events: List[Dict[str, Any]]) -> None:
        """Record events in a conversation (an agent's reply, a resume) through the API."""
        await self._call(sender, "POST", f"/conversations/{quote(sender, safe='')}/tracker/events",
                         params={"token": self._token}, json=events, read=False,
                         timeout=aiohttp.ClientTimeout(total=10))
