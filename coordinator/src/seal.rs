//! Sealed inputs: a customer encrypts its input to each executor it lets prove the job, with
//! HPKE (RFC 9180: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305, base mode).
//! The coordinator stores and forwards only the ciphertexts; it never sees the input.
//!
//! A sealed input is `enc ‖ ciphertext` (32 bytes of encapsulated key, then the AEAD output).
//! The model id is the associated data, so a ciphertext cannot be replayed for another model.
//! An executor's HPKE key is derived from its Ethereum key, so it has one secret to keep.

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

type Kem = X25519HkdfSha256;

/// HPKE `info`: names the protocol and its version.
const INFO: &[u8] = b"zkinfer sealed input v1";
/// Bytes of the encapsulated key in front of each sealed input.
const ENC_LEN: usize = 32;

/// An executor's HPKE key pair.
pub struct SealKey {
    secret: <Kem as hpke::Kem>::PrivateKey,
    public: <Kem as hpke::Kem>::PublicKey,
}

impl SealKey {
    /// The key pair derived from an executor's Ethereum private key (32 bytes).
    pub fn derive(ethereum_key: &[u8]) -> Self {
        let ikm = Sha256::new().chain_update(b"zkinfer hpke key v1").chain_update(ethereum_key).finalize();
        let (secret, public) = Kem::derive_keypair(&ikm);
        SealKey { secret, public }
    }

    /// The public key customers seal to (32 bytes).
    pub fn public_bytes(&self) -> Vec<u8> {
        self.public.to_bytes().to_vec()
    }

    /// Opens an input sealed to this key for `model_id`.
    pub fn open(&self, model_id: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < ENC_LEN {
            return Err(Error::BadRequest("sealed input shorter than its encapsulated key".into()));
        }
        let (enc, ct) = sealed.split_at(ENC_LEN);
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc).map_err(|e| Error::BadRequest(format!("sealed input: {e}")))?;
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(&OpModeR::Base, &self.secret, &enc, INFO, ct, model_id.as_bytes())
            .map_err(|e| Error::BadRequest(format!("sealed input does not open: {e}")))
    }
}

/// Seals `plaintext` for `model_id` to the executor whose HPKE public key is `public`.
pub fn seal(public: &[u8], model_id: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(public).map_err(|e| Error::BadRequest(format!("HPKE public key: {e}")))?;
    let mut rng = rand_core_09::UnwrapErr(rand_core_09::OsRng);
    let (enc, ct) =
        hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem, _>(&OpModeS::Base, &pk, INFO, plaintext, model_id.as_bytes(), &mut rng)
            .map_err(|e| Error::Internal(format!("sealing: {e}")))?;
    let mut out = enc.to_bytes().to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_recipient_opens_and_only_for_the_model() {
        let (a, b) = (SealKey::derive(&[1; 32]), SealKey::derive(&[2; 32]));
        assert_eq!(a.public_bytes(), SealKey::derive(&[1; 32]).public_bytes(), "derivation is deterministic");
        let sealed = seal(&a.public_bytes(), "mlp", b"[0.5, 1.5]").unwrap();
        assert!(!sealed.windows(4).any(|w| w == b"0.5,"), "no plaintext in the ciphertext");
        assert_eq!(a.open("mlp", &sealed).unwrap(), b"[0.5, 1.5]");
        assert!(b.open("mlp", &sealed).is_err(), "another executor");
        assert!(a.open("cnn", &sealed).is_err(), "another model");
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 1;
            assert!(a.open("mlp", &t).is_err(), "byte {i} flipped");
        }
        assert!(a.open("mlp", &sealed[..10]).is_err());
    }
}
