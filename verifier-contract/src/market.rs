//! Setting up the market's contracts for one model: its verifier (split if over EIP-170),
//! the escrow, and the model's registration in the escrow.

use alloy::primitives::{Address, FixedBytes, U256};
use alloy::sol_types::SolCall;
use zkinfer_prover::Loaded;

use crate::chain::LocalChain;
use crate::codegen::verifier_solidity;
use crate::error::{Error, Result};
use crate::escrow::InferenceEscrow;
use crate::solc::Toolchain;
use crate::verifier::CompiledVerifier;

/// Gas cap of the setup transactions.
const SETUP_GAS: u64 = 5_000_000;

/// The deployed market contracts for one model.
#[derive(Clone, Copy, Debug)]
pub struct MarketContracts {
    /// The model's verifier.
    pub verifier: Address,
    /// The escrow.
    pub escrow: Address,
    /// The model's id in the escrow.
    pub escrow_model: U256,
}

/// Generates, compiles and deploys the model's verifier and an escrow from account `from`,
/// and registers the model (its verifier and model hash) in the escrow.
pub async fn deploy_market(chain: &LocalChain, toolchain: &Toolchain, loaded: &Loaded, from: usize) -> Result<MarketContracts> {
    let n = loaded.model.num_instances();
    let source = verifier_solidity(&loaded.params, &loaded.vk, n)?;
    let verifier = CompiledVerifier::build(toolchain, &source)?.deploy(chain, from).await?;
    let code = toolchain.compile_one(&toolchain.escrow_source(), "InferenceEscrow", Some(200))?.bytecode;
    let escrow = chain.deploy(from, code).await?.contract.ok_or_else(|| Error::Chain("no escrow address".into()))?;
    let register = InferenceEscrow::registerModelCall {
        verifier,
        modelHash: FixedBytes(loaded.bindings.model_hash),
        numInstances: u32::try_from(n).map_err(|_| Error::Chain("too many instances".into()))?,
    };
    if !chain.transact(from, escrow, register.abi_encode(), U256::ZERO, Some(SETUP_GAS)).await?.success {
        return Err(Error::Reverted("registerModel".into()));
    }
    let count = chain.call(escrow, InferenceEscrow::modelCountCall {}.abi_encode(), SETUP_GAS).await?;
    let escrow_model = InferenceEscrow::modelCountCall::abi_decode_returns(&count).map_err(|e| Error::Chain(e.to_string()))?;
    Ok(MarketContracts { verifier, escrow, escrow_model })
}

/// Opens an escrow job from account `from`, paying `price`, for `commitment`, payable only
/// to `allow` (anyone when empty), with a deadline `ttl_s` from now; returns its id.
pub async fn open_job(
    chain: &LocalChain,
    contracts: &MarketContracts,
    from: usize,
    commitment: U256,
    price: U256,
    ttl_s: u64,
    allow: Vec<Address>,
) -> Result<u64> {
    let deadline = chain.timestamp().await? + ttl_s;
    let open = InferenceEscrow::openJobCall { modelId: contracts.escrow_model, inputCommitment: commitment, deadline, allowList: allow };
    if !chain.transact(from, contracts.escrow, open.abi_encode(), price, Some(SETUP_GAS)).await?.success {
        return Err(Error::Reverted("openJob".into()));
    }
    let count = chain.call(contracts.escrow, InferenceEscrow::jobCountCall {}.abi_encode(), SETUP_GAS).await?;
    let id = InferenceEscrow::jobCountCall::abi_decode_returns(&count).map_err(|e| Error::Chain(e.to_string()))?;
    u64::try_from(id).map_err(|_| Error::Chain("job id out of range".into()))
}
