//! Request bodies (JSON or form-encoded) and Razorpay-shaped errors.

use actix_web::{http::StatusCode, HttpResponse};
use razorpay::Notes;
use serde_json::{json, Map, Value};

/// An error answered in Razorpay's shape:
/// `{"error":{"code","description","source","step","reason","metadata","field"}}`.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub description: String,
    pub field: Option<String>,
    pub source: &'static str,
    pub step: &'static str,
    pub reason: &'static str,
}

impl ApiError {
    /// 400 for input that fails validation (names the field).
    pub fn validation(description: impl Into<String>, field: Option<&str>) -> Self {
        ApiError {
            status: 400,
            code: razorpay::error::BAD_REQUEST_ERROR,
            description: description.into(),
            field: field.map(str::to_owned),
            source: "business",
            step: "payment_initiation",
            reason: "input_validation_failed",
        }
    }

    /// 400 without a field (state errors, unknown ids, unknown URLs).
    pub fn bad_request(description: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            code: razorpay::error::BAD_REQUEST_ERROR,
            description: description.into(),
            field: None,
            source: "NA",
            step: "NA",
            reason: "NA",
        }
    }

    /// A state error that names the offending field (e.g. `status`).
    pub fn state(description: impl Into<String>, field: &str) -> Self {
        ApiError {
            field: Some(field.to_owned()),
            ..Self::bad_request(description)
        }
    }

    pub fn not_found() -> Self {
        Self::bad_request("The id provided does not exist")
    }

    pub fn invalid_id(id: &str) -> Self {
        Self::bad_request(format!("{id} is not a valid id"))
    }

    pub fn unknown_url() -> Self {
        Self::bad_request("The requested URL was not found on the server.")
    }

    pub fn unauthorized(description: &str) -> Self {
        ApiError {
            status: 401,
            ..Self::bad_request(description)
        }
    }

    /// An injected server-side failure (500 SERVER_ERROR, 502/504 GATEWAY_ERROR, ...).
    pub fn server(status: u16) -> Self {
        let (code, description) = match status {
            502 => (
                razorpay::error::GATEWAY_ERROR,
                "Bad gateway: the upstream server did not respond correctly",
            ),
            504 => (
                razorpay::error::GATEWAY_ERROR,
                "Gateway timed out: the upstream server did not respond in time",
            ),
            429 => (
                razorpay::error::BAD_REQUEST_ERROR,
                "Too many requests. Please try after some time.",
            ),
            409 => (
                razorpay::error::BAD_REQUEST_ERROR,
                "A request with the same idempotency key is already being processed",
            ),
            _ => (
                razorpay::error::SERVER_ERROR,
                "The server encountered an error. The incident has been reported to admins",
            ),
        };
        ApiError {
            status,
            code,
            description: description.to_owned(),
            field: None,
            source: "NA",
            step: "NA",
            reason: "NA",
        }
    }

    pub fn body(&self) -> Value {
        json!({
            "error": {
                "code": self.code,
                "description": self.description,
                "source": self.source,
                "step": self.step,
                "reason": self.reason,
                "metadata": {},
                "field": self.field,
            }
        })
    }

    pub fn response(&self) -> HttpResponse {
        HttpResponse::build(
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        )
        .json(self.body())
    }
}

/// A parsed request body: JSON object or `application/x-www-form-urlencoded`
/// (`notes[key]=v`, `addons[0][item][name]=x`), viewed as a JSON object.
#[derive(Debug, Clone, Default)]
pub(crate) struct Input {
    pub map: Map<String, Value>,
    prefix: String,
}

fn is_form(content_type: &str) -> bool {
    content_type
        .to_ascii_lowercase()
        .contains("application/x-www-form-urlencoded")
}

