//! `zkinfer aggregate`, and the aggregated proof's side of `verify`, `solidity` and `calldata`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use zkinfer_aggregate::{BatchKey, BatchProof, InnerProof, KeySpec};
use zkinfer_protocol::{Binding, Commitment};
use zkinfer_prover::fs::atomic_write;
use zkinfer_prover::{Loaded, ModelDir, ProofEnvelope, Srs};

use crate::ui::timed;
use crate::Outcome;

/// Arguments of `zkinfer aggregate`.
#[derive(Debug, clap::Args)]
pub(crate) struct AggregateArgs {
    /// The set-up model directory of each proof, in the proofs' order; one directory alone
    /// stands for all of them (N proofs of one model).
    #[arg(required = true, num_args = 1..)]
    dirs: Vec<PathBuf>,
    /// The proofs to fold, made with `zkinfer prove --for-aggregation`.
    #[arg(long, required = true, num_args = 1..)]
    proofs: Vec<PathBuf>,
    /// Where to write the aggregated proof.
    #[arg(short, long)]
    out: PathBuf,
    /// The batch key directory: made here when it has no key (minutes and gigabytes, once),
    /// reused when it holds the key of these models in this order.
    #[arg(long, env = "ZKINFER_BATCH_KEYS")]
    keys: PathBuf,
    /// For a new key, the k of the circuit whose proof is settled on chain. Each proof folded
    /// costs millions of cells, which a larger k lays out in fewer columns: a smaller and
    /// cheaper verifier, for more SRS, memory and time. For one proof of the MLP example,
    /// k = 23 fits one advice column (340k gas; 20.5 GiB, 7.5 minutes), k = 22 two (388k gas;
    /// 12.6 GiB, 5 minutes).
    #[arg(long, default_value_t = 22, value_parser = clap::value_parser!(u32).range(18..=26))]
    k: u32,
    /// For a new tree key (more proofs than --fan-in), the k of its leaf circuits, which no
    /// chain reads: the smaller, the faster.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(18..=26))]
    leaf_k: u32,
    /// Fold at most this many proofs in one aggregation circuit (its memory grows with them,
    /// about 6 GiB per proof at k = 20): more proofs make a tree, leaves of this many proofs
    /// each, then one circuit over the leaves. It must divide the number of proofs.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
    fan_in: u64,
    /// Refuse a new key whose circuit would need more memory than this at its peak (GiB), before
    /// its keygen starts: a prediction from the sized circuit's columns and k, fitted to
    /// measured runs. Default: the memory available when the command starts.
    #[arg(long, env = "ZKINFER_MAX_MEMORY_GIB")]
    max_memory_gib: Option<f64>,
    /// A halo2 KZG params file of at least 2^k points whose first powers are the models' SRS.
    /// Without it, the insecure development SRS (only for models set up with `--dev-srs`).
    #[arg(long, env = "ZKINFER_SRS")]
    srs: Option<PathBuf>,
}

/// Each proof's model directory, loaded once per directory.
pub(crate) fn load_members(dirs: &[PathBuf], n: usize) -> Result<(Vec<Loaded>, Vec<usize>)> {
    let dirs: Vec<&PathBuf> = match dirs {
        [one] => vec![one; n],
        many if many.len() == n => many.iter().collect(),
        many => bail!("{} model directories for {n} proofs: give one per proof, in order, or one for all", many.len()),
    };
    let (mut loaded, mut seen, mut index) = (Vec::new(), HashMap::new(), Vec::new());
    for dir in dirs {
        let i = match seen.get(dir) {
            Some(&i) => i,
            None => {
                loaded.push(ModelDir::new(dir).load().with_context(|| dir.display().to_string())?);
                seen.insert(dir, loaded.len() - 1);
                loaded.len() - 1
            }
        };
        index.push(i);
    }
    Ok((loaded, index))
}

fn read_proof(path: &Path) -> Result<ProofEnvelope> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if BatchProof::sniff(&bytes) {
        bail!("{} is an aggregated proof: aggregate the proofs it was made from", path.display());
    }
    ProofEnvelope::from_bytes(&bytes).with_context(|| path.display().to_string())
}

/// The batch key of `members` in `dir`: opened when it is there, made when it is not.
fn batch_key(a: &AggregateArgs, members: &[&Loaded]) -> Result<BatchKey> {
    if a.keys.join("batch.json").exists() {
        let key = timed("opening the batch key", || BatchKey::open(&a.keys)).0?;
        if !key.accepts(members, Some(a.fan_in as usize))? {
            bail!(
                "the batch key in {} is for another list of models ({} members): give another --keys directory for this batch",
                a.keys.display(),
                key.record.members.len()
            );
        }
        return Ok(key);
    }
    let tree = members.len() > a.fan_in as usize;
    let need = if tree { a.k.max(a.leaf_k) } else { a.k };
    let srs = match &a.srs {
        Some(path) => timed("reading the SRS", || Srs::load(path, need)).0?,
        None if members.iter().all(|m| m.setup.insecure_dev_srs) => {
            eprintln!("note: the insecure development SRS: an aggregated proof under it can be forged");
            timed(&format!("generating the development SRS at k = {need} (minutes)"), || Srs::dev(need)).0?
        }
        None => bail!("the models were set up with an SRS file: pass it (at least k = {need}) with --srs"),
    };
    let mut step = |s: &str| eprintln!("  {s} …");
    let spec = KeySpec {
        srs: &srs,
        k: a.leaf_k,
        top_k: a.k,
        members,
        fan_in: Some(a.fan_in as usize),
        max_memory_gib: a.max_memory_gib.or_else(available_gib),
    };
    let (key, t) = timed("making the batch key", || BatchKey::create(&a.keys, &spec, &mut step));
    let key = key?;
    eprintln!("batch key made in {:.0}s → {}", t.as_secs_f64(), a.keys.display());
    Ok(key)
}

