"""The Tornado application: every route luigid serves, in one table.

Every handler in it derives from ``luigid.web.base.BaseHandler``, so every request gets the
security headers, the access check (``luigid.auth.Guard``, in the settings as ``guard``) and a
place in the shutdown drain (``in_flight``).
"""

from __future__ import annotations

import logging
from typing import Any

import tornado.httputil
import tornado.web

from luigid.auth import Guard, auth_config_from
from luigid.config import LuigidConfig
from luigid.core.browse import Scans
from luigid.logs import DEFAULT_SLOW_REQUEST_SECONDS
from luigid.metrics import MetricsHandler
from luigid.scheduler import Scheduler
from luigid.web.api import RpcHandler
from luigid.web.base import InFlight
from luigid.web.taskbrowser import TaskBrowserHandler, Turns
from luigid.web.ui import STATIC_ROOT, NotFoundHandler, RootHandler, StaticHandler
from luigid.web.validation import request_limits_from

ACCESS_LOG = logging.getLogger("tornado.access")


def log_request(handler: tornado.web.RequestHandler) -> None:
    """The application's ``log_function``: ``log_access`` for a handler's request."""
    # a handler whose 5xx is an answer rather than a failure (a standby's /leader) says so
    answers_with_5xx = getattr(handler, "answers_with_5xx", False)
    log_access(handler.request, handler.get_status(), handler.application.settings, answers_with_5xx)


def log_access(
    request: tornado.httputil.HTTPServerRequest,
    status: int,
    settings: dict[str, Any],
    answers_with_5xx: bool = False,
) -> None:
    """One line per request: debug normally, a warning when slow or failed on our side."""
    seconds = request.request_time()
    slow = settings.get("slow_request_seconds", DEFAULT_SLOW_REQUEST_SECONDS)
    failed = status >= 500 and not answers_with_5xx
    level = logging.WARNING if failed or seconds >= slow else logging.DEBUG
    if ACCESS_LOG.isEnabledFor(level):
        summary = f"{request.method} {request.uri} ({request.remote_ip})"  # as tornado's handlers write it
        ACCESS_LOG.log(level, "%d %s %.2fms", status, summary, seconds * 1000)


class QuickGzip(tornado.web.GZipContentEncoding):
    """gzip (for clients that accept it: browsers, requests) at level 3 instead of tornado's 6:
    big task_list and graph replies compress much faster for a few more bytes, and compressing
    is most of what a browser waits for (figures in docs/architecture.md, "Big replies")."""

    GZIP_LEVEL = 3


def app(scheduler: Scheduler, config: LuigidConfig | None = None, ha: Any = None) -> tornado.web.Application:
    """The application. Raises ConfigError for a bad [auth] or [server] section. ``ha``: the
    HA node (``luigid.ha.node.HaNode``), whose standby forwards the API to the leader."""
    config = config or scheduler.settings
    # the routes luigi's UI calls cross-origin take part in CORS; the others are same-origin only
    cors: dict[str, Any] = {"cors": config.cors}
    collector = scheduler.metrics_collector
    observe = getattr(collector, "observe_rpc", None)
    limits = request_limits_from(config.sections)
    api: dict[str, Any] = dict(cors, scheduler=scheduler, observe=observe, limits=limits)
    routes: list[Any] = []
    if ha is not None:
        from luigid.ha.handlers import HaRpcHandler, LeaderHandler  # no driver needed for these

        routes += [
            (r"/leader", LeaderHandler, {"node": ha}),
            (r"/api/(.*)", HaRpcHandler, dict(api, node=ha)),
        ]
    else:
        routes.append((r"/api/(.*)", RpcHandler, api))
    routes += [
        (r"/", RootHandler, cors),
        (r"/static/(.*)", StaticHandler, {"path": STATIC_ROOT}),
        (r"/ui/tasks", TaskBrowserHandler, {"scheduler": scheduler, "scans": Scans(), "turns": Turns()}),
        (r"/metrics", MetricsHandler, {"collector": collector}),
    ]
    if scheduler.config.record_task_history:
        from luigid.history import history_routes  # the history package loads only when it is on

        routes += history_routes(scheduler.task_history)
    return _application(routes, config, cors)


def front_app(
    config: LuigidConfig, handler: type[RpcHandler], **handler_args: Any
) -> tornado.web.Application:
    """A front process's application (``luigid.runtime.front``): ``/api/<method>`` only,
    with the same access check, CORS, limits, gzip and access log as ``app``; ``handler``
    hands each validated call to the scheduler process. Raises ConfigError as ``app`` does."""
    cors: dict[str, Any] = {"cors": config.cors}
    api = dict(cors, limits=request_limits_from(config.sections), **handler_args)
    return _application([(r"/api/(.*)", handler, api)], config, cors)


def _application(routes: list[Any], config: LuigidConfig, cors: dict[str, Any]) -> tornado.web.Application:
    return tornado.web.Application(
        routes,
        default_handler_class=NotFoundHandler,
        default_handler_args=cors,
        guard=Guard(auth_config_from(config.sections), config.cors),
        transforms=[QuickGzip],
        log_function=log_request,
        in_flight=InFlight(),
    )
