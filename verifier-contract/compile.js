#!/usr/bin/env node
// Compiles Solidity with solcjs (the npm `solc` package; there is no native solc here).
// Usage: node compile.js [--optimize RUNS] OUTDIR FILE.sol [FILE.sol ...]
// Writes OUTDIR/<Contract>.bin (deployment bytecode, hex) and OUTDIR/<Contract>.abi.json
// for every contract defined in the given files.
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

function main(argv) {
  let runs = null;
  if (argv[0] === "--optimize") {
    runs = parseInt(argv[1], 10);
    argv = argv.slice(2);
  }
  const [outDir, ...files] = argv;
  if (!outDir || files.length === 0) {
    console.error("usage: node compile.js [--optimize RUNS] OUTDIR FILE.sol [FILE.sol ...]");
    return 2;
  }
  const sources = {};
  for (const f of files) sources[path.basename(f)] = { content: fs.readFileSync(f, "utf8") };
  const input = {
    language: "Solidity",
    sources,
    settings: {
      optimizer: runs === null ? { enabled: false } : { enabled: true, runs },
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  if (errors.length > 0) {
    for (const e of errors) console.error(e.formattedMessage || e.message);
    return 1;
  }
  fs.mkdirSync(outDir, { recursive: true });
  for (const file of Object.keys(output.contracts || {})) {
    for (const [name, c] of Object.entries(output.contracts[file])) {
      const write = (p, data) => {
        const tmp = p + ".tmp";
        fs.writeFileSync(tmp, data);
        fs.renameSync(tmp, p);
      };
      write(path.join(outDir, name + ".bin"), c.evm.bytecode.object);
      write(path.join(outDir, name + ".abi.json"), JSON.stringify(c.abi, null, 2));
      console.log(`${name}: ${c.evm.bytecode.object.length / 2} bytes`);
    }
  }
  console.log(`solc ${solc.version()}`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
