// Sealed evaluation (docs/sealed-evaluation.md): rounds, shards opened against the sponsor's
// Merkle commitment, losses revealed only after the shard, head to head on one shard, and a
// sponsor who does not open a shard paying for it. The shard tree is the checkpoint tree's
// layout (leaf(round, digest)), so the shared vectors give real roots and proofs.
"use strict";
const { expect } = require("chai");
const { ethers } = require("hardhat");
const vectors = require("../vectors/merkle.json");
const {
  E, HOUR, ClaimState, Kind, DisputeState, defaultParams, deployLedger, claimFields, commitmentOf, fixture,
  increaseTime, latestTime, disputeIdOf,
} = require("./helpers");

const shards = vectors.cases.find((c) => c.numLeaves === 3); // three rounds: digests, root, proofs
const ROUND = 4 * HOUR;
const GRACE = HOUR;
const BOND = E("0.3"); // 0.1 per round: the task's minimum trainer stake
const PER_ROUND = E("0.1");
const CID = "0x01551220" + "cd".repeat(32);

function sealParams(overrides = {}) {
  return { shardRoot: shards.root, rounds: 3, roundLength: ROUND, openGrace: GRACE, sponsorBond: BOND, ...overrides };
}

const setup = fixture(async () => {
  const [sponsor, trainer, other, v1, v2, challenger] = await ethers.getSigners();
  const ledger = await deployLedger();
  await ledger.connect(sponsor).createSealedTask(defaultParams({ quorum: 1 }), sealParams(), { value: E("3") });
  for (const v of [v1, v2]) await ledger.connect(v).registerVerifier({ value: E("1") });
  const start = (await ledger.seal(1)).start;
  return { ledger, sponsor, trainer, other, v1, v2, challenger, start };
});

/** Commit now and reveal at once, naming `round` (default: the round the commit falls in). */
async function sealedClaim(ledger, trainer, overrides = {}) {
  const f = claimFields({ claimedLoss: 0n, ...overrides });
  await ledger.connect(trainer).commit(commitmentOf(trainer.address, f));
  const receipt = await (await ledger.connect(trainer).reveal(f, { value: E("0.1") })).wait();
  const ev = receipt.logs.map((l) => ledger.interface.parseLog(l)).find((e) => e && e.name === "ClaimRevealed");
  return ev.args.claimId;
}

/** Move to `seconds` after the task's start. */
async function at(start, seconds) {
  const now = await latestTime();
  await increaseTime(Number(start) + seconds - now);
}

async function open(ledger, round, who) {
  return ledger.connect(who).openShard(1, round, shards.stateHashes[round], CID, shards.proofs[round]);
}

