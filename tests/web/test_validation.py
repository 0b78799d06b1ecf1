"""The argument-type table covers the whole RPC surface, and its checks say what is wrong."""

from __future__ import annotations

import json
from typing import Any

import pytest

from luigid.scheduler import RPC_METHODS
from luigid.web.validation import (
    ARGUMENT_TYPES,
    EXTRA_ARGUMENT_TYPES,
    Invalid,
    check_arguments,
    json_depth_exceeds,
    text_may_nest_deeper,
)
from tests.web.support import KWARGS_ARGUMENTS


def named_parameters(method: str) -> set[str]:
    params = list(RPC_METHODS[method].signature.parameters.values())[1:]
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def test_every_method_has_a_declaration() -> None:
    assert set(ARGUMENT_TYPES) == set(RPC_METHODS)


@pytest.mark.parametrize("method", sorted(RPC_METHODS))
def test_every_argument_is_declared_and_exists(method: str) -> None:
    declared = set(ARGUMENT_TYPES[method])
    named = named_parameters(method)
    # a new argument without a type fails here, so the table cannot fall behind
    assert named <= declared, f"{method}: no type for {sorted(named - declared)}"
    extra = declared - named
    assert all((method, name) in KWARGS_ARGUMENTS for name in extra), extra
    if extra:
        assert RPC_METHODS[method].accepts_extra


def test_extra_argument_types_are_for_kwargs_methods() -> None:
    for method in EXTRA_ARGUMENT_TYPES:
        assert RPC_METHODS[method].accepts_extra


@pytest.mark.parametrize(
    ("method", "arguments", "message"),
    [
        ("add_task", {"priority": True}, "'priority' must be a finite number, got a boolean"),
        ("add_task", {"priority": float("inf")}, "'priority' must be a finite number, got inf"),
        (
            "add_task",
            {"resources": {"a": {"b": 1}}},
            "'resources.a' must be a finite number of at least 0, got an object",
        ),
        ("add_task", {"status": 3}, "'status' must be one of PENDING"),
        ("add_task", {"status": "BATCH_RUNNING"}, "'status' must be one of"),
        ("add_task", {"param_visibilities": {"a": "public"}}, "'param_visibilities.a' must be an integer"),
        (
            "add_task",
            {"retry_policy_dict": {"retry_count": "3"}},
            "'retry_policy_dict.retry_count' must be a number",
        ),
        ("set_worker_processes", {"n": -1}, "'n' must be an integer of at least 0, got -1"),
        ("add_worker", {"info": "host=h"}, "'info' must be an object or a list of [name, value] pairs"),
        ("task_list", {"max_shown_tasks": 1.5}, "'max_shown_tasks' must be an integer, got a number"),
    ],
)
def test_messages_name_the_argument(method: str, arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(Invalid) as raised:
        check_arguments(method, arguments)
    assert message in str(raised.value)


def test_free_form_and_unknown_arguments_pass() -> None:
    check_arguments("add_task", {"expl": {"any": ["json", 1, None]}, "a_future_argument": object()})
    check_arguments("set_task_status_message", {"task_id": "T", "status_message": None})
    check_arguments("update_resource", {"resource": "r", "amount": "the scheduler answers false"})


def test_depth() -> None:
    nested: Any = 1
    for _ in range(64):
        nested = [nested]
    assert not json_depth_exceeds(nested)
    assert json_depth_exceeds([nested])
    assert not json_depth_exceeds({"a": [1, {"b": []}]}, limit=4)
    assert json_depth_exceeds({"a": [1, {"b": []}]}, limit=3)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": [1, {"b": []}]}',
        '{"s": "[[[[{{{{"}',
        "[" * 4 + "]" * 4,
        '"no brackets"',
        '{"a": {}, "b": [], "c": []}',
    ],
)
@pytest.mark.parametrize("limit", [1, 3, 4, 64])
def test_a_text_that_passes_the_bracket_count_never_nests_deeper(text: str, limit: int) -> None:
    # the count is the cheap test the API runs first: only a text it lets through is walked
    if not text_may_nest_deeper(text, limit):
        assert not json_depth_exceeds(json.loads(text), limit)
    assert text_may_nest_deeper("[" * (limit + 1) + "]" * (limit + 1), limit)
