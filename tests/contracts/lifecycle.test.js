// Every transition of TrainingLedger and every revert, by custom error name and arguments.
"use strict";
const { expect } = require("chai");
const { ethers } = require("hardhat");
const vectors = require("../vectors/merkle.json");
const {
  E,
  HOUR,
  ClaimState,
  Kind,
  DisputeState,
  defaultParams,
  fixture,
  increaseTime,
  latestTime,
  deployLedger,
  claimFields,
  commitmentOf,
  revealArgs,
  commitReveal,
  disputeIdOf,
} = require("./helpers");

const C5 = vectors.cases.find((c) => c.numLeaves === 5); // 4 segments with real proofs
const OTHER = ethers.keccak256(ethers.toUtf8Bytes("observed"));

const setup = fixture(async () => {
  const [sponsor, trainer, v1, v2, v3, v4, challenger, outsider] = await ethers.getSigners();
  const ledger = await deployLedger();
  await ledger.connect(sponsor).createTask(defaultParams(), { value: E("5") });
  for (const v of [v1, v2, v3, v4]) await ledger.connect(v).registerVerifier({ value: E("1") });
  return { ledger, sponsor, trainer, v1, v2, v3, v4, challenger, outsider };
});

async function openClaim(s, overrides = {}) {
  return commitReveal(s.ledger, s.trainer, { merkleRoot: C5.root, numSegments: 4, ...overrides });
}

function segmentChallenge(ledger, who, claimId, segment = 2, observed = OTHER, value = E("0.02")) {
  return ledger
    .connect(who)
    .challenge(claimId, Kind.Segment, segment, C5.stateHashes[segment], C5.stateHashes[segment + 1], C5.proofs[segment], C5.proofs[segment + 1], observed, { value });
}

describe("TrainingLedger: tasks", function () {
  it("creates sequential tasks, stores every parameter and emits TaskCreated", async function () {
    const { ledger, sponsor } = await setup();
    const p = defaultParams({ quorum: 3, baselineLoss: 3_000_000n });
    await expect(ledger.connect(sponsor).createTask(p, { value: E("2") }))
      .to.emit(ledger, "TaskCreated")
      .withArgs(2, sponsor.address, Object.values(p), E("2"));
    const t = await ledger.task(2);
    expect(t.sponsor).to.equal(sponsor.address);
    expect(t.pool).to.equal(E("2"));
    expect(t.quorum).to.equal(3);
    expect(t.bestLoss).to.equal(3_000_000n);
    expect(t.baselineLoss).to.equal(3_000_000n);
    expect(t.minImprovement).to.equal(p.minImprovement);
    expect(t.challengeBond).to.equal(p.challengeBond);
    expect(await ledger.bestClaim(2)).to.deep.equal([0n, 3_000_000n]);
    expect(await ledger.taskCount()).to.equal(2);
  });

  const invalid = [
    ["specDigest", { specDigest: ethers.ZeroHash }],
    ["quorum", { quorum: 0 }],
    ["quorum", { quorum: 17 }],
    ["revealWindow", { revealWindow: 0 }],
    ["challengeWindow", { challengeWindow: 0 }],
    ["votingWindow", { votingWindow: 0 }],
    ["challengeBond", { challengeBond: 0 }],
    ["minVerifierStake", { minVerifierStake: 0 }],
    ["minTrainerStake", { minTrainerStake: E("0.01"), verifierFee: E("0.01"), quorum: 2 }],
    ["minImprovement", { minImprovement: 0 }],
    ["baselineLoss", { baselineLoss: 0 }],
  ];
  for (const [field, overrides] of invalid) {
    it(`rejects an invalid ${field} (${JSON.stringify(overrides, (k, v) => (typeof v === "bigint" ? String(v) : v))})`, async function () {
      const { ledger } = await setup();
      await expect(ledger.createTask(defaultParams(overrides))).to.be.revertedWithCustomError(ledger, "LedgerInvalidTaskParam").withArgs(field);
    });
  }

  it("funds a task, refusing zero value, unknown tasks and uint96 overflow", async function () {
    const { ledger, outsider } = await setup();
    await expect(ledger.connect(outsider).fundTask(1, { value: E("1") }))
      .to.emit(ledger, "TaskFunded")
      .withArgs(1, outsider.address, E("1"), E("6"));
    expect((await ledger.task(1)).pool).to.equal(E("6"));
    await expect(ledger.fundTask(1)).to.be.revertedWithCustomError(ledger, "LedgerZeroValue");
    await expect(ledger.fundTask(9, { value: 1 })).to.be.revertedWithCustomError(ledger, "LedgerUnknownTask").withArgs(9);
    await expect(ledger.task(9)).to.be.revertedWithCustomError(ledger, "LedgerUnknownTask").withArgs(9);
    const huge = 2n ** 96n;
    await ethers.provider.send("hardhat_setBalance", [outsider.address, "0x" + (huge * 2n).toString(16)]);
    await expect(ledger.connect(outsider).fundTask(1, { value: huge }))
      .to.be.revertedWithCustomError(ledger, "LedgerAmountTooLarge")
      .withArgs(huge + E("6"));
  });
});