describe("Sealed tasks: rounds and shards", function () {
  it("holds the bond apart from the pool and validates the schedule", async function () {
    const { ledger, sponsor } = await setup();
    expect((await ledger.task(1)).pool).to.equal(E("3") - BOND);
    const s = await ledger.seal(1);
    expect([s.shardRoot, s.rounds, s.roundLength, s.bond, s.bondPerRound]).to.deep.equal([shards.root, 3n, BigInt(ROUND), BOND, PER_ROUND]);
    // a round's share must cover one minimum stake
    await expect(ledger.connect(sponsor).createSealedTask(defaultParams(), sealParams({ sponsorBond: E("0.29") }), { value: E("1") }))
      .to.be.revertedWithCustomError(ledger, "LedgerInvalidTaskParam").withArgs("sponsorBond");
    for (const [field, bad] of [["shardRoot", ethers.ZeroHash], ["rounds", 0], ["roundLength", 0], ["openGrace", 0]]) {
      await expect(ledger.connect(sponsor).createSealedTask(defaultParams(), sealParams({ [field]: bad }), { value: E("1") }))
        .to.be.revertedWithCustomError(ledger, "LedgerInvalidTaskParam").withArgs(field);
    }
    await expect(ledger.connect(sponsor).createSealedTask(defaultParams(), sealParams(), { value: E("0.1") }))
      .to.be.revertedWithCustomError(ledger, "LedgerStakeTooLow");
    expect((await ledger.seal(1)).rounds).to.equal(3n);
  });

  it("a sealed reveal states no loss, counts in its round, and cannot be confirmed yet", async function () {
    const { ledger, trainer, v1 } = await setup();
    await expect(sealedClaim(ledger, trainer, { claimedLoss: 1_000_000n }))
      .to.be.revertedWithCustomError(ledger, "LedgerInvalidField").withArgs("claimedLoss");
    const id = await sealedClaim(ledger, trainer);
    expect(await ledger.claimState(id)).to.equal(ClaimState.Sealed);
    const cs = await ledger.claimSeal(id);
    expect([cs.round, cs.scored]).to.deep.equal([0n, false]);
    expect((await ledger.sealedRound(1, 0)).claims).to.equal(1n);
    await expect(ledger.connect(v1).confirm(id, [0], 1n)).to.be.revertedWithCustomError(ledger, "LedgerWrongClaimState");
  });

  it("refuses a claim naming an old round, a reveal after its round closed, and commits after the last round", async function () {
    const { ledger, trainer, start } = await setup();
    await at(start, ROUND + 10); // round 1
    await expect(sealedClaim(ledger, trainer, { round: 0 }))
      .to.be.revertedWithCustomError(ledger, "LedgerWrongRound").withArgs(1, 0, 1);
    const f = claimFields({ claimedLoss: 0n, round: 1 });
    await at(start, 2 * ROUND - 60); // late in round 1: the reveal window would still be open
    await ledger.connect(trainer).commit(commitmentOf(trainer.address, f));
    await at(start, 2 * ROUND + 1); // round 1 closed before the reveal
    await expect(ledger.connect(trainer).reveal(f, { value: E("0.1") }))
      .to.be.revertedWithCustomError(ledger, "LedgerRoundClosed").withArgs(1, 1, Number(start) + 2 * ROUND);
    await at(start, 3 * ROUND + 5);
    await expect(sealedClaim(ledger, trainer, { round: 3 })).to.be.revertedWithCustomError(ledger, "LedgerRoundsOver");
  });

  it("opens a shard only after its round, only with its proof, once, within the grace", async function () {
    const { ledger, sponsor, other, start } = await setup();
    await expect(open(ledger, 0, sponsor)).to.be.revertedWithCustomError(ledger, "LedgerRoundNotClosed")
      .withArgs(1, 0, Number(start) + ROUND);
    await at(start, ROUND);
    // the digest of another round, or round 0's digest with round 1's proof: refused
    await expect(ledger.connect(sponsor).openShard(1, 0, shards.stateHashes[1], CID, shards.proofs[1]))
      .to.be.revertedWithCustomError(ledger, "LedgerInvalidShardProof").withArgs(1, 0);
    await expect(ledger.connect(sponsor).openShard(1, 0, shards.stateHashes[0], CID, shards.proofs[1]))
      .to.be.revertedWithCustomError(ledger, "LedgerInvalidShardProof");
    await expect(open(ledger, 0, other)).to.emit(ledger, "ShardOpened").withArgs(1, 0, shards.stateHashes[0], CID)
      .and.to.emit(ledger, "SponsorBondReleased").withArgs(1, sponsor.address, PER_ROUND); // the round's share goes back
    expect((await ledger.sealedRound(1, 0)).digest).to.equal(shards.stateHashes[0]);
    expect(await ledger.balanceOf(sponsor.address)).to.equal(PER_ROUND);
    await expect(open(ledger, 0, sponsor)).to.be.revertedWithCustomError(ledger, "LedgerShardOpened");
    await at(start, 2 * ROUND + GRACE + 1);
    await expect(open(ledger, 1, sponsor)).to.be.revertedWithCustomError(ledger, "LedgerShardLate");
    await expect(ledger.connect(sponsor).openShard(1, 3, shards.stateHashes[0], CID, []))
      .to.be.revertedWithCustomError(ledger, "LedgerInvalidField").withArgs("round");
  });
});

