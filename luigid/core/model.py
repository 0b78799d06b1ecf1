"""Task and Worker records: plain data, with the attribute names luigi's scheduler uses.

The names match luigi's own ``luigi.scheduler.Task``/``Worker`` because collectors, history
backends and state-file migration all address tasks by these attributes. Both classes use
``__slots__``: at 100k tasks the per-instance ``__dict__`` is a large share of memory.
Nothing here knows about indexes; ``luigid.core.state`` keeps those consistent.
"""

from __future__ import annotations

import sys
from collections import deque
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from luigid.core import clock

T = TypeVar("T")

# Task statuses, as luigi's workers send and expect them.
PENDING = "PENDING"
RUNNING = "RUNNING"
DONE = "DONE"
FAILED = "FAILED"
DISABLED = "DISABLED"
UNKNOWN = "UNKNOWN"
BATCH_RUNNING = "BATCH_RUNNING"
SUSPENDED = "SUSPENDED"

#: Statuses a task can be stored under (SUSPENDED is only ever sent, and stored as PENDING).
STATUSES = (PENDING, RUNNING, DONE, FAILED, DISABLED, UNKNOWN, BATCH_RUNNING)

UPSTREAM_RUNNING = "UPSTREAM_RUNNING"
UPSTREAM_MISSING_INPUT = "UPSTREAM_MISSING_INPUT"
UPSTREAM_FAILED = "UPSTREAM_FAILED"
UPSTREAM_DISABLED = "UPSTREAM_DISABLED"

#: Upstream statuses from least to most severe; "" means nothing wrong upstream.
UPSTREAM_SEVERITY = ("", UPSTREAM_RUNNING, UPSTREAM_MISSING_INPUT, UPSTREAM_FAILED, UPSTREAM_DISABLED)
STATUS_TO_UPSTREAM = {
    FAILED: UPSTREAM_FAILED,
    RUNNING: UPSTREAM_RUNNING,
    BATCH_RUNNING: UPSTREAM_RUNNING,
    PENDING: UPSTREAM_MISSING_INPUT,
    DISABLED: UPSTREAM_DISABLED,
}

WORKER_STATE_ACTIVE = "active"
WORKER_STATE_DISABLED = "disabled"

# Parameter visibilities, as luigi's ParameterVisibility serialises them.
VISIBILITY_PUBLIC = 0
VISIBILITY_HIDDEN = 1
VISIBILITY_PRIVATE = 2


#: The one empty mapping shared by every task field that is usually empty (hidden params,
#: message responses, resources...). Nothing mutates a field in place unless it first
#: replaced this with a dict of its own; at 100k tasks the saving is several megabytes.
NOTHING: dict[str, Any] = {}

#: The one empty set of worker ids, shared by every task without stakeholders. A task's
#: stakeholders are a frozenset, replaced (never changed in place) on a change, so that equal
#: ones can be one object (``luigid.core.interning.SharedValues``).
NO_IDS: frozenset[str] = frozenset()


def shared_name(value: Any) -> Any:
    """One string object for equal names (families, modules, worker ids, parameter values):
    every call's JSON makes new ones, and a task would keep its own copy."""
    return sys.intern(value) if type(value) is str else value


class RetryPolicy(NamedTuple):
    retry_count: int
    disable_hard_timeout: float
    disable_window: float


#: The fields nearly every task keeps at these values all its life (batches, failures,
#: messages, progress...), and their defaults. They live in a ``TaskExtras`` record made on
#: the first other value written to one of them: a ``Task`` has 29 slots instead of 41 (264 B
#: instead of 360), and the forked snapshot writer copies fewer pages of tasks
#: (docs/performance.md, "Memory per task"). What every task that ran keeps (worker_running,
#: time_running, resources_running) stays a slot: a record each would cost more, and
#: ``ResourcePool.used`` reads resources_running of every RUNNING task on each get_work.
EXTRA_DEFAULTS: dict[str, Any] = {
    "accepts_messages": False,
    "batch_id": None,
    "batchable": False,
    "expl": None,
    "failures": (),
    "first_failure_time": None,
    "hidden_params": NOTHING,
    "owners": None,
    "progress_percentage": None,
    "scheduler_disable_time": None,
    "scheduler_message_responses": NOTHING,
    "status_message": None,
    "tracking_url": None,
}


