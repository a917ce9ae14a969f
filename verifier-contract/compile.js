#!/usr/bin/env node
// Compiles Solidity with solcjs (the npm `solc` package; there is no native solc here).
// Usage: node compile.js [--solc MODULE] [--optimize RUNS] [--no-metadata-hash] OUTDIR FILE.sol [FILE.sol ...]
// --no-metadata-hash leaves the source's hash out of the bytecode, so that a contract's code
// does not change when another contract in the same file does (the split verifier's wrapper
// pins its parts by code hash).
// MODULE is the npm package of the compiler (default `solc`, 0.8.19, which snark-verifier's
// verifiers pin; `solc-escrow` is 0.8.28, which OpenZeppelin 5 needs). Imports resolve from
// node_modules. Writes, for every contract defined in the given files:
//   OUTDIR/<Contract>.bin             deployment bytecode, hex
//   OUTDIR/<Contract>.runtime.bin     runtime (deployed) bytecode, hex, immutables zeroed
//   OUTDIR/<Contract>.immutables.json immutable references: [{start, length}] per id
//   OUTDIR/<Contract>.abi.json        ABI
"use strict";
const fs = require("fs");
const path = require("path");

function findImports(p) {
  for (const base of [path.join(__dirname, "node_modules"), path.join(__dirname, "contracts")]) {
    const f = path.join(base, p);
    if (fs.existsSync(f)) return { contents: fs.readFileSync(f, "utf8") };
  }
  return { error: `import not found: ${p}` };
}

function main(argv) {
  let runs = null;
  let module = "solc";
  let metadataHash = true;
  for (;;) {
    if (argv[0] === "--optimize") {
      runs = parseInt(argv[1], 10);
      argv = argv.slice(2);
    } else if (argv[0] === "--solc") {
      module = argv[1];
      argv = argv.slice(2);
    } else if (argv[0] === "--no-metadata-hash") {
      metadataHash = false;
      argv = argv.slice(1);
    } else break;
  }
  const solc = require(module);
  const [outDir, ...files] = argv;
  if (!outDir || files.length === 0) {
    console.error("usage: node compile.js [--solc MODULE] [--optimize RUNS] [--no-metadata-hash] OUTDIR FILE.sol [FILE.sol ...]");
    return 2;
  }
  const sources = {};
  for (const f of files) sources[path.basename(f)] = { content: fs.readFileSync(f, "utf8") };
  const input = {
    language: "Solidity",
    sources,
    settings: {
      optimizer: runs === null ? { enabled: false } : { enabled: true, runs },
      ...(metadataHash ? {} : { metadata: { bytecodeHash: "none" } }),
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "evm.deployedBytecode.immutableReferences"] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  if (errors.length > 0) {
    for (const e of errors) console.error(e.formattedMessage || e.message);
    return 1;
  }
  fs.mkdirSync(outDir, { recursive: true });
  const write = (p, data) => {
    const tmp = p + ".tmp";
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, p);
  };
  for (const file of Object.keys(output.contracts || {})) {
    if (!(file in sources)) continue; // imported libraries are not written out
    for (const [name, c] of Object.entries(output.contracts[file])) {
      write(path.join(outDir, name + ".bin"), c.evm.bytecode.object);
      write(path.join(outDir, name + ".runtime.bin"), c.evm.deployedBytecode.object);
      write(path.join(outDir, name + ".immutables.json"), JSON.stringify(c.evm.deployedBytecode.immutableReferences || {}));
      write(path.join(outDir, name + ".abi.json"), JSON.stringify(c.abi, null, 2));
      console.log(`${name}: ${c.evm.bytecode.object.length / 2} bytes`);
    }
  }
  console.log(`solc ${solc.version()}`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
