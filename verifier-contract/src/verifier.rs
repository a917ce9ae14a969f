//! The compiled verifier: one contract when it fits EIP-170, otherwise parts and a wrapper
//! ([`crate::split`]); writing it out and deploying it.

use std::path::Path;

use alloy::primitives::{keccak256, Address, B256};

use crate::chain::{Deployer, EIP170_CODE_SIZE_LIMIT};
use crate::error::{Error, Result};
use crate::solc::{read_artifact, Artifact, Compiler, Toolchain};
use crate::split::{part_name, split_source, WRAPPER};

/// Most parts tried before giving up.
const MAX_PARTS: usize = 16;

/// A verifier ready to deploy.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
            let names: Vec<String> = (0..parts).map(part_name).chain([WRAPPER.to_string()]).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            // First the parts, to learn their code hashes; then the wrapper that pins them.
            let mut built = compile(toolchain, &split_source(source, parts, None)?, &names)?;
            built.pop();
            if built.iter().all(|a| a.bytecode.len() <= EIP170_CODE_SIZE_LIMIT) {
                let hashes: Vec<[u8; 32]> = built.iter().map(|p| keccak256(&p.runtime).0).collect();
                let split = split_source(source, parts, Some(&hashes))?;
                let mut pinned = compile(toolchain, &split, &names)?;
                let verifier = pinned.pop().ok_or_else(|| Error::Solc("no wrapper".into()))?;
                if pinned != built {
                    return Err(Error::Codegen("the parts' code changed with the wrapper beside them".into()));
                }
                return Ok(CompiledVerifier { source: split, parts: pinned, verifier });
            }
            parts += 1;
        }
        Err(Error::Codegen(format!("the verifier does not fit EIP-170 even in {MAX_PARTS} parts")))
    }

    /// Generates the Solidity verifier for a set-up model and compiles it (seconds to a minute:
    /// solcjs). With `cache`, the build is kept in that file, keyed by the model's vk hash, and
    /// reused while the key is the same.
    pub fn for_model(toolchain: &Toolchain, loaded: &zkinfer_prover::Loaded, cache: Option<&Path>) -> Result<Self> {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Cached {
            vk_sha256: String,
            verifier: CompiledVerifier,
        }
        let key = hex::encode(loaded.bindings.vk_hash);
        if let Some(path) = cache {
            if let Some(c) = std::fs::read(path).ok().and_then(|b| serde_json::from_slice::<Cached>(&b).ok()).filter(|c| c.vk_sha256 == key)
            {
                return Ok(c.verifier);
            }
        }
        let source = crate::codegen::verifier_solidity(&loaded.params, &loaded.vk, loaded.model.num_instances())?;
        let verifier = Self::build(toolchain, &source)?;
        if let Some(path) = cache {
            // A cache that cannot be written is only slower next time.
            if let Ok(bytes) = serde_json::to_vec(&Cached { vk_sha256: key, verifier: verifier.clone() }) {
                let _ = zkinfer_prover::fs::atomic_write(path, &bytes);
            }
        }
        Ok(verifier)
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

    /// Deploys the parts, then the verifier; returns the verifier's address and the parts'.
    pub async fn deploy(&self, deployer: &Deployer) -> Result<(Address, Vec<Address>)> {
        let mut code = self.verifier.bytecode.clone();
        let mut parts = Vec::with_capacity(self.parts.len());
        for p in &self.parts {
            let addr = deployer.deploy(p.bytecode.clone()).await?;
            // ABI encoding of an address constructor argument: left-padded to 32 bytes.
            code.extend_from_slice(&[0u8; 12]);
            code.extend_from_slice(addr.as_slice());
            parts.push(addr);
        }
        Ok((deployer.deploy(code).await?, parts))
    }

    /// The code hash the escrow records for this verifier deployed with its parts at `parts`
    /// (`InferenceEscrow.registerModel`): keccak-256 of the code hashes of the verifier and of
    /// each part, in order. The wrapper's runtime code holds the part addresses as immutables,
    /// so its expected code is rebuilt here with them, and a registration that names other
    /// parts than the wrapper calls does not match.
    pub fn code_hash(&self, parts: &[Address]) -> Result<B256> {
        if parts.len() != self.parts.len() {
            return Err(Error::Codegen(format!("{} parts named, the verifier has {}", parts.len(), self.parts.len())));
        }
        let mut wrapper = self.verifier.runtime.clone();
        if self.verifier.immutables.len() != parts.len() {
            return Err(Error::Codegen("the wrapper's immutables are not its parts".into()));
        }
        for (spans, addr) in self.verifier.immutables.iter().zip(parts) {
            for &(start, len) in spans {
                let slot = wrapper
                    .get_mut(start..start + len)
                    .filter(|s| s.len() == 32)
                    .ok_or_else(|| Error::Codegen("immutable out of the code".into()))?;
                slot[..12].fill(0);
                slot[12..].copy_from_slice(addr.as_slice());
            }
        }
        let mut hashes = vec![keccak256(&wrapper)];
        hashes.extend(self.parts.iter().map(|p| keccak256(&p.runtime)));
        Ok(keccak256(hashes.concat()))
    }
}

/// Compiles one source and reads back the named contracts, in order.
fn compile(toolchain: &Toolchain, source: &str, names: &[&str]) -> Result<Vec<Artifact>> {
    let dir = tempfile::tempdir().map_err(|e| Error::io(Path::new("<tmp>"), e))?;
    let src = dir.path().join("Verifier.sol");
    std::fs::write(&src, source).map_err(|e| Error::io(&src, e))?;
    let build = dir.path().join("build");
    toolchain.compile(Compiler::Verifier, &build, &[&src], None)?;
    names.iter().map(|n| read_artifact(&build, n)).collect()
}
