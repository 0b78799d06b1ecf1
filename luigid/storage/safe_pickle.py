"""A restricted unpickler for state files.

A pickle can name any importable callable and have the loader call it, so an untrusted
state file is code. This unpickler resolves only a fixed list of names: plain builtins,
``collections.deque``, and the task/worker classes of luigid and of luigi 3.x. The task,
worker and ordered-set classes are not resolved to live classes at all: they resolve to
inert *record* classes that only remember the attributes the file gave them, so loading
runs none of their code and works without importing luigi. ``luigid.storage.codec`` turns
records into ``luigid.core.model`` objects afterwards.
"""

from __future__ import annotations

import collections
import copyreg
import io
import pickle
from typing import IO, Any

from luigid.core.model import RetryPolicy


class RefusedGlobal(pickle.UnpicklingError):
    """The file names something a state file has no business naming."""


class Record:
    """Attributes of one pickled object, captured without running the object's class."""

    __slots__ = ("fields",)
    kind = "object"

    def __new__(cls, *args: Any) -> Record:
        record = super().__new__(cls)
        record.fields = {}
        return record

    def __setstate__(self, state: Any) -> None:
        # objects with a __dict__ pickle it as a dict; __slots__ classes as (None|dict, slots)
        fields: dict[str, Any] = {}
        parts = state if isinstance(state, tuple) and len(state) == 2 else (state,)
        for part in parts:
            if part is None:
                continue
            if not isinstance(part, dict):
                raise pickle.UnpicklingError(f"malformed {self.kind} record")
            fields.update(part)
        if not all(isinstance(k, str) for k in fields):
            raise pickle.UnpicklingError(f"malformed {self.kind} record")
        self.fields = fields


class TaskRecord(Record):
    __slots__ = ()
    kind = "task"


class WorkerRecord(Record):
    __slots__ = ()
    kind = "worker"


class OrderedSetRecord(Record):
    """luigi's ``OrderedSet`` pickles its ``map`` (insertion-ordered dict) and a linked list."""

    __slots__ = ()
    kind = "ordered set"

    def items(self) -> list[Any]:
        mapping = self.fields.get("map", {})
        if not isinstance(mapping, dict):
            raise pickle.UnpicklingError("malformed ordered set record")
        return list(mapping)


def _visibility(value: Any = 0) -> int:
    """luigi's ParameterVisibility (an IntEnum) becomes the plain int the API uses."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise pickle.UnpicklingError("malformed parameter visibility")
    return value


#: (module, name) -> what the name stands for while loading. Nothing else resolves.
ALLOWED: dict[tuple[str, str], Any] = {
    # files written before the package was grouped by layer name the model at its old path
    ("luigid.model", "Task"): TaskRecord,
    ("luigid.model", "Worker"): WorkerRecord,
    ("luigid.model", "RetryPolicy"): RetryPolicy,
    ("luigid.core.model", "Task"): TaskRecord,
    ("luigid.core.model", "Worker"): WorkerRecord,
    ("luigid.core.model", "RetryPolicy"): RetryPolicy,
    ("luigi.scheduler", "Task"): TaskRecord,
    ("luigi.scheduler", "Worker"): WorkerRecord,
    ("luigi.scheduler", "OrderedSet"): OrderedSetRecord,
    ("luigi.scheduler", "RetryPolicy"): RetryPolicy,
    ("luigi.parameter", "ParameterVisibility"): _visibility,
    ("collections", "deque"): collections.deque,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("copyreg", "_reconstructor"): copyreg._reconstructor,  # type: ignore[attr-defined]
    ("copy_reg", "_reconstructor"): copyreg._reconstructor,  # type: ignore[attr-defined]
}
for _module in ("builtins", "__builtin__"):
    for _type in (set, frozenset, list, dict, tuple, object):
        ALLOWED[(_module, _type.__name__)] = _type


class StateUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise RefusedGlobal(f"refused to load {module}.{name}: not part of a scheduler state") from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent references are not allowed in a state file")


def loads(payload: bytes) -> Any:
    """Unpickle ``payload``, resolving only the names in ``ALLOWED``."""
    return StateUnpickler(io.BytesIO(payload)).load()


def load(stream: IO[bytes]) -> Any:
    """The next pickle in ``stream`` (a state file may hold several in a row), likewise."""
    return StateUnpickler(stream).load()
