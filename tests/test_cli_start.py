"""`artrain` and `arverify` start fast: a command's `--help` imports nothing heavy (its module
imports what the command runs when it runs), a command that reads the chain imports no torch
and no web3 (tests/test_first_hour.py runs them), and the help listed for a command not
imported is the help that command prints once imported (issue 22)."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import click.testing
import pytest

from arledger.cli import main
from arledger.cli.commands import entries, load, short_help
from arledger.cli.task_cmds import SUBCOMMANDS

HEAVY = ("torch", "web3", "eth_account", "openai", "matplotlib")


def imported_after(runs: list[list[str]], cli: str = "arledger.cli") -> list[list[str]]:
    """The heavy packages one fresh interpreter had imported after each ``CLI ARGS`` of ``runs``,
    run in turn (cumulative: what the first imported counts for the later ones too)."""
    code = (f"import json, sys\nfrom {cli} import main\nfor args in json.loads(sys.argv[1]):\n"
            "    try:\n        main(args, standalone_mode=False)\n    except SystemExit:\n        pass\n"
            f"    print('HEAVY', json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(runs)], capture_output=True, text=True, check=True)
    return [json.loads(line[len("HEAVY "):]) for line in out.stdout.splitlines() if line.startswith("HEAVY ")]


def _helps(group: click.Group, prefix: list[str]) -> list[list[str]]:
    """``--help`` of ``group`` and of every command under it, loading each group to list its commands."""
    out = [[*prefix, "--help"]]
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        out += _helps(cmd, [*prefix, name]) if isinstance(cmd, click.Group) else [[*prefix, name, "--help"]]
    return out


@pytest.mark.parametrize("cli", ["arledger.cli", "arverifier.cli"])
def test_no_help_imports_anything_heavy(cli):
    group = main if cli == "arledger.cli" else __import__(cli, fromlist=["main"]).main
    runs = _helps(group, [])
    assert len(runs) > (15 if cli == "arledger.cli" else 5)
    after = imported_after(runs, cli)
    assert len(after) == len(runs)
    first = next((i for i, heavy in enumerate(after) if heavy), None)
    assert first is None, f"{cli} {' '.join(runs[first])} imported {after[first]}"


def test_the_listing_names_every_command_without_loading_it():
    out = click.testing.CliRunner().invoke(main, ["--help"])
    assert out.exit_code == 0, out.output
    listed = [line.split()[0] for line in out.output.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == sorted(e.name for e in entries())
    assert "demo" in listed  # the plugin of the layer above, listed by its entry point


@pytest.mark.parametrize("limit", [30, 60, 200])
def test_help_read_from_source_is_the_loaded_commands_help(limit):
    for e in entries() + SUBCOMMANDS:
        cmd = load(e)
        assert cmd.name == e.name, f"{e.module}:{e.attr} is the command {cmd.name!r}, listed as {e.name!r}"
        assert short_help(e, limit) == cmd.get_short_help_str(limit), e.name


def test_a_command_is_loaded_when_it_runs():
    out = click.testing.CliRunner().invoke(main, ["task", "create", "--help"])
    assert out.exit_code == 0 and "artrain task create --template charlm" in out.output
