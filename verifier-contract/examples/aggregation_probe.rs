//! Measures what settling N proofs of one model with one aggregated proof would cost (issue
//! #15), with snark-verifier-sdk's aggregation circuit: its size, key generation and proving
//! time and memory, and its EVM verifier's code and gas on anvil. A measurement for
//! papers/benchmarks.md, not a feature: nothing here is wired into the CLI or the escrow.
//!
//! ```text
//! cargo run --release -p zkinfer-verifier-contract --example aggregation_probe -- \
//!     examples/mlp N AGG_K
//! ```
//!
//! The SRS is an insecure seeded one (the inner proofs use it downsized to the model's k, as
//! aggregation requires). Inner proofs use snark-verifier's Poseidon transcript, as the
//! aggregation circuit's in-circuit verifier needs; they are not the proofs zkinfer ships.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use alloy::primitives::U256;
use anyhow::{Context, Result};
use halo2_proofs::circuit::Layouter;
use halo2_proofs::halo2curves::bn256::{Bn256, Fr};
use halo2_proofs::plonk::{Circuit, ConstraintSystem, Error as PlonkError};
use halo2_proofs::poly::commitment::Params;
use halo2_proofs::poly::kzg::commitment::ParamsKZG;
use rand::SeedableRng;
use snark_verifier_sdk::evm::{gen_evm_proof_shplonk, gen_evm_verifier_sol_code};
use snark_verifier_sdk::halo2::aggregation::{AggregationCircuit, AggregationConfigParams, VerifierUniversality};
use snark_verifier_sdk::halo2::gen_snark_shplonk;
use snark_verifier_sdk::{gen_pk, CircuitExt, SHPLONK};
use zkinfer_circuits::circuit::ModelCircuit;
use zkinfer_circuits::compile::{compile, CompileOptions};
use zkinfer_circuits::data::InputData;
use zkinfer_verifier_contract::chain::{LocalChain, DEFAULT_HARDFORK};
use zkinfer_verifier_contract::solc::Toolchain;
use zkinfer_verifier_contract::verifier::CompiledVerifier;

/// The model circuit with the instance layout the sdk asks for.
#[derive(Clone)]
struct Inner(ModelCircuit);

impl Circuit<Fr> for Inner {
    type Config = <ModelCircuit as Circuit<Fr>>::Config;
    type FloorPlanner = <ModelCircuit as Circuit<Fr>>::FloorPlanner;
    type Params = <ModelCircuit as Circuit<Fr>>::Params;
    fn without_witnesses(&self) -> Self {
        Inner(self.0.without_witnesses())
    }
    fn params(&self) -> Self::Params {
        self.0.params()
    }
    fn configure_with_params(meta: &mut ConstraintSystem<Fr>, params: Self::Params) -> Self::Config {
        ModelCircuit::configure_with_params(meta, params)
    }
    fn configure(meta: &mut ConstraintSystem<Fr>) -> Self::Config {
        ModelCircuit::configure(meta)
    }
    fn synthesize(&self, config: Self::Config, layouter: impl Layouter<Fr>) -> std::result::Result<(), PlonkError> {
        self.0.synthesize(config, layouter)
    }
}

impl CircuitExt<Fr> for Inner {
    fn num_instance(&self) -> Vec<usize> {
        vec![self.0.instances().len()]
    }
    fn instances(&self) -> Vec<Vec<Fr>> {
        vec![self.0.instances()]
    }
}

