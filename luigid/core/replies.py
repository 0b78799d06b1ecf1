"""Building the big replies: tasks as luigi serialises them, each task's JSON kept on the
task (``Task.encoded``, for at most ``[scheduler] reply_cache_tasks`` tasks:
``luigid.core.replycache``) so that a task_list or graph reply is mostly a join of bytes
made earlier, graph walks, and replies cut into pieces the server sends one at a time."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from luigid.config import SchedulerConfig
from luigid.core.model import (
    DISABLED,
    DONE,
    PENDING,
    RUNNING,
    STATUS_TO_UPSTREAM,
    UNKNOWN,
    UPSTREAM_SEVERITY,
    Task,
)
from luigid.core.rpc import Fragments, Piece, dumps, members
from luigid.core.shards import ShardedSet
from luigid.core.state import State

#: Tasks per piece of a streamed reply: each piece costs a few milliseconds at most, so a
#: 100k-task reply never holds the event loop for long.
FRAGMENT_SIZE = 1000
#: a piece stops growing once making it took this long (checked every PIECE_CHECK members)
PIECE_SECONDS = 0.005
PIECE_CHECK = 50
#: Tasks a task_list filter (search, upstream status) looks at between pauses.
FILTER_PAUSE = 5000

#: How a family name is guessed from the id of a task the scheduler has never been told about.
_FAMILY_FROM_ID = re.compile(r"([^(_]+)[(_]")


class Encoded(NamedTuple):
    """A task as task_list and graph replies show it, already JSON: the members of its entry
    in the order ``Replies.serialize_task`` gives them, kept in ``Task.encoded`` until a
    field it shows changes (``Task.set`` drops it) or the reply cache needs the room. A
    derived slot: never saved."""

    #: ``"<id>":{`` with the fields every entry has (status ... progress_percentage)
    head: bytes
    #: ``,"display_name":...`` (task_list entries, graph roots)
    display: bytes
    #: ``,"re_enable_able":...`` or nothing
    re_enable: bytes
    #: ``,"accepts_messages":...`` or nothing
    messages: bytes
    #: the deps sorted as the graph walks them, once a graph asked (None until then)
    edges: tuple[str, ...] | None = None
    #: ``,"deps":[...]`` for those edges (None until then)
    deps: bytes | None = None


def _split_off(node: dict[str, Any], key: str) -> bytes:
    """``,"key":value`` taken out of the node, or nothing when it has no such key."""
    return b"," + members({key: node.pop(key)}) if key in node else b""


def _upstream_key(status: str) -> int:
    return UPSTREAM_SEVERITY.index(status)


def in_pieces(entries: Iterable[tuple[bytes, ...]]) -> Iterator[bytes | None]:
    """Encoded members (each in parts, a comma first) joined FRAGMENT_SIZE at a time, or
    fewer once making the piece took PIECE_SECONDS (checked every PIECE_CHECK members):
    members whose JSON is not cached (more tasks than ``[scheduler] reply_cache_tasks``) cost
    ten times as much to make, and the loop waits for a whole piece. An empty member adds
    nothing and ends the piece where it stands (None when the piece is empty): a source's
    way to hand the loop back in work that makes no member (a walk freeing what it kept)."""
    source = iter(entries)
    clock = time.perf_counter
    exhausted = False
    while not exhausted:
        parts: list[bytes] = []
        deadline = clock() + PIECE_SECONDS
        for taken, member in enumerate(source, 1):
            if not member:
                break
            parts.extend(member)
            if taken == FRAGMENT_SIZE or (taken % PIECE_CHECK == 0 and clock() > deadline):
                break
        else:
            exhausted = True
        if parts:
            parts[0] = b""  # no comma before a piece's first member
            yield b"".join(parts)
        elif not exhausted:
            yield None


class Replies:
    def __init__(self, state: State, config: SchedulerConfig) -> None:
        self._state = state
        self._config = config

    # ----------------------------------------------------------- serialisation

    def serialize_task(
        self, task: Task, include_deps: bool = True, deps: Iterable[str] | None = None, display: bool = True
    ) -> dict[str, Any]:
        # one dict literal: this runs once per task in task_list and graph replies
        out: dict[str, Any] = {
            "status": task.status,
            "workers": list(task.workers),
            "worker_running": task.worker_running,
            "time_running": task.time_running,
            "start_time": task.time,
            "last_updated": task.updated,
            "params": task.public_params,
            "name": task.family,
            "priority": task.priority,
            "resources": task.resources,
            "resources_running": task.resources_running,
            "tracking_url": task.tracking_url,
            "status_message": task.status_message,
            "progress_percentage": task.progress_percentage,
        }
        if display:
            out["display_name"] = task.pretty_id
        if task.status == DISABLED:
            out["re_enable_able"] = task.scheduler_disable_time is not None
        if include_deps:
            out["deps"] = list(task.deps if deps is None else deps)
        if self._config.send_messages and task.status == RUNNING:
            out["accepts_messages"] = task.accepts_messages
        return out

    @staticmethod
    def placeholder(task_id: str) -> dict[str, Any]:
        """What is shown for a dependency the scheduler has no record of."""
        match = _FAMILY_FROM_ID.match(task_id)
        return {
            "deps": [],
            "status": UNKNOWN,
            "workers": [],
            "start_time": UNKNOWN,
            "params": {"task_id": task_id},
            "name": match.group(1) if match else UNKNOWN,
            "display_name": task_id,
            "priority": 0,
        }

    def encode(self, task: Task) -> Encoded:
        """The task's entry as JSON parts (see ``Encoded``), cut from ``serialize_task``'s
        dict so both always agree, and kept on the task."""
        node = self.serialize_task(task, include_deps=False)
        display = _split_off(node, "display_name")
        re_enable = _split_off(node, "re_enable_able")
        messages = _split_off(node, "accepts_messages")
        # '{"<id>":{...}}' without the outer brace and the entry's closing one
        encoded = Encoded(dumps({task.id: node})[1:-2], display, re_enable, messages)
        return self._state.reply_cache.keep(task, encoded)  # kept only if the bound allows

    def _encode_deps(self, task: Task, encoded: Encoded) -> Encoded:
        edges = tuple(sorted(task.deps))
        encoded = encoded._replace(edges=edges, deps=b"," + members({"deps": edges}))
        return self._state.reply_cache.keep(task, encoded)

    # ------------------------------------------------------------------ graphs

    def walk_graph(
        self, roots: Iterable[str], inverse: bool = False, include_done: bool = True
    ) -> Iterator[tuple[bytes, ...]]:
        """Breadth-first from each root in turn, skipping nodes an earlier walk reached, so
        the nearest nodes survive the max_graph_nodes cut (which, as in luigi, counts the
        nodes of one walk). Only a walk's root carries a display name. Yields each node as
        the parts of a JSON object member, a comma first; a caller may pause between them."""
        state = self._state
        get_task = state.get_task
        limit = max(1, self._config.max_graph_nodes)  # as in luigi, a walk always shows its root
        own_deps = include_done and not inverse  # the edges are the task's deps, kept encoded with it
        seen = ShardedSet()  # it may come to hold every task: see luigid.core.shards
        for root_id in roots:
            if not seen.add(root_id):
                continue
            queue = [root_id]  # the walk's nodes in visiting order: it grows as it is read
            for visited, task_id in enumerate(queue):
                if visited >= limit:
                    break
                task = get_task(task_id)
                if task is None or not task.family:
                    node = self.placeholder(task_id)
                    if task_id != root_id:
                        del node["display_name"]
                    yield b",", members({task_id: node})
                    continue
                encoded: Encoded = task.encoded or self.encode(task)
                head, display, re_enable, messages, edges, deps = encoded  # cheaper than 6 lookups
                if own_deps and edges is None:
                    head, display, re_enable, messages, edges, deps = self._encode_deps(task, encoded)
                if not own_deps:
                    found: Iterable[str] = state.dependents(task_id) if inverse else task.deps
                    if not include_done:
                        found = [d for d in found if (t := get_task(d)) is None or t.status != DONE]
                    edges = tuple(sorted(found))
                    deps = b"," + members({"deps": edges})
                assert edges is not None and deps is not None
                for dep_id in edges:
                    if seen.add(dep_id):
                        queue.append(dep_id)
                shown = display if task_id == root_id else b""
                yield b",", head, shown, re_enable, deps, messages, b"}"
        # freed a shard per piece: freeing all at once held the loop ~20 ms at 1M tasks
        for _ in seen.clear_stepwise():
            yield ()

    def graph(self) -> Fragments:
        # the roots a step at a time: a copy of every id in one step would hold the loop (at
        # 1M tasks, right after a snapshot's fork, each task touched is a copy-on-write fault)
        roots = (task.id for chunk in self._state.walk_all() for task in chunk)
        return Fragments(in_pieces(self.walk_graph(roots)))

    def graph_of(self, task_id: str, include_done: bool, inverse: bool) -> dict[str, Any] | Fragments:
        """dep_graph (or, ``inverse``, inverse_dep_graph) of one task; {} for an unknown one."""
        if not self._state.has_task(task_id):
            return {}
        walk = self.walk_graph([task_id], inverse=inverse, include_done=include_done)
        return Fragments(in_pieces(walk))

    # --------------------------------------------------------------- task_list

    def too_many(
        self, status: str, upstream_status: str, limit: bool, search: str | None, cap: int
    ) -> dict[str, Any] | None:
        """The count luigi answers instead of the list when a status holds over ``cap``
        tasks (known without looking at any of them); None when the list is to be made."""
        if not search:
            count = self._state.count(status)
            if limit and count > cap:
                return {"num_tasks": -1 if upstream_status else count}
        return None

    def task_list(
        self, status: str, upstream_status: str, limit: bool, search: str | None, cap: int
    ) -> Fragments:
        # a copy: other requests may run between the pieces
        state = self._state
        tasks = list(state.tasks_by_status(status) if status else state.tasks())
        return Fragments(self._task_list_pieces(tasks, upstream_status, limit, search, cap))

    def _task_list_pieces(
        self, tasks: list[Task], upstream_status: str, limit: bool, search: str | None, cap: int
    ) -> Iterator[Piece]:
        terms = [term.casefold() for term in search.split()] if search else []
        if not terms and not upstream_status:
            matched = tasks  # nothing to filter out
        else:
            memo: dict[str, str] = {}
            name = self._state.reply_cache.name
            matched = []
            for seen, task in enumerate(tasks, 1):
                if seen % FILTER_PAUSE == 0:
                    yield None
                if terms:
                    shown = name(task).casefold()
                    if not all(term in shown for term in terms):
                        continue
                if (
                    task.status == PENDING
                    and upstream_status
                    and upstream_status != self._upstream_status(task.id, memo)
                ):
                    continue
                matched.append(task)
        if limit and len(matched) > cap:
            yield {"num_tasks": len(matched)}  # counted, never serialised
            return
        encode = self.encode
        yield from in_pieces(
            (b",", head, display, re_enable, messages, b"}")
            for head, display, re_enable, messages, _, _ in (task.encoded or encode(task) for task in matched)
        )

    def _upstream_status(self, task_id: str, memo: dict[str, str]) -> str:
        """The most severe trouble among a task's not-yet-done ancestors (memoised)."""
        if task_id in memo:
            return memo[task_id]
        state = self._state
        if not state.has_task(task_id):
            return ""
        stack = [task_id]
        while stack:
            current = stack.pop()
            task = state.get_task(current)
            if task is None or task.status == DONE:
                continue
            if current not in memo:
                if task.status == PENDING and task.deps:
                    memo[current] = ""  # settled once its deps are (post-order)
                    stack.append(current)
                    stack.extend(task.deps)
                else:
                    memo[current] = STATUS_TO_UPSTREAM.get(task.status, "")
            elif memo[current] == "" and task.deps:
                memo[current] = max((memo.get(d, "") for d in task.deps), key=_upstream_key)
        return memo.get(task_id, "")
