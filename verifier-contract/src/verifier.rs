//! The compiled verifier: one contract when it fits EIP-170, otherwise parts and a wrapper
//! ([`crate::split`]); writing it out and deploying it.

use std::path::Path;

use alloy::primitives::Address;

use crate::chain::{Deployer, EIP170_CODE_SIZE_LIMIT};
use crate::error::{Error, Result};
use crate::solc::{read_artifact, Artifact, Toolchain};
use crate::split::{part_name, split_source, WRAPPER};

/// Most parts tried before giving up.
const MAX_PARTS: usize = 16;

/// A verifier ready to deploy.
#[derive(Clone, Debug)]
pub struct CompiledVerifier {
    /// The Solidity source of every contract.
    pub source: String,
    /// Part contracts, in call order (empty when the verifier is one contract).
    pub parts: Vec<Artifact>,
    /// The contract to call: the whole verifier, or the wrapper (whose constructor takes the
    /// part addresses, in order).
    pub verifier: Artifact,
}

impl CompiledVerifier {
    /// Compiles `source` (the unsplit verifier) with solcjs, without the optimizer (it fails on
    /// these verifiers with "stack too deep"). When it exceeds EIP-170, splits it into the
    /// fewest parts that each fit.
    pub fn build(toolchain: &Toolchain, source: &str) -> Result<Self> {
        let whole = compile(toolchain, source, &[WRAPPER])?.remove(0);
        if whole.bytecode.len() <= EIP170_CODE_SIZE_LIMIT {
            return Ok(CompiledVerifier { source: source.to_string(), parts: Vec::new(), verifier: whole });
        }
        let mut parts = whole.bytecode.len().div_ceil(EIP170_CODE_SIZE_LIMIT * 9 / 10);
        while parts <= MAX_PARTS {
            let split = split_source(source, parts)?;
            let names: Vec<String> = (0..parts).map(part_name).chain([WRAPPER.to_string()]).collect();
            let mut built = compile(toolchain, &split, &names.iter().map(String::as_str).collect::<Vec<_>>())?;
            let verifier = built.pop().ok_or_else(|| Error::Solc("no wrapper".into()))?;
            if built.iter().all(|a| a.bytecode.len() <= EIP170_CODE_SIZE_LIMIT) {
                return Ok(CompiledVerifier { source: split, parts: built, verifier });
            }
            parts += 1;
        }
        Err(Error::Codegen(format!("the verifier does not fit EIP-170 even in {MAX_PARTS} parts")))
    }

    /// The largest contract's code, in bytes.
    pub fn largest_contract(&self) -> usize {
        self.parts.iter().chain([&self.verifier]).map(|a| a.bytecode.len()).max().unwrap_or(0)
    }

    /// Code of all contracts together, in bytes.
    pub fn total_code(&self) -> usize {
        self.parts.iter().chain([&self.verifier]).map(|a| a.bytecode.len()).sum()
    }

    /// Writes `Verifier.sol`, `Verifier.bin`, `Verifier.abi.json`, `VerifierPart<i>.bin` and
    /// `deploy.json` (what to deploy, in order) into `out`, each atomically.
    pub fn write(&self, out: &Path) -> Result<()> {
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        let write =
            |name: &str, data: &[u8]| zkinfer_prover::fs::atomic_write(&out.join(name), data).map_err(|e| Error::Codegen(e.to_string()));
        write("Verifier.sol", self.source.as_bytes())?;
        write("Verifier.bin", hex::encode(&self.verifier.bytecode).as_bytes())?;
        write("Verifier.abi.json", self.verifier.abi.as_bytes())?;
        let mut files = Vec::new();
        for (i, p) in self.parts.iter().enumerate() {
            let name = format!("VerifierPart{i}.bin");
            write(&name, hex::encode(&p.bytecode).as_bytes())?;
            files.push(name);
        }
        let manifest = serde_json::json!({
            "deploy_in_order": files,
            "then": "Verifier.bin",
            "constructor_arguments": if files.is_empty() { "none" } else { "the part addresses, in order (address p0, address p1, ...)" },
            "call": "Verifier: raw calldata instances ‖ proof (zkinfer calldata PROOF); empty return = valid, revert = invalid",
        });
        write("deploy.json", serde_json::to_string_pretty(&manifest).map_err(|e| Error::Codegen(e.to_string()))?.as_bytes())
    }

    /// Deploys the parts, then the verifier; returns the verifier's address.
    pub async fn deploy(&self, deployer: &Deployer) -> Result<Address> {
        let mut code = self.verifier.bytecode.clone();
        for p in &self.parts {
            let addr = deployer.deploy(p.bytecode.clone()).await?;
            // ABI encoding of an address constructor argument: left-padded to 32 bytes.
            code.extend_from_slice(&[0u8; 12]);
            code.extend_from_slice(addr.as_slice());
        }
        deployer.deploy(code).await
    }
}

/// Compiles one source and reads back the named contracts, in order.
fn compile(toolchain: &Toolchain, source: &str, names: &[&str]) -> Result<Vec<Artifact>> {
    let dir = tempfile::tempdir().map_err(|e| Error::io(Path::new("<tmp>"), e))?;
    let src = dir.path().join("Verifier.sol");
    std::fs::write(&src, source).map_err(|e| Error::io(&src, e))?;
    let build = dir.path().join("build");
    toolchain.compile(&build, &[&src], None)?;
    names.iter().map(|n| read_artifact(&build, n)).collect()
}
