// Gas snapshot: gas per external function (from receipts) in one fixed scenario, compared with
// tests/contracts/gas-snapshot.json. Fails when any function costs more than its snapshot
// (and prints the table); UPDATE_GAS_SNAPSHOT=1 rewrites the snapshot. Also pins the targets.
"use strict";
const fs = require("fs");
const path = require("path");
const { expect } = require("chai");
const { ethers } = require("hardhat");
const vectors = require("../vectors/merkle.json");
const { E, Kind, defaultParams, deployLedger, claimFields, commitmentOf, revealArgs, increaseTime } = require("./helpers");

const SNAPSHOT = path.join(__dirname, "gas-snapshot.json");
const TARGETS = { commit: 50_000n, reveal: 160_000n, confirm: 80_000n, finalize: 120_000n };

/** Runs the fixed scenario; returns { fn: maxGasUsed }. */
async function measure() {
  const [sponsor, trainer, v1, v2, v3, v4, challenger] = await ethers.getSigners();
  const ledger = await deployLedger();
  const gas = {};
  const record = async (name, txPromise) => {
    const receipt = await (await txPromise).wait();
    const used = receipt.gasUsed;
    if (gas[name] === undefined || used > gas[name]) gas[name] = used;
    return receipt;
  };

  await record("createTask", ledger.connect(sponsor).createTask(defaultParams({ quorum: 2 }), { value: E("5") }));
  await record("fundTask", ledger.connect(sponsor).fundTask(1, { value: E("1") }));
  for (const v of [v1, v2, v3, v4]) await record("registerVerifier", ledger.connect(v).registerVerifier({ value: E("1") }));

  // An improving claim with two confirmations, finalized and settled.
  const c5 = vectors.cases.find((c) => c.numLeaves === 5);
  const f1 = claimFields({ merkleRoot: c5.root, numSegments: 4, salt: ethers.ZeroHash.replace(/0$/, "1") });
  await record("commit", ledger.connect(trainer).commit(commitmentOf(trainer.address, f1)));
  await record("reveal", ledger.connect(trainer).reveal(...revealArgs(f1), { value: E("0.1") }));
  await record("confirm", ledger.connect(v1).confirm(1, [0, 3], 1_500_000n));
  await record("confirm", ledger.connect(v2).confirm(1, [1, 2], 1_500_000n));
  await increaseTime(2 * 3600 + 1);
  await record("finalize", ledger.finalize(1));
  await record("settle", ledger.connect(v1).settle(1));

  // A second claim: challenged on segment 2 with real proofs, upheld by two votes.
  const f2 = claimFields({ merkleRoot: c5.root, numSegments: 4, claimedLoss: 1_000_000n, salt: ethers.ZeroHash.replace(/0$/, "2") });
  await record("commit", ledger.connect(trainer).commit(commitmentOf(trainer.address, f2)));
  await record("reveal", ledger.connect(trainer).reveal(...revealArgs(f2), { value: E("0.1") }));
  await record("confirm", ledger.connect(v1).confirm(2, [2], 1_000_000n));
  await record(
    "challenge",
    ledger
      .connect(challenger)
      .challenge(2, Kind.Segment, 2, c5.stateHashes[2], c5.stateHashes[3], c5.proofs[2], c5.proofs[3], ethers.ZeroHash.replace(/0$/, "9"), {
        value: E("0.02"),
      }),
  );
  const disputeId = await ledger.disputeIdOf(2, Kind.Segment, 2);
  await record("vote", ledger.connect(v3).vote(disputeId, true));
  await record("vote", ledger.connect(v4).vote(disputeId, true));
  await increaseTime(3600 + 1);
  await record("resolveDispute", ledger.resolveDispute(disputeId));
  await record("settleVote", ledger.connect(v3).settleVote(disputeId));
  await record("settle", ledger.connect(v1).settle(2));
  await record("report", ledger.connect(trainer).report(1, f1.codeCid, f1.manifestDigest, 1_900_000n, "lr 3e-4: diverged"));
  await record("unregisterVerifier", ledger.connect(v3).unregisterVerifier());
  await record("withdraw", ledger.connect(trainer).withdraw());

  // A sealed task (docs/sealed-evaluation.md): one round, its shard opened, a claim scored head
  // to head (two losses), confirmed and finalized; the bond released after the last round.
  const c3 = vectors.cases.find((c) => c.numLeaves === 3);
  const seal = { shardRoot: c3.root, rounds: 3, roundLength: 4 * 3600, openGrace: 3600, sponsorBond: E("0.5") };
  await record("createSealedTask", ledger.connect(sponsor).createSealedTask(defaultParams({ quorum: 1 }), seal, { value: E("2") }));
  const f3 = claimFields({ taskId: 2, claimedLoss: 0n, round: 0, merkleRoot: c5.root, salt: ethers.ZeroHash.replace(/0$/, "3") });
  await ledger.connect(trainer).commit(commitmentOf(trainer.address, f3));
  await record("reveal (sealed)", ledger.connect(trainer).reveal(f3, { value: E("0.1") }));
  await increaseTime(4 * 3600);
  const cid = "0x01551220" + "cd".repeat(32);
  await record("openShard", ledger.connect(sponsor).openShard(2, 0, c3.stateHashes[0], cid, c3.proofs[0]));
  const id = await ledger.totalClaims();
  await record("score", ledger.connect(trainer).score(id, 1_500_000n, 0, 1_900_000n));
  await ledger.connect(v1).confirm(id, [0], 1_500_000n);
  await increaseTime(2 * 3600 + 1);
  await record("finalize (sealed)", ledger.finalize(id));
  await increaseTime(3 * 4 * 3600);
  await record("releaseRound", ledger.releaseRound(2, 2)); // a missed round with no claims
  return gas;
}

