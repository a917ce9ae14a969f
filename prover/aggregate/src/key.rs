//! The batch key: the aggregation circuit's keys for one list of member models, in order.
//!
//! The aggregation circuit is built with `VerifierUniversality::None`: each member's verifying
//! key is a constant of the circuit, so a batch key accepts proofs of exactly its members, in
//! order. A key with a fan-in is a tree of two levels: a leaf key folds each group of `fan_in`
//! model proofs into one proof (Poseidon transcript), and this key folds the leaf proofs, so
//! that N proofs never sit in one circuit (its memory grows with N).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use halo2_base::gates::circuit::CircuitBuilderStage;
use halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_proofs::plonk::{keygen_pk, keygen_vk, ProvingKey, VerifyingKey};
use halo2_proofs::poly::commitment::{Params, ParamsProver};
use halo2_proofs::poly::kzg::commitment::ParamsKZG;
use halo2_proofs::SerdeFormat;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use snark_verifier_sdk::halo2::aggregation::{AggregationCircuit, AggregationConfigParams, VerifierUniversality};
use snark_verifier_sdk::halo2::gen_dummy_snark_from_vk;
use snark_verifier_sdk::{CircuitExt, Snark, LIMBS, SHPLONK};
use zkinfer_prover::fs::{atomic_write, read};
use zkinfer_prover::{Loaded, Srs, Transcript};

use crate::error::{Error, Result};

/// Version of `batch.json`.
pub const BATCH_KEY_VERSION: u32 = 2;
/// Public instances of the accumulator, before the members' own: two G1 points, each
/// coordinate in `LIMBS` limbs of 88 bits.
pub const ACCUMULATOR_INSTANCES: usize = 4 * LIMBS;
/// Where a tree key keeps its leaf key.
const LEAF_DIR: &str = "leaf";

/// One model of a batch key, at its position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Hex model hash.
    pub model_hash: String,
    /// Hex SHA-256 of the model's verifying key.
    pub vk_sha256: String,
    /// The model circuit's k.
    pub k: u32,
    /// The model's public instances.
    pub num_instances: usize,
}

impl Member {
    /// The member a set-up model directory makes.
    pub fn of(loaded: &Loaded) -> Self {
        Member {
            model_hash: loaded.setup.model_hash.clone(),
            vk_sha256: loaded.setup.vk_sha256.clone(),
            k: loaded.setup.k,
            num_instances: loaded.model.num_instances(),
        }
    }
}

/// What a batch key directory records (`batch.json`), beside `pk.bin`, `vk.bin`, the
/// aggregation SRS `params.srs` and, for a tree, the leaf key in `leaf/`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BatchRecord {
    /// [`BATCH_KEY_VERSION`].
    pub version: u32,
    /// The member models, in the order their proofs are given (for a tree, all of them).
    pub members: Vec<Member>,
    /// `None`: this circuit verifies the model proofs. `Some(g)`: it verifies leaf proofs of
    /// `g` models each (the leaf key is in `leaf/`).
    pub fan_in: Option<usize>,
    /// The transcript of this key's proofs: EVM for the top (a Solidity verifier reads it),
    /// Poseidon for a leaf (the top circuit reads it).
    pub transcript: Transcript,
    /// The aggregation circuit's shape (k, columns, lookup bits), as halo2-base sized it.
    pub config: AggregationConfigParams,
    /// Where halo2-base broke its rows into columns at keygen; proving must use the same.
    pub break_points: Vec<Vec<usize>>,
    /// Hex SHA-256 of the aggregation SRS's source.
    pub srs_sha256: String,
    /// Whether that SRS is the insecure development one.
    pub insecure_dev_srs: bool,
    /// Hex SHA-256 of `params.srs`.
    pub params_sha256: String,
    /// Hex SHA-256 of `vk.bin`.
    pub vk_sha256: String,
}

impl BatchRecord {
    /// Public instances of an aggregated proof: the accumulator, then each member's.
    pub fn num_instances(&self) -> usize {
        ACCUMULATOR_INSTANCES + self.members.iter().map(|m| m.num_instances).sum::<usize>()
    }

    /// Where member `index`'s instances start among the aggregated proof's.
    pub fn member_offset(&self, index: usize) -> usize {
        ACCUMULATOR_INSTANCES + self.members[..index].iter().map(|m| m.num_instances).sum::<usize>()
    }
}

