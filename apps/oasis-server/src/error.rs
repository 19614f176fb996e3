//! The one place where failures become HTTP responses, in Django REST framework's shapes:
//! `{"field": ["message"]}` for validation, `{"detail": "...", "code": "..."}` for the rest.
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::{header, StatusCode};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use oasis_kernel::{FieldErrors, RepoError};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 with a field map.
    #[error("validation failed: {0}")]
    Validation(FieldErrors),
    /// 400 with DRF's nested field-error map (`{"outer": {"inner": ["…"]}}`): a JSON body whose
    /// values do not fit (see [`crate::json`]).
    #[error("invalid request body: {0}")]
    InvalidBody(serde_json::Value),
    /// Any 4xx/5xx with `{"detail", "code"}`.
    #[error("{status}: {detail}")]
    Detail {
        status: StatusCode,
        code: &'static str,
        detail: String,
        retry_after: Option<u64>,
    },
    /// 500; the cause is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

#[derive(Serialize)]
struct DetailBody<'a> {
    detail: &'a str,
    code: &'a str,
}

impl ApiError {
    pub fn detail(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self::Detail {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::detail(StatusCode::BAD_REQUEST, code, detail)
    }
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(FieldErrors::single(field, message))
    }
    pub fn not_authenticated() -> Self {
        Self::detail(
            StatusCode::UNAUTHORIZED,
            "not_authenticated",
            "Authentication credentials were not provided.",
        )
    }
    pub fn authentication_failed(detail: impl Into<String>) -> Self {
        Self::detail(StatusCode::UNAUTHORIZED, "authentication_failed", detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::detail(StatusCode::FORBIDDEN, "permission_denied", detail)
    }
    pub fn not_found() -> Self {
        Self::detail(StatusCode::NOT_FOUND, "not_found", "Not found.")
    }
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::detail(StatusCode::CONFLICT, code, detail)
    }
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self::Detail {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "throttled",
            detail: format!(
                "Request was throttled. Expected available in {retry_after_secs} seconds."
            ),
            retry_after: Some(retry_after_secs),
        }
    }
    pub fn bad_gateway(detail: impl Into<String>) -> Self {
        Self::detail(StatusCode::BAD_GATEWAY, "upstream_error", detail)
    }
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::detail(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            detail,
        )
    }
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) | ApiError::InvalidBody(_) => StatusCode::BAD_REQUEST,
            ApiError::Detail { status, .. } => *status,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        match self {
            ApiError::Validation(errors) => HttpResponse::BadRequest().json(errors),
            ApiError::InvalidBody(errors) => HttpResponse::BadRequest().json(errors),
            ApiError::Detail {
                status,
                code,
                detail,
                retry_after,
            } => {
                let mut b = HttpResponse::build(*status);
                if let Some(secs) = retry_after {
                    b.insert_header((header::RETRY_AFTER, secs.to_string()));
                }
                b.json(DetailBody { detail, code })
            }
            ApiError::Internal(cause) => {
                // Logged once, here, inside the request span (which carries the request id).
                tracing::error!(error = %cause, "internal error");
                HttpResponse::InternalServerError().json(DetailBody {
                    detail: "A server error occurred.",
                    code: "server_error",
                })
            }
        }
    }
}

impl From<FieldErrors> for ApiError {
    fn from(e: FieldErrors) -> Self {
        ApiError::Validation(e)
    }
}

impl From<RepoError> for ApiError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::NotFound => ApiError::not_found(),
            RepoError::Conflict { constraint } => ApiError::conflict(
                "conflict",
                format!("The request conflicts with existing data ({constraint})."),
            ),
            RepoError::Unavailable(m) => {
                data_exception(&m).unwrap_or_else(|| ApiError::Internal(format!("database: {m}")))
            }
            RepoError::Unreachable(m) => {
                tracing::warn!(error = %m, "database unreachable or too slow");
                ApiError::unavailable(
                    "The database is unavailable or too busy; try again in a few seconds.",
                )
            }
        }
    }
}

/// PostgreSQL refusing a value the request carried (SQLSTATE class 22, "data exception": a NUL
/// character in text, a number out of its column's range, a string longer than its column) is bad
/// input: a 400 naming the problem, never a 500. Routes should reject such values in their own
/// validation first (with a field error); this is the net under every route. The cause is logged.
fn data_exception(message: &str) -> Option<ApiError> {
    let (code, detail) = if message.contains("invalid byte sequence") && message.contains("0x00") {
        (
            "null_characters_not_allowed",
            "Null characters are not allowed.",
        )
    } else if message.contains("out of range") || message.contains("numeric field overflow") {
        ("out_of_range", "A number in the request is out of range.")
    } else if message.starts_with("value too long for type") {
        ("max_length", "A value in the request is too long.")
    } else {
        return None;
    };
    tracing::warn!(error = %message, "database refused a request value");
    Some(ApiError::bad_request(code, detail))
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        oasis_db::repo_error(e).into()
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        match e {
            crate::db::DbError::Unavailable(m) => {
                tracing::warn!(error = %m, "no database connection");
                ApiError::unavailable(
                    "The database is unavailable or too busy; try again in a few seconds.",
                )
            }
            crate::db::DbError::BlockingPoolClosed => ApiError::internal("blocking pool closed"),
            crate::db::DbError::Repo(r) => r.into(),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        ApiError::internal("blocking pool closed")
    }
}

