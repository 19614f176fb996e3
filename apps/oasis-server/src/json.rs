//! JSON request bodies with Django REST framework's field errors: the one mechanism behind every
//! route's `web::Json<T>` (see [`crate::web`]) and every body parsed by hand ([`from_slice`]).
//!
//! A body that is not JSON at all answers `{"detail": "JSON parse error - …"}` (actix's
//! `JsonConfig`, see [`crate::error::json_config`]). Valid JSON is then deserialized into `T`
//! from a [`serde_json::Value`] with [`serde_path_to_error`], so a failure knows the path of the
//! value it failed on. It becomes DRF's message under that path — `{"price": ["A valid integer
//! is required."]}`, nested as DRF nests (`{"outer": {"inner": ["…"]}}`, list items by index) —
//! and never a Rust type name or a position. Like DRF's fields, scalars are coerced where DRF
//! coerces them (`"5"` for an integer, `1` for a string, `"true"` for a boolean), and every
//! wrong field is reported, not only the first.
use crate::error::ApiError;
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// A JSON request body of type `T` (drop-in for `actix_web::web::Json`; honours the app's
/// `JsonConfig` for size limit and content type).
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let value = actix_web::web::Json::<Value>::from_request(req, payload);
        Box::pin(async move {
            let value = value.await?.into_inner();
            Ok(Json(from_value(value)?))
        })
    }
}

/// Parses a raw body: not JSON → `{"detail": "JSON parse error - …"}`, else [`from_value`].
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| crate::error::parse_error(&e))?;
    from_value(value)
}

/// More rounds than any body has wrong fields; each round fixes (coerces) or removes one value.
const MAX_ROUNDS: usize = 100;

/// Deserializes `T` from parsed JSON, answering DRF's field errors for every value that does not
/// fit (wrong type, missing required field, unknown choice).
pub fn from_value<T: DeserializeOwned>(mut value: Value) -> Result<T, ApiError> {
    let mut errors = ErrorTree::default();
    for _ in 0..MAX_ROUNDS {
        let err = match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(t) if errors.is_empty() => return Ok(t),
            Ok(_) => break,
            Err(e) => e,
        };
        let path = keys(err.path());
        if let Some(k) = list_for_object::<T>(&value, &path) {
            let mut p = path[..k].to_vec();
            p.push(Key::Field("non_field_errors".to_owned()));
            let message = "Invalid data. Expected a dictionary, but got list.";
            if !errors.add(&p, message) || !remove_field(&mut value, &path[..k]) {
                break;
            }
            continue;
        }
        let message = err.inner().to_string();
        match diagnose(&message, at(&value, &path)) {
            Verdict::Coerce(v) => {
                if !set(&mut value, &path, v) {
                    errors.add(&path, INVALID);
                    break;
                }
            }
            Verdict::Missing(field) => {
                let mut p = path.clone();
                p.push(Key::Field(field));
                // A no-op when this field's wrong value was reported (and removed) already.
                errors.add(&p, REQUIRED);
                // serde names one missing field per object; go on with the object's siblings.
                if !remove_field(&mut value, &path) {
                    break;
                }
            }
            Verdict::Invalid { nested, message } => {
                let mut p = path.clone();
                if nested {
                    p.push(Key::Field("non_field_errors".to_owned()));
                }
                if !errors.add(&p, &message) || !remove_field(&mut value, &path) {
                    break;
                }
            }
        }
    }
    if errors.is_empty() {
        // Only reachable when the rounds ran out without an error recorded.
        errors.add(&[], INVALID);
    }
    Err(errors.into_error())
}

fn keys(path: &serde_path_to_error::Path) -> Vec<Key> {
    path.iter()
        .filter_map(|s| match s {
            serde_path_to_error::Segment::Map { key } => Some(Key::Field(key.clone())),
            serde_path_to_error::Segment::Seq { index } => Some(Key::Index(*index)),
            _ => None,
        })
        .collect()
}

