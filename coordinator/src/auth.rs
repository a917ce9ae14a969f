//! Executor request signatures. An executor is its Ethereum address: it signs (EIP-191) the
//! method, path, body hash and a nonce of every request, and nonces strictly increase per
//! executor (the last one is stored), so a captured request cannot be replayed, not even
//! after a coordinator restart.

use alloy::primitives::{Address, Signature};
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::SignerSync;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

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
    let sig = key.sign_message_sync(&message(method, path, body, nonce)).map_err(|e| Error::BadSignature(e.to_string()))?;
    Ok([(EXECUTOR, address_string(key.address())), (NONCE, nonce.to_string()), (SIGNATURE, format!("0x{}", hex::encode(sig.as_bytes())))])
}

/// The canonical (lowercase 0x-hex) form of an address: executors' names.
pub fn address_string(a: Address) -> String {
    format!("{a:#x}")
}

/// Checks a request's signature; returns the executor's address and the nonce (the caller
/// must still check that the nonce is fresh).
pub fn verify(method: &str, path: &str, body: &[u8], executor: &str, nonce: &str, signature: &str) -> Result<(String, u64)> {
    let bad = |why: &str| Error::BadSignature(why.to_string());
    let nonce: u64 = nonce.parse().map_err(|_| bad("the nonce is not a number"))?;
    let claimed: Address = executor.parse().map_err(|_| bad("x-executor is not an address"))?;
    let bytes = hex::decode(signature.trim_start_matches("0x")).map_err(|_| bad("the signature is not hex"))?;
    let sig = Signature::try_from(bytes.as_slice()).map_err(|_| bad("the signature is not 65 bytes"))?;
    let signer = sig.recover_address_from_msg(message(method, path, body, nonce)).map_err(|_| bad("no signer recovers from it"))?;
    if signer != claimed {
        return Err(bad("signed by another key"));
    }
    Ok((address_string(claimed), nonce))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_every_field() {
        let key = PrivateKeySigner::random();
        let h = sign(&key, "POST", "/v1/jobs/1/proof", b"proof", 7).unwrap();
        let (who, n) = verify("POST", "/v1/jobs/1/proof", b"proof", &h[0].1, &h[1].1, &h[2].1).unwrap();
        assert_eq!((who, n), (address_string(key.address()), 7));
        for (m, p, b, nonce) in [
            ("GET", "/v1/jobs/1/proof", &b"proof"[..], "7"),
            ("POST", "/v1/jobs/2/proof", b"proof", "7"),
            ("POST", "/v1/jobs/1/proof", b"other", "7"),
            ("POST", "/v1/jobs/1/proof", b"proof", "8"),
        ] {
            assert!(verify(m, p, b, &h[0].1, nonce, &h[2].1).is_err(), "{m} {p} {nonce}");
        }
        let other = address_string(PrivateKeySigner::random().address());
        assert!(verify("POST", "/v1/jobs/1/proof", b"proof", &other, &h[1].1, &h[2].1).is_err());
    }
}
