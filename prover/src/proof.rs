//! Proving and verifying with SHPLONK and the EVM (Keccak) transcript, and the proof file
//! (which also carries the Poseidon-transcript proofs that `zkinfer-aggregate` folds).

use std::sync::Arc;

use halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_proofs::halo2curves::ff::PrimeField;
use halo2_proofs::plonk::{create_proof, verify_proof, ProvingKey, VerifyingKey};
use halo2_proofs::poly::commitment::ParamsProver;
use halo2_proofs::poly::kzg::commitment::{KZGCommitmentScheme, ParamsKZG};
use halo2_proofs::poly::kzg::multiopen::VerifierSHPLONK;
use halo2_proofs::poly::kzg::strategy::SingleStrategy;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use snark_verifier::loader::native::NativeLoader;
use snark_verifier::system::halo2::transcript::evm::{ChallengeEvm, EvmTranscript};
use zkinfer_circuits::circuit::{ModelCircuit, PayeeBinding};
use zkinfer_circuits::quant::QModel;

use crate::commit::{CommitKzg, CommitParams, CommitShplonk};
use crate::error::{Error, Result};

/// Current proof file format.
pub const PROOF_FORMAT_VERSION: u32 = 2;
/// First bytes of every proof file.
pub const PROOF_MAGIC: [u8; 4] = *b"zkip";

/// The Fiat-Shamir transcript a proof was made with: it decides who can check it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transcript {
    /// Keccak, as the Solidity verifier reads it: a proof to settle one job on chain.
    Evm,
    /// snark-verifier's Poseidon (width 3, 8 full and 57 partial rounds): a proof to fold into
    /// an aggregated one (`zkinfer aggregate`), which an aggregation circuit can afford to read.
    Poseidon,
}

impl std::fmt::Display for Transcript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transcript::Evm => "EVM (Keccak)",
            Transcript::Poseidon => "Poseidon (for aggregation)",
        })
    }
}

/// A proof file: postcard-encoded, binding the model, the key and the SRS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofEnvelope {
    /// [`PROOF_MAGIC`].
    pub magic: [u8; 4],
    /// [`PROOF_FORMAT_VERSION`].
    pub format_version: u32,
    /// SHA-256 of the quantized model (see [`crate::model_hash`]).
    pub model_hash: [u8; 32],
    /// SHA-256 of the verifying key.
    pub vk_hash: [u8; 32],
    /// SHA-256 of the SRS source.
    pub srs_hash: [u8; 32],
    /// Circuit size.
    pub k: u32,
    /// The transcript the proof was made with.
    pub transcript: Transcript,
    /// Public instances, little-endian field elements: `[input commitment, payee, chain id,
    /// escrow, escrow job, outputs…]` (the default visibilities).
    pub instances: Vec<[u8; 32]>,
    /// The SHPLONK proof, in `transcript`'s encoding.
    pub proof: Vec<u8>,
}

type EvmWrite = EvmTranscript<G1Affine, NativeLoader, Vec<u8>, Vec<u8>>;

impl ProofEnvelope {
    /// Encodes with postcard.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        postcard::to_stdvec(self).map_err(|e| Error::ProofFormat(e.to_string()))
    }

    /// Decodes, checking the magic and the version, and that nothing trails.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (env, rest): (ProofEnvelope, &[u8]) = postcard::take_from_bytes(bytes).map_err(|e| Error::ProofFormat(e.to_string()))?;
        if env.magic != PROOF_MAGIC || env.format_version != PROOF_FORMAT_VERSION {
            return Err(Error::ProofFormat(format!("magic {:?} version {}", env.magic, env.format_version)));
        }
        if !rest.is_empty() {
            return Err(Error::ProofFormat(format!("{} trailing bytes", rest.len())));
        }
        Ok(env)
    }

    /// The instances as field elements; a non-canonical encoding makes the proof invalid.
    pub fn instance_values(&self) -> Result<Vec<Fr>> {
        self.instances
            .iter()
            .map(|b| Option::from(Fr::from_repr(*b)).ok_or_else(|| Error::InvalidProof("non-canonical public instance".into())))
            .collect()
    }
}

/// What a proof must be bound to.
#[derive(Clone, Copy, Debug)]
pub struct Bindings {
    /// Model hash.
    pub model_hash: [u8; 32],
    /// Verifying-key hash.
    pub vk_hash: [u8; 32],
    /// SRS hash.
    pub srs_hash: [u8; 32],
}

/// What one proof states about its model: the quantized inputs, the salt of their commitment
/// (private) and who the proof pays (public).
#[derive(Clone, Debug)]
pub struct Statement {
    /// Quantized inputs (`QModel::quantize_inputs`).
    pub inputs: Vec<Vec<i64>>,
    /// The input commitment's salt.
    pub salt: Fr,
    /// The payee binding.
    pub binding: PayeeBinding,
}

impl Statement {
    /// Inputs with a zero salt and an empty binding: a proof that pays nobody (benchmarks,
    /// tests, and proofs checked off chain only).
    pub fn unbound(inputs: Vec<Vec<i64>>) -> Self {
        Statement { inputs, salt: Fr::zero(), binding: PayeeBinding::default() }
    }
}

