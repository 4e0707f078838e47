"""The list of `artrain` subcommands; each lives in its own module.

Commands of the layers above (``artrain demo``, from ``ardemo``) arrive as plugins: a
package registers a click command under the ``artrain.commands`` entry-point group
(pyproject.toml) and it is added here by name, so this layer never imports the layers
that compose it.
"""

from __future__ import annotations

import importlib
import warnings
from importlib.metadata import entry_points

import click

PLUGIN_GROUP = "artrain.commands"

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
    ("arledger.cli.ledger_cmds", "ledger"),
    ("arledger.cli.agent_cmd", "agent"),
    ("arledger.cli.dashboard_cmd", "dashboard"),
]


def all_commands() -> list[click.Command]:
    own = [getattr(importlib.import_module(module), attr) for module, attr in _COMMANDS]
    taken = {c.name for c in own}
    return own + [c for c in plugin_commands() if _not_taken(c, taken)]


def plugin_commands() -> list[click.Command]:
    """The commands other installed packages register for ``artrain`` (sorted by name).
    A plugin that fails to load is skipped with a warning: one broken package must not
    take every ``artrain`` command down with it."""
    out = []
    for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda ep: ep.name):
        try:
            out.append(ep.load())
        except Exception as exc:  # an uninstalled or broken plugin package
            warnings.warn(f"artrain: plugin command {ep.name!r} ({ep.value}) did not load: {exc}", stacklevel=2)
    return out


def _not_taken(cmd: click.Command, taken: set) -> bool:
    if cmd.name in taken:
        warnings.warn(f"artrain: plugin command {cmd.name!r} ignored: artrain has its own", stacklevel=2)
        return False
    taken.add(cmd.name)
    return True
