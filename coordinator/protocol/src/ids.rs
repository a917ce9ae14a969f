//! The identifiers and amounts the protocol passes around, each with one conversion each way.

use std::fmt;
use std::str::FromStr;

use alloy::primitives::{Address, U256};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

use crate::error::{Error, Result};
use crate::hexbytes::{string_schema, string_serde, truncated};

/// A job's id at the coordinator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub u64);

/// A job's id in the on-chain escrow (`InferenceEscrow.jobs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EscrowJobId(pub u64);

macro_rules! integer_id {
    ($t:ident, $what:literal, $desc:literal) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl FromStr for $t {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                s.parse().map($t).map_err(|_| Error::Malformed { what: $what, value: truncated(s) })
            }
        }

        impl utoipa::PartialSchema for $t {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64)))
                    .minimum(Some(0))
                    .description(Some($desc))
                    .into()
            }
        }

        impl utoipa::ToSchema for $t {}
    };
}

integer_id!(JobId, "job id", "A job's id at the coordinator.");
integer_id!(EscrowJobId, "escrow job id", "A job's id in the on-chain escrow.");

impl EscrowJobId {
    /// The on-chain `uint256` (ruint's blanket `From` impls leave no room for a `From` here).
    pub fn to_u256(self) -> U256 {
        U256::from(self.0)
    }
}

impl TryFrom<U256> for EscrowJobId {
    type Error = Error;
    fn try_from(v: U256) -> Result<Self> {
        u64::try_from(v).map(EscrowJobId).map_err(|_| Error::Malformed { what: "escrow job id", value: v.to_string() })
    }
}

/// An executor: its Ethereum address, which signs its requests and receives its pay. Shown
/// as lowercase 0x-hex; parsed in any case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExecutorId(pub Address);

impl ExecutorId {
    /// The address.
    pub fn address(self) -> Address {
        self.0
    }
}

impl From<Address> for ExecutorId {
    fn from(a: Address) -> Self {
        ExecutorId(a)
    }
}

impl fmt::Display for ExecutorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl FromStr for ExecutorId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        // Any case: a checksummed address and its lowercase form are the same executor.
        s.to_ascii_lowercase().parse::<Address>().map(ExecutorId).map_err(|_| Error::Malformed { what: "address", value: truncated(s) })
    }
}

string_serde!(ExecutorId);

impl utoipa::PartialSchema for ExecutorId {
    fn schema() -> RefOr<Schema> {
        string_schema("^0x[0-9a-fA-F]{40}$", "An executor's Ethereum address (its identity and payee).")
    }
}

impl utoipa::ToSchema for ExecutorId {}

/// A model's id: a path component and a URL segment, so `[A-Za-z0-9_-]{1,64}`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModelId(String);

impl ModelId {
    /// The id, checked.
    pub fn new(id: &str) -> Result<Self> {
        let ok = (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(ModelId(id.to_string()))
        } else {
            Err(Error::Malformed { what: "model id (1 to 64 of A-Z a-z 0-9 _ -)", value: truncated(id) })
        }
    }

    /// The id as a string (safe as a path component).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ModelId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        ModelId::new(s)
    }
}

string_serde!(ModelId);

impl utoipa::PartialSchema for ModelId {
    fn schema() -> RefOr<Schema> {
        string_schema("^[A-Za-z0-9_-]{1,64}$", "A model's id.")
    }
}

impl utoipa::ToSchema for ModelId {}

/// An amount of wei, as a decimal string on the wire (it can exceed JSON's exact integers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Wei(pub U256);

impl fmt::Display for Wei {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Wei {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::Malformed { what: "wei (a decimal number)", value: truncated(s) });
        }
        U256::from_str_radix(s, 10).map(Wei).map_err(|_| Error::Malformed { what: "wei (below 2^256)", value: truncated(s) })
    }
}

impl From<U256> for Wei {
    fn from(v: U256) -> Self {
        Wei(v)
    }
}

string_serde!(Wei);

impl utoipa::PartialSchema for Wei {
    fn schema() -> RefOr<Schema> {
        string_schema("^[0-9]{1,78}$", "An amount in wei, as a decimal string.")
    }
}

impl utoipa::ToSchema for Wei {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_and_print_one_way() {
        let a: ExecutorId = "0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266".parse().unwrap();
        assert_eq!(a.to_string(), "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266");
        assert_eq!(serde_json::from_str::<ExecutorId>("\"0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266\"").unwrap(), a);
        assert!("0x1234".parse::<ExecutorId>().is_err());
        assert!(ModelId::new("mlp-2_a").is_ok());
        for bad in ["", "../etc", "a/b", "a b", &"x".repeat(65), "é"] {
            assert!(ModelId::new(bad).is_err(), "{bad}");
            assert!(serde_json::from_str::<ModelId>(&format!("{bad:?}")).is_err(), "{bad}");
        }
        assert_eq!("1000".parse::<Wei>().unwrap(), Wei(U256::from(1000)));
        for bad in ["", "-1", "1e3", "0x10", &"9".repeat(80)] {
            assert!(bad.parse::<Wei>().is_err(), "{bad}");
        }
        assert_eq!(EscrowJobId::try_from(U256::from(7)).unwrap(), EscrowJobId(7));
        assert!(EscrowJobId::try_from(U256::MAX).is_err());
    }
}
