//! The npm toolchain in `verifier-contract/`: solcjs (pinned `solc@0.8.19`) and anvil.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// The directory holding `compile.js`, `contracts/` and `node_modules/`.
#[derive(Clone, Debug)]
pub struct Toolchain {
    dir: PathBuf,
}

/// A compiled contract.
#[derive(Clone, Debug)]
pub struct Artifact {
    /// Deployment bytecode.
    pub bytecode: Vec<u8>,
    /// ABI JSON.
    pub abi: String,
}

impl Toolchain {
    /// The toolchain in `dir`, checking that `npm ci` has run there.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        for need in ["compile.js", "node_modules/solc/package.json"] {
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

    /// The anvil binary from `@foundry-rs/anvil`'s platform package.
    pub fn anvil(&self) -> Result<PathBuf> {
        let p = self.dir.join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
        if p.exists() {
            Ok(p)
        } else {
            Err(Error::ToolchainMissing { path: p.display().to_string() })
        }
    }

    /// Compiles `files` into `out_dir` (`<Contract>.bin`, `<Contract>.abi.json`).
    /// `optimize_runs: None` compiles without the optimizer.
    pub fn compile(&self, out_dir: &Path, files: &[&Path], optimize_runs: Option<u32>) -> Result<()> {
        let mut cmd = Command::new("node");
        cmd.arg(self.dir.join("compile.js"));
        if let Some(runs) = optimize_runs {
            cmd.arg("--optimize").arg(runs.to_string());
        }
        cmd.arg(out_dir).args(files);
        let out = cmd.output().map_err(|e| Error::Solc(format!("running node: {e}")))?;
        if !out.status.success() {
            return Err(Error::Solc(String::from_utf8_lossy(&out.stderr).trim().to_string()));
        }
        Ok(())
    }

    /// Compiles one file and reads back the named contract.
    pub fn compile_one(&self, file: &Path, contract: &str, optimize_runs: Option<u32>) -> Result<Artifact> {
        let tmp = tempfile::tempdir().map_err(|e| Error::io(Path::new("<tmp>"), e))?;
        self.compile(tmp.path(), &[file], optimize_runs)?;
        read_artifact(tmp.path(), contract)
    }
}

/// Reads `<name>.bin` and `<name>.abi.json` from `dir`.
pub fn read_artifact(dir: &Path, name: &str) -> Result<Artifact> {
    let bin_path = dir.join(format!("{name}.bin"));
    let abi_path = dir.join(format!("{name}.abi.json"));
    let hex_code = std::fs::read_to_string(&bin_path).map_err(|e| Error::io(&bin_path, e))?;
    let bytecode = hex::decode(hex_code.trim()).map_err(|e| Error::Solc(format!("{}: {e}", bin_path.display())))?;
    let abi = std::fs::read_to_string(&abi_path).map_err(|e| Error::io(&abi_path, e))?;
    Ok(Artifact { bytecode, abi })
}
