//! `zkinfer`: compile ONNX models to Halo2-KZG circuits, prove inference, verify proofs.

mod aggregate;
mod batch_check;
mod bench;
mod commands;
mod customer;
mod demo;
mod demo_market;
mod demo_optimistic;
mod info;
mod market;
mod mutate;
mod onchain;
mod ui;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Zero-knowledge verifiable inference: prove that a committed ONNX model, applied to a
/// committed private input, gives this output (Halo2, KZG on BN254, SHPLONK).
#[derive(Debug, Parser)]
#[command(name = "zkinfer", version, about, long_about = None)]
struct Config {
    /// Log format on stderr: plain text, or one JSON object per line.
    #[arg(long, env = "ZKINFER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Plain, global = true)]
    log_format: LogFormat,
    /// Which logs to show: a level (error, warn, info, debug, trace) or a tracing filter
    /// such as `info,zkinfer_coordinator=debug`.
    #[arg(long, env = "ZKINFER_LOG", default_value = "info", global = true)]
    log: String,
    #[command(subcommand)]
    command: Command,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Import, calibrate and quantize an ONNX model into a circuit directory.
    Compile(CompileArgs),
    /// Load or generate the SRS and generate (or reuse cached) proving and verifying keys.
    Setup(SetupArgs),
    /// Run the model on an input and prove the result.
    Prove(ProveArgs),
    /// Verify a proof: exit 0 when valid, 1 when invalid, 2 on a usage or format error.
    Verify(VerifyArgs),
    /// Print the input commitment a proof of this input (with this salt) carries, as a
    /// customer computes it from the public model.
    Commit(CommitArgs),
    /// Show the circuit's size, layout and error bound.
    Info(InfoArgs),
    /// Audit the circuit: make wrong witnesses of one input (consistent ones, with everything
    /// after the changed value recomputed, and single cells over every region) and check that
    /// MockProver rejects each. Prints mutants made and killed per chip kind and every
    /// survivor's region, column and row; exits 1 if any survived.
    Mutate(mutate::MutateArgs),
    /// Generate and compile the Solidity verifier for a set-up model directory.
    Solidity(SolidityArgs),
    /// Print, as 0x-hex, the calldata the Solidity verifier takes for a proof (single or aggregated).
    Calldata(CalldataArgs),
    /// Fold N proofs (made with `prove --for-aggregation`) into one aggregated proof that one
    /// Solidity verifier (`solidity --aggregation`) checks for all of them.
    Aggregate(aggregate::AggregateArgs),
    /// Compile, set up, prove and verify a shipped example model end to end.
    Demo(DemoArgs),
    /// Run the proving market's coordinator: the HTTP job API (GET /v1/openapi.json); delivered
    /// proofs are verified; with --rpc-url and --escrow, jobs must be paid in the escrow and
    /// are settled when its payment event is seen on chain.
    Coordinator(CoordinatorArgs),
    /// Run an executor: claim jobs from a coordinator, prove them, deliver the proofs, and
    /// (with --rpc-url and --escrow) submit them to the escrow to be paid.
    Executor(ExecutorArgs),
    /// A customer's jobs: submit (seal, pay, submit), status, proof (download and verify).
    Job(customer::JobArgs),
    /// Deploy the escrow and each model's verifier on a chain, and register the models.
    /// Prints the escrow's address.
    Deploy(onchain::DeployArgs),
    /// Time compile, key generation, proving and verification of shipped example models.
    ///
    /// Prints one Markdown row per model, in this process (build with --release for
    /// representative figures; the SRS is an insecure development one). Columns:
    ///
    /// - k: log2 of the circuit's rows;
    /// - advice: advice columns;
    /// - MACs: multiply-accumulates of the linear layers;
    /// - compile s: ONNX import, calibration, circuit-size search and error measurement;
    /// - SRS s: making the development SRS at k;
    /// - tables s: building the SRS's fixed-base MSM tables (done once per SRS by setup);
    /// - keygen s: verifying and proving keys, committing with those tables;
    /// - run ms: the quantized evaluation alone (what an optimistic job's executor and its
    ///   validator compute, with no proof);
    /// - prove s: one SHPLONK proof with the EVM transcript, committing with those tables;
    /// - verify ms: native verification of that proof;
    /// - proof B: SNARK proof bytes (without the proof file's bindings and instances);
    /// - peak RSS MiB: this process's peak resident memory so far (models run in the order
    ///   given, so a row's figure includes the rows before it);
    /// - max error: max |proven output − the float output in the example's expected.json|.
    ///
    /// The criterion benches (cargo bench -p zkinfer-benches) and benches/ezkl/side_by_side.sh
    /// (against EZKL) are the other benchmarks.
    #[command(verbatim_doc_comment)]
    Bench(BenchArgs),
}

