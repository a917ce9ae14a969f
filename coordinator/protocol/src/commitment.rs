//! The Poseidon commitment to a job's input: the proof's first public value, what the escrow
//! job holds, and what customers recompute. One type, one conversion each way between the
//! field element, its canonical bytes, the on-chain `uint256` and 0x-hex.

use std::fmt;
use std::str::FromStr;

use alloy::primitives::U256;
use halo2curves::bn256::Fr;
use halo2curves::ff::PrimeField;

use crate::error::{Error, Result};
use crate::hexbytes::{from_hex, string_schema, string_serde, to_hex, truncated};

/// A commitment: a canonical BN254 scalar (below the field modulus), so that a commitment
/// has exactly one encoding everywhere.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Commitment {
    /// Little-endian canonical bytes (`Fr::to_repr`, as the proof file stores instances).
    le: [u8; 32],
}

impl Commitment {
    /// The canonical little-endian bytes, as the proof file stores them.
    pub fn to_le_bytes(self) -> [u8; 32] {
        self.le
    }

    /// The on-chain `uint256` (ruint's blanket `From` impls leave no room for a `From` here).
    pub fn to_u256(self) -> U256 {
        U256::from_le_bytes(self.le)
    }

    /// From little-endian bytes; fails unless they are a canonical field element.
    pub fn from_le_bytes(le: [u8; 32]) -> Result<Self> {
        Option::<Fr>::from(Fr::from_repr(le)).map(Commitment::from).ok_or_else(|| {
            let mut be = le;
            be.reverse();
            Error::NonCanonical(to_hex(&be))
        })
    }
}

impl From<Fr> for Commitment {
    fn from(f: Fr) -> Self {
        Commitment { le: f.to_repr() }
    }
}

impl From<Commitment> for Fr {
    fn from(c: Commitment) -> Fr {
        // Canonical by construction.
        Option::<Fr>::from(Fr::from_repr(c.le)).unwrap_or_default()
    }
}

impl TryFrom<U256> for Commitment {
    type Error = Error;
    fn try_from(v: U256) -> Result<Self> {
        Commitment::from_le_bytes(v.to_le_bytes())
    }
}

impl fmt::Display for Commitment {
    /// `0x` and 64 big-endian hex digits: the `uint256` that Solidity and circom print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut be = self.le;
        be.reverse();
        f.write_str(&to_hex(&be))
    }
}

impl fmt::Debug for Commitment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Commitment({self})")
    }
}

impl FromStr for Commitment {
    type Err = Error;
    /// Big-endian hex of up to 64 digits (leading zeros may be left out), `0x` optional.
    fn from_str(s: &str) -> Result<Self> {
        let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
        if digits.is_empty() || digits.len() > 64 {
            return Err(Error::Malformed { what: "commitment (up to 64 hex digits)", value: truncated(s) });
        }
        let padded = format!("{digits:0>64}");
        let mut le: [u8; 32] =
            from_hex(&padded, "commitment")?.try_into().map_err(|_| Error::Malformed { what: "commitment", value: truncated(s) })?;
        le.reverse();
        Commitment::from_le_bytes(le)
    }
}

string_serde!(Commitment);

impl utoipa::PartialSchema for Commitment {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        string_schema(
            "^(0x)?[0-9a-fA-F]{1,64}$",
            "A Poseidon commitment: a BN254 scalar below the field modulus, as big-endian hex (0x and 64 digits in responses).",
        )
    }
}

impl utoipa::ToSchema for Commitment {}

#[cfg(test)]
mod tests {
    use halo2curves::ff::Field;

    use super::*;

    #[test]
    fn every_conversion_round_trips() {
        let mut rng = rand::thread_rng();
        for _ in 0..32 {
            let f = Fr::random(&mut rng);
            let c = Commitment::from(f);
            assert_eq!(Fr::from(c), f);
            assert_eq!(Commitment::from_le_bytes(c.to_le_bytes()).unwrap(), c);
            assert_eq!(Commitment::try_from(c.to_u256()).unwrap(), c);
            assert_eq!(c.to_string().parse::<Commitment>().unwrap(), c);
            assert_eq!(serde_json::from_str::<Commitment>(&serde_json::to_string(&c).unwrap()).unwrap(), c);
            assert_eq!(c.to_string().len(), 66);
        }
        assert_eq!("0x2a".parse::<Commitment>().unwrap(), Commitment::from(Fr::from(42)));
        assert_eq!(format!("{}", Commitment::from(Fr::from(42))), format!("0x{:064x}", 42));
    }

    #[test]
    fn non_canonical_values_are_refused() {
        let r = U256::from_str_radix("30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001", 16).unwrap();
        assert!(Commitment::try_from(r).is_err());
        assert!(Commitment::try_from(r + U256::from(1)).is_err());
        assert!(Commitment::try_from(r - U256::from(1)).is_ok());
        assert!(format!("{r:#x}").parse::<Commitment>().is_err());
        assert!(format!("0x{}", "f".repeat(64)).parse::<Commitment>().is_err());
        assert!(format!("0x1{}", "0".repeat(64)).parse::<Commitment>().is_err(), "65 digits");
        assert!("0x".parse::<Commitment>().is_err());
    }
}
