"""The journal of facts that e2e tasks record and the tests read back.

One JSON object per line in ``<workdir>/journal.jsonl``, appended with a single ``write`` on an
``O_APPEND`` descriptor, so lines from concurrently running task processes never interleave.
Kept free of luigi imports: the test process reads it without loading the client.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

JOURNAL_NAME = "journal.jsonl"
#: Environment variable naming the directory where a worker's tasks write outputs and facts.
WORKDIR_ENV = "LUIGID_E2E_WORKDIR"


def append_fact(directory: Path, event: str, task: str, **facts: Any) -> None:
    line = json.dumps({"event": event, "task": task, "pid": os.getpid(), "t": time.time(), **facts})
    fd = os.open(Path(directory) / JOURNAL_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def read_journal(directory: Path) -> list[dict[str, Any]]:
    """The facts recorded so far under ``directory``, oldest first."""
    path = Path(directory) / JOURNAL_NAME
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
