//! Executor request signatures. An executor is its Ethereum address: it signs (EIP-191) the
//! method, path, body hash and a nonce of every request, and nonces strictly increase per
//! executor (the coordinator stores the last one), so a captured request cannot be replayed,
//! not even after a coordinator restart.

use alloy::primitives::{Address, Signature};
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::SignerSync;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::hexbytes::{from_hex, to_hex};
use crate::ExecutorId;

/// Header with the executor's address.
pub const EXECUTOR: &str = "x-executor";
/// Header with the request's nonce (a decimal u64, larger than the executor's previous one).
pub const NONCE: &str = "x-nonce";
/// Header with the 65-byte signature, 0x-hex.
pub const SIGNATURE: &str = "x-signature";

/// The message an executor signs for a request.
pub fn message(method: &str, path: &str, body: &[u8], nonce: u64) -> Vec<u8> {
    format!("zkinfer-executor-request\n{method}\n{path}\n{}\n{nonce}", hex::encode(Sha256::digest(body))).into_bytes()
}

/// The `(x-executor, x-nonce, x-signature)` header values for a request.
pub fn sign(key: &PrivateKeySigner, method: &str, path: &str, body: &[u8], nonce: u64) -> Result<[(&'static str, String); 3]> {
    let sig = key.sign_message_sync(&message(method, path, body, nonce)).map_err(|_| Error::BadSignature("the key cannot sign"))?;
    Ok([(EXECUTOR, ExecutorId(key.address()).to_string()), (NONCE, nonce.to_string()), (SIGNATURE, to_hex(&sig.as_bytes()))])
}

/// What the customer who opened an escrow job signs to submit it to a coordinator: the
/// escrow job (chain, escrow, id), the model and the input commitment.
pub fn submission_message(binding: &crate::seal::EscrowBinding, model: &crate::ModelId, commitment: &crate::Commitment) -> Vec<u8> {
    format!("zkinfer-submit-v1\n{}\n{:#x}\n{}\n{model}\n{commitment}", binding.chain_id, binding.escrow, binding.job).into_bytes()
}

/// Signs [`submission_message`] with the customer's key.
pub fn sign_submission(
    key: &PrivateKeySigner,
    binding: &crate::seal::EscrowBinding,
    model: &crate::ModelId,
    commitment: &crate::Commitment,
) -> Result<Vec<u8>> {
    let sig =
        key.sign_message_sync(&submission_message(binding, model, commitment)).map_err(|_| Error::BadSignature("the key cannot sign"))?;
    Ok(sig.as_bytes().to_vec())
}

/// The address that signed a submission.
pub fn submission_signer(
    binding: &crate::seal::EscrowBinding,
    model: &crate::ModelId,
    commitment: &crate::Commitment,
    signature: &[u8],
) -> Result<Address> {
    let sig = Signature::try_from(signature).map_err(|_| Error::BadSignature("the customer signature is not 65 bytes"))?;
    sig.recover_address_from_msg(submission_message(binding, model, commitment))
        .map_err(|_| Error::BadSignature("no signer recovers from the customer signature"))
}

/// Checks a request's signature; returns the executor and the nonce (the caller must still
/// check that the nonce is fresh).
pub fn verify(method: &str, path: &str, body: &[u8], executor: &str, nonce: &str, signature: &str) -> Result<(ExecutorId, u64)> {
    let nonce: u64 = nonce.parse().map_err(|_| Error::BadSignature("the nonce is not a number"))?;
    let claimed: ExecutorId = executor.parse().map_err(|_| Error::BadSignature("x-executor is not an address"))?;
    let bytes = from_hex(signature, "signature").map_err(|_| Error::BadSignature("the signature is not hex"))?;
    let sig = Signature::try_from(bytes.as_slice()).map_err(|_| Error::BadSignature("the signature is not 65 bytes"))?;
    let signer: Address =
        sig.recover_address_from_msg(message(method, path, body, nonce)).map_err(|_| Error::BadSignature("no signer recovers from it"))?;
    if signer != claimed.0 {
        return Err(Error::BadSignature("signed by another key"));
    }
    Ok((claimed, nonce))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_every_field() {
        let key = PrivateKeySigner::random();
        let h = sign(&key, "POST", "/v1/jobs/1/proof", b"proof", 7).unwrap();
        let (who, n) = verify("POST", "/v1/jobs/1/proof", b"proof", &h[0].1, &h[1].1, &h[2].1).unwrap();
        assert_eq!((who, n), (ExecutorId(key.address()), 7));
        for (m, p, b, nonce) in [
            ("GET", "/v1/jobs/1/proof", &b"proof"[..], "7"),
            ("POST", "/v1/jobs/2/proof", b"proof", "7"),
            ("POST", "/v1/jobs/1/proof", b"other", "7"),
            ("POST", "/v1/jobs/1/proof", b"proof", "8"),
        ] {
            assert!(verify(m, p, b, &h[0].1, nonce, &h[2].1).is_err(), "{m} {p} {nonce}");
        }
        let other = ExecutorId(PrivateKeySigner::random().address()).to_string();
        assert!(verify("POST", "/v1/jobs/1/proof", b"proof", &other, &h[1].1, &h[2].1).is_err());
        assert!(verify("POST", "/v1/jobs/1/proof", b"proof", &h[0].1, &h[1].1, "0x1234").is_err());
    }
}
