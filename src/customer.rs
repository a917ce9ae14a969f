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
use zkinfer_protocol::{Commitment, EscrowJobId, ExecutorId, HexBytes, JobId, JobState, ModelId, Salt, Verification};
use zkinfer_prover::{model_hash, ModelDir};
use zkinfer_verifier_contract::escrow::{EscrowClient, OpenJob, OptimisticTerms};

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
    Submit(Box<SubmitArgs>),
    /// Show a job's state and lifecycle (or wait for a state with --wait).
    Status(StatusArgs),
    /// Download a job's proof, verify it against the model and check it binds the job's input.
    Proof(ProofArgs),
    /// Challenge an optimistic job's posted result (within its window), posting the bond: its
    /// executor must then prove it, or be slashed.
    Challenge(ChainArgs),
    /// Move a job on on chain when it is due: pay a posted result after its window, slash a
    /// challenged executor that did not prove in time, or refund an unpaid job after its deadline.
    Settle(ChainArgs),
}

/// Arguments of `zkinfer job challenge` and `zkinfer job settle`.
#[derive(Debug, Args)]
pub(crate) struct ChainArgs {
    /// The job.
    job: JobId,
    /// JSON-RPC endpoint of the chain with the escrow.
    #[arg(long, env = "ZKINFER_RPC_URL")]
    rpc_url: String,
    /// The InferenceEscrow contract.
    #[arg(long, env = "ZKINFER_ESCROW")]
    escrow: Address,
    /// The Ethereum private key (0x-hex) that sends (and pays for) the transaction.
    #[arg(long, env = "ZKINFER_CUSTOMER_KEY", hide_env_values = true)]
    key: String,
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
    /// How the result is checked: `zk` (a proof, checked on chain before payment) or
    /// `optimistic` (the outputs in about the model's run time; paid after a challenge window
    /// unless a validator or the customer challenges them). Optimistic needs the escrow.
    #[arg(long, value_enum, default_value = "zk")]
    verification: VerificationArg,
    /// Optimistic: the audit probability in basis points (at least the coordinator's minimum
    /// for this price and bond, which is the default).
    #[arg(long)]
    audit_bps: Option<u16>,
    /// Optimistic: seconds after posting during which the result can be challenged (default:
    /// the coordinator's minimum).
    #[arg(long)]
    challenge_window_s: Option<u32>,
    /// Optimistic: seconds a challenged executor has to prove (default: the coordinator's minimum).
    #[arg(long)]
    prove_window_s: Option<u32>,
    /// Optimistic: the bond a challenger posts, in wei (default: the coordinator's minimum).
    #[arg(long)]
    challenge_bond_wei: Option<U256>,
}

/// `--verification`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum VerificationArg {
    Zk,
    Optimistic,
}

/// What a customer asks of an optimistic job (`None`: the coordinator's minimum).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OptimisticAsk {
    pub audit_bps: Option<u16>,
    pub challenge_window_s: Option<u32>,
    pub prove_window_s: Option<u32>,
    pub challenge_bond: Option<U256>,
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
        JobCommand::Challenge(c) => rt.block_on(challenge(&client, c)),
        JobCommand::Settle(c) => rt.block_on(settle(&client, c)),
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
    /// For an optimistic job, what the customer asks of its terms.
    pub optimistic: Option<OptimisticAsk>,
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
            let terms = match &p.optimistic {
                Some(ask) => Some(optimistic_terms(client, p, ask).await?),
                None => None,
            };
            let (job, binding) = pay(p, &hash, commitment, &sealed_to, order.deadline_s, terms).await?;
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
        verification: if order.payment.as_ref().is_some_and(|p| p.optimistic.is_some()) {
            Verification::Optimistic
        } else {
            Verification::Zk
        },
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

/// An optimistic job's escrow terms: what the customer asks, raised to the coordinator's
/// minimums (`GET /v1/terms`); the audit probability at least the one that makes cheating on
/// this price and bond lose money.
async fn optimistic_terms(client: &CustomerClient, p: &Payment, ask: &OptimisticAsk) -> Result<OptimisticTerms> {
    let policy = client.public().terms().await?.optimistic;
    let least = policy.min_audit_bps(p.price, p.min_bond).with_context(|| {
        format!(
            "a bond of {} wei cannot deter cheating on a price of {} wei: pass --min-bond-wei {} or more",
            p.min_bond,
            p.price,
            zkinfer_protocol::optimistic::min_bond_for(p.price, policy.audit_safety_bps)
        )
    })?;
    let audit_bps = ask.audit_bps.unwrap_or(least);
    if audit_bps < least || audit_bps > 10_000 {
        bail!("--audit-bps {audit_bps}: this coordinator needs {least} to 10000 for this price and bond");
    }
    let challenge_window = ask.challenge_window_s.unwrap_or(policy.min_challenge_window_s).max(policy.min_challenge_window_s);
    let prove_window = ask.prove_window_s.unwrap_or(policy.min_prove_window_s).max(policy.min_prove_window_s);
    let challenge_bond = ask.challenge_bond.unwrap_or(policy.min_challenge_bond_wei.0).max(policy.min_challenge_bond_wei.0);
    Ok(OptimisticTerms { audit_bps, challenge_window, prove_window, challenge_bond })
}