/// serde reads a struct from a list too (by position); DRF never does. Of the lists on the
/// failing `path`, the shallowest one that stands where `T` wants an object, if any: found by
/// putting `{}` in its place and seeing whether `T` then complains about a map there.
fn list_for_object<T: DeserializeOwned>(value: &Value, path: &[Key]) -> Option<usize> {
    (0..=path.len()).find(|&k| {
        if !matches!(at(value, &path[..k]), Some(Value::Array(_))) {
            return false;
        }
        let mut probe = value.clone();
        set(&mut probe, &path[..k], Value::Object(Map::new()));
        match serde_path_to_error::deserialize::<_, T>(&probe) {
            Err(e) => {
                !(keys(e.path()) == path[..k]
                    && e.inner().to_string().starts_with("invalid type: map"))
            }
            Ok(_) => true,
        }
    })
}

const REQUIRED: &str = "This field is required.";
const NOT_NULL: &str = "This field may not be null.";
const INVALID: &str = "Invalid value.";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Field(String),
    Index(usize),
}

impl Key {
    fn name(&self) -> String {
        match self {
            Key::Field(f) => f.clone(),
            Key::Index(i) => i.to_string(),
        }
    }
}

/// What to do about one deserialization failure.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// DRF would accept this value in another form: replace it and try again.
    Coerce(Value),
    /// A required field is absent.
    Missing(String),
    /// The value is wrong; `nested` puts the message under `non_field_errors` of that path
    /// (a nested object).
    Invalid { nested: bool, message: String },
}

fn invalid(message: impl Into<String>) -> Verdict {
    Verdict::Invalid {
        nested: false,
        message: message.into(),
    }
}

/// Python's name of a JSON value's type, as DRF's messages say it.
fn py_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// The inclusive range of a Rust integer type named in serde's `expected …`.
fn int_range(ty: &str) -> Option<(i128, i128)> {
    Some(match ty {
        "i8" => (i8::MIN.into(), i8::MAX.into()),
        "i16" => (i16::MIN.into(), i16::MAX.into()),
        "i32" => (i32::MIN.into(), i32::MAX.into()),
        "i64" | "isize" => (i64::MIN.into(), i64::MAX.into()),
        "u8" => (0, u8::MAX.into()),
        "u16" => (0, u16::MAX.into()),
        "u32" => (0, u32::MAX.into()),
        "u64" | "usize" => (0, u64::MAX.into()),
        "i128" => (i128::MIN, i128::MAX),
        "u128" => (0, i128::MAX),
        _ => return None,
    })
}

const TRUE_VALUES: &[&str] = &["t", "y", "yes", "true", "on", "1"];
const FALSE_VALUES: &[&str] = &["f", "n", "no", "false", "off", "0"];

/// DRF's reading of a value as an integer: numbers without a fraction, and strings of them
/// (`"12"`, `"12.0"`).
fn as_integer(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && f.fract() == 0.0 && f.abs() < 1e38)
                    .map(|f| f as i128)
            }),
        Value::String(s) => {
            let t = s.trim();
            let t = match t.split_once('.') {
                Some((int, frac)) if frac.chars().all(|c| c == '0') => int,
                _ => t,
            };
            t.parse::<i128>().ok()
        }
        _ => None,
    }
}

