//! `solidity`, `calldata`, `deploy`, and the demo's on-chain step.

use std::path::Path;

use alloy::primitives::U256;
use anyhow::{bail, Context, Result};
use zkinfer_protocol::{Binding, Commitment, ExecutorId};
use zkinfer_prover::{Loaded, ModelDir, ProofEnvelope};
use zkinfer_verifier_contract::chain::{Deployer, LocalChain, DEFAULT_HARDFORK, EIP170_CODE_SIZE_LIMIT};
use zkinfer_verifier_contract::codegen::{calldata as encode_calldata, verifier_solidity};
use zkinfer_verifier_contract::escrow::{EscrowClient, OpenJob};
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
    let v = compile_verifier(&sol, out, toolchain)?;
    if !v.parts.is_empty() {
        println!(
            "  for one contract and less gas, wrap each proof: `prove --for-aggregation`, `aggregate DIR --proofs P --k 23 --keys KEYS`, \
             then `solidity --aggregation KEYS` (minutes and gigabytes of proving; papers/benchmarks.md)"
        );
    }
    Ok(v)
}

/// Compiles a verifier's source and writes it into `out` (see [`write_verifier`]).
pub(crate) fn compile_verifier(sol: &str, out: &Path, toolchain: &Toolchain) -> Result<CompiledVerifier> {
    // snark-verifier's verifier fails with "stack too deep" under the optimizer: compile without it.
    let (v, t) =
        timed("compiling with solcjs (optimizer off; split into parts if over EIP-170)", || CompiledVerifier::build(toolchain, sol));
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
    if a.aggregation && !a.members.is_empty() {
        crate::batch_check::checked_batch_verifier(a, &toolchain)?;
    } else if a.aggregation {
        compile_verifier(&crate::aggregate::batch_verifier_source(&a.dir)?, &a.out, &toolchain)?;
    } else if a.dir.join("batch.json").exists() {
        bail!("{} is a batch key directory: pass --aggregation for its verifier", a.dir.display());
    } else {
        write_verifier(&a.dir, &a.out, &toolchain)?;
    }
    Ok(Outcome::Ok)
}

pub(crate) fn calldata(a: &CalldataArgs) -> Result<Outcome> {
    let bytes = std::fs::read(&a.proof).with_context(|| format!("reading {}", a.proof.display()))?;
    let calldata = if zkinfer_aggregate::BatchProof::sniff(&bytes) {
        crate::aggregate::batch_calldata(&a.proof, &bytes)?
    } else {
        encode_calldata(&ProofEnvelope::from_bytes(&bytes).with_context(|| a.proof.display().to_string())?)?
    };
    println!("{}", zkinfer_protocol::to_hex(&calldata));
    Ok(Outcome::Ok)
}

/// Arguments of `zkinfer deploy`.
#[derive(Debug, clap::Args)]
pub(crate) struct DeployArgs {
    /// Set-up model directories to deploy a verifier for and register, comma-separated.
    #[arg(long = "model", required = true, value_delimiter = ',')]
    models: Vec<std::path::PathBuf>,
    /// JSON-RPC endpoint of the chain.
    #[arg(long, env = "ZKINFER_RPC_URL")]
    rpc_url: String,
    /// The deployer's Ethereum private key (0x-hex): it pays for the deployment.
    #[arg(long, env = "ZKINFER_DEPLOYER_KEY", hide_env_values = true)]
    key: String,
    /// Register the models in this existing escrow instead of deploying a new one.
    #[arg(long)]
    into_escrow: Option<alloy::primitives::Address>,
    /// A new escrow's unstake delay, in seconds.
    #[arg(long, default_value_t = 86_400)]
    unstake_delay_secs: u64,
    /// A new escrow's share (basis points) of a failed claimant's bond paid to the customer.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u16).range(0..=10_000))]
    slash_bps: u16,
    /// Directory with compile.js and node_modules (solc, anvil), made by `npm ci`.
    #[arg(long, env = "ZKINFER_EVM_TOOLCHAIN", default_value = "verifier-contract")]
    toolchain: std::path::PathBuf,
}

/// `zkinfer deploy`: deploys the escrow (unless given) and, for each model, its verifier and
/// registration. Prints the escrow's address alone on stdout (for scripts); the rest on stderr.
pub(crate) fn deploy(a: &DeployArgs) -> Result<Outcome> {
    let toolchain = Toolchain::new(&a.toolchain)?;
    let key: alloy::signers::local::PrivateKeySigner = a.key.parse().context("--key: not a private key (0x and 64 hex digits)")?;
    let deployer = Deployer::connect(&a.rpc_url, key.clone())?;
    let terms = zkinfer_verifier_contract::market::EscrowTerms { unstake_delay: a.unstake_delay_secs, slash_bps: a.slash_bps };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let block = deployer.block_number().await?;
        let escrow = match a.into_escrow {
            Some(e) => e,
            None => {
                let e = deployer.deploy(zkinfer_verifier_contract::market::escrow_code(&toolchain, terms)?).await?;
                eprintln!("escrow deployed at {e:#x} (watch its events from block {block}: zkinfer coordinator --from-block {block})");
                e
            }
        };
        let client = EscrowClient::connect(&a.rpc_url, escrow, Some(key))?;
        for dir in &a.models {
            let loaded = ModelDir::new(dir).load().with_context(|| dir.display().to_string())?;
            eprintln!("generating, compiling and deploying the verifier of {} …", dir.display());
            let (verifier, id) = zkinfer_verifier_contract::market::deploy_model(&deployer, &toolchain, &loaded, &client).await?;
            let hash = zkinfer_protocol::Hash32(loaded.bindings.model_hash);
            eprintln!("model {} (model hash {hash}): verifier {verifier:#x}, escrow model {id}", dir.display());
        }
        println!("{escrow:#x}");
        Ok(Outcome::Ok)
    })
}

