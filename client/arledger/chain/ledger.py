"""``Ledger``: every transaction, view and event of TrainingLedger, typed, over JSON-RPC.

Why a thick class: every command (trainer, verifier, demo) talks to the contract
through here, so argument encoding, gas, nonces, receipts and error decoding live in
one place. Below it: ``chain.rpc`` (the node), ``chain.abi`` (the bytes), ``chain.signer``
(the key). Rules:

- Every transaction is estimated first; a call that would revert raises the typed
  exception named after the contract's custom error (``LedgerWrongClaimState`` ...)
  and nothing is sent ("nothing half-written on chain").
- A mined transaction with status 0 raises ``TransactionFailed``.
- Amounts are wei; losses micro-units; CIDs on chain are digests or binary CIDs.
- Nothing here assumes anvil, except ``mine_if_dev_chain`` which is only used when a
  dev chain with automine has no other traffic (see ``wait_for_block``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Sequence

from eth_utils import keccak, to_checksum_address

from arledger.chain.abi import ContractAbi
from arledger.chain.artifact import ContractArtifact, load_artifact
from arledger.chain.errors import RevertDecoder
from arledger.chain.rpc import Call, Log, Rpc
from arledger.chain.signer import Signer, Transaction
from arledger.chain.views import ViewDecoder
from arledger.errors import ChainError, ChainUnavailable, ConfigError, NodeRefused, TransactionFailed, UndecodableResult
from arstore import cid_from_bytes

ZERO32 = b"\x00" * 32


# -- typed views ----------------------------------------------------------------------------
# Each view's fields are the snake_case names of its struct in ITrainingLedger.sol and
# are filled by name (arledger.chain.views); enum fields hold member names ("Open").


@dataclass(frozen=True)
class TaskParams:
    spec_digest: bytes
    reward_per_improvement: int
    verifier_fee: int
    min_trainer_stake: int
    min_verifier_stake: int
    challenge_bond: int
    quorum: int
    reveal_window: int
    challenge_window: int
    voting_window: int
    min_improvement: int
    baseline_loss: int


@dataclass(frozen=True)
class SealParams:
    """What makes a task sealed (``createSealedTask``; arledger.sealed builds it)."""

    shard_root: bytes
    rounds: int
    round_length: int
    open_grace: int
    sponsor_bond: int


@dataclass(frozen=True)
class SealView:
    """A task's sealed schedule (``seal``); ``rounds == 0``: an open task."""

    task_id: int
    shard_root: bytes
    start: int
    round_length: int
    open_grace: int
    rounds: int
    bond: int
    bond_per_round: int

    @property
    def sealed(self) -> bool:
        return self.rounds > 0

    def round_at(self, timestamp: int) -> int | None:
        """The round a commit at ``timestamp`` falls in (None: before the start or after the last)."""
        if timestamp < self.start:
            return None
        r = (timestamp - self.start) // self.round_length
        return r if r < self.rounds else None

    def round_end(self, round_: int) -> int:
        return self.start + (round_ + 1) * self.round_length

    def open_deadline(self, round_: int) -> int:
        return self.round_end(round_) + self.open_grace


@dataclass(frozen=True)
class ClaimSeal:
    """What a claim of a sealed task adds (``claimSeal``)."""

    claim_id: int
    round: int
    scored: bool
    incumbent_id: int
    incumbent_loss: int


@dataclass(frozen=True)
class RoundInfo:
    """One round of a sealed task (``sealedRound``): its shard once opened, its claims, its bond share."""

    task_id: int
    round: int
    digest: bytes
    opened_at: int
    claims: int
    paid: int
    released: bool


@dataclass(frozen=True)
class ShardInfo:
    """An opened shard: its digest (sha256 of its bytes), CID and opening time."""

    task_id: int
    round: int
    digest: bytes
    cid: str
    opened_at: int


