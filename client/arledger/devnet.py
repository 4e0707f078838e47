"""A local development chain: anvil (the npm-shipped binary) with the ledger deployed.

``up`` starts anvil detached on 127.0.0.1 with its state persisted in the data dir
(``--state FILE``: ``down`` then ``up`` keeps every task and claim), deploys the
ledger on first start, and writes the deployment file that every command reads by
default. Nothing else in the project assumes anvil.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import asdict
from pathlib import Path

from arledger.chain.deployment import arledger_home, Deployment, deployment_path
from arledger.chain.ledger import Ledger
from arledger.chain.signer import Signer
from arledger.errors import DevnetError
from arledger.files import atomic_write

MNEMONIC = "test test test test test test test test test test test junk"  # anvil's default dev mnemonic
DEV_ACCOUNTS = 10
DEV_BALANCE_ETH = 10_000


def default_data_dir() -> Path:
    return arledger_home() / "devnet"


def dev_keys(n: int = DEV_ACCOUNTS) -> list[str]:
    """Private keys of anvil's default accounts (public test keys: never use them for real money)."""
    from eth_account import Account  # lazy: HD derivation, only when a devnet starts (0.6 s)

    Account.enable_unaudited_hdwallet_features()
    return ["0x" + bytes(Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key).hex()
            for i in range(n)]


def find_anvil() -> str:
    """The anvil binary: $ARLEDGER_ANVIL, the npm package in this repo, or PATH."""
    env = os.environ.get("ARLEDGER_ANVIL")
    if env:
        return env
    here = Path(__file__).resolve()
    for root in [Path.cwd(), *here.parents]:
        cand = root / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
        if cand.is_file():
            return str(cand)
    found = shutil.which("anvil")
    if found:
        return found
    raise DevnetError("anvil not found: run `make setup` (npm ci installs @foundry-rs/anvil-linux-amd64) "
                      "or set ARLEDGER_ANVIL")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AnvilProcess:
    """An anvil process on 127.0.0.1 (used by devnet and by the test fixtures)."""

    def __init__(self, port: int | None = None, state_file: Path | None = None, log_file: Path | None = None,
                 chain_id: int = 31337, detach: bool = False):
        self.port = port or free_port()
        self.state_file = state_file
        self.log_file = log_file
        self.chain_id = chain_id
        self.detach = detach
        self.proc: subprocess.Popen | None = None
        self.keys: list[str] = []  # its dev accounts' private keys, as anvil itself derived them
        self._tmp: Path | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> "AnvilProcess":
        cmd = [find_anvil(), "--host", "127.0.0.1", "--port", str(self.port), "--chain-id", str(self.chain_id),
               "--accounts", str(DEV_ACCOUNTS), "--balance", str(DEV_BALANCE_ETH), "--mnemonic", MNEMONIC,
               "--hardfork", "cancun"]
        # --config-out: anvil writes the keys it derived from the mnemonic (no HD wallet to load in
        # Python), beside its state when it has one (a detached devnet outlives this object), else
        # in a directory of its own that stop() removes
        if self.state_file:  # dumped every 2 s and at exit, loaded at start
            cmd += ["--state", str(self.state_file), "--state-interval", "2"]
            config = Path(self.state_file).with_name("anvil-config.json")
        else:
            self._tmp = Path(tempfile.mkdtemp(prefix="arledger-anvil-"))
            config = self._tmp / "config.json"
        config.unlink(missing_ok=True)
        cmd += ["--config-out", str(config)]
        log = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=self.detach)
        finally:
            if log is not subprocess.DEVNULL:
                log.close()  # the child holds its own copy of the descriptor
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()  # its key file's directory
                raise DevnetError(f"anvil exited with status {self.proc.returncode} on port {self.port}"
                                  + (f"; see {self.log_file}" if self.log_file else ""))
            if _rpc_ok(self.rpc_url):
                # it writes the file after it starts to listen: wait for the whole of it
                self.keys = _keys_of(config, deadline)
                return self
            time.sleep(0.1)
        self.stop()
        raise DevnetError(f"anvil did not answer on {self.rpc_url} within {timeout:.0f}s")

    def stop(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # anvil writes --state on SIGTERM
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _keys_of(config: Path, deadline: float) -> list[str]:
    """The private keys anvil wrote with ``--config-out`` once the file is whole (public test keys);
    derived from its mnemonic here if none comes by ``deadline``."""
    while True:
        try:
            keys = json.loads(config.read_text())["private_keys"]
            if isinstance(keys, list) and len(keys) == DEV_ACCOUNTS:
                return [str(k) for k in keys]
        except (OSError, ValueError, KeyError, TypeError):
            pass  # not written yet, or half written
        if time.monotonic() > deadline:
            return dev_keys()
        time.sleep(0.02)


class LocalChain:
    """A fresh anvil with the ledger deployed by dev account 0: the demo's and the benches' chain
    (``artrain devnet up`` keeps one across commands instead). ``with LocalChain.start(...) as c``
    stops it at the end; ``c.ledger`` is bound to account 0, ``c.as_account(i)`` to account i."""

    def __init__(self, anvil: AnvilProcess, keys: list[str], ledger: Ledger):
        self.anvil, self.keys, self.ledger = anvil, keys, ledger

    @classmethod
    def start(cls, log_file: Path | None = None, state_file: Path | None = None) -> "LocalChain":
        anvil = AnvilProcess(log_file=log_file, state_file=state_file).start()
        try:
            keys = anvil.keys
            return cls(anvil, keys, Ledger.deploy(Ledger.connect_rpc(anvil.rpc_url), Signer.from_key(keys[0])))
        except BaseException:
            anvil.stop()
            raise

    @property
    def rpc_url(self) -> str:
        return self.anvil.rpc_url

    def advance(self, seconds: int) -> int:
        """Move chain time forward and mine a block (``advance``)."""
        return advance(seconds, self.rpc_url)

    def as_account(self, i: int) -> Ledger:
        return self.ledger.with_account(Signer.from_key(self.keys[i]))

    def deployment(self, with_keys: bool = False) -> Deployment:
        """The record a command reads to connect (``$ARLEDGER_HOME/deployment.json``)."""
        return Deployment(rpc_url=self.rpc_url, chain_id=self.ledger.chain_id, ledger=self.ledger.address,
                          deploy_block=0, dev_keys=list(self.keys) if with_keys else [])

    def stop(self) -> None:
        self.anvil.stop()

    def __enter__(self) -> "LocalChain":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _rpc_ok(url: str) -> bool:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=1) as resp:
            return b"result" in resp.read()
    except OSError:
        return False


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return True