/// Inserts `value` at the bracket path of `key` (`a[b][0]`).
fn insert_path(root: &mut Map<String, Value>, key: &str, value: String) {
    let mut parts: Vec<String> = Vec::new();
    match key.find('[') {
        Some(i) => {
            parts.push(key[..i].to_owned());
            let mut rest = &key[i..];
            while let Some(stripped) = rest.strip_prefix('[') {
                match stripped.find(']') {
                    Some(j) => {
                        parts.push(stripped[..j].to_owned());
                        rest = &stripped[j + 1..];
                    }
                    None => break,
                }
            }
        }
        None => parts.push(key.to_owned()),
    }
    let mut cur = root;
    for (i, p) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            cur.insert(p.clone(), Value::String(value));
            return;
        }
        let entry = cur
            .entry(p.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        cur = entry.as_object_mut().expect("just made an object");
    }
}

/// Objects whose keys are all indices (`addons[0]`) become arrays.
fn arrays_from_indices(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let m: Map<String, Value> = m
                .into_iter()
                .map(|(k, v)| (k, arrays_from_indices(v)))
                .collect();
            if !m.is_empty() && m.keys().all(|k| k.parse::<usize>().is_ok()) {
                let mut items: Vec<(usize, Value)> = m
                    .into_iter()
                    .map(|(k, v)| (k.parse().unwrap_or(0), v))
                    .collect();
                items.sort_by_key(|(i, _)| *i);
                Value::Array(items.into_iter().map(|(_, v)| v).collect())
            } else {
                Value::Object(m)
            }
        }
        other => other,
    }
}

