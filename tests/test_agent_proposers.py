"""The agent's proposers without a chain: the search proposer's choices, the llm proposer against
a real local chat-completions server (tests/llm_server.py, the only stand-in: no language model
is reachable here), the checks that refuse a proposal before training, the notebook."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest

from arledger.agent import checks
from arledger.agent.llm import LLMProposer, LLMSettings, parse_reply
from arledger.agent.notebook import Notebook
from arledger.agent.proposal import Code, ExperimentRecord, ProposalContext, Refusal, tag_line
from arledger.agent.search import SearchProposer
from arledger.errors import ProposalError
from arledger.execution import isolation
from tests.llm_server import ChatServer

ROOT = Path(__file__).resolve().parents[1]
CHARLM = ROOT / "client" / "arledger" / "templates" / "charlm"
DIGITS = ROOT / "client" / "arledger" / "templates" / "digits"
SANDBOX = isolation.executor(isolation.Isolation.of())  # the checks run the proposal where the agent does


def context(base: Code, history=(), tried=None, agent="0x" + "11" * 20, **over) -> ProposalContext:
    d = dict(task_id=1, metric="val_bpc", units="bits", base=base, base_ref="baseline", base_loss_micro=3_000_000,
             best_loss_micro=3_000_000, min_improvement_micro=1000, steps=400, segment_steps=25,
             budget={"max_code_bytes": 262144}, history=list(history), tried=dict(tried or {}), iteration=1, seed=0,
             agent=agent)
    d.update(over)
    return ProposalContext(**d)


def record(move_dir: str, beat: bool, cid: str = "bafyx") -> ExperimentRecord:
    tag = {"direction": move_dir, "parent_loss_micro": 2_000_000, "min_improvement_micro": 1000}
    return ExperimentRecord("report", "report @ block 1", "0xabc", cid, 1_900_000 if beat else 2_100_000,
                            "Reported", notes=tag_line(tag))


# -- search ---------------------------------------------------------------------------------


def test_search_is_deterministic_given_seed_and_account_and_skips_recorded_code():
    base = Code.from_dir(CHARLM)
    a = SearchProposer(seed=3).propose(context(base), [])
    assert SearchProposer(seed=3).propose(context(base), []) == a  # same seed, account, history
    again = SearchProposer(seed=3).propose(context(base, tried={a.code.cid: "claim 9"}), [])
    assert again.code.cid != a.code.cid  # a recorded experiment is never proposed
    third = SearchProposer(seed=3).propose(context(base), [Refusal(a, "exceeds the budget")])
    assert third.code.cid != a.code.cid  # nor one refused this iteration
    assert a.hypothesis and a.move and a.code.diff(base)


def test_search_backs_off_failed_directions_and_pushes_successful_ones():
    base = Code.from_dir(CHARLM)
    plain = {m.direction: s for s, m, _ in SearchProposer(seed=0).ranked(context(base))}
    failed = {m.direction: s for s, m, _ in SearchProposer(seed=0).ranked(
        context(base, history=[record("dropout:-", False), record("dropout:-", False)]))}
    helped = {m.direction: s for s, m, _ in SearchProposer(seed=0).ranked(context(base, history=[record("layers:+", True)]))}
    assert failed["dropout:-"] == pytest.approx(plain["dropout:-"] - 3.0)
    assert helped["layers:+"] == pytest.approx(plain["layers:+"] + 1.0)
    # the schedule edit makes a train.py that still loads and keeps its counter in the optimizer
    sched = next(c for _, m, c in SearchProposer().ranked(context(base)) if m.direction == "schedule:cosine")
    assert "_agent_schedule(opt)" in sched.train_py and "import math" in sched.train_py
    compile(sched.train_py, "train.py", "exec")


def test_search_says_so_when_nothing_is_left():
    base = Code.from_dir(CHARLM)
    everything = {c.cid: "claim 1" for _, _, c in SearchProposer().ranked(context(base))}
    with pytest.raises(ProposalError, match="every move from baseline is on record"):
        SearchProposer().propose(context(base, tried=everything), [])


# -- checks ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_task(tmp_path_factory):
    """The digits training split and a TaskSpec-like budget measured on the baseline."""
    from types import SimpleNamespace

    from arledger.harness import load_harness
    from arledger.protocol import artifacts
    from arledger.runner.budget import Budget
    from arstore import EmbeddedStore

    tmp = tmp_path_factory.mktemp("digits-task")
    store = EmbeddedStore(tmp / "store")
    h = load_harness(DIGITS / "harness")
    cids = artifacts.build_datasets(h, store)
    train = artifacts.fetch_datasets({k: c for k, c in cids.items() if k in h.train_splits}, store, tmp / "data")
    budget = Budget(steps=20, segment_steps=10, flops_per_step=40_000_000, startup_flops=40_000_000, max_params=20_000,
                    max_code_bytes=8192)
    return SimpleNamespace(work_budget=budget, train=train)


@pytest.mark.parametrize("edit, reason", [
    (lambda c: Code(c.train_py.replace("def build(", "def build_model("), c.spec), "breaks the interface"),
    (lambda c: Code(c.train_py + "\ndef (:\n", c.spec), "does not load: train.py line"),
    (lambda c: Code(c.train_py + "\nundefined_name + 1\n", c.spec), "does not load: train.py: import failed (NameError"),
    (lambda c: c.with_config(width=64), "exceeds the budget: budget.max_params"),
    (lambda c: Code(c.train_py + "#" * 9000, c.spec), "budget.max_code_bytes"),
    (lambda c: Code(c.train_py.replace("return loss.item()", "return float('nan')"), c.spec), "loss of nan"),
])
def test_checks_refuse_before_training(digits_task, edit, reason):
    from arledger.agent.proposal import Proposal

    base = Code.from_dir(DIGITS)
    p = Proposal(edit(base), "h", "test")
    problems = checks.problems(p, context(base), digits_task, digits_task.train, 1, SANDBOX)
    assert problems and reason in problems[0], problems
    ok = Proposal(base.with_config(lr=0.1), "h", "test")
    assert checks.problems(ok, context(base), digits_task, digits_task.train, 1, SANDBOX) == []
    assert "repeats an experiment" in checks.problems(ok, context(base, tried={ok.code.cid: "claim 2"}),
                                                      digits_task, digits_task.train, 1, SANDBOX)[0]


# -- llm ------------------------------------------------------------------------------------


def nesterov_patch(base: Code) -> str:
    new = base.train_py.replace("momentum=config[\"momentum\"])", "momentum=config[\"momentum\"], nesterov=True)")
    assert new != base.train_py
    return "".join(difflib.unified_diff(base.train_py.splitlines(True), new.splitlines(True), "a/train.py", "b/train.py"))


def test_llm_fixed_patch_is_applied_and_the_brief_history_and_refusal_are_sent():
    base = Code.from_dir(DIGITS)
    hist = [ExperimentRecord("claim", "claim 4", "0xabc", "bafyz", 1_500_000, "Accepted", hypothesis="wider convs")]
    with ChatServer() as srv:
        srv.reply = f"HYPOTHESIS: Nesterov momentum converges faster in 20 steps.\n\n```diff\n{nesterov_patch(base)}```\n"
        llm = LLMProposer(LLMSettings(base_url=srv.url, model="test-model", timeout=5))
        p = llm.propose(context(base, history=hist), [])
        assert "nesterov=True" in p.code.train_py and p.hypothesis.startswith("Nesterov momentum")
        sent = srv.requests[-1]["body"]
        assert sent["model"] == "test-model"
        system, user = sent["messages"][0]["content"], sent["messages"][1]["content"]
        assert "exactly 400 optimizer steps" in system and "val_bpc" in system  # the brief, filled in
        assert base.train_py.strip() in user and "claim 4 [Accepted]" in user and "wider convs" in user
        llm.propose(context(base), [Refusal(p, "exceeds the budget: too big")])
        followup = srv.requests[-1]["body"]["messages"]
        assert followup[2]["role"] == "assistant" and "exceeds the budget: too big" in followup[3]["content"]


@pytest.mark.parametrize("mode, reply, message", [
    ("ok", "Sure! I would make it better.", "no 'HYPOTHESIS:' paragraph"),
    ("ok", "HYPOTHESIS: bigger.\n\n```diff\n--- a/harness.py\n+++ b/harness.py\n@@ -1 +1 @@\n-a\n+b\n```", "'harness.py'"),
    ("ok", "HYPOTHESIS: bigger.\n\n```diff\n--- a/train.py\n+++ b/train.py\n@@ -1,1 +1,1 @@\n-no such line\n+x\n```",
     "does not apply"),
    ("garbage", "", "not a chat-completions reply"),
    ("oversized", "", "more than the 262144 allowed"),
    ("slow", "", "no reply within 0.5 s"),
    ("error", "", "HTTP 500"),
])
def test_llm_bad_replies_are_one_clear_error(mode, reply, message):
    base = Code.from_dir(DIGITS)
    with ChatServer() as srv:
        srv.mode, srv.reply, srv.delay = mode, reply, 3.0
        llm = LLMProposer(LLMSettings(base_url=srv.url, model="m", timeout=0.5))
        with pytest.raises(ProposalError) as err:
            llm.propose(context(base), [])
    assert message in str(err.value) and srv.url in str(err.value)


def test_parse_reply_takes_a_whole_file_or_config_changes():
    base = Code.from_dir(DIGITS)
    code, hyp = parse_reply("HYPOTHESIS: lr up.\n```json\n{\"lr\": 0.1}\n```", base)
    assert code.config["lr"] == 0.1 and code.train_py == base.train_py and hyp == "lr up."
    code, _ = parse_reply(f"HYPOTHESIS: same file.\n```python\n{base.train_py}# more\n```", base)
    assert code.train_py.endswith("# more\n")
    with pytest.raises(ProposalError, match="no ```python"):
        parse_reply("HYPOTHESIS: nothing changes.", base)


def test_notebook_appends_once_and_renders(tmp_path):
    nb = Notebook(tmp_path)
    e = {"iteration": 1, "outcome": "report", "proposer": "search", "move": "lr x2", "base_ref": "baseline",
         "base_loss": 2.3, "best_loss": 2.3, "loss": 2.4, "hypothesis": "h", "diff": "-a\n+b\n", "refused": []}
    nb.append(e)
    nb.append(e)
    assert len(nb.entries()) == 1
    md = (tmp_path / "NOTEBOOK.md").read_text()
    assert "## Iteration 1: report" in md and "```diff" in md and "move: lr x2" in md
    with open(nb.path, "a") as f:
        f.write('{"iteration": 2, "outc')  # torn by a crash
    nb.append({**e, "iteration": 2})
    assert [x["iteration"] for x in nb.entries()] == [1, 2]
    assert json.loads(nb.path.read_text().splitlines()[-1])["iteration"] == 2


# -- the command line, before it reaches a chain -----------------------------------------------


def test_agent_cli_refuses_conflicting_or_missing_flags():
    import click
    from click.testing import CliRunner

    from arledger.cli import main
    from arledger.cli.agent_cmd import parse_duration

    assert [parse_duration(x) for x in ("90", "90s", "30m", "2h", "1.5h")] == [90, 90, 1800, 7200, 5400]
    with pytest.raises(click.BadParameter, match="not a duration"):
        parse_duration("soon")
    res = CliRunner().invoke(main, ["agent", "--task", "1", "--iterations", "2", "--until", "1h"])
    assert res.exit_code == 2 and "--iterations or --until, not both" in res.output
    res = CliRunner().invoke(main, ["agent", "--task", "1", "--proposer", "llm"], env={"ARLEDGER_LLM_URL": ""})
    assert res.exit_code == 2 and "--llm-url and --llm-model" in res.output
