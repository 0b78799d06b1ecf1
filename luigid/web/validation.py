"""What an ``/api`` call may carry: body size, JSON shape, and the type of every argument.

The expected type of each RPC argument is declared once, in ``ARGUMENT_TYPES``, and checked
by the HTTP layer before the scheduler is called, so a bad call is answered with a 400 that
names the argument instead of failing somewhere inside the scheduler. The checks follow
what luigi 3.8.1 workers really send (``retry_policy_dict`` values may be null, ``info`` is a
list of pairs, ``max_batch_size`` may be ``Infinity``...) and are lenient where luigi is:
free-form values (``expl``, status messages, parameter values) are any JSON.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from luigid.config import config_error, get_size
from luigid.core.model import DISABLED, DONE, FAILED, PENDING, RUNNING, SUSPENDED, UNKNOWN

#: Longest accepted id (task, worker, family, module, message, resource, batch). luigi's task
#: ids are a family name plus a truncated parameter summary and a hash: a few hundred
#: characters at most.
MAX_ID_LENGTH = 4096
#: Deepest accepted JSON nesting in a call (luigi sends at most three or four levels).
MAX_JSON_DEPTH = 64
#: Default largest request body (10 MiB, as the hostile-input issue asks; luigi workers' big
#: add_task calls of 10 MB still fit), and the least an operator may set. A wrapper task with
#: 100,000 deps of ~100 characters is ~11 MB form-encoded: such pipelines raise
#: [server] max_request_body.
DEFAULT_MAX_REQUEST_BODY = 10 * 1024 * 1024
MIN_MAX_REQUEST_BODY = 1024 * 1024
#: Largest request line plus headers. Tornado's default (64 KB) cuts a longer GET off without
#: a reply; with this, a GET carrying a 100k-character id is answered with a JSON 400.
#: Beyond it Tornado still closes the connection (luigi workers always POST).
MAX_HEADER_SIZE = 1024 * 1024

#: Statuses a worker may report (SUSPENDED is luigi's legacy name for PENDING). BATCH_RUNNING
#: is not one: only get_work hands it out, to tasks it has given a worker.
SENDABLE_STATUSES = (PENDING, RUNNING, DONE, FAILED, DISABLED, UNKNOWN, SUSPENDED)


class Invalid(ValueError):
    """An argument of the wrong shape; the message names where and what was expected."""


def _kind(value: Any) -> str:
    """A JSON-ish name for the type of ``value``, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


Check = Callable[[Any, str], None]


def _fail(where: str, expected: str, value: Any) -> Invalid:
    return Invalid(f"'{where}' must be {expected}, got {_kind(value)}")


def any_json(value: Any, where: str) -> None:
    """Free-form data (error text, messages, parameter values): anything JSON can carry."""


def boolean(value: Any, where: str) -> None:
    if not isinstance(value, bool):
        raise _fail(where, "true or false", value)


def text(value: Any, where: str) -> None:
    if not isinstance(value, str):
        raise _fail(where, "a string", value)


def ident(value: Any, where: str) -> None:
    """An id: text, not absurdly long, and valid Unicode (no lone surrogates)."""
    if not isinstance(value, str):
        raise _fail(where, "a string", value)
    if len(value) > MAX_ID_LENGTH:
        raise Invalid(f"'{where}' is {len(value)} characters long; ids may have at most {MAX_ID_LENGTH}")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Invalid(f"'{where}' is not valid Unicode text") from None


def number(*, minimum: float | None = None, finite: bool = True) -> Check:
    expected = "a finite number" if finite else "a number"
    if minimum is not None:
        expected += f" of at least {minimum:g}"

    def check(value: Any, where: str) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(where, expected, value)
        if isinstance(value, float) and (math.isnan(value) or (finite and math.isinf(value))):
            raise Invalid(f"'{where}' must be {expected}, got {value}")
        if minimum is not None and value < minimum:
            raise Invalid(f"'{where}' must be {expected}, got {value}")

    return check