pub(crate) fn parse_form(body: &[u8]) -> Map<String, Value> {
    let mut root = Map::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        insert_path(&mut root, &k, v.into_owned());
    }
    match arrays_from_indices(Value::Object(root)) {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl Input {
    /// Parses a request body. An empty body is an empty object.
    pub fn parse(content_type: &str, body: &[u8]) -> Result<Input, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Input::default());
        }
        if is_form(content_type) {
            return Ok(Input {
                map: parse_form(body),
                prefix: String::new(),
            });
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Input {
                map,
                prefix: String::new(),
            }),
            Ok(Value::Array(a)) if a.is_empty() => Ok(Input::default()),
            Ok(_) => Err(ApiError::bad_request(
                "The request body must be a JSON object",
            )),
            Err(_)
                if !content_type.to_ascii_lowercase().contains("json") && body.contains(&b'=') =>
            {
                Ok(Input {
                    map: parse_form(body),
                    prefix: String::new(),
                })
            }
            Err(_) => Err(ApiError::bad_request("The request body is not valid JSON")),
        }
    }

    /// The fields as given (a nested object kept as JSON).
    pub fn into_map(self) -> Map<String, Value> {
        self.map
    }

    pub fn from_map(map: Map<String, Value>) -> Input {
        Input {
            map,
            prefix: String::new(),
        }
    }

    fn name(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// Rejects any key not in `allowed` the way Razorpay does.
    pub fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        if let Some(k) = self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            let name = self.name(k);
            return Err(ApiError::validation(
                format!("{name} is/are not required and should not be sent"),
                Some(&name),
            ));
        }
        Ok(())
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let n = match v {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        n.map(Some).ok_or_else(|| {
            let name = self.name(key);
            ApiError::validation(format!("The {name} must be an integer."), Some(&name))
        })
    }

    pub fn req_int(&self, key: &str) -> Result<i64, ApiError> {
        self.int(key)?.ok_or_else(|| self.required(key))
    }

    pub fn required(&self, key: &str) -> ApiError {
        let name = self.name(key);
        ApiError::validation(format!("The {name} field is required."), Some(&name))
    }

    pub fn str(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => {
                let name = self.name(key);
                Err(ApiError::validation(
                    format!("The {name} must be a string."),
                    Some(&name),
                ))
            }
        }
    }

    pub fn req_str(&self, key: &str) -> Result<String, ApiError> {
        match self.str(key)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(self.required(key)),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let b = match v {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => match n.as_i64() {
                Some(0) => Some(false),
                Some(1) => Some(true),
                _ => None,
            },
            Value::String(s) => match s.trim() {
                "1" | "true" => Some(true),
                "0" | "false" | "" => Some(false),
                _ => None,
            },
            _ => None,
        };
        b.map(Some).ok_or_else(|| {
            let name = self.name(key);
            ApiError::validation(
                format!("The {name} field must be true or false."),
                Some(&name),
            )
        })
    }

    pub fn obj(&self, key: &str) -> Result<Option<Input>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Input {
                map: m.clone(),
                prefix: format!("{}.", self.name(key)),
            })),
            Some(v) => {
                let name = self.name(key);
                Err(ApiError::validation(
                    format!("The {name} must be an object, not {}.", type_name(v)),
                    Some(&name),
                ))
            }
        }
    }

    pub fn array(&self, key: &str) -> Result<Vec<Input>, ApiError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Object(m) => Ok(Input {
                        map: m.clone(),
                        prefix: format!("{}.{i}.", self.name(key)),
                    }),
                    _ => {
                        let name = self.name(key);
                        Err(ApiError::validation(
                            format!("The {name} must be an array of objects."),
                            Some(&name),
                        ))
                    }
                })
                .collect(),
            Some(_) => {
                let name = self.name(key);
                Err(ApiError::validation(
                    format!("The {name} must be an array."),
                    Some(&name),
                ))
            }
        }
    }

    /// `notes`: an object of at most 15 pairs, values of at most 256 characters
    /// (strings; numbers and booleans are kept as their text). `[]` is empty notes.
    pub fn notes(&self) -> Result<Notes, ApiError> {
        let name = self.name("notes");
        let map = match self.get("notes") {
            None => return Ok(Notes::new()),
            Some(Value::Array(a)) if a.is_empty() => return Ok(Notes::new()),
            Some(Value::String(s)) if s.is_empty() => return Ok(Notes::new()),
            Some(Value::Object(m)) => m,
            Some(_) => {
                return Err(ApiError::validation(
                    "notes should be an array or an object",
                    Some(&name),
                ))
            }
        };
        if map.len() > 15 {
            return Err(ApiError::validation(
                "Number of fields in notes should be less than or equal to 15",
                Some(&name),
            ));
        }
        let mut notes = Notes::new();
        for (k, v) in map {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => continue,
                _ => {
                    return Err(ApiError::validation(
                        format!("The notes.{k} must be a string."),
                        Some(&format!("{name}.{k}")),
                    ))
                }
            };
            if s.chars().count() > 256 || k.chars().count() > 256 {
                return Err(ApiError::validation(
                    format!("The notes.{k} may not be greater than 256 characters."),
                    Some(&format!("{name}.{k}")),
                ));
            }
            notes.insert(k.clone(), s);
        }
        Ok(notes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_nest() {
        let m = parse_form(
            b"amount=5000&currency=INR&notes%5Btype%5D=cheer&notes[x]=1&addons[0][item][name]=A&addons[1][item][name]=B",
        );
        assert_eq!(m["amount"], "5000");
        assert_eq!(m["notes"]["type"], "cheer");
        assert_eq!(m["addons"][1]["item"]["name"], "B");
        let i = Input::from_map(m);
        assert_eq!(i.req_int("amount").unwrap(), 5000);
        assert_eq!(i.notes().unwrap().get("x"), Some("1"));
    }

    #[test]
    fn validation_messages() {
        let i = Input::parse(
            "application/json",
            br#"{"amount":"abc","bogus":1,"item":{"zz":1}}"#,
        )
        .unwrap();
        let e = i.only(&["amount", "item"]).unwrap_err();
        assert_eq!(
            e.description,
            "bogus is/are not required and should not be sent"
        );
        assert_eq!(
            i.int("amount").unwrap_err().field.as_deref(),
            Some("amount")
        );
        let item = i.obj("item").unwrap().unwrap();
        let e = item.only(&["name"]).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("item.zz"));
        assert_eq!(
            item.req_str("name").unwrap_err().description,
            "The item.name field is required."
        );
        assert!(Input::parse("application/json", b"{not json").is_err());
        assert!(Input::parse("", b"").unwrap().map.is_empty());
    }
}
