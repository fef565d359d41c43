"""A small round-robin load balancer in front of several gateways, as a retailer's own
would be: each request to the next gateway (the next again if that one does not take
the connection), WebSockets passed through, and a web chat's Engine.IO session kept on
the gateway that opened it (polling needs that; every load balancer has a way to do it).

    python -m tests.proxy --port 8000 http://127.0.0.1:8080 http://127.0.0.1:8081
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import re
from typing import Dict, List, Optional

import aiohttp
from aiohttp import web

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailers", "transfer-encoding", "upgrade", "content-length", "host"}
HANDSHAKE = re.compile(rb'^0(\{.*?"sid".*?\})')  # Engine.IO 4's open packet
MAX_ENGINEIO_SESSIONS = 100_000


class Proxy:
    def __init__(self, backends: List[str]) -> None:
        self.backends = backends
        self.turn = itertools.cycle(range(len(backends)))
        self.sticky: Dict[str, str] = {}  # Engine.IO sid -> the gateway that made it
        self.session: Optional[aiohttp.ClientSession] = None

    async def start(self, _app: web.Application) -> None:
        self.session = aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=2, sock_read=90))

    async def stop(self, _app: web.Application) -> None:
        await self.session.close()

    def order(self, request: web.Request) -> List[str]:
        """The gateways to try, in order: the session's own, or the next in turn first."""
        sid = request.query.get("sid") if request.path.startswith("/socket.io") else None
        if sid and sid in self.sticky:
            return [self.sticky[sid]]  # gone with its gateway: the widget reconnects
        first = next(self.turn)
        return [self.backends[(first + i) % len(self.backends)] for i in range(len(self.backends))]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.websocket(request)
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["X-Forwarded-For"] = request.remote or ""
        for backend in self.order(request):
            try:
                async with self.session.request(request.method, backend + request.rel_url.raw_path_qs,
                                                headers=headers, data=body,
                                                allow_redirects=False) as answer:
                    content = await answer.read()
                    self._learn(request, backend, content)
                    response = web.Response(status=answer.status, body=content)
                    for name, value in answer.headers.items():
                        if name.lower() not in HOP_BY_HOP:
                            response.headers.add(name, value)
                    return response
            except aiohttp.ClientConnectorError:
                continue  # that gateway takes no connection: the next one (nothing was sent)
            except aiohttp.ClientConnectionError:
                break  # it died while answering: the client is told, as by any balancer
        return web.json_response({"error": "no gateway"}, status=502)

    def _learn(self, request: web.Request, backend: str, content: bytes) -> None:
        if request.path.startswith("/socket.io") and "sid" not in request.query:
            match = HANDSHAKE.match(content)
            if match:
                with contextlib.suppress(ValueError, KeyError):
                    if len(self.sticky) > MAX_ENGINEIO_SESSIONS:
                        self.sticky.clear()
                    self.sticky[json.loads(match.group(1))["sid"]] = backend

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("origin", "cookie", "user-agent")}
        for backend in self.order(request):
            try:
                upstream = await self.session.ws_connect(
                    backend.replace("http", "ws", 1) + request.rel_url.raw_path_qs, headers=headers)
                break
            except aiohttp.ClientConnectorError:
                continue
            except aiohttp.WSServerHandshakeError as refused:
                return web.Response(status=refused.status)
        else:
            return web.json_response({"error": "no gateway"}, status=502)
        downstream = web.WebSocketResponse()
        await downstream.prepare(request)

        async def pump(source, target) -> None:
            async for message in source:
                if message.type == aiohttp.WSMsgType.TEXT:
                    await target.send_str(message.data)
                elif message.type == aiohttp.WSMsgType.BINARY:
                    await target.send_bytes(message.data)
            await target.close()

        tasks = [asyncio.create_task(pump(downstream, upstream)),
                 asyncio.create_task(pump(upstream, downstream))]
        _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await upstream.close()
        await downstream.close()
        return downstream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("backends", nargs="+")
    args = parser.parse_args()
    proxy = Proxy([b.rstrip("/") for b in args.backends])
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.on_startup.append(proxy.start)
    app.on_cleanup.append(proxy.stop)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None,
                print=lambda *_: print(f"proxy listening on {args.port}", flush=True))


if __name__ == "__main__":
    main()
