//! `Idempotency-Key` on the POSTs that talk to Razorpay (zero-to-production's pattern): the
//! first request with a key runs and its response is stored per (authenticated user, key); a
//! repeat with the same body replays it (`Idempotent-Replayed: true`), a repeat while the first
//! still runs is a 409, the same key with another body a 422. Failed requests release the key.
//! Stored replies expire after `OASIS_IDEMPOTENCY_TTL` (then the key runs afresh) and are swept
//! periodically ([`sweep_periodically`]).
//!
//! [`run`] serves routes whose caller is authenticated before the handler runs. Guest checkout
//! authenticates inside the handler and uses the parts ([`Claim`], [`begin`], [`find`],
//! [`finish`]) so that the key is only looked at once the caller is known.
use crate::context::AppContext;
use crate::db::Db;
use crate::error::ApiError;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use diesel::PgConnection;
use oasis_db::idempotency::{
    idempotency_begin, idempotency_find, idempotency_finish, idempotency_sweep, IdempotencyBegin,
};
use serde_json::Value;
use std::future::Future;
use std::time::Duration;

pub const HEADER: &str = "Idempotency-Key";

/// The `Idempotency-Key` of a request and the hash of what the request asks for.
#[derive(Debug, Clone)]
pub struct Claim {
    key: String,
    hash: String,
}

impl Claim {
    /// `None` without the header; a 400 for a malformed one. `fingerprint` is what makes two
    /// requests "the same" besides their method and path; it must hold no secret (it is
    /// hashed with plain SHA-256 and stored).
    pub fn from_request(req: &HttpRequest, fingerprint: &Value) -> Result<Option<Self>, ApiError> {
        let Some(v) = req.headers().get(HEADER) else {
            return Ok(None);
        };
        let key = v
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
            .to_owned();
        let material = format!("{} {}\n{}", req.method(), req.path(), fingerprint);
        let hash = hex::encode(ring::digest::digest(
            &ring::digest::SHA256,
            material.as_bytes(),
        ));
        Ok(Some(Self { key, hash }))
    }
}

/// A stored reply to replay.
#[derive(Debug)]
pub struct Stored {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Stored {
    fn from_row(status: i16, body: Vec<u8>) -> Self {
        Self {
            status: StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK),
            body,
        }
    }

    /// The stored reply as a response marked `Idempotent-Replayed: true`.
    pub fn replay(self) -> HttpResponse {
        replayed(self.status, self.body)
    }
}

/// A response marked as replayed.
pub fn replayed(
    status: StatusCode,
    body: impl actix_web::body::MessageBody + 'static,
) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("Idempotent-Replayed", "true"))
        .content_type("application/json")
        .body(body)
}

fn refusal(found: IdempotencyBegin) -> Result<Option<Stored>, ApiError> {
    match found {
        IdempotencyBegin::Fresh => Ok(None),
        IdempotencyBegin::Done { status, body } => Ok(Some(Stored::from_row(status, body))),
        IdempotencyBegin::Mismatch => Err(ApiError::detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different request.",
        )),
        IdempotencyBegin::InProgress => Err(ApiError::conflict(
            "in_progress",
            "A request with this Idempotency-Key is in progress; retry shortly.",
        )),
    }
}

/// Claims the key for `owner` (on the caller's connection, e.g. inside the transaction that
/// authenticated or created `owner`): `Ok(None)` = run the request, then [`finish`];
/// `Ok(Some)` = replay this; a 409 while another request with the key runs, a 422 when the key
/// came with another request.
pub fn begin(
    c: &mut PgConnection,
    owner: i64,
    claim: &Claim,
    ttl_secs: i64,
) -> Result<Option<Stored>, ApiError> {
    refusal(idempotency_begin(
        c,
        owner,
        &claim.key,
        &claim.hash,
        ttl_secs,
    )?)
}

/// Like [`begin`] without claiming: `Ok(None)` when `owner` holds no live reply under the key.
pub fn find(
    c: &mut PgConnection,
    owner: i64,
    claim: &Claim,
    ttl_secs: i64,
) -> Result<Option<Stored>, ApiError> {
    match idempotency_find(c, owner, &claim.key, &claim.hash, ttl_secs)? {
        None => Ok(None),
        Some(found) => refusal(found),
    }
}

/// Stores `reply` under the claimed key (`Some`), or releases the key after a failure (`None`)
/// so that a retry runs again. A failure to record is logged, not answered: the request itself
/// succeeded or failed already.
pub async fn finish(db: &Db, owner: i64, claim: &Claim, reply: Option<(StatusCode, &Value)>) {
    let stored = reply.map(|(status, body)| {
        (
            status.as_u16() as i16,
            serde_json::to_vec(body).unwrap_or_default(),
        )
    });
    let key = claim.key.clone();
    let finish = db
        .run(move |c| {
            Ok(idempotency_finish(
                c,
                owner,
                &key,
                stored.as_ref().map(|(s, b)| (*s, b.as_slice())),
            )?)
        })
        .await;
    if let Err(e) = finish {
        tracing::warn!(status = %e.status_code(), "could not record the idempotent response");
    }
}

/// Runs `f` at most once per (`owner`, Idempotency-Key) within the time-to-live; `owner` is the
/// authenticated user's id.
pub async fn run<F, Fut>(
    req: &HttpRequest,
    ctx: &AppContext,
    owner: i64,
    fingerprint: &Value,
    f: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(StatusCode, Value), ApiError>>,
{
    let Some(claim) = Claim::from_request(req, fingerprint)? else {
        let (status, body) = f().await?;
        return Ok(HttpResponse::build(status).json(body));
    };
    let ttl = ctx.settings.idempotency_ttl_secs;
    let c = claim.clone();
    if let Some(stored) = ctx.db.run(move |conn| begin(conn, owner, &c, ttl)).await? {
        return Ok(stored.replay());
    }
    let result = f().await;
    let reply = result.as_ref().ok().map(|(s, b)| (*s, b));
    finish(&ctx.db, owner, &claim, reply).await;
    let (status, body) = result?;
    Ok(HttpResponse::build(status).json(body))
}

/// Deletes expired replies every `min(ttl, 1 h)` until the server's context is gone.
pub fn sweep_periodically(ctx: &AppContext) {
    let db = ctx.db.clone();
    let weak = ctx.payments.downgrade();
    let ttl = ctx.settings.idempotency_ttl_secs;
    let every = Duration::from_secs(ttl.clamp(1, 3600) as u64);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            // The payments handle lives exactly as long as the server's context.
            if crate::payments::Payments::upgrade(&weak).is_none() {
                return;
            }
            match db.run(move |c| Ok(idempotency_sweep(c, ttl)?)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "swept expired idempotency keys"),
                Err(e) => tracing::warn!(error = %e, "idempotency sweep failed"),
            }
        }
    });
}