/// Arguments of `zkinfer compile`.
#[derive(Debug, Args)]
pub(crate) struct CompileArgs {
    /// The ONNX model.
    model: PathBuf,
    /// Output directory (created).
    #[arg(short, long, env = "ZKINFER_OUT")]
    out: PathBuf,
    /// Calibration data in EZKL's input format; several samples may be concatenated per input.
    #[arg(long, env = "ZKINFER_CALIBRATION")]
    calibration: Option<PathBuf>,
    /// Activation scale: values are integers at 2^-N resolution (default: chosen from the calibration data).
    #[arg(long, env = "ZKINFER_SCALE_BITS", value_parser = clap::value_parser!(u32).range(1..=24))]
    scale_bits: Option<u32>,
    /// What the proof reveals about the input: a Poseidon commitment (hashed), the values (public), or nothing (private).
    #[arg(long, env = "ZKINFER_INPUT_VISIBILITY", value_enum, default_value_t = VisibilityArg::Hashed)]
    input_visibility: VisibilityArg,
    /// What the proof reveals about the output: the values (public) or a Poseidon commitment (hashed).
    #[arg(long, env = "ZKINFER_OUTPUT_VISIBILITY", value_enum, default_value_t = VisibilityArg::Public)]
    output_visibility: VisibilityArg,
    /// Largest circuit size (log2 rows) to consider.
    #[arg(long, env = "ZKINFER_MAX_K", default_value_t = zkinfer_circuits::compile::DEFAULT_MAX_K, value_parser = clap::value_parser!(u32).range(8..=26))]
    max_k: u32,
    /// resources: the smallest circuit that fits, at the dot-group width that proves fastest;
    /// accuracy: of the smallest and the two sizes above it, the smallest whose measured error is
    /// within 25% of the best; settlement: the narrowest dot groups (fewest columns, so the least
    /// gas to verify on chain), then the smallest circuit. compile prints the sizes it considered.
    #[arg(long, env = "ZKINFER_TARGET", value_enum, default_value_t = TargetArg::Settlement)]
    target: TargetArg,
    /// The largest output error accepted, max |quantized − float| on the calibration samples:
    /// a number (output units), or a percentage of the largest calibrated |output| ("2%").
    /// When no circuit size meets it, compile refuses and names the node where the error
    /// grows. "inf" accepts any.
    #[arg(long, env = "ZKINFER_MAX_ERROR", default_value = "1%", value_parser = parse_max_error)]
    max_error: zkinfer_circuits::compile::MaxError,
    /// How products of two activations (attention's Q·Kᵀ and A·V) are proven: auto picks, per
    /// node, the layout with fewer advice cells; freivalds checks C = A·B with a random
    /// challenge drawn after A, B and C are committed (second-phase columns); direct lays out
    /// every product.
    #[arg(long, env = "ZKINFER_MATMUL", value_enum, default_value_t = MatMulArg::Auto)]
    matmul: MatMulArg,
}

/// The layout of activation × activation matrix products.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum MatMulArg {
    /// Per node, the layout with fewer advice cells.
    Auto,
    /// Every product in its own row (about 2 rows per multiply-accumulate).
    Direct,
    /// The random-challenge check: about k·n + m·n + m·k rows of 3 cells per product.
    Freivalds,
}

impl From<MatMulArg> for zkinfer_circuits::quant::MatMulLayout {
    fn from(m: MatMulArg) -> Self {
        match m {
            MatMulArg::Auto => Self::Auto,
            MatMulArg::Direct => Self::Direct,
            MatMulArg::Freivalds => Self::Freivalds,
        }
    }
}

