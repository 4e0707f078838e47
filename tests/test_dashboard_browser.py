"""`artrain dashboard` in a real browser (Debian's chromium, headless, driven by Selenium)
against a real anvil, with a served app (uvicorn) on 127.0.0.1.

The chain is the one `artrain demo` saved (tests/fixtures/demo.py, the README's "after
make demo" path), brought back on a fresh anvil: the charlm task, alice's accepted claim
(she doubled the learning rate: its diff), mallory's forged claim challenged, voted on and
rejected, three verifiers. Screenshots go to the test's tmp dir, or to
``$ARLEDGER_SCREENSHOTS``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from arledger.chain.signer import Signer

pytestmark = pytest.mark.chain
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def saved(demo_run, tmp_path_factory):
    """The demo's chain, brought back on a fresh anvil from the state it saved (a copy of it)."""
    from arledger.addressbook import AddressBook, FILE
    from arledger.dashboard.saved import open_saved_demo

    ledger, store, anvil = open_saved_demo(demo_run.out, tmp_path_factory.mktemp("dash") / "state.json")
    by = {c["trainer_name"]: c["claim_id"] for c in demo_run.summary["claims"]}
    yield SimpleNamespace(ledger=ledger, store=store, anvil=anvil, task=demo_run.summary["task_id"],
                          honest=by["alice"], cheat=by["mallory"], run=demo_run.out / "runs" / "alice",
                          names=AddressBook(demo_run.out / FILE).names())
    anvil.stop()


def dev(saved, i: int):
    from arledger.devnet import dev_keys

    return saved.ledger.with_account(Signer.from_key(dev_keys()[i]))


@pytest.fixture(scope="module")
def server(saved):
    import uvicorn

    from arledger.dashboard.app import DashboardConfig, make_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = make_app(DashboardConfig(ledger=saved.ledger, store=saved.store, poll_seconds=0.3, names=saved.names))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(url + "/api/version", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.05)
    yield url
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail(f"{CHROMIUM} / {CHROMEDRIVER} missing: `make setup` installs Debian's chromium and chromium-driver")
    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1100"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def shots(tmp_path: Path) -> Path:
    d = Path(os.environ.get("ARLEDGER_SCREENSHOTS") or tmp_path)
    d.mkdir(parents=True, exist_ok=True)
    return d