@dataclass(frozen=True)
class Task:
    task_id: int
    sponsor: str
    spec_digest: bytes
    pool: int
    reward_per_improvement: int
    verifier_fee: int
    min_trainer_stake: int
    min_verifier_stake: int
    challenge_bond: int
    quorum: int
    reveal_window: int
    challenge_window: int
    voting_window: int
    min_improvement: int
    baseline_loss: int
    best_claim_id: int
    best_loss: int
    claim_count: int


@dataclass(frozen=True)
class Claim:
    claim_id: int
    trainer: str
    task_id: int
    parent_id: int
    num_segments: int
    state: str
    confirmations: int
    merkle_root: bytes
    stake: int
    claimed_loss: int
    challenge_deadline: int
    seed: bytes
    open_dispute: str | None


@dataclass(frozen=True)
class Dispute:
    dispute_id: str
    claim_id: int
    kind: str
    segment: int
    state: str
    challenger: str
    votes_uphold: int
    votes_dismiss: int
    opened_at: int
    voting_deadline: int
    per_voter_share: int


@dataclass(frozen=True)
class VerifierInfo:
    registered: bool
    stake: int
    bindings: int


@dataclass(frozen=True)
class CommitmentInfo:
    block_number: int
    timestamp: int
    revealed: bool


@dataclass(frozen=True)
class Event:
    """A decoded contract event with what a follower needs (block hash, log index)."""

    name: str
    args: dict
    block_number: int
    block_hash: str
    log_index: int
    tx_hash: str


@dataclass(frozen=True)
class RevealInfo:
    """What only the ClaimRevealed event carries (not stored by the contract, for gas)."""

    claim_id: int
    code_cid: str
    manifest_digest: bytes
    commitment: bytes
    block_number: int
    timestamp: int
    tx_hash: str


@dataclass
class TxResult:
    tx_hash: str
    block_number: int
    gas_used: int
    events: list[Event] = field(default_factory=list)

    def event(self, name: str) -> dict:
        for ev in self.events:
            if ev.name == name:
                return ev.args
        raise KeyError(f"transaction {self.tx_hash} emitted no {name} event")