describe("Sealed tasks: losses after the shard, head to head", function () {
  it("refuses a loss before the shard is open, and from anyone but the trainer", async function () {
    const { ledger, trainer, other } = await setup();
    const id = await sealedClaim(ledger, trainer);
    await expect(ledger.connect(trainer).score(id, 1_500_000n, 0, 1_900_000n))
      .to.be.revertedWithCustomError(ledger, "LedgerShardNotOpen").withArgs(1, 0);
    await expect(ledger.connect(other).score(id, 1_500_000n, 0, 1_900_000n))
      .to.be.revertedWithCustomError(ledger, "LedgerNotTrainer");
  });

  it("moves the pointer on a same-shard win: the round's better claim wins whichever finalizes first", async function () {
    const { ledger, sponsor, trainer, other, v1, start } = await setup();
    const a = await sealedClaim(ledger, trainer);
    const b = await sealedClaim(ledger, other, { salt: ethers.ZeroHash.replace(/0$/, "b") });
    const c = await sealedClaim(ledger, v1, { salt: ethers.ZeroHash.replace(/0$/, "c") });
    await at(start, ROUND);
    await open(ledger, 0, sponsor);
    await expect(ledger.connect(trainer).score(a, 1_500_000n, 0, 1_900_000n)).to.emit(ledger, "ClaimScored");
    await ledger.connect(other).score(b, 1_400_000n, 0, 1_900_000n);
    await ledger.connect(v1).score(c, 1_450_000n, 0, 1_900_000n);
    expect((await ledger.seal(1)).bond).to.equal(BOND - PER_ROUND);
    expect(await ledger.claimState(a)).to.equal(ClaimState.Open);
    const cs = await ledger.claimSeal(b);
    expect([cs.scored, cs.incumbentId, cs.incumbentLoss]).to.deep.equal([true, 0n, 1_900_000n]);
    const [, , , , v2] = await ethers.getSigners();
    for (const [id, loss] of [[a, 1_500_000n], [b, 1_400_000n], [c, 1_450_000n]]) await ledger.connect(v2).confirm(id, [0], loss);
    await increaseTime(2 * HOUR + 1);
    await expect(ledger.finalize(a)).to.emit(ledger, "BestClaimChanged").withArgs(1, a, 1_500_000n, 0, 2_000_000n);
    // b was scored against the baseline; the best is now a, scored on the same shard: b beats it there
    await expect(ledger.finalize(b)).to.emit(ledger, "BestClaimChanged").withArgs(1, b, 1_400_000n, a, 1_500_000n);
    // c beat the baseline and a, but not b, the round's best: no pointer move, stake back less the fee
    await expect(ledger.finalize(c)).to.emit(ledger, "ClaimFinalized").withArgs(c, 1, ClaimState.Accepted, false, 0, E("0.09"));
    expect((await ledger.bestClaim(1)).claimId).to.equal(b);
  });

  it("never compares across shards: a best from another round stops a claim scored before it", async function () {
    const { ledger, sponsor, trainer, other, v1 } = await setup();
    // a challenge window longer than a round: a round-0 claim is still open when round 1's claim finalizes
    await ledger.connect(sponsor).createSealedTask(defaultParams({ quorum: 1, challengeWindow: 3 * ROUND }), sealParams(), { value: E("1") });
    const start2 = (await ledger.seal(2)).start;
    const r0 = await sealedClaim(ledger, trainer, { taskId: 2 });
    await at(start2, ROUND);
    await ledger.connect(sponsor).openShard(2, 0, shards.stateHashes[0], CID, shards.proofs[0]);
    const r1 = await sealedClaim(ledger, other, { taskId: 2, round: 1 });
    await ledger.connect(trainer).score(r0, 1_500_000n, 0, 1_900_000n);
    await at(start2, 2 * ROUND);
    await ledger.connect(sponsor).openShard(2, 1, shards.stateHashes[1], CID, shards.proofs[1]);
    await ledger.connect(other).score(r1, 1_200_000n, 0, 1_800_000n);
    await ledger.connect(v1).confirm(r0, [0], 1_500_000n);
    await ledger.connect(v1).confirm(r1, [0], 1_200_000n);
    await at(start2, 2 * ROUND + 3 * ROUND + 5);
    await ledger.finalize(r1); // both are past their deadlines; r1 finalizes first and wins against the baseline
    expect((await ledger.bestClaim(2)).claimId).to.equal(r1);
    // r0 beat the baseline on shard 0, but the best came from shard 1: nothing to compare with
    await expect(ledger.finalize(r0)).to.emit(ledger, "ClaimFinalized").withArgs(r0, 2, ClaimState.Accepted, false, 0, E("0.09"));
    expect((await ledger.bestClaim(2)).claimId).to.equal(r1);
  });

  it("takes the incumbent as named (no race with a finalize), but only a claim of the task", async function () {
    const { ledger, sponsor, trainer, other, v1 } = await setup();
    await ledger.connect(sponsor).createSealedTask(defaultParams({ quorum: 1, revealWindow: 5 * HOUR }), sealParams(), { value: E("1") });
    const start2 = (await ledger.seal(2)).start;
    const a = await sealedClaim(ledger, trainer, { taskId: 2 });
    const c = await sealedClaim(ledger, other, { taskId: 2 });
    const elsewhere = await sealedClaim(ledger, v1); // task 1
    await at(start2, ROUND);
    await ledger.connect(sponsor).openShard(2, 0, shards.stateHashes[0], CID, shards.proofs[0]);
    await ledger.connect(trainer).score(a, 1_500_000n, 0, 1_900_000n);
    await ledger.connect(v1).confirm(a, [0], 1_500_000n);
    await increaseTime(2 * HOUR + 1);
    await ledger.finalize(a); // the best changes while c's trainer evaluates against the baseline
    for (const bad of [c, elsewhere]) {
      await expect(ledger.connect(other).score(c, 1_400_000n, bad, 1_500_000n))
        .to.be.revertedWithCustomError(ledger, "LedgerInvalidIncumbent").withArgs(c, bad);
    }
    await expect(ledger.connect(other).score(c, 1_400_000n, 0, 1_900_000n))
      .to.emit(ledger, "ClaimScored").withArgs(c, 2, 0, 1_400_000n, 0, 1_900_000n, (v) => v > 0n);
    await ledger.connect(v1).confirm(c, [0], 1_400_000n);
    await increaseTime(2 * HOUR + 1);
    // its incumbent is stale, but the best (a) is of the same round: compared on the same shard
    await expect(ledger.finalize(c)).to.emit(ledger, "BestClaimChanged").withArgs(2, c, 1_400_000n, a, 1_500_000n);
  });

  it("a win over an incumbent with no valid outputs on the shard moves the pointer without a reward", async function () {
    const { ledger, sponsor, trainer, v1, start } = await setup();
    const id = await sealedClaim(ledger, trainer);
    await at(start, ROUND);
    await open(ledger, 0, sponsor);
    await ledger.connect(trainer).score(id, 6_000_000n, 0, 2n ** 64n - 1n);
    await ledger.connect(v1).confirm(id, [0], 6_000_000n);
    await increaseTime(2 * HOUR + 1);
    await expect(ledger.finalize(id)).to.emit(ledger, "ClaimFinalized").withArgs(id, 1, ClaimState.Accepted, true, 0, E("0.1")); // fees from the pool, no reward
    expect((await ledger.bestClaim(1)).claimId).to.equal(id);
  });

  it("a claim within epsilon of its incumbent on the shard is not an improvement", async function () {
    const { ledger, sponsor, trainer, v1, start } = await setup();
    const id = await sealedClaim(ledger, trainer);
    await at(start, ROUND);
    await open(ledger, 0, sponsor);
    await ledger.connect(trainer).score(id, 1_899_500n, 0, 1_900_000n); // 500 < minImprovement 1000
    await ledger.connect(v1).confirm(id, [0], 1_899_500n);
    await increaseTime(2 * HOUR + 1);
    await expect(ledger.finalize(id)).to.emit(ledger, "ClaimFinalized").withArgs(id, 1, ClaimState.Accepted, false, 0, E("0.09"));
  });

  it("the incumbent's loss can be challenged (FinalEvaluation, segment 1); segment 2 cannot", async function () {
    const { ledger, sponsor, trainer, challenger, start } = await setup();
    const id = await sealedClaim(ledger, trainer);
    await at(start, ROUND);
    await open(ledger, 0, sponsor);
    await ledger.connect(trainer).score(id, 1_500_000n, 0, 1_900_000n);
    const observed = (v) => ethers.toBeHex(v, 32);
    const bond = { value: E("0.02") };
    const z = ethers.ZeroHash;
    await expect(ledger.connect(challenger).challenge(id, Kind.FinalEvaluation, 1, z, z, [], [], observed(1_900_000n), bond))
      .to.be.revertedWithCustomError(ledger, "LedgerNoMismatch");
    await expect(ledger.connect(challenger).challenge(id, Kind.FinalEvaluation, 2, z, z, [], [], observed(1n), bond))
      .to.be.revertedWithCustomError(ledger, "LedgerInvalidSegment");
    await ledger.connect(challenger).challenge(id, Kind.FinalEvaluation, 1, z, z, [], [], observed(1_450_000n), bond);
    expect((await ledger.dispute(disputeIdOf(id, Kind.FinalEvaluation, 1))).state).to.equal(DisputeState.Voting);
  });

  it("an open task refuses a round and an incumbent challenge", async function () {
    const { ledger, sponsor, trainer, challenger } = await setup();
    await ledger.connect(sponsor).createTask(defaultParams({ quorum: 1 }));
    const f = claimFields({ taskId: 2, round: 1 });
    await ledger.connect(trainer).commit(commitmentOf(trainer.address, f));
    await expect(ledger.connect(trainer).reveal(f, { value: E("0.1") }))
      .to.be.revertedWithCustomError(ledger, "LedgerInvalidField").withArgs("round");
    const g = claimFields({ taskId: 2 });
    await ledger.connect(trainer).commit(commitmentOf(trainer.address, g));
    await ledger.connect(trainer).reveal(g, { value: E("0.1") });
    const id = await ledger.totalClaims();
    const z = ethers.ZeroHash;
    await expect(ledger.connect(challenger).challenge(id, Kind.FinalEvaluation, 1, z, z, [], [], ethers.toBeHex(5n, 32), { value: E("0.02") }))
      .to.be.revertedWithCustomError(ledger, "LedgerInvalidSegment");
  });
});