def _is_anvil(pid: int) -> bool:
    """Whether pid runs anvil (True where /proc can't tell)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"anvil" in cmdline


def status(path: Path | None = None) -> dict:
    """{'running': bool, ...deployment fields} for the deployment file, without starting anything."""
    path = path or deployment_path()
    if not Path(path).exists():
        return {"running": False, "deployment": str(path), "reason": "no deployment file"}
    dep = Deployment.load(path)
    running = _pid_alive(dep.pid) and _is_anvil(dep.pid) and _rpc_ok(dep.rpc_url)
    out = {"running": running, "deployment": str(path), **{k: v for k, v in asdict(dep).items() if k != "dev_keys"}}
    if running:
        node = Ledger.connect_rpc(dep.rpc_url)
        out["block"] = node.block_number()
        out["ledger_deployed"] = len(node.code(dep.ledger)) > 0
    return out


def up(data_dir: Path | None = None, port: int = 8545) -> tuple[Deployment, bool]:
    """Start (or find running) the devnet; returns (deployment, started_now)."""
    data_dir = Path(data_dir or default_data_dir())
    data_dir.mkdir(parents=True, exist_ok=True)
    dep_path = deployment_path()
    existing = status(dep_path) if dep_path.exists() else {"running": False}
    if existing.get("running") and existing.get("data_dir") == str(data_dir):
        return Deployment.load(dep_path), False
    if _port_busy(port):
        raise DevnetError(f"127.0.0.1:{port} is in use by another process; pass --port")
    anvil = AnvilProcess(port, data_dir / "state.json", data_dir / "anvil.log", detach=True).start()
    try:
        keys = anvil.keys
        node = Ledger.connect_rpc(anvil.rpc_url)
        saved = data_dir / "ledger.json"
        ledger_addr = None
        if saved.exists():
            try:
                info = json.loads(saved.read_text())
                if node.code(info["ledger"]):  # the state file kept it
                    ledger_addr, block = info["ledger"], int(info["deploy_block"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                ledger_addr = None  # unreadable record: deploy afresh below
        if ledger_addr is None:
            ledger = Ledger.deploy(node, Signer.from_key(keys[0]))
            ledger_addr, block = ledger.address, node.block_number()
            atomic_write(saved, json.dumps({"ledger": ledger_addr, "deploy_block": block}).encode())
        dep = Deployment(anvil.rpc_url, node.chain_id(), ledger_addr, block, anvil.proc.pid, str(data_dir), keys)
        atomic_write(dep_path, dep.to_json())
    except BaseException:
        anvil.stop()  # no half-started devnet without a deployment file pointing at it
        raise
    return dep, True


def _port_busy(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def down(path: Path | None = None) -> bool:
    """Stop the devnet (its state is kept); False if it was not running."""
    path = path or deployment_path()
    if not Path(path).exists():
        return False
    dep = Deployment.load(path)
    if not _pid_alive(dep.pid):
        return False
    if not _is_anvil(dep.pid):  # a stale file (after a reboot) must not kill a reused pid
        return False
    os.kill(dep.pid, signal.SIGTERM)
    for _ in range(150):
        if not _pid_alive(dep.pid):
            return True
        time.sleep(0.1)
    os.kill(dep.pid, signal.SIGKILL)
    return True


def advance(seconds: int, rpc_url: str) -> int:
    """Move chain time forward and mine a block; returns the new block timestamp."""
    node = Ledger.connect_rpc(rpc_url)
    node.request("evm_increaseTime", [int(seconds)])
    node.request("evm_mine")
    return node.block().timestamp
