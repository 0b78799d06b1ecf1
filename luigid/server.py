"""Public import path of the server: ``luigid.server.run(api_port=..., scheduler=...)``.

The lifecycle lives in ``luigid.runtime.server``.
"""

from luigid.runtime.server import Server, StartupError, run

__all__ = ["Server", "StartupError", "run"]
