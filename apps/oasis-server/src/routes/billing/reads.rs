//! Reads: the caller's memberships, a creator's cheers, a user's tips.
use crate::auth::{AuthUser, MaybeAuthUser};
use crate::context::AppContext;
use crate::error::ApiError;
use crate::web;
use actix_web::HttpResponse;
use oasis_db::billing as store;
use serde::Serialize;

#[derive(Serialize, utoipa::ToSchema)]
pub struct MembershipOut {
    id: i64,
    /// Tier id.
    tier: i64,
    tier_name: String,
    /// Creator (user) id.
    creator: i64,
    creator_username: String,
    creator_profile_pic: Option<String>,
    /// `recurring`, `one_time` or `free`.
    #[serde(rename = "type")]
    kind: String,
    /// Razorpay's subscription status (`authenticated`, `active`, `pending`, `halted`,
    /// `paused`, `cancelled`, `completed`, `expired`); one-time and free: `active`/`cancelled`.
    status: String,
    /// Integer minor units, per `period`.
    amount: i64,
    currency: String,
    /// `monthly` or `yearly` (one-time and free memberships: `monthly`).
    period: &'static str,
    current_period_end: Option<chrono::DateTime<chrono::Utc>>,
    cancel_at_period_end: bool,
    /// Whether it gives access to the tier now (the entitlement rule).
    has_access: bool,
    /// `sub_…` or `order_…`.
    #[serde(rename = "SubscriptionID")]
    subscription_id: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MembershipList {
    subscriptions: Vec<MembershipOut>,
}

/// The caller's memberships, newest first (checkouts never paid are not listed).
#[utoipa::path(get, path = "/subscriptions/list", tag = "billing",
    responses((status = 200, body = MembershipList), (status = 401)),
    security(("token" = []), ("jwt" = [])))]
pub async fn list(user: AuthUser, ctx: web::Data<AppContext>) -> Result<HttpResponse, ApiError> {
    let uid = user.user_id;
    let rows = ctx
        .db
        .run(move |c| Ok(store::list_memberships(c, uid)?))
        .await?;
    let subscriptions = rows
        .into_iter()
        .map(|r| {
            Ok(MembershipOut {
                period: r.period()?.as_str(),
                id: r.id,
                tier: r.tier_id,
                tier_name: r.tier_name,
                creator: r.creator_id,
                creator_username: r.creator_username,
                creator_profile_pic: r.creator_profile_pic,
                kind: r.kind,
                status: r.status,
                amount: r.amount,
                currency: r.currency,
                current_period_end: r.current_end,
                cancel_at_period_end: r.cancel_at_period_end,
                has_access: r.has_access,
                subscription_id: r.razorpay_subscription_id.or(r.razorpay_order_id),
                created_at: r.created_at,
            })
        })
        .collect::<Result<Vec<_>, oasis_kernel::RepoError>>()?;
    Ok(HttpResponse::Ok().json(MembershipList { subscriptions }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MessageOut {
    name: String,
    message: String,
    /// Integer minor units.
    amount: i64,
    currency: String,
    profile_pic: Option<String>,
    #[serde(rename = "dateTime")]
    date_time: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Messages {
    messages: Vec<MessageOut>,
}

const LIST_LIMIT: i64 = 200;

/// Paid cheers a creator received (newest first, at most 200). Public, like the creator's page.
#[utoipa::path(get, path = "/subscriptions/list_message/{creator_id}", tag = "billing",
    params(("creator_id" = i64, Path)),
    responses((status = 200, body = Messages)))]
pub async fn list_message(
    _user: MaybeAuthUser,
    path: web::Path<i64>,
    ctx: web::Data<AppContext>,
) -> Result<HttpResponse, ApiError> {
    let creator = path.into_inner();
    let rows = ctx
        .db
        .run(move |c| Ok(store::cheers_for_creator(c, creator, LIST_LIMIT)?))
        .await?;
    let messages = rows
        .into_iter()
        .map(|r| MessageOut {
            name: r.name,
            message: r.message,
            amount: r.amount,
            currency: r.currency,
            profile_pic: r.fan_profile_pic,
            date_time: r.paid_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(Messages { messages }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TipOut {
    #[serde(rename = "Creator_username")]
    creator_username: Option<String>,
    #[serde(rename = "Creator_profile_pic")]
    creator_profile_pic: Option<String>,
    message: String,
    /// Integer minor units.
    amount: i64,
    currency: String,
    #[serde(rename = "dateCreated")]
    date_created: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Tips {
    tips: Vec<TipOut>,
}

/// Cheers a user sent (newest first, at most 200). Only that user may read them.
#[utoipa::path(get, path = "/subscriptions/list_tips/{userID}", tag = "billing",
    params(("userID" = i64, Path)),
    responses((status = 200, body = Tips), (status = 401), (status = 403)),
    security(("token" = []), ("jwt" = [])))]
pub async fn list_tips(
    user: AuthUser,
    path: web::Path<i64>,
    ctx: web::Data<AppContext>,
) -> Result<HttpResponse, ApiError> {
    let uid = path.into_inner();
    if uid != user.user_id {
        return Err(ApiError::forbidden("You can only list your own tips."));
    }
    let rows = ctx
        .db
        .run(move |c| Ok(store::cheers_by_user(c, uid, LIST_LIMIT)?))
        .await?;
    let tips = rows
        .into_iter()
        .map(|r| TipOut {
            creator_username: r.creator_username,
            creator_profile_pic: r.creator_profile_pic,
            message: r.message,
            amount: r.amount,
            currency: r.currency,
            date_created: r.paid_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(Tips { tips }))
}