/// `0.01` (absolute), `2%` (relative to the calibrated output magnitude) or `inf`.
fn parse_max_error(s: &str) -> std::result::Result<zkinfer_circuits::compile::MaxError, String> {
    use zkinfer_circuits::compile::MaxError;
    let bad = || format!("`{s}`: expected a non-negative number (0.01), a percentage (2%) or inf");
    let (number, relative) = match s.trim().strip_suffix('%') {
        Some(p) => (p.trim(), true),
        None => (s.trim(), false),
    };
    let v: f64 = number.parse().map_err(|_| bad())?;
    if v.is_nan() || v < 0.0 {
        return Err(bad());
    }
    Ok(if relative { MaxError::Relative(v / 100.0) } else { MaxError::Absolute(v) })
}

/// What `compile` optimises for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum TargetArg {
    /// Smallest circuit, at the dot-group width that proves fastest (wider rows: more columns, more gas on chain)
    Resources,
    /// Smallest error (bigger function tables, up to 4x the prove time).
    Accuracy,
    /// Cheapest settlement: the fewest columns (smallest proof and on-chain verifier), then the smallest circuit
    Settlement,
}

impl From<TargetArg> for zkinfer_circuits::compile::Target {
    fn from(t: TargetArg) -> Self {
        match t {
            TargetArg::Accuracy => Self::Accuracy,
            TargetArg::Resources => Self::Resources,
            TargetArg::Settlement => Self::Settlement,
        }
    }
}

/// Visibility of inputs or outputs in the public instances.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum VisibilityArg {
    /// Not public at all.
    Private,
    /// The quantized values are public.
    Public,
    /// A Poseidon commitment to the quantized values is public.
    Hashed,
}

impl From<VisibilityArg> for zkinfer_circuits::quant::Visibility {
    fn from(v: VisibilityArg) -> Self {
        match v {
            VisibilityArg::Private => Self::Private,
            VisibilityArg::Public => Self::Public,
            VisibilityArg::Hashed => Self::Hashed,
        }
    }
}

/// Arguments of `zkinfer setup`.
#[derive(Debug, Args)]
pub(crate) struct SetupArgs {
    /// The compiled model directory.
    dir: PathBuf,
    /// A halo2 KZG params file (raw-bytes `kzg{k}.srs`, e.g. from the Perpetual Powers of Tau); downsized to the circuit's k.
    #[arg(long, env = "ZKINFER_SRS", conflicts_with = "dev_srs", required_unless_present = "dev_srs")]
    srs: Option<PathBuf>,
    /// Generate an INSECURE SRS locally (its trapdoor is public): for development only.
    #[arg(long)]
    dev_srs: bool,
}

/// Arguments of `zkinfer prove`.
#[derive(Debug, Args)]
pub(crate) struct ProveArgs {
    /// The compiled and set-up model directory.
    dir: PathBuf,
    /// Input in EZKL's format: {"input_data": [[...]]}.
    #[arg(long, env = "ZKINFER_INPUT")]
    input: PathBuf,
    /// Where to write the proof.
    #[arg(short, long)]
    out: PathBuf,
    /// Prove with the Poseidon transcript, for `zkinfer aggregate` to fold into a batch (such a
    /// proof is not accepted by the model's own Solidity verifier).
    #[arg(long)]
    pub(crate) for_aggregation: bool,
    /// Also write the dequantized outputs as JSON: {"outputs": [[...]], "shapes": [[...]]}.
    #[arg(long)]
    output: Option<PathBuf>,
    /// How the commitments (MSMs) are computed: `precomputed` (fixed-base tables of the SRS,
    /// built by setup and cached beside it; the fastest on a CPU), `pippenger` (ours, no
    /// tables), `halo2curves` (halo2's own), `arkworks`, or `cuda` (a GPU; falls back to
    /// `precomputed` where there is none). Only the time differs: every backend computes the
    /// same commitments, so the same proof for the same blinding randomness.
    #[arg(long, env = "ZKINFER_MSM", default_value = "precomputed")]
    pub(crate) msm: zkinfer_prover::MsmChoice,
    /// The input commitment's salt (a BN254 scalar, hex), as the customer chose it; without it
    /// the salt is zero and the commitment is not hiding.
    #[arg(long, env = "ZKINFER_SALT", hide_env_values = true)]
    pub(crate) salt: Option<zkinfer_protocol::Salt>,
    /// Bind the proof to this payee: the escrow pays only this address, whoever submits it.
    #[arg(long)]
    pub(crate) payee: Option<alloy::primitives::Address>,
    /// The chain id of the escrow job the proof is for (with --payee).
    #[arg(long, default_value_t = 0, requires = "payee")]
    pub(crate) chain_id: u64,
    /// The escrow contract the proof is for (with --payee).
    #[arg(long, requires = "payee")]
    pub(crate) escrow: Option<alloy::primitives::Address>,
    /// The escrow job the proof is for (with --payee).
    #[arg(long, default_value_t = 0, requires = "payee")]
    pub(crate) escrow_job: u64,
}

