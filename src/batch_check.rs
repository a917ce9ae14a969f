//! `zkinfer solidity --aggregation KEYS --members DIR...`: a customer's check of a batch key it
//! did not make, before it trusts the key's verifier on an escrow (papers/design.md §7.2).

use anyhow::{bail, Context, Result};
use zkinfer_aggregate::BatchKey;
use zkinfer_prover::Srs;
use zkinfer_verifier_contract::escrow::EscrowClient;
use zkinfer_verifier_contract::solc::Toolchain;

use crate::ui::timed;
use crate::SolidityArgs;

/// Regenerates the key's verifying key from the member directories and the SRS given, writes
/// the verifier generated from them, and with `--batch-id` checks the registered one.
pub(crate) fn checked_batch_verifier(a: &SolidityArgs, toolchain: &Toolchain) -> Result<()> {
    let key = timed("opening the batch key", || BatchKey::open(&a.dir)).0?;
    let n = key.record.members.len();
    let (loaded, index) = crate::aggregate::load_members(&a.members, n)?;
    let members: Vec<_> = index.iter().map(|&i| &loaded[i]).collect();
    let need = key.record.config.degree.max(key.leaf.as_ref().map_or(0, |l| l.record.config.degree));
    let srs = match (&a.srs, a.dev_srs) {
        (Some(path), _) => timed("reading your SRS", || Srs::load(path, need)).0?,
        (None, true) => timed(&format!("generating the development SRS at k = {need}"), || Srs::dev(need)).0?,
        (None, false) => bail!("--members checks the key against your SRS: pass it with --srs FILE (at least k = {need}), or --dev-srs"),
    };
    let mut step = |s: &str| eprintln!("  {s} …");
    let (checked, t) =
        timed("regenerating the batch key's verifying key", || zkinfer_aggregate::check_key(&key, &members, &srs, &mut step));
    let checked = checked?;
    eprintln!("the batch key is the aggregation of your {n} model(s) under your SRS ({:.0}s)", t.as_secs_f64());
    let source = timed("generating the aggregation verifier", || {
        zkinfer_verifier_contract::codegen::aggregation_verifier_solidity(&checked.params, &checked.vk, checked.num_instances)
    })
    .0?;
    let verifier = crate::onchain::compile_verifier(&source, &a.out, toolchain)?;
    let Some(id) = a.batch_id else {
        println!("CHECKED: {} is the batch key of these models under this SRS; its verifier is in {}", a.dir.display(), a.out.display());
        return Ok(());
    };
    let (Some(escrow), Some(rpc)) = (a.escrow, a.rpc_url.as_deref()) else { bail!("--batch-id needs --escrow and --rpc-url") };
    let client = EscrowClient::connect(rpc, escrow, None)?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let registered = rt.block_on(client.batch_verifier(id)).with_context(|| format!("reading batch verifier {id} from {escrow}"))?;
    if registered.verifier.is_zero() {
        bail!("escrow {escrow} has no batch verifier {id}");
    }
    // A registration naming another number of parts cannot be this verifier either.
    let expected = verifier.code_hash(&registered.parts).ok().filter(|h| *h == registered.code_hash);
    let Some(expected) = expected else {
        bail!(
            "batch verifier {id} is not this key's verifier: its code hash is {} ({} part contract(s)), not the one the verifier of \
             your models and SRS ({} part contract(s)) gives; do not trust it",
            registered.code_hash,
            registered.parts.len(),
            verifier.parts.len()
        );
    };
    if registered.models.len() != n || registered.num_instances != checked.num_instances as u64 {
        bail!(
            "batch verifier {id} settles {} job(s) with {} instances a batch, the key {n} with {}: do not trust it",
            registered.models.len(),
            registered.num_instances,
            checked.num_instances
        );
    }
    for (i, (&model_id, m)) in registered.models.iter().zip(&members).enumerate() {
        let on_chain = rt.block_on(client.model(model_id))?;
        // The escrow cuts each job's instances by its model's recorded count: it must be the circuit's.
        if on_chain.model_hash != m.bindings.model_hash || on_chain.num_instances as usize != m.model.num_instances() {
            bail!("batch verifier {id}'s job {i} is of escrow model {model_id}, which is not your model {i}: do not trust it");
        }
    }
    println!(
        "CHECKED: batch verifier {id} on {escrow} is the verifier of your {n} model(s) under your SRS (code hash {expected}); \
         trust it with trustBatchVerifier({id}, true)"
    );
    Ok(())
}
