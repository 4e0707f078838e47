"""The list of `artrain` subcommands; each lives in its own module."""

from __future__ import annotations

import importlib

import click

# module name -> attribute holding the click command or group
_COMMANDS = [
    ("arledger.cli.devnet_cmd", "devnet"),
    ("arledger.cli.run_cmd", "run"),
    ("arledger.cli.run_cmd", "replay"),
    ("arledger.cli.ledger_cmds", "task"),
    ("arledger.cli.ledger_cmds", "submit"),
    ("arledger.cli.ledger_cmds", "best"),
    ("arledger.cli.ledger_cmds", "status"),
    ("arledger.cli.ledger_cmds", "claims"),
    ("arledger.cli.ledger_cmds", "report"),
    ("arledger.cli.ledger_cmds", "withdraw"),
    ("arledger.cli.demo_cmd", "demo"),
]


def all_commands() -> list[click.Command]:
    return [getattr(importlib.import_module(module), attr) for module, attr in _COMMANDS]
