"""The list of `artrain` subcommands, each in its own module, loaded only when used.

Commands of the layers above (``artrain demo``, from ``ardemo``) arrive as plugins: a
package registers a click command under the ``artrain.commands`` entry-point group
(pyproject.toml) and it is added here by name, so this layer never imports the layers
that compose it.

Why lazy: the command modules import click, rich and the chain layer, and the library a
command runs imports torch (2 s on a 2-core machine); ``artrain --help`` needs none of them. ``LazyGroup`` imports a
command's module when the command runs (or its own ``--help`` is asked for); the
group's listing reads each command's one-line help from its module's source instead
(``short_help``), so the list costs a parse, not an import.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import inspect
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Callable

import click

from arledger.cli.common import Group

PLUGIN_GROUP = "artrain.commands"


@dataclass(frozen=True)
class Entry:
    """Where a command lives: ``module``'s attribute ``attr`` is the click command ``name``;
    ``plugin``: from another package (a plugin that does not load is skipped, with a warning)."""
    name: str
    module: str
    attr: str
    plugin: bool = False


_COMMANDS = [
    Entry("devnet", "arledger.cli.devnet_cmd", "devnet"),
    Entry("run", "arledger.cli.run_cmd", "run"),
    Entry("replay", "arledger.cli.run_cmd", "replay"),
    Entry("task", "arledger.cli.task_cmds", "task"),
    Entry("submit", "arledger.cli.submit_cmds", "submit"),
    Entry("best", "arledger.cli.ledger_cmds", "best"),
    Entry("status", "arledger.cli.ledger_cmds", "status"),
    Entry("claims", "arledger.cli.ledger_cmds", "claims"),
    Entry("report", "arledger.cli.submit_cmds", "report"),
    Entry("withdraw", "arledger.cli.ledger_cmds", "withdraw"),
    Entry("ledger", "arledger.cli.ledger_cmds", "ledger"),
    Entry("agent", "arledger.cli.agent_cmd", "agent"),
    Entry("alias", "arledger.cli.alias_cmd", "alias"),
    Entry("dashboard", "arledger.cli.dashboard_cmd", "dashboard"),
]


def entries() -> list[Entry]:
    """Every command: artrain's own, then the plugins (sorted by name), none loaded. A plugin
    named like one of artrain's own is left out with a warning."""
    taken = {e.name for e in _COMMANDS}
    plugins = [Entry(ep.name, ep.module, ep.attr, plugin=True)
               for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda ep: ep.name)]
    return _COMMANDS + [e for e in plugins if _not_taken(e.name, taken)]


def load(entry: Entry) -> click.Command:
    return getattr(importlib.import_module(entry.module), entry.attr)


def all_commands() -> list[click.Command]:
    """Every command, loaded (tests; what ``artrain`` imports one at a time)."""
    return [load(e) for e in _COMMANDS] + plugin_commands()


def plugin_commands() -> list[click.Command]:
    """The commands other installed packages register for ``artrain`` (sorted by name).
    A plugin that fails to load is skipped with a warning: one broken package must not
    take every ``artrain`` command down with it."""
    out = []
    for e in entries()[len(_COMMANDS):]:
        cmd = _load_plugin(e)
        if cmd is not None:
            out.append(cmd)
    return out


def _load_plugin(e: Entry) -> click.Command | None:
    try:
        return load(e)
    except Exception as exc:  # an uninstalled or broken plugin package
        warnings.warn(f"artrain: plugin command {e.name!r} ({e.module}:{e.attr}) did not load: {exc}", stacklevel=3)
        return None


def _not_taken(name: str, taken: set) -> bool:
    if name in taken:
        warnings.warn(f"artrain: plugin command {name!r} ignored: artrain has its own", stacklevel=2)
        return False
    taken.add(name)
    return True


def short_help(entry: Entry, limit: int) -> str:
    """The command's one-line help as click would print it, read from its module's source:
    the decorator's ``short_help=``, else the start of the docstring ("" if unreadable)."""
    try:
        spec = importlib.util.find_spec(entry.module)
        tree = ast.parse(open(spec.origin, encoding="utf-8").read())
    except (ImportError, OSError, SyntaxError, TypeError, AttributeError):
        return ""
    aliases = {t.id: node.value.id for node in tree.body if isinstance(node, ast.Assign)
               and isinstance(node.value, ast.Name) for t in node.targets if isinstance(t, ast.Name)}
    attr = aliases.get(entry.attr, entry.attr)  # ``devnet = devnet_group``
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == attr:
            for dec in node.decorator_list:
                for kw in getattr(dec, "keywords", ()):
                    if kw.arg == "short_help" and isinstance(kw.value, ast.Constant):
                        return inspect.cleandoc(kw.value.value)
            return click.Command(entry.name, help=ast.get_docstring(node) or "").get_short_help_str(limit)
    return ""


class LazyGroup(Group):
    """A group whose commands are imported on first use (see the module's docstring): ``artrain``
    itself, and ``artrain task``. ``lazy`` returns its entries [default: ``artrain``'s]."""

    def __init__(self, *args, lazy: Callable[[], list[Entry]] = entries, **kwargs):
        super().__init__(*args, **kwargs)
        self._lazy = lazy

    @functools.cached_property
    def _entries(self) -> dict[str, Entry]:
        return {e.name: e for e in self._lazy()}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(self._entries))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in self._entries:
            e = self._entries[name]
            cmd = _load_plugin(e) if e.plugin else load(e)
            if cmd is None:
                return None
            self.add_command(cmd, name)
        return self.commands.get(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing, with the help of commands not loaded read from their source."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            cmd = self.commands.get(name)
            if cmd is not None and cmd.hidden:
                continue
            rows.append((name, cmd.get_short_help_str(limit) if cmd else short_help(self._entries[name], limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)
