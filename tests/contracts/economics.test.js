// Economic invariants under randomized action sequences (seeded PRNG), and a reentrancy
// attempt on withdraw by a malicious receiver (contracts/test/ReentrantReceiver.sol).
"use strict";
const { expect } = require("chai");
const { ethers } = require("hardhat");
const vectors = require("../vectors/merkle.json");
const { E, HOUR, ClaimState, Kind, DisputeState, defaultParams, deployLedger, commitReveal, increaseTime } = require("./helpers");

const C5 = vectors.cases.find((c) => c.numLeaves === 5);

/** mulberry32: a tiny seeded PRNG so a failing sequence can be replayed. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function tryTx(promise) {
  try {
    return await (await promise).wait();
  } catch (err) {
    if (!/reverted with custom error 'Ledger/.test(String(err.message))) throw err; // only our own refusals
    return null;
  }
}

async function runSequence(seed, steps) {
  const rand = prng(seed);
  const pick = (xs) => xs[Math.floor(rand() * xs.length)];
  const signers = await ethers.getSigners();
  const [sponsor, t1, t2, challenger, ...rest] = signers;
  const verifiers = rest.slice(0, 6);
  const trainers = [t1, t2];
  const everyone = [sponsor, t1, t2, challenger, ...verifiers];
  const ledger = await deployLedger();
  const params = defaultParams({ quorum: 2, challengeWindow: HOUR, votingWindow: HOUR / 2 });
  await ledger.connect(sponsor).createTask(params, { value: E("3") });
  await ledger.connect(sponsor).createTask(defaultParams({ quorum: 1, rewardPerImprovement: E("0.7") }), { value: E("1") });
  for (const v of verifiers) await ledger.connect(v).registerVerifier({ value: E("0.2") });

  const claims = []; // claim ids
  const disputes = []; // { id, voters: Map(address -> uphold) }
  const settledClaims = new Set(); // `${claimId}:${address}`
  const settledVotes = new Set();
  const paid = { settle: 0n, settleVote: 0n };
  let actions = 0;

  async function liabilities() {
    let total = 0n;
    for (const a of everyone) {
      total += await ledger.balanceOf(a.address);
      total += (await ledger.verifierInfo(a.address)).stake;
    }
    for (const taskId of [1, 2]) total += (await ledger.task(taskId)).pool;
    for (const id of claims) {
      const c = await ledger.claim(id);
      const st = Number(c.state);
      if (st === ClaimState.Open || st === ClaimState.Disputed || st === ClaimState.Finalizable) total += c.stake;
      if (st === ClaimState.Accepted) {
        const fee = (await ledger.task(c.taskId)).verifierFee;
        for (const v of verifiers) {
          if ((await ledger.hasConfirmed(id, v.address)) && !settledClaims.has(`${id}:${v.address}`)) total += fee;
        }
      }
    }
    for (const d of disputes) {
      const view = await ledger.dispute(d.id);
      const st = Number(view.state);
      if (st === DisputeState.Voting || st === DisputeState.Resolvable) total += (await ledger.task(1)).challengeBond;
      const winner = st === DisputeState.Upheld ? true : st === DisputeState.Dismissed ? false : null;
      if (winner === null) continue;
      for (const [addr, uphold] of d.voters) {
        if (uphold === winner && !settledVotes.has(`${d.id}:${addr}`)) total += view.perVoterShare;
      }
    }
    return total;
  }

  const moves = [
    async () => {
      const taskId = rand() < 0.7 ? 1 : 2;
      const r = await commitReveal(ledger, pick(trainers), {
        taskId,
        merkleRoot: C5.root,
        numSegments: 4,
        claimedLoss: BigInt(1_000_000 + Math.floor(rand() * 1_200_000)),
      });
      claims.push(r.claimId);
    },
    async () => claims.length && tryTx(ledger.connect(pick(verifiers)).confirm(pick(claims), [Math.floor(rand() * 4)], 1n)),
    async () => {
      if (!claims.length) return;
      const claimId = pick(claims);
      const seg = Math.floor(rand() * 4);
      const r = await tryTx(
        ledger
          .connect(rand() < 0.5 ? challenger : pick(verifiers))
          .challenge(claimId, Kind.Segment, seg, C5.stateHashes[seg], C5.stateHashes[seg + 1], C5.proofs[seg], C5.proofs[seg + 1], ethers.id(`x${seed}`), {
            value: params.challengeBond,
          }),
      );
      if (r) disputes.push({ id: await ledger.disputeIdOf(claimId, Kind.Segment, seg), voters: new Map() });
    },
    async () => {
      if (!disputes.length) return;
      const d = pick(disputes);
      const v = pick(verifiers);
      const uphold = rand() < 0.5;
      if (await tryTx(ledger.connect(v).vote(d.id, uphold))) d.voters.set(v.address, uphold);
    },
    async () => increaseTime(Math.floor((rand() * HOUR) / 3)),
    async () => claims.length && tryTx(ledger.finalize(pick(claims))),
    async () => disputes.length && tryTx(ledger.resolveDispute(pick(disputes).id)),
    async () => {
      if (!claims.length) return;
      const id = pick(claims);
      const v = pick(verifiers);
      const r = await tryTx(ledger.connect(v).settle(id));
      const ev = r && r.logs.map((l) => ledger.interface.parseLog(l)).find((e) => e && e.name === "Settled");
      if (ev) {
        expect(settledClaims.has(`${id}:${v.address}`), "settled twice").to.equal(false);
        settledClaims.add(`${id}:${v.address}`);
        paid.settle += ev.args.amount;
      }
    },
    async () => {
      if (!disputes.length) return;
      const d = pick(disputes);
      const v = pick(verifiers);
      const r = await tryTx(ledger.connect(v).settleVote(d.id));
      const ev = r && r.logs.map((l) => ledger.interface.parseLog(l)).find((e) => e && e.name === "VoteSettled");
      if (ev) {
        expect(settledVotes.has(`${d.id}:${v.address}`), "vote settled twice").to.equal(false);
        settledVotes.add(`${d.id}:${v.address}`);
        paid.settleVote += ev.args.amount;
      }
    },
    async () => tryTx(ledger.connect(pick(everyone)).withdraw()),
    async () => tryTx(ledger.connect(pick(verifiers)).unregisterVerifier()),
    async () => tryTx(ledger.connect(pick(verifiers)).registerVerifier({ value: E("0.1") })),
    async () => tryTx(ledger.connect(pick(everyone)).fundTask(rand() < 0.5 ? 1 : 2, { value: E("0.3") })),
  ];

  // Confirmations are weighted up (x4) so that claims reach quorum before their deadline.
  const weighted = [...moves, moves[1], moves[1], moves[1]];
  for (let i = 0; i < steps; i++) {
    await pick(weighted)();
    actions++;
    if (i % 5 === 4 || i === steps - 1) {
      const held = await ethers.provider.getBalance(await ledger.getAddress());
      expect(held, `seed ${seed}, step ${i}: balance != liabilities`).to.equal(await liabilities());
    }
  }
  // Drain: everything terminal, everyone settled and withdrawn -> nothing but pools and stakes left.
  await increaseTime(10 * HOUR);
  for (const d of disputes) await tryTx(ledger.resolveDispute(d.id));
  await increaseTime(30 * HOUR); // a dismissed dispute reopened its claim for as long as it took
  for (const id of claims) await tryTx(ledger.finalize(id));
  for (const id of claims) for (const v of verifiers) if (!settledClaims.has(`${id}:${v.address}`) && (await tryTx(ledger.connect(v).settle(id)))) settledClaims.add(`${id}:${v.address}`);
  for (const d of disputes) for (const v of verifiers) if (await tryTx(ledger.connect(v).settleVote(d.id))) settledVotes.add(`${d.id}:${v.address}`);
  for (const v of verifiers) {
    expect((await ledger.verifierInfo(v.address)).bindings, "binding left after settling everything").to.equal(0);
    await tryTx(ledger.connect(v).unregisterVerifier());
  }
  for (const a of everyone) await tryTx(ledger.connect(a).withdraw());
  const left = await ethers.provider.getBalance(await ledger.getAddress());
  const pools = (await ledger.task(1)).pool + (await ledger.task(2)).pool;
  expect(left, "after draining only the pools remain").to.equal(pools);
  const outcomes = {};
  for (const id of claims) {
    const state = Number(await ledger.claimState(id));
    const st = Object.keys(ClaimState).find((k) => ClaimState[k] === state);
    outcomes[st] = (outcomes[st] || 0) + 1;
  }
  return { actions, claims: claims.length, disputes: disputes.length, outcomes, paid };
}

describe("Economics: randomized invariants", function () {
  this.timeout(180000);
  for (const seed of [1, 7, 42]) {
    it(`seed ${seed}: contract balance == what it owes, at every step and after draining`, async function () {
      const stats = await runSequence(seed, 300);
      expect(stats.actions).to.equal(300);
      // the sequence must reach every terminal outcome and pay through both settle paths
      expect(stats.outcomes.Accepted, JSON.stringify(stats.outcomes)).to.be.greaterThan(0);
      expect(stats.outcomes.Expired, JSON.stringify(stats.outcomes)).to.be.greaterThan(0);
      expect(stats.disputes).to.be.greaterThan(0);
      console.log(`      seed ${seed}: ${stats.claims} claims ${JSON.stringify(stats.outcomes)}, ${stats.disputes} disputes`);
    });
  }
});

describe("Economics: reentrancy on withdraw", function () {
  it("a receiver that re-enters withdraw is paid exactly once", async function () {
    const ledger = await deployLedger();
    const Attacker = await ethers.getContractFactory("ReentrantReceiver");
    const attacker = await Attacker.deploy(await ledger.getAddress());
    const [, other] = await ethers.getSigners();
    await ledger.connect(other).registerVerifier({ value: E("3") }); // funds the attacker could steal
    await attacker.fundBalance({ value: E("1") });
    expect(await ledger.balanceOf(await attacker.getAddress())).to.equal(E("1"));
    await expect(attacker.attack()).to.emit(ledger, "Withdrawn").withArgs(await attacker.getAddress(), E("1"));
    expect(await attacker.received()).to.equal(E("1"));
    expect(await attacker.reentryAttempts()).to.equal(1);
    expect(await attacker.reentrySucceeded()).to.equal(false);
    const reason = await attacker.reentryError();
    expect(reason.slice(0, 10)).to.equal(ledger.interface.getError("ReentrancyGuardReentrantCall")?.selector ?? ethers.id("ReentrancyGuardReentrantCall()").slice(0, 10));
    expect(await ethers.provider.getBalance(await ledger.getAddress())).to.equal(E("3"));
    expect(await ledger.balanceOf(await attacker.getAddress())).to.equal(0n);
  });

  it("a receiver that refuses payment keeps its balance (the withdraw reverts as a whole)", async function () {
    const ledger = await deployLedger();
    const attacker = await (await ethers.getContractFactory("ReentrantReceiver")).deploy(await ledger.getAddress());
    await attacker.fundBalance({ value: E("1") });
    await attacker.setMode(1);
    const addr = await attacker.getAddress();
    await expect(attacker.attack()).to.be.revertedWithCustomError(ledger, "LedgerTransferFailed").withArgs(addr, E("1"));
    expect(await ledger.balanceOf(addr)).to.equal(E("1"));
  });
});
