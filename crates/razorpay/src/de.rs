//! Lenient deserialisation helpers: Razorpay's payloads are not always typed
//! consistently (`"captured":"1"`, numbers sent as strings, `null` where a
//! value is expected, `notes` as `[]`). Each helper accepts the sloppy forms
//! seen in the wild and maps them onto one Rust type.

use serde::de::{self, Deserializer, Visitor};
use std::fmt;

/// Accepts `true`/`false`, `1`/`0`, `"1"`/`"0"`, `"true"`/`"false"`, `"yes"`/`"no"`,
/// `""` and `null` (false).
pub(crate) fn bool_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a boolean, 0/1, or a boolean-like string")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
            Ok(v != 0)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
            Ok(v != 0)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<bool, E> {
            Ok(v != 0.0)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => Ok(true),
                "0" | "false" | "no" | "" => Ok(false),
                other => Err(E::custom(format!("not a boolean: {other:?}"))),
            }
        }
        fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_none<E: de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<bool, D2::Error> {
            d.deserialize_any(V)
        }
    }
    d.deserialize_any(V)
}

struct OptIntVisitor;

impl<'de> Visitor<'de> for OptIntVisitor {
    type Value = Option<i64>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer, an integer-like string, or null")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        i64::try_from(v)
            .map(Some)
            .map_err(|_| E::custom("integer out of range"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        if v.fract() == 0.0 && v.abs() < 9.0e15 {
            Ok(Some(v as i64))
        } else {
            Err(E::custom(format!("not an integer: {v}")))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let t = v.trim();
        if t.is_empty() {
            return Ok(None);
        }
        t.parse::<i64>()
            .map(Some)
            .map_err(|_| E::custom(format!("not an integer: {v:?}")))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(i64::from(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
        d.deserialize_any(OptIntVisitor)
    }
}

/// An integer that may arrive as a number or a numeric string; `null` and `""` become `None`.
pub(crate) fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    d.deserialize_any(OptIntVisitor)
}

/// Like [`opt_int`] but `null` becomes `0`.
pub(crate) fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(opt_int(d)?.unwrap_or(0))
}

struct OptStrVisitor;

impl<'de> Visitor<'de> for OptStrVisitor {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, a number, or null")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
        d.deserialize_any(OptStrVisitor)
    }
}

/// A string that may arrive as a number or boolean (stringified) or `null` (`None`).
pub(crate) fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(OptStrVisitor)
}

/// Like [`opt_string`] but `null` becomes `""`.
pub(crate) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(opt_string(d)?.unwrap_or_default())
}

/// Any JSON value; `null` and missing become `Value::Null`.
pub(crate) fn value<'de, D: Deserializer<'de>>(d: D) -> Result<serde_json::Value, D::Error> {
    <serde_json::Value as serde::Deserialize>::deserialize(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct T {
        #[serde(deserialize_with = "bool_lenient")]
        b: bool,
        #[serde(deserialize_with = "opt_int")]
        i: Option<i64>,
        #[serde(deserialize_with = "int")]
        n: i64,
        #[serde(deserialize_with = "opt_string")]
        s: Option<String>,
    }

    #[test]
    fn sloppy_forms() {
        for (raw, want) in [
            (r#"{"b":"1"}"#, true),
            (r#"{"b":1}"#, true),
            (r#"{"b":true}"#, true),
            (r#"{"b":"true"}"#, true),
            (r#"{"b":"0"}"#, false),
            (r#"{"b":null}"#, false),
            (r#"{}"#, false),
        ] {
            let t: T = serde_json::from_str(raw).unwrap();
            assert_eq!(t.b, want, "{raw}");
        }
        let t: T = serde_json::from_str(r#"{"i":"42","n":null,"s":7}"#).unwrap();
        assert_eq!(t.i, Some(42));
        assert_eq!(t.n, 0);
        assert_eq!(t.s.as_deref(), Some("7"));
        let t: T = serde_json::from_str(r#"{"i":null,"n":"5","s":null}"#).unwrap();
        assert_eq!(t.i, None);
        assert_eq!(t.n, 5);
        assert_eq!(t.s, None);
        assert!(serde_json::from_str::<T>(r#"{"b":"maybe"}"#).is_err());
    }
}