/// A batch key, loaded (proving keys are read on demand: they are large).
pub struct BatchKey {
    pub(crate) dir: PathBuf,
    /// What `batch.json` records.
    pub record: BatchRecord,
    /// The aggregation SRS, at the record's k.
    pub params: ParamsKZG<Bn256>,
    /// The aggregation circuit's verifying key.
    pub vk: VerifyingKey<G1Affine>,
    /// A tree's leaf key.
    pub leaf: Option<Box<BatchKey>>,
}

pub(crate) fn corrupt(what: &'static str, path: impl Into<String>, reason: impl ToString) -> Error {
    Error::Corrupt { what, path: path.into(), reason: reason.to_string() }
}

/// Runs snark-verifier or halo2-base code that panics where it meets what it does not expect,
/// turning the panic into an error.
pub(crate) fn guarded<T>(stage: &'static str, f: impl FnOnce() -> T) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        let reason = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panicked".into());
        Error::Aggregation { stage, reason }
    })
}

/// Checks that `inner` (a member's SRS, at its k) is a prefix of `outer` (the aggregation's):
/// the same τ, so the members' accumulators are decided by the aggregation's pairing.
pub(crate) fn check_srs(index: usize, inner: &ParamsKZG<Bn256>, outer: &ParamsKZG<Bn256>) -> Result<()> {
    let same =
        inner.k() <= outer.k() && inner.get_g().get(1) == outer.get_g().get(1) && inner.s_g2() == outer.s_g2() && inner.g2() == outer.g2();
    if same {
        Ok(())
    } else {
        Err(Error::SrsMismatch { index, reason: "the powers of τ differ".into() })
    }
}

pub(crate) fn hex_sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Checks a recorded tree's shape: `1 ≤ fan_in < members`, dividing them, every group the
/// same models in the same order (else the top circuit would fold fewer leaves than the record
/// has members, or a group of other models, and a verifier made for the record's instance count
/// would leave rows unconstrained).
pub(crate) fn check_fan_in(record: &BatchRecord) -> Result<()> {
    let Some(g) = record.fan_in else { return Ok(()) };
    let n = record.members.len();
    let bad = |reason: &str| Err(Error::BadFanIn { members: n, fan_in: g, reason: reason.into() });
    if g == 0 || g >= n || !n.is_multiple_of(g) {
        return bad("a tree's fan-in must be at least 1, below the number of proofs, and divide it");
    }
    if record.members.chunks(g).any(|c| c != &record.members[..g]) {
        return bad("every group must be of the same models in the same order");
    }
    Ok(())
}

/// The accumulator's positions among an aggregation circuit's instances.
pub(crate) fn accumulator_indices() -> Option<Vec<(usize, usize)>> {
    <AggregationCircuit as CircuitExt<Fr>>::accumulator_indices()
}

/// What a new key is made for: the SRS, the circuit's k, and the models in order.
pub struct KeySpec<'a> {
    /// The aggregation SRS (at least `k` and `top_k`; each member's SRS must be its prefix).
    pub srs: &'a Srs,
    /// The k of a tree's leaf circuits.
    pub k: u32,
    /// The k of the circuit whose proofs are settled on chain (the only one, without a tree).
    /// Its verifier's gas grows with its columns, which a larger k makes fewer.
    pub top_k: u32,
    /// The member models, in proof order.
    pub members: &'a [&'a Loaded],
    /// Fold at most this many proofs in one circuit: more make a tree of leaves of this many.
    pub fan_in: Option<usize>,
    /// Refuse, before its keygen, a circuit whose [`predicted_peak_gib`] exceeds this (GiB).
    pub max_memory_gib: Option<f64>,
}

/// The peak resident memory (GiB) of generating the keys of, and proving, an aggregation circuit
/// at `k` with `columns` advice columns (lookup ones included): `A + 2^(k−22)·(B + C·columns)`,
/// fitted to the runs in papers/benchmarks.md (k = 22 with 3, 6 and 10 columns, k = 23 with 2;
/// the 10-column run was killed at 23.1 GiB). The columns' polynomials and their extended cosets
/// scale with 2^k, the witness generation and loaded inner keys do not.
pub fn predicted_peak_gib(k: u32, columns: usize) -> f64 {
    let scale = 2f64.powi(k as i32 - 22);
    PEAK_FIT.0 + scale * (PEAK_FIT.1 + PEAK_FIT.2 * columns as f64)
}

/// `(A, B, C)` of [`predicted_peak_gib`].
const PEAK_FIT: (f64, f64, f64) = (1.8, 6.4, 1.47);

