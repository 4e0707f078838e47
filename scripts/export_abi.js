#!/usr/bin/env node
// Export the compiled TrainingLedger (after `npx hardhat compile`) to
// client/arledger/_build/TrainingLedger.json: the ONE source of truth Python reads.
// Besides ABI and bytecode it carries the compiler's metadata (settings and the keccak256
// of every source: what `artrain ledger verify` recompiles from) and the members of every
// enum of the contract's sources (Python decodes enum values by these names).
// Written to a temp file and renamed, so a failed export never leaves half a file.
"use strict";
const fs = require("fs");
const path = require("path");

const ROOT = path.resolve(__dirname, "..");
const NAME = "TrainingLedger";
const ARTIFACT = path.join(ROOT, "artifacts", "contracts", `${NAME}.sol`, `${NAME}.json`);
const OUT_DIR = path.join(ROOT, "client", "arledger", "_build");
const OUT = path.join(OUT_DIR, `${NAME}.json`);

function fail(message) {
  process.stderr.write(`export_abi: ${message}\n`);
  process.exit(1);
}

// {"ITrainingLedger.ClaimState": ["None", "Open", ...], ...}: enum members in declaration
// order (the ABI carries enums as uint8 with no member names).
function enumsOf(outputSources, names) {
  const enums = {};
  const walk = (node) => {
    if (!node || typeof node !== "object") return;
    if (node.nodeType === "EnumDefinition") enums[node.canonicalName] = node.members.map((m) => m.name);
    for (const value of Object.values(node)) {
      if (Array.isArray(value)) value.forEach(walk);
      else if (value && typeof value === "object") walk(value);
    }
  };
  for (const name of names) walk(outputSources[name] && outputSources[name].ast);
  return enums;
}

function main() {
  if (!fs.existsSync(ARTIFACT)) fail(`missing ${path.relative(ROOT, ARTIFACT)}: run \`npx hardhat compile\` first`);
  const artifact = JSON.parse(fs.readFileSync(ARTIFACT, "utf8"));
  if (!artifact.bytecode || artifact.bytecode === "0x") fail(`${NAME} has no bytecode (abstract?)`);
  // The settings actually used come from the build info the artifact points to.
  const dbg = JSON.parse(fs.readFileSync(ARTIFACT.replace(/\.json$/, ".dbg.json"), "utf8"));
  const buildInfo = JSON.parse(fs.readFileSync(path.resolve(path.dirname(ARTIFACT), dbg.buildInfo), "utf8"));
  const settings = buildInfo.input.settings;
  const compiled = buildInfo.output.contracts[artifact.sourceName][NAME];
  if (!compiled.metadata) fail(`the build has no metadata for ${NAME} (outputSelection lacks "metadata")`);
  const metadata = JSON.parse(compiled.metadata);
  const out = {
    contractName: artifact.contractName,
    abi: artifact.abi,
    bytecode: artifact.bytecode,
    deployedBytecode: artifact.deployedBytecode,
    compiler: {
      version: buildInfo.solcVersion,
      longVersion: buildInfo.solcLongVersion,
      evmVersion: settings.evmVersion,
      optimizer: { ...settings.optimizer, viaIR: Boolean(settings.viaIR) },
    },
    metadata,
    enums: enumsOf(buildInfo.output.sources, Object.keys(metadata.sources)),
  };
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const tmp = `${OUT}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(out, null, 1) + "\n");
  fs.renameSync(tmp, OUT);
  process.stdout.write(`export_abi: wrote ${path.relative(ROOT, OUT)} (${artifact.abi.length} ABI entries)\n`);
}

main();
