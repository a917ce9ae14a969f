//! Proofs made to be aggregated: SHPLONK with snark-verifier's Poseidon transcript, which the
//! aggregation circuit reads in-circuit (Keccak would cost it millions of rows). The keys, the
//! SRS and the statement are the model's usual ones; only the Fiat-Shamir hash differs, so the
//! proof file says which transcript it used.

use halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_proofs::plonk::{verify_proof, ProvingKey, VerifyingKey};
use halo2_proofs::poly::commitment::ParamsProver;
use halo2_proofs::poly::kzg::commitment::{KZGCommitmentScheme, ParamsKZG};
use halo2_proofs::poly::kzg::multiopen::VerifierSHPLONK;
use halo2_proofs::poly::kzg::strategy::SingleStrategy;
use snark_verifier::system::halo2::transcript::halo2::ChallengeScalar;
use snark_verifier::system::halo2::{compile, Config};
use snark_verifier_sdk::halo2::{PoseidonTranscript, POSEIDON_SPEC};
use snark_verifier_sdk::{NativeLoader, Snark};
use zkinfer_circuits::circuit::ModelCircuit;
use zkinfer_prover::proof::{check_bindings, envelope, prove_into};
use zkinfer_prover::{Bindings, CommitParams, ProofEnvelope, Transcript};

use crate::error::Result;

/// Proves `circuit` for aggregation (the Poseidon transcript), committing with `params`' MSM.
pub fn prove(params: &CommitParams, pk: &ProvingKey<G1Affine>, circuit: &ModelCircuit, bindings: Bindings) -> Result<ProofEnvelope> {
    let mut transcript = PoseidonTranscript::<NativeLoader, Vec<u8>>::from_spec(Vec::new(), POSEIDON_SPEC.clone());
    prove_into::<ChallengeScalar<G1Affine>, _>(params, pk, circuit, &mut transcript)?;
    Ok(envelope(circuit, bindings, Transcript::Poseidon, transcript.finalize()))
}

/// Verifies a proof made for aggregation against a local model's key, as
/// [`zkinfer_prover::verify`] does an EVM-transcript one; returns its instances.
pub fn verify(
    params: &ParamsKZG<Bn256>,
    vk: &VerifyingKey<G1Affine>,
    env: &ProofEnvelope,
    expect: Bindings,
    n_instances: usize,
) -> Result<Vec<Fr>> {
    if env.transcript != Transcript::Poseidon {
        return Err(zkinfer_prover::Error::WrongTranscript { got: env.transcript, expected: Transcript::Poseidon }.into());
    }
    let instances = check_bindings(vk, env, expect, n_instances)?;
    let mut reader = env.proof.as_slice();
    {
        let mut transcript = PoseidonTranscript::<NativeLoader, _>::from_spec(&mut reader, POSEIDON_SPEC.clone());
        verify_proof::<KZGCommitmentScheme<Bn256>, VerifierSHPLONK<'_, Bn256>, _, _, SingleStrategy<'_, Bn256>>(
            params.verifier_params(),
            vk,
            SingleStrategy::new(params),
            &[&[&instances]],
            &mut transcript,
        )
        .map_err(|e| zkinfer_prover::Error::InvalidProof(format!("{e:?}")))?;
    }
    if !reader.is_empty() {
        return Err(zkinfer_prover::Error::InvalidProof(format!("{} unread trailing proof bytes", reader.len())).into());
    }
    Ok(instances)
}

/// The proof as snark-verifier's aggregation circuit takes it: the verifying key compiled to
/// its protocol, the instances, the transcript bytes. The caller has verified the proof.
pub(crate) fn snark_unchecked(params: &ParamsKZG<Bn256>, vk: &VerifyingKey<G1Affine>, instances: Vec<Fr>, proof: Vec<u8>) -> Snark {
    let protocol = compile(params, vk, Config::kzg().with_num_instance(vec![instances.len()]));
    Snark::new(protocol, vec![instances], proof)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use zkinfer_circuits::compile::{compile, CompileOptions};
    use zkinfer_circuits::data::InputData;
    use zkinfer_prover::keys::{keygen, vk_hash};
    use zkinfer_prover::{model_hash, prove_circuit, Srs, Statement};

    use super::*;
    use crate::Error;

    fn tiny() -> (Arc<zkinfer_circuits::quant::QModel>, Vec<Vec<i64>>) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/tiny");
        let read = |f: &str| InputData::from_json(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap().input_data;
        let onnx = std::fs::read(dir.join("model.onnx")).unwrap();
        let model = Arc::new(compile(&onnx, Some(&read("calibration.json")), &CompileOptions::default()).unwrap().model);
        let inputs = model.quantize_inputs(&read("input.json")).unwrap();
        (model, inputs)
    }

    #[test]
    fn a_poseidon_proof_verifies_and_nothing_else_does() {
        let (model, inputs) = tiny();
        let srs = Srs::dev(model.settings.k).unwrap();
        let pk = keygen(&srs.params, model.clone()).unwrap();
        let b = Bindings { model_hash: model_hash(&model).unwrap(), vk_hash: vk_hash(pk.get_vk()), srs_hash: srs.source_sha256 };
        let params = CommitParams::halo2(srs.params.clone());
        let circuit = Statement::unbound(inputs).circuit(model.clone()).unwrap();
        let n = model.num_instances();
        let env = prove(&params, &pk, &circuit, b).unwrap();
        assert_eq!(env.transcript, Transcript::Poseidon);
        assert_eq!(verify(&srs.params, pk.get_vk(), &env, b, n).unwrap(), circuit.instances());

        let invalid = |e: ProofEnvelope, what: &str| {
            let err = verify(&srs.params, pk.get_vk(), &e, b, n).unwrap_err();
            assert!(err.is_invalid_proof(), "{what}: {err}");
        };
        for at in [0, env.proof.len() / 2, env.proof.len() - 1] {
            let mut bad = env.clone();
            bad.proof[at] ^= 1;
            invalid(bad, "a flipped byte");
        }
        let mut bad = env.clone();
        bad.proof.push(0);
        invalid(bad, "a trailing byte");
        let mut bad = env.clone();
        bad.instances[n - 1][0] ^= 1;
        invalid(bad, "a changed output");
        // The same statement with the Keccak transcript: refused as the wrong kind, and the
        // Poseidon proof is refused by the single-proof verifier.
        let evm = prove_circuit(&params, &pk, &circuit, b).unwrap();
        assert!(matches!(verify(&srs.params, pk.get_vk(), &evm, b, n), Err(Error::Prover(zkinfer_prover::Error::WrongTranscript { .. }))));
        assert!(matches!(zkinfer_prover::verify(&srs.params, pk.get_vk(), &env, b, n), Err(zkinfer_prover::Error::WrongTranscript { .. })));
        // Relabelled as EVM, the Poseidon proof does not verify either.
        let mut relabelled = env.clone();
        relabelled.transcript = Transcript::Evm;
        assert!(zkinfer_prover::verify(&srs.params, pk.get_vk(), &relabelled, b, n).unwrap_err().is_invalid_proof());
    }
}