class TaskExtras:
    """A task's rarely set fields (``EXTRA_DEFAULTS``), read and written as the task's own
    attributes (see ``Task``)."""

    __slots__ = tuple(EXTRA_DEFAULTS)

    def __init__(self) -> None:
        for name, value in EXTRA_DEFAULTS.items():
            setattr(self, name, value)


if TYPE_CHECKING:

    class Extra(Generic[T]):
        """What the type checker sees of a field kept in ``extras``."""

        def __get__(self, task: Task, owner: type[Task]) -> T:
            raise NotImplementedError

        def __set__(self, task: Task, value: T) -> None:
            raise NotImplementedError


def stays_default(name: str, value: Any) -> bool:
    """Whether ``value``, read back from a file or a pickle for the extra field ``name``, leaves
    it at its default: the default itself or, for the shared empty mapping, any empty one
    (neither a file nor a pickle keeps objects shared across tasks)."""
    default = EXTRA_DEFAULTS[name]
    return value is default or (default is NOTHING and not value)


#: The record of every task whose extra fields all have their defaults: shared, so never
#: written (the first write to a task's extra field gives it a record of its own).
NO_EXTRAS = TaskExtras()


class Task:
    """One task the scheduler knows of (possibly only as a dependency placeholder).

    The fields in ``EXTRA_DEFAULTS`` are properties over ``extras`` (declared below for the
    type checker, made after the class); every other field is a slot. ``FIELDS`` names them
    all, in the order the state file's rows keep them.
    """

    DEFAULT_PRIORITY = 0

    __slots__ = (
        "counted",
        "deps",
        "display",
        "encoded",
        "extras",
        "family",
        "id",
        "module",
        "param_visibilities",
        "params",
        "priority",
        "public_params",
        "ready_key",
        "remove",
        "resources",
        "resources_running",
        "retry",
        "retry_policy",
        "runnable",
        "seq",
        "stakeholders",
        "status",
        "time",
        "time_running",
        "unmet",
        "updated",
        "upstream",
        "worker_running",
        "workers",
    )

    if TYPE_CHECKING:  # kept in ``extras``: see EXTRA_DEFAULTS; ``_extra_field`` makes them
        accepts_messages = Extra[bool]()
        batch_id = Extra[str | None]()
        batchable = Extra[bool]()
        expl = Extra[Any]()
        failures = Extra["deque[float] | tuple[()]"]()
        first_failure_time = Extra[float | None]()
        hidden_params = Extra[dict[str, Any]]()
        owners = Extra[list[str] | None]()
        progress_percentage = Extra[float | None]()
        scheduler_disable_time = Extra[float | None]()
        scheduler_message_responses = Extra[dict[str, Any]]()
        status_message = Extra[str | None]()
        tracking_url = Extra[str | None]()

    #: every field a task has, slots and extras alike (not ``extras`` itself), sorted
    FIELDS: tuple[str, ...]

    #: slots the state derives from the others (index bookkeeping and caches): rebuilt on
    #: load, so not part of what a task *is*
    DERIVED = frozenset({"seq", "unmet", "ready_key", "display", "encoded", "upstream", "counted"})

    def __init__(
        self,
        task_id: str,
        status: str,
        deps: Any,
        retry_policy: RetryPolicy,
        resources: dict[str, int] | None = None,
        priority: float = DEFAULT_PRIORITY,
        family: str = "",
        module: str | None = None,
        params: dict[str, Any] | None = None,
        param_visibilities: dict[str, int] | None = None,
        accepts_messages: bool = False,
        tracking_url: str | None = None,
        status_message: str | None = None,
        progress_percentage: float | None = None,
    ) -> None:
        now = clock.now()
        self.extras = NO_EXTRAS
        self.id = task_id
        #: workers that want this task done; the task is kept while any of them lives
        self.stakeholders: frozenset[str] = NO_IDS
        #: workers able to run it, in the order they said so (a tuple used as ordered set:
        #: nearly always one worker, the same tuple for all of that worker's tasks)
        self.workers: tuple[str, ...] = ()
        #: ids of the tasks it needs, each once, in the order first given (a tuple is a
        #: quarter of a set's size, and nothing looks a dep up by id in it)
        self.deps: tuple[str, ...] = tuple(dict.fromkeys(deps)) if deps else ()
        self.status = status
        self.time = now
        self.updated = now
        self.retry: float | None = None
        self.remove: float | None = None
        self.worker_running: str | None = None
        self.time_running: float | None = None
        self.priority = priority
        self.resources: dict[str, int] = dict(resources) if resources else NOTHING
        self.resources_running: dict[str, int] | None = None
        self.family = shared_name(family)
        self.module = shared_name(module)
        # not copied: the scheduler hands in one shared map per distinct visibility set
        self.param_visibilities: dict[str, int] = param_visibilities or NOTHING
        # pretty_id's cache: a str, which the garbage collector never tracks (a tuple would be
        # young until a collection looked at it, and evictions, freeing one per name made,
        # would keep that from coming: 100k of them walked at once, ~25 ms)
        self.display: str | None = None
        self.params: dict[str, Any] = {}
        self.public_params: dict[str, Any] = {}
        self.set_params(params)
        self.retry_policy = retry_policy
        # the other extra fields start at their defaults: failure times are an empty tuple
        # until the first failure (an empty deque is far bigger, and most tasks never fail:
        # docs/performance.md, "Figures behind the code"); message responses are NOTHING
        # until the first one
        if accepts_messages:
            self.accepts_messages = accepts_messages
        if tracking_url is not None:
            self.tracking_url = tracking_url
        if status_message is not None:
            self.status_message = status_message
        if progress_percentage is not None:
            self.progress_percentage = progress_percentage
        self.runnable = False
        # index bookkeeping, owned by luigid.core.state: order of entering the current status
        # (luigi's tie-break), deps not yet DONE, and the key under which the task sits in
        # the ready lists (None when it is not ready to run)
        self.seq = 0
        self.unmet = 0
        self.ready_key: tuple[Any, ...] | None = None
        # the UI's counters (luigid.core.uicounts): the upstream box a PENDING task falls in
        # ("" for none) and the (box, family) the counters hold it under
        self.upstream = ""
        self.counted: tuple[str, str] | None = None
        # this task's JSON for task_list and graph replies (``luigid.core.replies.Encoded``),
        # made by the replies and kept through ``luigid.core.replycache`` (bounded); ``set``
        # and ``set_params`` drop it with every change they make
        self.encoded: Any = None  # an Encoded, or None

    def __repr__(self) -> str:
        return f"Task({self.id!r}, {self.status})"

    def __getstate__(self) -> tuple[None, dict[str, Any]]:
        # pickled field by field, as when every field was a slot (luigid 0.1's state files
        # pickled tasks), whatever the layout: ``extras`` is not a field
        return None, {name: getattr(self, name) for name in Task.FIELDS}

    def __setstate__(self, state: tuple[None, dict[str, Any]]) -> None:
        self.extras = NO_EXTRAS
        for name, value in state[1].items():
            if name not in EXTRA_DEFAULTS or not stays_default(name, value):
                setattr(self, name, value)

    def set(self, **fields: Any) -> None:
        """Write fields that task_list and graph replies show (status, workers, priority,
        tracking_url...). After ``__init__`` they are written only here, or by ``set_params``,
        so the task's cached reply JSON is dropped with every change by construction. Values
        are replaced, not changed in place (the one exception, luigi's in-place decrease of
        running resources, passes the changed dict back through here). The indexed fields
        (status, deps, priority, resources, workers) are written by ``luigid.core.state``,
        which keeps its indexes around the write. A plain method, not a ``__setattr__``
        override: reads and the other writes stay as cheap as any slot's."""
        for name, value in fields.items():
            setattr(self, name, value)
        self.encoded = None
        if "family" in fields or "param_visibilities" in fields:
            self.display = None  # pretty_id shows both

    def set_params(self, params: dict[str, Any] | None) -> None:
        self.display = None
        self.encoded = None
        # keys and string values interned: tasks of one family repeat their names, and
        # often their values (dates, shards), each a new string in every call's JSON
        self.params = {shared_name(k): shared_name(v) for k, v in params.items()} if params else NOTHING
        vis = self.param_visibilities
        if not any(v != VISIBILITY_PUBLIC for v in vis.values()):
            # the common case: everything public; share the dict rather than copy it
            self.public_params = self.params
            if self.extras is not NO_EXTRAS:
                self.hidden_params = NOTHING
            return
        self.public_params = {
            k: v for k, v in self.params.items() if vis.get(k, VISIBILITY_PUBLIC) == VISIBILITY_PUBLIC
        }
        self.hidden_params = {
            k: v for k, v in self.params.items() if vis.get(k, VISIBILITY_PUBLIC) == VISIBILITY_HIDDEN
        } or NOTHING

    def is_batchable(self) -> bool:
        return bool(self.batchable)

    # -- failure accounting (retry_count within disable_window, disable_hard_timeout) --

    def add_failure(self) -> None:
        now = clock.now()
        if not self.first_failure_time:
            self.first_failure_time = now
        if not isinstance(self.failures, deque):
            self.failures = deque(self.failures)
        self.failures.append(now)

    def num_failures(self) -> int:
        failures = self.failures
        if isinstance(failures, deque):
            oldest = clock.now() - self.retry_policy.disable_window
            while failures and failures[0] < oldest:
                failures.popleft()
        return len(failures)

    def has_excessive_failures(self) -> bool:
        if self.first_failure_time is not None and clock.now() >= (
            self.first_failure_time + self.retry_policy.disable_hard_timeout
        ):
            return True
        return self.num_failures() >= self.retry_policy.retry_count

    def clear_failures(self) -> None:
        self.failures = ()
        self.first_failure_time = None

    @property
    def pretty_id(self) -> str:
        # ``display`` caches it for the calls that ask every task (search, sort by name),
        # which store it through ``luigid.core.replycache`` (bounded); set_params and a
        # new family or visibilities (through ``set``) clear it
        cached = self.display
        if cached is not None:
            return cached
        return self.fresh_pretty_id()

    def fresh_pretty_id(self) -> str:
        """``pretty_id`` made from the family and public params, the kept one not looked at
        (``ReplyCache.name`` has just found it missing)."""
        shown = ", ".join(f"{k}={v}" for k, v in sorted(self.public_params.items()))
        return f"{self.family}({shown})"


