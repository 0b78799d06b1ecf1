"""``/api/<method>``: luigi's RPC over HTTP.

Bad input never reaches the scheduler: the body is read here (so an oversized one is
answered 413 with a JSON error), and JSON, arguments and their types
(``luigid.web.validation``) are checked before the call.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import tornado.httputil
import tornado.web

from luigid.config import CorsConfig
from luigid.core import gcpause
from luigid.core.ports import WritesRefused
from luigid.core.rpc import RPC_METHODS, Fragments, RpcError, RpcSpec, dumps, loads
from luigid.web.access import Access
from luigid.web.base import BaseHandler
from luigid.web.errors import JSON_TYPE, ApiError
from luigid.web.validation import (
    Invalid,
    RequestLimits,
    check_arguments,
    json_depth_exceeds,
    text_may_nest_deeper,
)

#: what a streamed reply starts and ends with, around its pieces
REPLY_HEAD = b'{"response": {'
REPLY_TAIL = b"}}"

#: An oversized body up to this many times the limit is read and dropped, so that the client,
#: still sending, gets to read the 413; anything bigger is answered at once and cut off.
DISCARD_FACTOR = 8


#: what tornado's ``get_argument`` turns into spaces (and so do we: see ``argument_text``)
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0e-\x1f]")


# The steps of serving an RPC that need no handler: the handler below runs them, and so does a
# front process's lean path (luigid.runtime.lean), so both answer alike.


def access_for(method: str) -> Access:
    """What calling ``method`` needs: its role; an unknown one is open to viewers (then 404)."""
    spec = RPC_METHODS.get(method)
    if spec is None:
        return Access("viewer", False, method[:100])
    return Access(spec.role, spec.mutating, method)


def body_allowance(limit: int, declared: int | None) -> int:
    """The body size tornado is to allow: above ``[server] max_request_body``, since tornado's
    own limit would cut the connection without a reply (the 413 is ours)."""
    return max(limit, declared) if declared is not None else limit * DISCARD_FACTOR


def too_large_error(limit: int, size: int | None) -> ApiError:
    size_text = f"of {size} bytes " if size is not None else ""
    message = f"request body {size_text}is larger than the limit of {limit} bytes"
    return ApiError(413, message + " ([server] max_request_body)")


def read_body(request: tornado.httputil.HTTPServerRequest, chunks: list[bytes]) -> None:
    """The body, read whole, as the request's body and (form-encoded) arguments."""
    request.body = b"".join(chunks)
    if not request.body:
        return
    try:
        tornado.httputil.parse_body_arguments(
            request.headers.get("Content-Type", ""),
            request.body,
            request.body_arguments,
            request.files,
            request.headers,
        )
    except tornado.httputil.HTTPInputError as exc:
        raise ApiError(400, f"could not read the request body: {exc}") from None
    for name, values in request.body_arguments.items():
        request.arguments.setdefault(name, []).extend(values)


def argument_text(arguments: dict[str, list[bytes]], name: str) -> str:
    """The last value of argument ``name`` as text ("{}" when absent), read as tornado's
    ``get_argument`` reads it: UTF-8, control characters made spaces, stripped."""
    values = arguments.get(name)
    if not values:
        return "{}"
    try:
        texts = [value.decode("utf-8") for value in values]  # every value, as tornado checks them
    except UnicodeDecodeError:
        raise ApiError(400, f"could not read '{name}': it is not valid UTF-8") from None
    return _CONTROL_CHARACTERS.sub(" ", texts[-1]).strip()


def parse_json(raw: str, name: str = "data") -> Any:
    """The value of the JSON text ``raw``; ApiError 400 when it is not JSON or nests too deep."""
    try:
        value = loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"'{name}' is not valid JSON: {exc}") from exc
    except RecursionError:
        raise ApiError(400, f"'{name}' is nested too deeply") from None
    if text_may_nest_deeper(raw) and json_depth_exceeds(value):
        raise ApiError(400, f"'{name}' is nested too deeply")
    return value


