"""`artrain`: the trainer's command line (a thin click layer over arledger).

Every subcommand lives in its own module and is registered below. Errors are mapped
to one-line ``ClickException`` messages here and only here.
"""

from __future__ import annotations

import functools
import sys

import click

from arledger.errors import ArledgerError


class _Group(click.Group):
    """A click group that turns library errors into one clear line (exit 1)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except ArledgerError as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # store errors live one layer down
            from arstore.errors import StoreError

            if isinstance(exc, StoreError):
                raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
            raise


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="autoresearch-ledger")
def main() -> None:
    """artrain: train in deterministic segments, pin artifacts, and claim results on chain.

    \b
    Examples:
      artrain devnet up --json          # local chain with the ledger deployed
      artrain run client/arledger/templates/charlm --steps 200 --segment-steps 50 --seed 1 --out runs/a
      artrain replay runs/a --segment 2 # re-run one segment in a fresh process
    """
    from arledger.runner import kernels

    kernels.preset_default()  # before any command computes anything: the default kernel pin


def _register() -> None:
    from arledger.cli import commands

    for cmd in commands.all_commands():
        main.add_command(cmd)


_register()
