"""A Tornado application served in this process, on 127.0.0.1 and a free port, from its own
thread and event loop: for tests that talk HTTP to an app they also reach into."""

from __future__ import annotations

import asyncio
import threading

import tornado.httpserver
import tornado.netutil
import tornado.web


class ServerThread:
    """``with ServerThread(app) as base:`` serves ``app`` at ``base`` (``http://127.0.0.1:<port>``)."""

    def __init__(self, app: tornado.web.Application) -> None:
        self.app = app
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        server = tornado.httpserver.HTTPServer(self.app)
        server.add_sockets(sockets)
        self._ready.set()
        self._loop.run_forever()
        server.stop()
        self._loop.run_until_complete(server.close_all_connections())
        self._loop.close()

    def __enter__(self) -> str:
        self._thread.start()
        assert self._ready.wait(30)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
