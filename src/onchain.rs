//! `solidity`, `calldata`, and the demo's on-chain step.

use std::path::Path;

use alloy::primitives::{FixedBytes, U256};
use alloy::sol_types::SolCall;
use anyhow::{bail, Context, Result};
use zkinfer_prover::{Loaded, ModelDir, ProofEnvelope};
use zkinfer_verifier_contract::chain::{LocalChain, DEFAULT_HARDFORK, EIP170_CODE_SIZE_LIMIT};
use zkinfer_verifier_contract::codegen::{calldata as encode_calldata, verifier_solidity};
use zkinfer_verifier_contract::escrow::InferenceEscrow;
use zkinfer_verifier_contract::solc::Toolchain;
use zkinfer_verifier_contract::verifier::CompiledVerifier;

use crate::ui::timed;
use crate::{CalldataArgs, Outcome, SolidityArgs};

/// Gas given to each demo transaction.
const TX_GAS: u64 = 5_000_000;

fn n_instances(loaded: &Loaded) -> usize {
    loaded.model.num_instances()
}

/// Writes the verifier (Verifier.sol, Verifier.bin, Verifier.abi.json, and VerifierPart<i>.bin
/// with deploy.json when it is split) into `out`.
fn write_verifier(dir: &Path, out: &Path, toolchain: &Toolchain) -> Result<CompiledVerifier> {
    let loaded = ModelDir::new(dir).load()?;
    let sol = timed("generating the Solidity verifier", || verifier_solidity(&loaded.params, &loaded.vk, n_instances(&loaded))).0?;
    // snark-verifier's verifier fails with "stack too deep" under the optimizer: compile without it.
    let (v, t) =
        timed("compiling with solcjs (optimizer off; split into parts if over EIP-170)", || CompiledVerifier::build(toolchain, &sol));
    let v = v?;
    v.write(out)?;
    if v.parts.is_empty() {
        println!(
            "verifier compiled in {:.1}s: {} bytes of code → {}",
            t.as_secs_f64(),
            v.verifier.bytecode.len(),
            out.join("Verifier.sol").display()
        );
    } else {
        println!(
            "verifier compiled in {:.1}s: {} bytes of code, over EIP-170's {EIP170_CODE_SIZE_LIMIT}, so split into {} part contracts \
             (largest {} bytes) chained by Verifier.bin → {}",
            t.as_secs_f64(),
            v.total_code(),
            v.parts.len(),
            v.largest_contract(),
            out.display()
        );
        println!(
            "  deploy VerifierPart0.bin .. VerifierPart{}.bin, then Verifier.bin with their addresses (see deploy.json)",
            v.parts.len() - 1
        );
    }
    Ok(v)
}

pub(crate) fn solidity(a: &SolidityArgs) -> Result<Outcome> {
    let toolchain = Toolchain::new(&a.toolchain)?;
    write_verifier(&a.dir, &a.out, &toolchain)?;
    Ok(Outcome::Ok)
}

pub(crate) fn calldata(a: &CalldataArgs) -> Result<Outcome> {
    let bytes = std::fs::read(&a.proof).with_context(|| format!("reading {}", a.proof.display()))?;
    let env = ProofEnvelope::from_bytes(&bytes).with_context(|| a.proof.display().to_string())?;
    println!("0x{}", hex::encode(encode_calldata(&env)?));
    Ok(Outcome::Ok)
}

/// Deploys the verifier and the escrow on a fresh anvil, verifies the proof, and runs one paid job.
pub(crate) fn demo_on_chain(dir: &Path, proof: &Path, toolchain_dir: &Path, out: &Path) -> Result<()> {
    let toolchain = Toolchain::new(toolchain_dir)?;
    let compiled = write_verifier(dir, out, &toolchain)?;
    let env = ProofEnvelope::from_bytes(&std::fs::read(proof)?)?;
    let loaded = ModelDir::new(dir).load()?;
    let escrow_code = toolchain.compile_one(&toolchain.escrow_source(), "InferenceEscrow", Some(200))?.bytecode;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let chain = LocalChain::start(&toolchain.anvil()?, DEFAULT_HARDFORK)?;
        let verifier = compiled.deploy(&chain, 0).await?;
        let data = encode_calldata(&env)?;
        let verified = chain.transact(0, verifier, data, U256::ZERO, Some(TX_GAS)).await?;
        if !verified.success {
            bail!("the verifier contract rejected the demo proof");
        }
        println!(
            "verified on anvil ({} hardfork): {} gas for the verifier call (incl. 21000 base and calldata)",
            chain.hardfork, verified.gas_used
        );

        let escrow = chain.deploy(0, escrow_code).await?.contract.context("no escrow address")?;
        let instances: Vec<U256> = env.instances.iter().map(|b| U256::from_le_bytes(*b)).collect();
        let price = U256::from(10u64).pow(U256::from(17u64));
        let deadline = chain.timestamp().await? + 3600;
        let steps = [
            (
                0,
                InferenceEscrow::registerModelCall {
                    verifier,
                    modelHash: FixedBytes(loaded.bindings.model_hash),
                    numInstances: instances.len() as u32,
                }
                .abi_encode(),
                U256::ZERO,
            ),
            (
                1,
                InferenceEscrow::openJobCall { modelId: U256::from(1), inputCommitment: instances[0], deadline, allowList: vec![] }
                    .abi_encode(),
                price,
            ),
            (2, InferenceEscrow::claimJobCall { jobId: U256::from(1) }.abi_encode(), U256::ZERO),
        ];
        for (from, data, value) in steps {
            if !chain.transact(from, escrow, data, value, Some(TX_GAS)).await?.success {
                bail!("escrow setup transaction reverted");
            }
        }
        let before = chain.balance(chain.account(2)).await?;
        let submit = InferenceEscrow::submitProofCall { jobId: U256::from(1), instances, proof: env.proof.clone().into() }.abi_encode();
        let paid = chain.transact(2, escrow, submit, U256::ZERO, Some(TX_GAS)).await?;
        if !paid.success {
            bail!("the escrow rejected the demo proof");
        }
        let gained = chain.balance(chain.account(2)).await? + paid.fee - before;
        println!("escrow paid the executor {gained} wei for job 1 after checking the proof: {} gas for submitProof", paid.gas_used);
        Ok(())
    })
}
