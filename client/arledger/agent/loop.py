"""One agent's research loop on one task, resumable at every stage.

Work directory (``AgentConfig.workdir``)::

    agent.json                 the task, ledger, chain and account it belongs to
    task/harness/, task/data/  the task's harness and training splits (fetched by CID)
    cache/code/<cid>/          code fetched by CID; cache/manifests/<cid>.json
    iterations/0001/state.json the iteration's stage, written BEFORE each effect
    iterations/0001/code/      the proposal (train.py, experiment.json)
    iterations/0001/run/       its run dir (arledger.runner) and submission.json
    notebook.jsonl, NOTEBOOK.md
    $ARLEDGER_HOME/agents/reservations/...  code CIDs this machine's agents train (agent.reservations)

Stages: ``proposing`` -> ``proposed`` (checked, saved) -> ``decided`` (submit / report /
duplicate, after training) -> ``reporting`` (a report is being sent) -> ``published``
-> ``done`` (in the notebook). Training resumes from its last checkpoint (the runner);
a submission resumes from ``submission.json`` (arledger.submit: the chain is asked
whether the commit or reveal happened); a report being sent is looked for on chain
before it is sent again. So an agent killed anywhere and started again finishes the
same iteration with no second commit and no lost or doubled report.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from arledger import manifest as mf, queries, taskspec
from arledger.agent import checks
from arledger.agent.history import read_history
from arledger.agent.notebook import Notebook
from arledger.agent.proposal import Code, Proposal, ProposalContext, Proposer, Refusal, tag_line
from arledger.agent.reservations import Reservations
from arledger.chain.deployment import arledger_home
from arledger.chain.units import loss_fields
from arledger.errors import ConfigError, ProposalError, ReplayError
from arledger.execution import isolation, kernels
from arledger.files import atomic_write
from arledger.micro import fmt, from_micro
from arledger.protocol import artifacts, replay, replay_segment, run_experiment, RunOptions
from arledger.protocol.replay import task_options
from arledger.submit import MAX_NOTE_BYTES, report_run, submit_run

PENDING = ("Open", "Disputed", "Finalizable")
StageHook = Callable[[int, str], None]  # (iteration, stage): tests stop the agent here


@dataclass
class AgentConfig:
    task_id: int
    workdir: Path
    proposer: Proposer
    seed: int = 0  # the runs' seed (the proposer has its own)
    max_tries: int = 8  # proposals checked per iteration before it ends as "refused"
    stake: int | None = None  # wei; default: the task's minimum trainer stake
    reservations: Path | None = None  # shared by this machine's agents [default: under $ARLEDGER_HOME/agents]


@dataclass
class IterationResult:
    iteration: int
    outcome: str  # "claim" | "report" | "duplicate" | "refused" | "proposer-error"
    proposer: str
    metric: str
    base_ref: str
    base_loss_micro: int
    best_loss_micro: int
    hypothesis: str = ""
    move: str | None = None
    loss_micro: int | None = None
    claim_id: int | None = None
    report_tx: str | None = None
    code_cid: str | None = None
    manifest_cid: str | None = None
    diff: str = ""
    refused: list[dict] = field(default_factory=list)
    error: str | None = None
    resumed: bool = False
    seconds: dict[str, float] = field(default_factory=dict)  # train, overhead, total

    def to_dict(self) -> dict:
        d = asdict(self)
        for name in ("base_loss", "best_loss", "loss"):
            micro = d.pop(f"{name}_micro")
            d.update(loss_fields(name, micro) if micro is not None else {name: None, f"{name}_micro": None})
        return d

    def summary(self) -> str:
        loss = f"{self.metric} {fmt(self.loss_micro, 4)}" if self.loss_micro is not None else "not trained"
        what = {"claim": f"claim {self.claim_id} submitted", "report": "report published",
                "duplicate": "not published: another agent recorded this experiment first",
                "refused": "every proposal refused", "proposer-error": "proposer failed"}[self.outcome]
        t = self.seconds
        timing = f"  (train {t.get('train', 0):.1f}s, overhead {t.get('overhead', 0):.1f}s)" if t else ""
        why = f": {self.error}" if self.error else ""
        return (f"iteration {self.iteration}: {self.move or self.proposer} on {self.base_ref} "
                f"({fmt(self.base_loss_micro, 4)}) -> {loss}, {what}{why}{' [resumed]' if self.resumed else ''}{timing}")


class Agent:
    def __init__(self, ledger: Any, store: Any, cfg: AgentConfig, *,
                 on_progress: Callable[[int, float, int, int], None] | None = None,
                 say: Callable[[str], None] = lambda _: None, on_stage: StageHook = lambda _i, _s: None):
        self.ledger, self.store, self.cfg = ledger, store, cfg
        self.on_progress, self.say, self.on_stage = on_progress, say, on_stage
        self.dir = Path(cfg.workdir)
        self.address = ledger.account_address
        self.task = ledger.task(cfg.task_id)
        self._sealed = ledger.seal(cfg.task_id).sealed
        self.spec = taskspec.fetch(store, self.task.spec_digest)
        self.notebook = Notebook(self.dir)

        self.reservations = Reservations(cfg.reservations or arledger_home() / "agents" / "reservations" / (
            f"{self.ledger.chain_id}-{self.ledger.address.lower()}-task-{cfg.task_id}"))
        self._claim_workdir()
        self.harness_dir, self.train_paths = self._fetch_task()

    # -- the loop ------------------------------------------------------------------------

    def run(self, iterations: int | None = None, until: float | None = None) -> Iterator[IterationResult]:
        """Iterate ``iterations`` times, or until the monotonic clock passes ``until`` (an
        unfinished iteration found on disk is finished first and counts as one)."""
        done = 0
        while (iterations is None or done < iterations) and (until is None or time.monotonic() < until):
            yield self.iterate()
            done += 1

    def iterate(self) -> IterationResult:
        """Finish the unfinished iteration on disk, or run a new one (first scoring any sealed
        claim of an earlier iteration whose round's shard has opened since)."""
        self.score_waiting()
        self.warn_expiring()
        n, state = self._open_iteration()
        t0 = time.perf_counter()
        result = self._continue(n, state)
        total = time.perf_counter() - t0
        train = float(state.get("train_s", 0.0))
        result.seconds = {"train": round(train, 3), "overhead": round(max(0.0, total - train), 3),
                          "total": round(total, 3)}
        return result

    def _continue(self, n: int, state: dict) -> IterationResult:
        it = self._iteration_dir(n)
        resumed = state["stage"] != "proposing" or state.get("restarted", False)
        if state["stage"] == "proposing":
            state = self._propose(n, state)
        if state["stage"] == "proposed":
            m = self._train(n, state, _load_proposal(it))
            self.on_stage(n, "trained")
            state.update(stage="decided", decision=self._decide(state, m), loss_micro=m.evaluation.value_micro)
            self._save(n, state)
        if state["stage"] in ("decided", "reporting"):
            self._publish(n, state, _load_proposal(it))
        return self._finish(n, state, resumed)  # stage "published": only the notebook is left

    # -- stages --------------------------------------------------------------------------

    def _propose(self, n: int, state: dict) -> dict:
        ctx = self._context(n)
        state.update(base_ref=ctx.base_ref, base_loss_micro=ctx.base_loss_micro, best_loss_micro=ctx.best_loss_micro,
                     parent_id=self._parent_of(ctx.base_ref), proposer=self.cfg.proposer.name)
        refused: list[Refusal] = []
        proposal = None
        while len(refused) < self.cfg.max_tries:
            try:
                p = self.cfg.proposer.propose(ctx, refused)
            except ProposalError as exc:
                state.update(stage="published", outcome="proposer-error", error=str(exc))
                break
            problems = checks.problems(p, ctx, self.spec, self.train_paths, self._threads,
                                       isolation.executor(self._isolation))
            holder = None if problems else self.reservations.take(p.code.cid, self.address, n)
            if holder:
                problems = [f"another agent on this machine ({holder['agent']}, iteration {holder.get('iteration')}) "
                            "is training this code"]
            if not problems:
                proposal = p
                break
            refused.append(Refusal(p, "; ".join(problems)))
            self.say(f"refused before training: {p.move or p.proposer}: {'; '.join(problems)}")
        state["refused"] = [{"reason": r.reason, "move": r.proposal.move if r.proposal else None,
                             "code_cid": r.proposal.code.cid if r.proposal else None} for r in refused]
        if proposal is None:
            if state["stage"] != "published":
                state.update(stage="published", outcome="refused",
                             error=f"{len(refused)} proposal(s) refused, none trained")
            self._save(n, state)
            return state
        it = self._iteration_dir(n)
        proposal.code.write(it / "code")
        atomic_write(it / "proposal.json", json.dumps({
            "hypothesis": proposal.hypothesis, "proposer": proposal.proposer, "move": proposal.move,
            "direction": proposal.direction, "code_cid": proposal.code.cid, "diff": proposal.code.diff(ctx.base),
        }, indent=1, sort_keys=True).encode())
        state.update(stage="proposed", code_cid=proposal.code.cid)
        self._save(n, state)
        self.on_stage(n, "proposed")
        return state

    def _train(self, n: int, state: dict, p: Proposal):
        it = self._iteration_dir(n)
        tag = {"proposer": p.proposer, "move": p.move, "direction": p.direction, "parent": state["base_ref"],
               "parent_loss_micro": state["base_loss_micro"], "min_improvement_micro": self.task.min_improvement,
               "iteration": n}
        opts = RunOptions(experiment_dir=it / "code", out=it / "run", steps=self.spec.steps,
                          segment_steps=self.spec.segment_steps, seed=self.cfg.seed, threads=self._threads,
                          harness_dir=self.harness_dir, task_id=self.cfg.task_id,
                          parent=state["parent_id"] or None, trainer=self.address, hypothesis=p.hypothesis,
                          notes=tag_line(tag), cpu_kernels=self.spec.cpu_kernels, sandbox=True,
                          limits=self.spec.sandbox_limits())
        t0 = time.perf_counter()
        result = run_experiment(opts, on_progress=self.on_progress, store=self.store, say=self.say)
        state["train_s"] = float(state.get("train_s", 0.0)) + time.perf_counter() - t0
        return result.manifest

    def _decide(self, state: dict, m) -> str:
        """Submit only what beats both the chain's best and what it built on, by epsilon, and
        that nobody recorded while it trained (the history is read again: another agent may
        have published the same experiment meanwhile)."""
        recorded = {r.code_cid: r.ref for r in read_history(self.ledger, self.store, self.cfg.task_id, self._cache("manifests"))}
        if m.code_cid in recorded:
            state["duplicate_of"] = recorded[m.code_cid]
            return "duplicate"
        best = self.ledger.best_claim(self.cfg.task_id)[1]
        # On a sealed task the best's number is on another shard: compare public with public only.
        target = int(state["base_loss_micro"]) if self._sealed else min(best, int(state["base_loss_micro"]))
        state["best_loss_micro"] = best
        if m.evaluation.value_micro + self.task.min_improvement > target:
            return "report"
        problem = self._replays_as_verifiers_will(m, Path(state["run_dir"]))
        if problem:  # a stake would be slashed: it is recorded, unstaked, with the reason
            state["self_check"] = problem
            return "report"
        return "submit"

    def _replays_as_verifiers_will(self, m, run_dir: Path) -> str | None:
        """One segment of the run, replayed as a verifier will replay it (the task's limits, mode
        and budget), before any stake: the code is another trainer's, and code that does not
        reproduce itself (a coin from the OS, a clock) would be challenged and get this trainer
        slashed. The segment is drawn from the run's own root. None if it matches, else why not."""
        spec = self.spec
        i = int.from_bytes(hashlib.sha256(f"self-check:{m.merkle_root}".encode()).digest()[:8], "big") % m.segments
        opts = task_options(spec, self.store, run_dir.parent / "self-check", run_dir)
        try:
            r = replay_segment(replay(m, opts), i)
        except ReplayError as exc:
            return f"segment {i}, replayed as verifiers will, failed: {exc}"
        finally:
            shutil.rmtree(run_dir.parent / "self-check", ignore_errors=True)
        return None if r.ok else f"segment {i}, replayed as verifiers will: {r.status} {r.detail}".rstrip()

    def _publish(self, n: int, state: dict, p: Proposal) -> None:
        run_dir = self._iteration_dir(n) / "run"
        if state["decision"] == "submit":
            self.on_stage(n, "submitting")
            s = submit_run(self.ledger, self.store, run_dir, self.cfg.task_id, parent_id=state["parent_id"],
                           stake=self.cfg.stake, progress=lambda _m: self.on_stage(n, "submit:" + _m.split()[0]),
                           warn=self.say)
            state.update(stage="published", outcome="claim", claim_id=s.claim_id, manifest_cid=s.manifest_cid,
                         sealed_stage=s.sealed["stage"] if s.sealed else None)
        elif state["decision"] == "report":
            note = self._report_note(state, p)
            if state["stage"] == "reporting" and self._reported(state):
                state.update(stage="published", outcome="report")
            else:
                state.update(stage="reporting", report_from_block=self.ledger.block_number(), note=note)
                self._save(n, state)
                self.on_stage(n, "reporting")
                rep = report_run(self.ledger, self.store, run_dir, self.cfg.task_id, note)
                state.update(stage="published", outcome="report", report_tx=rep["tx"],
                             manifest_cid=rep["manifest_cid"], manifest_digest=rep["manifest_digest"])
        else:
            state.update(stage="published", outcome="duplicate",
                         error=f"{state['duplicate_of']} recorded the same code while this one trained")
        self._save(n, state)
        self.on_stage(n, "published")

    def score_waiting(self) -> list[dict]:
        """A sealed task's claims wait for their round's shard while the agent goes on training:
        each iteration first reveals the losses of those whose shard is open now (``submit_run``
        resumes: the chain says what is done). Returns what changed, one dict per claim."""
        root = self.dir / "iterations"
        changed = []
        for path in sorted(root.glob("[0-9][0-9][0-9][0-9]/state.json")) if root.is_dir() else []:
            state = json.loads(path.read_text())
            if state.get("sealed_stage") != "waiting":
                continue
            n = int(path.parent.name)
            s = submit_run(self.ledger, self.store, Path(state["run_dir"]), self.cfg.task_id,
                           parent_id=state["parent_id"], stake=self.cfg.stake, warn=self.say)
            if s.sealed["stage"] == "waiting":
                continue
            state["sealed_stage"] = s.sealed["stage"]
            self._save(n, state)
            changed.append({"iteration": n, "claim_id": s.claim_id, **s.sealed})
            self.say(f"claim {s.claim_id} (iteration {n}): {s.sealed['stage']} on round {s.sealed['round']}'s shard"
                     + (f", {self.spec.evaluation['metric']} {fmt(s.sealed['claimed_loss_micro'])} against "
                        f"{fmt(s.sealed['incumbent_loss_micro'])}" if s.sealed["stage"] == "scored" else ""))
        return changed

    def warn_expiring(self) -> list[str]:
        """Say, for each of this agent's open claims in the last quarter of its challenge window
        without its quorum, that it will expire unless verifiers act (``queries.expiry_warning``)."""
        root = self.dir / "iterations"
        said = []
        task = self.ledger.task(self.cfg.task_id)
        now = self.ledger.block_timestamp()
        for path in sorted(root.glob("[0-9][0-9][0-9][0-9]/state.json")) if root.is_dir() else []:
            claim_id = json.loads(path.read_text()).get("claim_id")
            if not claim_id:
                continue
            c = self.ledger.claim(claim_id)
            line = queries.expiry_warning({"claim_id": claim_id, "state": self.ledger.claim_state(claim_id),
                                           "confirmations": c.confirmations, "quorum": task.quorum,
                                           "challenge_deadline": c.challenge_deadline, "now": now},
                                          task.challenge_window)
            if line:
                self.say(f"warning: {line}")
                said.append(line)
        return said

    def _reported(self, state: dict) -> bool:
        """Did a report of this run reach the chain before the crash? (asked, never assumed)"""
        run_dir = Path(state["run_dir"])
        digest = hashlib.sha256(mf.dumps(mf.load(run_dir / "manifest.json"))).digest()
        for ev in self.ledger.events(int(state["report_from_block"]), self.ledger.block_number(), ["ExperimentReported"]):
            a = ev.args
            if (a["taskId"] == self.cfg.task_id and a["reporter"].lower() == self.address.lower()
                    and bytes(a["manifestDigest"]) == digest):
                state.update(report_tx=ev.tx_hash, manifest_digest="0x" + digest.hex())
                return True
        return False

    def _report_note(self, state: dict, p: Proposal) -> str:
        """The on-chain note: the hypothesis, the outcome and the agent's tag, within the ledger's limit."""
        loss = from_micro(state["loss_micro"])
        outcome = (f"outcome: {self.spec.evaluation['metric']} {loss:.6f}, did not beat "
                   f"{fmt(min(int(state['best_loss_micro']), int(state['base_loss_micro'])))} by "
                   f"{fmt(self.task.min_improvement)}")
        if state.get("self_check"):
            outcome = (f"outcome: {self.spec.evaluation['metric']} {loss:.6f}, not submitted: "
                       f"{state['self_check']}"[:600])
        tag = tag_line({"proposer": p.proposer, "move": p.move, "direction": p.direction, "parent": state["base_ref"],
                        "parent_loss_micro": state["base_loss_micro"], "min_improvement_micro": self.task.min_improvement})
        room = MAX_NOTE_BYTES - len(("\n" + outcome + "\n" + tag).encode())
        hyp = p.hypothesis.replace("\n", " ").encode()[:max(0, room)].decode(errors="ignore")
        return f"{hyp}\n{outcome}\n{tag}"

    def _finish(self, n: int, state: dict, resumed: bool) -> IterationResult:
        it = self._iteration_dir(n)
        prop = json.loads((it / "proposal.json").read_text()) if (it / "proposal.json").is_file() else {}
        r = IterationResult(iteration=n, outcome=state.get("outcome", "refused"), proposer=state.get("proposer", ""),
                            metric=self.spec.evaluation["metric"], base_ref=state.get("base_ref", "?"),
                            base_loss_micro=int(state.get("base_loss_micro", 0)),
                            best_loss_micro=int(state.get("best_loss_micro", 0)), hypothesis=prop.get("hypothesis", ""),
                            move=prop.get("move"), loss_micro=state.get("loss_micro"), claim_id=state.get("claim_id"),
                            report_tx=state.get("report_tx"), code_cid=state.get("code_cid"),
                            manifest_cid=state.get("manifest_cid"), diff=prop.get("diff", ""),
                            refused=state.get("refused", []), error=state.get("error") or state.get("self_check"),
                            resumed=resumed)
        entry = {**r.to_dict(), "time": int(time.time()), "task_id": self.cfg.task_id, "agent": self.address}
        entry.pop("seconds", None)
        self.notebook.append(entry)
        state["stage"] = "done"
        self._save(n, state)
        return r

    # -- what an iteration starts from ---------------------------------------------------

    def _context(self, n: int) -> ProposalContext:
        history = read_history(self.ledger, self.store, self.cfg.task_id, self._cache("manifests"))
        best_id, best_loss = self.ledger.best_claim(self.cfg.task_id)
        base_ref, base_loss = (f"claim {best_id}", best_loss) if best_id else ("baseline", best_loss)
        # Exploit this agent's own pending claims too: their losses are its own, measured here.
        states = {r.ref: r.state for r in history}
        for e in self.notebook.entries():
            ref = f"claim {e.get('claim_id')}"
            if e.get("outcome") == "claim" and states.get(ref) in PENDING and e["loss_micro"] < base_loss:
                base_ref, base_loss = ref, e["loss_micro"]
        code = self._code_of(base_ref)
        tried = {r.code_cid: r.ref for r in history if r.code_cid}
        for e in self.notebook.entries():
            if e.get("code_cid") and e.get("loss") is not None:
                tried.setdefault(e["code_cid"], f"notebook iteration {e['iteration']} ({e['outcome']})")
        return ProposalContext(
            task_id=self.cfg.task_id, metric=self.spec.evaluation["metric"], units=self.spec.evaluation["units"],
            base=code, base_ref=base_ref, base_loss_micro=int(base_loss), best_loss_micro=int(best_loss),
            min_improvement_micro=self.task.min_improvement, steps=self.spec.steps,
            segment_steps=self.spec.segment_steps, budget=dict(self.spec.budget), history=history, tried=tried,
            iteration=n, seed=self.cfg.seed, agent=self.address, refused_before=self._earlier_refusals())

    def _code_of(self, ref: str) -> Code:
        cid = (self.spec.baseline_code_cid if ref == "baseline"
               else self.ledger.claim_revealed_event(int(ref.split()[1])).code_cid)
        dest = self._cache("code") / cid
        if not dest.is_dir():
            tmp = dest.with_name(cid + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            self.store.get_dir(cid, tmp, max_size=4 * (self.spec.work_budget.max_code_bytes or 1 << 20))
            tmp.rename(dest)
        return Code.from_dir(dest)

    @staticmethod
    def _parent_of(ref: str) -> int:
        return 0 if ref == "baseline" else int(ref.split()[1])

    def _earlier_refusals(self) -> dict[str, str]:
        """Code refused in earlier iterations for what it is (not for repeating): CID -> reason."""
        return {r["code_cid"]: r["reason"] for e in self.notebook.entries() for r in e.get("refused") or []
                if r.get("code_cid") and not r["reason"].startswith("repeats")}

    # -- files ---------------------------------------------------------------------------

    @property
    def _isolation(self) -> isolation.Isolation:
        """The sandbox the proposal is checked and trained in (the same warm pool for both:
        ``run_experiment`` derives the same policy from the same task)."""
        spec = self.spec
        return isolation.Isolation.of(True, spec.sandbox_limits(), spec.hidden_sources,
                                      kernels.env_for(spec.cpu_kernels) if spec.cpu_kernels else None)

    @property
    def _threads(self) -> int:
        return int(self.spec.environment["threads"])

    def _claim_workdir(self) -> None:
        who = {"task_id": self.cfg.task_id, "ledger": self.ledger.address, "chain_id": self.ledger.chain_id,
               "account": self.address}
        path = self.dir / "agent.json"
        if path.is_file():
            have = json.loads(path.read_text())
            diff = [k for k in who if str(have.get(k)).lower() != str(who[k]).lower()]
            if diff:
                raise ConfigError(f"{self.dir}: this agent directory belongs to "
                                  + ", ".join(f"{k} {have.get(k)}" for k in diff)
                                  + f", not {', '.join(f'{k} {who[k]}' for k in diff)}; give another --workdir")
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(who, indent=1, sort_keys=True).encode())

    def _fetch_task(self) -> tuple[Path, dict[str, Path]]:
        harness = self.dir / "task" / "harness"
        if not harness.is_dir():
            tmp = harness.with_name("harness.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            self.store.get_dir(self.spec.harness_cid, tmp)
            tmp.rename(harness)
        train = {k: c for k, c in self.spec.datasets.items() if k in self.spec.train_splits}
        return harness, artifacts.fetch_datasets(train, self.store, self.dir / "task" / "data")

    def _cache(self, what: str) -> Path:
        d = self.dir / "cache" / what
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _iteration_dir(self, n: int) -> Path:
        return self.dir / "iterations" / f"{n:04d}"

    def _open_iteration(self) -> tuple[int, dict]:
        root = self.dir / "iterations"
        numbers = sorted(int(p.name) for p in root.glob("[0-9][0-9][0-9][0-9]")) if root.is_dir() else []
        if numbers:
            n = numbers[-1]
            state = json.loads((self._iteration_dir(n) / "state.json").read_text()) \
                if (self._iteration_dir(n) / "state.json").is_file() else {"stage": "proposing"}
            if state["stage"] != "done":
                if state["stage"] == "proposing":
                    state["restarted"] = True
                self.say(f"resuming iteration {n} at stage {state['stage']}")
                return n, state
        n = (numbers[-1] if numbers else 0) + 1
        state = {"stage": "proposing", "iteration": n, "run_dir": str(self._iteration_dir(n) / "run")}
        self._save(n, state)
        return n, state

    def _save(self, n: int, state: dict) -> None:
        it = self._iteration_dir(n)
        it.mkdir(parents=True, exist_ok=True)
        state.setdefault("run_dir", str(it / "run"))
        atomic_write(it / "state.json", json.dumps(state, indent=1, sort_keys=True).encode())


def _load_proposal(it: Path) -> Proposal:
    meta = json.loads((it / "proposal.json").read_text())
    return Proposal(Code.from_dir(it / "code"), meta["hypothesis"], meta["proposer"], meta.get("move"),
                    meta.get("direction"))
