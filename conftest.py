"""Root conftest: fixture modules that start real nodes (anvil, js-ipfs) on 127.0.0.1.

The test process runs the default CPU kernel pin (arledger.execution.kernels), set here
before any test computes anything: in-process training, as `artrain run` does after its
own re-exec, must run the kernel set the tasks it builds pin.
"""

import os

from arledger.execution.kernels import DEFAULT_PIN, env_for

for _key, _value in env_for(DEFAULT_PIN).items():
    os.environ.setdefault(_key, _value)



pytest_plugins = [
    "tests.fixtures.chain",
    "tests.fixtures.ipfs",
    "tests.fixtures.demo",
]
