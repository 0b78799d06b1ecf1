"""Configuration files for the real luigi workers the tests start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

Sections = dict[str, dict[str, Any]]


def cfg_text(sections: Sections) -> str:
    """A luigi .cfg file's text: booleans as luigi reads them, every other value as str()."""
    lines: list[str] = []
    for name, keys in sections.items():
        lines.append(f"[{name}]")
        lines += [
            f"{key} = {str(value).lower() if isinstance(value, bool) else value}"
            for key, value in keys.items()
        ]
        lines.append("")
    return "\n".join(lines)


def write_cfg(path: Path, sections: Sections) -> Path:
    path.write_text(cfg_text(sections))
    return path


def riding_through_restarts(port: int, **worker: Any) -> Sections:
    """Workers of a daemon on ``port`` that keep retrying a call for a minute, a second apart,
    so that they outlast a restart or a takeover (docs/reliability.md recommends this), and
    keep running while the daemon has work for them; ``worker`` sets [worker] keys."""
    return {
        "core": {
            "scheduler_host": "127.0.0.1",
            "scheduler_port": port,
            "rpc_retry_attempts": 60,
            "rpc_retry_wait": 1,
        },
        "worker": {"keep_alive": True, "ping_interval": 1, **worker},
    }
