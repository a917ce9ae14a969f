//! The structured reference string: standard halo2 KZG params files (`kzg{k}.srs`,
//! halo2's raw-bytes format, as derived from the Perpetual Powers of Tau), or an
//! insecure one generated locally for development.

use std::path::Path;

use halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_proofs::halo2curves::ff::{Field, PrimeField};
use halo2_proofs::halo2curves::group::Curve;
use halo2_proofs::halo2curves::pairing::Engine;
use halo2_proofs::poly::commitment::{Params, ParamsProver};
use halo2_proofs::poly::kzg::commitment::ParamsKZG;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

mod dev;

/// Seed of the development SRS: public, so its trapdoor is known to everyone.
const DEV_SRS_SEED: u64 = 0x007a_6b69_6e66_6572;

/// Params with their provenance.
#[derive(Debug)]
pub struct Srs {
    /// The params, at the circuit's k.
    pub params: ParamsKZG<Bn256>,
    /// SHA-256 of the source file (or of the dev SRS's encoding at its k).
    pub source_sha256: [u8; 32],
    /// k of the source.
    pub source_k: u32,
    /// Whether this is the insecure development SRS.
    pub insecure: bool,
}

/// Where an SRS comes from, for a service that sets up models it is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SrsChoice {
    /// The insecure development SRS ([`Srs::dev`]).
    Dev,
    /// A halo2 KZG params file, downsized to each circuit's k ([`Srs::load`]).
    File(std::path::PathBuf),
}

impl SrsChoice {
    /// The SRS at `k`.
    pub fn at(&self, k: u32) -> Result<Srs> {
        match self {
            SrsChoice::Dev => Srs::dev(k),
            SrsChoice::File(path) => Srs::load(path, k),
        }
    }
}

impl Srs {
    /// Generates the insecure development SRS at `k` (deterministic: anyone can forge proofs with it).
    pub fn dev(k: u32) -> Result<Self> {
        if !(1..=Fr::S).contains(&k) {
            return Err(Error::BadSrs { path: "<development SRS>".into(), reason: format!("k = {k}: BN254 allows 1 to {}", Fr::S) });
        }
        let tau = Fr::random(ChaCha20Rng::seed_from_u64(DEV_SRS_SEED));
        let params =
            dev::params(k, tau).ok_or(Error::BadSrs { path: "<development SRS>".into(), reason: "τ is a root of unity".into() })?;
        let bytes = encode(&params)?;
        Ok(Srs { params, source_sha256: Sha256::digest(&bytes).into(), source_k: k, insecure: true })
    }

    /// Loads a params file, downsizing it to `k` when it is larger.
    pub fn load(path: &Path, k: u32) -> Result<Self> {
        let bytes = crate::fs::read(path)?;
        let bad = |reason: String| Error::BadSrs { path: path.display().to_string(), reason };
        if bytes.len() < 4 {
            return Err(bad("file too short".into()));
        }
        let source_k = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        if !(1..=28).contains(&source_k) {
            return Err(bad(format!("k = {source_k} in the header")));
        }
        if source_k < k {
            return Err(Error::SrsTooSmall { have: source_k, need: k });
        }
        let mut params = decode(&bytes).map_err(bad)?;
        if params.k() > k {
            params.downsize(k);
        }
        // A saved development SRS is as insecure as a generated one: say so.
        let insecure = is_dev(&params);
        Ok(Srs { params, source_sha256: Sha256::digest(&bytes).into(), source_k, insecure })
    }

    /// These params at `k ≤` their own: the same τ. A smaller k is a downsizing, which halo2
    /// does with an FFT over G1 (minutes at k = 20), except for the development SRS, which is
    /// generated directly at `k` (its τ is the seed's at every k: seconds).
    pub fn params_at(&self, k: u32) -> Result<ParamsKZG<Bn256>> {
        let have = self.params.k();
        if k > have {
            return Err(Error::SrsTooSmall { have, need: k });
        }
        if k == have {
            return Ok(self.params.clone());
        }
        if self.insecure {
            return Ok(Srs::dev(k)?.params);
        }
        let mut params = self.params.clone();
        params.downsize(k);
        Ok(params)
    }

    /// Reads params previously written by [`Srs::save_params`].
    pub fn read_params(path: &Path) -> Result<ParamsKZG<Bn256>> {
        let bytes = crate::fs::read(path)?;
        decode(&bytes).map_err(|reason| Error::BadSrs { path: path.display().to_string(), reason })
    }

