"""Root conftest: fixture modules that start real nodes (anvil, js-ipfs) on 127.0.0.1."""

pytest_plugins = [
    "tests.fixtures.chain",
    "tests.fixtures.ipfs",
]
