//! Sealed inputs: a customer encrypts its input to each executor it lets prove the job, with
//! HPKE (RFC 9180: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305, base mode).
//! The coordinator stores and forwards only the ciphertexts; it never sees the input.
//!
//! A sealed input is `enc ‖ ciphertext` (32 bytes of encapsulated key, then the AEAD output).
//! The associated data is the job's [`SealContext`] (model, input commitment and, for a paid
//! job, chain, escrow and escrow job), so a ciphertext opens only for the job it was made for.
//! An executor's HPKE key is derived from its Ethereum key, so it has one secret to keep.

use alloy::primitives::{Address, Signature};
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::SignerSync;
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::{Commitment, EscrowJobId, ExecutorId, ModelId};

type Kem = X25519HkdfSha256;

/// HPKE `info`: names the protocol and its version.
const INFO: &[u8] = b"zkinfer sealed input v2";
/// Bytes of the encapsulated key in front of each sealed input.
const ENC_LEN: usize = 32;

/// The on-chain job a sealed input is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EscrowBinding {
    /// The chain's id (EIP-155).
    pub chain_id: u64,
    /// The escrow contract.
    pub escrow: Address,
    /// The job in the escrow.
    pub job: EscrowJobId,
}

/// What a ciphertext is bound to: it opens only under the same context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealContext<'a> {
    /// The model the job runs.
    pub model_id: &'a ModelId,
    /// The commitment the proof must bind.
    pub input_commitment: Commitment,
    /// The escrow job paying for it, if any.
    pub escrow: Option<EscrowBinding>,
}

impl SealContext<'_> {
    /// The HPKE associated data: every field, in a fixed order with fixed separators.
    fn aad(&self) -> Vec<u8> {
        let escrow = match self.escrow {
            Some(b) => format!("{}\n{:#x}\n{}", b.chain_id, b.escrow, b.job),
            None => "off-chain".to_string(),
        };
        format!("zkinfer-seal-aad-v2\n{}\n{}\n{escrow}", self.model_id, self.input_commitment).into_bytes()
    }
}

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

    /// Opens an input sealed to this key for the job `ctx` describes.
    pub fn open(&self, ctx: &SealContext<'_>, sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < ENC_LEN {
            return Err(Error::Seal("shorter than its encapsulated key"));
        }
        let (enc, ct) = sealed.split_at(ENC_LEN);
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc).map_err(|_| Error::Seal("not an X25519 encapsulated key"))?;
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(&OpModeR::Base, &self.secret, &enc, INFO, ct, &ctx.aad())
            .map_err(|_| Error::Seal("does not open: sealed to another key, or for another job"))
    }
}

fn hpke_key_message(executor: ExecutorId, public: &[u8]) -> Vec<u8> {
    format!("zkinfer-hpke-key-v1\n{executor}\n{}", hex::encode(public)).into_bytes()
}

/// The executor's EIP-191 signature of its HPKE public key: what customers check before
/// sealing to it, so that whoever relays the key (the coordinator) cannot swap in its own.
pub fn sign_hpke_key(key: &PrivateKeySigner, public: &[u8]) -> Result<Vec<u8>> {
    let sig =
        key.sign_message_sync(&hpke_key_message(ExecutorId(key.address()), public)).map_err(|_| Error::Seal("the key cannot sign"))?;
    Ok(sig.as_bytes().to_vec())
}

/// Checks that `executor` signed the HPKE key `public`.
pub fn verify_hpke_key(executor: ExecutorId, public: &[u8], signature: &[u8]) -> Result<()> {
    let sig = Signature::try_from(signature).map_err(|_| Error::BadSignature("the HPKE key signature is not 65 bytes"))?;
    let signer = sig
        .recover_address_from_msg(hpke_key_message(executor, public))
        .map_err(|_| Error::BadSignature("no signer recovers from the HPKE key signature"))?;
    if signer != executor.0 {
        return Err(Error::BadSignature("the HPKE key is not signed by its executor"));
    }
    Ok(())
}

/// Seals `plaintext` for the job `ctx` describes to the executor whose HPKE public key is `public`.
pub fn seal(public: &[u8], ctx: &SealContext<'_>, plaintext: &[u8]) -> Result<Vec<u8>> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(public).map_err(|_| Error::Seal("the HPKE public key is not 32 bytes of X25519"))?;
    let mut rng = rand_core_09::UnwrapErr(rand_core_09::OsRng);
    let (enc, ct) =
        hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem, _>(&OpModeS::Base, &pk, INFO, plaintext, &ctx.aad(), &mut rng)
            .map_err(|_| Error::Seal("encryption failed"))?;
    let mut out = enc.to_bytes().to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hpke_key_is_signed_by_its_executor_and_a_swapped_key_is_caught() {
        let key = PrivateKeySigner::random();
        let me = ExecutorId(key.address());
        let public = SealKey::derive(&key.to_bytes()[..]).public_bytes();
        let sig = sign_hpke_key(&key, &public).unwrap();
        verify_hpke_key(me, &public, &sig).unwrap();
        let swapped = SealKey::derive(&[9; 32]).public_bytes();
        assert!(verify_hpke_key(me, &swapped, &sig).is_err(), "another key under the executor's signature");
        let other = ExecutorId(PrivateKeySigner::random().address());
        assert!(verify_hpke_key(other, &public, &sig).is_err(), "the signature of another executor");
        assert!(verify_hpke_key(me, &public, &sig[..64]).is_err());
    }

    #[test]
    fn only_the_recipient_opens_and_only_for_the_job() {
        let (a, b) = (SealKey::derive(&[1; 32]), SealKey::derive(&[2; 32]));
        assert_eq!(a.public_bytes(), SealKey::derive(&[1; 32]).public_bytes(), "derivation is deterministic");
        let (mlp, cnn) = (ModelId::new("mlp").unwrap(), ModelId::new("cnn").unwrap());
        let c: Commitment = "0x2a".parse().unwrap();
        let binding = EscrowBinding { chain_id: 31337, escrow: Address::repeat_byte(7), job: EscrowJobId(3) };
        let ctx = SealContext { model_id: &mlp, input_commitment: c, escrow: Some(binding) };
        let sealed = seal(&a.public_bytes(), &ctx, b"[0.5, 1.5]").unwrap();
        assert!(!sealed.windows(4).any(|w| w == b"0.5,"), "no plaintext in the ciphertext");
        assert_eq!(a.open(&ctx, &sealed).unwrap(), b"[0.5, 1.5]");
        assert!(b.open(&ctx, &sealed).is_err(), "another executor");
        let others = [
            SealContext { model_id: &cnn, ..ctx },
            SealContext { input_commitment: "0x2b".parse().unwrap(), ..ctx },
            SealContext { escrow: None, ..ctx },
            SealContext { escrow: Some(EscrowBinding { job: EscrowJobId(4), ..binding }), ..ctx },
            SealContext { escrow: Some(EscrowBinding { chain_id: 1, ..binding }), ..ctx },
            SealContext { escrow: Some(EscrowBinding { escrow: Address::repeat_byte(8), ..binding }), ..ctx },
        ];
        for other in others {
            assert!(a.open(&other, &sealed).is_err(), "{other:?}");
        }
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 1;
            assert!(a.open(&ctx, &t).is_err(), "byte {i} flipped");
        }
        assert!(a.open(&ctx, &sealed[..10]).is_err());
    }
}
