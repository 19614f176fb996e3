//! [`Notes`]: Razorpay's free-form key/value annotations.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Razorpay `notes`: at most 15 pairs of strings (256 characters each).
///
/// Deserialisation is lenient: Razorpay serialises empty notes as `[]` rather than
/// `{}`, and merchants' payloads carry numbers and booleans as values
/// (`"tierID":4`); those are kept as their JSON text (`"4"`). `null` values
/// are dropped and `null` notes are empty.
///
/// Serialisation writes an object, except that empty notes are written as `[]`
/// exactly as Razorpay does (request types skip empty notes altogether).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notes(pub BTreeMap<String, String>);

impl Notes {
    /// Empty notes.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a pair (builder style).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }
    /// Inserts a pair, returning the previous value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        self.0.insert(key.into(), value.into())
    }
    /// The value for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    /// Whether there are no notes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Iterates over the pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Notes {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Notes(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl Serialize for Notes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_empty() {
            return s.serialize_seq(Some(0))?.end();
        }
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

fn value_to_string(v: serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

impl<'de> Deserialize<'de> for Notes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Notes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of notes, an array, or null")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Notes, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = a.next_entry::<String, serde_json::Value>()? {
                    if let Some(v) = value_to_string(v) {
                        out.insert(k, v);
                    }
                }
                Ok(Notes(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Notes, A::Error> {
                // `[]` is Razorpay's empty notes; a non-empty list is keyed by index.
                let mut out = BTreeMap::new();
                let mut i = 0usize;
                while let Some(v) = a.next_element::<serde_json::Value>()? {
                    if let Some(v) = value_to_string(v) {
                        out.insert(i.to_string(), v);
                    }
                    i += 1;
                }
                Ok(Notes(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Notes, E> {
                Ok(Notes::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Notes, E> {
                Ok(Notes::default())
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Notes, D2::Error> {
                d.deserialize_any(V)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Notes, E> {
                // Seen as "" for empty notes in some exports.
                if v.trim().is_empty() {
                    Ok(Notes::default())
                } else {
                    Err(E::custom("notes must be an object"))
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_object_array_null_and_numbers() {
        let n: Notes =
            serde_json::from_str(r#"{"userID":"anshulyadav","tierID":4,"x":null,"b":true}"#)
                .unwrap();
        assert_eq!(n.get("userID"), Some("anshulyadav"));
        assert_eq!(n.get("tierID"), Some("4"));
        assert_eq!(n.get("b"), Some("true"));
        assert_eq!(n.get("x"), None);
        let n: Notes = serde_json::from_str("[]").unwrap();
        assert!(n.is_empty());
        let n: Notes = serde_json::from_str("null").unwrap();
        assert!(n.is_empty());
        let n: Notes = serde_json::from_str(r#"["a"]"#).unwrap();
        assert_eq!(n.get("0"), Some("a"));
    }

    #[test]
    fn serialises_like_razorpay() {
        assert_eq!(serde_json::to_string(&Notes::new()).unwrap(), "[]");
        let n = Notes::new().with("type", "cheer");
        assert_eq!(serde_json::to_string(&n).unwrap(), r#"{"type":"cheer"}"#);
    }
}
