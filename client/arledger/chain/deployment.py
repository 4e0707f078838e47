"""The deployment record: where this user's ledger lives (``$ARLEDGER_HOME/deployment.json``).

Written by ``artrain devnet up`` (``arledger.devnet``) and read by every command that
connects (``arledger.chain.config``): it lives here, below both, so neither imports the
other.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from arledger.errors import ConfigError


def arledger_home() -> Path:
    return Path(os.environ.get("ARLEDGER_HOME") or Path.home() / ".arledger")


def deployment_path() -> Path:
    return arledger_home() / "deployment.json"


@dataclass
class Deployment:
    rpc_url: str
    chain_id: int
    ledger: str
    deploy_block: int
    pid: int | None = None
    data_dir: str = ""
    dev_keys: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def load(cls, path: Path | None = None) -> "Deployment":
        path = path or deployment_path()
        try:
            return cls(**json.loads(Path(path).read_text()))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no deployment file (run `artrain devnet up`, or pass --rpc-url and "
                              "--ledger / set ARLEDGER_RPC_URL and ARLEDGER_LEDGER)") from None
        except (json.JSONDecodeError, TypeError) as exc:
            raise ConfigError(f"{path}: unreadable deployment file ({exc})") from None
