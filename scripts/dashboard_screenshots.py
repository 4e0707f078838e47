"""Screenshots of the dashboard's pages for docs/img, from what `artrain demo` left in DIR.

    .venv/bin/python scripts/dashboard_screenshots.py demo-out docs/img

Starts `artrain dashboard --demo DIR` on a free port, opens each page in headless
chromium (Debian's, as the tests use) and saves dashboard-{tasks,task,claim,dispute,verifiers}.png.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service


def main(demo: Path, out: Path) -> int:
    summary = json.loads((demo / "summary.json").read_text())
    by = {c["trainer_name"]: c["claim_id"] for c in summary["claims"]}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    artrain = Path(sys.executable).with_name("artrain")
    proc = subprocess.Popen([str(artrain), "dashboard", "--demo", str(demo), "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if requests.get(url + "/api/version", timeout=1).json()["events"]:
                    break
            except (requests.ConnectionError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        opts = Options()
        opts.binary_location = "/usr/bin/chromium"
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1050"):
            opts.add_argument(a)
        d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
        out.mkdir(parents=True, exist_ok=True)
        pages = {"tasks": "/?all=1", "task": f"/task/{summary['task_id']}", "claim": f"/claim/{by['alice']}",
                 "dispute": f"/claim/{by['mallory']}", "verifiers": "/verifiers"}
        for name, path in pages.items():
            d.get(url + path)
            time.sleep(1.0)  # charts and the Pareto fetch
            d.save_screenshot(str(out / f"dashboard-{name}.png"))
            print(out / f"dashboard-{name}.png")
        d.quit()
    finally:
        proc.terminate()
        proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
