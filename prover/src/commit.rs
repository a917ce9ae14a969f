//! Keygen and proving with our MSM backends: KZG params whose commitments go through
//! [`crate::msm`].
//!
//! halo2's prover is generic over the commitment scheme, and calls `commit_lagrange` and
//! `commit` on the scheme's params for every commitment it writes: advice, lookups,
//! permutation and quotient. [`CommitKzg`] is the KZG scheme on BN254 with [`CommitParams`] as
//! its prover params, which wrap halo2's `ParamsKZG` and compute those MSMs with a chosen
//! backend ([`CommitMsm`]); keygen's fixed-column commitments go the same way. The group
//! elements are the same whichever backend computes them, so the transcript is what halo2's own
//! scheme writes for the same randomness, and the verifier is halo2's unchanged.
//!
//! Two runs never write the same proof bytes, even with a seeded RNG: halo2-axiom draws the
//! vanishing argument's random polynomial from `thread_rng`. So equality is checked per
//! commitment instead: [`CommitParams::cross_checked`] recomputes every commitment the backend
//! makes with halo2's MSM, inside a real proof, and counts any difference ([`CrossCheck`];
//! `prover/tests/commit.rs` runs it for every backend).
//!
//! One part still uses halo2's own MSM: the SHPLONK opening ([`CommitShplonk`] hands the queries
//! to halo2's `ProverSHPLONK`, whose two commitments call `best_multiexp` on `ParamsKZG`
//! directly). In the example MLP that is 2 of its 37 commitments.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine, G1};
use halo2_proofs::poly::commitment::{Blind, CommitmentScheme, Params, ParamsProver, Prover};
use halo2_proofs::poly::kzg::commitment::{KZGCommitmentScheme, ParamsKZG};
use halo2_proofs::poly::kzg::msm::MSMKZG;
use halo2_proofs::poly::kzg::multiopen::ProverSHPLONK;
use halo2_proofs::poly::{Coeff, LagrangeCoeff, Polynomial, ProverQuery};
use halo2_proofs::transcript::{EncodedChallenge, TranscriptWrite};
use halo2_proofs::{SerdeCurveAffine, SerdeFormat};
use rand::RngCore;

use crate::error::{Error, Result};
use crate::msm::{Backend, MsmBackend, PrecomputedBases};

/// First bytes of a tables file.
const TABLES_MAGIC: [u8; 4] = *b"zkmt";
/// Version of the tables file.
const TABLES_VERSION: u32 = 1;

/// How the commitments of keygen and proving are computed.
#[derive(Clone)]
pub enum CommitMsm {
    /// halo2's own `best_multiexp`: what `ParamsKZG` does.
    Halo2,
    /// A backend over the SRS points, passed as bases on every call.
    Backend(Arc<dyn MsmBackend>),
    /// Fixed-base tables of this SRS ([`SrsTables`]): the fastest on the CPU.
    Precomputed(Arc<SrsTables>),
}

impl CommitMsm {
    /// The backend's name.
    pub fn name(&self) -> &'static str {
        match self {
            CommitMsm::Halo2 => "halo2",
            CommitMsm::Backend(b) => b.name(),
            CommitMsm::Precomputed(_) => "precomputed",
        }
    }
}

/// Which MSM the command line asks for: `precomputed` or a backend of [`Backend`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsmChoice {
    /// Fixed-base tables of the SRS, built at setup and cached beside it.
    Precomputed,
    /// A backend by name, over the SRS points.
    Backend(Backend),
}

impl MsmChoice {
    /// Every name: `precomputed`, then the backends.
    pub const NAMES: &'static str = "precomputed, halo2curves, arkworks, pippenger, cuda";

    /// Parses a name.
    pub fn from_name(name: &str) -> Result<Self> {
        if name == "precomputed" {
            return Ok(MsmChoice::Precomputed);
        }
        Backend::from_name(name).map(MsmChoice::Backend).map_err(|_| Error::UnknownMsmBackend { name: name.to_owned(), known: Self::NAMES })
    }
}