impl Statement {
    /// The circuit of this statement: evaluates the model once (the witness every later step
    /// lays out); fails where the input overflows or leaves a function table.
    pub fn circuit(self, model: Arc<QModel>) -> Result<ModelCircuit> {
        Ok(ModelCircuit::new(model, self.inputs)?.with_salt(self.salt).with_binding(self.binding))
    }
}

/// Proves the model on a statement, committing with `params`' MSM. Blinding factors come
/// from the OS's CSPRNG (halo2 also draws the vanishing argument's random polynomial from
/// `thread_rng`), so two proofs of the same statement differ.
pub fn prove(
    params: &CommitParams,
    pk: &ProvingKey<G1Affine>,
    model: Arc<QModel>,
    statement: Statement,
    bindings: Bindings,
) -> Result<ProofEnvelope> {
    prove_circuit(params, pk, &statement.circuit(model)?, bindings)
}

/// As [`prove`], for a circuit already made (whose trace the caller also reads, so that the
/// model is evaluated once per proof).
pub fn prove_circuit(
    params: &CommitParams,
    pk: &ProvingKey<G1Affine>,
    circuit: &ModelCircuit,
    bindings: Bindings,
) -> Result<ProofEnvelope> {
    let mut transcript = EvmWrite::new(Vec::new());
    prove_into(params, pk, circuit, &mut transcript)?;
    Ok(envelope(circuit, bindings, Transcript::Evm, transcript.finalize()))
}

/// Proves `circuit` into `transcript` (any Fiat-Shamir transcript halo2 can write), with the
/// OS's CSPRNG for blinding.
pub fn prove_into<E, T>(params: &CommitParams, pk: &ProvingKey<G1Affine>, circuit: &ModelCircuit, transcript: &mut T) -> Result<()>
where
    E: halo2_proofs::transcript::EncodedChallenge<G1Affine>,
    T: halo2_proofs::transcript::TranscriptWrite<G1Affine, E>,
{
    let instances = circuit.instances();
    create_proof::<CommitKzg, CommitShplonk<'_>, E, _, T, _>(params, pk, std::slice::from_ref(circuit), &[&[&instances]], OsRng, transcript)
        .map_err(|e| Error::Halo2 { stage: "prove", reason: format!("{e:?}") })
}

/// The proof file of `circuit`'s proof `proof`, made with `transcript`.
pub fn envelope(circuit: &ModelCircuit, bindings: Bindings, transcript: Transcript, proof: Vec<u8>) -> ProofEnvelope {
    ProofEnvelope {
        magic: PROOF_MAGIC,
        format_version: PROOF_FORMAT_VERSION,
        model_hash: bindings.model_hash,
        vk_hash: bindings.vk_hash,
        srs_hash: bindings.srs_hash,
        k: circuit.model().settings.k,
        transcript,
        instances: circuit.instances().iter().map(|f| f.to_repr()).collect(),
        proof,
    }
}

/// Checks what a proof file says it binds (model, key, SRS, k, instance count) against a
/// local model's, and returns its instances: what every verifier checks before the proof.
pub fn check_bindings(vk: &VerifyingKey<G1Affine>, env: &ProofEnvelope, expect: Bindings, n_instances: usize) -> Result<Vec<Fr>> {
    let check = |field: &'static str, got: &[u8; 32], want: &[u8; 32]| {
        if got == want {
            Ok(())
        } else {
            Err(Error::Mismatch { field, proof: hex::encode(got), expected: hex::encode(want) })
        }
    };
    check("model hash", &env.model_hash, &expect.model_hash)?;
    check("verifying key hash", &env.vk_hash, &expect.vk_hash)?;
    check("SRS hash", &env.srs_hash, &expect.srs_hash)?;
    if env.k != vk.get_domain().k() {
        return Err(Error::Mismatch { field: "k", proof: env.k.to_string(), expected: vk.get_domain().k().to_string() });
    }
    if env.instances.len() != n_instances {
        return Err(Error::InvalidProof(format!("{} public instances, the model has {n_instances}", env.instances.len())));
    }
    env.instance_values()
}

/// Verifies an EVM-transcript proof against a local model's key. `Err(e)` with `e.is_invalid_proof()` means
/// the proof is invalid; other errors are usage or format problems.
pub fn verify(
    params: &ParamsKZG<Bn256>,
    vk: &VerifyingKey<G1Affine>,
    env: &ProofEnvelope,
    expect: Bindings,
    n_instances: usize,
) -> Result<Vec<Fr>> {
    if env.transcript != Transcript::Evm {
        return Err(Error::WrongTranscript { got: env.transcript, expected: Transcript::Evm });
    }
    let instances = check_bindings(vk, env, expect, n_instances)?;
    let mut reader = env.proof.as_slice();
    let mut transcript = EvmTranscript::<G1Affine, NativeLoader, _, Vec<u8>>::new(&mut reader);
    verify_proof::<KZGCommitmentScheme<Bn256>, VerifierSHPLONK<'_, Bn256>, ChallengeEvm<G1Affine>, _, SingleStrategy<'_, Bn256>>(
        params.verifier_params(),
        vk,
        SingleStrategy::new(params),
        &[&[&instances]],
        &mut transcript,
    )
    .map_err(|e| Error::InvalidProof(format!("{e:?}")))?;
    if !reader.is_empty() {
        return Err(Error::InvalidProof(format!("{} unread trailing proof bytes", reader.len())));
    }
    Ok(instances)
}