fn diagnose(message: &str, actual: Option<&Value>) -> Verdict {
    if let Some(rest) = message.strip_prefix("missing field `") {
        if let Some((field, _)) = rest.split_once('`') {
            return Verdict::Missing(field.to_owned());
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let v = rest.split_once('`').map(|(v, _)| v).unwrap_or(rest);
        return invalid(format!("\"{v}\" is not a valid choice."));
    }
    if message.starts_with("unknown field `") {
        return invalid("Unknown field.");
    }
    let Some(actual) = actual else {
        return invalid(INVALID);
    };
    let expected = match message.split_once(", expected ") {
        Some((head, exp))
            if head.starts_with("invalid type") || head.starts_with("invalid value") =>
        {
            exp
        }
        _ => return invalid(INVALID),
    };
    if actual.is_null() {
        return invalid(NOT_NULL);
    }
    if let Some((min, max)) = int_range(expected) {
        return match as_integer(actual) {
            Some(n) if n < min => invalid(format!(
                "Ensure this value is greater than or equal to {min}."
            )),
            Some(n) if n > max => {
                invalid(format!("Ensure this value is less than or equal to {max}."))
            }
            Some(n) => match serde_json::Number::from_i128(n) {
                Some(num) if Value::Number(num.clone()) != *actual => {
                    Verdict::Coerce(Value::Number(num))
                }
                _ => invalid("A valid integer is required."),
            },
            // Booleans are not integers for DRF either (`int("True")` fails).
            None => invalid("A valid integer is required."),
        };
    }
    match expected {
        "f32" | "f64" => match actual {
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(f) if f.is_finite() => serde_json::Number::from_f64(f)
                    .map(|n| Verdict::Coerce(Value::Number(n)))
                    .unwrap_or_else(|| invalid("A valid number is required.")),
                _ => invalid("A valid number is required."),
            },
            _ => invalid("A valid number is required."),
        },
        "a boolean" => {
            let b = match actual {
                Value::String(s) if TRUE_VALUES.contains(&s.to_lowercase().as_str()) => Some(true),
                Value::String(s) if FALSE_VALUES.contains(&s.to_lowercase().as_str()) => {
                    Some(false)
                }
                Value::Number(n) if n.as_f64() == Some(1.0) => Some(true),
                Value::Number(n) if n.as_f64() == Some(0.0) => Some(false),
                _ => None,
            };
            match b {
                Some(b) => Verdict::Coerce(Value::Bool(b)),
                None => invalid("Must be a valid boolean."),
            }
        }
        "a string" | "a character" => match actual {
            Value::Number(n) => Verdict::Coerce(Value::String(n.to_string())),
            _ => invalid("Not a valid string."),
        },
        e if e.starts_with("a sequence")
            || e.starts_with("a tuple")
            || e.starts_with("an array") =>
        {
            invalid(format!(
                "Expected a list of items but got type \"{}\".",
                py_type(actual)
            ))
        }
        e if e.starts_with("struct ") || e.starts_with("a map") => Verdict::Invalid {
            nested: true,
            message: format!(
                "Invalid data. Expected a dictionary, but got {}.",
                py_type(actual)
            ),
        },
        e if e.contains("variant") => invalid(format!(
            "\"{}\" is not a valid choice.",
            match actual {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }
        )),
        _ => invalid(INVALID),
    }
}

fn at<'v>(value: &'v Value, path: &[Key]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, k| match (v, k) {
        (Value::Object(m), Key::Field(f)) => m.get(f),
        (Value::Array(a), Key::Index(i)) => a.get(*i),
        _ => None,
    })
}

fn at_mut<'v>(value: &'v mut Value, path: &[Key]) -> Option<&'v mut Value> {
    path.iter().try_fold(value, |v, k| match (v, k) {
        (Value::Object(m), Key::Field(f)) => m.get_mut(f),
        (Value::Array(a), Key::Index(i)) => a.get_mut(*i),
        _ => None,
    })
}

fn set(value: &mut Value, path: &[Key], new: Value) -> bool {
    match at_mut(value, path) {
        Some(slot) => {
            *slot = new;
            true
        }
        None => false,
    }
}

/// Removes the value at `path` (or, inside a list, the whole list) so that deserialization can
/// go on to the next field; false when there is nothing to remove (the body itself is wrong).
fn remove_field(value: &mut Value, path: &[Key]) -> bool {
    let Some(last_field) = path.iter().rposition(|k| matches!(k, Key::Field(_))) else {
        return false;
    };
    let Key::Field(name) = &path[last_field] else {
        return false;
    };
    match at_mut(value, &path[..last_field]) {
        Some(Value::Object(m)) => m.remove(name).is_some(),
        _ => false,
    }
}

/// The nested error map, built as errors are found.
#[derive(Default)]
struct ErrorTree(Map<String, Value>);

