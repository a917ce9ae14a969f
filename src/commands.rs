//! `compile`, `setup`, `prove` and `verify`.

use std::path::Path;

use anyhow::{Context, Result};
use zkinfer_circuits::chips::i64_from_fr;
use zkinfer_circuits::circuit::{PayeeBinding, BINDING_INSTANCES};
use zkinfer_circuits::compile::CompileOptions;
use zkinfer_circuits::data::{InputData, OutputData};
use zkinfer_circuits::quant::Visibility;
use zkinfer_circuits::Fr;
use zkinfer_protocol::{Binding, Commitment, EscrowJobId, ExecutorId, Salt};
use zkinfer_prover::{fs::atomic_write, Loaded, ModelDir, ProofEnvelope, Srs, Statement, Transcript};

use crate::ui::{fmt_values, timed};
use crate::{CommitArgs, CompileArgs, Outcome, ProveArgs, SetupArgs, VerifyArgs};

/// Reads an EZKL-format input file.
pub(crate) fn read_input(path: &Path) -> Result<Vec<Vec<f32>>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(InputData::from_json(&text).with_context(|| path.display().to_string())?.input_data)
}

pub(crate) fn compile(a: &CompileArgs) -> Result<Outcome> {
    let onnx = std::fs::read(&a.model).with_context(|| format!("reading {}", a.model.display()))?;
    let cal = a.calibration.as_deref().map(read_input).transpose()?;
    if cal.is_none() {
        eprintln!("note: no --calibration given; scales are chosen from synthetic inputs in [-1, 1)");
    }
    let opts = CompileOptions {
        scale_bits: a.scale_bits,
        max_k: Some(a.max_k),
        input_visibility: a.input_visibility.into(),
        output_visibility: a.output_visibility.into(),
        target: a.target.into(),
        max_error: a.max_error,
        matmul: a.matmul.into(),
    };
    let compiled = zkinfer_circuits::compile::compile(&onnx, cal.as_deref(), &opts).with_context(|| a.model.display().to_string())?;
    ModelDir::new(&a.out).write_compiled(&compiled, &onnx)?;
    let s = &compiled.model.settings;
    println!("compiled {} → {}", a.model.display(), a.out.display());
    println!("  nodes: {}   MACs: {}", compiled.graph.nodes.len(), compiled.model.macs());
    println!(
        "  k = {}   advice columns: {} (+{} second-phase)   activation scale 2^-{}   value range ±2^{}",
        s.k, s.num_advice, s.challenge_advice, s.scale_bits, s.value_bits
    );
    println!("  error bound vs float (inputs within the calibrated range): {:?}", compiled.model.error_bound);
    println!(
        "  measured error on {} calibration samples (vs {}): {:?}",
        compiled.measured.samples, compiled.measured.reference, compiled.measured.max_abs
    );
    println!("  circuit sizes considered (--target settlement|resources|accuracy):");
    for c in &compiled.candidates {
        let chosen = if c.k == s.k { "  ← chosen" } else { "" };
        let tables = c.min_table_scale_bits.map(|b| format!(", function-table inputs ≥ 2^-{b}")).unwrap_or_default();
        println!(
            "    k = {:2}: predicted prove {:6.2} s, scale 2^-{}{tables}, measured error {:?}, bound {:?}{chosen}",
            c.k, c.predicted_prove_s, c.scale_bits, c.measured, c.bound
        );
    }
    println!("next: zkinfer setup {} --dev-srs   (or --srs kzg{}.srs)", a.out.display(), s.k);
    Ok(Outcome::Ok)
}

pub(crate) fn setup(a: &SetupArgs) -> Result<Outcome> {
    let dir = ModelDir::new(&a.dir);
    let compiled = dir.read_compiled()?;
    let k = compiled.model.settings.k;
    let srs = match &a.srs {
        Some(path) => timed(&format!("loading SRS {} (downsizing to k = {k} if larger)", path.display()), || Srs::load(path, k)).0?,
        None => {
            eprintln!("WARNING: --dev-srs generates an INSECURE SRS whose trapdoor is public.");
            eprintln!("WARNING: anyone can forge proofs against keys made from it. Use --srs with a Powers-of-Tau file in production.");
            timed(&format!("generating development SRS (k = {k})"), || Srs::dev(k)).0?
        }
    };
    let (result, keygen_time) = timed("key generation", || dir.setup(&compiled, &srs, || ()));
    let (info, cached) = result?;
    if cached {
        println!("keys reused from cache (keys/{})", info.key_id);
    } else {
        println!("generated keys in {:.2}s (keys/{})", keygen_time.as_secs_f64(), info.key_id);
    }
    println!(
        "  SRS sha256 {} (source k = {}){}",
        info.srs_sha256,
        info.srs_source_k,
        if info.insecure_dev_srs { "  [INSECURE dev SRS]" } else { "" }
    );
    println!("  vk sha256  {}", info.vk_sha256);
    println!("  model hash {}", info.model_hash);
    Ok(Outcome::Ok)
}

