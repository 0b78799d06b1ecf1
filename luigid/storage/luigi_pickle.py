"""A pickle writer for objects of classes this process does not have.

``pickle.Pickler`` can only save an object of a class it can import: it checks that the
class's module really holds that class. A state file for luigi's own daemon is made of
``luigi.scheduler`` objects, and luigid never imports luigi, so this module writes the
pickle opcodes itself. It emits exactly what ``pickle.dump`` writes for such objects at
protocol 2 and later (``cls.__new__(cls, *args)`` by ``NEWOBJ``, then ``BUILD`` with the
instance ``__dict__``), so ``pickle.load`` in the other program builds the real objects.

Values: ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, ``tuple``, ``list``,
``dict``, ``set``, ``frozenset``, ``collections.deque``, and the two stand-ins below.
Lists, dicts and sets are written as new objects each time they occur (no sharing);
instances and strings are written once and referenced afterwards, so an object that
several containers hold is one object again after loading.

The output is protocol 4 without frames (framing is optional; every reader of protocol 4
accepts unframed opcodes). Nesting of plain values recurses: state files hold JSON-like
values a few levels deep.
"""

from __future__ import annotations

import pickle
import struct
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

PROTOCOL = 4
#: Items per APPENDS/SETITEMS/ADDITEMS, as ``pickle`` batches them.
BATCH = 1000


class Instance:
    """An object of ``module.name``: made by ``cls.__new__(cls, *args)``, then, unless
    ``state`` is None, given ``state`` as its ``__dict__`` (what a plain class pickles)."""

    __slots__ = ("args", "module", "name", "state")

    def __init__(
        self, module: str, name: str, state: dict[str, Any] | None, args: tuple[Any, ...] = ()
    ) -> None:
        self.module = module
        self.name = name
        self.state = state
        self.args = args


class LinkedOrderedSet:
    """An object of ``module.name`` that is the widely copied OrderedSet recipe (ActiveState
    576694, used by luigi): ``__dict__`` is ``{"end": sentinel, "map": {key: node}}`` where
    ``sentinel`` and every ``node`` (``[key, prev, next]``) form one circular doubly linked
    list, the sentinel being ``[None, last, first]``."""

    __slots__ = ("keys", "module", "name")

    def __init__(self, module: str, name: str, keys: Iterable[Any]) -> None:
        self.module = module
        self.name = name
        self.keys = list(keys)


def dumps(value: Any) -> bytes:
    """The pickle of ``value`` (see the module docstring for what it may hold)."""
    writer = _Writer()
    writer.out.append(pickle.PROTO + bytes([PROTOCOL]))
    writer.save(value)
    writer.out.append(pickle.STOP)
    return b"".join(writer.out)


_pack_double = struct.Struct(">d").pack
_pack_u32 = struct.Struct("<I").pack
_pack_i32 = struct.Struct("<i").pack
_pack_u64 = struct.Struct("<Q").pack


