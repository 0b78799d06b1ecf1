"""The change log's file format: a header, then framed records.

A file starts with ``MAGIC`` and a 2-byte format version. Each record is framed as a 4-byte
payload length and the payload's CRC32 (both big-endian), then the payload: compact JSON
``[seq, method, arguments, now, ids]`` (``luigid.core.recording`` says what these are;
``seq`` counts from 0 in each file, so a record lost from the middle is noticed too).

Reading tells a torn end (a crash mid-write: the last frame runs past the end of the file,
or is the last thing in it and fails its checksum) from damage (a bad frame with more after
it): the first is dropped, the second stops the reading there.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

MAGIC = b"LUIGIDCL"
VERSION = 1
HEADER = MAGIC + struct.pack(">H", VERSION)
_VERSION_AT = len(MAGIC)
FRAME = struct.Struct(">II")


class Record(NamedTuple):
    seq: int
    method: str
    arguments: dict[str, Any]
    now: float
    ids: list[str]


class NewerFormat(Exception):
    """Written by a newer luigid: never touched."""


def encode_record(seq: int, method: str, arguments: bytes, now: float, ids: list[str]) -> bytes:
    """One framed record; ``arguments`` is already JSON."""
    payload = orjson.dumps([seq, method, orjson.Fragment(arguments), now, ids])
    return FRAME.pack(len(payload), zlib.crc32(payload)) + payload


@dataclass
class FileContents:
    records: list[Record] = field(default_factory=list)
    #: the file ended in a record cut short (dropped)
    torn: bool = False
    #: why reading stopped before the end, or None
    damage: str | None = None


def read_records(data: bytes) -> FileContents:
    """The records of one file's bytes, in order (see the module's doc)."""
    out = FileContents()
    if len(data) < len(HEADER):
        if HEADER.startswith(data):  # created, header not (all) written yet
            out.torn = bool(data)
        else:
            out.damage = "not a change log file (bad header)"
        return out
    if data[: len(MAGIC)] != MAGIC:
        out.damage = "not a change log file (bad header)"
        return out
    (version,) = struct.unpack_from(">H", data, _VERSION_AT)
    if version > VERSION:
        raise NewerFormat(f"change log format version {version}; this luigid reads up to {VERSION}")
    offset = len(HEADER)
    end = len(data)
    while offset < end:
        if end - offset < FRAME.size:
            out.torn = True
            break
        length, crc = FRAME.unpack_from(data, offset)
        start = offset + FRAME.size
        stop = start + length
        if stop > end:
            out.torn = True
            break
        payload = data[start:stop]
        if zlib.crc32(payload) != crc:
            if stop == end or not any(data[offset:]):  # the last frame, or zeros to the end
                out.torn = True
            else:
                out.damage = f"bad checksum in the record at byte {offset}"
            break
        record = _decode(payload, len(out.records))
        if record is None:
            out.damage = f"unreadable record at byte {offset}"
            break
        out.records.append(record)
        offset = stop
    return out


def _decode(payload: bytes, expected_seq: int) -> Record | None:
    try:
        seq, method, arguments, now, ids = orjson.loads(payload)
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None
    if (
        seq != expected_seq
        or not isinstance(method, str)
        or not isinstance(arguments, dict)
        or not isinstance(now, (int, float))
        or not isinstance(ids, list)
    ):
        return None
    return Record(seq, method, arguments, float(now), ids)