/// Arguments of `zkinfer commit`.
#[derive(Debug, Args)]
pub(crate) struct CommitArgs {
    /// The compiled model directory (its quantization scale).
    pub(crate) dir: PathBuf,
    /// Input in EZKL's format: {"input_data": [[...]]}.
    #[arg(long, env = "ZKINFER_INPUT")]
    pub(crate) input: PathBuf,
    /// The salt (a BN254 scalar, hex); without it the salt is zero (not hiding).
    #[arg(long, env = "ZKINFER_SALT", hide_env_values = true)]
    pub(crate) salt: Option<zkinfer_protocol::Salt>,
}

/// Arguments of `zkinfer verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The compiled and set-up model directory (for an aggregated proof, its batch key directory).
    pub(crate) dir: PathBuf,
    /// The proof file (single or aggregated).
    pub(crate) proof: PathBuf,
    /// Skip regenerating the verifying key from the model and SRS (trust the cached `vk.bin`).
    #[arg(long)]
    pub(crate) trust_cached_vk: bool,
}

/// Arguments of `zkinfer info`.
#[derive(Debug, Args)]
pub(crate) struct InfoArgs {
    /// The compiled model directory.
    dir: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Arguments of `zkinfer solidity`.
#[derive(Debug, Args)]
pub(crate) struct SolidityArgs {
    /// The compiled and set-up model directory (with --aggregation, a batch key directory).
    dir: PathBuf,
    /// Make the verifier of the aggregated proofs of the batch key in DIR (`zkinfer aggregate --keys DIR`).
    #[arg(long)]
    aggregation: bool,
    /// With --aggregation, check a batch key you did not make before writing its verifier: its
    /// verifying key is regenerated from these set-up model directories (in the key's order;
    /// one stands for all) and your own SRS (--srs, or --dev-srs), and the verifier is generated
    /// from them, not from the key's files. Minutes and gigabytes (a keygen per circuit).
    #[arg(long, num_args = 1.., requires = "aggregation")]
    members: Vec<PathBuf>,
    /// With --members: your trusted SRS (a halo2 KZG params file of at least 2^k points).
    #[arg(long, env = "ZKINFER_SRS", requires = "members", conflicts_with = "dev_srs")]
    srs: Option<PathBuf>,
    /// With --members: check against the insecure development SRS.
    #[arg(long, requires = "members")]
    dev_srs: bool,
    /// With --members: also check the batch verifier registered under this id on --escrow (its
    /// code hash, and that its models are yours in the key's order) before you trust it.
    #[arg(long, requires_all = ["members", "escrow", "rpc_url"])]
    batch_id: Option<u64>,
    /// The escrow of --batch-id.
    #[arg(long, env = "ZKINFER_ESCROW", requires = "batch_id")]
    escrow: Option<alloy::primitives::Address>,
    /// The JSON-RPC endpoint of --escrow's chain.
    #[arg(long, env = "ZKINFER_RPC_URL", requires = "batch_id")]
    rpc_url: Option<String>,
    /// Output directory for Verifier.sol, Verifier.bin and Verifier.abi.json; when the verifier is over
    /// EIP-170's 24 KiB it is split, and VerifierPart<i>.bin plus deploy.json (the deployment order) are written too.
    #[arg(short, long)]
    out: PathBuf,
    /// Directory with compile.js and node_modules (solc, anvil), made by `npm ci`.
    #[arg(long, env = "ZKINFER_EVM_TOOLCHAIN", default_value = "verifier-contract")]
    toolchain: PathBuf,
}

/// Arguments of `zkinfer calldata`.
#[derive(Debug, Args)]
pub(crate) struct CalldataArgs {
    /// The proof file (single, or aggregated by `zkinfer aggregate`).
    proof: PathBuf,
}

/// Arguments of `zkinfer demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Example directory holding model.onnx, input.json and calibration.json.
    #[arg(long, env = "ZKINFER_DEMO_MODEL", default_value = "examples/mlp")]
    model: PathBuf,
    /// Working directory for the compiled model and the proof.
    #[arg(long, env = "ZKINFER_DEMO_WORKDIR", default_value = "out/demo")]
    workdir: PathBuf,
    /// Directory with compile.js and node_modules (solc, anvil), made by `npm ci`.
    #[arg(long, env = "ZKINFER_EVM_TOOLCHAIN", default_value = "verifier-contract")]
    toolchain: PathBuf,
    /// Skip the on-chain step (anvil).
    #[arg(long)]
    off_chain_only: bool,
    /// Then run the proving market: anvil, the escrow, a coordinator and two executors; a
    /// customer pays for and submits a sealed job, which is proved, paid on chain and settled
    /// (its lifecycle printed state by state), and an auditor checks the proof.
    #[arg(long, conflicts_with = "off_chain_only")]
    market: bool,
    /// Then run optimistic verification on anvil: an honest executor's result paid after the
    /// challenge window, and a cheating executor's wrong outputs caught by a validator,
    /// challenged, left unproved and slashed.
    #[arg(long, conflicts_with = "off_chain_only")]
    optimistic: bool,
}

