//! `zkinfer demo`: the whole path on a shipped example, with timings.

use std::time::Instant;

use anyhow::{bail, Result};

use crate::commands;
use crate::{CompileArgs, DemoArgs, InfoArgs, Outcome, ProveArgs, SetupArgs, VerifyArgs};

pub(crate) fn demo(a: &DemoArgs) -> Result<Outcome> {
    let (model, work) = (&a.model, &a.workdir);
    for f in ["model.onnx", "input.json", "calibration.json"] {
        if !model.join(f).exists() {
            bail!("{} has no {f}: pass --model with an example directory (see examples/)", model.display());
        }
    }
    let dir = work.join("model");
    let proof = work.join("proof.zkp");
    let steps = 6 + u32::from(a.market) + u32::from(a.optimistic);
    let step = |n: u32, what: &str| println!("\n== {n}/{steps} {what}");
    let start = Instant::now();
    step(1, "compile");
    commands::compile(&CompileArgs {
        model: model.join("model.onnx"),
        out: dir.clone(),
        calibration: Some(model.join("calibration.json")),
        scale_bits: None,
        input_visibility: crate::VisibilityArg::Hashed,
        output_visibility: crate::VisibilityArg::Public,
        max_k: zkinfer_circuits::compile::DEFAULT_MAX_K,
        target: crate::TargetArg::Settlement,
        max_error: zkinfer_circuits::compile::MaxError::default(),
        matmul: crate::MatMulArg::Auto,
    })?;
    step(2, "circuit info");
    crate::info::info(&InfoArgs { dir: dir.clone(), json: false })?;
    step(3, "setup (development SRS)");
    commands::setup(&SetupArgs { dir: dir.clone(), srs: None, dev_srs: true })?;
    step(4, "prove");
    commands::prove(&ProveArgs {
        dir: dir.clone(),
        input: model.join("input.json"),
        out: proof.clone(),
        for_aggregation: false,
        output: Some(work.join("output.json")),
        msm: zkinfer_prover::MsmChoice::Precomputed,
        salt: None,
        payee: None,
        chain_id: 0,
        escrow: None,
        escrow_job: 0,
    })?;
    step(5, "verify off chain");
    if let Outcome::Invalid = commands::verify(&VerifyArgs { dir: dir.clone(), proof: proof.clone(), trust_cached_vk: false })? {
        bail!("the demo proof did not verify");
    }
    if a.off_chain_only {
        println!("\non-chain step skipped (--off-chain-only)");
    } else {
        step(6, "verify on chain (anvil) and settle through the escrow");
        crate::onchain::demo_on_chain(&dir, &proof, &model.join("input.json"), &a.toolchain, &work.join("evm"))?;
    }
    let mut zk_seconds = None;
    if a.market {
        step(7, "the proving market on anvil: escrow, coordinator, two executors, a sealed paid job");
        zk_seconds = crate::demo_market::demo_market(&dir, &crate::demo_market::example_input(model)?, &a.toolchain, work)?;
    }
    if a.optimistic {
        step(steps, "optimistic verification on anvil: an honest executor paid after the window, a cheater caught and slashed");
        crate::demo_optimistic::demo_optimistic(&dir, &crate::demo_market::example_input(model)?, &a.toolchain, work, zk_seconds)?;
    }
    println!("demo finished in {:.1}s", start.elapsed().as_secs_f64());
    Ok(Outcome::Ok)
}
