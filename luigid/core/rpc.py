"""The registry of RPC methods: the only functions the HTTP layer will route to.

``@rpc_method`` records a method's name, signature and role once, at import time, so the
server can validate arguments before calling and can refuse anything not registered
(luigi's server does ``getattr(scheduler, name)(**args)`` on whatever is asked for).
"""

from __future__ import annotations

import functools
import inspect
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar, overload

import orjson

#: One piece of a Fragments reply: some of the reply's keys as a dict, or already encoded as
#: JSON object members (``members``); None is a pause.
Piece = dict[str, Any] | bytes | None


class Fragments:
    """A reply object produced piece by piece: each item is some of its keys (a dict, or
    bytes of encoded members), or None for "nothing yet, but a good moment to let other
    requests in". Serving code sends the pieces as they come; ``collect`` merges them for
    in-process callers (encoded pieces are decoded, so they get what an HTTP client gets)."""

    def __init__(self, pieces: Iterator[Piece]) -> None:
        self._pieces = pieces

    def __iter__(self) -> Iterator[Piece]:
        return self._pieces

    def collect(self) -> dict[str, Any]:
        whole: dict[str, Any] = {}
        for piece in self._pieces:
            if isinstance(piece, bytes):
                whole.update(json.loads(b"{" + piece + b"}"))
            elif piece:
                whole.update(piece)
        return whole


def collect(reply: Any) -> Any:
    """The whole reply, whether or not it came in fragments."""
    return reply.collect() if isinstance(reply, Fragments) else reply


#: Roles, from least to most privileged. A method tagged with a role may be called by
#: that role and by every role after it in this tuple.
ROLES = ("viewer", "worker", "admin")

F = TypeVar("F", bound=Callable[..., Any])
S = TypeVar("S")
P = ParamSpec("P")

#: What a streamed method answers: pieces, or a plain reply when there is nothing to stream.
Streamable = Fragments | dict[str, Any]


@dataclass(frozen=True)
class RpcSpec:
    name: str
    signature: inspect.Signature
    #: True when the method takes ``**kwargs`` and so accepts unknown extra arguments
    accepts_extra: bool
    #: "viewer" (read-only, UI), "worker" (what luigi workers call) or "admin"
    role: str
    #: False for calls that only read state (safe over GET, cacheable by nobody)
    mutating: bool
    #: True when the method answers with ``Fragments``, so that the server can send a big
    #: reply without holding the event loop; in-process callers get the collected reply
    streamed: bool = False
    #: the method as written (for a streamed one, the function that answers with pieces)
    function: Callable[..., Any] | None = field(default=None, compare=False, repr=False)

    def invoke(self, scheduler: Any, arguments: dict[str, Any]) -> Any:
        """Call the method as the HTTP layer does: a streamed method's reply may be
        ``Fragments`` (send them as they come), any other's is the plain reply. A scheduler
        that records its changes (``luigid.core.recording``) runs the call through that."""
        run = getattr(scheduler, "invoke_rpc", None)
        if run is not None:
            return run(self, arguments)
        return self.call(scheduler, arguments)

    def call(self, scheduler: Any, arguments: dict[str, Any]) -> Any:
        """The method itself, unrecorded."""
        if self.streamed and self.function is not None:
            return self.function(scheduler, **arguments)
        return getattr(scheduler, self.name)(**arguments)

    # cached: read on every request, and a spec never changes once registered
    @functools.cached_property
    def required(self) -> frozenset[str]:
        return frozenset(
            p.name
            for p in list(self.signature.parameters.values())[1:]
            if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        )

    @functools.cached_property
    def receiver(self) -> str:
        """The name of the method's own first parameter (``self``): never an argument, even
        of a method that takes ``**kwargs`` (Python would refuse the call with a TypeError)."""
        return next(iter(self.signature.parameters))

    @functools.cached_property
    def known(self) -> frozenset[str]:
        return frozenset(
            p.name
            for p in list(self.signature.parameters.values())[1:]
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        )


RPC_METHODS: dict[str, RpcSpec] = {}


@overload
def rpc_method(
    *, role: str = ..., mutating: bool = ..., streamed: Literal[False] = ...
) -> Callable[[F], F]: ...


@overload
def rpc_method(
    *, role: str = ..., mutating: bool = ..., streamed: Literal[True]
) -> Callable[[Callable[Concatenate[S, P], Streamable]], Callable[Concatenate[S, P], dict[str, Any]]]: ...


def rpc_method(*, role: str = "worker", mutating: bool = True, streamed: bool = False) -> Callable[..., Any]:
    """Register a Scheduler method as callable over ``/api/<name>``.

    A streamed method is written once, as the function that answers with ``Fragments``
    (or a plain dict); the HTTP layer calls it through ``RpcSpec.invoke``, and what the
    class offers under its name is that function's reply collected into the plain dict
    luigi's scheduler returns, for in-process callers."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn)
        params = list(sig.parameters.values())
        if not params or params[0].name != "self":
            raise TypeError(f"{fn.__name__}: rpc methods must be instance methods")
        if any(p.kind is p.VAR_POSITIONAL for p in params):
            raise TypeError(f"{fn.__name__}: rpc methods take keyword arguments only")
        accepts_extra = any(p.kind is p.VAR_KEYWORD for p in params)
        RPC_METHODS[fn.__name__] = RpcSpec(fn.__name__, sig, accepts_extra, role, mutating, streamed, fn)
        if not streamed:
            return fn

        @functools.wraps(fn)
        def collected(self: Any, *args: Any, **kwargs: Any) -> Any:
            return collect(fn(self, *args, **kwargs))

        return collected

    return register


class RpcError(Exception):
    """A call the scheduler refuses because of its arguments: answered with a 400."""


def _json_fallback(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _dumps_stdlib(payload: Any) -> bytes:
    return json.dumps(payload, default=_json_fallback).encode("utf-8")


def dumps(payload: Any) -> bytes:
    """A reply (or part of one) as JSON: orjson, several times faster on big replies, with
    the standard library for what orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(payload, default=_json_fallback, option=orjson.OPT_NON_STR_KEYS)
    except (orjson.JSONEncodeError, TypeError):
        return _dumps_stdlib(payload)


#: 19 digits in a row: maybe an integer orjson would turn into a float (beyond 64 bits)
_LONG_DIGITS = re.compile(r"\d{19}")


def loads(text: str) -> Any:
    """``json.loads(text)``: its value, or its error. orjson parses a worker's call several
    times faster, with the same value for every text it accepts (both round floats
    correctly), except integers beyond 64 bits, which it makes floats: a text with a long
    run of digits is left to the standard library, as is everything orjson refuses (NaN and
    Infinity, lone surrogates, bad JSON), so that value, or that error, is what it was."""
    if _LONG_DIGITS.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def members(payload: dict[str, Any]) -> bytes:
    """The members of a JSON object, without its braces: pieces that concatenate (with
    commas) into one object."""
    return dumps(payload)[1:-1]
