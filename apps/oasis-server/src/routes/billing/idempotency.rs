//! `Idempotency-Key` on the POSTs that talk to Razorpay (zero-to-production's pattern): the
//! first request with a key runs and its response is stored per (user, key); a repeat with the
//! same body replays it (`Idempotent-Replayed: true`), a repeat while the first still runs is a
//! 409, the same key with another body a 422. Failed requests release the key.
use crate::db::Db;
use crate::error::ApiError;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use oasis_db::billing::{idempotency_begin, idempotency_finish, IdempotencyBegin};
use serde_json::Value;
use std::future::Future;

pub const HEADER: &str = "Idempotency-Key";

/// Runs `f` at most once per (`owner`, Idempotency-Key). `owner` is the user id (0 for
/// anonymous guest checkout, whose fingerprint includes the email).
pub async fn run<F, Fut>(
    req: &HttpRequest,
    db: &Db,
    owner: i64,
    fingerprint: &Value,
    f: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(StatusCode, Value), ApiError>>,
{
    let key = match req.headers().get(HEADER) {
        None => {
            let (status, body) = f().await?;
            return Ok(HttpResponse::build(status).json(body));
        }
        Some(v) => v
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= 255)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_idempotency_key",
                    "Idempotency-Key must be 1 to 255 visible characters.",
                )
            })?
            .to_owned(),
    };
    let hash = {
        let material = format!("{} {}\n{}", req.method(), req.path(), fingerprint);
        hex::encode(ring::digest::digest(
            &ring::digest::SHA256,
            material.as_bytes(),
        ))
    };
    let (k, h) = (key.clone(), hash.clone());
    let begun = db
        .run(move |c| Ok(idempotency_begin(c, owner, &k, &h)?))
        .await?;
    match begun {
        IdempotencyBegin::Fresh => {}
        IdempotencyBegin::Mismatch => {
            return Err(ApiError::detail(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request.",
            ))
        }
        IdempotencyBegin::InProgress => {
            return Err(ApiError::conflict(
                "in_progress",
                "A request with this Idempotency-Key is in progress; retry shortly.",
            ))
        }
        IdempotencyBegin::Done { status, body } => {
            let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
            return Ok(HttpResponse::build(status)
                .insert_header(("Idempotent-Replayed", "true"))
                .content_type("application/json")
                .body(body));
        }
    }
    let result = f().await;
    let stored = match &result {
        Ok((status, body)) => Some((
            status.as_u16() as i16,
            serde_json::to_vec(body).unwrap_or_default(),
        )),
        Err(_) => None,
    };
    let k = key.clone();
    let finish = db
        .run(move |c| {
            Ok(idempotency_finish(
                c,
                owner,
                &k,
                stored.as_ref().map(|(s, b)| (*s, b.as_slice())),
            )?)
        })
        .await;
    if let Err(e) = finish {
        tracing::warn!(status = %e.status_code(), "could not record the idempotent response");
    }
    let (status, body) = result?;
    Ok(HttpResponse::build(status).json(body))
}
