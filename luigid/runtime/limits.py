"""The ``[server]`` keys that bound what the running daemon holds: descriptors, idle
connections, memory, and how many processes parse HTTP. (The request-size limit is the web
layer's, ``luigid.web.validation``.)"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from luigid.config import config_error, get_float, get_int, get_size

#: an idle keep-alive connection is closed after this many seconds (see docs/configuration.md)
DEFAULT_IDLE_CONNECTION_TIMEOUT = 300.0
#: more front processes than this would only compete for the same cores
MAX_HTTP_PROCESSES = 64


@dataclass(frozen=True)
class ServerLimits:
    #: the soft RLIMIT_NOFILE to set at start; None: as high as the hard limit allows
    max_open_files: int | None = None
    #: seconds a connection may wait for its next request
    idle_connection_timeout: float = DEFAULT_IDLE_CONNECTION_TIMEOUT
    #: resident memory in bytes past which one warning is logged; None: a share of what is
    #: available (``luigid.runtime.resources.memory_warning_threshold``), 0: never
    memory_warning_threshold: int | None = None
    #: processes that parse HTTP: 1, the scheduler process itself; N > 1, N front processes
    #: (``luigid.runtime.fronts``) handing validated calls to the scheduler process
    http_processes: int = 1


def server_limits_from(sections: Mapping[str, Any]) -> ServerLimits:
    """The four keys, each checked; a bad one is a ``ConfigError`` naming file and key."""
    files = get_int(sections, "server", "max_open_files", None)
    if files is not None and files < 64:
        # below this even start-up (logs, state file, history database) runs short
        raise config_error(sections, "server", "max_open_files", f"expected 64 or more, got {files}")
    idle = get_float(sections, "server", "idle_connection_timeout", DEFAULT_IDLE_CONNECTION_TIMEOUT)
    if not idle > 0:
        raise config_error(
            sections, "server", "idle_connection_timeout", f"expected seconds, more than 0, got {idle:g}"
        )
    memory = get_size(sections, "server", "memory_warning_threshold", None)
    http = get_int(sections, "server", "http_processes", 1)
    if not 1 <= http <= MAX_HTTP_PROCESSES:
        raise config_error(
            sections, "server", "http_processes", f"expected 1 to {MAX_HTTP_PROCESSES} processes, got {http}"
        )
    if http > 1 and (sections.get("ha") or {}).get("db_connection"):
        problem = "front processes cannot be used with [ha] db_connection (docs/ha.md); set 1 or leave it out"
        raise config_error(sections, "server", "http_processes", problem)
    return ServerLimits(
        max_open_files=files,
        idle_connection_timeout=idle,
        memory_warning_threshold=memory,
        http_processes=http,
    )
