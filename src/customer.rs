//! `zkinfer job`: the customer's side of the market. `submit` lists the executors serving
//! the model, opens and pays the escrow job (on chain), seals the input to the chosen
//! executors and submits; `status` shows (or waits for) a job's state; `proof` downloads the
//! proof, verifies it against the model and checks that it binds the job's input.

use std::path::PathBuf;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use zkinfer_protocol::client::{Client, CustomerClient};
use zkinfer_protocol::seal::{seal, EscrowBinding, SealContext};
use zkinfer_protocol::types::{InputPayload, JobView, SubmitJob};
use zkinfer_protocol::{Commitment, EscrowJobId, ExecutorId, HexBytes, JobId, JobState, ModelId, Salt};
use zkinfer_prover::{model_hash, ModelDir};
use zkinfer_verifier_contract::escrow::{EscrowClient, OpenJob};

use crate::Outcome;

/// Arguments of `zkinfer job`.
#[derive(Debug, Args)]
pub(crate) struct JobArgs {
    /// The coordinator's base URL.
    #[arg(long, env = "ZKINFER_COORDINATOR", default_value = "http://127.0.0.1:8080", global = true)]
    coordinator: String,
    /// The customer's API key at the coordinator.
    #[arg(long, env = "ZKINFER_API_KEY", hide_env_values = true, global = true)]
    api_key: Option<String>,
    #[command(subcommand)]
    command: JobCommand,
}

#[derive(Debug, Subcommand)]
enum JobCommand {
    /// Submit a job: seal the input to the executors serving the model and, on chain, open
    /// and pay the escrow job first. Prints the job id.
    Submit(SubmitArgs),
    /// Show a job's state and lifecycle (or wait for a state with --wait).
    Status(StatusArgs),
    /// Download a job's proof, verify it against the model and check it binds the job's input.
    Proof(ProofArgs),
}

/// Arguments of `zkinfer job submit`.
#[derive(Debug, Args)]
pub(crate) struct SubmitArgs {
    /// The model's id at the coordinator.
    #[arg(long)]
    model: ModelId,
    /// The compiled model (zkinfer compile): the commitment is computed from it, and its
    /// model hash must be the coordinator's.
    #[arg(long)]
    model_dir: PathBuf,
    /// The input in EZKL's format, {"input_data": [[...]]}.
    #[arg(long, env = "ZKINFER_INPUT")]
    input: PathBuf,
    /// Seal only to these executors (addresses, comma-separated); default: every executor
    /// that serves the model.
    #[arg(long = "executor", value_delimiter = ',')]
    executors: Vec<ExecutorId>,
    /// Send the input in plain text (the coordinator sees it) instead of sealing it.
    #[arg(long)]
    plain: bool,
    /// Seconds until the job expires (and, on chain, until the payment can be refunded).
    #[arg(long, default_value_t = 3600)]
    deadline_s: u64,
    /// JSON-RPC endpoint of the chain with the escrow: the job is paid there first.
    #[arg(long, env = "ZKINFER_RPC_URL", requires_all = ["escrow", "key"])]
    rpc_url: Option<String>,
    /// The InferenceEscrow contract.
    #[arg(long, env = "ZKINFER_ESCROW")]
    escrow: Option<Address>,
    /// The customer's Ethereum private key (0x-hex): it pays for the job.
    #[arg(long, env = "ZKINFER_CUSTOMER_KEY", hide_env_values = true)]
    key: Option<String>,
    /// The payment, in wei (or the token's smallest unit with --token).
    #[arg(long, default_value = "0")]
    price_wei: U256,
    /// Pay in this ERC-20 token (approved to the escrow first) instead of ETH.
    #[arg(long)]
    token: Option<Address>,
    /// The active stake (wei) an executor needs in the escrow to be paid for the job.
    #[arg(long, default_value = "1000000000")]
    min_bond_wei: U256,
    /// The input commitment's salt (a BN254 scalar, hex); default: a fresh random one, printed.
    #[arg(long, env = "ZKINFER_SALT", hide_env_values = true)]
    salt: Option<Salt>,
    /// The model's id in the escrow (default: the newest registration with this model hash).
    #[arg(long)]
    escrow_model: Option<u64>,
    /// Seconds to wait for the coordinator to answer and for an executor serving the model
    /// to register (services started just before).
    #[arg(long, default_value_t = 60)]
    wait_s: u64,
}

