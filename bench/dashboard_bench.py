"""Dashboard benchmark: page loads against a devnet seeded with 1,000 claims and reports.

    python -m bench.dashboard_bench [--claims 500] [--reports 500] [--json]

Seeding (``seed_ledger``, also usable on its own to look at a busy dashboard): a fresh anvil
with the ledger, a digits task, one real run pinned in the embedded store, then
``--claims`` claims (commit + reveal of that run, each with its own salt: distinct
commitments, the same code and manifest) and ``--reports`` unstaked reports, from two
trainer accounts. Then the app is served by uvicorn and loaded in headless chromium:

- ``first_page_s``: a fresh server's first page: the index built from every event
  (``startup_index_s``, the server's start-up poll) is reported apart; the figure is the
  browser's navigation to ``/task/1`` (claims table, charts drawn) measured from
  navigation start to the load event plus the charts' first draw. Target <= 1 s.
- ``claim_page_s``: ``/claim/N`` for a claim in the middle (manifest, diff against the
  baseline code fetched by CID, confirmations): first visit (cold caches). Target <= 1 s.
- ``tasks_page_s``: ``/``. Reported.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

from arledger import manifest as mf, tasks
from arledger.chain.ledger import ClaimFields
from arledger.chain.signer import Signer
from arledger.dashboard.app import DashboardConfig, make_app
from arledger.devnet import LocalChain
from arledger.execution import kernels
from arledger.protocol import run_experiment, RunOptions
from arledger.submit import claim_manifest, pin_run, report_run
from arstore import cid_to_bytes, EmbeddedStore

TARGETS = {"first_page_s": 1.0, "claim_page_s": 1.0}


def seed_ledger(tmp: Path, claims: int, reports: int, say=print):
    """A fresh anvil + ledger + embedded store with ``claims`` claims and ``reports`` reports on task 1."""
    chain = LocalChain.start(log_file=tmp / "anvil.log")
    keys, sponsor = chain.keys, chain.ledger
    store = EmbeddedStore(tmp / "store")
    digits = tasks.experiment_dir_of("digits")
    task_id, spec, _, _ = tasks.create_task(sponsor, store, tasks.TaskRequest(
        experiment_dir=digits, steps=20, segment_steps=10,
        terms=tasks.TaskTerms(reveal_window=3600, challenge_window=86400)))
    run = tmp / "run"
    m = run_experiment(RunOptions(digits, run, steps=20, segment_steps=10, seed=1), store=store).manifest
    trainers = [sponsor.with_account(Signer.from_key(keys[i])) for i in (1, 2)]
    t0 = time.perf_counter()
    stake = sponsor.task(task_id).min_trainer_stake
    pending = []
    for n in range(claims):  # every commit first: a reveal must come in a later block than its commit
        led = trainers[n % 2]
        claim_bytes = mf.dumps(claim_manifest(m, task_id, 0, led.account_address))
        if n < 2:
            pin_run(store, run, m, claim_bytes)  # the two manifests (one per trainer) are in the store
        digest = hashlib.sha256(claim_bytes).digest()
        loss = m.evaluation.value_micro + n  # distinct numbers: a visible cloud on the chart
        salt = n.to_bytes(32, "big")
        fields = ClaimFields(task_id, 0, cid_to_bytes(m.code_cid), digest, bytes.fromhex(m.merkle_root[2:]), m.segments,
                             loss, salt)
        led.commit(led.compute_commitment(led.account_address, fields))
        pending.append((led, fields))
    for n, (led, fields) in enumerate(pending):
        led.reveal(fields, value=stake)
        if n and n % 100 == 0:
            say(f"  {n} claims ({time.perf_counter() - t0:.0f}s)")
    for n in range(reports):
        report_run(trainers[n % 2], store, run, task_id, f"seeded report {n}: nothing to see")
    say(f"seeded {claims} claims and {reports} reports in {time.perf_counter() - t0:.0f}s "
        f"(head block {chain.ledger.block_number()})")
    return chain, sponsor, store, task_id


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.dashboard_bench")
    ap.add_argument("--claims", type=int, default=500)
    ap.add_argument("--reports", type=int, default=500)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)



    kernels.ensure(kernels.DEFAULT_PIN, reexec=True)
    with tempfile.TemporaryDirectory(prefix="dash-bench-") as tmp:
        tmp = Path(tmp)
        chain, ledger, store, task_id = seed_ledger(tmp, args.claims, args.reports)
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            app = make_app(DashboardConfig(ledger=ledger, store=store))
            srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
            t0 = time.perf_counter()
            thread = threading.Thread(target=srv.run, daemon=True)
            thread.start()
            while not srv.started:
                time.sleep(0.01)
            startup = time.perf_counter() - t0
            opts = Options()
            opts.binary_location = "/usr/bin/chromium"
            for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                      "--window-size=1400,1000"):
                opts.add_argument(a)
            driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
            url = f"http://127.0.0.1:{port}"
            try:
                driver.get(url + "/static/style.css")  # the browser itself warmed up (not the app)
                first = _load(driver, f"{url}/task/{task_id}", charts=True)
                claim = _load(driver, f"{url}/claim/{max(1, args.claims // 2)}")
                tasks_page = _load(driver, f"{url}/?all=1")
                again = _load(driver, f"{url}/task/{task_id}", charts=True)
            finally:
                driver.quit()
                srv.should_exit = True
                thread.join(10)
        finally:
            chain.stop()
    out = {"claims": args.claims, "reports": args.reports, "startup_index_s": round(startup, 3),
           "first_page_s": first, "claim_page_s": claim, "tasks_page_s": tasks_page, "task_page_again_s": again,
           "targets": TARGETS}
    ok = first <= TARGETS["first_page_s"] and claim <= TARGETS["claim_page_s"]
    if args.json:
        print(json.dumps(out, sort_keys=True))
    else:
        print(f"server start-up (index of every event): {startup:.3f}s")
        print(f"first page /task/1 with {args.claims} claims, {args.reports} reports: {first:.3f}s "
              f"(target <= {TARGETS['first_page_s']}); again {again:.3f}s")
        print(f"claim page (cold): {claim:.3f}s (target <= {TARGETS['claim_page_s']}); tasks page {tasks_page:.3f}s")
        print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


def _load(driver, url: str, charts: bool = False) -> float:
    """Navigation start to the load event, and (``charts``) to the curve chart's first draw."""
    t0 = time.perf_counter()
    driver.get(url)
    if charts:
        while not driver.execute_script("return !!(window.Chart && Chart.getChart('curve'))"):
            time.sleep(0.005)
    wall = time.perf_counter() - t0
    nav = driver.execute_script("const t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd / 1000")
    return round(max(wall, nav or 0), 3)


if __name__ == "__main__":
    sys.exit(main())
