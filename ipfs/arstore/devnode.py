"""Start a real, offline js-ipfs node (npm ``ipfs@0.66.1``) for tests and development.

js-ipfs speaks the Kubo RPC API, so ``KuboStore`` talks to it exactly as to Kubo.
What it needs (found the hard way): Node 22 (``node_modules/.bin/node``), an empty
swarm address list with ``--offline``, an empty bootstrap and delegate list, MDNS
off, and free 127.0.0.1 ports for API, Gateway and RPC. Used by
``tests/fixtures/ipfs.py`` and ``scripts/ipfs-node``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .errors import StoreUnavailable


def project_root() -> Path:
    """The checkout holding ``node_modules`` (``$ARLEDGER_ROOT`` overrides)."""
    env = os.environ.get("ARLEDGER_ROOT")
    candidates = [Path(env)] if env else []
    candidates += [Path.cwd(), *Path.cwd().parents, *Path(__file__).resolve().parents]
    for c in candidates:
        if (c / "node_modules" / ".bin" / "jsipfs").exists():
            return c
    raise StoreUnavailable("js-ipfs", "node_modules/.bin/jsipfs not found (run `make setup`)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class JsIpfsNode:
    """A running js-ipfs daemon; ``stop()`` always kills it (process group)."""

    repo: Path
    api_port: int
    proc: subprocess.Popen
    log_path: Path
    url: str = field(init=False)

    def __post_init__(self) -> None:
        self.url = f"http://127.0.0.1:{self.api_port}"

    def log(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)


def _run_jsipfs(root: Path) -> list[str]:
    return [str(root / "node_modules" / ".bin" / "node"), str(root / "node_modules" / ".bin" / "jsipfs")]


def start_node(repo: str | os.PathLike[str], *, api_port: int | None = None,
               ready_timeout: float = 90.0, log_path: str | os.PathLike[str] | None = None) -> JsIpfsNode:
    """Init (if needed) an offline repo at ``repo``, start the daemon, wait until its API answers."""
    root = project_root()
    repo = Path(repo).absolute()
    env = {**os.environ, "IPFS_PATH": str(repo), "NODE_NO_WARNINGS": "1"}
    cmd = _run_jsipfs(root)
    if not (repo / "config").exists():
        init = subprocess.run([*cmd, "init", "--empty-repo"], env=env, capture_output=True, text=True,
                              timeout=ready_timeout)
        if init.returncode != 0:
            raise StoreUnavailable("js-ipfs", f"init {repo} failed: {(init.stderr or init.stdout)[-300:]}")
    api_port = api_port or free_port()
    cfg_path = repo / "config"
    cfg = json.loads(cfg_path.read_text())
    cfg["Addresses"].update(Swarm=[], Delegates=[], API=f"/ip4/127.0.0.1/tcp/{api_port}",
                            Gateway=f"/ip4/127.0.0.1/tcp/{free_port()}", RPC=f"/ip4/127.0.0.1/tcp/{free_port()}")
    cfg["Bootstrap"] = []
    cfg.setdefault("Discovery", {}).setdefault("MDNS", {})["Enabled"] = False
    cfg["Discovery"].setdefault("webRTCStar", {})["Enabled"] = False
    tmp = cfg_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cfg, indent=2))
    os.replace(tmp, cfg_path)

    log_path = Path(log_path) if log_path else repo.parent / "jsipfs.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([*cmd, "daemon", "--offline"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    node = JsIpfsNode(repo=repo, api_port=api_port, proc=proc, log_path=log_path)
    deadline = time.monotonic() + ready_timeout
    while True:
        if proc.poll() is not None:
            raise StoreUnavailable(node.url, f"js-ipfs exited with {proc.returncode}: {node.log(600)}")
        try:
            req = urllib.request.Request(f"{node.url}/api/v0/version", method="POST")
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status == 200:
                    return node
        except OSError:
            pass
        if time.monotonic() > deadline:
            node.stop()
            raise StoreUnavailable(node.url, f"js-ipfs not ready after {ready_timeout:g}s: {node.log(600)}")
        time.sleep(0.3)

_CLI_HELP = """Start a local offline js-ipfs node (Kubo RPC API) in the foreground for development.

Examples:
  scripts/ipfs-node                          # repo in $ARLEDGER_HOME/ipfs-node, a free API port
  scripts/ipfs-node --repo /tmp/n --port 5001

It prints the API URL on stdout; point the tools at it with
  export ARLEDGER_IPFS=http://127.0.0.1:PORT
Ctrl-C stops it (the node is killed with its process group).
"""


def main() -> int:
    p = argparse.ArgumentParser(prog="scripts/ipfs-node", description=_CLI_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    home = Path(os.environ.get("ARLEDGER_HOME") or Path.home() / ".arledger")
    p.add_argument("--repo", type=Path, default=home / "ipfs-node" / "repo", help="IPFS_PATH of the node")
    p.add_argument("--port", type=int, default=None, help="API port on 127.0.0.1 (default: a free one)")
    a = p.parse_args()
    a.repo.parent.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        node = start_node(a.repo, api_port=a.port)
    except StoreUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"js-ipfs node ready: API {node.url}  (repo {node.repo}, log {node.log_path})", file=sys.stderr)
    print(node.url, flush=True)
    print(f"export ARLEDGER_IPFS={node.url}", file=sys.stderr)
    try:
        while node.proc.poll() is None:
            time.sleep(1)
        print(f"node exited with {node.proc.returncode}; log tail:\n{node.log(1500)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        node.stop()


if __name__ == "__main__":
    sys.exit(main())
