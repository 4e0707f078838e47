"""The dashboard's web app (Starlette + Jinja2; served by uvicorn: ``artrain dashboard``).

Pages: ``/`` tasks, ``/task/{id}`` (curve, Pareto view, claims, reports), ``/claim/{id}``
(manifest, hypothesis, confirmations, disputes and votes, payouts, the diff against its
parent), ``/verifiers``. JSON: ``/api/version`` (what the pages poll to go live),
``/api/task/{id}/curve``, ``/api/task/{id}/pareto``. Any page with ``?partial=1`` is its
content only: the browser swaps it in when the version changes, without a reload.
Static files (Chart.js 4.6.1 from npm, the page script, the style sheet) are package
data: nothing is fetched from a CDN, it works offline. Read-only: no route changes
anything, and the server holds no key.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from arledger import queries
from arledger.dashboard.content import Content
from arledger.dashboard.follow import IndexFollower
from arledger.dashboard.index import outcome_of, PENDING
from arledger.micro import fmt

HERE = Path(__file__).parent


@dataclass
class DashboardConfig:
    ledger: Any
    store: Any
    confirmations: int = 0
    poll_seconds: float = 2.0
    task_id: int | None = None  # the page `/` opens on
    names: dict[str, str] = field(default_factory=dict)  # address -> name (arledger.addressbook), shown beside it


def make_app(cfg: DashboardConfig) -> Starlette:
    follower = IndexFollower(cfg.ledger, cfg.confirmations)
    content = Content(cfg.ledger, cfg.store)
    templates = make_templates(cfg.names)

    def render(request: Request, name: str, **ctx: Any):
        ctx.update(version=follower.version, head=follower.head, partial=request.query_params.get("partial") == "1",
                   reorgs=follower.reorgs)
        return templates.TemplateResponse(request, name, ctx)

    async def tasks_page(request: Request):
        if cfg.task_id and request.query_params.get("all") != "1":
            return RedirectResponse(f"/task/{cfg.task_id}")
        with follower.lock:
            rows = [_task_summary(follower.index, content, t) for t in follower.index.task_ids()]
        return render(request, "tasks.html", tasks=rows)

    async def task_page(request: Request):
        task_id = request.path_params["task_id"]
        with follower.lock:
            idx = follower.index
            if task_id not in idx.tasks:
                raise HTTPException(404, f"task {task_id} is not on this ledger (yet)")
            summary = _task_summary(idx, content, task_id)
            claims = [_claim_row(c) for c in reversed(idx.claims_of(task_id))]
            reports = list(reversed(idx.tasks[task_id].reports))
            curve = idx.curve(task_id, summary["baseline_loss"])
        return render(request, "task.html", task=summary, claims=claims, reports=reports, curve=curve)

    async def claim_page(request: Request):
        claim_id = request.path_params["claim_id"]
        with follower.lock:
            idx = follower.index
            c = idx.claims.get(claim_id)
            if c is None:
                raise HTTPException(404, f"claim {claim_id} is not on this ledger (yet)")
            disputes = idx.disputes_of(claim_id)
            parent_cid, parent_ref = content.parent_code_cid(c, idx.claims)
            row = _claim_row(c)
        m, m_err = content.manifest(c.manifest_cid)
        code, code_err = content.code(c.code_cid)
        parent, parent_err = content.code(parent_cid) if parent_cid else (None, "no parent code")
        diff = code.diff(parent) if code and parent else None
        spec = content.spec(c.task_id)
        task = content.task(c.task_id)
        expiring = queries.expiry_warning({"claim_id": claim_id, "state": c.state, "confirmations": len(c.confirmations),
                                           "quorum": task.quorum, "challenge_deadline": c.challenge_deadline,
                                           "now": content.now()}, task.challenge_window)
        return render(request, "claim.html", claim=row, raw=c, manifest=m, manifest_error=m_err, disputes=disputes,
                      diff=diff, diff_error=code_err or parent_err, parent_ref=parent_ref,
                      metric=spec.evaluation["metric"] if spec else "loss", expiring=expiring)

    async def verifiers_page(request: Request):
        with follower.lock:
            rows = [v.__dict__ for v in follower.index.verifier_rows()]
        return render(request, "verifiers.html", verifiers=rows)

    async def version_api(request: Request):
        return JSONResponse({"version": follower.version, "head": follower.head, "reorgs": follower.reorgs,
                             "events": follower.index.events, "error": follower.error})

    async def curve_api(request: Request):
        task_id = request.path_params["task_id"]
        with follower.lock:
            if task_id not in follower.index.tasks:
                raise HTTPException(404, f"task {task_id} is not on this ledger (yet)")
            baseline = content.task(task_id).baseline_loss
            return JSONResponse(follower.index.curve(task_id, baseline))

    async def pareto_api(request: Request):
        """Loss against model parameters and counted work (steps x FLOPs per step), from manifests."""
        task_id = request.path_params["task_id"]
        with follower.lock:
            claims = list(follower.index.claims_of(task_id))
            reports = list(follower.index.tasks[task_id].reports) if task_id in follower.index.tasks else []
        points = []
        for what, cid, loss, outcome, ref in ([("claim", c.manifest_cid, c.claimed_loss, outcome_of(c), c.claim_id)
                                               for c in claims]
                                              + [("report", r["manifest_cid"], r["loss"], "report", None) for r in reports]):
            m, _ = await asyncio.to_thread(content.manifest, cid)
            work = dict(getattr(m, "work", None) or {}) if m else {}
            if work.get("params"):
                points.append({"kind": what, "claim_id": ref, "loss": loss, "outcome": outcome,
                               "params": work["params"], "work": int(m.steps) * int(work.get("step_flops_max") or 0)})
        return JSONResponse({"points": points})

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await asyncio.to_thread(follower.poll)

        async def follow():
            while True:
                await asyncio.sleep(cfg.poll_seconds)
                try:
                    await asyncio.to_thread(follower.poll)
                    follower.error = None
                except Exception as exc:  # a node that hiccups: say so on the page, try again next tick
                    follower.error = f"{type(exc).__name__}: {exc}"[:300]

        task = asyncio.create_task(follow())
        try:
            yield
        finally:
            task.cancel()

    app = Starlette(routes=[
        Route("/", tasks_page), Route("/task/{task_id:int}", task_page), Route("/claim/{claim_id:int}", claim_page),
        Route("/verifiers", verifiers_page), Route("/api/version", version_api),
        Route("/api/task/{task_id:int}/curve", curve_api), Route("/api/task/{task_id:int}/pareto", pareto_api),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ], lifespan=lifespan)
    app.state.follower, app.state.content = follower, content
    return app


def _task_summary(idx, content: Content, task_id: int) -> dict:
    t = content.task(task_id)
    spec = content.spec(task_id)
    best = idx.best_of(task_id)
    row = idx.tasks[task_id]
    return {"task_id": task_id, "name": spec.name if spec else "?", "description": spec.description if spec else "",
            "metric": spec.evaluation["metric"] if spec else "loss", "units": spec.evaluation["units"] if spec else "",
            "steps": spec.steps if spec else None, "segment_steps": spec.segment_steps if spec else None,
            "sponsor": t.sponsor, "pool": t.pool, "reward": t.reward_per_improvement, "verifier_fee": t.verifier_fee,
            "min_trainer_stake": t.min_trainer_stake, "min_verifier_stake": t.min_verifier_stake,
            "challenge_bond": t.challenge_bond, "quorum": t.quorum, "challenge_window": t.challenge_window,
            "voting_window": t.voting_window, "reveal_window": t.reveal_window, "min_improvement": t.min_improvement,
            "baseline_loss": t.baseline_loss, "best_claim_id": best["claim_id"] if best else 0,
            "best_loss": best["loss"] if best else t.baseline_loss, "claims": len(row.claim_ids),
            "reports": len(row.reports),
            "pending": sum(idx.claims[c].state in PENDING for c in row.claim_ids),
            "sealed": row.sealed, "rounds": row.rounds()}


def _claim_row(c) -> dict:
    return {"claim_id": c.claim_id, "task_id": c.task_id, "state": c.state, "outcome": outcome_of(c),
            "trainer": c.trainer, "parent_id": c.parent_id, "claimed_loss": c.claimed_loss, "stake": c.stake,
            "confirmations": len(c.confirmations), "disputes": len(c.dispute_ids), "reward": c.reward,
            "improved": c.improved, "block": c.block, "segments": c.segments, "round": c.round,
            "incumbent_id": c.incumbent_id, "incumbent_loss": c.incumbent_loss}


def _eth(wei: int | None) -> str:
    return "-" if wei is None else f"{int(wei) / 1e18:.4f} ETH"


def _loss(micro: int | None) -> str:
    return fmt(micro)


def _when(timestamp: int | None) -> str:
    if not timestamp:
        return "-"
    return dt.datetime.fromtimestamp(int(timestamp), dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def make_templates(names: dict[str, str]) -> Jinja2Templates:
    """The pages' templates and their filters; ``names`` (address -> name, ``arledger.addressbook``)
    gives ``who`` ("alice 0x7099…79C8", else the short address) and ``name`` ("" if none)."""
    by_address = {a.lower(): n for a, n in names.items()}

    def name(address: str | None) -> str:
        return by_address.get((address or "").lower(), "")

    def who(address: str | None) -> str:
        return f"{name(address)} {_short(address)}" if name(address) else _short(address)

    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters.update(eth=_eth, loss=_loss, short=_short, when=_when, who=who, name=name)
    return templates


def _short(address: str | None) -> str:
    return "-" if not address else f"{address[:6]}…{address[-4:]}"
