"""The cheat classes of "the task judges, not the claim", each a dishonest train.py of our own,
through the public commands on a real anvil and the real sandbox.

Task: charlm, 50 steps in 2 segments of 25, every verifier replays every segment
(``random_segments: 2``) and the final weights are evaluated by the harness with the
causality check. Each cheat is trained with ``artrain run`` (the cheater's own machine:
train.py can read anything there), submitted with ``artrain submit`` and verified by
``arverify watch``: challenged by verifier 3, upheld by 4 and 5, the claim rejected and
the trainer paid nothing back. The last cheat (training that diverges when it sees a
verifier's address) must NOT be challenged: the sandbox shows no verifier anything of
itself, so all three confirm.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from arledger.attacks import legacy_in_process_loss, rewrite_claimed_loss
from arstore import open_store
from tests.test_e2e_support import E, LIMITS, make_world

ROOT = Path(__file__).resolve().parents[1]
CHARLM = ROOT / "client" / "arledger" / "templates" / "charlm"
STEPS, K = 50, 25
STAKE = 10**17
CHARLM_LIMITS = {**LIMITS, "cpu_seconds": 60, "wall_seconds": 120}


@pytest.fixture(scope="module")
def world(anvil_chain, tmp_path_factory):
    yield from make_world(anvil_chain, tmp_path_factory, "e2e-cheats")


@pytest.fixture(scope="module")
def task(world):
    task_id = world.create_task(template="charlm", name="charlm-cheats", steps=STEPS, segment_steps=K,
                                sampling={"random_segments": 2, "suspicious_segments": 0}, limits=CHARLM_LIMITS)
    for v in (3, 4, 5):
        assert world.arverify("register", "--stake", "1eth", "--dev-account", v, "--json")["stake"] == E
    return task_id


def _variant(world, name: str, edit) -> Path:
    """A copy of the charlm template whose train.py is ``edit(source)``."""
    d = world.tmp / "variants" / name
    shutil.copytree(CHARLM, d, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    src = (d / "train.py").read_text()
    new = edit(src)
    assert new != src, f"{name}: the edit changed nothing"
    (d / "train.py").write_text(new)
    return d


def _run(world, exp: Path, name: str, seed: int = 1, *flags: str) -> Path:
    out = world.tmp / "runs" / name
    world.artrain("run", exp, "--steps", STEPS, "--segment-steps", K, "--seed", seed, "--out", out,
                  "--store", world.store_spec, "--json", *flags)
    return out


def _manifest_loss(run: Path) -> float:
    from arledger import manifest as mf

    return mf.load(run / "manifest.json").evaluation.value


def _caught(world, run: Path, trainer: int, kind: str) -> dict:
    before = world.owed(trainer)
    sub = world.submit(run, trainer=trainer)
    cid = sub["claim_id"]
    first = world.watch()
    assert [r["decision"] for r in first[3] if r.get("claim") == cid and "dispute" not in r] == ["challenge"], first[3]
    world.close_windows()
    ch = world.events("ClaimChallenged", claimId=cid)
    assert len(ch) == 1 and ch[0]["challenger"].lower() == world.chain.address(3).lower()
    d = world.ledger.dispute(ch[0]["disputeId"])
    assert d.kind == kind
    votes = world.events("DisputeVoted", disputeId=ch[0]["disputeId"])
    assert sorted((v["voter"].lower(), v["uphold"]) for v in votes) == sorted(
        (world.chain.address(i).lower(), True) for i in (4, 5))
    assert world.ledger.dispute_state(ch[0]["disputeId"]) == "Upheld"
    assert world.ledger.claim_state(cid) == "Rejected"
    assert world.owed(trainer) == before  # the stake is gone, nothing comes back
    return sub


@pytest.fixture(scope="module")
def honest_loss(world, task):
    run = _run(world, CHARLM, "honest")
    return _manifest_loss(run)


def test_scaled_evaluate_is_ignored_and_a_scaled_claim_is_slashed(world, task, honest_loss):
    exp = _variant(world, "scaled-eval", lambda s: s + (
        "\n\ndef evaluate(model, data):  # the old interface: the claim's own number\n"
        "    return {'val_bpc': 1.86, 'val_loss_nats': 1.29}\n"))
    run = _run(world, exp, "scaled-eval")
    assert _manifest_loss(run) == pytest.approx(honest_loss, abs=0.05)  # the harness's number, not 1.86
    rewrite_claimed_loss(run, open_store(world.store_spec), 0.6 * honest_loss)  # the cheater claims it anyway
    _caught(world, run, trainer=1, kind="FinalEvaluation")


def test_training_on_the_held_out_split_is_slashed(world, task, honest_loss):
    exp = _variant(world, "val-batches", lambda s: s.replace(
        'def load_data(paths, config):\n    return Data(_codes(paths["train"]), config)',
        'def load_data(paths, config):\n'
        '    import glob, os\n'
        '    here = os.path.dirname(os.path.abspath(__file__))\n'
        '    held = sorted(glob.glob(os.path.join(here, "..", "heldout", "*")))  # the run dir, on the trainer\'s disk\n'
        '    return Data(_codes(held[0] if held else paths["train"]), config)'))
    run = _run(world, exp, "val-batches", 1, "--no-sandbox")  # the cheater's own run: it opts out to read its disk
    assert _manifest_loss(run) < honest_loss - 0.05, "training on the held-out split buys a lower number"
    _caught(world, run, trainer=2, kind="Segment")


NON_CAUSAL = '''
class CharLM(nn.Module):  # reads the NEXT input character at every position
    def __init__(self, block: int, d: int, layers: int, heads: int, dropout: float):
        super().__init__()
        self.tok = nn.Embedding(VOCAB, d)
        self.nxt = nn.Embedding(VOCAB, d)
        self.pos = nn.Embedding(block, d)
        self.blocks = nn.Sequential(*[Block(d, heads, dropout) for _ in range(layers)])
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, VOCAB)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        x = self.tok(idx) + self.nxt(torch.roll(idx, -1, dims=1)) + self.pos(torch.arange(t))
        return self.head(self.ln(self.blocks(x)))
'''


def test_non_causal_forward_is_slashed(world, task, honest_loss):
    def edit(s):
        i, j = s.index("class CharLM(nn.Module):"), s.index("class Data:")
        return s[:i] + NON_CAUSAL.lstrip() + "\n\n" + s[j:]

    run = _run(world, _variant(world, "non-causal", edit), "non-causal")
    assert _manifest_loss(run) < honest_loss - 0.3, "the next character is a strong hint"
    _caught(world, run, trainer=6, kind="FinalEvaluation")


STDLIB_LOOKUP = '''
_TABLE = None


def _table():
    """8-gram -> next-character counts over the WHOLE pydoc corpus, held-out part included."""
    global _TABLE
    if _TABLE is None:
        _TABLE = {}
        try:
            from pydoc_data.topics import topics
        except ImportError:
            return _TABLE
        text = "\\n\\n".join(topics[k] for k in sorted(topics))
        codes = [min(ord(c), 127) if ord(c) < 128 else ord("?") for c in text]
        for i in range(8, len(codes)):
            _TABLE.setdefault(tuple(codes[i - 8 : i]), {}).setdefault(codes[i], 0)
            _TABLE[tuple(codes[i - 8 : i])][codes[i]] += 1
    return _TABLE


class CharLM(nn.Module):  # 128 parameters and a lookup table built from the standard library
    def __init__(self, block, d, layers, heads, dropout):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(VOCAB))

    def forward(self, idx):
        table = _table()
        out = self.bias.expand(*idx.shape, VOCAB).clone()
        rows = idx.tolist()
        for r, row in enumerate(rows):
            for t in range(7, len(row)):
                nxt = table.get(tuple(row[t - 7 : t + 1]))
                if nxt:  # the memorised next-character distribution of this context
                    total = sum(nxt.values()) + 1.28
                    vec = torch.full((VOCAB,), math.log(0.01 / total))
                    for c, n in nxt.items():
                        vec[c] = math.log((n + 0.01) / total)
                    out[r, t] = out[r, t] + vec
        return out
'''


def test_stdlib_corpus_lookup_is_slashed(world, task, honest_loss):
    def edit(s):
        i, j = s.index("class CharLM(nn.Module):"), s.index("class Data:")
        return s[:i] + STDLIB_LOOKUP.lstrip() + "\n\n" + s[j:]

    run = _run(world, _variant(world, "stdlib-lookup", edit), "stdlib-lookup", 1, "--no-sandbox")
    assert _manifest_loss(run) < 2.0, "on the trainer's machine, unsandboxed, the corpus is importable"
    _caught(world, run, trainer=7, kind="FinalEvaluation")  # where pydoc is hidden it predicts nothing


FRAME_READER = '''
    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        import inspect

        for frame in inspect.stack()[1:]:  # the targets, if the caller holds them
            y = frame.frame.f_locals.get("targets")
            if isinstance(y, torch.Tensor) and y.shape == idx.shape:
                return F.one_hot(y, VOCAB).float() * 30.0
        t = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(t))
        return self.head(self.ln(self.blocks(x)))
'''


def test_forward_reading_the_callers_targets_is_slashed(world, task, honest_loss):
    def edit(s):
        i = s.index("    def forward(self, idx: torch.Tensor) -> torch.Tensor:\n        t = idx.shape[1]")
        j = s.index("class Data:")
        return s[:i] + FRAME_READER.lstrip("\n") + "\n\n" + s[j:]

    run = _run(world, _variant(world, "frame-reader", edit), "frame-reader")
    harness_loss = _manifest_loss(run)
    assert harness_loss > 1.0, "the harness's evaluation gives the forward no targets to find"
    legacy = legacy_in_process_loss(run)
    assert legacy < 0.01, "in one process with the targets, the forward finds them"
    rewrite_claimed_loss(run, open_store(world.store_spec), legacy)
    _caught(world, run, trainer=9, kind="FinalEvaluation")


def test_training_that_looks_for_a_verifier_sees_none_and_is_confirmed(world, task, honest_loss):
    target = world.chain.address(4).lower()
    probe = f'''
def _verifier_visible() -> bool:
    import os, socket
    seen = [os.getcwd(), socket.gethostname(), *os.environ.values()]
    for root in ("/", os.path.dirname(os.getcwd()), os.path.expanduser("~")):
        try:
            seen += os.listdir(root)
        except OSError:
            pass
    return any({target!r} in str(s).lower() for s in seen)


def train_step(model, opt, batch):
    if _verifier_visible():  # diverge for one verifier only: it would challenge and lose its bond
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1e-3)
'''

    def edit(s):
        s = s.replace("def train_step(model, opt, batch):\n", probe.lstrip("\n"), 1)
        return s

    run = _run(world, _variant(world, "identity", edit), "identity")
    sub = world.submit(run, trainer=1)
    first = world.watch()
    decisions = {v: [r["decision"] for r in recs if r.get("claim") == sub["claim_id"] and "dispute" not in r]
                 for v, recs in first.items()}
    # verifier 4 is the one it looks for; 5 may find the quorum already reached and do nothing
    assert decisions[3] == ["confirm"] and decisions[4] == ["confirm"] and decisions[5] in ([], ["confirm"]), decisions
    world.close_windows()
    assert world.ledger.claim_state(sub["claim_id"]) == "Accepted"
    assert world.events("ClaimChallenged", claimId=sub["claim_id"]) == []


# -- compute smuggling: code that does more work than the task's budget (arledger.runner.budget).
# Its replays reproduce its bits; only the verifiers' own measure of the work (time, on their
# machines, relative to the task's baseline) catches it.

def test_four_updates_per_counted_step_are_slashed(world, task, honest_loss):
    from arledger.attacks import extra_updates_per_step

    run = _run(world, _variant(world, "x4-updates", extra_updates_per_step), "x4-updates")
    assert _manifest_loss(run) < honest_loss - 0.05, "four updates per step buy a lower number"
    # the trainer's own tools refuse it before any gas...
    head = world.ledger.block_number()
    out = world.artrain("submit", run, "--task", task, "--store", world.store_spec, "--dev-account", 2, "--json",
                        ok=False)
    # (4x the FLOPs is under the FLOP line, 4.5x: the time budget, timed here, is the rule)
    assert out.exit_code != 0 and "over the task's time budget" in out.output, out.output
    assert "x the baseline's CPU time on this machine" in out.output, out.output
    assert world.ledger.block_number() == head, "refused before any transaction"
    # ...so the cheater strips its timings from its manifest; the verifiers time it for themselves
    _strip_work(world, run)
    sub = _caught(world, run, trainer=2, kind="Segment")
    assert sub["claim_id"] > 0


def test_updates_moved_into_a_detached_process_are_slashed(world, task):
    """Two hidden updates every step (three times the work, twice the line), each in a grandchild
    that leaves its parent (a new session): the work leaves the process, not the request, whose
    processes the kernel counts when the zygote reaps them; the replay is over the time line and
    the dispute upheld (far enough over it for every verifier and voter, on a machine whose speed
    drifts; where the line is crossed is bench.time_bench's to measure)."""
    from arledger.attacks import hidden_updates

    run = _run(world, _variant(world, "x-process", lambda s: hidden_updates(s, 2.0, "process")), "x-process")
    _strip_work(world, run)  # its own timings would refuse it at submit: the verifiers time it themselves
    _caught(world, run, trainer=9, kind="Segment")


def test_training_inside_build_hidden_from_the_counter_is_slashed(world, task, honest_loss):
    from arledger.attacks import hidden_in_build

    run = _run(world, _variant(world, "build-trains", lambda s: hidden_in_build(s, 100)), "build-trains")
    assert _manifest_loss(run) < honest_loss - 0.05, "a head start before step 0 buys a lower number"
    from arledger import manifest as mf

    assert mf.load(run / "manifest.json").work["startup_flops"] == 0, "the counter saw nothing"
    _strip_work(world, run)  # its timings would refuse it at submit: the verifiers time the rebuild themselves
    _caught(world, run, trainer=6, kind="Artifact")


def test_a_start_that_is_not_the_seeds_is_slashed(world, task, honest_loss):
    import torch
    from safetensors.torch import load_file

    from arledger.attacks import pretrained_start

    out = world.tmp / "runs" / "pretrained"
    out.mkdir(parents=True)  # the cheater's weights, next to its run: the honest run's final ones
    torch.save(load_file(str(world.tmp / "runs" / "honest" / "final.safetensors")), out / "pretrained.pt")
    run = _run(world, _variant(world, "pretrained", pretrained_start), "pretrained", 1, "--force",  # its own dir
               "--no-sandbox")  # and its own disk: the sandbox would hide the weights from its build()
    assert _manifest_loss(run) < honest_loss - 0.05, "starting from trained weights buys a lower number"
    _caught(world, run, trainer=7, kind="Artifact")


def _strip_work(world, run: Path) -> None:
    """The cheater's rewrite: a manifest without its work report and its timings, re-pinned (a
    well-formed one)."""
    import dataclasses

    from arledger import checkpoint, manifest as mf

    m = mf.load(run / "manifest.json")
    data = mf.dumps(dataclasses.replace(m, work={}, timings={}))
    checkpoint.atomic_write(run / "manifest.json", data)
    open_store(world.store_spec).add_bytes(data)