impl std::str::FromStr for MsmChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        MsmChoice::from_name(s)
    }
}

/// The fixed-base tables of one SRS: one for the monomial points (`commit`) and one for the
/// Lagrange points (`commit_lagrange`).
#[derive(Debug)]
pub struct SrsTables {
    monomial: PrecomputedBases,
    lagrange: PrecomputedBases,
}

impl SrsTables {
    /// Builds both tables (about 0.5 s each at k = 14 on 2 cores, 2 s at k = 16).
    pub fn build(params: &ParamsKZG<Bn256>) -> Result<Self> {
        Ok(SrsTables { monomial: PrecomputedBases::new(params.get_g())?, lagrange: PrecomputedBases::new(&lagrange_bases(params)?)? })
    }

    /// Bytes the two tables hold.
    pub fn memory_bytes(&self) -> usize {
        self.monomial.memory_bytes() + self.lagrange.memory_bytes()
    }

    /// The tables file: magic, version, then both tables ([`PrecomputedBases::write_raw`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.memory_bytes() + 32);
        out.extend_from_slice(&TABLES_MAGIC);
        out.extend_from_slice(&TABLES_VERSION.to_le_bytes());
        self.monomial.write_raw(&mut out);
        self.lagrange.write_raw(&mut out);
        out
    }

    /// Reads a tables file made for `params`, with the checks of [`PrecomputedBases::read_raw`].
    pub fn from_bytes(bytes: &[u8], params: &ParamsKZG<Bn256>) -> Result<Self> {
        let rest = bytes
            .strip_prefix(&TABLES_MAGIC)
            .and_then(|r| r.strip_prefix(&TABLES_VERSION.to_le_bytes()))
            .ok_or_else(|| Error::MsmTableCorrupt { reason: "not a tables file of this version".into() })?;
        let mut rest = rest;
        let monomial = PrecomputedBases::read_raw(&mut rest, params.get_g())?;
        let lagrange = PrecomputedBases::read_raw(&mut rest, &lagrange_bases(params)?)?;
        if !rest.is_empty() {
            return Err(Error::MsmTableCorrupt { reason: format!("{} trailing bytes", rest.len()) });
        }
        Ok(SrsTables { monomial, lagrange })
    }
}

/// The SRS in Lagrange form, which `ParamsKZG` keeps private: read back from its own raw
/// serialisation (k, the monomial points, then the Lagrange points, 64 bytes each).
pub fn lagrange_bases(params: &ParamsKZG<Bn256>) -> Result<Vec<G1Affine>> {
    let mut bytes = Vec::new();
    params.write_custom(&mut bytes, SerdeFormat::RawBytesUnchecked).map_err(|e| Error::MsmTableCorrupt { reason: e.to_string() })?;
    let n = params.n() as usize;
    let mut reader = bytes.get(4 + 64 * n..).ok_or_else(|| Error::MsmTableCorrupt { reason: "short params encoding".into() })?;
    (0..n)
        .map(|_| G1Affine::read(&mut reader, SerdeFormat::RawBytesUnchecked).map_err(|e| Error::MsmTableCorrupt { reason: e.to_string() }))
        .collect()
}

/// What a cross-checked [`CommitParams`] saw: how many commitments were asked for, how many
/// the backend computed (the rest fell back to halo2's MSM), and how many of those differed
/// from halo2's.
#[derive(Debug, Default)]
pub struct CrossCheck {
    requested: AtomicUsize,
    computed: AtomicUsize,
    mismatches: AtomicUsize,
}

impl CrossCheck {
    /// Commitments asked for (`commit` and `commit_lagrange` calls).
    pub fn requested(&self) -> usize {
        self.requested.load(Ordering::SeqCst)
    }

    /// Commitments the chosen backend computed.
    pub fn computed(&self) -> usize {
        self.computed.load(Ordering::SeqCst)
    }

    /// Commitments where the backend's group element was not halo2's.
    pub fn mismatches(&self) -> usize {
        self.mismatches.load(Ordering::SeqCst)
    }
}