class _Writer:
    def __init__(self) -> None:
        self.out: list[bytes] = []
        self._next = 0  # index the next MEMOIZE stores at
        self._instances: dict[int, int] = {}  # id(stand-in) -> memo index
        self._keep: list[Any] = []  # keeps those stand-ins alive, so their ids stay unique
        self._strings: dict[str, int] = {}
        self._globals: dict[tuple[str, str], int] = {}

    # ---------------------------------------------------------------- memo

    def _memoize(self) -> int:
        self.out.append(pickle.MEMOIZE)
        self._next += 1
        return self._next - 1

    def _get(self, index: int) -> None:
        if index < 256:
            self.out.append(pickle.BINGET + bytes([index]))
        else:
            self.out.append(pickle.LONG_BINGET + _pack_u32(index))

    # ---------------------------------------------------------------- values

    def save(self, value: Any) -> None:
        kind = type(value)
        if value is None:
            self.out.append(pickle.NONE)
        elif kind is bool:
            self.out.append(pickle.NEWTRUE if value else pickle.NEWFALSE)
        elif kind is str:
            self._str(value)
        elif kind is int:
            self._int(value)
        elif kind is float:
            self.out.append(pickle.BINFLOAT + _pack_double(value))
        elif kind is dict:
            self._dict(value)
        elif kind is list:
            self.out.append(pickle.EMPTY_LIST)
            self._batches(value, pickle.APPENDS)
        elif kind is tuple:
            self._tuple(value)
        elif kind is set:
            self.out.append(pickle.EMPTY_SET)
            self._batches(value, pickle.ADDITEMS)
        elif kind is frozenset:
            self.out.append(pickle.MARK)
            for item in value:
                self.save(item)
            self.out.append(pickle.FROZENSET)
        elif kind is deque:
            self._global("collections", "deque")
            self._tuple((list(value),) if value.maxlen is None else (list(value), value.maxlen))
            self.out.append(pickle.REDUCE)
        elif kind is bytes:
            self._bytes(value)
        elif kind is Instance:
            self._instance(value)
        elif kind is LinkedOrderedSet:
            self._ordered_set(value)
        else:
            self._subclass(value)

    def _subclass(self, value: Any) -> None:
        """Subclasses of plain types (an IntEnum, an OrderedDict...) are saved as their base:
        the reader must not need the subclass either."""
        base: type[Any]
        for base in (bool, int, float, str, bytes, dict, list, tuple, set, frozenset):
            if isinstance(value, base):
                self.save(base(value))
                return
        raise TypeError(
            f"cannot write a {type(value).__module__}.{type(value).__qualname__} into a state file"
        )

    def _int(self, value: int) -> None:
        if 0 <= value < 0x100:
            self.out.append(pickle.BININT1 + bytes([value]))
        elif 0 <= value < 0x10000:
            self.out.append(pickle.BININT2 + value.to_bytes(2, "little"))
        elif -0x80000000 <= value <= 0x7FFFFFFF:
            self.out.append(pickle.BININT + _pack_i32(value))
        else:
            encoded = pickle.encode_long(value)
            if len(encoded) < 256:
                self.out.append(pickle.LONG1 + bytes([len(encoded)]) + encoded)
            else:
                self.out.append(pickle.LONG4 + _pack_i32(len(encoded)) + encoded)

    def _str(self, value: str) -> None:
        known = self._strings.get(value)
        if known is not None:
            self._get(known)
            return
        encoded = value.encode("utf-8", "surrogatepass")
        size = len(encoded)
        if size < 256:
            self.out.append(pickle.SHORT_BINUNICODE + bytes([size]) + encoded)
        elif size <= 0xFFFFFFFF:
            self.out.append(pickle.BINUNICODE + _pack_u32(size) + encoded)
        else:
            self.out.append(pickle.BINUNICODE8 + _pack_u64(size) + encoded)
        self._strings[value] = self._memoize()

    def _bytes(self, value: bytes) -> None:
        size = len(value)
        if size < 256:
            self.out.append(pickle.SHORT_BINBYTES + bytes([size]) + value)
        elif size <= 0xFFFFFFFF:
            self.out.append(pickle.BINBYTES + _pack_u32(size) + value)
        else:
            self.out.append(pickle.BINBYTES8 + _pack_u64(size) + value)

    def _tuple(self, value: Sequence[Any]) -> None:
        size = len(value)
        if size == 0:
            self.out.append(pickle.EMPTY_TUPLE)
            return
        if size > 3:
            self.out.append(pickle.MARK)
        for item in value:
            self.save(item)
        self.out.append(
            (pickle.TUPLE1, pickle.TUPLE2, pickle.TUPLE3)[size - 1] if size <= 3 else pickle.TUPLE
        )

    def _batches(self, items: Iterable[Any], opcode: bytes) -> None:
        """MARK item... ``opcode`` per ``BATCH`` items, onto the container on the stack."""
        count = 0
        for item in items:
            if count == 0:
                self.out.append(pickle.MARK)
            self.save(item)
            count += 1
            if count == BATCH:
                self.out.append(opcode)
                count = 0
        if count:
            self.out.append(opcode)

    def _dict(self, value: dict[Any, Any]) -> None:
        self.out.append(pickle.EMPTY_DICT)
        count = 0
        for key, item in value.items():
            if count == 0:
                self.out.append(pickle.MARK)
            self.save(key)
            self.save(item)
            count += 1
            if count == BATCH:
                self.out.append(pickle.SETITEMS)
                count = 0
        if count:
            self.out.append(pickle.SETITEMS)

    def _global(self, module: str, name: str) -> None:
        """Push the class ``module.name``; the reader imports it, this process never does."""
        known = self._globals.get((module, name))
        if known is not None:
            self._get(known)
            return
        if "\n" in module or "\n" in name:
            raise ValueError(f"not a class name: {module!r}.{name!r}")
        self.out.append(pickle.GLOBAL + f"{module}\n{name}\n".encode())
        self._globals[(module, name)] = self._memoize()

    def _instance(self, value: Instance) -> None:
        known = self._instances.get(id(value))
        if known is not None:
            self._get(known)
            return
        self._global(value.module, value.name)
        self._tuple(value.args)
        self.out.append(pickle.NEWOBJ)
        # memoized before its state, as pickle does: the state may refer back to it
        self._instances[id(value)] = self._memoize()
        self._keep.append(value)
        if value.state is not None:
            self._dict(value.state)
            self.out.append(pickle.BUILD)

    def _ordered_set(self, value: LinkedOrderedSet) -> None:
        """The linked list is circular, so every list is made empty and memoized first and
        filled afterwards (iteratively: a long set must not recurse once per key)."""
        self._global(value.module, value.name)
        self.out.append(pickle.EMPTY_TUPLE + pickle.NEWOBJ)
        keys = value.keys
        lists = []
        for _ in range(len(keys) + 1):  # the sentinel, then one node per key
            self.out.append(pickle.EMPTY_LIST)
            lists.append(self._memoize())
            self.out.append(pickle.POP)
        sentinel, nodes = lists[0], lists[1:]
        for position, index in enumerate(lists):
            self._get(index)
            self.out.append(pickle.MARK)
            if position == 0:
                self.out.append(pickle.NONE)
                self._get(nodes[-1] if nodes else sentinel)  # last
                self._get(nodes[0] if nodes else sentinel)  # first
            else:
                self.save(keys[position - 1])
                self._get(lists[position - 1])  # prev (the sentinel before the first node)
                self._get(lists[position + 1] if position < len(nodes) else sentinel)  # next
            self.out.append(pickle.APPENDS + pickle.POP)
        self.out.append(pickle.EMPTY_DICT + pickle.MARK)
        self._str("end")
        self._get(sentinel)
        self._str("map")
        self.out.append(pickle.EMPTY_DICT)
        for start in range(0, len(keys), BATCH):
            self.out.append(pickle.MARK)
            for key, index in zip(keys[start : start + BATCH], nodes[start : start + BATCH], strict=True):
                self.save(key)
                self._get(index)
            self.out.append(pickle.SETITEMS)
        self.out.append(pickle.SETITEMS + pickle.BUILD)
