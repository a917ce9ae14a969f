//! Setting up the market's contracts for one model: its verifier (split if over EIP-170),
//! the escrow, and the model's registration in the escrow.

use alloy::primitives::Address;
use zkinfer_prover::Loaded;

use crate::chain::{Deployer, LocalChain};
use crate::codegen::verifier_solidity;
use crate::error::{Error, Result};
use crate::escrow::EscrowClient;
use crate::solc::{Compiler, Toolchain};
use crate::verifier::CompiledVerifier;
use alloy::sol_types::SolValue;

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

/// The escrow's terms: how long unstaking waits, and the share of a failed claimant's bond
/// the customer gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EscrowTerms {
    /// Seconds between an unstake request and its withdrawal.
    pub unstake_delay: u64,
    /// Basis points of a failed claimant's bond paid to the customer.
    pub slash_bps: u16,
}

impl Default for EscrowTerms {
    /// A day's unstake delay; half the bond slashed.
    fn default() -> Self {
        EscrowTerms { unstake_delay: 86_400, slash_bps: 5_000 }
    }
}

/// The escrow's deployment code with its constructor arguments.
pub fn escrow_code(toolchain: &Toolchain, terms: EscrowTerms) -> Result<Vec<u8>> {
    let mut code = toolchain.compile_one(Compiler::Escrow, &toolchain.escrow_source(), "InferenceEscrow", Some(200))?.bytecode;
    code.extend((terms.unstake_delay, terms.slash_bps).abi_encode_params());
    Ok(code)
}

/// Generates, compiles and deploys the model's verifier and registers it in the escrow
/// `escrow` sends through; returns the verifier's address and the escrow's model id.
pub async fn deploy_model(deployer: &Deployer, toolchain: &Toolchain, loaded: &Loaded, escrow: &EscrowClient) -> Result<(Address, u64)> {
    let n = loaded.model.num_instances();
    let source = verifier_solidity(&loaded.params, &loaded.vk, n)?;
    let (verifier, parts) = CompiledVerifier::build(toolchain, &source)?.deploy(deployer).await?;
    let n = u32::try_from(n).map_err(|_| Error::Codegen(format!("{n} instances do not fit the escrow's uint32")))?;
    let id = escrow.register_model(verifier, &parts, loaded.bindings.model_hash, n).await?;
    Ok((verifier, id))
}

/// Generates, compiles and deploys the model's verifier and an escrow from account `from`,
/// and registers the model (its verifier and model hash) in the escrow.
pub async fn deploy_market(chain: &LocalChain, toolchain: &Toolchain, loaded: &Loaded, from: usize) -> Result<MarketContracts> {
    let deployer = chain.deployer(from);
    let escrow = deployer.deploy(escrow_code(toolchain, EscrowTerms::default())?).await?;
    let client = chain.escrow(escrow, from)?;
    let (verifier, escrow_model) = deploy_model(&deployer, toolchain, loaded, &client).await?;
    Ok(MarketContracts { verifier, escrow, escrow_model })
}