impl ErrorTree {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds `message` at `path` (`non_field_errors` for the body itself); false when that path
    /// already has an error (nothing new was learnt).
    fn add(&mut self, path: &[Key], message: &str) -> bool {
        let keys: Vec<String> = if path.is_empty() {
            vec!["non_field_errors".to_owned()]
        } else {
            path.iter().map(Key::name).collect()
        };
        let (leaf, parents) = keys.split_last().expect("at least one key");
        let mut node = &mut self.0;
        for k in parents {
            let entry = node
                .entry(k.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            match entry {
                Value::Object(m) => node = m,
                _ => return false,
            }
        }
        match node.get(leaf) {
            Some(_) => false,
            None => {
                node.insert(leaf.clone(), Value::Array(vec![Value::from(message)]));
                true
            }
        }
    }

    fn into_error(self) -> ApiError {
        ApiError::InvalidBody(Value::Object(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Manual,
        Google,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[allow(dead_code)]
    struct Body {
        price: Option<i64>,
        name: Option<String>,
        active: Option<bool>,
        kind: Option<Kind>,
        tags: Option<Vec<i64>>,
        inner: Option<Inner>,
        required: String,
    }

    fn errors(v: Value) -> Value {
        match from_value::<Body>(v) {
            Ok(b) => panic!("accepted: {b:?}"),
            Err(ApiError::InvalidBody(e)) => e,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn every_wrong_field_gets_drf_messages() {
        let e = errors(json!({
            "price": 12.5, "name": ["x"], "active": "maybe", "kind": "fax",
            "tags": [1, "two"], "inner": {"n": -1}
        }));
        assert_eq!(
            e,
            json!({
                "price": ["A valid integer is required."],
                "name": ["Not a valid string."],
                "active": ["Must be a valid boolean."],
                "kind": ["\"fax\" is not a valid choice."],
                "tags": {"1": ["A valid integer is required."]},
                "inner": {"n": ["Ensure this value is greater than or equal to 0."]},
                "required": ["This field is required."],
            })
        );
    }

    #[test]
    fn nulls_nested_objects_and_the_body_itself() {
        let e = errors(json!({"required": null, "inner": "x"}));
        assert_eq!(
            e,
            json!({
                "required": ["This field may not be null."],
                "inner": {"non_field_errors": ["Invalid data. Expected a dictionary, but got str."]},
            })
        );
        let e = errors(json!({"required": "x", "inner": ["7"], "price": "p"}));
        assert_eq!(
            e,
            json!({
                "inner": {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]},
                "price": ["A valid integer is required."],
            })
        );
        let e = errors(json!([1]));
        assert_eq!(
            e,
            json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})
        );
        let e = errors(json!({"required": "x", "tags": "1,2"}));
        assert_eq!(
            e,
            json!({"tags": ["Expected a list of items but got type \"str\"."]})
        );
    }

    #[test]
    fn drf_coercions_are_accepted() {
        let b = from_value::<Body>(json!({
            "price": "12", "name": 5, "active": "true", "tags": ["1", 2.0],
            "inner": {"n": "7"}, "required": 1.5, "kind": "google"
        }))
        .unwrap();
        assert_eq!(b.price, Some(12));
        assert_eq!(b.name.as_deref(), Some("5"));
        assert_eq!(b.active, Some(true));
        assert_eq!(b.tags, Some(vec![1, 2]));
        assert_eq!(b.inner, Some(Inner { n: 7 }));
        assert_eq!(b.required, "1.5");
        assert_eq!(b.kind, Some(Kind::Google));
        let e = errors(json!({"required": "x", "price": 1e30, "active": 2}));
        assert_eq!(
            e,
            json!({
                "price": ["Ensure this value is less than or equal to 9223372036854775807."],
                "active": ["Must be a valid boolean."],
            })
        );
    }

    #[test]
    fn not_json_is_a_parse_error() {
        match from_slice::<Body>(b"{\"price\": ") {
            Err(ApiError::Detail { detail, .. }) => {
                assert!(detail.starts_with("JSON parse error - "), "{detail}")
            }
            other => panic!("{other:?}"),
        }
    }
}
