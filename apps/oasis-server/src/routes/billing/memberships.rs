//! Memberships that bend: a fan pauses and resumes a membership (`/subscriptions/pause/`,
//! `/subscriptions/resume/`). The work is `workflows::pause`'s.
use super::int_field;
use crate::auth::AuthUser;
use crate::context::AppContext;
use crate::error::ApiError;
use crate::web;
use crate::workflows::pause::{request_pause, request_resume, PauseView};
use actix_web::HttpResponse;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PauseBody {
    /// Tier id of the caller's membership.
    #[schema(value_type = i64)]
    tier: Option<Value>,
    /// Charges to skip: 1 to 3.
    #[schema(value_type = i64)]
    cycles: Option<Value>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ResumeBody {
    #[schema(value_type = i64)]
    tier: Option<Value>,
}

/// A pause of a membership.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PauseOut {
    /// `scheduled` (until the paid period ends), `paused`, `resumed`, `cancelled` (resumed
    /// before it took effect) or `failed`.
    state: &'static str,
    cycles: i64,
    /// When the subscription is paused at Razorpay: just before the paid period ends (access
    /// continues until then).
    pause_at: chrono::DateTime<chrono::Utc>,
    /// When it resumes (and the next charge is made).
    resume_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn out(v: PauseView) -> PauseOut {
    PauseOut {
        state: v.state.as_str(),
        cycles: v.cycles,
        pause_at: v.pause_at,
        resume_at: v.resume_at,
    }
}

/// Pause a recurring membership for 1–3 cycles. Access continues until the paid period ends;
/// then the subscription is paused at Razorpay (no charge, no access) and resumed after
/// `cycles` periods. Razorpay pauses only active subscriptions: any other state is refused with
/// the reason.
#[utoipa::path(post, path = "/subscriptions/pause", tag = "billing", request_body = PauseBody,
    responses((status = 200, body = PauseOut),
        (status = 400, description = "cycles out of 1–3, no membership of the tier, not active, ending at period end, or already paused"),
        (status = 401)),
    security(("token" = []), ("jwt" = [])))]
pub async fn pause(
    user: AuthUser,
    ctx: web::Data<AppContext>,
    body: web::Json<PauseBody>,
) -> Result<HttpResponse, ApiError> {
    let tier = int_field(&body.tier, "tier")?;
    let cycles = int_field(&body.cycles, "cycles")?;
    let v = request_pause(&ctx, user.user_id, tier, cycles).await?;
    Ok(HttpResponse::Ok().json(out(v)))
}

/// Resume a paused membership now (or cancel a pause not yet made). The next charge is made by
/// Razorpay when the subscription is resumed; access returns with it.
#[utoipa::path(post, path = "/subscriptions/resume", tag = "billing", request_body = ResumeBody,
    responses((status = 200, body = PauseOut), (status = 400, description = "not paused"),
        (status = 401)),
    security(("token" = []), ("jwt" = [])))]
pub async fn resume(
    user: AuthUser,
    ctx: web::Data<AppContext>,
    body: web::Json<ResumeBody>,
) -> Result<HttpResponse, ApiError> {
    let tier = int_field(&body.tier, "tier")?;
    let v = request_resume(&ctx, user.user_id, tier).await?;
    Ok(HttpResponse::Ok().json(out(v)))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(pause, resume),
    components(schemas(PauseBody, ResumeBody, PauseOut))
)]
pub struct ApiDoc;

pub fn config(cfg: &mut web::ServiceConfig) {
    use web::{post, resource};
    cfg.service(resource("/subscriptions/pause").route(post().to(pause)))
        .service(resource("/subscriptions/resume").route(post().to(resume)));
}