def wait_for(driver, script: str, timeout: float = 10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {script}")


def cells(driver, table: str) -> list[list[str]]:
    from selenium.webdriver.common.by import By

    return [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")]


def test_task_page_rows_and_chart(browser, server, saved, tmp_path):
    scene = saved.__dict__
    browser.get(f"{server}/?all=1")
    wait_for(browser, f"return document.querySelector('#tasks tr[data-task=\"{scene['task']}\"]')")
    [row] = [r for r in cells(browser, "tasks") if r[0] == f"#{scene['task']}"]
    assert row[1] == "charlm" and f"claim {scene['honest']}" in row[3]
    browser.save_screenshot(str(shots(tmp_path) / "dashboard-tasks.png"))
    browser.get(f"{server}/task/{scene['task']}")
    labels = wait_for(browser, "const c = Chart.getChart('curve'); return c && c.data.datasets.map(d => d.label)")
    assert labels[0] == "verified best (on chain)"
    assert "accepted claim" in labels and "rejected claim (its claimed loss)" in labels
    best = browser.execute_script("return Chart.getChart('curve').data.datasets[0].data.map(p => p.y)")
    rows = {r[0]: r for r in cells(browser, "claims")}
    assert rows[f"#{scene['honest']}"][1].startswith("Accepted") and rows[f"#{scene['cheat']}"][1] == "Rejected"
    # the demo's cast by name, beside the address (its address book, `artrain alias` for anyone)
    assert rows[f"#{scene['honest']}"][2].startswith("alice 0x") and rows[f"#{scene['cheat']}"][2].startswith("mallory")
    assert abs(best[-1] - float(rows[f"#{scene['honest']}"][3])) < 1e-6 and best[0] > best[-1]  # down to the claim
    wait_for(browser, "return document.body.dataset.paretoPoints")  # the Pareto charts drew (from manifests)
    browser.save_screenshot(str(shots(tmp_path) / "dashboard-task.png"))
    drawn = browser.execute_script(DROP_PIXELS)
    assert drawn["old_level_between"] and not drawn["new_level_between"], (
        f"the best line must hold the old best until the block it changed, then drop: {drawn}")
    ticks = browser.execute_script("return Chart.getChart('curve').scales.x.ticks.map(t => t.value)")
    assert ticks and all(float(t).is_integer() for t in ticks), f"blocks are whole: {ticks}"


# Where the verified-best line is drawn (pixels of the canvas, not the data): halfway between the
# block the task was made and the block its best changed, the line must be at the old level.
DROP_PIXELS = """
const c = Chart.getChart('curve'), d = c.data.datasets[0].data;
let i = d.findIndex((p, k) => k > 0 && p.y < d[k - 1].y);
const a = d[i - 1], b = d[i], r = c.currentDevicePixelRatio, ctx = c.ctx;
const mx = c.scales.x.getPixelForValue((a.x + b.x) / 2);
function blue(py) {
  const img = ctx.getImageData(Math.round(mx * r) - 2, Math.round(py * r) - 3, 5, 7).data;
  for (let k = 0; k < img.length; k += 4)
    if (Math.abs(img[k] - 9) < 40 && Math.abs(img[k + 1] - 105) < 40 && Math.abs(img[k + 2] - 218) < 40) return true;
  return false;
}
return {old_level_between: blue(c.scales.y.getPixelForValue(a.y)),
        new_level_between: blue(c.scales.y.getPixelForValue(b.y)), from: a, to: b};
"""


@pytest.mark.parametrize("page", ["/?all=1", "/task/{task}", "/claim/{cheat}", "/verifiers"])
def test_pages_fit_1280_pixels(browser, server, saved, page):
    """Issue 22: the index table overflowed at 1400 px."""
    browser.set_window_size(1280, 1000)
    try:
        browser.get(server + page.format(**saved.__dict__))
        wait_for(browser, "return document.readyState === 'complete'")
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 1280, f"{page}: {width} px wide"
    finally:
        browser.set_window_size(1400, 1100)


def test_claim_pages_show_the_diff_and_the_dispute_with_its_votes(browser, server, saved, tmp_path):
    from selenium.webdriver.common.by import By

    scene = saved.__dict__
    browser.get(f"{server}/claim/{scene['honest']}")
    diff = browser.find_element(By.ID, "diff").text
    assert '-    "lr": 0.003,' in diff and '+    "lr": 0.006,' in diff  # alice's change of the recipe
    assert "twice the template's learning rate" in browser.find_element(By.ID, "hypothesis").text
    confirmed = [r for r in cells(browser, "confirmations") if r[3] == "confirmed"]
    assert len(confirmed) >= 2 and all(r[1] for r in confirmed)  # the quorum, with the segments each replayed
    browser.save_screenshot(str(shots(tmp_path) / "dashboard-claim.png"))
    browser.get(f"{server}/claim/{scene['cheat']}")
    assert browser.find_element(By.ID, "state").text == "Rejected"
    assert "Upheld" in browser.find_element(By.TAG_NAME, "main").text
    votes = cells(browser, "votes-1")
    assert len(votes) >= 2 and all(v[1] == "uphold" for v in votes)
    assert all(v[0].split()[0] in ("v1", "v2", "v3") for v in votes), votes  # voters by name
    assert browser.find_element(By.ID, "trainer").text.startswith("mallory 0x")
    browser.save_screenshot(str(shots(tmp_path) / "dashboard-dispute.png"))
    browser.get(f"{server}/verifiers")
    wait_for(browser, "return document.querySelectorAll('#verifiers tbody tr').length === 3")
    rows = cells(browser, "verifiers")
    assert len(rows) == 3 and sorted(r[4] for r in rows) == ["0", "0", "1"]  # one challenge won, by one of them
    assert sorted(r[0].split()[0] for r in rows) == ["v1", "v2", "v3"]
    browser.save_screenshot(str(shots(tmp_path) / "dashboard-verifiers.png"))


def test_new_blocks_appear_without_a_reload(browser, server, saved):
    from arledger.submit import report_run

    scene = saved.__dict__
    browser.get(f"{server}/task/{scene['task']}")
    browser.execute_script("window.__sameDocument = true")
    assert cells(browser, "reports") == [["no reports yet"]]
    report_run(dev(saved, 7), saved.store, saved.run, saved.task, "live: appears without a reload")
    wait_for(browser, "return document.querySelector('#reports').innerText.includes('live: appears without a reload')")
    assert browser.execute_script("return window.__sameDocument === true")  # swapped in, not reloaded
    [row] = cells(browser, "reports")
    assert row[1] == "0x14dC…9955" and row[3] == "live: appears without a reload"  # dev account 7


def test_the_follower_rebuilds_after_a_reorganization(saved):
    from arledger.dashboard.follow import IndexFollower
    from arledger.submit import report_run

    scene = saved.__dict__
    f = IndexFollower(saved.ledger)
    f.poll()
    reports = len(f.index.tasks[scene["task"]].reports)
    rpc = saved.ledger.rpc
    snap = rpc.request("evm_snapshot")
    report_run(dev(saved, 7), saved.store, saved.run, saved.task, "on a branch that will vanish")
    f.poll()
    assert len(f.index.tasks[scene["task"]].reports) == reports + 1
    rpc.request("evm_revert", [snap])
    rpc.request("evm_mine")
    rpc.request("evm_mine")  # the other branch is longer: the cursor's block hash changed
    assert f.poll() and f.reorgs == 1
    assert len(f.index.tasks[scene["task"]].reports) == reports


def test_the_cli_serves_a_saved_demo_and_stops_its_anvil_on_sigterm(demo_run, tmp_path):
    """`artrain dashboard --demo DIR` as a user runs it; killed politely, it leaves no anvil behind."""
    import shutil
    import signal
    import subprocess
    import sys

    demo = tmp_path / "demo-out"
    shutil.copytree(demo_run.out, demo)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    artrain = Path(sys.executable).with_name("artrain")
    proc = subprocess.Popen([str(artrain), "dashboard", "--demo", str(demo), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(300):
            try:
                if requests.get(f"http://127.0.0.1:{port}/api/version", timeout=1).json()["events"]:
                    break
            except (requests.ConnectionError, ValueError):
                time.sleep(0.1)
        page = requests.get(f"http://127.0.0.1:{port}/task/{demo_run.summary['task_id']}", timeout=10).text
        assert "Task #1: charlm" in page and "Rejected" in page and "Accepted" in page
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert f"http://127.0.0.1:{port}/" in proc.stdout.read()

    def anvils_on(path: Path) -> list[str]:
        out = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "anvil" in text and str(path) in text:
                out.append(text)
        return out

    assert anvils_on(demo) == []
