//! Folding proofs with a batch key, the aggregated proof file, and its verification.

use halo2_base::gates::circuit::CircuitBuilderStage;
use halo2_proofs::halo2curves::bn256::{Bn256, Fq, Fr, G1Affine};
use halo2_proofs::halo2curves::ff::PrimeField;
use halo2_proofs::halo2curves::pairing::Engine;
use halo2_proofs::halo2curves::CurveAffine;
use halo2_proofs::plonk::{create_proof, verify_proof, ProvingKey};
use halo2_proofs::poly::commitment::ParamsProver;
use halo2_proofs::poly::kzg::commitment::{KZGCommitmentScheme, ParamsKZG};
use halo2_proofs::poly::kzg::multiopen::{ProverSHPLONK, VerifierSHPLONK};
use halo2_proofs::poly::kzg::strategy::SingleStrategy;
use halo2_proofs::transcript::TranscriptWriterBuffer;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use snark_verifier::system::halo2::transcript::evm::{ChallengeEvm, EvmTranscript};
use snark_verifier::system::halo2::{compile, Config};
use snark_verifier::util::arithmetic::fe_from_limbs;
use snark_verifier_sdk::halo2::aggregation::{AggregationCircuit, VerifierUniversality};
use snark_verifier_sdk::halo2::{PoseidonTranscript, POSEIDON_SPEC};
use snark_verifier_sdk::{CircuitExt, NativeLoader, Snark, BITS, LIMBS, SHPLONK};
use zkinfer_prover::{Loaded, ProofEnvelope, Transcript};

use crate::error::{Error, Result};
use crate::inner;
use crate::key::{accumulator_indices, check_srs, corrupt, guarded, BatchKey, Member, ACCUMULATOR_INSTANCES};

/// First bytes of an aggregated proof file.
pub const BATCH_PROOF_MAGIC: [u8; 4] = *b"zkib";
/// Version of the aggregated proof file.
pub const BATCH_PROOF_VERSION: u32 = 1;

/// An aggregated proof file: postcard-encoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchProof {
    /// [`BATCH_PROOF_MAGIC`].
    pub magic: [u8; 4],
    /// [`BATCH_PROOF_VERSION`].
    pub format_version: u32,
    /// SHA-256 of the batch key's verifying key.
    pub vk_hash: [u8; 32],
    /// The transcript (EVM for a top key's proofs).
    pub transcript: Transcript,
    /// Public instances, little-endian: the accumulator, then each member's instances.
    pub instances: Vec<[u8; 32]>,
    /// The SHPLONK proof of the aggregation circuit.
    pub proof: Vec<u8>,
}

impl BatchProof {
    /// Encodes with postcard.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        postcard::to_stdvec(self).map_err(|e| corrupt("aggregated proof", "<memory>", e))
    }

    /// Decodes, checking the magic, the version and that nothing trails.
    pub fn from_bytes(bytes: &[u8], path: &str) -> Result<Self> {
        let (p, rest): (BatchProof, &[u8]) = postcard::take_from_bytes(bytes).map_err(|e| corrupt("aggregated proof", path, e))?;
        if p.magic != BATCH_PROOF_MAGIC || p.format_version != BATCH_PROOF_VERSION {
            return Err(corrupt("aggregated proof", path, format!("magic {:?} version {}", p.magic, p.format_version)));
        }
        if !rest.is_empty() {
            return Err(corrupt("aggregated proof", path, format!("{} trailing bytes", rest.len())));
        }
        Ok(p)
    }

    /// Whether `bytes` start like an aggregated proof file (not a single proof's).
    pub fn sniff(bytes: &[u8]) -> bool {
        bytes.starts_with(&BATCH_PROOF_MAGIC)
    }

    /// The instances as field elements; a non-canonical one makes the proof invalid.
    pub fn instance_values(&self) -> Result<Vec<Fr>> {
        self.instances
            .iter()
            .map(|b| Option::from(Fr::from_repr(*b)).ok_or_else(|| Error::InvalidBatch("non-canonical public instance".into())))
            .collect()
    }
}

