"""A local stand-in for the Telegram Bot API, speaking its JSON on loopback.

The bot reaches it through `base_url`, exactly as it would reach api.telegram.org:
updates go in through getUpdates (or a POST to our webhook), and every call the bot
makes is recorded with its parameters for the tests to check.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any, Dict, List, Optional

from aiohttp import web

BOT_USER = {"id": 999000, "is_bot": True, "first_name": "Comptoir", "username": "comptoir_test_bot"}


class FakeBotAPI:
    def __init__(self) -> None:
        self.calls: List[Dict[str, Any]] = []
        self.updates: List[Dict[str, Any]] = []
        self.next_update_id = 1
        self.message_id = 100
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.url = ""
        self._runner = None
        self._ready = threading.Event()

    # Server ------------------------------------------------------------------------
    def start(self) -> "FakeBotAPI":
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        self._ready.wait(10)
        return self

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())
        self.loop.run_forever()

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        app.router.add_get("/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self._ready.set()

    def stop(self) -> None:
        if self.loop:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        form = await request.post()
        params: Dict[str, Any] = {}
        for key, value in form.items():
            if hasattr(value, "file"):
                head = value.file.read(8)
                params[key] = {"filename": value.filename, "png": head == b"\x89PNG\r\n\x1a\n"}
                value.file.close()  # aiohttp spools uploads to a temporary file
                continue
            try:
                params[key] = json.loads(value) if value[:1] in "[{" else value
            except ValueError:
                params[key] = value
        if method != "getUpdates":
            self.calls.append({"method": method, **params})
        result = await getattr(self, f"_{method}", self._ok)(params)
        return web.json_response({"ok": True, "result": result})

    async def _ok(self, params):
        return True

    async def _getMe(self, params):
        return BOT_USER

    async def _getUpdates(self, params):
        offset = int(params.get("offset", 0) or 0)
        # As Telegram does: asking from `offset` confirms every update before it, and a
        # confirmed update is never delivered again (not even to a restarted bot).
        self.updates[:] = [u for u in self.updates if u["update_id"] >= offset]
        deadline = time.monotonic() + min(float(params.get("timeout", 0) or 0), 2)
        while True:
            pending = [u for u in self.updates if u["update_id"] >= offset]
            if pending or time.monotonic() >= deadline:
                return pending
            await asyncio.sleep(0.05)

    def _message(self, params, **extra):
        self.message_id += 1
        return {"message_id": self.message_id, "date": int(time.time()),
                "chat": {"id": int(params["chat_id"]), "type": "private"}, "from": BOT_USER, **extra}

    async def _sendMessage(self, params):
        return self._message(params, text=params.get("text", ""))

    async def _sendPhoto(self, params):
        return self._message(params, photo=[{"file_id": "f1", "file_unique_id": "u1",
                                             "width": 10, "height": 10}])

    # What the tests use ---------------------------------------------------------------
    def push(self, update: Dict[str, Any]) -> int:
        update_id = self.next_update_id
        self.next_update_id += 1
        self.loop.call_soon_threadsafe(self.updates.append, {"update_id": update_id, **update})
        return update_id

    def user_message(self, user_id: int, text: str = None, **extra) -> Dict[str, Any]:
        message = {"message_id": int(time.time() * 1000) % 10**9, "date": int(time.time()),
                   "chat": {"id": user_id, "type": "private"},
                   "from": {"id": user_id, "is_bot": False, "first_name": "Client"}, **extra}
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                message["entities"] = [{"type": "bot_command", "offset": 0,
                                        "length": len(text.split()[0])}]
        return {"message": message}

    def button_tap(self, user_id: int, data: str) -> Dict[str, Any]:
        return {"callback_query": {
            "id": f"cb{time.time_ns()}", "chat_instance": "ci", "data": data,
            "from": {"id": user_id, "is_bot": False, "first_name": "Client"},
            "message": {"message_id": 1, "date": int(time.time()), "text": "…",
                        "chat": {"id": user_id, "type": "private"}, "from": BOT_USER}}}

    def wait_for(self, predicate, timeout: float = 60, after: int = 0) -> List[Dict[str, Any]]:
        """Bot API calls matching `predicate` (from call number `after` on), waiting for one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [c for c in list(self.calls)[after:] if predicate(c)]
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"no matching Bot API call; calls were: {self.calls[-10:]}")

    async def calls_matching(self, predicate, timeout: float = 30) -> List[Dict[str, Any]]:
        """Like wait_for, for tests whose own event loop runs the bot."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [c for c in list(self.calls) if predicate(c)]
            if found:
                return found
            await asyncio.sleep(0.05)
        raise AssertionError(f"no matching Bot API call; calls were: {self.calls[-10:]}")
