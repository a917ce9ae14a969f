//! Setting up the market's contracts for one model: its verifier (split if over EIP-170),
//! the escrow, and the model's registration in the escrow.

use alloy::primitives::Address;
use zkinfer_prover::Loaded;

use crate::chain::{Deployer, LocalChain};
use crate::codegen::verifier_solidity;
use crate::error::{Error, Result};
use crate::escrow::EscrowClient;
use crate::solc::Toolchain;
use crate::verifier::CompiledVerifier;

/// The deployed market contracts for one model.
#[derive(Clone, Copy, Debug)]
pub struct MarketContracts {
    /// The model's verifier.
    pub verifier: Address,
    /// The escrow.
    pub escrow: Address,
    /// The model's id in the escrow.
    pub escrow_model: u64,
}

/// Compiles the escrow contract.
pub fn escrow_code(toolchain: &Toolchain) -> Result<Vec<u8>> {
    Ok(toolchain.compile_one(&toolchain.escrow_source(), "InferenceEscrow", Some(200))?.bytecode)
}

/// Generates, compiles and deploys the model's verifier and registers it in the escrow
/// `escrow` sends through; returns the verifier's address and the escrow's model id.
pub async fn deploy_model(deployer: &Deployer, toolchain: &Toolchain, loaded: &Loaded, escrow: &EscrowClient) -> Result<(Address, u64)> {
    let n = loaded.model.num_instances();
    let source = verifier_solidity(&loaded.params, &loaded.vk, n)?;
    let verifier = CompiledVerifier::build(toolchain, &source)?.deploy(deployer).await?;
    let n = u32::try_from(n).map_err(|_| Error::Codegen(format!("{n} instances do not fit the escrow's uint32")))?;
    let id = escrow.register_model(verifier, loaded.bindings.model_hash, n).await?;
    Ok((verifier, id))
}

/// Generates, compiles and deploys the model's verifier and an escrow from account `from`,
/// and registers the model (its verifier and model hash) in the escrow.
pub async fn deploy_market(chain: &LocalChain, toolchain: &Toolchain, loaded: &Loaded, from: usize) -> Result<MarketContracts> {
    let deployer = chain.deployer(from);
    let escrow = deployer.deploy(escrow_code(toolchain)?).await?;
    let client = chain.escrow(escrow, from)?;
    let (verifier, escrow_model) = deploy_model(&deployer, toolchain, loaded, &client).await?;
    Ok(MarketContracts { verifier, escrow, escrow_model })
}