def _extra_field(name: str, default: Any) -> property:
    """``Task.<name>``: read straight from ``extras`` (in C, no Python frame: replies and
    snapshots read these for every task); a write other than the default gives a task that
    shares ``NO_EXTRAS`` a record of its own first."""

    def write(task: Task, value: Any) -> None:
        extras = task.extras
        if extras is NO_EXTRAS:
            if value is default:
                return
            extras = task.extras = TaskExtras()
        setattr(extras, name, value)

    return property(attrgetter(f"extras.{name}"), write, doc=f"``extras.{name}`` (default {default!r})")


for _name, _default in EXTRA_DEFAULTS.items():
    setattr(Task, _name, _extra_field(_name, _default))
Task.FIELDS = tuple(sorted({*Task.__slots__, *EXTRA_DEFAULTS} - {"extras"}))


class Worker:
    """A worker process as the scheduler sees it: last contact, info, pending messages."""

    __slots__ = (
        "disabled",
        "id",
        "info",
        "last_active",
        "last_get_work",
        "reference",
        "rpc_messages",
        "started",
        "tasks",
    )

    def __init__(self, worker_id: str, last_active: float | None = None) -> None:
        now = clock.now()
        self.id = worker_id
        self.reference: dict[str, Any] | None = None
        self.last_active = last_active or now
        self.last_get_work: float | None = None
        self.started = now
        #: tasks this worker can run (kept by luigid.core.state, never mutated elsewhere)
        self.tasks: set[Task] = set()
        self.info: dict[str, Any] = {}
        self.disabled = False
        self.rpc_messages: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        return f"Worker({self.id!r})"

    def __str__(self) -> str:
        return self.id

    def add_info(self, info: dict[str, Any]) -> None:
        self.info.update(info)

    def update(self, reference: dict[str, Any] | None, get_work: bool = False) -> None:
        if reference:
            self.reference = reference
        self.last_active = clock.now()
        if get_work:
            self.last_get_work = self.last_active

    @property
    def assistant(self) -> bool:
        return bool(self.info.get("assistant", False))

    @property
    def enabled(self) -> bool:
        return not self.disabled

    @property
    def state(self) -> str:
        return WORKER_STATE_DISABLED if self.disabled else WORKER_STATE_ACTIVE

    def add_rpc_message(self, name: str, **kwargs: Any) -> None:
        self.rpc_messages.append({"name": name, "kwargs": kwargs})

    def fetch_rpc_messages(self) -> list[dict[str, Any]]:
        messages, self.rpc_messages = self.rpc_messages, []
        return messages