def bind(spec: RpcSpec, arguments: Any) -> dict[str, Any]:
    """``arguments`` checked against the method's signature and argument types (ApiError 400)."""
    if not isinstance(arguments, dict):
        raise ApiError(400, f"{spec.name}: 'data' must be a JSON object, got {type(arguments).__name__}")
    missing = spec.required - arguments.keys()
    if missing:
        raise ApiError(400, f"{spec.name}: missing argument(s): {', '.join(sorted(missing))}")
    if spec.receiver in arguments:
        raise ApiError(400, f"{spec.name}: {spec.receiver!r} is not an argument")
    if not spec.accepts_extra:
        unknown = arguments.keys() - spec.known
        if unknown:
            raise ApiError(400, f"{spec.name}: unknown argument(s): {', '.join(sorted(unknown))}")
    try:
        check_arguments(spec.name, arguments)
    except Invalid as exc:
        raise ApiError(400, f"{spec.name}: {exc}") from None
    return arguments


@tornado.web.stream_request_body
class RpcHandler(BaseHandler):
    """Validates the call against the method's signature, then runs it.

    The body is streamed in, so its size is checked against ``[server] max_request_body``
    before it is held in memory.
    """

    def compute_etag(self) -> None:
        # replies change with every call, and hashing a big one costs (docs/architecture.md)
        return None

    def initialize(
        self,
        cors: CorsConfig | None = None,
        scheduler: Any = None,
        observe: Callable[[str, float, int], None] | None = None,
        limits: RequestLimits | None = None,
        **kwargs: Any,
    ) -> None:
        super().initialize(cors=cors)
        self.scheduler = scheduler
        self.observe = observe
        self.limits = limits or RequestLimits()
        self._chunks: list[bytes] = []
        self._received = 0
        self._too_large = False
        #: the JSON text of the call's arguments, as read (a front passes it on as it is)
        self.data_text = "{}"

    def access(self) -> Access:
        return access_for(self.path_args[0] if self.path_args else "")

    # -- the body --

    def precheck(self) -> None:
        limit = self.limits.max_request_body
        length = self.request.headers.get("Content-Length", "")
        declared = int(length) if length.isdigit() else None
        connection = self.request.connection
        if connection is not None and hasattr(connection, "set_max_body_size"):
            connection.set_max_body_size(body_allowance(limit, declared))
        if declared is not None and declared > limit:
            self._too_large = True
            expecting = self.request.headers.get("Expect", "").lower() == "100-continue"
            if expecting or declared > limit * DISCARD_FACTOR:
                raise too_large_error(limit, declared)

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self._received += len(chunk)
        if self._received > self.limits.max_request_body:
            self._too_large = True
            self._chunks = []
        elif not self._too_large:
            self._chunks.append(chunk)

    def _read_body(self) -> None:
        if self._too_large:
            raise too_large_error(self.limits.max_request_body, self._received)
        read_body(self.request, self._chunks)
        self._chunks = []

    # -- the arguments --

    def json_argument(self, name: str = "data") -> Any:
        self.data_text = argument_text(self.request.arguments, name)
        return parse_json(self.data_text, name)

    def _bind(self, spec: RpcSpec, arguments: Any) -> dict[str, Any]:
        return bind(spec, arguments)

    # -- the call --

    async def _call(self, method: str) -> None:
        started = time.perf_counter()
        spec = RPC_METHODS.get(method)
        # an error is written after this method ends: its status is counted from the exception
        failed: int | None = None
        try:
            if spec is None:
                raise ApiError(404, f"unknown method: {method[:200]!r}")
            self._read_body()
            arguments = self._bind(spec, self.json_argument())
            await self.run(spec, arguments)
        except tornado.web.HTTPError as exc:
            failed = exc.status_code
            raise
        except Exception:
            failed = 500
            raise
        finally:
            if self.observe is not None and spec is not None:
                self.observe(method, time.perf_counter() - started, failed or self.get_status())

    async def run(self, spec: RpcSpec, arguments: dict[str, Any]) -> None:
        """The validated call, run here (a front process hands it to the scheduler's instead)."""
        call = start_call(self.scheduler, spec, arguments)
        if call.synced is not None:
            await call.settled()
        reply = call.reply()
        if isinstance(reply, Fragments):
            self.set_header("Content-Type", JSON_TYPE)
            if await write_pieces(reply, self):
                self.finish(REPLY_TAIL)
        else:
            self.set_header("Content-Type", JSON_TYPE)
            self.finish(reply)

    #: read by ``write_pieces``: the client hung up
    gone = False

    def on_connection_close(self) -> None:
        self.gone = True
        super().on_connection_close()

    async def get(self, method: str) -> None:
        await self._call(method)

    async def post(self, method: str) -> None:
        await self._call(method)