/// `MemAvailable` of /proc/meminfo (GiB); `None` where there is none (no limit then).
fn available_gib() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: f64 = info.lines().find_map(|l| l.strip_prefix("MemAvailable:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib / (1024.0 * 1024.0))
}

/// `zkinfer aggregate`.
pub(crate) fn aggregate(a: &AggregateArgs) -> Result<Outcome> {
    let (loaded, index) = load_members(&a.dirs, a.proofs.len())?;
    let envelopes: Vec<ProofEnvelope> = a.proofs.iter().map(|p| read_proof(p)).collect::<Result<_>>()?;
    let proofs: Vec<InnerProof<'_>> = envelopes
        .iter()
        .zip(&index)
        .zip(&a.proofs)
        .map(|((envelope, &i), path)| InnerProof { loaded: &loaded[i], envelope, path: path.display().to_string() })
        .collect();
    // Before any key is made: a bad proof is named in seconds, not after minutes of keygen.
    let (checked, t) = timed("verifying the proofs", || zkinfer_aggregate::check_inner(&proofs));
    checked?;
    eprintln!("{} proof(s) verified in {:.1}s", proofs.len(), t.as_secs_f64());
    let members: Vec<&Loaded> = index.iter().map(|&i| &loaded[i]).collect();
    let key = batch_key(a, &members)?;
    let mut step = |s: &str| eprintln!("  {s} …");
    let (batch, t) = timed("aggregating", || zkinfer_aggregate::aggregate(&key, &proofs, &mut step));
    let batch = batch?;
    atomic_write(&a.out, &batch.to_bytes()?)?;
    println!(
        "aggregated {} proof(s) in {:.1}s (peak memory {:.1} GiB): {} bytes, {} public instances → {}",
        proofs.len(),
        t.as_secs_f64(),
        peak_gib(),
        batch.proof.len(),
        batch.instances.len(),
        a.out.display()
    );
    if key.record.insecure_dev_srs {
        println!("  [INSECURE dev SRS: aggregated proofs can be forged]");
    }
    Ok(Outcome::Ok)
}

/// This process's peak resident memory so far (0 where /proc is not there).
fn peak_gib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib =
        status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kib.unwrap_or(0.0) / (1024.0 * 1024.0)
}

/// `zkinfer verify KEYS BATCH`: the aggregated proof against its batch key.
pub(crate) fn verify_batch(keys: &Path, path: &Path, bytes: &[u8]) -> Result<Outcome> {
    let batch = BatchProof::from_bytes(bytes, &path.display().to_string())?;
    let key = timed("opening the batch key", || BatchKey::open(keys)).0.with_context(|| {
        format!(
            "{} is an aggregated proof: give its batch key directory (`zkinfer aggregate --keys`), not a model directory",
            path.display()
        )
    })?;
    let (result, t) = timed("verifying", || zkinfer_aggregate::verify(&key, &batch));
    let instances = match result {
        Ok(i) => i,
        Err(e) if e.is_invalid_proof() => {
            println!("INVALID: {e}");
            return Ok(Outcome::Invalid);
        }
        Err(e) => return Err(e.into()),
    };
    let shape = key.record.fan_in.map_or(String::new(), |g| format!(", a tree of leaves of {g}"));
    println!("VALID ({:.0} ms): an aggregated proof of {} proof(s){shape}", t.as_secs_f64() * 1e3, key.record.members.len());
    println!("  batch vk sha256  {}", key.record.vk_sha256);
    if key.record.insecure_dev_srs {
        println!("  [INSECURE dev SRS: proofs can be forged]");
    }
    for (i, m) in key.record.members.iter().enumerate() {
        let own = &instances[key.record.member_offset(i)..key.record.member_offset(i) + m.num_instances];
        let binding: Option<[_; 4]> = own.get(1..5).and_then(|b| b.try_into().ok());
        let bound = match binding.map(|b| Binding::from_fields(&b)) {
            Some(Ok(b)) if b.payee.0.is_zero() => "no payee".to_string(),
            Some(Ok(b)) => b.to_string(),
            _ => "nothing a chain can pay".to_string(),
        };
        println!("  proof {i}: model {}…, input commitment {}, bound to {bound}", &m.model_hash[..16], Commitment::from(own[0]));
    }
    Ok(Outcome::Ok)
}

/// The Solidity source of a batch key's verifier.
pub(crate) fn batch_verifier_source(keys: &Path) -> Result<String> {
    let key = timed("opening the batch key", || BatchKey::open(keys)).0?;
    let source = timed("generating the aggregation verifier", || {
        zkinfer_verifier_contract::codegen::aggregation_verifier_solidity(&key.params, &key.vk, key.record.num_instances())
    });
    Ok(source.0?)
}

/// The calldata of an aggregated proof.
pub(crate) fn batch_calldata(path: &Path, bytes: &[u8]) -> Result<Vec<u8>> {
    let batch = BatchProof::from_bytes(bytes, &path.display().to_string())?;
    Ok(zkinfer_verifier_contract::codegen::calldata_of(&batch.instance_values()?, &batch.proof))
}