/// Opens and pays the escrow job (optimistic with `optimistic` terms); returns it and what
/// sealed inputs bind.
async fn pay(
    p: &Payment,
    hash: &[u8; 32],
    commitment: Commitment,
    allow: &[ExecutorId],
    deadline_s: u64,
    optimistic: Option<OptimisticTerms>,
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
        optimistic,
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
                optimistic: (a.verification == VerificationArg::Optimistic).then_some(OptimisticAsk {
                    audit_bps: a.audit_bps,
                    challenge_window_s: a.challenge_window_s,
                    prove_window_s: a.prove_window_s,
                    challenge_bond: a.challenge_bond_wei,
                }),
            })
        }
        _ if a.verification == VerificationArg::Optimistic => {
            bail!("optimistic verification is paid through the escrow: pass --rpc-url, --escrow and --key")
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
    if let Some(r) = &job.result {
        print_result(r);
    }
}

fn print_result(r: &zkinfer_protocol::types::ResultView) {
    println!("  optimistic result posted by {} in tx {} (outputs hash {})", r.executor, r.post_tx, r.outputs_hash);
    for (i, o) in r.outputs.iter().enumerate() {
        let shown: Vec<String> = o.iter().take(16).map(|v| format!("{v:.6}")).collect();
        let more = if o.len() > 16 { format!(" … ({} values)", o.len()) } else { String::new() };
        println!("  output {i}: [{}]{more}", shown.join(", "));
    }
    if r.challenge_ends_s > 0 {
        println!("  challengeable until {} (unix, chain time)", r.challenge_ends_s);
    }
    match &r.audit {
        Some(a) if a.sampled => {
            let who = a.validator.map_or("no validator available".into(), |v| format!("validator {v}"));
            let found = match a.agreed {
                Some(true) => "agreed",
                Some(false) => "disagreed and challenged",
                None => "re-executing",
            };
            println!("  audit: sampled; {who}: {found}");
        }
        Some(_) => println!("  audit: not sampled"),
        None => println!("  audit: waiting for the block after the posting"),
    }
    if let Some(d) = &r.dispute {
        let outcome = d.outcome.as_deref().unwrap_or("open");
        println!("  challenged by {}: the executor must prove by {} (unix); outcome: {outcome}", d.challenger, d.prove_by_s);
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

/// The escrow job behind a coordinator job, and an escrow client sending as `a.key`.
async fn escrow_of(client: &CustomerClient, a: &ChainArgs) -> Result<(EscrowClient, EscrowJobId)> {
    let job = client.job(a.job).await?;
    let escrow_job = job.escrow_job.with_context(|| format!("job {} is not paid through an escrow", a.job))?;
    let key: alloy::signers::local::PrivateKeySigner = a.key.parse().context("--key: not a private key (0x and 64 hex digits)")?;
    Ok((EscrowClient::connect(&a.rpc_url, a.escrow, Some(key))?, escrow_job))
}

async fn challenge(client: &CustomerClient, a: &ChainArgs) -> Result<Outcome> {
    let (escrow, escrow_job) = escrow_of(client, a).await?;
    let o = escrow.optimistic(escrow_job).await?;
    if !o.is_optimistic() {
        bail!("job {} is a ZK job: there is no result to challenge (its payment needs a valid proof)", a.job);
    }
    let s = escrow.challenge(escrow_job, o.terms.challenge_bond).await?;
    let after = escrow.optimistic(escrow_job).await?;
    println!(
        "challenged escrow job {escrow_job} with a bond of {} wei (tx {:#x}): its executor must prove its outputs by {} (unix), or be slashed",
        o.terms.challenge_bond, s.tx, after.prove_by
    );
    Ok(Outcome::Ok)
}

async fn settle(client: &CustomerClient, a: &ChainArgs) -> Result<Outcome> {
    use zkinfer_verifier_contract::escrow::JobState as S;
    let (escrow, escrow_job) = escrow_of(client, a).await?;
    let job = escrow.job(escrow_job).await?;
    let o = escrow.optimistic(escrow_job).await?;
    let now = escrow.chain_time().await?;
    let done = match job.state {
        S::Posted if now > o.challenge_ends() => ("paid the posted result", escrow.finalize(escrow_job).await?),
        S::Posted => bail!("escrow job {escrow_job}'s challenge window runs until {} (chain time now {now})", o.challenge_ends()),
        S::Disputed if now > o.prove_by => {
            ("slashed the executor, which did not prove its outputs", escrow.slash_unproven(escrow_job).await?)
        }
        S::Disputed => bail!("escrow job {escrow_job}'s executor may prove until {} (chain time now {now})", o.prove_by),
        S::Open | S::Claimed if now > job.deadline => ("refunded the customer", escrow.refund(escrow_job).await?),
        state => bail!("escrow job {escrow_job} is {state:?}: nothing is due"),
    };
    println!("escrow job {escrow_job}: {} (tx {:#x}, {} gas)", done.0, done.1.tx, done.1.gas_used);
    Ok(Outcome::Ok)
}