impl BatchKey {
    /// Makes the batch key of `spec` and writes it to `dir`. Minutes and gigabytes: each
    /// circuit is sized with placeholder proofs, then halo2 generates its keys. `progress` is
    /// told each step.
    pub fn create(dir: &Path, spec: &KeySpec<'_>, progress: &mut dyn FnMut(&str)) -> Result<BatchKey> {
        let members = spec.members;
        if members.is_empty() {
            return Err(Error::EmptyBatch);
        }
        for (i, m) in members.iter().enumerate() {
            check_srs(i, &m.params, &spec.srs.params)?;
        }
        let at = |k: u32| -> Result<ParamsKZG<Bn256>> { Ok(spec.srs.params_at(k)?) };
        let flat = |dir: &Path, group: &[&Loaded], k: u32, transcript, progress: &mut dyn FnMut(&str)| {
            let dummies =
                group.iter().map(|m| gen_dummy_snark_from_vk::<SHPLONK>(&m.params, &m.vk, vec![m.model.num_instances()], None)).collect();
            let record = group.iter().map(|m| Member::of(m)).collect();
            Self::make(
                dir,
                &at(k)?,
                Made { dummies, members: record, fan_in: None, transcript, leaf: None, max_memory_gib: spec.max_memory_gib },
                spec.srs,
                progress,
            )
        };
        let g = match spec.fan_in {
            Some(g) if g < members.len() => g,
            _ => return flat(dir, members, spec.top_k, Transcript::Evm, progress),
        };
        if g == 0 || !members.len().is_multiple_of(g) {
            return Err(Error::BadFanIn { members: members.len(), fan_in: g, reason: "it must divide the number of proofs".into() });
        }
        let group: Vec<Member> = members[..g].iter().map(|m| Member::of(m)).collect();
        if members.chunks(g).any(|c| c.iter().map(|m| Member::of(m)).collect::<Vec<_>>() != group) {
            return Err(Error::BadFanIn {
                members: members.len(),
                fan_in: g,
                reason: "every group must be of the same models in the same order".into(),
            });
        }
        progress(&format!("leaf key: {g} proof(s) per leaf"));
        let leaf = flat(&dir.join(LEAF_DIR), &members[..g], spec.k, Transcript::Poseidon, progress)?;
        progress(&format!("top key: {} leaf proofs", members.len() / g));
        let acc = accumulator_indices();
        let dummy = gen_dummy_snark_from_vk::<SHPLONK>(&leaf.params, &leaf.vk, vec![leaf.record.num_instances()], acc);
        let made = Made {
            dummies: vec![dummy; members.len() / g],
            members: members.iter().map(|m| Member::of(m)).collect(),
            fan_in: Some(g),
            transcript: Transcript::Evm,
            leaf: Some(Box::new(leaf)),
            max_memory_gib: spec.max_memory_gib,
        };
        Self::make(dir, &at(spec.top_k)?, made, spec.srs, progress)
    }

    /// Sizes the circuit on placeholder proofs, generates its keys and writes the directory.
    fn make(dir: &Path, params: &ParamsKZG<Bn256>, made: Made, srs: &Srs, progress: &mut dyn FnMut(&str)) -> Result<BatchKey> {
        let Made { dummies, members, fan_in, transcript, leaf, max_memory_gib } = made;
        let k = params.k();
        progress("sizing the aggregation circuit");
        let seed = AggregationConfigParams { degree: k, lookup_bits: k as usize - 1, ..Default::default() };
        let n = dummies.len();
        let mut circuit = guarded("sizing", || {
            let mut c = AggregationCircuit::new::<SHPLONK>(CircuitBuilderStage::Keygen, seed, params, dummies, VerifierUniversality::None);
            c.expose_previous_instances(fan_in.is_some());
            c
        })?;
        let config = guarded("sizing", || circuit.calculate_params(Some(10)))?;
        let columns = config.num_advice + config.num_lookup_advice;
        let predicted_gib = predicted_peak_gib(k, columns);
        if let Some(limit_gib) = max_memory_gib.filter(|&l| predicted_gib > l) {
            return Err(Error::NotEnoughMemory { members: n, k, columns, predicted_gib, limit_gib });
        }
        progress(&format!(
            "generating keys (k = {k}, {} advice, {} lookup and {} fixed columns; about {predicted_gib:.0} GiB at the peak)",
            config.num_advice, config.num_lookup_advice, config.num_fixed
        ));
        let fits = |e: halo2_proofs::plonk::Error| Error::DoesNotFit { members: n, k, reason: format!("{e:?}") };
        let vk = guarded("keygen", || keygen_vk(params, &circuit))?.map_err(fits)?;
        let pk = guarded("keygen", || keygen_pk(params, vk.clone(), &circuit))?.map_err(fits)?;
        let break_points = circuit.break_points();
        drop(circuit);
        write_key(dir, params, &vk, &pk)?;
        let record = BatchRecord {
            version: BATCH_KEY_VERSION,
            members,
            fan_in,
            transcript,
            config,
            break_points,
            srs_sha256: srs.sha256_hex(),
            insecure_dev_srs: srs.insecure,
            params_sha256: hex_sha(&params_bytes(params)?),
            vk_sha256: hex_sha(&vk.to_bytes(SerdeFormat::RawBytes)),
        };
        let json = serde_json::to_vec_pretty(&record).map_err(|e| corrupt("batch record", "<memory>", e))?;
        // The record last: a key directory without it is an unfinished one.
        atomic_write(&dir.join("batch.json"), &json)?;
        Ok(BatchKey { dir: dir.to_path_buf(), record, params: params.clone(), vk, leaf })
    }

