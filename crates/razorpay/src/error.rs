//! [`Error`]: everything a call to Razorpay can fail with.

use serde::Deserialize;

/// Razorpay's error code for input errors (400, 401).
pub const BAD_REQUEST_ERROR: &str = "BAD_REQUEST_ERROR";
/// Razorpay's error code for its own failures (500).
pub const SERVER_ERROR: &str = "SERVER_ERROR";
/// Razorpay's error code for upstream (bank/gateway) failures (502, 504).
pub const GATEWAY_ERROR: &str = "GATEWAY_ERROR";

/// The less common parts of a Razorpay error body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiErrorDetail {
    /// `error.source` (`"business"`, `"NA"`, ...).
    pub source: Option<String>,
    /// `error.step` (`"payment_initiation"`, `"NA"`, ...).
    pub step: Option<String>,
    /// `error.reason` (`"input_validation_failed"`, `"NA"`, ...).
    pub reason: Option<String>,
    /// `error.metadata`.
    pub metadata: serde_json::Value,
}

/// A failed call to Razorpay.
///
/// A service maps these once at its edge: [`Error::Api`] with a 4xx status is
/// the caller's (or our) mistake; everything else means "Razorpay unavailable"
/// and is best surfaced as a 502 to our own caller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Razorpay answered with an error status and its JSON error body
    /// (`{"error":{"code","description","field",...}}`). A non-JSON error body
    /// (e.g. from a proxy) is reported here too, with a code derived from the
    /// status (`SERVER_ERROR` for 5xx except 502/504 → `GATEWAY_ERROR`).
    #[error("razorpay {status} {code}: {description}")]
    Api {
        /// HTTP status.
        status: u16,
        /// `BAD_REQUEST_ERROR`, `SERVER_ERROR`, `GATEWAY_ERROR`, ...
        code: String,
        /// Human-readable description, e.g. "The id provided does not exist".
        description: String,
        /// Offending request field, if Razorpay named one.
        field: Option<String>,
        /// source/step/reason/metadata (boxed to keep `Error` small).
        detail: Box<ApiErrorDetail>,
    },
    /// No answer within the configured timeout.
    #[error("razorpay request timed out")]
    Timeout,
    /// Connection refused/reset, DNS, TLS... `connect` is true when the request
    /// certainly never reached Razorpay (so even a create is safe to repeat).
    #[error("razorpay transport error: {source}")]
    Transport {
        /// The underlying error.
        #[source]
        source: reqwest::Error,
        /// Failed while connecting: nothing was sent.
        connect: bool,
    },
    /// A 2xx answer whose body did not match the expected shape.
    #[error("razorpay response (status {status}) could not be decoded: {message}")]
    Decode {
        /// HTTP status.
        status: u16,
        /// What went wrong.
        message: String,
        /// The start of the body (at most 512 bytes).
        body_snippet: String,
    },
    /// The client could not be built (bad base URL, TLS setup).
    #[error("razorpay client configuration: {0}")]
    Config(String),
}

