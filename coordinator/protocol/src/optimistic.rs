//! Optimistic verification's shared rules: how a job is verified ([`Verification`]), the
//! least audit probability that makes cheating lose money ([`min_audit_bps`]), which
//! validator re-executes a sampled job ([`validator_rank`]), and the executor's signed
//! result claim ([`result_message`]).
//!
//! The economics (design.md §7): a cheating executor gains at most the job's price; when a
//! validator catches it, it loses at least half its bond (the other half rewards the
//! challenger, which could be a puppet of its own). So cheating loses money in expectation
//! when `p × bond / 2 > price`; the coordinator asks for `p ≥ safety × 2 × price / bond`.

use alloy::primitives::{keccak256, Address, Signature, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::SignerSync;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, Result};
use crate::seal::EscrowBinding;
use crate::{Commitment, Wei};

/// How a job's result is checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verification {
    /// A ZK proof of every result, checked on chain before payment.
    #[default]
    Zk,
    /// No proof unless challenged: the executor posts its outputs with a bond, a validator
    /// re-executes a sample, and a challenge within the window makes the executor prove them.
    Optimistic,
}

impl Verification {
    /// Whether this is the default (left out of JSON).
    pub fn is_zk(&self) -> bool {
        *self == Verification::Zk
    }
}

/// What a coordinator requires of an optimistic job's escrow terms (`GET /v1/terms`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OptimisticPolicy {
    /// The shortest challenge window accepted (seconds): validators must re-execute within it.
    pub min_challenge_window_s: u32,
    /// The shortest prove window accepted (seconds): an honest executor must prove within it.
    pub min_prove_window_s: u32,
    /// The least challenge bond accepted (wei): it pays an honest executor for proving a
    /// frivolous challenge.
    pub min_challenge_bond_wei: Wei,
    /// The safety factor on the audit probability, in basis points (15000: 1.5×), covering
    /// validators that are offline or dishonest.
    pub audit_safety_bps: u32,
}

impl Default for OptimisticPolicy {
    fn default() -> Self {
        OptimisticPolicy {
            min_challenge_window_s: 60,
            min_prove_window_s: 300,
            min_challenge_bond_wei: Wei(U256::from(1_000_000_000_000_000u64)),
            audit_safety_bps: 15_000,
        }
    }
}

impl OptimisticPolicy {
    /// The least audit probability (basis points) for a job paying `price` with bond
    /// `min_bond`: [`min_audit_bps`] with this policy's safety factor.
    pub fn min_audit_bps(&self, price: U256, min_bond: U256) -> Option<u16> {
        min_audit_bps(price, min_bond, self.audit_safety_bps)
    }
}

/// The least audit probability, in basis points, at which cheating on a job paying `price`
/// with bond `min_bond` loses money by a margin of `safety_bps / 10000`:
/// `ceil(2 × safety × price / min_bond)`. `None` when even certain audit (10,000) is not
/// enough: the bond must grow.
pub fn min_audit_bps(price: U256, min_bond: U256, safety_bps: u32) -> Option<u16> {
    if min_bond.is_zero() {
        return None;
    }
    let need = (U256::from(2u64) * U256::from(safety_bps) * price).div_ceil(min_bond);
    let need = need.max(U256::from(1u64));
    (need <= U256::from(10_000u64)).then(|| need.to::<u16>())
}

/// The least bond at which certain audit deters cheating on a job paying `price`.
pub fn min_bond_for(price: U256, safety_bps: u32) -> U256 {
    (U256::from(2u64) * U256::from(safety_bps) * price).div_ceil(U256::from(10_000u64))
}

/// Whether the audit seed samples the job at probability `audit_bps` (the escrow's `audited`).
pub fn is_sampled(seed: U256, audit_bps: u16) -> bool {
    !seed.is_zero() && seed % U256::from(10_000u64) < U256::from(audit_bps)
}

/// The order in which validators are asked to re-execute a sampled job: by
/// `keccak256(seed ‖ address)`, lowest first. Nobody can choose its rank before the seed exists.
pub fn validator_rank(seed: U256, validator: Address) -> B256 {
    let mut bytes = seed.to_be_bytes::<32>().to_vec();
    bytes.extend_from_slice(validator.as_slice());
    keccak256(bytes)
}

/// What an executor signs to claim a result: the escrow job, the input commitment, and the
/// hash of the output instances it posts on chain (the escrow's `outputsHash`).
pub fn result_message(binding: &EscrowBinding, commitment: &Commitment, outputs_hash: &B256) -> Vec<u8> {
    format!("zkinfer-result-v1\n{}\n{:#x}\n{}\n{commitment}\n{outputs_hash:#x}", binding.chain_id, binding.escrow, binding.job).into_bytes()
}

