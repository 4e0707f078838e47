"""Root conftest: fixture modules that start real nodes (anvil, js-ipfs) on 127.0.0.1.

The test process runs the default CPU kernel pin (arledger.execution.kernels), set here
before any test computes anything: in-process training, as `artrain run` does after its
own re-exec, must run the kernel set the tasks it builds pin.
"""

import os
from pathlib import Path

from arledger.execution.kernels import DEFAULT_PIN, env_for

for _key, _value in env_for(DEFAULT_PIN).items():
    os.environ.setdefault(_key, _value)



pytest_plugins = [
    "tests.fixtures.chain",
    "tests.fixtures.ipfs",
    "tests.fixtures.demo",
]

# The longest test files first (measured: `make test` prints the slowest), so that the two
# workers of `make test` (xdist, one file per worker at a time, --no-loadscope-reorder) never
# end with one long file running alone: longest first is the classic way to keep both busy.
# The two files that share the demo are apart, so neither waits on the other's demo lock.
SLOW_FIRST = ["test_readme.py", "test_e2e_cheats.py", "test_sandbox_hermetic.py", "test_dashboard_browser.py",
              "test_e2e_sealed.py", "test_verify_bench.py", "test_demo.py", "test_agent.py", "test_e2e_flow.py",
              "test_templates.py"]


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(Path(str(item.fspath)).name, len(rank)))  # stable: the rest keep order
