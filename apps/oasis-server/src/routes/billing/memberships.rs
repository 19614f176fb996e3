//! Memberships that bend: a fan pauses and resumes a membership (`/subscriptions/pause/`,
//! `/subscriptions/resume/`) and previews a change of tier (`/subscriptions/change/preview`).
//! The work is `workflows::pause`'s and `workflows::change`'s.
use super::int_field;
use crate::auth::AuthUser;
use crate::context::AppContext;
use crate::error::ApiError;
use crate::web;
use crate::workflows::change::preview_change;
use crate::workflows::pause::{request_pause, request_resume, PauseView};
use actix_web::HttpResponse;
use oasis_billing::change::{ChangeMethod, ChangePreview, Effective};
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewQuery {
    /// Tier id of the caller's membership.
    #[param(value_type = i64)]
    tier: Option<String>,
    /// Tier id to change to (same creator).
    #[param(value_type = i64)]
    to: Option<String>,
}

/// What a change of tier would do, before anything changes.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ChangePreviewOut {
    /// `now` (an upgrade: the new tier at once, the prorated difference charged) or
    /// `cycle_end` (a downgrade, or a difference under Razorpay's minimum: the old tier until
    /// the paid period ends).
    effective: &'static str,
    /// `update` (Razorpay plan update) or `replace` (cancel at cycle end + a new subscription
    /// from the period end).
    method: &'static str,
    /// Charged at once (minor units).
    charge_now: i64,
    /// Given back (minor units; 0: a downgrade waits for the cycle end instead of crediting).
    credit: i64,
    /// The next renewal charge, at the new tier's price.
    next_charge_amount: i64,
    next_charge_at: chrono::DateTime<chrono::Utc>,
    currency: String,
}

fn preview_out(p: ChangePreview) -> ChangePreviewOut {
    ChangePreviewOut {
        effective: match p.effective {
            Effective::Now => "now",
            Effective::CycleEnd => "cycle_end",
        },
        method: match p.method {
            ChangeMethod::Update => "update",
            ChangeMethod::Replace => "replace",
        },
        charge_now: p.charge_now,
        credit: p.credit,
        next_charge_amount: p.next_charge_amount,
        next_charge_at: p.next_charge_at,
        currency: p.currency,
    }
}

/// Preview changing the caller's membership of `tier` to the same creator's tier `to`, by
/// Razorpay's proration rules for a plan update: an upgrade applies now with the prorated
/// difference of the remaining amounts; a downgrade at the cycle end with no credit.
#[utoipa::path(get, path = "/subscriptions/change/preview", tag = "billing", params(PreviewQuery),
    responses((status = 200, body = ChangePreviewOut),
        (status = 400, description = "no membership of `tier`, not active (or ending, or paused), `to` the same tier, another creator's, unknown, not sold per the membership's period, or in another currency"),
        (status = 401)),
    security(("token" = []), ("jwt" = [])))]
pub async fn change_preview(
    user: AuthUser,
    ctx: web::Data<AppContext>,
    q: web::Query<PreviewQuery>,
) -> Result<HttpResponse, ApiError> {
    let tier = int_field(&q.tier.clone().map(Value::String), "tier")?;
    let to = int_field(&q.to.clone().map(Value::String), "to")?;
    let p = preview_change(&ctx, user.user_id, tier, to).await?;
    Ok(HttpResponse::Ok().json(preview_out(p)))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(pause, resume, change_preview),
    components(schemas(PauseBody, ResumeBody, PauseOut, ChangePreviewOut))
)]
pub struct ApiDoc;

pub fn config(cfg: &mut web::ServiceConfig) {
    use web::{get, post, resource};
    cfg.service(resource("/subscriptions/pause").route(post().to(pause)))
        .service(resource("/subscriptions/resume").route(post().to(resume)))
        .service(resource("/subscriptions/change/preview").route(get().to(change_preview)));
}
