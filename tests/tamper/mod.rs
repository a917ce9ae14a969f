//! The tampered calldata a generated verifier must reject, shared by the on-chain tests of
//! aggregated verifiers: every proof byte flipped, and every instance changed and plus r.

#![allow(dead_code, unreachable_pub, missing_docs)]

use alloy::primitives::U256;

/// The BN254 scalar field's modulus.
pub fn r() -> U256 {
    U256::from_str_radix("30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001", 16).expect("a hex constant")
}

/// Each single change of `calldata` (its first `instances` words are the instances, the rest
/// the proof), named for the assertion that it was rejected.
pub fn tampered(calldata: &[u8], instances: usize) -> impl Iterator<Item = (String, Vec<u8>)> + '_ {
    let bytes = (instances * 32..calldata.len()).map(move |at| {
        let mut bad = calldata.to_vec();
        bad[at] ^= 1;
        (format!("a flipped proof byte at {at}"), bad)
    });
    let words = (0..instances).flat_map(move |row| {
        let word = U256::from_be_slice(&calldata[row * 32..row * 32 + 32]);
        [(word ^ U256::from(1), "changed"), (word + r(), "plus r")].into_iter().map(move |(changed, how)| {
            let mut bad = calldata.to_vec();
            bad[row * 32..row * 32 + 32].copy_from_slice(&changed.to_be_bytes::<32>());
            (format!("instance {row} {how}"), bad)
        })
    });
    bytes.chain(words)
}
