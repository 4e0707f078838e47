// The part of solc's command line that py-solc-x uses (`--version`, `--standard-json` on
// stdin), served by the solc-js in node_modules: no native compiler, no download.
// solc-js's own `solcjs` prints notices on stdout before the JSON, which a caller that
// parses stdout as JSON (py-solc-x) cannot take.
"use strict";
const path = require("path");

const ROOT = path.resolve(__dirname, "..");
const solc = require(require.resolve("solc", { paths: [ROOT] }));
const args = process.argv.slice(2);

if (args.includes("--version")) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
} else if (args.includes("--standard-json")) {
  const chunks = [];
  process.stdin.on("data", (c) => chunks.push(c));
  process.stdin.on("end", () => {
    // No import callback: the caller puts every source in the input (as a verifier must).
    process.stdout.write(solc.compile(Buffer.concat(chunks).toString("utf8")) + "\n");
  });
} else {
  process.stderr.write("solcjs-cli: only --version and --standard-json (input on stdin) are supported\n");
  process.exit(2);
}