    /// Opens a batch key directory (and its leaf key), checking that its files are the ones its
    /// record names.
    pub fn open(dir: &Path) -> Result<BatchKey> {
        let path = dir.join("batch.json");
        if !path.exists() {
            return Err(corrupt("batch key", dir.display().to_string(), "no batch.json: make one with `zkinfer aggregate --keys DIR`"));
        }
        let record: BatchRecord =
            serde_json::from_slice(&read(&path)?).map_err(|e| corrupt("batch record", path.display().to_string(), e))?;
        if record.version != BATCH_KEY_VERSION {
            return Err(corrupt("batch record", path.display().to_string(), "another version: make the key again"));
        }
        let checked = |name: &str, want: &str| -> Result<Vec<u8>> {
            let p = dir.join(name);
            let bytes = read(&p)?;
            if hex_sha(&bytes) != want {
                return Err(corrupt("batch key file", p.display().to_string(), "hash differs from batch.json: make the key again"));
            }
            Ok(bytes)
        };
        checked("params.srs", &record.params_sha256)?;
        let params = Srs::read_params(&dir.join("params.srs"))?;
        if params.k() != record.config.degree {
            return Err(corrupt("aggregation SRS", dir.join("params.srs").display().to_string(), "its k is not the record's"));
        }
        let vk_bytes = checked("vk.bin", &record.vk_sha256)?;
        let vk = VerifyingKey::from_bytes::<AggregationCircuit>(&vk_bytes, SerdeFormat::RawBytes, record.config)
            .map_err(|e| corrupt("verifying key", dir.join("vk.bin").display().to_string(), e))?;
        check_fan_in(&record)?;
        let leaf = match record.fan_in {
            None => None,
            Some(g) => {
                let leaf = BatchKey::open(&dir.join(LEAF_DIR))?;
                let expected = record.members.get(..g).unwrap_or_default();
                if leaf.record.members != expected || leaf.record.transcript != Transcript::Poseidon || leaf.record.fan_in.is_some() {
                    return Err(corrupt(
                        "batch key",
                        dir.join(LEAF_DIR).display().to_string(),
                        "its leaf key is not for this key's groups",
                    ));
                }
                Some(Box::new(leaf))
            }
        };
        Ok(BatchKey { dir: dir.to_path_buf(), record, params, vk, leaf })
    }

    /// Reads the proving key.
    pub fn load_pk(&self) -> Result<ProvingKey<G1Affine>> {
        let p = self.dir.join("pk.bin");
        ProvingKey::from_bytes::<AggregationCircuit>(&read(&p)?, SerdeFormat::RawBytes, self.record.config)
            .map_err(|e| corrupt("proving key", p.display().to_string(), e))
    }

    /// SHA-256 of the verifying key (what a batch proof names).
    pub fn vk_hash(&self) -> Result<[u8; 32]> {
        hex::decode(&self.record.vk_sha256)
            .ok()
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
            .ok_or_else(|| corrupt("batch record", self.dir.join("batch.json").display().to_string(), "bad vk hash"))
    }