def integer(*, minimum: int | None = None) -> Check:
    expected = "an integer" if minimum is None else f"an integer of at least {minimum}"

    def check(value: Any, where: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(where, expected, value)
        if minimum is not None and value < minimum:
            raise Invalid(f"'{where}' must be {expected}, got {value}")

    return check


def optional(inner: Check) -> Check:
    def check(value: Any, where: str) -> None:
        if value is not None:
            inner(value, where)

    return check


def list_of(item: Check) -> Check:
    def check(value: Any, where: str) -> None:
        if not isinstance(value, list):
            raise _fail(where, "a list", value)
        for index, element in enumerate(value):
            item(element, f"{where}[{index}]")

    return check


def map_of(item: Check) -> Check:
    """A JSON object (keys are always strings in JSON) whose values pass ``item``."""

    def check(value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise _fail(where, "an object", value)
        for key, element in value.items():
            item(element, f"{where}.{key}")

    return check


def choice(options: tuple[str, ...]) -> Check:
    def check(value: Any, where: str) -> None:
        if value not in options or not isinstance(value, str):
            shown = value if isinstance(value, str) else _kind(value)
            raise Invalid(f"'{where}' must be one of {', '.join(options)}; got {str(shown)[:80]!r}")

    return check


_worker_count = integer()


def worker_info(value: Any, where: str) -> None:
    """``add_worker``'s info: an object, or luigi's list of ``[name, value]`` pairs. The
    scheduler counts with ``workers``, so that one entry must be an integer."""
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        pairs = []
        for index, pair in enumerate(value):
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
                raise Invalid(f"'{where}[{index}]' must be a [name, value] pair")
            pairs.append((pair[0], pair[1]))
    else:
        raise _fail(where, "an object or a list of [name, value] pairs", value)
    for name, item in pairs:
        if name == "workers":
            _worker_count(item, f"{where}.workers")


def scheduler_object(value: Any, where: str) -> None:
    """An argument only the scheduler itself can pass (a task record): luigi calls
    update_metrics_task_started from inside get_work, and a collector given JSON instead
    would fail."""
    raise Invalid(f"'{where}' is a task record the scheduler passes itself; it cannot be sent over HTTP")


#: A resource amount: luigi's are integers; fractions work too, negatives never do.
amount = number(minimum=0)
#: A yes/no argument. luigi's workers send null for some (``runnable=None`` once a task has
#: run), and the scheduler only tests them for truth, so null is accepted as "no".
flag = optional(boolean)

#: The expected type of each argument of each RPC method. Arguments not listed here are
#: either checked by the scheduler itself (update_resource's amount) or free-form.
ARGUMENT_TYPES: dict[str, dict[str, Check]] = {
    "prune": {},
    "add_task_batcher": {
        "worker": ident,
        "task_family": ident,
        "batched_args": list_of(text),
        "max_batch_size": number(finite=False),  # luigi's default is Infinity
    },
    "add_worker": {"worker": ident, "info": worker_info},
    "disable_worker": {"worker": ident},
    "set_worker_processes": {"worker": ident, "n": integer(minimum=0)},
    "ping": {"worker": ident},
    "forgive_failures": {"task_id": optional(ident)},
    "mark_as_done": {"task_id": optional(ident)},
    "add_task": {
        "task_id": ident,
        "status": choice(SENDABLE_STATUSES),
        "runnable": flag,
        "deps": optional(list_of(ident)),
        "new_deps": optional(list_of(ident)),
        "expl": any_json,
        "resources": optional(map_of(amount)),
        "priority": number(),
        "family": text,
        "module": optional(text),
        "params": optional(map_of(any_json)),
        "param_visibilities": optional(map_of(integer())),
        "accepts_messages": flag,
        "assistant": flag,
        "tracking_url": optional(text),
        "worker": ident,
        "batchable": flag,
        "batch_id": optional(ident),
        "retry_policy_dict": optional(map_of(optional(number(finite=False)))),
        "owners": optional(list_of(text)),
    },
    "announce_scheduling_failure": {
        "task_name": text,
        "family": text,
        "params": map_of(any_json),
        "expl": any_json,
        "owners": optional(list_of(text)),
        "worker": optional(ident),
    },
    "re_enable_task": {"task_id": ident},
    "send_scheduler_message": {"worker": ident, "task": ident, "content": any_json},
    "add_scheduler_message_response": {"task_id": ident, "message_id": ident, "response": any_json},
    "get_scheduler_message_response": {"task_id": ident, "message_id": ident},
    "has_task_history": {},
    "is_pause_enabled": {},
    "is_paused": {},
    "pause": {},
    "unpause": {},
    "update_resources": {},  # every argument is a resource: see EXTRA_ARGUMENT_TYPES
    "update_resource": {"resource": ident, "amount": any_json},
    "resource_list": {},
    "decrease_running_task_resources": {"task_id": ident, "decrease_resources": map_of(number())},
    "get_running_task_resources": {"task_id": ident},
    "count_pending": {"worker": ident},
    "get_work": {
        "host": optional(text),
        "assistant": flag,
        "current_tasks": optional(list_of(ident)),
        "worker": ident,
    },
    "graph": {},
    "dep_graph": {"task_id": ident, "include_done": flag},
    "inverse_dep_graph": {"task_id": ident, "include_done": flag},
    "task_list": {
        "status": text,
        "upstream_status": text,
        "limit": flag,
        "search": optional(text),
        "max_shown_tasks": optional(integer()),
    },
    "task_search": {"task_str": text},
    "worker_list": {"include_running": flag},
    "fetch_error": {"task_id": ident},
    "set_task_status_message": {"task_id": ident, "status_message": any_json},
    "get_task_status_message": {"task_id": ident},
    "set_task_progress_percentage": {"task_id": ident, "progress_percentage": any_json},
    "get_task_progress_percentage": {"task_id": ident},
    "update_metrics_task_started": {"task": scheduler_object},
    "report_task_statistics": {"task_id": ident, "statistics": any_json},
}

#: For methods taking ``**kwargs``: the type of every argument not named in their signature.
EXTRA_ARGUMENT_TYPES: dict[str, Check] = {"update_resources": amount}


def check_arguments(method: str, arguments: Mapping[str, Any]) -> None:
    """Raise ``Invalid`` naming the first argument of the wrong type."""
    declared = ARGUMENT_TYPES.get(method, {})
    extra = EXTRA_ARGUMENT_TYPES.get(method)
    for name, value in arguments.items():
        check = declared.get(name, extra)
        if check is not None:
            check(value, name)


def text_may_nest_deeper(raw: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """False when the JSON text ``raw`` cannot nest deeper than ``limit``: every level opens
    with a bracket or a brace, so a text with at most ``limit`` of them needs no walk over its
    value (a worker's call has a handful; the walk costs as much as parsing it)."""
    return raw.count("[") + raw.count("{") > limit


def json_depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``value`` nests lists/objects deeper than ``limit`` (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


# ---------------------------------------------------------------------------- config


@dataclass(frozen=True)
class RequestLimits:
    """The ``[server]`` section's limits on what a request may carry."""

    max_request_body: int = DEFAULT_MAX_REQUEST_BODY


def request_limits_from(sections: Mapping[str, Any]) -> RequestLimits:
    """``[server] max_request_body`` (bytes, or with a KB/MB/GB suffix); ConfigError when bad."""
    size = get_size(sections, "server", "max_request_body", None)
    if size is None:
        return RequestLimits()
    if size < MIN_MAX_REQUEST_BODY:
        raise config_error(
            sections,
            "server",
            "max_request_body",
            f"{size} bytes is below the {MIN_MAX_REQUEST_BODY} luigi workers may need for big add_task calls",
        )
    return RequestLimits(max_request_body=size)


__all__ = [
    "ARGUMENT_TYPES",
    "EXTRA_ARGUMENT_TYPES",
    "Invalid",
    "RequestLimits",
    "check_arguments",
    "json_depth_exceeds",
    "request_limits_from",
    "text_may_nest_deeper",
]