    /// Writes the (downsized) params atomically.
    pub fn save_params(&self, path: &Path) -> Result<()> {
        crate::fs::atomic_write(path, &encode(&self.params)?)
    }

    /// Hex of the source hash.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.source_sha256)
    }
}

/// Whether `params` are the development SRS: its τ is the first draw of the public seed's RNG,
/// so its first power of τ in G1 is known to everyone.
fn is_dev(params: &ParamsKZG<Bn256>) -> bool {
    let tau = Fr::random(ChaCha20Rng::seed_from_u64(DEV_SRS_SEED));
    params.get_g().get(1) == Some(&(G1Affine::generator() * tau).to_affine())
}

/// Decodes raw-bytes params after checking the length (halo2's reader panics on short
/// input) and the pairing relation `e(g₁, h) = e(g₀, s·h)` that ties the G1 powers to G2.
fn decode(bytes: &[u8]) -> std::result::Result<ParamsKZG<Bn256>, String> {
    let k = u32::from_le_bytes(bytes.get(..4).and_then(|b| b.try_into().ok()).ok_or("file too short")?);
    if !(1..=28).contains(&k) {
        return Err(format!("k = {k} in the header"));
    }
    // k, then 2^k G1 powers and 2^k Lagrange points (64 bytes each), then g2 and s·g2 (128 each).
    let expected = 4 + (1usize << k) * 128 + 256;
    if bytes.len() != expected {
        return Err(format!("{} bytes, a raw-bytes SRS with k = {k} has {expected}", bytes.len()));
    }
    let params = ParamsKZG::<Bn256>::read(&mut &bytes[..]).map_err(|e| e.to_string())?;
    let g = params.get_g();
    if g.len() < 2 || Bn256::pairing(&g[1], &params.g2()) != Bn256::pairing(&g[0], &params.s_g2()) {
        return Err("pairing check failed: the G1 and G2 powers do not match".into());
    }
    Ok(params)
}

fn encode(params: &ParamsKZG<Bn256>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    params.write(&mut out).map_err(|e| Error::Io { path: "<memory>".into(), source: e })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_downsizes_and_hashes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let big = Srs::dev(6).unwrap();
        let path = dir.path().join("kzg6.srs");
        big.save_params(&path).unwrap();
        let small = Srs::load(&path, 4).unwrap();
        assert_eq!(small.params.k(), 4);
        assert_eq!(small.source_k, 6);
        assert_eq!(small.source_sha256, big.source_sha256);
        assert!(small.insecure, "a saved development SRS is recognised as such");
        let other = Srs { params: ParamsKZG::<Bn256>::setup(6, ChaCha20Rng::seed_from_u64(1)), ..Srs::dev(1).unwrap() };
        let path = dir.path().join("other.srs");
        other.save_params(&path).unwrap();
        assert!(!Srs::load(&path, 6).unwrap().insecure);
        assert!(matches!(Srs::load(&path, 7), Err(Error::SrsTooSmall { have: 6, need: 7 })));
    }

    #[test]
    fn params_at_a_smaller_k_keep_tau() {
        let big = Srs::dev(6).unwrap();
        let small = big.params_at(4).unwrap();
        assert_eq!(small.k(), 4);
        assert_eq!(small.get_g()[1], big.params.get_g()[1]);
        assert_eq!(small.s_g2(), big.params.s_g2());
        let mut file = Srs::dev(6).unwrap();
        file.insecure = false;
        let downsized = file.params_at(4).unwrap();
        assert_eq!(encode(&downsized).unwrap(), encode(&small).unwrap(), "the same powers and Lagrange basis");
        assert!(matches!(big.params_at(7), Err(Error::SrsTooSmall { have: 6, need: 7 })));
    }

    #[test]
    fn garbage_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.srs");
        std::fs::write(&path, [4u8, 0, 0, 0, 1, 2, 3]).unwrap();
        assert!(matches!(Srs::load(&path, 4), Err(Error::BadSrs { .. })));
        // Right size, but one G1 power corrupted: the pairing check catches it.
        let good = dir.path().join("kzg4.srs");
        Srs::dev(4).unwrap().save_params(&good).unwrap();
        let mut bytes = std::fs::read(&good).unwrap();
        bytes[4 + 64 + 5] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(Srs::load(&path, 4), Err(Error::BadSrs { .. })));
    }
}
