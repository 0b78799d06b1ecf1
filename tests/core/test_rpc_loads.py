"""``luigid.core.rpc.loads``: json.loads' value or error for every text, however it parses it."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from luigid.core.rpc import loads

ACCEPTED = [
    '{"worker": "w", "current_tasks": [], "assistant": false, "host": null}',
    '{"a": 1, "b": 2, "a": 3}',  # the last of a repeated key wins, in the first one's place
    '{"big": 123456789012345678901234567890, "neg": -0, "f": 1.5e300, "tiny": 1e-400}',
    '{"huge": 1e400, "nan": NaN, "inf": Infinity, "minf": -Infinity}',
    '{"lone": "\\ud800", "pair": "\\ud83d\\ude00", "nul": "\\u0000"}',
    '  [1, 2.0, "x"]  ',
    '"just text"',
    "[" * 200 + "]" * 200,
]
REFUSED = ['{"a": 1,}', "{'a': 1}", "", "[1, 2", '{"a": 1} x', '"tab\there"', "\ufeff{}", "01"]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return (
            isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
        )
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("text", ACCEPTED)
def test_the_value_is_json_loads_value(text: str) -> None:
    assert _same(loads(text), json.loads(text))


@pytest.mark.parametrize("text", REFUSED)
def test_the_error_is_json_loads_error(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as ours:
        loads(text)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(text)
    assert str(ours.value) == str(theirs.value)


def test_nesting_beyond_what_json_loads_can_walk_raises_as_it_does() -> None:
    text = "[" * 100_000 + "]" * 100_000
    with pytest.raises(RecursionError):
        json.loads(text)
    with pytest.raises(RecursionError):
        loads(text)