describe("Sealed tasks: nothing stuck", function () {
  it("a sponsor who misses an opening refunds the round's stakes with its bond share; empty rounds go back", async function () {
    const { ledger, sponsor, trainer, other, start } = await setup();
    const a = await sealedClaim(ledger, trainer);
    const b = await sealedClaim(ledger, other, { salt: ethers.ZeroHash.replace(/0$/, "c") });
    const held = await ethers.provider.getBalance(await ledger.getAddress());
    await at(start, ROUND + GRACE - 5);
    expect(await ledger.claimState(a)).to.equal(ClaimState.Sealed);
    await at(start, ROUND + GRACE + 1);
    expect(await ledger.claimState(a)).to.equal(ClaimState.Finalizable);
    await expect(open(ledger, 0, sponsor)).to.be.revertedWithCustomError(ledger, "LedgerShardLate");
    // the round's share, in equal parts: claims the sponsor made itself cannot take the others' part
    await expect(ledger.finalize(a)).to.emit(ledger, "ClaimFinalized").withArgs(a, 1, ClaimState.Expired, false, E("0.05"), E("0.15"));
    await ledger.finalize(b);
    expect(await ledger.balanceOf(trainer.address)).to.equal(E("0.15"));
    expect(await ledger.balanceOf(other.address)).to.equal(E("0.15"));
    await expect(ledger.releaseRound(1, 0)).to.be.revertedWithCustomError(ledger, "LedgerNothingToRelease");
    await expect(ledger.releaseRound(1, 1)).to.be.revertedWithCustomError(ledger, "LedgerBondLocked");
    await at(start, 3 * ROUND + GRACE + 1);
    for (const r of [1, 2]) {
      await expect(ledger.releaseRound(1, r)).to.emit(ledger, "SponsorBondReleased").withArgs(1, sponsor.address, PER_ROUND);
    }
    await expect(ledger.releaseRound(1, 2)).to.be.revertedWithCustomError(ledger, "LedgerNothingToRelease");
    // solvency: what the contract holds is exactly balances + pool + verifier stakes, the bond spent
    expect((await ledger.seal(1)).bond).to.equal(0n);
    const pool = (await ledger.task(1)).pool;
    const owed = (await ledger.balanceOf(trainer.address)) + (await ledger.balanceOf(other.address))
      + (await ledger.balanceOf(sponsor.address));
    expect(held).to.equal(pool + owed + E("2"));
  });

  it("a loss never revealed after the shard opened forfeits the stake to the pool", async function () {
    const { ledger, sponsor, trainer, start } = await setup();
    const id = await sealedClaim(ledger, trainer);
    await at(start, ROUND);
    await open(ledger, 0, sponsor);
    const pool = (await ledger.task(1)).pool;
    await increaseTime(HOUR + 2); // the reveal window after the opening
    await expect(ledger.connect(trainer).score(id, 1_500_000n, 0, 1_900_000n)).to.be.revertedWithCustomError(ledger, "LedgerScoreWindowClosed");
    await expect(ledger.finalize(id)).to.emit(ledger, "ClaimFinalized").withArgs(id, 1, ClaimState.Expired, false, 0, 0);
    expect((await ledger.task(1)).pool).to.equal(pool + E("0.1"));
    expect((await ledger.seal(1)).bond).to.equal(BOND - PER_ROUND); // round 0's share went back at opening
  });
});