/// Arguments of `zkinfer coordinator`.
#[derive(Debug, Args)]
pub(crate) struct CoordinatorArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, env = "ZKINFER_LISTEN", default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// Database URL: a SQLite file (created if missing), or postgres://USER@HOST/DB to share
    /// the jobs between coordinators on several hosts.
    #[arg(long, env = "ZKINFER_DATABASE_URL", default_value = "sqlite:coordinator.db")]
    database_url: String,
    /// Customer API keys as NAME:KEY, comma-separated.
    #[arg(long = "api-key", env = "ZKINFER_API_KEYS", value_delimiter = ',', required = true)]
    api_keys: Vec<String>,
    /// Admin API keys (may register models over HTTP), comma-separated.
    #[arg(long = "admin-key", env = "ZKINFER_ADMIN_KEYS", value_delimiter = ',', hide_env_values = true)]
    admin_keys: Vec<String>,
    /// Models as ID:DIR, DIR a model directory made by `zkinfer compile` and `zkinfer setup`
    /// (its keys verify delivered proofs), comma-separated.
    #[arg(long = "model", env = "ZKINFER_MODELS", value_delimiter = ',', required_unless_present = "models_dir")]
    models: Vec<String>,
    /// Accept model registrations (POST /v1/models): each is compiled and set up into
    /// DIR/ID (and loaded again after a restart). Needs --srs or --dev-srs.
    #[arg(long, env = "ZKINFER_MODELS_DIR")]
    models_dir: Option<PathBuf>,
    /// The SRS (a halo2 KZG params file) for registered models' keys.
    #[arg(long, env = "ZKINFER_SRS", conflicts_with = "dev_srs")]
    srs: Option<PathBuf>,
    /// Use the INSECURE development SRS for registered models' keys.
    #[arg(long)]
    dev_srs: bool,
    /// Seconds a claim lasts without a heartbeat.
    #[arg(long, env = "ZKINFER_LEASE_SECS", default_value_t = 60)]
    lease_secs: u64,
    /// Seconds a claim waits for a job.
    #[arg(long, env = "ZKINFER_LONG_POLL_SECS", default_value_t = 25)]
    long_poll_secs: u64,
    /// JSON-RPC endpoint of the chain with the escrow (with --escrow).
    #[arg(long, env = "ZKINFER_RPC_URL", requires = "escrow")]
    rpc_url: Option<String>,
    /// The InferenceEscrow contract: every job must then name an open escrow job paying for it.
    #[arg(long, env = "ZKINFER_ESCROW", requires = "rpc_url")]
    escrow: Option<alloy::primitives::Address>,
    /// Milliseconds between reads of the escrow's payment events.
    #[arg(long, env = "ZKINFER_CHAIN_POLL_MS", default_value_t = 500)]
    chain_poll_ms: u64,
    /// The first block to read escrow events from (its deployment block; `zkinfer deploy` prints it).
    #[arg(long, env = "ZKINFER_FROM_BLOCK", default_value_t = 0)]
    from_block: u64,
    /// The most blocks one eth_getLogs request may cover (providers cap it).
    #[arg(long, env = "ZKINFER_MAX_BLOCK_RANGE", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    max_block_range: u64,
    /// Blocks on top of an escrow event before it counts (a local dev chain that mines only
    /// on transactions needs 0); a reorg deeper than this is undone when noticed.
    #[arg(long, env = "ZKINFER_CONFIRMATIONS", default_value_t = 2)]
    confirmations: u64,
    /// Directory with compile.js and node_modules (solc): each model's verifier is compiled
    /// with it, and escrow jobs whose registered verifier has another code hash are refused.
    #[arg(long, env = "ZKINFER_EVM_TOOLCHAIN", default_value = "verifier-contract")]
    toolchain: PathBuf,
    /// Seconds an escrow job must have left at submission.
    #[arg(long, env = "ZKINFER_MIN_DEADLINE_SECS", default_value_t = 300)]
    min_deadline_secs: u64,
    /// Active stake (wei) an executor needs in the escrow to be leased jobs.
    #[arg(long, env = "ZKINFER_MIN_STAKE_WEI", default_value = "1")]
    min_stake_wei: alloy::primitives::U256,
    /// Least price (wei) a paid job must offer (besides what the executors it is sealed to ask).
    #[arg(long, env = "ZKINFER_MIN_PRICE_WEI", default_value = "0")]
    min_price_wei: alloy::primitives::U256,
    /// Longest heartbeats can keep one lease alive, in seconds.
    #[arg(long, env = "ZKINFER_MAX_LEASE_SECS", default_value_t = 3600)]
    max_lease_secs: u64,
    /// Longest a model registration (compile and keygen) may take, in seconds.
    #[arg(long, env = "ZKINFER_REGISTER_TIMEOUT_SECS", default_value_t = 1800)]
    register_timeout_secs: u64,
    /// Optimistic jobs: the shortest challenge window accepted, in seconds (validators
    /// re-execute within it).
    #[arg(long, env = "ZKINFER_MIN_CHALLENGE_WINDOW_SECS", default_value_t = 60)]
    min_challenge_window_secs: u32,
    /// Optimistic jobs: the shortest prove window accepted, in seconds (a challenged
    /// executor proves within it).
    #[arg(long, env = "ZKINFER_MIN_PROVE_WINDOW_SECS", default_value_t = 300)]
    min_prove_window_secs: u32,
    /// Optimistic jobs: the least challenge bond accepted (wei); it pays an honest executor
    /// for proving a frivolous challenge.
    #[arg(long, env = "ZKINFER_MIN_CHALLENGE_BOND_WEI", default_value = "1000000000000000")]
    min_challenge_bond_wei: alloy::primitives::U256,
    /// Optimistic jobs: the safety factor, in basis points, on the least audit probability
    /// 2 × price / bond at which cheating loses money (15000: 1.5×).
    #[arg(long, env = "ZKINFER_AUDIT_SAFETY_BPS", default_value_t = 15_000, value_parser = clap::value_parser!(u32).range(10_000..))]
    audit_safety_bps: u32,
}