/// Signs [`result_message`] with the executor's key.
pub fn sign_result(key: &PrivateKeySigner, binding: &EscrowBinding, commitment: &Commitment, outputs_hash: &B256) -> Result<Vec<u8>> {
    let sig = key
        .sign_message_sync(&result_message(binding, commitment, outputs_hash))
        .map_err(|_| Error::BadSignature("the key cannot sign"))?;
    Ok(sig.as_bytes().to_vec())
}

/// The address that signed a result claim.
pub fn result_signer(binding: &EscrowBinding, commitment: &Commitment, outputs_hash: &B256, signature: &[u8]) -> Result<Address> {
    let sig = Signature::try_from(signature).map_err(|_| Error::BadSignature("the result signature is not 65 bytes"))?;
    sig.recover_address_from_msg(result_message(binding, commitment, outputs_hash))
        .map_err(|_| Error::BadSignature("no signer recovers from the result signature"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(milli: u64) -> U256 {
        U256::from(milli) * U256::from(1_000_000_000_000_000u64)
    }

    #[test]
    fn the_audit_probability_makes_cheating_lose_money() {
        // 0.1 ETH price, 1 ETH bond, 1.5× safety: p ≥ 2 × 1.5 × 0.1 / 1 = 30%.
        assert_eq!(min_audit_bps(eth(100), eth(1000), 15_000), Some(3_000));
        // Rounded up, never to zero.
        assert_eq!(min_audit_bps(U256::from(1u64), eth(1000), 15_000), Some(1));
        assert_eq!(min_audit_bps(eth(100), eth(1000), 10_000), Some(2_000));
        // A bond too small for the price: no probability deters.
        assert_eq!(min_audit_bps(eth(100), eth(200), 15_000), None);
        assert_eq!(min_audit_bps(eth(100), U256::ZERO, 15_000), None);
        assert_eq!(min_bond_for(eth(100), 15_000), eth(300));
        assert_eq!(min_audit_bps(eth(100), eth(300), 15_000), Some(10_000));
        // The property over a grid: p/10⁴ × bond/2 ≥ 1.5 × price, i.e. p × bond ≥ 2 × 15000 ×
        // price, and p is the least such probability.
        for price in [1u64, 7, 100, 12_345] {
            for bond in [300u64, 1_000, 50_000, 1_000_000] {
                let need = U256::from(30_000u64) * eth(price);
                match min_audit_bps(eth(price), eth(bond), 15_000) {
                    Some(p) => {
                        assert!(U256::from(p) * eth(bond) >= need, "{price} {bond}");
                        assert!(p == 1 || U256::from(p - 1) * eth(bond) < need, "{price} {bond}: not the least");
                    }
                    None => assert!(U256::from(10_000u64) * eth(bond) < need, "{price} {bond}"),
                }
            }
        }
    }

    #[test]
    fn sampling_follows_the_seed() {
        assert!(!is_sampled(U256::ZERO, 10_000), "no seed yet");
        assert!(is_sampled(U256::from(9_999u64), 10_000));
        assert!(!is_sampled(U256::from(10_500u64), 500));
        assert!(is_sampled(U256::from(10_499u64), 500));
        let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
        assert_ne!(validator_rank(U256::from(1u64), a), validator_rank(U256::from(1u64), b));
        assert_ne!(validator_rank(U256::from(1u64), a), validator_rank(U256::from(2u64), a));
    }

    #[test]
    fn result_claims_bind_the_job_and_the_outputs() {
        let key = PrivateKeySigner::random();
        let b = EscrowBinding { chain_id: 1, escrow: Address::repeat_byte(9), job: crate::EscrowJobId(4) };
        let c: Commitment = "0x2a".parse().unwrap();
        let h = B256::repeat_byte(3);
        let sig = sign_result(&key, &b, &c, &h).unwrap();
        assert_eq!(result_signer(&b, &c, &h, &sig).unwrap(), key.address());
        let other_job = EscrowBinding { job: crate::EscrowJobId(5), ..b };
        assert_ne!(result_signer(&other_job, &c, &h, &sig).unwrap(), key.address());
        assert_ne!(result_signer(&b, &c, &B256::repeat_byte(4), &sig).unwrap(), key.address());
        assert!(result_signer(&b, &c, &h, &sig[..64]).is_err());
    }
}
