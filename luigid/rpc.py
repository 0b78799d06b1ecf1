"""The registry of RPC methods: the only functions the HTTP layer will route to.

``@rpc_method`` records a method's name, signature and role once, at import time, so the
server can validate arguments before calling and can refuse anything not registered
(luigi's server does ``getattr(scheduler, name)(**args)`` on whatever is asked for).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

#: Roles, from least to most privileged. A method tagged with a role may be called by
#: that role and by every role after it in this tuple.
ROLES = ("viewer", "worker", "admin")

F = TypeVar("F", bound=Callable[..., Any])


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
    #: True when the scheduler also offers ``<name>_fragments``, which may answer with
    #: ``Fragments`` so that the server can send a big reply without holding the event loop
    streamed: bool = False

    # cached: read on every request, and a spec never changes once registered
    @functools.cached_property
    def required(self) -> frozenset[str]:
        return frozenset(
            p.name
            for p in list(self.signature.parameters.values())[1:]
            if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        )

    @functools.cached_property
    def known(self) -> frozenset[str]:
        return frozenset(
            p.name
            for p in list(self.signature.parameters.values())[1:]
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        )


RPC_METHODS: dict[str, RpcSpec] = {}


def rpc_method(*, role: str = "worker", mutating: bool = True, streamed: bool = False) -> Callable[[F], F]:
    """Register a Scheduler method as callable over ``/api/<name>``."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")

    def register(fn: F) -> F:
        sig = inspect.signature(fn)
        params = list(sig.parameters.values())
        if not params or params[0].name != "self":
            raise TypeError(f"{fn.__name__}: rpc methods must be instance methods")
        if any(p.kind is p.VAR_POSITIONAL for p in params):
            raise TypeError(f"{fn.__name__}: rpc methods take keyword arguments only")
        accepts_extra = any(p.kind is p.VAR_KEYWORD for p in params)
        RPC_METHODS[fn.__name__] = RpcSpec(fn.__name__, sig, accepts_extra, role, mutating, streamed)
        return fn

    return register


class RpcError(Exception):
    """A call the scheduler refuses because of its arguments: answered with a 400."""


class Fragments:
    """A reply object produced piece by piece: each item is a dict of some of its keys, or
    None for "nothing yet, but a good moment to let other requests in". Serving code sends
    the pieces as they come; ``collect`` merges them for in-process callers."""

    def __init__(self, pieces: Iterator[dict[str, Any] | None]) -> None:
        self._pieces = pieces

    def __iter__(self) -> Iterator[dict[str, Any] | None]:
        return self._pieces

    def collect(self) -> dict[str, Any]:
        whole: dict[str, Any] = {}
        for piece in self._pieces:
            if piece:
                whole.update(piece)
        return whole


def collect(reply: Any) -> Any:
    """The whole reply, whether or not it came in fragments."""
    return reply.collect() if isinstance(reply, Fragments) else reply