/// Deploys the verifier and the escrow on a fresh anvil, verifies the proof there, then runs
/// one paid job: the executor stakes, proves again bound to itself and the escrow job, and
/// anyone's submission pays it.
pub(crate) fn demo_on_chain(dir: &Path, proof: &Path, input: &Path, toolchain_dir: &Path, out: &Path) -> Result<()> {
    let toolchain = Toolchain::new(toolchain_dir)?;
    let compiled = write_verifier(dir, out, &toolchain)?;
    let env = ProofEnvelope::from_bytes(&std::fs::read(proof)?)?;
    let model_dir = ModelDir::new(dir);
    let loaded = model_dir.load()?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let chain = LocalChain::start(&toolchain.anvil()?, DEFAULT_HARDFORK)?;
        let (verifier, parts) = compiled.deploy(&chain.deployer(0)).await?;
        let data = encode_calldata(&env)?;
        let verified = chain.transact(0, verifier, data, U256::ZERO, Some(TX_GAS)).await?;
        if !verified.success {
            bail!("the verifier contract rejected the demo proof");
        }
        println!(
            "verified on anvil ({} hardfork): {} gas for the verifier call (incl. 21000 base and calldata)",
            chain.hardfork, verified.gas_used
        );
        let (customer, executor, relayer) = (1, 2, 3);
        let terms = zkinfer_verifier_contract::market::EscrowTerms::default();
        let escrow = chain.deployer(0).deploy(zkinfer_verifier_contract::market::escrow_code(&toolchain, terms)?).await?;
        let n = u32::try_from(env.instances.len()).context("too many instances")?;
        let model = chain.escrow(escrow, 0)?.register_model(verifier, &parts, loaded.bindings.model_hash, n).await?;
        let bond = U256::from(10u64).pow(U256::from(16u64));
        chain.escrow(escrow, executor)?.stake(bond).await?;
        // The customer's input, with a fresh salt: the commitment is hiding.
        let inputs = crate::commands::read_input(input)?;
        let salt = zkinfer_protocol::Salt::random();
        let commitment = Commitment::from(loaded.model.input_commitment(&inputs, salt.to_fr())?);
        let price = U256::from(10u64).pow(U256::from(17u64));
        let deadline = chain.timestamp().await? + 3600;
        let open = OpenJob { model, commitment, deadline, allow: vec![], token: None, price, min_bond: bond, claimable: false, optimistic: None };
        let job = chain.escrow(escrow, customer)?.open_job(&open).await?;
        let binding = Binding { payee: ExecutorId(chain.account(executor)), chain_id: chain_id(&chain).await?, escrow, escrow_job: job };
        let (bound, t) = timed("proving again, bound to the executor and the escrow job", || {
            prove_bound(&model_dir, &loaded, &inputs, salt, &binding)
        });
        let bound = bound?;
        println!("proved for escrow job {job} in {:.1}s, bound to {binding}", t.as_secs_f64());
        // Anyone may relay the proof: it pays the payee it binds, not the sender.
        let before = chain.balance(chain.account(executor)).await?;
        let relay = chain.escrow(escrow, relayer)?;
        let tx = relay.send_submit_proof(job, &bound, TX_GAS).await?;
        let receipt = relay.wait_receipt(tx, std::time::Duration::from_secs(60)).await?.context("submitProof was not mined")?;
        let mined = zkinfer_verifier_contract::escrow::Submission::from(&receipt);
        if !mined.success {
            bail!("the escrow rejected the demo proof");
        }
        let gained = chain.balance(chain.account(executor)).await? - before;
        println!(
            "escrow paid the executor {gained} wei for escrow job {job} (relayed by another account) after checking the proof: {} gas for submitProof",
            mined.gas_used
        );
        Ok(())
    })
}

async fn chain_id(chain: &LocalChain) -> Result<u64> {
    use alloy::providers::Provider;
    Ok(chain.provider(0).get_chain_id().await?)
}

/// A proof of `inputs` with `salt`, bound to `binding`.
fn prove_bound(
    dir: &ModelDir,
    loaded: &Loaded,
    inputs: &[Vec<f32>],
    salt: zkinfer_protocol::Salt,
    binding: &Binding,
) -> Result<ProofEnvelope> {
    let pk = dir.load_pk(loaded)?;
    let (params, _) = dir.commit_params_or_cpu(loaded, zkinfer_prover::MsmChoice::Precomputed)?;
    let statement = zkinfer_prover::Statement {
        inputs: loaded.model.quantize_inputs(inputs)?,
        salt: salt.to_fr(),
        binding: zkinfer_circuits::circuit::PayeeBinding::from_values(binding.to_fields()),
    };
    Ok(zkinfer_prover::prove(&params, &pk, loaded.model.clone(), statement, loaded.bindings)?)
}
