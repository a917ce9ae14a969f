//! Bytes on the wire: 0x-prefixed lowercase hex, the one hex formatter of the market.

use std::fmt;
use std::str::FromStr;

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

use crate::error::{Error, Result};

/// `bytes` as `0x` followed by two lowercase hex digits per byte.
pub fn to_hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Decodes hex with or without a `0x` prefix; `what` names the field in the error.
pub(crate) fn from_hex(s: &str, what: &'static str) -> Result<Vec<u8>> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
    hex::decode(digits).map_err(|_| Error::Malformed { what, value: truncated(s) })
}

/// At most 80 characters of a value, for error messages.
pub(crate) fn truncated(s: &str) -> String {
    if s.len() <= 80 {
        s.to_string()
    } else {
        format!("{}…", &s[..s.char_indices().nth(80).map_or(s.len(), |(i, _)| i)])
    }
}

/// A string schema with a pattern and a description, for the OpenAPI document.
pub(crate) fn string_schema(pattern: &str, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern)).description(Some(description)).into()
}

/// Serializes a type as its `Display` string and deserializes it through its `FromStr`, so
/// that the wire form and the printed form are one.
macro_rules! string_serde {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                std::borrow::Cow::<str>::deserialize(d)?.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use string_serde;

/// Arbitrary bytes (ciphertexts, proofs, ONNX files), as 0x-hex on the wire.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct HexBytes(pub Vec<u8>);

impl fmt::Display for HexBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_hex(&self.0))
    }
}

impl fmt::Debug for HexBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HexBytes({} bytes)", self.0.len())
    }
}

impl FromStr for HexBytes {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        from_hex(s, "hex bytes").map(HexBytes)
    }
}

impl From<Vec<u8>> for HexBytes {
    fn from(v: Vec<u8>) -> Self {
        HexBytes(v)
    }
}

string_serde!(HexBytes);

impl utoipa::PartialSchema for HexBytes {
    fn schema() -> RefOr<Schema> {
        string_schema("^(0x)?([0-9a-fA-F]{2})*$", "Bytes as hex, with or without a 0x prefix (0x-prefixed lowercase in responses).")
    }
}

impl utoipa::ToSchema for HexBytes {}

/// A 32-byte hash (model hash, vk hash), as 0x-hex on the wire.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash32(pub [u8; 32]);

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_hex(&self.0))
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash32({self})")
    }
}

impl FromStr for Hash32 {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bytes = from_hex(s, "32-byte hash")?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| Error::Malformed { what: "32-byte hash", value: truncated(s) })?;
        Ok(Hash32(arr))
    }
}

impl From<[u8; 32]> for Hash32 {
    fn from(b: [u8; 32]) -> Self {
        Hash32(b)
    }
}

string_serde!(Hash32);

impl utoipa::PartialSchema for Hash32 {
    fn schema() -> RefOr<Schema> {
        string_schema("^(0x)?[0-9a-fA-F]{64}$", "A 32-byte hash (SHA-256) as hex.")
    }
}

impl utoipa::ToSchema for Hash32 {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_with_or_without_prefix() {
        let b = HexBytes(vec![0, 1, 0xab]);
        assert_eq!(b.to_string(), "0x0001ab");
        assert_eq!("0x0001AB".parse::<HexBytes>().unwrap(), b);
        assert_eq!("0001ab".parse::<HexBytes>().unwrap(), b);
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"0x0001ab\"");
        assert!("0x0g".parse::<HexBytes>().is_err());
        assert!("0x123".parse::<HexBytes>().is_err(), "odd length");
        let h: Hash32 = format!("0x{}", "ab".repeat(32)).parse().unwrap();
        assert_eq!(h.0, [0xab; 32]);
        assert!("0xabab".parse::<Hash32>().is_err(), "short");
    }
}
