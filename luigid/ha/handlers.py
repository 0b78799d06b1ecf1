"""HTTP for HA: ``/leader`` for load balancers, and a standby's API forwarding.

A standby sends every API call on to the leader and passes the answer back, so workers and
browsers may use any node. With no leader in reach it answers read calls from its own copy
(the UI keeps working) and refuses changes with 503. A forwarded request carries
``X-Luigid-Forwarded``; a node that gets one and does not lead answers 503 rather than
forward it again (two nodes that each think the other leads must not bounce it forever).
"""

from __future__ import annotations

from typing import Any, Protocol

import tornado.httpclient

from luigid.core.rpc import RPC_METHODS
from luigid.web.access import Access
from luigid.web.api import RpcHandler
from luigid.web.base import BaseHandler
from luigid.web.errors import JSON_TYPE, ApiError

FORWARDED = "X-Luigid-Forwarded"
#: a forwarded call may be a big graph reply, or wait behind the leader's commit
FORWARD_TIMEOUT = 120.0
#: request headers that describe this hop, not the call
_HOP_HEADERS = frozenset({"host", "content-length", "connection", "keep-alive", "transfer-encoding", "te"})
#: answer headers passed back to the client
_PASSED_BACK = ("Content-Type", "WWW-Authenticate", "Cache-Control", "Retry-After")


class Leadership(Protocol):
    """What the handlers need of ``luigid.ha.node.HaNode``."""

    name: str
    url: str

    @property
    def leading(self) -> bool: ...

    def leader_url(self) -> str | None: ...

    def status(self) -> tuple[int, dict[str, Any]]: ...


class LeaderHandler(BaseHandler):
    """``GET``/``HEAD /leader``: 200 on the leader, 503 elsewhere; open to anyone."""

    #: a standby's 503 is its normal answer, asked every second or two by load balancers
    answers_with_5xx = True

    def initialize(self, node: Leadership, **kwargs: Any) -> None:
        super().initialize(**kwargs)
        self.node = node

    def access(self) -> Access | None:
        return None  # load balancers must reach it without credentials

    def compute_etag(self) -> None:
        return None

    def _answer(self, body: bool) -> None:
        status, reply = self.node.status()
        self.set_status(status)
        self.set_header("Content-Type", JSON_TYPE)
        self.set_header("Cache-Control", "no-store")
        self.finish(reply if body else None)

    def get(self) -> None:
        self._answer(True)

    def head(self) -> None:
        self._answer(False)


class HaRpcHandler(RpcHandler):
    """``/api/<method>``: run here on the leader, forwarded to it from a standby."""

    def initialize(self, node: Leadership | None = None, **kwargs: Any) -> None:  # type: ignore[override]
        super().initialize(**kwargs)
        assert node is not None
        self.node = node

    async def _call(self, method: str) -> None:
        if self.node.leading:
            await super()._call(method)
            return
        target = self.node.leader_url()
        if target is not None and target != self.node.url and not self.request.headers.get(FORWARDED):
            await self._forward(target)
            return
        spec = RPC_METHODS.get(method)
        if spec is not None and not spec.mutating:
            # no leader in reach (PostgreSQL is down, or a takeover is under way): reads and
            # the UI are answered from this node's copy, as of the last change it applied
            await super()._call(method)
            return
        raise ApiError(503, f"no leader at the moment (this node, {self.node.name}, is a standby); retry")

    async def _forward(self, target: str) -> None:
        self._read_body()  # the size limit applies here too
        request = self.request
        headers = {k: v for k, v in request.headers.get_all() if k.lower() not in _HOP_HEADERS}
        headers[FORWARDED] = self.node.name
        headers.pop("Accept-Encoding", None)  # this node compresses its own answer
        try:
            answer = await tornado.httpclient.AsyncHTTPClient().fetch(
                target + request.uri,
                method=request.method or "GET",
                headers=headers,
                body=request.body if request.method == "POST" else None,
                request_timeout=FORWARD_TIMEOUT,
                follow_redirects=False,
                decompress_response=True,
                raise_error=False,
            )
        except OSError as exc:
            raise ApiError(503, f"the leader at {target} did not answer ({exc}); retry") from None
        if answer.code == 599:  # no HTTP answer at all (refused, reset, timed out)
            raise ApiError(503, f"the leader at {target} did not answer ({answer.error}); retry")
        self.set_status(answer.code, answer.reason)
        for name in _PASSED_BACK:
            value = answer.headers.get(name)
            if value is not None:
                self.set_header(name, value)
        self.finish(answer.body)
