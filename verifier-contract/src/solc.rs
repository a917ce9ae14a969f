//! The npm toolchain in `verifier-contract/` (pinned in its lockfile): solcjs 0.8.19 for the
//! generated verifiers (snark-verifier pins it), solcjs 0.8.28 for the escrow (OpenZeppelin 5
//! needs it), OpenZeppelin's contracts, and anvil.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// The directory holding `compile.js`, `contracts/` and `node_modules/`.
#[derive(Clone, Debug)]
pub struct Toolchain {
    dir: PathBuf,
}

/// Which solcjs compiles a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compiler {
    /// `solc@0.8.19`: snark-verifier's verifiers (compiled without the optimizer).
    Verifier,
    /// `solc@0.8.28` (npm alias `solc-escrow`): the escrow and the test contracts.
    Escrow,
}

impl Compiler {
    fn module(self) -> &'static str {
        match self {
            Compiler::Verifier => "solc",
            Compiler::Escrow => "solc-escrow",
        }
    }
}

/// A compiled contract.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Artifact {
    /// Deployment bytecode.
    pub bytecode: Vec<u8>,
    /// Runtime (deployed) bytecode, with its immutables zeroed.
    pub runtime: Vec<u8>,
    /// Where each immutable sits in the runtime code: `(start, length)` per immutable, in
    /// declaration order.
    pub immutables: Vec<Vec<(usize, usize)>>,
    /// ABI JSON.
    pub abi: String,
}

impl Toolchain {
    /// The toolchain in `dir`, checking that `npm ci` has run there.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        for need in [
            "compile.js",
            "node_modules/solc/package.json",
            "node_modules/solc-escrow/package.json",
            "node_modules/@openzeppelin/contracts/package.json",
        ] {
            if !dir.join(need).exists() {
                return Err(Error::ToolchainMissing { path: dir.join(need).display().to_string() });
            }
        }
        Ok(Toolchain { dir })
    }

    /// The toolchain shipped in this repository (for tests and tools run from the source tree).
    pub fn in_repo() -> Result<Self> {
        Self::new(Path::new(env!("CARGO_MANIFEST_DIR")))
    }

    /// The escrow contract's source.
    pub fn escrow_source(&self) -> PathBuf {
        self.dir.join("contracts/InferenceEscrow.sol")
    }

    /// The test contracts' source (a mintable ERC-20, verifiers that reject or accept everything).
    pub fn test_contracts_source(&self) -> PathBuf {
        self.dir.join("contracts/test/TestToken.sol")
    }

    /// The anvil binary from `@foundry-rs/anvil`'s platform package.
    pub fn anvil(&self) -> Result<PathBuf> {
        let p = self.dir.join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
        if p.exists() {
            Ok(p)
        } else {
            Err(Error::ToolchainMissing { path: p.display().to_string() })
        }
    }

    /// Compiles `files` into `out_dir` (`<Contract>.bin`, `.runtime.bin`, `.immutables.json`,
    /// `.abi.json`). `optimize_runs: None` compiles without the optimizer.
    pub fn compile(&self, compiler: Compiler, out_dir: &Path, files: &[&Path], optimize_runs: Option<u32>) -> Result<()> {
        let mut cmd = Command::new("node");
        cmd.arg(self.dir.join("compile.js")).args(["--solc", compiler.module()]);
        if let Some(runs) = optimize_runs {
            cmd.arg("--optimize").arg(runs.to_string());
        }
        if compiler == Compiler::Verifier {
            // A split verifier's parts keep their code when the wrapper beside them changes.
            cmd.arg("--no-metadata-hash");
        }
        cmd.arg(out_dir).args(files);
        let out = cmd.output().map_err(|e| Error::Solc(format!("running node: {e}")))?;
        if !out.status.success() {
            return Err(Error::Solc(String::from_utf8_lossy(&out.stderr).trim().to_string()));
        }
        Ok(())
    }

    /// Compiles one file and reads back the named contract.
    pub fn compile_one(&self, compiler: Compiler, file: &Path, contract: &str, optimize_runs: Option<u32>) -> Result<Artifact> {
        let tmp = tempfile::tempdir().map_err(|e| Error::io(Path::new("<tmp>"), e))?;
        self.compile(compiler, tmp.path(), &[file], optimize_runs)?;
        read_artifact(tmp.path(), contract)
    }
}

/// Reads `<name>.bin`, `.runtime.bin`, `.immutables.json` and `.abi.json` from `dir`.
pub fn read_artifact(dir: &Path, name: &str) -> Result<Artifact> {
    let read = |ext: &str| {
        let p = dir.join(format!("{name}.{ext}"));
        std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))
    };
    let code = |ext: &str| -> Result<Vec<u8>> { hex::decode(read(ext)?.trim()).map_err(|e| Error::Solc(format!("{name}.{ext}: {e}"))) };
    let refs: serde_json::Value =
        serde_json::from_str(&read("immutables.json")?).map_err(|e| Error::Solc(format!("{name}.immutables.json: {e}")))?;
    // Keys are AST ids, which grow in declaration order.
    let mut ids: Vec<(u64, Vec<(usize, usize)>)> = Vec::new();
    for (id, spans) in refs.as_object().into_iter().flatten() {
        let id: u64 = id.parse().map_err(|_| Error::Solc(format!("{name}: immutable id `{id}`")))?;
        let spans = spans
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| Some((s["start"].as_u64()? as usize, s["length"].as_u64()? as usize)))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Error::Solc(format!("{name}: malformed immutable references")))?;
        ids.push((id, spans));
    }
    ids.sort_by_key(|(id, _)| *id);
    Ok(Artifact {
        bytecode: code("bin")?,
        runtime: code("runtime.bin")?,
        immutables: ids.into_iter().map(|(_, s)| s).collect(),
        abi: read("abi.json")?,
    })
}