/// Peak resident memory of this process so far, MiB.
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn step<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    println!("{what}: {:.1} s (peak RSS so far {:.0} MiB)", t.elapsed().as_secs_f64(), peak_mib());
    out
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (dir, n, agg_k) = match args.as_slice() {
        [_, dir, n, k] => (PathBuf::from(dir), n.parse::<usize>()?, k.parse::<u32>()?),
        _ => anyhow::bail!("usage: aggregation_probe EXAMPLE_DIR N AGG_K (e.g. examples/mlp 1 22)"),
    };
    let read = |f: &str| -> Result<Vec<Vec<f32>>> {
        Ok(InputData::from_json(&std::fs::read_to_string(dir.join(f)).with_context(|| f.to_string())?)?.input_data)
    };
    let onnx = std::fs::read(dir.join("model.onnx"))?;
    let model = Arc::new(compile(&onnx, Some(&read("calibration.json")?), &CompileOptions::default())?.model);
    let k = model.settings.k;
    println!("model: k = {k}, {} instances; aggregating {n} proof(s) at k = {agg_k}", model.num_instances());

    let params = step("SRS (seeded, insecure)", || ParamsKZG::<Bn256>::setup(agg_k, rand_chacha::ChaCha20Rng::seed_from_u64(15)));
    let mut inner_params = params.clone();
    inner_params.downsize(k);
    let pk = step("inner keygen", || zkinfer_prover::keys::keygen(&inner_params, model.clone()))?;
    let circuit = Inner(ModelCircuit::new(model.clone(), model.quantize_inputs(&read("input.json")?)?)?);
    let snarks: Vec<_> = (0..n)
        .map(|i| {
            step(&format!("inner proof {i} (Poseidon transcript)"), || gen_snark_shplonk(&inner_params, &pk, circuit.clone(), None::<&str>))
        })
        .collect();

    let config = AggregationConfigParams { degree: agg_k, lookup_bits: agg_k as usize - 1, ..Default::default() };
    let mut keygen_circuit = AggregationCircuit::new::<SHPLONK>(
        halo2_base::gates::circuit::CircuitBuilderStage::Keygen,
        config,
        &params,
        snarks.clone(),
        VerifierUniversality::None,
    );
    let config = keygen_circuit.calculate_params(Some(10));
    println!("aggregation circuit: {config:?}");
    let agg_pk = step("aggregation keygen", || gen_pk(&params, &keygen_circuit, None));
    let break_points = keygen_circuit.break_points();
    drop(keygen_circuit);
    let agg = AggregationCircuit::new::<SHPLONK>(
        halo2_base::gates::circuit::CircuitBuilderStage::Prover,
        config,
        &params,
        snarks,
        VerifierUniversality::None,
    )
    .use_break_points(break_points);
    let num_instance = agg.num_instance();
    let instances = agg.instances();
    let proof = step("aggregation proof (EVM transcript)", || gen_evm_proof_shplonk(&params, &agg_pk, agg, instances.clone()));
    println!("aggregated proof: {} bytes, {} public instances", proof.len(), instances.iter().map(Vec::len).sum::<usize>());

    let source = gen_evm_verifier_sol_code::<AggregationCircuit, SHPLONK>(&params, agg_pk.get_vk(), num_instance);
    let tc = Toolchain::in_repo()?;
    let verifier = step("verifier compile (solcjs)", || CompiledVerifier::build(&tc, &source))?;
    println!(
        "verifier: {} part contract(s), largest {} bytes, {} in all",
        verifier.parts.len(),
        verifier.largest_contract(),
        verifier.total_code()
    );
    let chain = LocalChain::start(&tc.anvil()?, DEFAULT_HARDFORK)?;
    let (address, _) = verifier.deploy(&chain.deployer(0)).await?;
    let calldata = snark_verifier::loader::evm::encode_calldata(&instances, &proof);
    let mined = chain.transact(0, address, calldata.clone(), U256::ZERO, Some(3_000_000)).await?;
    println!(
        "verifier call on anvil ({}): success {}, {} gas (incl. 21,000 base and calldata); {:.0} gas per job",
        chain.hardfork,
        mined.success,
        mined.gas_used,
        mined.gas_used as f64 / n as f64
    );
    let mut bad = calldata;
    let last = bad.len() - 1;
    bad[last] ^= 1;
    println!("a flipped proof byte: rejected {}", chain.call(address, bad, 3_000_000).await.is_err());
    println!("peak RSS {:.0} MiB", peak_mib());
    Ok(())
}
