//! A customer's check of a batch key it did not make. The verifier of a batch key settles the
//! jobs of every customer who trusts it, so trusting one must not mean trusting its files: the
//! check regenerates the key's verifying key from the customer's own model directories and
//! trusted SRS, taking from the key only the circuit's shape (its columns and break points,
//! which change the layout, never what is checked), and the verifier is then generated from
//! the regenerated key and the customer's SRS, never from the key's own `params.srs`.

use halo2_base::gates::circuit::CircuitBuilderStage;
use halo2_proofs::halo2curves::bn256::{Bn256, G1Affine};
use halo2_proofs::plonk::{keygen_vk, VerifyingKey};
use halo2_proofs::poly::kzg::commitment::ParamsKZG;
use halo2_proofs::SerdeFormat;
use snark_verifier_sdk::halo2::aggregation::{AggregationCircuit, VerifierUniversality};
use snark_verifier_sdk::halo2::gen_dummy_snark_from_vk;
use snark_verifier_sdk::{CircuitExt, Snark, SHPLONK};
use zkinfer_prover::{Loaded, Srs};

use crate::error::{Error, Result};
use crate::key::{accumulator_indices, check_fan_in, check_srs, guarded, BatchKey, BatchRecord, Member};

/// What the check vouches for: the SRS and verifying key to generate the verifier from.
pub struct Checked {
    /// The customer's SRS at the key's k.
    pub params: ParamsKZG<Bn256>,
    /// The regenerated verifying key (equal to the key's).
    pub vk: VerifyingKey<G1Affine>,
    /// The public instances of the regenerated circuit (equal to the record's count).
    pub num_instances: usize,
}

/// Regenerates `key`'s verifying key from `members` (set-up model directories, in the key's
/// order) and `srs`, and checks that it is the key's. Minutes and gigabytes (halo2's
/// `keygen_vk` of each circuit of the key, a tree's leaf too), no proving key and no proof.
pub fn check_key(key: &BatchKey, members: &[&Loaded], srs: &Srs, progress: &mut dyn FnMut(&str)) -> Result<Checked> {
    let record = &key.record;
    check_fan_in(record)?;
    if members.len() != record.members.len() {
        return Err(Error::WrongBatchSize { expected: record.members.len(), got: members.len() });
    }
    for (index, (m, want)) in members.iter().zip(&record.members).enumerate() {
        let got = Member::of(m);
        if got != *want {
            return Err(Error::MemberMismatch { index, given: short(&got.model_hash), expected: short(&want.model_hash) });
        }
        check_srs(index, &m.params, &srs.params)?;
    }
    let dummies: Vec<Snark> = match (&key.leaf, record.fan_in) {
        (Some(leaf), Some(g)) => {
            progress(&format!("regenerating the leaf key's verifying key ({g} proof(s) per leaf)"));
            let leaf_checked = check_key(leaf, &members[..g], srs, progress)?;
            let dummy = gen_dummy_snark_from_vk::<SHPLONK>(
                &leaf_checked.params,
                &leaf_checked.vk,
                vec![leaf.record.num_instances()],
                accumulator_indices(),
            );
            vec![dummy; members.len() / g]
        }
        (None, None) => {
            members.iter().map(|m| gen_dummy_snark_from_vk::<SHPLONK>(&m.params, &m.vk, vec![m.model.num_instances()], None)).collect()
        }
        // A tree without its leaf key, or a leaf key without a tree.
        _ => return Err(Error::ForeignKey { dir: key.dir.display().to_string() }),
    };
    let params = srs.params_at(record.config.degree)?;
    progress(&format!("regenerating the verifying key (k = {})", record.config.degree));
    let (vk, num_instances) = regenerate(record, &params, dummies)?;
    let ours = vk.to_bytes(SerdeFormat::RawBytes);
    if ours != key.vk.to_bytes(SerdeFormat::RawBytes) || num_instances != record.num_instances() {
        return Err(Error::ForeignKey { dir: key.dir.display().to_string() });
    }
    Ok(Checked { params, vk, num_instances })
}

/// The aggregation circuit of `record`'s shape over `dummies`: its verifying key and its count
/// of public instances (the circuit's own, not the record's).
fn regenerate(record: &BatchRecord, params: &ParamsKZG<Bn256>, dummies: Vec<Snark>) -> Result<(VerifyingKey<G1Affine>, usize)> {
    let circuit = guarded("keygen", || {
        let mut c =
            AggregationCircuit::new::<SHPLONK>(CircuitBuilderStage::Keygen, record.config, params, dummies, VerifierUniversality::None);
        c.expose_previous_instances(record.fan_in.is_some());
        c
    })?;
    let num_instances = circuit.num_instance().iter().sum();
    let vk =
        guarded("keygen", || keygen_vk(params, &circuit))?.map_err(|e| Error::Aggregation { stage: "keygen", reason: format!("{e:?}") })?;
    Ok((vk, num_instances))
}

fn short(hex: &str) -> String {
    hex.chars().take(16).collect()
}