/// DRF's default message for a status.
fn default_detail(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("bad_request", "Bad request."),
        401 => (
            "not_authenticated",
            "Authentication credentials were not provided.",
        ),
        403 => (
            "permission_denied",
            "You do not have permission to perform this action.",
        ),
        404 => ("not_found", "Not found."),
        405 => ("method_not_allowed", "Method not allowed."),
        406 => (
            "not_acceptable",
            "Could not satisfy the request Accept header.",
        ),
        409 => ("conflict", "Conflict."),
        413 => ("payload_too_large", "Request body is too large."),
        415 => (
            "unsupported_media_type",
            "Unsupported media type in request.",
        ),
        429 => ("throttled", "Request was throttled."),
        s if s >= 500 => ("server_error", "A server error occurred."),
        _ => ("error", "Request failed."),
    }
}

/// Middleware hook: any error response whose body is not already JSON (the router's 404, a
/// resource's 405, a payload error from actix itself) is rewritten into the JSON shape.
pub fn json_error_bodies<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .response()
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        // JSON already, or a page meant for a person (e.g. an expired confirmation link).
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let (code, detail) = default_detail(status);
    let (req, old) = res.into_parts();
    let mut new = HttpResponse::build(status).json(DetailBody { detail, code });
    // Keep headers such as Allow / Retry-After that describe the error.
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    let res: ServiceResponse<EitherBody<B>> = ServiceResponse::new(req, new).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}

/// Turns actix-web's extractor errors into the JSON shapes.
pub fn json_config(limit: usize) -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req| json_payload_error(err).into())
}

pub fn json_payload_error(err: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as E;
    match err {
        E::ContentType => ApiError::detail(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported media type in request: send application/json.",
        ),
        E::Overflow { limit } | E::OverflowKnownLength { limit, .. } => ApiError::detail(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("Request body is larger than {limit} bytes."),
        ),
        // Only syntax can fail here: bodies are read as `serde_json::Value` first, and
        // `crate::json` maps what does not fit the handler's type to field errors.
        E::Deserialize(e) => parse_error(&e),
        other => ApiError::bad_request("parse_error", format!("JSON parse error - {other}")),
    }
}

/// A body that is not JSON: `{"detail": "JSON parse error - …"}` (DRF's words).
pub fn parse_error(e: &serde_json::Error) -> ApiError {
    ApiError::bad_request("parse_error", format!("JSON parse error - {e}"))
}

pub fn path_config() -> actix_web::web::PathConfig {
    actix_web::web::PathConfig::default().error_handler(|_err, _req| ApiError::not_found().into())
}

pub fn query_config() -> actix_web::web::QueryConfig {
    actix_web::web::QueryConfig::default().error_handler(|err, _req| {
        ApiError::bad_request("invalid_query", format!("Invalid query string - {err}")).into()
    })
}

/// The app's default service: unknown routes answer the JSON 404.
pub async fn not_found(_req: HttpRequest) -> ApiError {
    ApiError::not_found()
}

impl actix_web::Responder for ApiError {
    type Body = BoxBody;
    fn respond_to(self, _req: &HttpRequest) -> HttpResponse<Self::Body> {
        self.error_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_and_code(e: ApiError) -> (u16, String) {
        let status = e.status_code().as_u16();
        let code = match e {
            ApiError::Detail { code, .. } => code.to_owned(),
            other => other.to_string(),
        };
        (status, code)
    }

    #[test]
    fn database_data_exceptions_are_bad_input_not_server_errors() {
        for (message, code) in [
            (
                "invalid byte sequence for encoding \"UTF8\": 0x00",
                "null_characters_not_allowed",
            ),
            ("bigint out of range", "out_of_range"),
            (
                "value \"99999999999999999999\" is out of range for type bigint",
                "out_of_range",
            ),
            (
                "value too long for type character varying(30)",
                "max_length",
            ),
        ] {
            let e: ApiError = RepoError::Unavailable(message.to_owned()).into();
            assert_eq!(status_and_code(e), (400, code.to_owned()), "{message}");
        }
        let e: ApiError = RepoError::Unavailable("connection refused".to_owned()).into();
        assert_eq!(e.status_code().as_u16(), 500);
    }
}