def _hex(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def _b32(value: Any, field: str = "value") -> bytes:
    """32 bytes from bytes or hex text; a ConfigError naming ``field`` otherwise."""
    try:
        if isinstance(value, str):
            value = bytes.fromhex(value[2:] if value.startswith("0x") else value)
        value = bytes(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{field}: expected 32 bytes (or 64 hex digits), got {value!r}") from None
    if len(value) != 32:
        raise ConfigError(f"{field}: expected 32 bytes, got {len(value)}")
    return value


@dataclass(frozen=True)
class ClaimFields:
    """What a claim commits to and then reveals: ITrainingLedger's ``ClaimFields`` by name, the
    one list of them in Python (their order and types come from the ABI: ``compute_commitment``)."""

    task_id: int
    parent_id: int
    code_cid: bytes
    manifest_digest: bytes
    merkle_root: bytes
    num_segments: int
    claimed_loss: int
    salt: bytes
    round: int = 0  # a sealed task's round (arledger.sealed); 0 on an open task

    def __post_init__(self):
        object.__setattr__(self, "code_cid", bytes(self.code_cid))
        for name in ("manifest_digest", "merkle_root", "salt"):
            object.__setattr__(self, name, _b32(getattr(self, name), name))


@dataclass(frozen=True)
class Evidence:
    """What a challenge puts on chain (``challenge``'s arguments after the claim id): the kind, and
    for a segment the claimed boundary hashes with their Merkle proofs and the end state the
    challenger observed; an artifact or evaluation challenge leaves the rest at zero (an
    evaluation's ``observed`` is the measured loss, right-aligned)."""

    kind: str | int
    segment: int = 0
    claimed_start: Any = ZERO32
    claimed_end: Any = ZERO32
    start_proof: Sequence = ()
    end_proof: Sequence = ()
    observed: Any = ZERO32


def compute_commitment(trainer: str, fields: ClaimFields, artifact: ContractArtifact | None = None) -> bytes:
    """keccak256(abi.encode(trainer, fields)): the contract's ``commitmentOf``, computed here: its
    two arguments as the ABI encodes them (the call data without the selector), the struct's
    component order and types read from the ABI."""
    artifact = artifact or load_artifact()
    args = [to_checksum_address(trainer), ViewDecoder(artifact).struct_arg("reveal", fields)]
    return keccak(ContractAbi(artifact.abi).call_data("commitmentOf", args)[4:])


# -- the ledger -----------------------------------------------------------------------------


class Ledger:
    """One deployed TrainingLedger, seen through one JSON-RPC endpoint and (optionally) one account."""

    def __init__(self, rpc: Rpc, address: str, account: Signer | None = None,
                 artifact: ContractArtifact | None = None, deploy_block: int = 0):
        self.rpc = rpc
        # Where log scans start: nothing of this ledger exists before its deployment.
        self.deploy_block = int(deploy_block)
        self.artifact = artifact or load_artifact()
        self.address = to_checksum_address(address)
        self.account = account
        self.abi = ContractAbi(self.artifact.abi)
        self.decoder = RevertDecoder(self.artifact.abi)
        self.views = ViewDecoder(self.artifact)

    # -- construction ----------------------------------------------------------------

    @staticmethod
    def connect_rpc(rpc_url: str, timeout: float = 30) -> Rpc:
        """An endpoint that answered (its chain id): ChainUnavailable naming the URL otherwise."""
        rpc = Rpc(rpc_url, timeout)
        try:
            rpc.chain_id()
        except NodeRefused as exc:
            raise ChainUnavailable(f"{rpc_url} refused eth_chainId ({exc.message}): is it an Ethereum JSON-RPC "
                                   "node?") from None
        return rpc

    @classmethod
    def deploy(cls, rpc: Rpc, account: Signer, artifact: ContractArtifact | None = None) -> "Ledger":
        artifact = artifact or load_artifact()
        receipt = _send(rpc, account, Call(None, bytes.fromhex(artifact.bytecode[2:]), account.address),
                        "deploy", RevertDecoder(artifact.abi))
        if receipt.status != 1 or not receipt.contract_address:
            raise TransactionFailed(f"deploy: transaction {receipt.tx_hash} failed in block {receipt.block_number}")
        return cls(rpc, receipt.contract_address, account, artifact, deploy_block=receipt.block_number)

    def with_account(self, account: Signer | None) -> "Ledger":
        return Ledger(self.rpc, self.address, account, self.artifact, self.deploy_block)

    @property
    def account_address(self) -> str:
        if self.account is None:
            raise ConfigError("no account configured: set ARLEDGER_KEY or ARLEDGER_KEYSTORE (or pass --key)")
        return self.account.address

    @property
    def chain_id(self) -> int:
        return self.rpc.chain_id()

    # -- sending ---------------------------------------------------------------------

    def _transact(self, fn_name: str, *args: Any, value: int = 0) -> TxResult:
        call = Call(self.address, self.abi.call_data(fn_name, args), self.account_address, int(value))
        receipt = _send(self.rpc, self.account, call, fn_name, self.decoder)
        result = TxResult(receipt.tx_hash, receipt.block_number, receipt.gas_used,
                          [ev for ev in map(self._decode_log, receipt.logs) if ev is not None])
        if receipt.status != 1:
            raise TransactionFailed(f"{fn_name}: transaction {result.tx_hash} failed in block {result.block_number}")
        return result

    def _call(self, fn_name: str, *args: Any) -> Any:
        try:
            data = self.rpc.call(Call(self.address, self.abi.call_data(fn_name, args)))
        except NodeRefused as exc:
            raise _refusal(exc, fn_name, self.decoder, "call") from None
        try:
            return self.abi.decode_result(fn_name, data)
        except UndecodableResult:
            # Empty or undecodable return data: the address holds some other contract.
            raise ConfigError(f"ledger: the contract at {self.address} does not answer {fn_name}() as a "
                              "TrainingLedger does: is --ledger (or $ARLEDGER_LEDGER) the ledger's address? "
                              "`artrain ledger verify` checks one") from None

    def _decode_log(self, log: Log) -> Event | None:
        if to_checksum_address(log.address) != self.address:
            return None
        decoded = self.abi.decode_log(log.topics, log.data)
        if decoded is None:
            return None
        name, args = decoded
        return Event(name, args, log.block_number, log.block_hash, log.log_index, log.tx_hash)

    # -- tasks -----------------------------------------------------------------------

    def create_task(self, params: TaskParams, value: int = 0) -> TxResult:
        return self._transact("createTask", self.views.struct_arg("createTask", params), value=value)

    def create_sealed_task(self, params: TaskParams, seal: SealParams, value: int = 0) -> TxResult:
        return self._transact("createSealedTask", self.views.struct_arg("createSealedTask", params, 0),
                              self.views.struct_arg("createSealedTask", seal, 1), value=value)

    def seal(self, task_id: int) -> SealView:
        return self.views.into(SealView, "seal", self._call("seal", task_id), task_id=task_id)

    def open_shard(self, task_id: int, round_: int, digest: bytes, cid: bytes, proof: Sequence[bytes]) -> TxResult:
        return self._transact("openShard", task_id, round_, _b32(digest, "shard digest"), bytes(cid),
                              [_b32(p, "proof") for p in proof])

    def sealed_round(self, task_id: int, round_: int) -> RoundInfo:
        return self.views.into(RoundInfo, "sealedRound", self._call("sealedRound", task_id, round_),
                               task_id=task_id, round=round_)

    def shard(self, task_id: int, round_: int) -> ShardInfo | None:
        """Round ``round_``'s opened shard (None while it is sealed), its CID from ShardOpened."""
        r = self.sealed_round(task_id, round_)
        digest, opened_at = r.digest, r.opened_at
        if not opened_at:
            return None
        evs = self.events(self.deploy_block, self.block_number(), ["ShardOpened"],
                          topics=[self._event_topic("ShardOpened"), _hex(int(task_id).to_bytes(32, "big")),
                                  _hex(int(round_).to_bytes(32, "big"))])
        if not evs:
            raise ConfigError(f"task {task_id} round {round_}: opened on chain but no ShardOpened event found")
        return ShardInfo(task_id, round_, bytes(digest), cid_from_bytes(evs[-1].args["shardCid"]), int(opened_at))

    def score(self, claim_id: int, claimed_loss: int, incumbent_id: int, incumbent_loss: int) -> TxResult:
        return self._transact("score", claim_id, int(claimed_loss), int(incumbent_id), int(incumbent_loss))

    def claim_seal(self, claim_id: int) -> ClaimSeal:
        return self.views.into(ClaimSeal, "claimSeal", self._call("claimSeal", claim_id), claim_id=claim_id)

    def release_round(self, task_id: int, round_: int) -> TxResult:
        return self._transact("releaseRound", task_id, round_)

    def fund_task(self, task_id: int, value: int) -> TxResult:
        return self._transact("fundTask", task_id, value=value)

    def task(self, task_id: int) -> Task:
        return self.views.into(Task, "task", self._call("task", task_id), task_id=task_id)

    def task_count(self) -> int:
        return self._call("taskCount")

    # -- claims ----------------------------------------------------------------------

    def compute_commitment(self, trainer: str, fields: ClaimFields) -> bytes:
        return compute_commitment(trainer, fields, self.artifact)

    def commitment_of(self, trainer: str, fields: ClaimFields) -> bytes:
        """The contract's own ``commitmentOf`` (a view; ``compute_commitment`` gives the same here)."""
        return bytes(self._call("commitmentOf", to_checksum_address(trainer), self.views.struct_arg("reveal", fields)))

    def commit(self, commitment: bytes) -> TxResult:
        return self._transact("commit", _b32(commitment, "commitment"))

    def commitment_info(self, commitment: bytes) -> CommitmentInfo:
        return self.views.into(CommitmentInfo, "commitmentInfo", self._call("commitmentInfo", _b32(commitment, "commitment")))

    def reveal(self, fields: ClaimFields, value: int) -> TxResult:
        return self._transact("reveal", self.views.struct_arg("reveal", fields), value=value)

    def claim(self, claim_id: int) -> Claim:
        c = self.views.into(Claim, "claim", self._call("claim", claim_id), claim_id=claim_id)
        return replace(c, open_dispute=None if c.open_dispute == ZERO32 else _hex(c.open_dispute))

    def claim_state(self, claim_id: int) -> str:
        return self.views.decode("claimState", self._call("claimState", claim_id))

    def confirmations(self, claim_id: int) -> int:
        return self.claim(claim_id).confirmations

    def best_claim(self, task_id: int) -> tuple[int, int]:
        best = self.views.decode("bestClaim", self._call("bestClaim", task_id))
        return best["claim_id"], best["loss"]

    def task_claims(self, task_id: int, offset: int = 0, limit: int = 100) -> list[int]:
        return list(self._call("taskClaims", task_id, offset, limit))

    def claim_count(self, task_id: int) -> int:
        return self._call("claimCount", task_id)

    def total_claims(self) -> int:
        return self._call("totalClaims")

    def sample_seed(self, claim_id: int) -> bytes:
        return bytes(self._call("sampleSeed", claim_id))

    def finalize(self, claim_id: int) -> TxResult:
        return self._transact("finalize", claim_id)

    def report(self, task_id: int, code_cid: bytes, manifest_digest: bytes, loss: int, note: str) -> TxResult:
        return self._transact("report", task_id, bytes(code_cid), _b32(manifest_digest, "manifest_digest"), loss, note)

    # -- verifiers -------------------------------------------------------------------

    def register_verifier(self, value: int) -> TxResult:
        return self._transact("registerVerifier", value=value)

    def unregister_verifier(self) -> TxResult:
        return self._transact("unregisterVerifier")

    def verifier_info(self, account: str) -> VerifierInfo:
        return self.views.into(VerifierInfo, "verifierInfo", self._call("verifierInfo", to_checksum_address(account)))

    def confirm(self, claim_id: int, segments: Sequence[int], measured_loss: int) -> TxResult:
        return self._transact("confirm", claim_id, [int(s) for s in segments], int(measured_loss))

    def has_confirmed(self, claim_id: int, account: str) -> bool:
        return self._call("hasConfirmed", claim_id, to_checksum_address(account))

    def challenge(self, claim_id: int, evidence: Evidence, value: int | None = None) -> TxResult:
        """Open a dispute with ``evidence``; ``value``: the bond [default: the task's exact bond]."""
        e = evidence
        if value is None:
            value = self.task(self.claim(claim_id).task_id).challenge_bond
        return self._transact("challenge", claim_id, self._kind(e.kind), e.segment,
                              _b32(e.claimed_start, "claimed_start"), _b32(e.claimed_end, "claimed_end"),
                              [_b32(p, "start_proof") for p in e.start_proof],
                              [_b32(p, "end_proof") for p in e.end_proof], _b32(e.observed, "observed"),
                              value=value)

    def _kind(self, kind: str | int) -> int:
        kinds = self.artifact.enum("ChallengeKind")
        if isinstance(kind, str):
            if kind not in kinds:
                raise ConfigError(f"challenge kind: {kind!r} is not one of {', '.join(kinds)}")
            return kinds.index(kind)
        if not 0 <= int(kind) < len(kinds):
            raise ConfigError(f"challenge kind: {kind} is not one of 0..{len(kinds) - 1} ({', '.join(kinds)})")
        return int(kind)

    def dispute_id(self, claim_id: int, kind: str | int, segment: int) -> str:
        """The contract's own ``disputeIdOf`` (one definition of the id, on chain)."""
        return _hex(self._call("disputeIdOf", claim_id, self._kind(kind), segment))

    def dispute(self, dispute_id: str | bytes) -> Dispute:
        did = _b32(dispute_id, "dispute_id")
        return self.views.into(Dispute, "dispute", self._call("dispute", did), dispute_id=_hex(did))

    def dispute_state(self, dispute_id: str | bytes) -> str:
        return self.views.decode("disputeState", self._call("disputeState", _b32(dispute_id, "dispute_id")))

    def vote(self, dispute_id: str | bytes, uphold: bool) -> TxResult:
        return self._transact("vote", _b32(dispute_id, "dispute_id"), bool(uphold))

    def has_voted(self, dispute_id: str | bytes, account: str) -> bool:
        return self._call("hasVoted", _b32(dispute_id, "dispute_id"), to_checksum_address(account))

    def resolve_dispute(self, dispute_id: str | bytes) -> TxResult:
        return self._transact("resolveDispute", _b32(dispute_id, "dispute_id"))

    def settle(self, claim_id: int) -> TxResult:
        return self._transact("settle", claim_id)

    def settle_vote(self, dispute_id: str | bytes) -> TxResult:
        return self._transact("settleVote", _b32(dispute_id, "dispute_id"))

    # -- money -----------------------------------------------------------------------

    def balance_of(self, account: str) -> int:
        return self._call("balanceOf", to_checksum_address(account))

    def withdraw(self) -> TxResult:
        return self._transact("withdraw")

    # -- Merkle helpers on chain -----------------------------------------------------

    def leaf_hash(self, index: int, state_hash: bytes) -> bytes:
        return bytes(self._call("leafHash", index, _b32(state_hash, "state_hash")))

    def verify_boundary(self, claim_id: int, index: int, state_hash: bytes, proof: Sequence[bytes]) -> bool:
        return self._call("verifyBoundary", claim_id, index, _b32(state_hash, "state_hash"),
                          [_b32(p, "proof") for p in proof])

    # -- blocks and events -----------------------------------------------------------

    def block_number(self) -> int:
        return self.rpc.block_number()

    def block_hash(self, number: int) -> str:
        return self.rpc.block(number).hash

    def block_timestamp(self, number: int | str = "latest") -> int:
        return self.rpc.block(number).timestamp

    def events(self, from_block: int, to_block: int, names: Iterable[str] | None = None,
               topics: list | None = None) -> list[Event]:
        """Decoded events of this contract in [from_block, to_block], in chain order."""
        if to_block < from_block:
            return []
        wanted = set(names) if names else None
        out = []
        for log in self.rpc.logs(self.address, from_block, to_block, topics):
            ev = self._decode_log(log)
            if ev is not None and (wanted is None or ev.name in wanted):
                out.append(ev)
        return sorted(out, key=lambda e: (e.block_number, e.log_index))

    def _event_topic(self, name: str) -> str:
        return _hex(self.abi.event_topic(name))

    def claim_revealed_event(self, claim_id: int) -> RevealInfo:
        """The ClaimRevealed event of a claim (code CID, manifest digest: not stored on chain)."""
        topic_id = _hex(int(claim_id).to_bytes(32, "big"))
        evs = self.events(self.deploy_block, self.block_number(), ["ClaimRevealed"],
                          topics=[self._event_topic("ClaimRevealed"), topic_id])
        if not evs:
            raise ConfigError(f"claim {claim_id}: no ClaimRevealed event on this chain (unknown claim?)")
        ev = evs[-1]
        a = ev.args
        return RevealInfo(claim_id, cid_from_bytes(a["codeCid"]), bytes(a["manifestDigest"]),
                          bytes(a["commitment"]), ev.block_number, self.block_timestamp(ev.block_number), ev.tx_hash)

    def confirmed_segments(self, claim_id: int) -> tuple[int, ...]:
        """Every segment the claim's confirmations so far listed (ClaimConfirmed events), sorted:
        the later verifiers' sampling spreads around them (arverifier.sampling)."""
        topic_id = _hex(int(claim_id).to_bytes(32, "big"))
        evs = self.events(self.deploy_block, self.block_number(), ["ClaimConfirmed"],
                          topics=[self._event_topic("ClaimConfirmed"), topic_id])
        return tuple(sorted({int(s) for ev in evs for s in ev.args["segments"]}))

    def find_reveal(self, commitment: bytes, trainer: str) -> Event:
        wanted = _b32(commitment, "commitment")
        topic_trainer = _hex(bytes(12) + bytes.fromhex(to_checksum_address(trainer)[2:]))
        evs = self.events(self.deploy_block, self.block_number(), ["ClaimRevealed"],
                          topics=[self._event_topic("ClaimRevealed"), None, None, topic_trainer])
        for ev in evs:
            if bytes(ev.args["commitment"]) == wanted:
                return ev
        raise ConfigError(f"commitment {_hex(wanted)}: revealed on chain but no ClaimRevealed event found")

    def wait_for_block(self, number: int, timeout: float = 120.0, poll: float = 0.2) -> None:
        """Wait until the chain head is at least ``number``.

        On a dev chain that mines only on demand (anvil/hardhat automine) with no other
        traffic the head would never move, so empty blocks are mined there (``evm_mine``)
        until it arrives; a real chain refuses ``evm_mine`` and is simply waited for.
        """
        deadline = time.monotonic() + timeout
        can_mine = True
        while self.block_number() < number:
            if can_mine:
                can_mine = self.mine_if_dev_chain()
                if can_mine:
                    continue
            if time.monotonic() > deadline:
                raise ChainUnavailable(f"block {number} did not arrive within {timeout:.0f}s "
                                       f"(head is {self.block_number()})")
            time.sleep(poll)

    def mine_if_dev_chain(self) -> bool:
        """Mine one empty block if the node allows it (anvil, hardhat); False on a real chain."""
        try:
            self.rpc.request("evm_mine")
        except ChainError:
            return False
        return True


# -- sending, shared by deployment and calls -------------------------------------------------


def _send(rpc: Rpc, account: Signer, call: Call, what: str, decoder: RevertDecoder):
    """Estimate (a revert raises its typed error, nothing sent), price, sign, send, wait: the receipt."""
    try:
        gas = int(rpc.estimate_gas(call) * 1.25) + 10_000
    except NodeRefused as exc:
        raise _refusal(exc, what, decoder, "transaction") from None
    base_fee = rpc.block("latest").base_fee
    tx = Transaction(rpc.chain_id(), rpc.nonce(account.address), gas, call.to, call.value, call.data)
    if base_fee is None:  # a chain without EIP-1559: a legacy transaction at the node's price
        tx = replace(tx, gas_price=rpc.gas_price())
    else:
        tip = 10**9  # 1 gwei: enough on a dev chain and a quiet one; the max fee absorbs a rise
        tx = replace(tx, max_priority_fee=tip, max_fee=base_fee * 2 + tip)
    try:
        tx_hash = rpc.send_raw(account.sign_transaction(tx))
    except NodeRefused as exc:  # nonce too low, underpriced, insufficient funds...
        raise ChainError(f"the node rejected the transaction from {account.address}: {exc.message}") from None
    return rpc.wait_for_receipt(tx_hash)


def _refusal(exc: NodeRefused, what: str, decoder: RevertDecoder, kind: str) -> ChainError:
    """A node's error answer as what it means: the contract's revert (typed), or the node refusing
    the call or transaction. Anvil puts the revert payload in the error's ``data``; Hardhat and
    Ganache nest it one level down (``{"message": ..., "data": "0x..."}``)."""
    data = exc.data
    while isinstance(data, dict):
        data = data.get("data")
    if data is None and "revert" not in exc.message.lower():
        return ChainError(f"{what}: the node refused the {kind}: {exc.message}")
    err = decoder.decode(data, what)
    if not err.data and "revert" in exc.message.lower():
        err = type(err)(f"{what}: {exc.message}", err.error_args, err.data)
    return err