/// What an executor does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Role {
    /// Takes jobs (proves ZK jobs, runs optimistic ones) and audits sampled optimistic results.
    Both,
    /// Takes jobs only.
    Executor,
    /// Audits sampled optimistic results only (a validator: staked, it takes no jobs).
    Validator,
}

/// Arguments of `zkinfer bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Example models (directories under --examples), comma-separated.
    #[arg(long, env = "ZKINFER_BENCH_MODELS", value_delimiter = ',', default_value = "mlp,cnn,transformer")]
    models: Vec<String>,
    /// Directory holding the example model directories.
    #[arg(long, env = "ZKINFER_EXAMPLES", default_value = "examples")]
    examples: PathBuf,
    /// Also write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Arguments of `zkinfer executor`.
#[derive(Debug, Args)]
pub(crate) struct ExecutorArgs {
    /// The coordinator's base URL.
    #[arg(long, env = "ZKINFER_COORDINATOR", default_value = "http://127.0.0.1:8080")]
    coordinator: String,
    /// This executor's Ethereum private key (0x-hex): its address is its identity, and it signs
    /// every request with it. Without one, a new random key is made (a new identity each run).
    #[arg(long, env = "ZKINFER_EXECUTOR_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Models it proves, as ID:DIR (set-up model directories), comma-separated.
    #[arg(long = "model", env = "ZKINFER_MODELS", value_delimiter = ',', required_unless_present = "fetch_models")]
    models: Vec<String>,
    /// Also prove every model registered with the coordinator: fetch each one's compiled
    /// circuit, set it up under --state-dir with the same SRS (the vk hash must match the
    /// coordinator's), and keep checking for new ones. Needs --srs or --dev-srs.
    #[arg(long)]
    fetch_models: bool,
    /// The SRS (a halo2 KZG params file) for fetched models' keys.
    #[arg(long, env = "ZKINFER_SRS", conflicts_with = "dev_srs")]
    srs: Option<PathBuf>,
    /// Use the INSECURE development SRS for fetched models' keys.
    #[arg(long)]
    dev_srs: bool,
    /// Seconds between lease renewals while proving (keep it well under the coordinator's lease).
    #[arg(long, env = "ZKINFER_HEARTBEAT_SECS", default_value_t = 10)]
    heartbeat_secs: u64,
    /// Price asked per job, in wei (the coordinator's router prefers cheaper executors; an
    /// escrow job paying less is not proved).
    #[arg(long, env = "ZKINFER_PRICE_WEI", default_value = "0")]
    price_wei: alloy::primitives::U256,
    /// Top the executor's active stake in the escrow up to this much (wei) at start; the
    /// coordinator leases jobs only to staked executors.
    #[arg(long, env = "ZKINFER_STAKE_WEI")]
    stake_wei: Option<alloy::primitives::U256>,
    /// Directory for the journal of proofs not yet paid for (resumed after a crash).
    #[arg(long, env = "ZKINFER_STATE_DIR", default_value = "executor-state")]
    state_dir: PathBuf,
    /// JSON-RPC endpoint of the chain with the escrow (with --escrow); the key pays the gas.
    #[arg(long, env = "ZKINFER_RPC_URL", requires = "escrow")]
    rpc_url: Option<String>,
    /// The InferenceEscrow contract to submit proofs to.
    #[arg(long, env = "ZKINFER_ESCROW", requires = "rpc_url")]
    escrow: Option<alloy::primitives::Address>,
    /// How proofs' commitments (MSMs) are computed; see `zkinfer prove --help`.
    #[arg(long, env = "ZKINFER_MSM", default_value = "precomputed")]
    pub(crate) msm: zkinfer_prover::MsmChoice,
    /// What this executor does: take jobs, audit sampled optimistic results (as a validator,
    /// challenging wrong ones on chain), or both.
    #[arg(long, env = "ZKINFER_ROLE", value_enum, default_value = "both")]
    role: Role,
    /// FOR DEMONSTRATIONS AND TESTS ONLY: post wrong outputs for optimistic jobs (the first
    /// output value plus one), as a cheating executor would; a validator catches it, and its
    /// bond is slashed.
    #[arg(long)]
    post_wrong_outputs: bool,
}

