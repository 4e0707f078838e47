"""`artrain` starts fast: its listing imports no command module, a command that only reads the
chain imports no torch, and the help listed for a command not imported is the help that command
prints once imported (issue 22)."""

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
CHAIN = ["web3", "eth_account"]
# What reads the chain and does not train: its help, and so its module, imports no torch.
READERS = [["task", "--help"], ["devnet", "--help"], ["status", "--help"], ["claims", "--help"], ["best", "--help"],
           ["withdraw", "--help"], ["task", "show", "--help"], ["dashboard", "--help"], ["ledger", "--help"]]


def _imported_after(*runs: list[str]) -> list[list[str]]:
    """The heavy packages one fresh interpreter had imported after each ``artrain ARGS`` of ``runs``,
    run in turn (cumulative: what the first imported counts for the later ones too)."""
    code = ("import json, sys\nfrom arledger.cli import main\nfor args in json.loads(sys.argv[1]):\n"
            "    try:\n        main(args, standalone_mode=False)\n    except SystemExit:\n        pass\n"
            f"    print('HEAVY', json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(runs)], capture_output=True, text=True, check=True)
    return [json.loads(line[len("HEAVY "):]) for line in out.stdout.splitlines() if line.startswith("HEAVY ")]


def test_the_listing_imports_nothing_heavy_and_the_chain_readers_no_torch():
    after = _imported_after(["--help"], *READERS)
    assert after[0] == [], "artrain --help"
    assert after[-1] == CHAIN, "the chain readers' modules"


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
