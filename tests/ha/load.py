"""A client thread that keeps changing state through a cluster and remembers what was acknowledged."""

from __future__ import annotations

import threading
import time
from collections import Counter

import requests

from tests.ha.support import add_task
from tests.support.daemon import Luigid


class Writer(threading.Thread):
    """add_task of new ids, round robin over ``nodes``; ``acknowledged`` holds every id
    answered 200 with its status, ``answers`` counts the HTTP statuses seen (0: no answer)."""

    def __init__(self, nodes: list[Luigid], prefix: str = "T", pause: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.nodes = nodes
        self.prefix = prefix
        self.pause = pause
        self.acknowledged: dict[str, str] = {}
        self.answers: Counter[int] = Counter()
        #: (monotonic time, status) of every answer
        self.timeline: list[tuple[float, int]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        n = 0
        while not self._halt.is_set():
            node = self.nodes[n % len(self.nodes)]
            task_id = f"{self.prefix}{n}"
            status = "DONE" if n % 3 == 0 else "PENDING"
            try:
                code = add_task(node, task_id, status).status_code
            except requests.RequestException:
                code = 0
            self.answers[code] += 1
            self.timeline.append((time.monotonic(), code))
            if code == 200:
                self.acknowledged[task_id] = status
            n += 1
            time.sleep(self.pause)

    def stop(self) -> None:
        self._halt.set()
        self.join(60)

    def acknowledged_after(self, moment: float) -> int:
        return sum(1 for at, code in self.timeline if at > moment and code == 200)

    def refused_after(self, moment: float) -> int:
        return sum(1 for at, code in self.timeline if at > moment and code == 503)
