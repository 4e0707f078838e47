// Shared helpers for the TrainingLedger Hardhat tests: deployment snapshots, default task
// parameters, commit/reveal in one call, time travel. No network-helpers package: the
// snapshot/time calls go straight to the Hardhat node's JSON-RPC.
"use strict";
const { ethers, network } = require("hardhat");

const E = ethers.parseEther;

/** Enums as the contract numbers them. */
const ClaimState = { None: 0, Open: 1, Disputed: 2, Finalizable: 3, Accepted: 4, Rejected: 5, Expired: 6, Sealed: 7 };
const Kind = { Segment: 0, Artifact: 1, FinalEvaluation: 2 };
const DisputeState = { None: 0, Voting: 1, Resolvable: 2, Upheld: 3, Dismissed: 4, Inconclusive: 5 };

const HOUR = 3600;

function defaultParams(overrides = {}) {
  return {
    specDigest: ethers.sha256(ethers.toUtf8Bytes("task-spec")),
    rewardPerImprovement: E("1"),
    verifierFee: E("0.01"),
    minTrainerStake: E("0.1"),
    minVerifierStake: E("0.05"),
    challengeBond: E("0.02"),
    quorum: 2,
    revealWindow: HOUR,
    challengeWindow: 2 * HOUR,
    votingWindow: HOUR,
    minImprovement: 1000n,
    baselineLoss: 2_000_000n,
    ...overrides,
  };
}

async function snapshot() {
  return network.provider.send("evm_snapshot", []);
}

async function revertTo(id) {
  await network.provider.send("evm_revert", [id]);
}

/** Run `build` once, then give every caller a fresh copy of the same chain state. */
function fixture(build) {
  let snap = null;
  let value = null;
  return async () => {
    if (snap === null) {
      value = await build();
      snap = await snapshot();
    } else {
      await revertTo(snap);
      snap = await snapshot();
    }
    return value;
  };
}

async function increaseTime(seconds) {
  await network.provider.send("evm_increaseTime", [Number(seconds)]);
  await network.provider.send("evm_mine", []);
}

async function latestTime() {
  return (await ethers.provider.getBlock("latest")).timestamp;
}

async function mine() {
  await network.provider.send("evm_mine", []);
}

async function deployLedger() {
  const Ledger = await ethers.getContractFactory("TrainingLedger");
  const ledger = await Ledger.deploy();
  await ledger.waitForDeployment();
  return ledger;
}

/** Claim fields with sensible defaults; `hashes` (N+1 state hashes) give the Merkle root. */
function claimFields(overrides = {}) {
  return {
    taskId: 1,
    parentId: 0,
    codeCid: "0x01551220" + "ab".repeat(32), // CIDv1 raw sha2-256
    manifestDigest: ethers.sha256(ethers.toUtf8Bytes("manifest")),
    merkleRoot: ethers.keccak256(ethers.toUtf8Bytes("root")),
    numSegments: 4,
    claimedLoss: 1_500_000n,
    salt: ethers.hexlify(ethers.randomBytes(32)),
    round: 0,
    ...overrides,
  };
}

// ClaimFields, in the struct's order (ITrainingLedger.sol); the commitment is keccak256(abi.encode(trainer, f)).
const CLAIM_FIELDS = "tuple(uint32 taskId, uint32 parentId, bytes codeCid, bytes32 manifestDigest, bytes32 merkleRoot, " +
  "uint16 numSegments, uint64 claimedLoss, bytes32 salt, uint16 round)";

function commitmentOf(trainer, f) {
  return ethers.keccak256(ethers.AbiCoder.defaultAbiCoder().encode(["address", CLAIM_FIELDS], [trainer, f]));
}

/** reveal()'s arguments: the one ClaimFields struct. */
function revealArgs(f) {
  return [f];
}

/** Commit, mine, reveal; returns { claimId, fields, commitment, commitTx, revealTx }. */
async function commitReveal(ledger, trainer, overrides = {}, stake = E("0.1")) {
  const f = claimFields(overrides);
  const commitment = commitmentOf(trainer.address, f);
  const commitTx = await ledger.connect(trainer).commit(commitment);
  const revealTx = await ledger.connect(trainer).reveal(...revealArgs(f), { value: stake });
  const receipt = await revealTx.wait();
  const event = receipt.logs.map((l) => ledger.interface.parseLog(l)).find((e) => e && e.name === "ClaimRevealed");
  return { claimId: event.args.claimId, fields: f, commitment, commitTx, revealTx };
}

function disputeIdOf(claimId, kind, segment) {
  return ethers.keccak256(
    ethers.AbiCoder.defaultAbiCoder().encode(["uint32", "uint8", "uint16"], [claimId, kind, segment]),
  );
}

async function gasOf(txPromise) {
  const tx = await txPromise;
  const receipt = await tx.wait();
  return receipt.gasUsed;
}

module.exports = {
  E,
  HOUR,
  ClaimState,
  Kind,
  DisputeState,
  defaultParams,
  fixture,
  increaseTime,
  latestTime,
  mine,
  deployLedger,
  claimFields,
  commitmentOf,
  revealArgs,
  commitReveal,
  disputeIdOf,
  gasOf,
};