class Call:
    """A call that has run: its result, and what its reply waits for (``settled``)."""

    __slots__ = ("result", "spec", "synced")

    def __init__(self, spec: RpcSpec, result: Any, synced: Awaitable[None] | None) -> None:
        self.spec = spec
        self.result = result
        #: the change log's fsync this call's reply waits for (journal_fsync = always), or None
        self.synced = synced

    async def settled(self) -> None:
        """Wait until the change is durable; ApiError 503 when it cannot be made so."""
        try:
            if self.synced is not None:
                await self.synced
        except WritesRefused as exc:
            raise ApiError(503, f"{self.spec.name}: {exc}") from None

    def reply(self) -> bytes | Fragments:
        """The encoded ``{"response": ...}``, or the pieces of a streamed one (``write_pieces``)."""
        result = self.result
        return result if isinstance(result, Fragments) else dumps({"response": result})


def start_call(scheduler: Any, spec: RpcSpec, arguments: dict[str, Any]) -> Call:
    """Run a validated call: the part of serving an RPC that needs the scheduler and no
    transport, shared by the single-process handler and a front process's scheduler side.
    Refusals and the scheduler's own errors are ApiError (status and message)."""
    store = getattr(scheduler, "change_store", None) if spec.mutating else None
    if store is not None:
        # stop-writes: while changes cannot be made durable none is made (reads go on)
        refused = store.refusal()
        if refused is not None:
            raise ApiError(503, f"{spec.name}: {refused}")
    try:
        result = spec.invoke(scheduler, arguments)
    except RpcError as exc:
        raise ApiError(400, f"{spec.name}: {exc}") from exc
    synced = None
    if store is not None:
        # an acknowledged change is in the log (and with journal_fsync = always, on disk)
        # before the reply; one that is not is answered 503, never 200
        try:
            synced = store.durable()
        except WritesRefused as exc:
            raise ApiError(503, f"{spec.name}: {exc}") from None
    return Call(spec, result, synced)


class PieceSink(Protocol):
    """Where a streamed reply goes: a handler's response, or a front's channel."""

    gone: bool

    def write(self, chunk: bytes) -> Any: ...

    def flush(self) -> Any: ...


async def write_pieces(
    fragments: Fragments, sink: PieceSink, pace: Callable[[], Awaitable[None]] | None = None
) -> bool:
    """Send ``{"response": {...`` (without the closing ``REPLY_TAIL``) piece by piece,
    letting other requests run between pieces: a 100k-task reply never holds the event loop
    for more than a piece's worth. Each piece is flushed as it comes (chunked), so
    compressing it (gzip, for browsers) is spread out too, the client reads while the next
    piece is made, and no copy of the whole reply is ever joined; a client that hangs up
    stops the rest being made (False: the reply is not to be finished). ``pace``, awaited
    after each piece, may hold the next one back (a front's channel still full)."""
    sink.write(REPLY_HEAD)
    first = True
    with gcpause.paused():
        for piece in fragments:
            if sink.gone:
                return False
            if piece:
                # the object's members, without its braces
                body = piece if isinstance(piece, bytes) else dumps(piece)[1:-1]
                if body:
                    if not first:
                        sink.write(b",")
                    sink.write(body)
                    first = False
                    sink.flush()  # not awaited: the stream sends it while the next piece is made
            await asyncio.sleep(0)
            if pace is not None:
                await pace()
    return True
