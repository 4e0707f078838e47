"""`artrain`: the trainer's command line (a thin click layer over arledger).

Every subcommand lives in its own module, listed in ``arledger.cli.commands`` and
imported only when it runs. Errors are mapped to one-line ``ClickException`` messages by
``arledger.cli.common.Group``.
"""

from __future__ import annotations

import click

from arledger.cli.commands import LazyGroup
from arledger.cli.common import CONTEXT_SETTINGS
from arledger.execution import kernels


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="autoresearch-ledger")
def main() -> None:
    """artrain: train in deterministic segments, pin artifacts, and claim results on chain.

    \b
    Examples:
      artrain devnet up --json          # local chain with the ledger deployed
      artrain run client/arledger/templates/charlm --steps 200 --segment-steps 50 --seed 1 --out runs/a
      artrain replay runs/a --segment 2 # re-run one segment in a fresh process
    """
    kernels.preset_default()  # before any command computes anything: the default kernel pin