/// KZG prover params on BN254 that commit with a chosen MSM ([`CommitMsm`]).
#[derive(Clone)]
pub struct CommitParams {
    kzg: Arc<ParamsKZG<Bn256>>,
    msm: CommitMsm,
    /// The Lagrange points, for a [`CommitMsm::Backend`] (which is passed its bases).
    lagrange: Option<Arc<Vec<G1Affine>>>,
    /// Set by [`CommitParams::cross_checked`].
    check: Option<Arc<CrossCheck>>,
}

impl fmt::Debug for CommitParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommitParams").field("k", &self.kzg.k()).field("msm", &self.msm.name()).finish()
    }
}

impl CommitParams {
    /// Params that commit with halo2's own MSM.
    pub fn halo2(kzg: ParamsKZG<Bn256>) -> Self {
        CommitParams { kzg: Arc::new(kzg), msm: CommitMsm::Halo2, lagrange: None, check: None }
    }

    /// Params that commit with `msm`. Tables must be those of `kzg` (their sizes are checked
    /// here; [`SrsTables::from_bytes`] checks their points).
    pub fn new(kzg: ParamsKZG<Bn256>, msm: CommitMsm) -> Result<Self> {
        let mut lagrange = None;
        match &msm {
            CommitMsm::Precomputed(t) => {
                let n = kzg.n() as usize;
                if t.monomial.len() != n || t.lagrange.len() != n {
                    return Err(Error::MsmBasesChanged { precomputed: t.monomial.len() });
                }
            }
            CommitMsm::Backend(_) => lagrange = Some(Arc::new(lagrange_bases(&kzg)?)),
            CommitMsm::Halo2 => {}
        }
        Ok(CommitParams { kzg: Arc::new(kzg), msm, lagrange, check: None })
    }

    /// These params, recomputing every commitment with halo2's MSM as well and counting
    /// differences in the returned [`CrossCheck`]: about twice the MSM time, for testing a
    /// backend (a GPU's, say) inside real proofs. The backend's result is still the one used.
    pub fn cross_checked(mut self) -> (Self, Arc<CrossCheck>) {
        let check = Arc::new(CrossCheck::default());
        self.check = Some(check.clone());
        (self, check)
    }

    /// The KZG params (what verification uses).
    pub fn kzg(&self) -> &ParamsKZG<Bn256> {
        &self.kzg
    }

    /// The MSM in use.
    pub fn msm(&self) -> &CommitMsm {
        &self.msm
    }

    /// `Σ scalars[i]·bases[i]` over the first `scalars.len()` SRS points, monomial or Lagrange;
    /// `None` for halo2's own MSM, or when the backend fails (a GPU that fails mid-run): the
    /// caller then uses halo2's, which gives the same group element.
    fn try_commit(&self, scalars: &[Fr], lagrange: bool) -> Option<G1> {
        let result = match &self.msm {
            CommitMsm::Halo2 => return None,
            CommitMsm::Precomputed(t) => if lagrange { &t.lagrange } else { &t.monomial }.msm(scalars),
            CommitMsm::Backend(b) => {
                let bases: &[G1Affine] = if lagrange { self.lagrange.as_deref().map_or(&[], |v| v) } else { self.kzg.get_g() };
                b.msm(scalars, bases.get(..scalars.len())?)
            }
        };
        result.ok()
    }

    /// The commitment to `scalars` with the chosen MSM, `halo2` computing halo2's own (the
    /// fallback, and the reference when cross-checking).
    fn commit_with(&self, scalars: &[Fr], lagrange: bool, halo2: impl Fn() -> G1) -> G1 {
        if let Some(check) = &self.check {
            check.requested.fetch_add(1, Ordering::SeqCst);
        }
        let Some(ours) = self.try_commit(scalars, lagrange) else { return halo2() };
        if let Some(check) = &self.check {
            check.computed.fetch_add(1, Ordering::SeqCst);
            if ours != halo2() {
                check.mismatches.fetch_add(1, Ordering::SeqCst);
            }
        }
        ours
    }
}

