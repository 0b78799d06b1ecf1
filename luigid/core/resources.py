"""Named resources: how much of each there is, and how much running tasks hold."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from luigid.core.model import Task


class ResourcePool:
    def __init__(self, totals: dict[str, int]) -> None:
        #: configured amounts; a resource nobody configured counts as 1 (as in luigi)
        self.totals = totals

    def has(self, needed: dict[str, int] | None, used: dict[str, int]) -> bool:
        if needed is None:
            return True
        available = self.totals
        return all(amount + used[name] <= available.get(name, 1) for name, amount in needed.items())

    @staticmethod
    def used(running: Iterable[Task]) -> defaultdict[str, int]:
        """What the given (RUNNING) tasks hold: their running resources, else their resources."""
        used: defaultdict[str, int] = defaultdict(int)
        for task in running:
            held = task.resources_running if task.resources_running is not None else task.resources
            for name, amount in (held or {}).items():
                used[name] += amount
        return used

    def usage(self, running: Iterable[Task]) -> dict[str, dict[str, int]]:
        """Total and used amount of each configured resource."""
        used = self.used(running)
        return {name: {"total": total, "used": used.get(name, 0)} for name, total in self.totals.items()}

    @staticmethod
    def decrease_held(holders: Iterable[Task], decrease: dict[str, int]) -> None:
        """luigi's decrease_running_task_resources: each holder gives back up to ``decrease``
        (never below 0). In place, as luigi does: a batch member's running resources are its
        resources; ``Task.set`` still drops each holder's cached reply."""
        for holder in holders:
            held = holder.resources_running
            if held is None:
                continue
            for name, amount in decrease.items():
                if amount > 0 and name in held:
                    held[name] = max(0, held[name] - amount)
            holder.set(resources_running=held)
