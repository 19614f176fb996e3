//! Memberships that bend: a fan pauses and resumes a membership (`/subscriptions/pause/`,
//! `/subscriptions/resume/`) and previews a change of tier (`/subscriptions/change/preview`).
//! The work is `workflows::pause`'s and `workflows::change`'s.
use super::int_field;
use crate::auth::{AuthUser, CreatorUser};
use crate::context::AppContext;
use crate::error::ApiError;
use crate::web;
use crate::workflows::change::{preview_change, request_change, ChangeAnswer};
use crate::workflows::hiatus::{hiatus_status, request_hiatus, HiatusView};
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

#[derive(Deserialize, utoipa::ToSchema)]
pub struct HiatusBody {
    /// Charges each member skips: 1 to 3.
    #[schema(value_type = i64)]
    cycles: Option<Value>,
}

/// A creator's hiatus (the latest; `active: false` and zeros when there is none under way).
#[derive(Serialize, utoipa::ToSchema)]
pub struct HiatusOut {
    active: bool,
    cycles: i64,
    /// Members whose charges it skips: the active members when it started (paused, failed or
    /// still to pause) and the fans who joined during it.
    members_total: i64,
    members_paused: i64,
    members_failed: i64,
    /// Fans who joined during the hiatus: access at once, first charge at `resumes_at`.
    members_joined: i64,
    started_at: Option<chrono::DateTime<chrono::Utc>>,
    resumes_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn hiatus_out(v: HiatusView) -> HiatusOut {
    HiatusOut {
        active: v.active,
        cycles: v.cycles,
        members_total: v.members_total,
        members_paused: v.members_paused,
        members_failed: v.members_failed,
        members_joined: v.members_joined,
        started_at: v.started_at,
        resumes_at: v.resumes_at,
    }
}

/// Put the creator's page on hiatus for 1–3 cycles: a job pauses every active member's
/// subscription at Razorpay (at a bounded rate; resumable after a crash) so that each skips its
/// next `cycles` charges, and resumes each at `resumes_at`. Members keep access throughout and
/// are notified.
#[utoipa::path(post, path = "/subscriptions/hiatus", tag = "billing", request_body = HiatusBody,
    responses((status = 200, body = HiatusOut),
        (status = 400, description = "cycles out of 1–3, or a hiatus already under way"),
        (status = 401), (status = 403, description = "not a creator")),
    security(("token" = []), ("jwt" = [])))]
pub async fn start_hiatus(
    user: CreatorUser,
    ctx: web::Data<AppContext>,
    body: web::Json<HiatusBody>,
) -> Result<HttpResponse, ApiError> {
    let cycles = int_field(&body.cycles, "cycles")?;
    let v = request_hiatus(&ctx, user.user_id, cycles).await?;
    Ok(HttpResponse::Ok().json(hiatus_out(v)))
}

/// The creator's hiatus: `{active, cycles, members_total, members_paused, members_failed,
/// members_joined, started_at, resumes_at}`. A fan who joins during a hiatus has access at once
/// and is first charged at `resumes_at`.
#[utoipa::path(get, path = "/subscriptions/hiatus", tag = "billing",
    responses((status = 200, body = HiatusOut), (status = 401),
        (status = 403, description = "not a creator")),
    security(("token" = []), ("jwt" = [])))]
pub async fn get_hiatus(
    user: CreatorUser,
    ctx: web::Data<AppContext>,
) -> Result<HttpResponse, ApiError> {
    let v = hiatus_status(&ctx, user.user_id).await?;
    Ok(HttpResponse::Ok().json(hiatus_out(v)))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(pause, resume, change_preview, change, start_hiatus, get_hiatus),
    components(schemas(
        PauseBody,
        ResumeBody,
        PauseOut,
        ChangePreviewOut,
        ChangeBody,
        ChangeOut,
        HiatusBody,
        HiatusOut
    ))
)]
pub struct ApiDoc;

pub fn config(cfg: &mut web::ServiceConfig) {
    use web::{get, post, resource};
    cfg.service(resource("/subscriptions/pause").route(post().to(pause)))
        .service(resource("/subscriptions/resume").route(post().to(resume)))
        .service(resource("/subscriptions/change/preview").route(get().to(change_preview)))
        .service(resource("/subscriptions/change").route(post().to(change)))
        .service(
            resource("/subscriptions/hiatus")
                .route(post().to(start_hiatus))
                .route(get().to(get_hiatus)),
        );
}