function table(gas, snapshot) {
  const rows = Object.keys(gas).sort().map((fn) => {
    const was = snapshot[fn] === undefined ? "-" : String(snapshot[fn]);
    const target = TARGETS[fn] === undefined ? "" : `<= ${TARGETS[fn]}`;
    return `  ${fn.padEnd(20)} ${String(gas[fn]).padStart(8)} ${was.padStart(8)}  ${target}`;
  });
  return [`  ${"function".padEnd(20)} ${"gas".padStart(8)} ${"snapshot".padStart(8)}  target`, ...rows].join("\n");
}

describe("Gas snapshot", function () {
  it("no external function costs more than tests/contracts/gas-snapshot.json, targets met", async function () {
    const gas = await measure();
    const snapshot = fs.existsSync(SNAPSHOT) ? JSON.parse(fs.readFileSync(SNAPSHOT, "utf8")) : {};
    console.log(table(gas, snapshot));
    if (process.env.UPDATE_GAS_SNAPSHOT === "1") {
      const out = Object.fromEntries(Object.keys(gas).sort().map((fn) => [fn, Number(gas[fn])]));
      fs.writeFileSync(`${SNAPSHOT}.tmp`, JSON.stringify(out, null, 2) + "\n");
      fs.renameSync(`${SNAPSHOT}.tmp`, SNAPSHOT);
      console.log(`  wrote ${path.relative(process.cwd(), SNAPSHOT)}`);
    } else {
      const grown = Object.keys(gas).filter((fn) => snapshot[fn] === undefined || gas[fn] > BigInt(snapshot[fn]));
      expect(grown, `gas grew (or is unrecorded) for: ${grown.join(", ")}; run with UPDATE_GAS_SNAPSHOT=1 if intended`).to.deep.equal([]);
    }
    for (const [fn, limit] of Object.entries(TARGETS)) {
      expect(gas[fn], `${fn} gas ${gas[fn]} over target ${limit}`).to.be.at.most(limit);
    }
  });
});
