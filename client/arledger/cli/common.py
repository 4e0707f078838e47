"""What every command line of the project shares (``artrain``, ``arverify``, plugins):
the error mapping, the shared options and the output helper. Public, so the CLIs of the
layers above import it instead of copying it; click lives here and in the command
modules, never below the CLI layer.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable

import click

from arledger.chain.units import parse_amount
from arledger.errors import ArledgerError
from arledger.execution import isolation
from arstore import open_store as _open
from arstore.errors import StoreError


class Group(click.Group):
    """A click group that turns library errors into one clear line (exit 1): the one place
    where ``ArledgerError`` and ``arstore.StoreError`` become ``ClickException``."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except (ArledgerError, StoreError) as exc:  # a sentence that names the thing, not the class
            raise click.ClickException(str(exc)) from exc


CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


def emit(data: Any, as_json: bool, human: Callable[[Any], Iterable[str]]) -> None:
    """``data`` as one JSON line (``--json``), else the lines ``human(data)`` makes of it."""
    if as_json:
        click.echo(json.dumps(data, sort_keys=True, default=str))
    else:
        for line in human(data):
            click.echo(line)


def say_isolation(iso: isolation.Isolation = isolation.Isolation()) -> None:
    """Every command that runs code it did not write says how, when it is less than the full
    sandbox (``--no-sandbox``, or the rlimit backend where bubblewrap cannot run)."""
    line = isolation.notice(iso)
    if line:
        click.echo(line, err=True)


def amount(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """click callback: ``1eth`` / ``0.5 ether`` / ``100gwei`` / wei -> wei (None stays None)."""
    return None if value is None else parse_amount(value, param.name)


store_option = click.option("--store", "store_spec", help="Artifact store: embedded:/path or http://host:5001 "
                            "[env ARLEDGER_IPFS, else $ARLEDGER_HOME/store].")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def open_store(spec: str | None):
    return _open(spec)


_READ_OPTIONS = [
    click.option("--rpc-url", envvar=None, help="JSON-RPC endpoint [env ARLEDGER_RPC_URL, else deployment file]"),
    click.option("--ledger", "ledger_address", help="ledger contract address [env ARLEDGER_LEDGER, else deployment file]"),
]


def read_options(fn: Callable) -> Callable:
    """--rpc-url --ledger for a command that only reads the chain and never signs (the dashboard)."""
    for opt in reversed(_READ_OPTIONS):
        fn = opt(fn)
    return fn


def chain_options(fn: Callable) -> Callable:
    """--rpc-url --ledger --key --keystore --dev-account for every command that talks to the chain."""
    opts = [
        *_READ_OPTIONS,
        click.option("--key", help="private key (prefer the env var ARLEDGER_KEY: flags show up in `ps`)"),
        click.option("--keystore", type=click.Path(dir_okay=False),
                     help="encrypted keystore JSON [env ARLEDGER_KEYSTORE; password: ARLEDGER_KEYSTORE_PASSWORD or prompt]"),
        click.option("--dev-account", type=int, default=None, help="use devnet dev account N (local devnet only)"),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def context_from(kwargs: dict, need_account: bool = True):
    """Pop the chain options from a command's kwargs and load the context (arledger.chain.config)."""
    from arledger.chain.config import load_context  # lazy: the ABI codec and the signer only for chain commands
    return load_context(rpc_url=kwargs.pop("rpc_url", None), ledger=kwargs.pop("ledger_address", None),
                        key=kwargs.pop("key", None), keystore=kwargs.pop("keystore", None),
                        dev_account=kwargs.pop("dev_account", None), need_account=need_account)


def span(seconds: int) -> str:
    """A span of chain time as a reader takes it in: seconds, minutes, then hours."""
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"
