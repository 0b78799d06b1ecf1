"""One shared object for values many tasks repeat: retry policies and parameter visibilities.

At 100k tasks most tasks carry the default retry policy and one of a handful of visibility
maps; sharing them instead of keeping a copy per task is several megabytes.
"""

from __future__ import annotations

from typing import Any

from luigid.core.model import NOTHING, RetryPolicy

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