describe("TrainingLedger: commit and reveal", function () {
  it("commits once, reveals in a later block and records the claim, its list and its seed", async function () {
    const s = await setup();
    const { ledger, trainer } = s;
    const f = claimFields({ merkleRoot: C5.root });
    const commitment = commitmentOf(trainer.address, f);
    expect(await ledger.commitmentOf(trainer.address, ...revealArgs(f).slice(0))).to.equal(commitment);
    await expect(ledger.connect(trainer).commit(commitment)).to.emit(ledger, "ClaimCommitted");
    await expect(ledger.commit(commitment)).to.be.revertedWithCustomError(ledger, "LedgerCommitmentExists").withArgs(commitment);
    const info = await ledger.commitmentInfo(commitment);
    expect(info.revealed).to.equal(false);

    const tx = ledger.connect(trainer).reveal(...revealArgs(f), { value: E("0.1") });
    await expect(tx).to.emit(ledger, "ClaimRevealed");
    const receipt = await (await tx).wait();
    const ev = receipt.logs.map((l) => ledger.interface.parseLog(l)).find((e) => e.name === "ClaimRevealed");
    const block = await ethers.provider.getBlock(receipt.blockNumber);
    const prev = await ethers.provider.getBlock(receipt.blockNumber - 1);
    const raw = await ethers.provider.send("eth_getBlockByNumber", [ethers.toQuantity(receipt.blockNumber), false]);
    const seed = ethers.keccak256(
      ethers.AbiCoder.defaultAbiCoder().encode(["bytes32", "uint256", "uint32"], [prev.hash, raw.mixHash, 1]),
    );
    expect(ev.args.seed).to.equal(seed);
    expect(ev.args.codeCid).to.equal(f.codeCid);
    expect(ev.args.manifestDigest).to.equal(f.manifestDigest);
    expect(ev.args.commitment).to.equal(commitment);
    expect(await ledger.sampleSeed(1)).to.equal(seed);
    const c = await ledger.claim(1);
    expect(c.trainer).to.equal(trainer.address);
    expect(c.state).to.equal(ClaimState.Open);
    expect(c.stake).to.equal(E("0.1"));
    expect(c.merkleRoot).to.equal(C5.root);
    expect(c.challengeDeadline).to.equal(block.timestamp + 2 * HOUR);
    expect((await ledger.commitmentInfo(commitment)).revealed).to.equal(true);
    await expect(ledger.connect(trainer).reveal(...revealArgs(f), { value: E("0.1") }))
      .to.be.revertedWithCustomError(ledger, "LedgerCommitmentRevealed")
      .withArgs(commitment);
  });

  it("lists a task's claims in reveal order, paged", async function () {
    const s = await setup();
    await s.ledger.createTask(defaultParams());
    const ids = [];
    for (let i = 0; i < 5; i++) {
      const task = i % 2 === 0 ? 1 : 2;
      const { claimId } = await commitReveal(s.ledger, s.trainer, { taskId: task });
      if (task === 1) ids.push(claimId);
    }
    expect(await s.ledger.claimCount(1)).to.equal(3);
    expect(await s.ledger.taskClaims(1, 0, 10)).to.deep.equal(ids);
    expect(await s.ledger.taskClaims(1, 1, 1)).to.deep.equal([ids[1]]);
    expect(await s.ledger.taskClaims(1, 1, 5)).to.deep.equal(ids.slice(1));
    expect(await s.ledger.taskClaims(1, 3, 5)).to.deep.equal([]);
    expect(await s.ledger.totalClaims()).to.equal(5);
  });

  it("refuses reveals that do not match a fresh commitment in time", async function () {
    const s = await setup();
    const { ledger, trainer, outsider } = s;
    const f = claimFields();
    const commitment = commitmentOf(trainer.address, f);
    // a copy by someone else hashes to another commitment
    await ledger.connect(trainer).commit(commitment);
    await expect(ledger.connect(outsider).reveal(...revealArgs(f), { value: E("0.1") }))
      .to.be.revertedWithCustomError(ledger, "LedgerUnknownCommitment")
      .withArgs(commitmentOf(outsider.address, f));
    await expect(ledger.connect(trainer).reveal(...revealArgs(f), { value: E("0.09") }))
      .to.be.revertedWithCustomError(ledger, "LedgerStakeTooLow")
      .withArgs(trainer.address, E("0.09"), E("0.1"));
    await expect(ledger.connect(trainer).reveal(...revealArgs({ ...f, taskId: 7 }), { value: E("0.1") }))
      .to.be.revertedWithCustomError(ledger, "LedgerUnknownTask")
      .withArgs(7);
    const { timestamp } = await ledger.commitmentInfo(commitment);
    await increaseTime(HOUR + 1);
    await expect(ledger.connect(trainer).reveal(...revealArgs(f), { value: E("0.1") }))
      .to.be.revertedWithCustomError(ledger, "LedgerRevealWindowClosed")
      .withArgs(commitment, timestamp + BigInt(HOUR));
    await expect(ledger.commit(ethers.ZeroHash)).to.be.revertedWithCustomError(ledger, "LedgerInvalidField").withArgs("commitment");
  });

  it("refuses a reveal in the commit's own block", async function () {
    const { ledger, trainer } = await setup();
    const f = claimFields();
    const commitment = commitmentOf(trainer.address, f);
    await ethers.provider.send("evm_setAutomine", [false]);
    try {
      await ledger.connect(trainer).commit(commitment, { gasLimit: 100000 });
      const revealTx = await ledger.connect(trainer).reveal(...revealArgs(f), { value: E("0.1"), gasLimit: 300000 });
      await ethers.provider.send("evm_mine", []);
      await expect(revealTx.wait()).to.be.rejected;
      const info = await ledger.commitmentInfo(commitment);
      expect(info.revealed).to.equal(false);
      expect(await ledger.totalClaims()).to.equal(0);
    } finally {
      await ethers.provider.send("evm_setAutomine", [true]);
    }
    const blockNumber = (await ledger.commitmentInfo(commitment)).blockNumber;
    // the revert reason, by simulation in the same block number:
    expect(blockNumber).to.be.greaterThan(0n);
  });

  const badFields = [
    ["codeCid", { codeCid: "0x" }],
    ["codeCid", { codeCid: "0x" + "01".repeat(129) }],
    ["manifestDigest", { manifestDigest: ethers.ZeroHash }],
    ["merkleRoot", { merkleRoot: ethers.ZeroHash }],
    ["numSegments", { numSegments: 0 }],
  ];
  for (const [field, overrides] of badFields) {
    it(`refuses a reveal with an invalid ${field}`, async function () {
      const { ledger, trainer } = await setup();
      const f = claimFields(overrides);
      await ledger.connect(trainer).commit(commitmentOf(trainer.address, f));
      await expect(ledger.connect(trainer).reveal(...revealArgs(f), { value: E("0.1") }))
        .to.be.revertedWithCustomError(ledger, "LedgerInvalidField")
        .withArgs(field);
    });
  }

  it("refuses a parent from another task or not yet revealed", async function () {
    const s = await setup();
    await s.ledger.createTask(defaultParams());
    await commitReveal(s.ledger, s.trainer, { taskId: 2 });
    for (const parentId of [1, 5]) {
      const f = claimFields({ parentId });
      await s.ledger.connect(s.trainer).commit(commitmentOf(s.trainer.address, f));
      await expect(s.ledger.connect(s.trainer).reveal(...revealArgs(f), { value: E("0.1") }))
        .to.be.revertedWithCustomError(s.ledger, "LedgerInvalidParent")
        .withArgs(1, parentId);
    }
    const { claimId } = await commitReveal(s.ledger, s.trainer, { taskId: 2, parentId: 1 });
    expect((await s.ledger.claim(claimId)).parentId).to.equal(1);
  });
});