/// One proof to fold, with the model directory it is for.
pub struct InnerProof<'a> {
    /// The model, loaded.
    pub loaded: &'a Loaded,
    /// The proof (made with `inner::prove`).
    pub envelope: &'a ProofEnvelope,
    /// Where it was read from, for errors.
    pub path: String,
}

/// Verifies every inner proof against its own model (seconds each), naming the first invalid
/// one; returns their instances.
pub fn check_inner(proofs: &[InnerProof<'_>]) -> Result<Vec<Vec<Fr>>> {
    if proofs.is_empty() {
        return Err(Error::EmptyBatch);
    }
    proofs
        .iter()
        .enumerate()
        .map(|(index, p)| {
            inner::verify(&p.loaded.params, &p.loaded.vk, p.envelope, p.loaded.bindings, p.loaded.model.num_instances())
                .map_err(|e| Error::InnerProofInvalid { index, path: p.path.clone(), reason: e.to_string() })
        })
        .collect()
}

fn short(hex: &str) -> String {
    hex.chars().take(16).collect()
}

/// Folds `proofs` into one proof with `key` (a tree key folds each group into a leaf proof,
/// then the leaf proofs). Every inner proof is verified first: an invalid one is named and
/// nothing is proven. Each proof made is verified before it is used or returned.
pub fn aggregate(key: &BatchKey, proofs: &[InnerProof<'_>], progress: &mut dyn FnMut(&str)) -> Result<BatchProof> {
    let record = &key.record;
    if proofs.is_empty() {
        return Err(Error::EmptyBatch);
    }
    if proofs.len() != record.members.len() {
        return Err(Error::WrongBatchSize { expected: record.members.len(), got: proofs.len() });
    }
    for (index, (p, member)) in proofs.iter().zip(&record.members).enumerate() {
        if Member::of(p.loaded) != *member || hex::encode(p.envelope.model_hash) != member.model_hash {
            return Err(Error::WrongMember {
                index,
                proof: short(&hex::encode(p.envelope.model_hash)),
                expected: short(&member.model_hash),
            });
        }
        check_srs(index, &p.loaded.params, &key.params)?;
    }
    let snarks: Vec<Snark> = check_inner(proofs)?
        .into_iter()
        .zip(proofs)
        .map(|(instances, p)| inner::snark_unchecked(&p.loaded.params, &p.loaded.vk, instances, p.envelope.proof.clone()))
        .collect();
    let (Some(leaf), Some(g)) = (&key.leaf, record.fan_in) else {
        return prove_level(key, snarks, progress);
    };
    let groups = snarks.len() / g;
    let mut leaves = Vec::with_capacity(groups);
    let mut rest = snarks.into_iter();
    for i in 0..groups {
        progress(&format!("leaf {} of {groups}", i + 1));
        let proof = prove_level(leaf, rest.by_ref().take(g).collect(), progress)?;
        let protocol = compile(
            &leaf.params,
            &leaf.vk,
            Config::kzg().with_num_instance(vec![leaf.record.num_instances()]).with_accumulator_indices(accumulator_indices()),
        );
        leaves.push(Snark::new(protocol, vec![proof.instance_values()?], proof.proof));
    }
    progress(&format!("top: {groups} leaf proofs"));
    prove_level(key, leaves, progress)
}

/// Proves one aggregation circuit of `key` over `snarks` (verified proofs of its members) with
/// the key's transcript, and verifies the result.
fn prove_level(key: &BatchKey, snarks: Vec<Snark>, progress: &mut dyn FnMut(&str)) -> Result<BatchProof> {
    let record = &key.record;
    progress("loading the proving key");
    let pk = key.load_pk()?;
    progress(&format!("folding {} proof(s) (k = {})", snarks.len(), record.config.degree));
    let circuit = guarded("witness", || {
        let mut c =
            AggregationCircuit::new::<SHPLONK>(CircuitBuilderStage::Prover, record.config, &key.params, snarks, VerifierUniversality::None)
                .use_break_points(record.break_points.clone());
        c.expose_previous_instances(record.fan_in.is_some());
        c
    })?;
    let instances = circuit.instances();
    if instances.len() != 1 || instances[0].len() != record.num_instances() {
        let got = instances.first().map_or(0, Vec::len);
        return Err(Error::Aggregation {
            stage: "witness",
            reason: format!("{got} public instances, the key has {}", record.num_instances()),
        });
    }
    progress("proving");
    let proof = match record.transcript {
        Transcript::Evm => {
            let mut t = EvmTranscript::<G1Affine, NativeLoader, Vec<u8>, Vec<u8>>::init(Vec::new());
            prove_with(key, &pk, circuit, &instances[0], &mut t)?;
            t.finalize()
        }
        Transcript::Poseidon => {
            let mut t = PoseidonTranscript::<NativeLoader, Vec<u8>>::from_spec(Vec::new(), POSEIDON_SPEC.clone());
            prove_with(key, &pk, circuit, &instances[0], &mut t)?;
            t.finalize()
        }
    };
    drop(pk);
    let batch = BatchProof {
        magic: BATCH_PROOF_MAGIC,
        format_version: BATCH_PROOF_VERSION,
        vk_hash: key.vk_hash()?,
        transcript: record.transcript,
        instances: instances[0].iter().map(|f| f.to_repr()).collect(),
        proof,
    };
    progress("verifying the aggregated proof");
    verify(key, &batch)?;
    Ok(batch)
}

fn prove_with<E, T>(
    key: &BatchKey,
    pk: &ProvingKey<G1Affine>,
    circuit: AggregationCircuit,
    instances: &[Fr],
    transcript: &mut T,
) -> Result<()>
where
    E: halo2_proofs::transcript::EncodedChallenge<G1Affine>,
    T: halo2_proofs::transcript::TranscriptWrite<G1Affine, E>,
{
    guarded("prove", || {
        create_proof::<KZGCommitmentScheme<Bn256>, ProverSHPLONK<'_, Bn256>, E, _, T, _>(
            &key.params,
            pk,
            &[circuit],
            &[&[instances]],
            OsRng,
            transcript,
        )
    })?
    .map_err(|e| Error::Aggregation { stage: "prove", reason: format!("{e:?}") })
}

/// Verifies an aggregated proof against its batch key: the aggregation circuit's proof, then the
/// accumulator's pairing, which stands for every inner proof. Returns the instances.
pub fn verify(key: &BatchKey, batch: &BatchProof) -> Result<Vec<Fr>> {
    if batch.vk_hash != key.vk_hash()? {
        return Err(Error::InvalidBatch(format!(
            "made with batch key {}, not this one ({})",
            short(&hex::encode(batch.vk_hash)),
            short(&key.record.vk_sha256)
        )));
    }
    if batch.transcript != key.record.transcript {
        return Err(Error::InvalidBatch(format!("a {} proof; this key's are {}", batch.transcript, key.record.transcript)));
    }
    if batch.instances.len() != key.record.num_instances() {
        return Err(Error::InvalidBatch(format!(
            "{} public instances, the batch key has {}",
            batch.instances.len(),
            key.record.num_instances()
        )));
    }
    let instances = batch.instance_values()?;
    let mut reader = batch.proof.as_slice();
    let checked = match batch.transcript {
        Transcript::Evm => {
            let mut t = EvmTranscript::<G1Affine, NativeLoader, _, Vec<u8>>::new(&mut reader);
            verify_with::<ChallengeEvm<G1Affine>, _>(key, &instances, &mut t)
        }
        Transcript::Poseidon => {
            let mut t = PoseidonTranscript::<NativeLoader, _>::from_spec(&mut reader, POSEIDON_SPEC.clone());
            verify_with(key, &instances, &mut t)
        }
    };
    checked?;
    if !reader.is_empty() {
        return Err(Error::InvalidBatch(format!("{} unread trailing proof bytes", reader.len())));
    }
    decide(&key.params, &instances[..ACCUMULATOR_INSTANCES])?;
    Ok(instances)
}

fn verify_with<E, T>(key: &BatchKey, instances: &[Fr], transcript: &mut T) -> Result<()>
where
    E: halo2_proofs::transcript::EncodedChallenge<G1Affine>,
    T: halo2_proofs::transcript::TranscriptRead<G1Affine, E>,
{
    verify_proof::<KZGCommitmentScheme<Bn256>, VerifierSHPLONK<'_, Bn256>, E, T, SingleStrategy<'_, Bn256>>(
        key.params.verifier_params(),
        &key.vk,
        SingleStrategy::new(&key.params),
        &[&[instances]],
        transcript,
    )
    .map_err(|e| Error::InvalidBatch(format!("{e:?}")))
}

/// The KZG accumulator's final check, e(lhs, g₂) = e(rhs, s·g₂), from its limbs.
fn decide(params: &ParamsKZG<Bn256>, limbs: &[Fr]) -> Result<()> {
    let point = |i: usize| -> Result<G1Affine> {
        let coordinate = |j: usize| -> Fq {
            let l: [Fr; LIMBS] = std::array::from_fn(|n| limbs[(2 * i + j) * LIMBS + n]);
            fe_from_limbs::<Fr, Fq, LIMBS, BITS>(l)
        };
        Option::from(G1Affine::from_xy(coordinate(0), coordinate(1)))
            .ok_or_else(|| Error::InvalidBatch("the accumulator is not on the curve".into()))
    };
    let (lhs, rhs) = (point(0)?, point(1)?);
    if Bn256::pairing(&lhs, &params.g2()) == Bn256::pairing(&rhs, &params.s_g2()) {
        Ok(())
    } else {
        Err(Error::InvalidBatch("the accumulator's pairing check fails: an inner proof is invalid".into()))
    }
}

#[cfg(test)]
mod tests {
    use halo2_proofs::halo2curves::bn256::Fq;
    use snark_verifier::util::arithmetic::fe_to_limbs;
    use zkinfer_prover::Srs;

    use super::*;

    fn limbs(lhs: G1Affine, rhs: G1Affine) -> Vec<Fr> {
        [lhs.x, lhs.y, rhs.x, rhs.y].into_iter().flat_map(|c: Fq| fe_to_limbs::<Fq, Fr, LIMBS, BITS>(c)).collect()
    }

    #[test]
    fn the_accumulator_check_accepts_exactly_lhs_equal_to_tau_times_rhs() {
        let srs = Srs::dev(4).unwrap();
        let g = srs.params.get_g();
        // lhs = τ·G and rhs = G: e(τG, h) = e(G, τh).
        assert!(decide(&srs.params, &limbs(g[1], g[0])).is_ok());
        assert!(matches!(decide(&srs.params, &limbs(g[0], g[1])), Err(Error::InvalidBatch(_))));
        assert!(matches!(decide(&srs.params, &limbs(g[2], g[0])), Err(Error::InvalidBatch(_))));
        let mut off_curve = limbs(g[1], g[0]);
        off_curve[0] += Fr::one();
        assert!(matches!(decide(&srs.params, &off_curve), Err(Error::InvalidBatch(_))));
    }

    #[test]
    fn a_batch_file_round_trips_and_refuses_another_magic_version_or_trailing_bytes() {
        let p = BatchProof {
            magic: BATCH_PROOF_MAGIC,
            format_version: BATCH_PROOF_VERSION,
            vk_hash: [3; 32],
            transcript: Transcript::Evm,
            instances: vec![[1; 32], [2; 32]],
            proof: vec![9; 40],
        };
        let bytes = p.to_bytes().unwrap();
        assert!(BatchProof::sniff(&bytes));
        assert_eq!(BatchProof::from_bytes(&bytes, "p").unwrap(), p);
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(BatchProof::from_bytes(&long, "p"), Err(Error::Corrupt { .. })));
        let other = BatchProof { format_version: 99, ..p.clone() }.to_bytes().unwrap();
        assert!(matches!(BatchProof::from_bytes(&other, "p"), Err(Error::Corrupt { .. })));
        assert!(!BatchProof::sniff(b"zkip"));
        assert!(matches!(BatchProof { instances: vec![[0xff; 32]], ..p }.instance_values(), Err(Error::InvalidBatch(_))));
    }
}
