"""One shared object for values many tasks repeat: retry policies and parameter visibilities.

At 100k tasks most tasks carry the default retry policy and one of a handful of visibility
maps; sharing them instead of keeping a copy per task is several megabytes.
"""

from __future__ import annotations

from typing import Any

from luigid.core.model import NO_IDS, NOTHING, RetryPolicy

#: How many distinct shared values (retry policies, visibility maps) to keep at most.
SHARED_LIMIT = 10_000


class Interner:
    """Hands out one object per distinct value, up to ``SHARED_LIMIT`` of them."""

    def __init__(self, default_policy: RetryPolicy) -> None:
        self.default_policy = default_policy
        self._shared: dict[Any, Any] = {}

    def retry_policy(self, overrides: dict[str, Any] | None) -> RetryPolicy:
        """The task's policy; equal policies are one shared object (most tasks use the default)."""
        if not overrides or all(v is None for v in overrides.values()):
            return self.default_policy
        policy = self.default_policy._asdict()
        policy.update({k: v for k, v in overrides.items() if v is not None and k in policy})
        made = RetryPolicy(**policy)
        return self._shared.setdefault(("policy", made), made)

    def mapping(self, kind: str, value: dict[str, Any]) -> dict[str, Any]:
        """One object for equal small dicts many tasks repeat (parameter visibilities)."""
        if not value:
            return NOTHING
        try:
            key = (kind, tuple(sorted(value.items())))
        except TypeError:  # unorderable or unhashable values: keep the task's own copy
            return dict(value)
        if len(self._shared) > SHARED_LIMIT:
            return dict(value)
        return self._shared.setdefault(key, dict(value))


class SharedValues:
    """One object for each small immutable value many tasks repeat: the stakeholder set
    and the runner tuple of most tasks name the one worker that added them, and a UI counter
    key is one of a few (box, family) pairs. Tasks hold these values, never mutate them (a
    change replaces the value), so equal ones can be a single object. The table starts
    afresh once it holds ``SHARED_LIMIT`` values: workers come and go under new ids, and a
    full table that kept the departed ones would share nothing for the workers of today
    (tasks keep the objects they hold; only later equal values stop being the same one)."""

    def __init__(self) -> None:
        self._values: dict[Any, Any] = {}

    def get(self, value: Any) -> Any:
        known = self._values.get(value)
        if known is not None:
            return known
        if not value:
            return value
        if len(self._values) >= SHARED_LIMIT:
            self._values.clear()
        self._values[value] = value
        return value

    def ids(self, ids: frozenset[str]) -> frozenset[str]:
        return self.get(ids) if ids else NO_IDS

    def __getstate__(self) -> dict[str, Any]:
        return {}  # a copy starts afresh: sharing saves memory, it never changes a value

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._values = {}