describe("TrainingLedger: confirm, finalize, settle", function () {
  it("accepts an improving claim with quorum: best pointer, reward, fees from the pool", async function () {
    const s = await setup();
    const { ledger, trainer, v1, v2, v3 } = s;
    const { claimId } = await openClaim(s);
    await expect(ledger.connect(v1).confirm(claimId, [0, 3], 1_500_100n))
      .to.emit(ledger, "ClaimConfirmed")
      .withArgs(claimId, v1.address, [0, 3], 1_500_100n, 1);
    await expect(ledger.connect(v2).confirm(claimId, [1], 1_499_900n))
      .to.emit(ledger, "ClaimQuorumReached")
      .withArgs(claimId, 2);
    expect(await ledger.hasConfirmed(claimId, v1.address)).to.equal(true);
    expect(await ledger.hasConfirmed(claimId, v3.address)).to.equal(false);
    expect((await ledger.verifierInfo(v1.address)).bindings).to.equal(1);
    await expect(ledger.connect(v3).confirm(claimId, [1], 1n)).to.be.revertedWithCustomError(ledger, "LedgerQuorumReached").withArgs(claimId, 2);
    await expect(ledger.finalize(claimId))
      .to.be.revertedWithCustomError(ledger, "LedgerWrongClaimState")
      .withArgs(claimId, ClaimState.Open, ClaimState.Finalizable);

    await increaseTime(2 * HOUR + 1);
    expect(await ledger.claimState(claimId)).to.equal(ClaimState.Finalizable);
    await expect(ledger.connect(v3).confirm(claimId, [1], 1n))
      .to.be.revertedWithCustomError(ledger, "LedgerWrongClaimState")
      .withArgs(claimId, ClaimState.Finalizable, ClaimState.Open);
    await expect(ledger.finalize(claimId))
      .to.emit(ledger, "BestClaimChanged")
      .withArgs(1, claimId, 1_500_000n, 0, 2_000_000n)
      .and.to.emit(ledger, "ClaimFinalized")
      .withArgs(claimId, 1, ClaimState.Accepted, true, E("1"), E("1.1"));
    expect(await ledger.bestClaim(1)).to.deep.equal([claimId, 1_500_000n]);
    expect((await ledger.task(1)).pool).to.equal(E("5") - E("1") - E("0.02"));
    expect(await ledger.balanceOf(trainer.address)).to.equal(E("1.1"));
    await expect(ledger.finalize(claimId))
      .to.be.revertedWithCustomError(ledger, "LedgerWrongClaimState")
      .withArgs(claimId, ClaimState.Accepted, ClaimState.Finalizable);

    await expect(ledger.connect(v1).settle(claimId)).to.emit(ledger, "Settled").withArgs(claimId, v1.address, E("0.01"));
    expect(await ledger.connect(v1).settle.staticCall(claimId)).to.equal(0n); // idempotent
    await ledger.connect(v1).settle(claimId);
    expect(await ledger.balanceOf(v1.address)).to.equal(E("0.01"));
    expect((await ledger.verifierInfo(v1.address)).bindings).to.equal(0);
    await expect(ledger.connect(v3).settle(claimId))
      .to.be.revertedWithCustomError(ledger, "LedgerNotParticipant")
      .withArgs(ethers.toBeHex(claimId, 32), v3.address);

    const before = await ethers.provider.getBalance(trainer.address);
    const tx = await ledger.connect(trainer).withdraw();
    const r = await tx.wait();
    await expect(tx).to.emit(ledger, "Withdrawn").withArgs(trainer.address, E("1.1"));
    expect(await ethers.provider.getBalance(trainer.address)).to.equal(before + E("1.1") - r.gasUsed * r.gasPrice);
    await expect(ledger.connect(trainer).withdraw()).to.be.revertedWithCustomError(ledger, "LedgerNothingToWithdraw").withArgs(trainer.address);
  });

  it("a non-improving accepted claim pays the fees from the trainer's stake, not the pool", async function () {
    const s = await setup();
    const { claimId } = await openClaim(s, { claimedLoss: 2_000_000n - 999n }); // < minImprovement better
    await s.ledger.connect(s.v1).confirm(claimId, [0], 1n);
    await s.ledger.connect(s.v2).confirm(claimId, [1], 1n);
    await increaseTime(2 * HOUR + 1);
    await expect(s.ledger.finalize(claimId))
      .to.emit(s.ledger, "ClaimFinalized")
      .withArgs(claimId, 1, ClaimState.Accepted, false, 0, E("0.08"));
    expect((await s.ledger.task(1)).pool).to.equal(E("5"));
    expect(await s.ledger.bestClaim(1)).to.deep.equal([0n, 2_000_000n]);
  });

  it("an improving claim on an empty pool moves the pointer; the stake covers the fees", async function () {
    const s = await setup();
    await s.ledger.createTask(defaultParams()); // task 2, pool 0
    const { claimId } = await openClaim(s, { taskId: 2 });
    await s.ledger.connect(s.v1).confirm(claimId, [0], 1n);
    await s.ledger.connect(s.v2).confirm(claimId, [1], 1n);
    await increaseTime(2 * HOUR + 1);
    await expect(s.ledger.finalize(claimId)).to.emit(s.ledger, "ClaimFinalized").withArgs(claimId, 2, ClaimState.Accepted, true, 0, E("0.08"));
    expect(await s.ledger.bestClaim(2)).to.deep.equal([claimId, 1_500_000n]);
  });

  it("expires a claim without quorum, returns the stake, confirmers settle for nothing", async function () {
    const s = await setup();
    const { claimId } = await openClaim(s);
    await s.ledger.connect(s.v1).confirm(claimId, [0], 1n);
    await increaseTime(2 * HOUR + 1);
    await expect(s.ledger.finalize(claimId)).to.emit(s.ledger, "ClaimFinalized").withArgs(claimId, 1, ClaimState.Expired, false, 0, E("0.1"));
    await expect(s.ledger.connect(s.v1).settle(claimId)).to.emit(s.ledger, "Settled").withArgs(claimId, s.v1.address, 0);
    expect((await s.ledger.verifierInfo(s.v1.address)).bindings).to.equal(0);
    expect(await s.ledger.bestClaim(1)).to.deep.equal([0n, 2_000_000n]);
  });

  it("refuses confirmations from non-verifiers, the trainer, twice, thin stakes and bad segments", async function () {
    const s = await setup();
    const { ledger, v1, trainer, outsider } = s;
    const { claimId } = await openClaim(s);
    await expect(ledger.connect(outsider).confirm(claimId, [0], 1n)).to.be.revertedWithCustomError(ledger, "LedgerNotVerifier").withArgs(outsider.address);
    await ledger.connect(trainer).registerVerifier({ value: E("1") });
    await expect(ledger.connect(trainer).confirm(claimId, [0], 1n))
      .to.be.revertedWithCustomError(ledger, "LedgerConflictOfInterest")
      .withArgs(claimId, trainer.address);
    await ledger.connect(outsider).registerVerifier({ value: E("0.01") });
    await expect(ledger.connect(outsider).confirm(claimId, [0], 1n))
      .to.be.revertedWithCustomError(ledger, "LedgerStakeTooLow")
      .withArgs(outsider.address, E("0.01"), E("0.05"));
    await expect(ledger.connect(v1).confirm(claimId, [], 1n)).to.be.revertedWithCustomError(ledger, "LedgerInvalidField").withArgs("segments");
    await expect(ledger.connect(v1).confirm(claimId, [4], 1n)).to.be.revertedWithCustomError(ledger, "LedgerInvalidSegment").withArgs(4, 4);
    await expect(ledger.connect(v1).confirm(claimId, Array(65).fill(0), 1n))
      .to.be.revertedWithCustomError(ledger, "LedgerTooManySegments")
      .withArgs(65, 64);
    await ledger.connect(v1).confirm(claimId, [0], 1n);
    await expect(ledger.connect(v1).confirm(claimId, [1], 1n)).to.be.revertedWithCustomError(ledger, "LedgerAlreadyConfirmed").withArgs(claimId, v1.address);
    await expect(ledger.connect(v1).confirm(99, [1], 1n)).to.be.revertedWithCustomError(ledger, "LedgerUnknownClaim").withArgs(99);
    await expect(ledger.connect(v1).settle(claimId))
      .to.be.revertedWithCustomError(ledger, "LedgerWrongClaimState")
      .withArgs(claimId, ClaimState.Open, ClaimState.Accepted);
  });
});

