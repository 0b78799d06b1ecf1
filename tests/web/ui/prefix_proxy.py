"""A minimal reverse proxy that serves an upstream under a URL prefix, as nginx would with
``location /luigi/ { proxy_pass http://upstream/; }``. Runs its own loop in a thread."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import tornado.httpclient
import tornado.httpserver
import tornado.netutil
import tornado.web


class _Forward(tornado.web.RequestHandler):
    def initialize(self, upstream: str) -> None:
        self.upstream = upstream

    async def _forward(self, path: str) -> None:
        url = self.upstream + path + (f"?{self.request.query}" if self.request.query else "")
        headers = {
            k: v for k, v in self.request.headers.get_all() if k.lower() not in ("host", "content-length")
        }
        body = self.request.body if self.request.method == "POST" else None
        resp = await tornado.httpclient.AsyncHTTPClient().fetch(
            url,
            method=self.request.method,
            headers=headers,
            body=body,
            follow_redirects=False,
            raise_error=False,
        )
        self.set_status(resp.code)
        for key in ("Content-Type", "Location", "Etag", "Last-Modified", "Cache-Control"):
            if key in resp.headers:
                self.set_header(key, resp.headers[key])
        if resp.code != 304:
            self.write(resp.body)

    async def get(self, path: str) -> None:
        await self._forward(path)

    async def post(self, path: str) -> None:
        await self._forward(path)


class PrefixProxy:
    def __init__(self, prefix: str, upstream: str) -> None:
        self.prefix = prefix
        self.upstream = upstream
        self.sock = tornado.netutil.bind_sockets(0, address="127.0.0.1", family=socket.AF_INET)[0]
        self.base = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.ready = threading.Event()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = tornado.web.Application([(self.prefix + "(.*)", _Forward, {"upstream": self.upstream})])
        server = tornado.httpserver.HTTPServer(app)
        server.add_sockets([self.sock])
        self.ready.set()
        self.loop.run_forever()
        server.stop()

    def __enter__(self) -> PrefixProxy:
        self.thread.start()
        self.ready.wait()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.sock.close()


import tornado.httpserver  # noqa: E402 (after the classes it serves, kept with them)
