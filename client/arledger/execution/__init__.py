"""Running code you did not write: the one home for it, below the runner (no torch at import).

- ``executors``: ``WorkRequest`` (a request dir with ``request.json`` and its inputs) and
  the ``Executor``s that serve it: in-process, a fresh subprocess, a warm zygote pool;
- ``pool`` / ``zygote``: the warm parent that forks one fresh worker per request;
- ``sandbox`` / ``guard``: the hermetic sandbox (bubblewrap, or rlimits, a network
  namespace and an audit-hook guard where bubblewrap cannot run);
- ``limits``: one ``Limits`` type, ``apply_rlimits`` (the only code that sets them) and
  the one classifier of a broken limit;
- ``kernels``: the CPU kernel pin every party runs with;
- ``isolation``: the policy every command asks for its executor (sandboxed by default).

The worker these run is the runner's (``arledger.runner.worker``): named here, never
imported, so that this package stays below it. docs/ARCHITECTURE.md draws the layers.
"""

from arledger.execution.executors import (
                                          Done,
                                          Executor,
                                          InProcessExecutor,
                                          PoolExecutor,
                                          SubprocessExecutor,
                                          worker_argv,
                                          WorkRequest,
)
from arledger.execution.isolation import Isolation
from arledger.execution.limits import Limits

__all__ = ["Done", "Executor", "InProcessExecutor", "Isolation", "Limits", "PoolExecutor", "SubprocessExecutor",
           "WorkRequest", "worker_argv"]
