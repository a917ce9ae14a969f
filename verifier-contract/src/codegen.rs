//! The Solidity verifier for a verifying key (snark-verifier's EVM code generator) and the
//! calldata it takes.

use std::rc::Rc;

use halo2_proofs::halo2curves::bn256::{Bn256, Fq, Fr, G1Affine};
use halo2_proofs::plonk::VerifyingKey;
use halo2_proofs::poly::commitment::ParamsProver;
use halo2_proofs::poly::kzg::commitment::ParamsKZG;
use snark_verifier::loader::evm::{encode_calldata, EvmLoader};
use snark_verifier::pcs::kzg::{Bdfg21, KzgAs, KzgDecidingKey, LimbsEncoding};
use snark_verifier::system::halo2::{compile, transcript::evm::EvmTranscript, Config};
use snark_verifier::verifier::{plonk::PlonkProtocol, plonk::PlonkVerifier, SnarkVerifier};
use zkinfer_prover::ProofEnvelope;

use crate::error::{Error, Result};

/// SHPLONK (BDFG21) over KZG, matching the prover.
type Shplonk = PlonkVerifier<KzgAs<Bn256, Bdfg21>>;

/// Generates the Solidity source of a verifier for `vk` with one instance column of `num_instances` values.
pub fn verifier_solidity(params: &ParamsKZG<Bn256>, vk: &VerifyingKey<G1Affine>, num_instances: usize) -> Result<String> {
    generate::<Shplonk>(params, vk, Config::kzg().with_num_instance(vec![num_instances]), num_instances)
}

/// Generates the Solidity source of the verifier of an aggregated proof (`zkinfer-aggregate`'s
/// batch key): its first [`AGGREGATION_ACCUMULATOR_INSTANCES`] instances are the KZG
/// accumulator's limbs, which the verifier decides with its final pairing, so that one
/// verifier call stands for every inner proof.
pub fn aggregation_verifier_solidity(params: &ParamsKZG<Bn256>, vk: &VerifyingKey<G1Affine>, num_instances: usize) -> Result<String> {
    if num_instances <= AGGREGATION_ACCUMULATOR_INSTANCES {
        return Err(Error::Codegen(format!("{num_instances} instances: an aggregated proof has the accumulator's 12 and its members'")));
    }
    let accumulator = (0..AGGREGATION_ACCUMULATOR_INSTANCES).map(|i| (0, i)).collect();
    let config = Config::kzg().with_num_instance(vec![num_instances]).with_accumulator_indices(Some(accumulator));
    generate::<AggregationShplonk>(params, vk, config, num_instances)
}

/// The accumulator's instances in an aggregated proof: two G1 points, each coordinate in 3 limbs
/// of 88 bits (snark-verifier-sdk's encoding).
pub const AGGREGATION_ACCUMULATOR_INSTANCES: usize = 12;

/// snark-verifier-sdk's aggregation verifier: SHPLONK, with the accumulator in 3 × 88-bit limbs.
type AggregationShplonk = PlonkVerifier<KzgAs<Bn256, Bdfg21>, LimbsEncoding<3, 88>>;

fn generate<V>(params: &ParamsKZG<Bn256>, vk: &VerifyingKey<G1Affine>, config: Config, num_instances: usize) -> Result<String>
where
    V: SnarkVerifier<G1Affine, Rc<EvmLoader>, VerifyingKey = KzgDecidingKey<Bn256>, Protocol = PlonkProtocol<G1Affine, Rc<EvmLoader>>>,
{
    let protocol = compile(params, vk, config);
    let dk: KzgDecidingKey<Bn256> = (params.get_g()[0], params.g2(), params.s_g2()).into();
    let loader = EvmLoader::new::<Fq, Fr>();
    let protocol = protocol.loaded(&loader);
    let mut transcript = EvmTranscript::<G1Affine, Rc<EvmLoader>, _, _>::new(&loader);
    let instances = transcript.load_instances(vec![num_instances]);
    let proof = V::read_proof(&dk, &protocol, &instances, &mut transcript).map_err(|e| Error::Codegen(format!("{e:?}")))?;
    V::verify(&dk, &protocol, &instances, &proof).map_err(|e| Error::Codegen(format!("{e:?}")))?;
    canonical_only(&loader.solidity_code())
}

/// Makes snark-verifier's verifier accept only canonical data, as the Rust verifier does: it
/// reads every instance and proof scalar as `mod(calldataload(x), f_q)`, so `v` and `v + r`
/// would verify alike; each such read is preceded by a check that the word is below `f_q`,
/// and the calldata must be exactly as long as the words it reads (no trailing bytes).
fn canonical_only(code: &str) -> Result<String> {
    let scalar = regex::Regex::new(r"mod\(calldataload\((0x[0-9a-f]+)\), f_q\)").map_err(|e| Error::Codegen(e.to_string()))?;
    let any_read = regex::Regex::new(r"calldataload\((0x[0-9a-f]+)\)").map_err(|e| Error::Codegen(e.to_string()))?;
    let end = any_read
        .captures_iter(code)
        .filter_map(|c| usize::from_str_radix(c[1].trim_start_matches("0x"), 16).ok())
        .max()
        .map(|last| last + 32)
        .ok_or_else(|| Error::Codegen("the verifier reads no calldata".into()))?;
    let mut out = String::with_capacity(code.len() + 64 * 1024);
    let (mut checks, mut sized) = (0, false);
    for line in code.lines() {
        let indent = &line[..line.len() - line.trim_start().len()];
        // Before the first read (not in the preamble, which a split verifier's later parts,
        // called with the previous part's memory, repeat).
        if !sized && line.contains("calldataload(") {
            out.push_str(&format!("{indent}success := and(eq(calldatasize(), {end:#x}), success)\n"));
            sized = true;
        }
        if let Some(c) = scalar.captures(line) {
            out.push_str(&format!("{indent}success := and(lt(calldataload({}), f_q), success)\n", &c[1]));
            checks += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if checks == 0 || !sized {
        return Err(Error::Codegen("the verifier's scalar reads were not found: snark-verifier's output changed".into()));
    }
    Ok(out)
}

/// The exact calldata the generated verifier takes: 32-byte big-endian instances, then the proof.
pub fn calldata(env: &ProofEnvelope) -> Result<Vec<u8>> {
    if env.transcript != zkinfer_prover::Transcript::Evm {
        return Err(zkinfer_prover::Error::WrongTranscript { got: env.transcript, expected: zkinfer_prover::Transcript::Evm }.into());
    }
    let instances = env.instance_values()?;
    Ok(calldata_of(&instances, &env.proof))
}

/// The calldata of any generated verifier (single or aggregated): the instances as 32-byte
/// big-endian words, then the proof bytes.
pub fn calldata_of(instances: &[Fr], proof: &[u8]) -> Vec<u8> {
    encode_calldata(&[instances.to_vec()], proof)
}