impl Error {
    /// Whether the failure is transient: a timeout, a transport error, or a
    /// 429/500/502/503/504 answer. Whether a *particular request* may be
    /// repeated also depends on what it does; see [`crate::RetryPolicy`].
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
            Error::Timeout | Error::Transport { .. } => true,
            Error::Decode { .. } | Error::Config(_) => false,
        }
    }

    /// HTTP status of an [`Error::Api`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            Error::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether Razorpay said the id does not exist (it answers 400, not 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Api { status: 400, description, .. }
            if description == "The id provided does not exist")
    }

    /// Whether the keys were rejected (401).
    pub fn is_auth(&self) -> bool {
        matches!(self, Error::Api { status: 401, .. })
    }

    /// Builds an [`Error::Api`] from an error status and body.
    pub fn from_response(status: u16, body: &[u8]) -> Error {
        #[derive(Deserialize)]
        struct Envelope {
            error: Body,
        }
        #[derive(Deserialize)]
        struct Body {
            #[serde(default, deserialize_with = "crate::de::opt_string")]
            code: Option<String>,
            #[serde(default, deserialize_with = "crate::de::opt_string")]
            description: Option<String>,
            #[serde(default, deserialize_with = "crate::de::opt_string")]
            field: Option<String>,
            #[serde(default, deserialize_with = "crate::de::opt_string")]
            source: Option<String>,
            #[serde(default, deserialize_with = "crate::de::opt_string")]
            step: Option<String>,
            #[serde(default, deserialize_with = "crate::de::opt_string")]
            reason: Option<String>,
            #[serde(default)]
            metadata: serde_json::Value,
        }
        let default_code = match status {
            502 | 504 => GATEWAY_ERROR,
            s if s >= 500 => SERVER_ERROR,
            _ => BAD_REQUEST_ERROR,
        };
        match serde_json::from_slice::<Envelope>(body) {
            Ok(Envelope { error: b }) => Error::Api {
                status,
                code: b.code.unwrap_or_else(|| default_code.to_owned()),
                description: b.description.unwrap_or_default(),
                field: b.field,
                detail: Box::new(ApiErrorDetail {
                    source: b.source,
                    step: b.step,
                    reason: b.reason,
                    metadata: b.metadata,
                }),
            },
            Err(_) => Error::Api {
                status,
                code: default_code.to_owned(),
                description: format!("non-JSON error body: {}", snippet(body, 200)),
                field: None,
                detail: Box::default(),
            },
        }
    }

    pub(crate) fn from_reqwest(e: reqwest::Error) -> Error {
        if e.is_timeout() {
            Error::Timeout
        } else {
            let connect = e.is_connect();
            Error::Transport { source: e, connect }
        }
    }
}

pub(crate) fn snippet(body: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(max)]);
    s.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_razorpay_error_body() {
        let body = br#"{"error":{"code":"BAD_REQUEST_ERROR","description":"The amount must be an integer","field":"amount","source":"business","step":"payment_initiation","reason":"input_validation_failed","metadata":{}}}"#;
        let e = Error::from_response(400, body);
        match &e {
            Error::Api {
                status,
                code,
                description,
                field,
                detail,
            } => {
                assert_eq!(*status, 400);
                assert_eq!(code, BAD_REQUEST_ERROR);
                assert_eq!(description, "The amount must be an integer");
                assert_eq!(field.as_deref(), Some("amount"));
                assert_eq!(detail.reason.as_deref(), Some("input_validation_failed"));
                assert_eq!(detail.step.as_deref(), Some("payment_initiation"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(!e.is_retryable());
        assert!(!e.is_not_found());
    }

    #[test]
    fn not_found_and_auth() {
        let e = Error::from_response(
            400,
            br#"{"error":{"code":"BAD_REQUEST_ERROR","description":"The id provided does not exist","field":null}}"#,
        );
        assert!(e.is_not_found());
        let e = Error::from_response(
            401,
            br#"{"error":{"code":"BAD_REQUEST_ERROR","description":"Authentication failed"}}"#,
        );
        assert!(e.is_auth());
        assert!(!e.is_retryable());
    }

    #[test]
    fn non_json_bodies_get_codes_from_status() {
        let e = Error::from_response(502, b"<html>Bad Gateway</html>");
        match &e {
            Error::Api {
                code, description, ..
            } => {
                assert_eq!(code, GATEWAY_ERROR);
                assert!(description.contains("Bad Gateway"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(e.is_retryable());
        let e = Error::from_response(500, b"");
        assert!(matches!(&e, Error::Api { code, .. } if code == SERVER_ERROR));
        assert!(e.is_retryable());
        assert!(Error::from_response(429, b"{}").is_retryable());
        assert!(!Error::from_response(409, b"{}").is_retryable());
    }
}
