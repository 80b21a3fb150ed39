//! Secret values: held in `secrecy` types, redacted in `Debug`, zeroized on drop.
//!
//! A value is exposed only where it is handed to the child, compared, or written to Vault.

use std::fmt;

pub use secrecy::{ExposeSecret, SecretString};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// One field of a secret as Vault returned it. Non-string JSON values (numbers, booleans,
/// objects) are kept as their JSON text, which is what `vault kv get -field` prints.
pub struct SecretValue(pub SecretString);

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

impl SecretValue {
    pub fn new(value: String) -> Self {
        SecretValue(SecretString::from(value))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl Clone for SecretValue {
    fn clone(&self) -> Self {
        SecretValue::new(self.expose().to_string())
    }
}

impl<'de> Deserialize<'de> for SecretValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretValueVisitor)
    }
}

struct SecretValueVisitor;

impl<'de> Visitor<'de> for SecretValueVisitor {
    type Value = SecretValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a secret field value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<SecretValue, E> {
        Ok(SecretValue::new(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<SecretValue, E> {
        Ok(SecretValue::new(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<SecretValue, E> {
        Ok(SecretValue::new(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<SecretValue, E> {
        Ok(SecretValue::new(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<SecretValue, E> {
        Ok(SecretValue::new(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<SecretValue, E> {
        Ok(SecretValue::new(v.to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<SecretValue, E> {
        Ok(SecretValue::new(String::new()))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SecretValue, A::Error> {
        let value =
            serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(SecretValue::new(value.to_string()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<SecretValue, A::Error> {
        let value =
            serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(SecretValue::new(value.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let value = SecretValue::new("fake-value-123".into());
        assert!(!format!("{value:?}").contains("fake"));
    }

    #[test]
    fn non_string_json_becomes_its_text() {
        let fields: std::collections::BTreeMap<String, SecretValue> =
            serde_json::from_str(r#"{"a":"x\ny","n":42,"b":true,"o":{"k":1},"z":null}"#)
                .unwrap();
        assert_eq!(fields["a"].expose(), "x\ny");
        assert_eq!(fields["n"].expose(), "42");
        assert_eq!(fields["b"].expose(), "true");
        assert_eq!(fields["o"].expose(), r#"{"k":1}"#);
        assert_eq!(fields["z"].expose(), "");
    }
}
