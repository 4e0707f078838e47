"""Where the chain is and who we are: one precedence rule for every command.

Precedence, field by field: command-line flags, then environment variables
(``ARLEDGER_RPC_URL``, ``ARLEDGER_LEDGER``, ``ARLEDGER_KEY`` / ``ARLEDGER_KEYSTORE``
with ``ARLEDGER_KEYSTORE_PASSWORD`` or a prompt), then the deployment file
(``$ARLEDGER_HOME/deployment.json``, written by ``artrain devnet up``). Works against
any EVM JSON-RPC endpoint; only the deployment file is devnet-specific.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from eth_utils import is_hex_address, to_checksum_address

from arledger.chain.deployment import Deployment, deployment_path
from arledger.chain.ledger import Ledger
from arledger.chain.signer import decrypt_keystore, Signer
from arledger.errors import ConfigError


@dataclass
class Context:
    ledger: Ledger
    rpc_url: str
    source: dict  # which setting came from where (flag / env / deployment file)

    @property
    def address(self) -> str | None:
        return self.ledger.account.address if self.ledger.account else None


def load_account(key: str | None = None, keystore: str | None = None,
                 password: str | None = None, prompt: Callable[[str], str] = getpass.getpass) -> Signer | None:
    """A signing account from a private key or an encrypted keystore file (None if neither)."""
    if key:
        try:
            return Signer.from_key(key)
        except ValueError:
            raise ConfigError("key: not a valid private key (expected 0x + 64 hex digits)") from None
    if keystore:
        path = Path(keystore).expanduser()
        try:
            blob = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: keystore file not found") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not a keystore JSON file ({exc})") from None
        if not isinstance(blob, dict) or not ({"crypto", "Crypto"} & set(blob)) or "version" not in blob:
            raise ConfigError(f"{path}: JSON, but not an encrypted keystore (it needs 'version' and 'crypto'; "
                              "make one with eth_account's Account.encrypt)")
        if password is None:
            password = os.environ.get("ARLEDGER_KEYSTORE_PASSWORD")
        if password is None:
            password = prompt(f"password for {path}: ")
        try:
            return decrypt_keystore(blob, password)
        except ValueError:
            raise ConfigError(f"{path}: wrong password or damaged keystore") from None
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: damaged keystore (field {exc} missing or malformed)") from None
    return None


def load_context(rpc_url: str | None = None, ledger: str | None = None, key: str | None = None,
                 keystore: str | None = None, dev_account: int | None = None,
                 deployment: Path | None = None, need_account: bool = True) -> Context:
    """Resolve the settings, connect, and return a Ledger bound to the account."""
    source: dict[str, str] = {}
    dep = None
    dep_file = Path(deployment) if deployment else deployment_path()

    def from_dep(field: str):
        nonlocal dep
        if dep is None:
            dep = Deployment.load(dep_file)
        return getattr(dep, field)

    def pick(name: str, flag: Any, env: str, dep_field: str | None):
        if flag:
            source[name] = "flag"
            return flag
        if os.environ.get(env):
            source[name] = f"${env}"
            return os.environ[env]
        if dep_field:
            source[name] = str(dep_file)
            return from_dep(dep_field)
        return None

    rpc = pick("rpc_url", rpc_url, "ARLEDGER_RPC_URL", "rpc_url")
    address = pick("ledger", ledger, "ARLEDGER_LEDGER", "ledger")
    address = _checksummed_ledger(address)
    if key or keystore:
        source["account"] = "flag"
    elif os.environ.get("ARLEDGER_KEY") or os.environ.get("ARLEDGER_KEYSTORE"):
        source["account"] = "$ARLEDGER_KEY" if os.environ.get("ARLEDGER_KEY") else "$ARLEDGER_KEYSTORE"
    if not key and not keystore:  # a flag of either kind beats both env vars
        key = os.environ.get("ARLEDGER_KEY")
        keystore = None if key else os.environ.get("ARLEDGER_KEYSTORE")
    if not key and not keystore and dev_account is not None:
        keys = from_dep("dev_keys")
        if not 0 <= dev_account < len(keys):
            raise ConfigError(f"dev-account: {dev_account} is not one of the devnet's {len(keys)} accounts")
        key = keys[dev_account]
        source["account"] = f"devnet account {dev_account}"
    account = load_account(key, keystore)
    if account is None and need_account:
        raise ConfigError("no account: pass --key/--keystore (or --dev-account N on a devnet), "
                          "or set ARLEDGER_KEY / ARLEDGER_KEYSTORE")
    node = Ledger.connect_rpc(rpc)
    if not node.code(address):
        raise ConfigError(f"ledger: no contract at {address} on {rpc} (chain id {node.chain_id()})")
    deploy_block = 0
    if dep is not None and str(dep.ledger).lower() == str(address).lower():
        deploy_block = int(dep.deploy_block)
    return Context(Ledger(node, address, account, deploy_block=deploy_block), rpc, source)


def _checksummed_ledger(address: Any) -> str:
    """Accept any case of a 20-byte hex address (env vars are often lowercase); reject the rest."""
    text = str(address or "").strip()
    if not is_hex_address(text):
        raise ConfigError(f"ledger: {text!r} is not a contract address (expected 0x + 40 hex digits)")
    if text != text.lower() and text != "0x" + text[2:].upper() and to_checksum_address(text) != text:
        raise ConfigError(f"ledger: {text!r} has a wrong EIP-55 checksum (mistyped?)")
    return to_checksum_address(text)
