//! Logging (tracing) and per-request ids.
use crate::config::LogFormat;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::HttpMessage;
use std::future::Future;
use std::time::Instant;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once (`RUST_LOG`, default `info`; text or JSON).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The id of the current request (client's `X-Request-Id` when well-formed, else generated).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Paths whose rest is a secret (a confirmation key, a reset token, an unsubscribe token): the
/// log shows the prefix and `[redacted]` instead. A link's key must not be usable by whoever
/// reads the logs.
const SECRET_PATHS: &[&str] = &[
    "/authenticate/rest-auth/registration/account-confirm-email/",
    "/authenticate/rest-auth/password/reset/confirm/",
    "/authenticate/rest-auth/user/confirm-change/",
    "/feed/api/notification-settings/unsubscribe/",
];

/// The path as logged: with the secret part of [`SECRET_PATHS`] redacted.
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    for prefix in SECRET_PATHS {
        if let Some(rest) = path.strip_prefix(prefix) {
            if !rest.trim_matches('/').is_empty() {
                return format!("{prefix}[redacted]").into();
            }
        }
    }
    path.into()
}

/// `wrap_fn` middleware: request id, request span, one access-log line per request.
pub fn request_span<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %loggable_path(req.path()),
    );
    let start = Instant::now();
    let fut = srv.call(req);
    async move {
        let mut res = fut.await?;
        if let Ok(v) = HeaderValue::from_str(&id) {
            res.headers_mut().insert(X_REQUEST_ID.clone(), v);
        }
        let status = res.status().as_u16();
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        if status >= 500 {
            tracing::warn!(status, elapsed_ms = ms, "request failed");
        } else {
            tracing::info!(status, elapsed_ms = ms, "request");
        }
        Ok(res)
    }
    .instrument(span)
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn secret_path_segments_are_redacted() {
        assert_eq!(
            loggable_path("/authenticate/rest-auth/password/reset/confirm/MQ/abc-123/"),
            "/authenticate/rest-auth/password/reset/confirm/[redacted]"
        );
        assert_eq!(
            loggable_path("/feed/api/notification-settings/unsubscribe/tok"),
            "/feed/api/notification-settings/unsubscribe/[redacted]"
        );
        // The form without a token, and every other path, as they are.
        assert_eq!(
            loggable_path("/authenticate/rest-auth/password/reset/confirm/"),
            "/authenticate/rest-auth/password/reset/confirm/"
        );
        assert_eq!(
            loggable_path("/content/api/content/12/"),
            "/content/api/content/12/"
        );
    }
}
