"""The README's main command, as a user runs it: `artrain demo` with its defaults.

Run from a fresh working directory with the default relative --out (a relative path
once made every replay fail in the workers' own cwd and honest claims got slashed).
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from arledger.cli import main


def test_demo_catches_the_cheater_and_pays_the_honest_trainer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARLEDGER_HOME", str(tmp_path / "home"))
    res = CliRunner().invoke(main, ["demo", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    states = {c["trainer_name"]: c["state"] for c in out["claims"]}
    assert states == {"alice": "Accepted", "mallory": "Rejected"}
    alice = next(c for c in out["claims"] if c["trainer_name"] == "alice")
    assert out["best"]["claim_id"] == alice["claim_id"]
    assert out["best"]["loss"] < out["best"]["baseline_loss"]
    paid = {a["name"]: a["withdrawn_eth"] for a in out["actors"]}
    assert paid["alice"] > 1.0 and paid["mallory"] == 0.0  # reward + stake back; stake slashed
    assert any(d["decision"] == "challenge" for d in out["decisions"])
    assert Path(out["chart"]).is_file() and Path("demo-out/summary.json").is_file()
    assert not (tmp_path / "home").exists()  # the demo touches no user state
