"""The README's main command, as a user runs it: `artrain demo` with its defaults, and
`artrain demo --agents`.

The demo runs once per session (tests/fixtures/demo.py), from a fresh working directory
with the default relative --out (a relative path once made every replay fail in the
workers' own cwd and honest claims got slashed); the dashboard's browser tests read the
chain it saved.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from arledger.cli import main


def test_demo_catches_the_cheater_and_pays_the_honest_trainer(demo_run):
    out = demo_run.summary
    states = {c["trainer_name"]: c["state"] for c in out["claims"]}
    assert states == {"alice": "Accepted", "mallory": "Rejected", "eve": "Accepted"}
    alice, mallory, eve = (next(c for c in out["claims"] if c["trainer_name"] == n) for n in ("alice", "mallory", "eve"))
    assert out["best"]["claim_id"] == alice["claim_id"]
    # the cheater's story is true: her forged segment is what makes her claim beat alice's
    assert mallory["claimed_loss"] < alice["claimed_loss"] and mallory["public_loss"] < alice["public_loss"]
    [challenge] = [d for d in out["decisions"] if d["decision"] == "challenge"]
    assert challenge["challenge"]["segment"] == 7 and challenge["challenge"]["claimed"] != challenge["challenge"]["observed"]
    # the memoriser: far ahead on the public split it carries in its code, behind on the sealed shard
    assert eve["public_loss"] < alice["public_loss"] / 2 and eve["claimed_loss"] > alice["claimed_loss"]
    assert eve["improved"] is False and eve["reward"] == 0
    assert out["best"]["loss"] < out["best"]["baseline_loss"]
    paid = {a["name"]: a["withdrawn_eth"] for a in out["actors"]}
    assert paid["alice"] > 1.0 and paid["mallory"] == 0.0  # reward + stake back; stake slashed
    assert paid["eve"] < 0.1  # her stake back less the verifiers' fees: nothing earned
    assert Path(out["chart"]).is_file() and (demo_run.out / "summary.json").is_file()
    assert (demo_run.out / "chain-state.json").is_file()  # kept for `artrain dashboard --demo`
    assert not demo_run.home.exists()  # the demo touches no user state


def test_agents_demo_climbs_with_verified_claims_and_ends_with_its_chart(tmp_path, monkeypatch):
    """`artrain demo --agents`, small: 2 agent processes, 1 round, a 25-step charlm task (one segment)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARLEDGER_HOME", str(tmp_path / "home"))
    res = CliRunner().invoke(main, ["demo", "--agents", "2", "--rounds", "1", "--steps", "25", "--segment-steps", "25",
                                    "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    exps = out["experiments"]
    assert sorted(e["agent"] for e in exps) == ["agent1", "agent2"]
    assert len({e["code_cid"] for e in exps}) == 2  # the two agents never trained one experiment twice
    accepted = [e for e in exps if e["state"] == "Accepted"]
    assert accepted and out["best"]["claim_id"] in {e["claim_id"] for e in accepted}
    assert out["best"]["loss"] < out["best"]["baseline_loss"]
    assert Path(out["chart"]).is_file() and Path("agents-out/summary.json").is_file()
    assert Path("agents-out/agents/agent1/NOTEBOOK.md").is_file()
    assert not (tmp_path / "home").exists()  # the agents' ARLEDGER_HOME is inside --out
