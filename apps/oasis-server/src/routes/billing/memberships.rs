//! Memberships that bend: a fan pauses and resumes a membership (`/subscriptions/pause/`,
//! `/subscriptions/resume/`) and previews a change of tier (`/subscriptions/change/preview`).
//! The work is `workflows::pause`'s and `workflows::change`'s.
use super::int_field;
use crate::auth::AuthUser;
use crate::context::AppContext;
use crate::error::ApiError;
use crate::web;
use crate::workflows::change::{preview_change, request_change, ChangeAnswer};
use crate::workflows::pause::{request_pause, request_resume, PauseView};
use actix_web::HttpResponse;
use oasis_billing::change::ChangePreview;
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
        effective: p.effective.as_str(),
        method: p.method.as_str(),
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

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ChangeBody {
    /// Tier id of the caller's membership.
    #[schema(value_type = i64)]
    tier: Option<Value>,
    /// Tier id to change to (same creator).
    #[schema(value_type = i64)]
    to: Option<Value>,
}

/// A change of tier made: the preview's numbers (what was said is what is done), its state,
/// and for a replacement the new subscription to authorise in Checkout.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ChangeOut {
    #[serde(flatten)]
    preview: ChangePreviewOut,
    /// `applied` (in force: the new tier now, or a replacement made), or `scheduled` (a
    /// downgrade: the old tier until `next_charge_at`).
    state: &'static str,
    /// A replacement's new subscription (`sub_…`), starting at `next_charge_at`: open Checkout
    /// with it to authorise the new mandate.
    #[serde(rename = "SubscriptionID", skip_serializing_if = "Option::is_none")]
    subscription_id: Option<String>,
    /// The key Checkout opens with (a replacement only).
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

fn change_out(a: ChangeAnswer) -> ChangeOut {
    let (subscription_id, key) = match a.replacement {
        Some((s, k)) => (Some(s), Some(k)),
        None => (None, None),
    };
    ChangeOut {
        preview: preview_out(a.preview),
        state: a.state.as_str(),
        subscription_id,
        key,
    }
}

/// Change the caller's membership of `tier` to the same creator's tier `to`, as the preview
/// said: an upgrade now (the new tier at once; Razorpay charges the prorated difference), a
/// downgrade at the cycle end (the old tier until then; the next charge at the new price).
/// Where Razorpay refuses to update the subscription (UPI and eMandate mandates), the old
/// subscription is cancelled at the cycle end and a new one starts then (`method: replace`):
/// authorise it in Checkout with `SubscriptionID` and `key`.
#[utoipa::path(post, path = "/subscriptions/change", tag = "billing", request_body = ChangeBody,
    responses((status = 200, body = ChangeOut),
        (status = 400, description = "as the preview's refusals, or a change already under way, or already a member of `to`"),
        (status = 401),
        (status = 502, description = "Razorpay failed or did not make the change (a lost answer is resolved by a job)")),
    security(("token" = []), ("jwt" = [])))]
pub async fn change(
    user: AuthUser,
    ctx: web::Data<AppContext>,
    body: web::Json<ChangeBody>,
) -> Result<HttpResponse, ApiError> {
    let tier = int_field(&body.tier, "tier")?;
    let to = int_field(&body.to, "to")?;
    let a = request_change(&ctx, user.user_id, tier, to).await?;
    Ok(HttpResponse::Ok().json(change_out(a)))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(pause, resume, change_preview, change),
    components(schemas(
        PauseBody,
        ResumeBody,
        PauseOut,
        ChangePreviewOut,
        ChangeBody,
        ChangeOut
    ))
)]
pub struct ApiDoc;

pub fn config(cfg: &mut web::ServiceConfig) {
    use web::{get, post, resource};
    cfg.service(resource("/subscriptions/pause").route(post().to(pause)))
        .service(resource("/subscriptions/resume").route(post().to(resume)))
        .service(resource("/subscriptions/change/preview").route(get().to(change_preview)))
        .service(resource("/subscriptions/change").route(post().to(change)));
}