    /// Whether this key is the one for `members` in this order (with this fan-in), with a
    /// compatible SRS.
    pub fn accepts(&self, members: &[&Loaded], fan_in: Option<usize>) -> Result<bool> {
        for (i, m) in members.iter().enumerate() {
            check_srs(i, &m.params, &self.params)?;
        }
        let tree = fan_in.filter(|&g| g < members.len());
        Ok(self.record.fan_in == tree && self.record.members == members.iter().map(|m| Member::of(m)).collect::<Vec<_>>())
    }
}

/// What [`BatchKey::make`] makes a key of.
struct Made {
    dummies: Vec<Snark>,
    members: Vec<Member>,
    fan_in: Option<usize>,
    transcript: Transcript,
    leaf: Option<Box<BatchKey>>,
    max_memory_gib: Option<f64>,
}

fn params_bytes(params: &ParamsKZG<Bn256>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    params.write(&mut out).map_err(|e| corrupt("aggregation SRS", "<memory>", e))?;
    Ok(out)
}

fn write_key(dir: &Path, params: &ParamsKZG<Bn256>, vk: &VerifyingKey<G1Affine>, pk: &ProvingKey<G1Affine>) -> Result<()> {
    atomic_write(&dir.join("params.srs"), &params_bytes(params)?)?;
    atomic_write(&dir.join("pk.bin"), &pk.to_bytes(SerdeFormat::RawBytes))?;
    atomic_write(&dir.join("vk.bin"), &vk.to_bytes(SerdeFormat::RawBytes))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn a_recorded_tree_must_fold_every_member_in_equal_groups() {
        let m = |h: &str| Member { model_hash: h.into(), vk_sha256: h.into(), k: 10, num_instances: 5 };
        let record = |members: Vec<Member>, fan_in: Option<usize>| BatchRecord {
            version: BATCH_KEY_VERSION,
            members,
            fan_in,
            transcript: Transcript::Evm,
            config: AggregationConfigParams::default(),
            break_points: vec![],
            srs_sha256: String::new(),
            insecure_dev_srs: true,
            params_sha256: String::new(),
            vk_sha256: String::new(),
        };
        let (a, b) = (m("a"), m("b"));
        assert!(check_fan_in(&record(vec![a.clone(); 3], None)).is_ok());
        assert!(check_fan_in(&record(vec![a.clone(); 4], Some(2))).is_ok());
        assert!(check_fan_in(&record(vec![a.clone(), b.clone(), a.clone(), b.clone()], Some(2))).is_ok());
        for (members, g) in [
            (vec![a.clone(); 3], 2),                               // a leaf would fold 2 of 3: one job unconstrained
            (vec![a.clone(); 2], 0),                               // no groups
            (vec![a.clone(); 2], 2),                               // not a tree
            (vec![a.clone(); 2], 3),                               // more than the members
            (vec![a.clone(), b.clone()], 1),                       // B's job checked as A's
            (vec![a.clone(), b.clone(), b.clone(), a.clone()], 2), // groups differ
        ] {
            assert!(matches!(check_fan_in(&record(members, Some(g))), Err(Error::BadFanIn { .. })), "fan-in {g} passed");
        }
    }

    #[test]
    fn the_memory_prediction_fits_the_measured_runs() {
        // (k, advice + lookup columns, peak GiB) of papers/benchmarks.md's MLP runs.
        for (k, columns, measured) in [(22, 3, 12.6), (22, 6, 17.0), (23, 2, 20.5)] {
            let p = predicted_peak_gib(k, columns);
            assert!((p - measured).abs() < 0.5, "k = {k}, {columns} columns: predicted {p:.1} GiB, measured {measured}");
        }
        // N = 8's top circuit (9 advice, at least 1 lookup) was killed at 23.1 GiB.
        assert!(predicted_peak_gib(22, 10) > 22.5);
        assert!(predicted_peak_gib(20, 18) < predicted_peak_gib(22, 18));
    }

    #[test]
    fn a_member_srs_must_be_a_prefix_of_the_aggregations() {
        let big = Srs::dev(8).unwrap();
        let small = Srs::dev(5).unwrap();
        assert!(check_srs(0, &small.params, &big.params).is_ok());
        let other = ParamsKZG::<Bn256>::setup(5, rand_chacha::ChaCha20Rng::seed_from_u64(1));
        assert!(matches!(check_srs(3, &other, &big.params), Err(Error::SrsMismatch { index: 3, .. })));
        assert!(matches!(check_srs(0, &big.params, &small.params), Err(Error::SrsMismatch { .. })));
    }
}