/// Arguments of `zkinfer job status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The job.
    job: JobId,
    /// Wait until the job reaches this state (exit 1 if it ends in another).
    #[arg(long)]
    wait: Option<JobState>,
    /// Seconds to wait at most.
    #[arg(long, default_value_t = 600)]
    timeout_s: u64,
    /// Print the job as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `zkinfer job proof`.
#[derive(Debug, Args)]
pub(crate) struct ProofArgs {
    /// The job.
    job: JobId,
    /// The compiled, set-up model directory to verify against.
    #[arg(long)]
    model_dir: PathBuf,
    /// Where to write the proof file.
    #[arg(short, long)]
    out: PathBuf,
}

pub(crate) fn job(a: &JobArgs) -> Result<Outcome> {
    let key = a.api_key.as_deref().context("--api-key (or ZKINFER_API_KEY) is required: the coordinator's key for this customer")?;
    let client = Client::new(&a.coordinator)?.customer(key);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match &a.command {
        JobCommand::Submit(s) => rt.block_on(submit_cmd(&client, s)),
        JobCommand::Status(s) => rt.block_on(status(&client, s)),
        JobCommand::Proof(p) => rt.block_on(proof(&client, p)),
    }
}

/// Where a customer pays.
pub(crate) struct Payment {
    /// The escrow, sending as the customer.
    pub escrow: EscrowClient,
    /// The customer's key: it opens the escrow job and signs the submission.
    pub key: alloy::signers::local::PrivateKeySigner,
    /// The payment.
    pub price: U256,
    /// The token it is paid in (`None`: ETH).
    pub token: Option<Address>,
    /// The stake an executor needs to be paid.
    pub min_bond: U256,
    /// The model's escrow id, if known.
    pub escrow_model: Option<u64>,
}

/// What a customer wants run.
pub(crate) struct Order<'a> {
    pub model: &'a ModelId,
    pub model_dir: &'a std::path::Path,
    pub input: Vec<f32>,
    pub executors: &'a [ExecutorId],
    pub plain: bool,
    pub deadline_s: u64,
    pub payment: Option<Payment>,
    /// How long to wait for the coordinator and for an executor serving the model.
    pub wait: Duration,
    /// The salt (`None`: a fresh random one).
    pub salt: Option<Salt>,
}

/// A submitted job.
pub(crate) struct Placed {
    pub job: JobId,
    pub escrow_job: Option<EscrowJobId>,
    pub commitment: Commitment,
    pub salt: Salt,
    pub sealed_to: Vec<ExecutorId>,
}

/// Checks the model, computes the commitment, pays (on chain), seals and submits.
pub(crate) async fn place(client: &CustomerClient, order: Order<'_>) -> Result<Placed> {
    let compiled = ModelDir::new(order.model_dir).read_compiled()?;
    let hash = model_hash(&compiled.model)?;
    let served = until_answered(order.wait, || client.public().models()).await?;
    let listed =
        served.iter().find(|m| &m.id == order.model).with_context(|| format!("the coordinator does not serve model `{}`", order.model))?;
    if listed.model_hash.is_some_and(|h| h.0 != hash) {
        bail!("the coordinator's model `{}` is not the model in {} (model hashes differ)", order.model, order.model_dir.display());
    }
    let inputs = compiled.model.split_inputs(&order.input)?;
    let salt = order.salt.unwrap_or_else(Salt::random);
    let commitment = Commitment::from(compiled.model.input_commitment(&inputs, salt.to_fr())?);
    let sealed_to = if order.plain { Vec::new() } else { choose_executors(client, order.model, order.executors, order.wait).await? };
    // Each executor's HPKE key must be signed by its own Ethereum key: whoever relays the
    // keys (the coordinator) cannot swap in one of its own.
    let executors = client.executors().await?;
    let mut keys = Vec::with_capacity(sealed_to.len());
    for e in &sealed_to {
        let info = executors.iter().find(|i| &i.address == e).with_context(|| format!("executor {e} is not registered"))?;
        zkinfer_protocol::seal::verify_hpke_key(*e, &info.hpke_public_key.0, &info.hpke_key_signature.0).with_context(|| {
            format!("executor {e}'s HPKE key is not signed by it (the coordinator may have swapped it): refusing to seal to it")
        })?;
        keys.push(info.hpke_public_key.0.clone());
    }
    let (escrow_job, binding, customer_signature) = match &order.payment {
        Some(p) => {
            let (job, binding) = pay(p, &hash, commitment, &sealed_to, order.deadline_s).await?;
            let signature = zkinfer_protocol::auth::sign_submission(&p.key, &binding, order.model, &commitment)?;
            (Some(job), Some(binding), Some(HexBytes(signature)))
        }
        None => (None, None, None),
    };
    let sealed = if order.plain {
        None
    } else {
        let payload = serde_json::to_vec(&InputPayload { input: order.input.clone(), salt })?;
        let ctx = SealContext { model_id: order.model, input_commitment: commitment, escrow: binding };
        let mut out = std::collections::BTreeMap::new();
        for (e, key) in sealed_to.iter().zip(&keys) {
            out.insert(*e, HexBytes(seal(key, &ctx, &payload)?));
        }
        Some(out)
    };
    let job = SubmitJob {
        model_id: order.model.clone(),
        input: order.plain.then(|| order.input.clone()),
        sealed,
        input_commitment: Some(commitment),
        salt: order.plain.then_some(salt),
        escrow_job,
        deadline_s: order.deadline_s,
        customer_signature,
    };
    let submitted = client.submit(&job).await?;
    Ok(Placed { job: submitted.job_id, escrow_job, commitment, salt, sealed_to })
}