impl<'params> Params<'params, G1Affine> for CommitParams {
    type MSM = MSMKZG<Bn256>;

    fn k(&self) -> u32 {
        self.kzg.k()
    }

    fn n(&self) -> u64 {
        self.kzg.n()
    }

    /// Downsizing goes back to halo2's MSM: tables and points are for the larger SRS.
    fn downsize(&mut self, k: u32) {
        Arc::make_mut(&mut self.kzg).downsize(k);
        self.msm = CommitMsm::Halo2;
        self.lagrange = None;
    }

    fn empty_msm(&'params self) -> MSMKZG<Bn256> {
        MSMKZG::new()
    }

    fn commit_lagrange(&self, poly: &Polynomial<Fr, LagrangeCoeff>, r: Blind<Fr>) -> G1 {
        self.commit_with(poly, true, || Params::commit_lagrange(&*self.kzg, poly, r))
    }

    fn write<W: io::Write>(&self, writer: &mut W) -> io::Result<()> {
        Params::write(&*self.kzg, writer)
    }

    fn read<R: io::Read>(reader: &mut R) -> io::Result<Self> {
        <ParamsKZG<Bn256> as Params<G1Affine>>::read(reader).map(CommitParams::halo2)
    }
}

impl<'params> ParamsProver<'params, G1Affine> for CommitParams {
    type ParamsVerifier = ParamsKZG<Bn256>;

    fn new(k: u32) -> Self {
        CommitParams::halo2(<ParamsKZG<Bn256> as ParamsProver<G1Affine>>::new(k))
    }

    fn commit(&self, poly: &Polynomial<Fr, Coeff>, r: Blind<Fr>) -> G1 {
        self.commit_with(poly, false, || ParamsProver::commit(&*self.kzg, poly, r))
    }

    fn get_g(&self) -> &[G1Affine] {
        self.kzg.get_g()
    }

    fn verifier_params(&'params self) -> &'params ParamsKZG<Bn256> {
        &self.kzg
    }
}

/// KZG on BN254 whose prover params are [`CommitParams`]; its verifier params are halo2's.
#[derive(Clone, Copy, Debug)]
pub struct CommitKzg;

impl CommitmentScheme for CommitKzg {
    type Scalar = Fr;
    type Curve = G1Affine;
    type ParamsProver = CommitParams;
    type ParamsVerifier = ParamsKZG<Bn256>;

    fn new_params(k: u32) -> CommitParams {
        <CommitParams as ParamsProver<G1Affine>>::new(k)
    }

    fn read_params<R: io::Read>(reader: &mut R) -> io::Result<CommitParams> {
        <CommitParams as Params<G1Affine>>::read(reader)
    }
}

/// The SHPLONK opening for [`CommitKzg`]: halo2's `ProverSHPLONK` on the wrapped KZG params.
#[derive(Debug)]
pub struct CommitShplonk<'params>(ProverSHPLONK<'params, Bn256>);

impl<'params> Prover<'params, CommitKzg> for CommitShplonk<'params> {
    const QUERY_INSTANCE: bool = <ProverSHPLONK<'params, Bn256> as Prover<'params, KZGCommitmentScheme<Bn256>>>::QUERY_INSTANCE;

    fn new(params: &'params CommitParams) -> Self {
        CommitShplonk(ProverSHPLONK::new(&params.kzg))
    }

    fn create_proof<'com, E: EncodedChallenge<G1Affine>, T: TranscriptWrite<G1Affine, E>, R, I>(
        &self,
        rng: R,
        transcript: &mut T,
        queries: I,
    ) -> io::Result<()>
    where
        I: IntoIterator<Item = ProverQuery<'com, G1Affine>> + Clone,
        R: RngCore,
    {
        Prover::<KZGCommitmentScheme<Bn256>>::create_proof(&self.0, rng, transcript, queries)
    }
}
