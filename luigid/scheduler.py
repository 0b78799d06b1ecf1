"""Public import path of the scheduler: ``from luigid.scheduler import Scheduler``.

luigid's programmatic usage (``Scheduler(); s.load(); luigid.server.run(scheduler=s)``) and
luigi's own in-process tests import it from here; the code lives in ``luigid.core``.
"""

from luigid.core.rpc import RPC_METHODS, rpc_method
from luigid.core.scheduler import Scheduler

__all__ = ["RPC_METHODS", "Scheduler", "rpc_method"]