/// Calls `f` until it answers or fails for good, retrying transient failures (a coordinator
/// still starting) for up to `limit`.
async fn until_answered<T, F: std::future::Future<Output = zkinfer_protocol::Result<T>>>(limit: Duration, f: impl Fn() -> F) -> Result<T> {
    let start = std::time::Instant::now();
    loop {
        match f().await {
            Err(e) if e.is_transient() && start.elapsed() < limit => tokio::time::sleep(Duration::from_millis(250)).await,
            other => return Ok(other?),
        }
    }
}

/// The executors to seal to: those asked for, or every one serving the model, waiting up to
/// `limit` for them to register.
async fn choose_executors(client: &CustomerClient, model: &ModelId, wanted: &[ExecutorId], limit: Duration) -> Result<Vec<ExecutorId>> {
    let start = std::time::Instant::now();
    loop {
        let listed = until_answered(limit, || client.executors()).await?;
        let serving: Vec<ExecutorId> = listed.into_iter().filter(|e| e.models.contains(model)).map(|e| e.address).collect();
        let missing: Vec<&ExecutorId> = wanted.iter().filter(|w| !serving.contains(w)).collect();
        if (wanted.is_empty() && !serving.is_empty()) || (!wanted.is_empty() && missing.is_empty()) {
            return Ok(if wanted.is_empty() { serving } else { wanted.to_vec() });
        }
        if start.elapsed() >= limit {
            match missing.first() {
                Some(w) => bail!("executor {w} does not serve model `{model}` at this coordinator (waited {} s)", limit.as_secs()),
                None => bail!("no registered executor serves model `{model}` (waited {} s): start one, or retry", limit.as_secs()),
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Opens and pays the escrow job; returns it and what sealed inputs bind.
async fn pay(
    p: &Payment,
    hash: &[u8; 32],
    commitment: Commitment,
    allow: &[ExecutorId],
    deadline_s: u64,
) -> Result<(EscrowJobId, EscrowBinding)> {
    let model = match p.escrow_model {
        Some(id) => id,
        None => {
            p.escrow
                .find_model(hash)
                .await?
                .context("the escrow has no model with this model hash: register it (zkinfer deploy) or pass --escrow-model")?
                .id
        }
    };
    let now = p
        .escrow
        .provider()
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await?
        .context("the chain has no latest block")?
        .header
        .timestamp;
    let open = OpenJob {
        model,
        commitment,
        deadline: now + deadline_s,
        allow: allow.iter().map(|e| e.address()).collect(),
        token: p.token,
        price: p.price,
        min_bond: p.min_bond,
        claimable: false,
    };
    let job = p.escrow.open_job(&open).await?;
    let chain_id = p.escrow.chain_id().await?;
    Ok((job, EscrowBinding { chain_id, escrow: p.escrow.address(), job }))
}

async fn submit_cmd(client: &CustomerClient, a: &SubmitArgs) -> Result<Outcome> {
    let mut inputs = crate::commands::read_input(&a.input)?;
    let input: Vec<f32> = inputs.drain(..).flatten().collect();
    let payment = match (&a.rpc_url, a.escrow, &a.key) {
        (Some(rpc), Some(escrow), Some(key)) => {
            let key: alloy::signers::local::PrivateKeySigner = key.parse().context("--key: not a private key (0x and 64 hex digits)")?;
            Some(Payment {
                escrow: EscrowClient::connect(rpc, escrow, Some(key.clone()))?,
                key,
                price: a.price_wei,
                token: a.token,
                min_bond: a.min_bond_wei,
                escrow_model: a.escrow_model,
            })
        }
        _ => None,
    };
    let order = Order {
        model: &a.model,
        model_dir: &a.model_dir,
        input,
        executors: &a.executors,
        plain: a.plain,
        deadline_s: a.deadline_s,
        payment,
        wait: Duration::from_secs(a.wait_s),
        salt: a.salt,
    };
    let placed = place(client, order).await?;
    match placed.escrow_job {
        Some(e) => eprintln!("paid {} into escrow job {e} for input commitment {}", a.price_wei, placed.commitment),
        None => eprintln!("input commitment {} (no escrow: the job is not paid on chain)", placed.commitment),
    }
    if a.salt.is_none() {
        eprintln!("salt {} (keep it: with the input it recomputes the commitment, zkinfer commit)", placed.salt);
    }
    if !placed.sealed_to.is_empty() {
        let to: Vec<String> = placed.sealed_to.iter().map(ExecutorId::to_string).collect();
        eprintln!("input sealed (HPKE) to {}", to.join(", "));
    }
    println!("{}", placed.job);
    Ok(Outcome::Ok)
}

fn print_job(job: &JobView) {
    println!("job {} ({}): {}", job.id, job.model_id, job.state);
    let t0 = job.events.first().map_or(0, |e| e.at_ms);
    for e in &job.events {
        println!("  {:<9} +{:>7.2}s", e.state.as_str(), (e.at_ms - t0) as f64 / 1e3);
    }
    if let Some(ex) = job.executor {
        println!("  executor {ex}, attempts {}", job.attempts);
    }
    if let Some(c) = job.input_commitment {
        println!("  input commitment {c}");
    }
    if let Some(p) = &job.payment {
        println!("  paid {} wei to {} in tx {} (block {})", p.price_wei, p.executor, p.tx, p.block);
    }
    if let Some(f) = &job.failure {
        println!("  failed: {f}");
    }
}

async fn status(client: &CustomerClient, a: &StatusArgs) -> Result<Outcome> {
    let job = match a.wait {
        None => client.job(a.job).await?,
        Some(wanted) => {
            let limit = Duration::from_secs(a.timeout_s);
            let job = client
                .wait_until(a.job, wanted.as_str(), limit, Duration::from_millis(200), |j| {
                    j.state.reached(wanted) || j.state.is_terminal() || matches!(j.state, JobState::Expired)
                })
                .await?;
            if !job.state.reached(wanted) {
                print_job(&job);
                println!("job {} ended {} before reaching {wanted}", a.job, job.state);
                return Ok(Outcome::Invalid);
            }
            job
        }
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&job)?);
    } else {
        print_job(&job);
    }
    Ok(Outcome::Ok)
}

async fn proof(client: &CustomerClient, a: &ProofArgs) -> Result<Outcome> {
    let job = client.job(a.job).await?;
    let bytes = client.proof(a.job).await?;
    let env = zkinfer_prover::ProofEnvelope::from_bytes(&bytes).context("the downloaded proof file does not decode")?;
    let bound = env.instances.first().and_then(|b| Commitment::from_le_bytes(*b).ok());
    if bound.is_none() || bound != job.input_commitment {
        println!("INVALID: the proof binds input {bound:?}, the job's input commits to {:?}", job.input_commitment);
        return Ok(Outcome::Invalid);
    }
    // Verified in a temporary file beside the output; only a valid proof is kept.
    let parent = a.out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(parent).with_context(|| format!("writing into {}", parent.display()))?;
    std::fs::write(tmp.path(), &bytes)?;
    let verified =
        crate::commands::verify(&crate::VerifyArgs { dir: a.model_dir.clone(), proof: tmp.path().to_path_buf(), trust_cached_vk: false })?;
    if matches!(verified, Outcome::Ok) {
        tmp.persist(&a.out).with_context(|| format!("saving {}", a.out.display()))?;
        println!("the proof of job {} binds its input commitment and is saved to {}", a.job, a.out.display());
    }
    Ok(verified)
}