describe("TrainingLedger: verifiers", function () {
  it("registers, tops up, refuses to leave while bound, leaves with the stake credited", async function () {
    const s = await setup();
    const { ledger, v1, outsider } = s;
    await expect(ledger.connect(v1).registerVerifier({ value: E("0.5") }))
      .to.emit(ledger, "VerifierRegistered")
      .withArgs(v1.address, E("0.5"), E("1.5"));
    await expect(ledger.connect(v1).registerVerifier()).to.be.revertedWithCustomError(ledger, "LedgerZeroValue");
    await expect(ledger.connect(outsider).unregisterVerifier()).to.be.revertedWithCustomError(ledger, "LedgerNotVerifier").withArgs(outsider.address);
    const { claimId } = await openClaim(s);
    await ledger.connect(v1).confirm(claimId, [0], 1n);
    await expect(ledger.connect(v1).unregisterVerifier()).to.be.revertedWithCustomError(ledger, "LedgerVerifierBound").withArgs(v1.address, 1);
    await increaseTime(2 * HOUR + 1);
    await ledger.finalize(claimId);
    await ledger.connect(v1).settle(claimId);
    await expect(ledger.connect(v1).unregisterVerifier()).to.emit(ledger, "VerifierUnregistered").withArgs(v1.address, E("1.5"));
    expect(await ledger.verifierInfo(v1.address)).to.deep.equal([false, 0n, 0]);
    expect(await ledger.balanceOf(v1.address)).to.equal(E("1.5"));
  });
});