/// How a command ended: the exit code says which.
pub(crate) enum Outcome {
    /// Success (exit 0).
    Ok,
    /// The proof is invalid (exit 1).
    Invalid,
}

/// Logs go to stderr through tracing, in the chosen format.
fn init_logs(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn main() -> ExitCode {
    let config = Config::parse();
    init_logs(&config);
    let result = match config.command {
        Command::Compile(a) => commands::compile(&a),
        Command::Setup(a) => commands::setup(&a),
        Command::Prove(a) => commands::prove(&a),
        Command::Verify(a) => commands::verify(&a),
        Command::Commit(a) => commands::commit(&a),
        Command::Info(a) => info::info(&a),
        Command::Mutate(a) => mutate::mutate(&a),
        Command::Coordinator(a) => market::coordinator(&a),
        Command::Executor(a) => market::executor(&a),
        Command::Job(a) => customer::job(&a),
        Command::Deploy(a) => onchain::deploy(&a),
        Command::Bench(a) => bench::bench(&a),
        Command::Solidity(a) => onchain::solidity(&a),
        Command::Calldata(a) => onchain::calldata(&a),
        Command::Aggregate(a) => aggregate::aggregate(&a),
        Command::Demo(a) => demo::demo(&a),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Invalid) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {}", ui::one_line(&e));
            ExitCode::from(2)
        }
    }
}