fn dequantize(loaded: &Loaded, values: &[i64]) -> Vec<f32> {
    values.iter().map(|&v| loaded.model.dequantize(v) as f32).collect()
}

pub(crate) fn prove(a: &ProveArgs) -> Result<Outcome> {
    let dir = ModelDir::new(&a.dir);
    let loaded = dir.load()?;
    let input = read_input(&a.input)?;
    let q = loaded.model.quantize_inputs(&input).with_context(|| a.input.display().to_string())?;
    let salt = a.salt.unwrap_or_else(Salt::zero);
    let binding = a.payee.map(|payee| Binding {
        payee: ExecutorId(payee),
        chain_id: a.chain_id,
        escrow: a.escrow.unwrap_or_default(),
        escrow_job: EscrowJobId(a.escrow_job),
    });
    let statement = Statement {
        inputs: q,
        salt: salt.to_fr(),
        binding: binding.map_or_else(PayeeBinding::default, |b| PayeeBinding::from_values(b.to_fields())),
    };
    // The one evaluation of the model: the circuit lays out its trace, and the outputs printed
    // here are the ones the proof claims.
    let circuit = statement.circuit(loaded.model.clone())?;
    let outputs: Vec<Vec<f32>> = circuit.trace().outputs(&loaded.model).iter().map(|o| dequantize(&loaded, o)).collect();
    let pk = timed("loading proving key", || dir.load_pk(&loaded)).0?;
    let (params, fallback) = timed("loading MSM tables", || dir.commit_params_or_cpu(&loaded, a.msm)).0?;
    if let Some(reason) = fallback {
        eprintln!("note: CUDA MSM unavailable ({reason}); using the CPU's precomputed tables");
    }
    let transcript = if a.for_aggregation { ", Poseidon transcript for aggregation" } else { "" };
    let (env, t) = timed(&format!("proving (k = {}, MSM {}{transcript})", loaded.setup.k, params.msm().name()), || {
        if a.for_aggregation {
            zkinfer_aggregate::inner::prove(&params, &pk, &circuit, loaded.bindings).map_err(anyhow::Error::from)
        } else {
            zkinfer_prover::prove_circuit(&params, &pk, &circuit, loaded.bindings).map_err(anyhow::Error::from)
        }
    });
    let env = env?;
    atomic_write(&a.out, &env.to_bytes()?)?;
    if let Some(path) = &a.output {
        let data = OutputData { outputs: outputs.clone(), shapes: loaded.model.output_shapes() };
        atomic_write(path, &serde_json::to_vec(&data)?)?;
    }
    println!("proved in {:.2}s; proof {} bytes → {}", t.as_secs_f64(), env.proof.len(), a.out.display());
    if loaded.model.settings.input_visibility == Visibility::Hashed {
        let c = env.instances.first().and_then(|b| Commitment::from_le_bytes(*b).ok());
        println!("  input commitment {}", c.map_or("<none>".to_string(), |c| c.to_string()));
        if a.salt.is_none() {
            println!("  (salt zero: the commitment is not hiding; pass --salt to make it so)");
        }
    }
    match binding {
        Some(b) => println!("  bound to {b}"),
        None => println!("  bound to no payee (--payee binds one)"),
    }
    for (i, o) in outputs.iter().enumerate() {
        println!("  output {i}: {}", fmt_values(o));
    }
    report_accuracy(&dir, &loaded, &input, &outputs);
    Ok(Outcome::Ok)
}

/// Compares the proven outputs with candle's float inference, or with the float IR (f64) where
/// candle cannot run the model.
fn report_accuracy(dir: &ModelDir, loaded: &Loaded, input: &[Vec<f32>], outputs: &[Vec<f32>]) {
    let graph = &loaded.compiled.graph;
    let candle = dir
        .read_onnx()
        .map_err(anyhow::Error::from)
        .and_then(|onnx| zkinfer_circuits::reference::candle_outputs(&onnx, graph, input).map_err(anyhow::Error::from));
    let (reference, name): (Vec<Vec<f64>>, &str) = match candle {
        Ok(r) => (r.into_iter().map(|o| o.into_iter().map(f64::from).collect()).collect(), "candle float"),
        Err(e) => {
            // candle's message carries the whole node and a backtrace: its first clause says enough.
            let full = crate::ui::one_line(&e);
            let reason = full.split(" for op NodeProto").next().unwrap_or(&full).split("    0:").next().unwrap_or(&full).trim().to_string();
            let ir = input.iter().map(|v| v.iter().map(|&x| f64::from(x)).collect()).collect::<Vec<Vec<f64>>>();
            match graph.eval_f64(&ir) {
                Ok(values) => {
                    eprintln!("note: candle cannot run this model ({reason}); comparing with the float IR in f64");
                    (graph.outputs.iter().map(|&o| values[o].clone()).collect(), "float IR")
                }
                Err(e) => return eprintln!("note: float reference unavailable: {reason}; {e}"),
            }
        }
    };
    for (i, (o, r)) in outputs.iter().zip(&reference).enumerate() {
        let err = o.iter().zip(r).map(|(&a, &b)| (f64::from(a) - b).abs()).fold(0.0f64, f64::max);
        let bound = loaded.model.error_bound.get(i).copied().unwrap_or(f64::NAN);
        let note = if err <= bound { "within" } else { "EXCEEDS (input outside the calibrated range?)" };
        println!("  output {i}: max |proven − {name}| = {err:.3e}, {note} the bound {bound:.3e}");
    }
}