describe("TrainingLedger: challenges and disputes", function () {
  it("upholds a segment challenge: trainer and confirmer slashed, pot split, claim rejected", async function () {
    const s = await setup();
    const { ledger, trainer, v1, v2, v3, v4, challenger } = s;
    const { claimId } = await openClaim(s);
    await ledger.connect(v1).confirm(claimId, [2], 1n);
    const id = disputeIdOf(claimId, Kind.Segment, 2);
    expect(await ledger.disputeIdOf(claimId, Kind.Segment, 2)).to.equal(id);
    const tx = segmentChallenge(ledger, challenger, claimId);
    await expect(tx).to.emit(ledger, "ClaimChallenged");
    expect(await ledger.claimState(claimId)).to.equal(ClaimState.Disputed);
    expect((await ledger.claim(claimId)).openDispute).to.equal(id);
    await expect(ledger.connect(v2).confirm(claimId, [0], 1n))
      .to.be.revertedWithCustomError(ledger, "LedgerWrongClaimState")
      .withArgs(claimId, ClaimState.Disputed, ClaimState.Open);
    await expect(segmentChallenge(ledger, v4, claimId, 1))
      .to.be.revertedWithCustomError(ledger, "LedgerWrongClaimState")
      .withArgs(claimId, ClaimState.Disputed, ClaimState.Open);

    // voters: not the trainer, the challenger or a confirmer
    for (const who of [trainer, challenger, v1]) {
      if (!(await ledger.verifierInfo(who.address)).registered) await ledger.connect(who).registerVerifier({ value: E("1") });
      await expect(ledger.connect(who).vote(id, true)).to.be.revertedWithCustomError(ledger, "LedgerConflictOfInterest").withArgs(claimId, who.address);
    }
    await expect(ledger.connect(v2).vote(id, true)).to.emit(ledger, "DisputeVoted").withArgs(id, v2.address, true, 1, 0);
    await ledger.connect(v3).vote(id, true);
    await ledger.connect(v4).vote(id, false);
    await expect(ledger.connect(v2).vote(id, true)).to.be.revertedWithCustomError(ledger, "LedgerAlreadyVoted").withArgs(id, v2.address);
    await expect(ledger.resolveDispute(id))
      .to.be.revertedWithCustomError(ledger, "LedgerWrongDisputeState")
      .withArgs(id, DisputeState.Voting, DisputeState.Resolvable);
    await expect(ledger.connect(v2).settleVote(id))
      .to.be.revertedWithCustomError(ledger, "LedgerWrongDisputeState")
      .withArgs(id, DisputeState.Voting, DisputeState.Upheld);

    await increaseTime(HOUR + 1);
    await expect(ledger.connect(v3).vote(id, true))
      .to.be.revertedWithCustomError(ledger, "LedgerWrongDisputeState")
      .withArgs(id, DisputeState.Resolvable, DisputeState.Voting);
    // pot = stake 0.1 + v1's slash min(bond 0.02, 1) = 0.12; voters 0.06 / 2 = 0.03 each
    await expect(ledger.resolveDispute(id))
      .to.emit(ledger, "DisputeResolved")
      .withArgs(id, claimId, DisputeState.Upheld, 2, 1, E("0.06") + E("0.02"), 0, E("0.03"), E("0.02"), 0)
      .and.to.emit(ledger, "VerifierSlashed")
      .withArgs(v1.address, id, E("0.02"))
      .and.to.emit(ledger, "ClaimFinalized")
      .withArgs(claimId, 1, ClaimState.Rejected, false, 0, 0);
    expect(await ledger.claimState(claimId)).to.equal(ClaimState.Rejected);
    expect(await ledger.disputeState(id)).to.equal(DisputeState.Upheld);
    expect((await ledger.verifierInfo(v1.address)).stake).to.equal(E("0.98"));
    expect(await ledger.balanceOf(challenger.address)).to.equal(E("0.08"));
    expect(await ledger.balanceOf(trainer.address)).to.equal(0n);
    await expect(ledger.connect(v2).settleVote(id)).to.emit(ledger, "VoteSettled").withArgs(id, v2.address, E("0.03"));
    await expect(ledger.connect(v4).settleVote(id)).to.emit(ledger, "VoteSettled").withArgs(id, v4.address, 0);
    expect(await ledger.connect(v2).settleVote.staticCall(id)).to.equal(0n);
    await expect(ledger.connect(v1).settleVote(id)).to.be.revertedWithCustomError(ledger, "LedgerNotParticipant").withArgs(id, v1.address);
    await expect(ledger.connect(v1).settle(claimId)).to.emit(ledger, "Settled").withArgs(claimId, v1.address, 0);
    expect((await ledger.dispute(id)).perVoterShare).to.equal(E("0.03"));
  });

  it("dismisses a false challenge: bond split, claim reopened and its deadline extended; no re-dispute", async function () {
    const s = await setup();
    const { ledger, trainer, v2, v3, challenger } = s;
    const { claimId } = await openClaim(s);
    const deadline = (await ledger.claim(claimId)).challengeDeadline;
    await segmentChallenge(ledger, challenger, claimId);
    const opened = BigInt(await latestTime());
    const id = disputeIdOf(claimId, Kind.Segment, 2);
    await ledger.connect(v2).vote(id, false);
    await ledger.connect(v3).vote(id, false);
    await increaseTime(HOUR + 1);
    const tx = await ledger.resolveDispute(id);
    const resolvedAt = BigInt((await ethers.provider.getBlock((await tx.wait()).blockNumber)).timestamp);
    const newDeadline = deadline + (resolvedAt - opened);
    // bond 0.02: voters 0.01 / 2 = 0.005 each, trainer 0.01
    await expect(tx)
      .to.emit(ledger, "DisputeResolved")
      .withArgs(id, claimId, DisputeState.Dismissed, 0, 2, 0, E("0.01"), E("0.005"), 0, newDeadline);
    const c = await ledger.claim(claimId);
    expect(c.state).to.equal(ClaimState.Open);
    expect(c.challengeDeadline).to.equal(newDeadline);
    expect(c.openDispute).to.equal(ethers.ZeroHash);
    expect(await ledger.balanceOf(trainer.address)).to.equal(E("0.01"));
    await expect(segmentChallenge(ledger, challenger, claimId)).to.be.revertedWithCustomError(ledger, "LedgerDisputeExists").withArgs(id);
    await expect(ledger.connect(v3).settleVote(id)).to.emit(ledger, "VoteSettled").withArgs(id, v3.address, E("0.005"));
  });

  it("a tie or no votes is inconclusive: bond back, claim expired with its stake", async function () {
    const s = await setup();
    const { ledger, trainer, challenger } = s;
    const { claimId } = await openClaim(s);
    await ledger.connect(challenger).challenge(claimId, Kind.Artifact, 0, ethers.ZeroHash, ethers.ZeroHash, [], [], ethers.ZeroHash, { value: E("0.02") });
    const id = disputeIdOf(claimId, Kind.Artifact, 0);
    await increaseTime(HOUR + 1);
    await expect(ledger.resolveDispute(id))
      .to.emit(ledger, "DisputeResolved")
      .withArgs(id, claimId, DisputeState.Inconclusive, 0, 0, E("0.02"), E("0.1"), 0, 0, 0)
      .and.to.emit(ledger, "ClaimFinalized")
      .withArgs(claimId, 1, ClaimState.Expired, false, 0, E("0.1"));
    expect(await ledger.balanceOf(challenger.address)).to.equal(E("0.02"));
    expect(await ledger.balanceOf(trainer.address)).to.equal(E("0.1"));
    await expect(ledger.resolveDispute(id))
      .to.be.revertedWithCustomError(ledger, "LedgerWrongDisputeState")
      .withArgs(id, DisputeState.Inconclusive, DisputeState.Resolvable);
  });

  it("validates challenges: bond, proofs, mismatch, segment ranges, kinds, parties", async function () {
    const s = await setup();
    const { ledger, trainer, challenger } = s;
    const { claimId } = await openClaim(s);
    await expect(segmentChallenge(ledger, challenger, claimId, 2, OTHER, E("0.01")))
      .to.be.revertedWithCustomError(ledger, "LedgerWrongBond")
      .withArgs(E("0.01"), E("0.02"));
    await expect(segmentChallenge(ledger, trainer, claimId)).to.be.revertedWithCustomError(ledger, "LedgerConflictOfInterest").withArgs(claimId, trainer.address);
    await expect(segmentChallenge(ledger, challenger, claimId, 2, C5.stateHashes[3]))
      .to.be.revertedWithCustomError(ledger, "LedgerNoMismatch")
      .withArgs(claimId, C5.stateHashes[3]);
    await expect(
      ledger.connect(challenger).challenge(claimId, Kind.Segment, 2, OTHER, C5.stateHashes[3], C5.proofs[2], C5.proofs[3], OTHER, { value: E("0.02") }),
    )
      .to.be.revertedWithCustomError(ledger, "LedgerInvalidProof")
      .withArgs(claimId, 2);
    await expect(
      ledger.connect(challenger).challenge(claimId, Kind.Segment, 2, C5.stateHashes[2], OTHER, C5.proofs[2], C5.proofs[3], C5.stateHashes[3], { value: E("0.02") }),
    )
      .to.be.revertedWithCustomError(ledger, "LedgerInvalidProof")
      .withArgs(claimId, 3);
    const none = [claimId, ethers.ZeroHash, ethers.ZeroHash, [], []];
    const ch = (kind, segment, observed) =>
      ledger.connect(challenger).challenge(none[0], kind, segment, none[1], none[2], none[3], none[4], observed, { value: E("0.02") });
    await expect(
      ledger.connect(challenger).challenge(claimId, Kind.Segment, 4, C5.stateHashes[4], OTHER, C5.proofs[4], [], ethers.ZeroHash, { value: E("0.02") }),
    ).to.be.revertedWithCustomError(ledger, "LedgerInvalidSegment").withArgs(4, 4);
    await expect(ch(Kind.Artifact, 5, ethers.ZeroHash)).to.be.revertedWithCustomError(ledger, "LedgerInvalidSegment").withArgs(5, 4);
    await expect(ch(Kind.FinalEvaluation, 1, ethers.ZeroHash)).to.be.revertedWithCustomError(ledger, "LedgerInvalidSegment").withArgs(1, 0);
    const same = ethers.toBeHex(1_500_000n, 32);
    await expect(ch(Kind.FinalEvaluation, 0, same)).to.be.revertedWithCustomError(ledger, "LedgerNoMismatch").withArgs(claimId, same);
    await expect(ch(Kind.FinalEvaluation, 0, ethers.toBeHex(2n ** 64n, 32))).to.be.revertedWithCustomError(ledger, "LedgerInvalidField").withArgs("observed");
    await expect(ch(Kind.FinalEvaluation, 0, ethers.toBeHex(1_700_000n, 32)))
      .to.emit(ledger, "ClaimChallenged")
      .withArgs(claimId, disputeIdOf(claimId, Kind.FinalEvaluation, 0), challenger.address, Kind.FinalEvaluation, 0, ethers.ZeroHash, ethers.ZeroHash, ethers.toBeHex(1_700_000n, 32), anyUint());
    await expect(ledger.dispute(ethers.ZeroHash)).to.be.revertedWithCustomError(ledger, "LedgerUnknownDispute").withArgs(ethers.ZeroHash);
  });
});

describe("TrainingLedger: reports", function () {
  it("emits an unstaked report and bounds the note", async function () {
    const { ledger, outsider } = await setup();
    const cid = claimFields().codeCid;
    await expect(ledger.connect(outsider).report(1, cid, ethers.ZeroHash, 1_900_000n, "dropout 0.3: worse"))
      .to.emit(ledger, "ExperimentReported")
      .withArgs(1, outsider.address, cid, ethers.ZeroHash, 1_900_000n, "dropout 0.3: worse");
    await expect(ledger.report(1, cid, ethers.ZeroHash, 1n, "x".repeat(2049))).to.be.revertedWithCustomError(ledger, "LedgerNoteTooLong").withArgs(2049, 2048);
    await expect(ledger.report(1, "0x", ethers.ZeroHash, 1n, "")).to.be.revertedWithCustomError(ledger, "LedgerInvalidField").withArgs("codeCid");
    await expect(ledger.report(3, cid, ethers.ZeroHash, 1n, "")).to.be.revertedWithCustomError(ledger, "LedgerUnknownTask").withArgs(3);
  });
});

function anyUint() {
  return require("@nomicfoundation/hardhat-chai-matchers/withArgs").anyUint;
}
