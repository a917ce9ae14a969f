//! What a proof binds besides the model and the input: who it pays and for which escrow job
//! ([`Binding`], public), and the salt that makes the input commitment hiding ([`Salt`],
//! private, sealed with the input). Each has one conversion each way to the circuit's field
//! elements.

use std::fmt;
use std::str::FromStr;

use alloy::primitives::{Address, U256};
use halo2curves::bn256::Fr;
use halo2curves::ff::{Field, PrimeField};

use crate::error::{Error, Result};
use crate::hexbytes::{string_schema, string_serde};
use crate::{Commitment, EscrowJobId, ExecutorId};

/// The salt of an input commitment: a uniformly random BN254 scalar chosen by the customer.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Salt(Commitment);

impl Salt {
    /// A fresh random salt (from the OS's CSPRNG).
    pub fn random() -> Self {
        Salt(Commitment::from(Fr::random(rand::rngs::OsRng)))
    }

    /// No salt: the commitment is then a deterministic hash of the input, not hiding.
    pub fn zero() -> Self {
        Salt(Commitment::from(Fr::ZERO))
    }

    /// The field element.
    pub fn to_fr(self) -> Fr {
        Fr::from(self.0)
    }
}

impl From<Fr> for Salt {
    fn from(f: Fr) -> Self {
        Salt(Commitment::from(f))
    }
}

impl fmt::Display for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for Salt {
    /// Salts are secrets of the customer's: never printed in full by `Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Salt(…)")
    }
}

impl FromStr for Salt {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        s.parse().map(Salt)
    }
}

string_serde!(Salt);

impl utoipa::PartialSchema for Salt {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        string_schema("^(0x)?[0-9a-fA-F]{1,64}$", "A salt: a BN254 scalar below the field modulus, as big-endian hex.")
    }
}

impl utoipa::ToSchema for Salt {}

/// Who a proof pays and for which escrow job: the public instance rows after the input
/// commitment. A proof made for one binding verifies for no other, so a copied proof pays
/// only the executor that made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Binding {
    /// Who is paid.
    pub payee: ExecutorId,
    /// The chain's id (0 for a job not paid on chain).
    pub chain_id: u64,
    /// The escrow contract (zero for a job not paid on chain).
    pub escrow: Address,
    /// The job in the escrow (0 for a job not paid on chain).
    pub escrow_job: EscrowJobId,
}

fn address_fr(a: Address) -> Fr {
    let mut le = [0u8; 32];
    le[..20].copy_from_slice(a.as_slice());
    le[..20].reverse();
    Option::<Fr>::from(Fr::from_repr(le)).unwrap_or(Fr::ZERO)
}

fn fr_u256(f: &Fr) -> U256 {
    U256::from_le_bytes(f.to_repr())
}

impl Binding {
    /// A payee with no escrow job (a proof not paid on chain).
    pub fn off_chain(payee: ExecutorId) -> Self {
        Binding { payee, chain_id: 0, escrow: Address::ZERO, escrow_job: EscrowJobId(0) }
    }

    /// The instance values, in row order: payee, chain id, escrow, escrow job.
    pub fn to_fields(&self) -> [Fr; 4] {
        [address_fr(self.payee.0), Fr::from(self.chain_id), address_fr(self.escrow), Fr::from(self.escrow_job.0)]
    }

    /// From the instance values, in row order; fails unless each fits its type (an address
    /// in 160 bits, the ids in 64).
    pub fn from_fields(f: &[Fr; 4]) -> Result<Self> {
        let address = |x: &Fr| -> Result<Address> {
            let v = fr_u256(x);
            if v >> 160 != U256::ZERO {
                return Err(Error::Malformed { what: "address instance (over 160 bits)", value: format!("{v:#x}") });
            }
            Ok(Address::from_word(v.to_be_bytes::<32>().into()))
        };
        let id = |x: &Fr| -> Result<u64> {
            u64::try_from(fr_u256(x))
                .map_err(|_| Error::Malformed { what: "id instance (over 64 bits)", value: format!("{:#x}", fr_u256(x)) })
        };
        Ok(Binding {
            payee: ExecutorId(address(&f[0])?),
            chain_id: id(&f[1])?,
            escrow: address(&f[2])?,
            escrow_job: EscrowJobId(id(&f[3])?),
        })
    }
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "payee {} (chain {}, escrow {:#x}, escrow job {})", self.payee, self.chain_id, self.escrow, self.escrow_job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_round_trip_through_fields_and_refuse_what_does_not_fit() {
        let b = Binding {
            payee: ExecutorId(Address::repeat_byte(0xf3)),
            chain_id: 31337,
            escrow: Address::repeat_byte(0x5f),
            escrow_job: EscrowJobId(7),
        };
        let f = b.to_fields();
        assert_eq!(fr_u256(&f[0]), U256::from_be_slice(Address::repeat_byte(0xf3).as_slice()), "an address is its uint160");
        assert_eq!(Binding::from_fields(&f).unwrap(), b);
        let mut big = f;
        big[0] = Fr::from(2).pow([161]);
        assert!(Binding::from_fields(&big).is_err());
        let mut big = f;
        big[3] = Fr::from(u64::MAX) + Fr::ONE;
        assert!(Binding::from_fields(&big).is_err());
        assert_ne!(Salt::random(), Salt::random());
        assert_eq!(format!("{:?}", Salt::random()), "Salt(…)");
    }
}