pub(crate) fn verify(a: &VerifyArgs) -> Result<Outcome> {
    let bytes = std::fs::read(&a.proof).with_context(|| format!("reading {}", a.proof.display()))?;
    if zkinfer_aggregate::BatchProof::sniff(&bytes) {
        return crate::aggregate::verify_batch(&a.dir, &a.proof, &bytes);
    }
    let dir = ModelDir::new(&a.dir);
    let loaded = dir.load()?;
    if !a.trust_cached_vk {
        timed("regenerating the verifying key from the model", || dir.check_vk(&loaded)).0?;
    }
    let env = ProofEnvelope::from_bytes(&bytes).with_context(|| a.proof.display().to_string())?;
    let n = loaded.model.num_instances();
    let (result, t) = timed("verifying", || match env.transcript {
        Transcript::Evm => {
            zkinfer_prover::verify(&loaded.params, &loaded.vk, &env, loaded.bindings, n).map_err(zkinfer_aggregate::Error::from)
        }
        Transcript::Poseidon => zkinfer_aggregate::inner::verify(&loaded.params, &loaded.vk, &env, loaded.bindings, n),
    });
    let instances = match result {
        Ok(i) => i,
        Err(e) if e.is_invalid_proof() => {
            println!("INVALID: {e}");
            return Ok(Outcome::Invalid);
        }
        Err(e) => return Err(e.into()),
    };
    let model = &loaded.model;
    let (input_part, rest) = instances.split_at(model.binding_offset());
    let (binding_part, output_part) = rest.split_at(BINDING_INSTANCES);
    let decode = |values: &[Fr]| -> Result<Vec<f32>> {
        let ints: Option<Vec<i64>> = values.iter().map(i64_from_fr).collect();
        Ok(dequantize(&loaded, &ints.context("an instance is not a small integer")?))
    };
    let mut outputs = Vec::new();
    if model.settings.output_visibility != Visibility::Hashed {
        let mut rest = output_part;
        for shape in model.output_shapes() {
            let n: usize = shape.iter().product();
            outputs.push((shape, decode(&rest[..n])?));
            rest = &rest[n..];
        }
    }
    println!("VALID ({:.0} ms)", t.as_secs_f64() * 1e3);
    println!("  model hash       {}", hex::encode(env.model_hash));
    println!(
        "  vk sha256        {}{}",
        hex::encode(env.vk_hash),
        if a.trust_cached_vk { "  (cached key, not regenerated)" } else { "  (regenerated from the model)" }
    );
    println!(
        "  SRS sha256       {}{}",
        hex::encode(env.srs_hash),
        if loaded.setup.insecure_dev_srs { "  [INSECURE dev SRS: proofs can be forged]" } else { "" }
    );
    match model.settings.input_visibility {
        Visibility::Hashed => println!("  input commitment {}", Commitment::from(input_part[0])),
        Visibility::Public => println!("  input (public)   {}", fmt_values(&decode(input_part)?)),
        Visibility::Private => println!("  input            private: the proof says nothing about which input was used"),
    }
    let binding: [Fr; BINDING_INSTANCES] = binding_part.try_into().context("a proof without a payee binding")?;
    match Binding::from_fields(&binding) {
        Ok(b) if b.payee.0.is_zero() => println!("  bound to         no payee"),
        Ok(b) => println!("  bound to         {b}"),
        Err(e) => println!("  bound to         nothing a chain can pay ({e})"),
    }
    match model.settings.output_visibility {
        Visibility::Hashed => println!(
            "  output commitment {} (Poseidon chain over the quantized outputs at scale 2^-{})",
            Commitment::from(output_part[0]),
            model.settings.scale_bits
        ),
        _ => {
            for (i, (shape, values)) in outputs.iter().enumerate() {
                println!("  output {i} {shape:?} (scale 2^-{}): {}", model.settings.scale_bits, fmt_values(values));
            }
        }
    }
    Ok(Outcome::Ok)
}

pub(crate) fn commit(a: &CommitArgs) -> Result<Outcome> {
    let compiled = ModelDir::new(&a.dir).read_compiled()?;
    let input = read_input(&a.input)?;
    let salt = a.salt.unwrap_or_else(Salt::zero);
    let c = compiled.model.input_commitment(&input, salt.to_fr()).with_context(|| a.input.display().to_string())?;
    println!("{}", Commitment::from(c));
    if a.salt.is_none() {
        eprintln!("note: salt zero: this commitment is not hiding (pass --salt)");
    }
    Ok(Outcome::Ok)
}
