//! Checkout flows: recurring memberships, one-time tier purchases, cheers, the free tier,
//! ending a membership and guest checkout.
use super::{api_error, int_field, str_field};
use crate::auth::AuthUser;
use crate::context::AppContext;
use crate::error::ApiError;
use crate::idempotency;
use crate::routes::identity::IdentityState;
use crate::web;
use crate::workflows::billing::SyncJob;
use crate::workflows::billing_db::billing_ports;
use crate::workflows::checkout::{start_onetime, start_recurring};
use crate::workflows::guest::{self, GuestCheckout, GuestPayment};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use chrono::Utc;
use oasis_billing::checkout::{
    check_razorpay_id, parse_period, validate_cheer, CheerText, EndType, GuestPaymentType,
    RazorpayIdKind,
};
use oasis_billing::workflows::checkout::{self, Buyer, Ended};
use oasis_billing::BillingError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Serialize, utoipa::ToSchema)]
pub struct CheckoutStarted {
    /// `sub_…` (recurring) or `order_…` (one-time purchase, cheer): open Razorpay Checkout with it.
    #[serde(rename = "SubscriptionID")]
    subscription_id: String,
    /// The Razorpay key id for Checkout.
    public_key: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Details {
    details: &'static str,
}

const CREATED: Details = Details {
    details: "Subscription created",
};

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateBody {
    #[serde(rename = "tierID")]
    #[schema(value_type = i64)]
    tier_id: Option<Value>,
    /// `monthly` (default) or `yearly` (at the tier's `annual_price`).
    period: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
// Named apart from the catalog's `TierBody` (same Rust name): one schema would replace the other.
#[schema(as = PublicTierBody)]
pub struct TierBody {
    #[serde(rename = "tierID")]
    #[schema(value_type = i64)]
    tier_id: Option<Value>,
}

fn started(ctx: &AppContext, id: String) -> (StatusCode, Value) {
    (
        StatusCode::OK,
        json!(CheckoutStarted {
            subscription_id: id,
            public_key: ctx.payments.key_id().to_owned(),
        }),
    )
}

/// Start a recurring membership, billed monthly or yearly (`period`). A pending checkout of the
/// other period is replaced: one membership per fan and tier.
#[utoipa::path(post, path = "/subscriptions/create", tag = "billing", request_body = CreateBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "replays the first response")),
    responses((status = 200, body = CheckoutStarted),
        (status = 400, description = "unknown/free/inactive/own tier, already a member, or `period` yearly on a monthly-only tier"),
        (status = 401), (status = 409, description = "same request in progress"),
        (status = 502, description = "Razorpay failed")),
    security(("token" = []), ("jwt" = [])))]
pub async fn create(
    req: HttpRequest,
    user: AuthUser,
    ctx: web::Data<AppContext>,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let tier_id = int_field(&body.tier_id, "tierID")?;
    let period = parse_period(body.period.as_deref()).map_err(api_error)?;
    let fp = json!({ "tierID": tier_id, "period": period.as_str() });
    idempotency::run(&req, &ctx, user.user_id, &fp, || async {
        let sid = start_recurring(&ctx, user.user_id, tier_id, period)
            .await
            .map_err(api_error)?;
        Ok(started(&ctx, sid))
    })
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SaveBody {
    #[serde(rename = "tierID")]
    #[schema(value_type = Option<i64>)]
    tier_id: Option<Value>,
    razorpay_payment_id: Option<String>,
    /// The seed's spelling of `razorpay_payment_id`.
    razor_payment_id: Option<String>,
    razorpay_signature: Option<String>,
    razorpay_subscription_id: Option<String>,
    /// For a one-time tier purchase.
    razorpay_order_id: Option<String>,
}

/// Confirm a Checkout payment of a recurring membership (`razorpay_subscription_id`) or a
/// one-time tier purchase (`razorpay_order_id`). The signature is verified first; a bad one
/// records nothing.
#[utoipa::path(post, path = "/subscriptions/save", tag = "billing", request_body = SaveBody,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = Details),
        (status = 400, description = "bad signature or missing field; or `trial_used`: the trial's card or UPI ID already had a trial with this creator (the membership is voided, nothing is charged)"),
        (status = 401), (status = 404, description = "someone else's checkout")),
    security(("token" = []), ("jwt" = [])))]
pub async fn save(
    req: HttpRequest,
    user: AuthUser,
    ctx: web::Data<AppContext>,
    body: web::Json<SaveBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let payment_id = body
        .razorpay_payment_id
        .clone()
        .or(body.razor_payment_id.clone());
    let payment_id = str_field(&payment_id, "razorpay_payment_id")?.to_owned();
    let signature = str_field(&body.razorpay_signature, "razorpay_signature")?.to_owned();
    check_razorpay_id("razorpay_payment_id", &payment_id, RazorpayIdKind::Payment)
        .map_err(api_error)?;
    let secret = ctx.payments.key_secret();
    let target = match (
        body.razorpay_subscription_id
            .as_deref()
            .filter(|s| !s.is_empty()),
        body.razorpay_order_id.as_deref().filter(|s| !s.is_empty()),
    ) {
        (Some(sub), _) => {
            check_razorpay_id(
                "razorpay_subscription_id",
                sub,
                RazorpayIdKind::Subscription,
            )
            .map_err(api_error)?;
            if !razorpay::verify_subscription_signature(&payment_id, sub, &signature, secret) {
                return Err(api_error(BillingError::BadSignature));
            }
            Target::Subscription(sub.to_owned())
        }
        (None, Some(order)) => {
            check_razorpay_id("razorpay_order_id", order, RazorpayIdKind::Order)
                .map_err(api_error)?;
            if !razorpay::verify_order_signature(order, &payment_id, &signature, secret) {
                return Err(api_error(BillingError::BadSignature));
            }
            Target::Order(order.to_owned())
        }
        (None, None) => {
            return Err(ApiError::field(
                "razorpay_subscription_id",
                "This field is required.",
            ))
        }
    };
    // `tierID` is informational (the subscription/order says which tier); a malformed one is
    // still a field error, as in DRF.
    if body.tier_id.as_ref().is_some_and(|v| !v.is_null()) {
        int_field(&body.tier_id, "tierID")?;
    }
    let fp = json!({ "payment": payment_id, "signature": signature });
    idempotency::run(&req, &ctx, user.user_id, &fp, || async {
        confirm(&ctx, user.user_id, target, &payment_id).await?;
        Ok((StatusCode::OK, json!(CREATED)))
    })
    .await
}

use oasis_billing::workflows::sync::{self as flow, ConfirmTarget as Target, Confirmed};

/// After a verified Checkout signature: billing's confirmation (the checkout must not be
/// someone else's; Razorpay's truth is fetched and applied); if Razorpay cannot be reached now,
/// a durable `billing.sync` job applies it later (the webhook and reconciliation would too).
async fn confirm(
    ctx: &AppContext,
    user_id: i64,
    target: Target,
    payment_id: &str,
) -> Result<(), ApiError> {
    let (db, gw) = crate::workflows::billing::ports(&ctx.db, &ctx.payments);
    let confirmed = flow::confirm(&db, &gw, user_id, &target, payment_id, Utc::now())
        .await
        .map_err(api_error)?;
    after_confirm(ctx, target, payment_id, confirmed).await
}

/// What a confirmation leaves to the shell: alerts logged, or (the gateway unreachable) a
/// durable `billing.sync` job; then the job runner is woken.
async fn after_confirm(
    ctx: &AppContext,
    target: Target,
    payment_id: &str,
    confirmed: Confirmed,
) -> Result<(), ApiError> {
    match confirmed {
        Confirmed::Applied(s) => crate::workflows::billing::log_alerts(&s.alerts),
        Confirmed::Deferred(e) => {
            tracing::warn!(?target, error = %e, "confirmation deferred to a sync job");
            let job = match target {
                Target::Subscription(subscription_id) => SyncJob::ConfirmSubscription {
                    subscription_id,
                    payment_id: payment_id.to_owned(),
                },
                Target::Order(order_id) => SyncJob::Order { order_id },
            };
            ctx.db.tx(move |c| Ok(job.enqueue(c)?)).await?;
        }
    }
    // Applying may have queued work (a refund, a cancellation, notifications).
    ctx.jobs.wake();
    Ok(())
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct OnetimeBody {
    #[serde(rename = "tierID")]
    #[schema(value_type = i64)]
    tier_id: Option<Value>,
    /// Must be the tier's currency when given.
    currency: Option<String>,
}

/// Start a one-time purchase of a tier: 30 days of access, no renewal. `SubscriptionID` holds
/// the `order_…`.
#[utoipa::path(post, path = "/subscriptions/create_onetime/", tag = "billing", request_body = OnetimeBody,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = CheckoutStarted), (status = 400), (status = 401), (status = 502)),
    security(("token" = []), ("jwt" = [])))]
pub async fn create_onetime(
    req: HttpRequest,
    user: AuthUser,
    ctx: web::Data<AppContext>,
    body: web::Json<OnetimeBody>,
) -> Result<HttpResponse, ApiError> {
    let tier_id = int_field(&body.tier_id, "tierID")?;
    let currency = body.currency.clone();
    let fp = json!({ "tierID": tier_id, "currency": currency });
    idempotency::run(&req, &ctx, user.user_id, &fp, || async {
        let oid = start_onetime(
            &ctx,
            user.user_id,
            &user.username,
            tier_id,
            currency.as_deref(),
        )
        .await
        .map_err(api_error)?;
        Ok(started(&ctx, oid))
    })
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct OrderBody {
    /// Integer minor units (paise, cents); 100 to the currency's maximum.
    #[schema(value_type = i64)]
    amount: Option<Value>,
    /// `INR` or `USD`.
    currency: Option<String>,
    #[serde(rename = "creatorID")]
    #[schema(value_type = i64)]
    creator_id: Option<Value>,
    name: Option<String>,
    /// At most 1000 characters.
    message: Option<String>,
}

/// Start a cheer (a tip with a message) to a creator.
#[utoipa::path(post, path = "/subscriptions/create_order", tag = "billing", request_body = OrderBody,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = CheckoutStarted), (status = 400), (status = 401), (status = 502)),
    security(("token" = []), ("jwt" = [])))]
pub async fn create_order(
    req: HttpRequest,
    user: AuthUser,
    ctx: web::Data<AppContext>,
    body: web::Json<OrderBody>,
) -> Result<HttpResponse, ApiError> {
    let amount = int_field(&body.amount, "amount")?;
    let creator_id = int_field(&body.creator_id, "creatorID")?;
    let currency = str_field(&body.currency, "currency")?.to_owned();
    let name = body.name.clone().unwrap_or_default();
    let message = body.message.clone().unwrap_or_default();
    let cheer = validate_cheer(amount, &currency, &name, &message).map_err(api_error)?;
    let fp = json!({ "amount": amount, "currency": currency, "creatorID": creator_id, "name": name, "message": message });
    idempotency::run(&req, &ctx, user.user_id, &fp, || async {
        let (db, gw) = billing_ports(&ctx);
        let payer = Buyer {
            id: user.user_id,
            username: user.username.clone(),
        };
        let cheer = cheer.clone();
        let s = checkout::start_cheer(&db, &gw, Utc::now(), &payer, creator_id, cheer)
            .await
            .map_err(api_error)?;
        Ok(started(&ctx, s.id))
    })
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SaveOrderBody {
    name: Option<String>,
    message: Option<String>,
    /// When given, must equal the order's amount (integer minor units).
    #[schema(value_type = Option<i64>)]
    amount: Option<Value>,
    razorpay_payment_id: Option<String>,
    razor_payment_id: Option<String>,
    razorpay_signature: Option<String>,
    razorpay_order_id: Option<String>,
    /// The seed's field for the order id.
    razorpay_subscription_id: Option<String>,
}

/// Confirm a cheer's Checkout payment (order signature verified first). The first accepted
/// call fixes the cheer's public `name` and `message`; later calls answer the same and change
/// nothing.
#[utoipa::path(post, path = "/subscriptions/save_order", tag = "billing", request_body = SaveOrderBody,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = Details), (status = 400, description = "bad signature or field"),
        (status = 401), (status = 404)),
    security(("token" = []), ("jwt" = [])))]
pub async fn save_order(
    req: HttpRequest,
    user: AuthUser,
    ctx: web::Data<AppContext>,
    body: web::Json<SaveOrderBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let payment_id = body
        .razorpay_payment_id
        .clone()
        .or(body.razor_payment_id.clone());
    let payment_id = str_field(&payment_id, "razorpay_payment_id")?.to_owned();
    let signature = str_field(&body.razorpay_signature, "razorpay_signature")?.to_owned();
    let (order_field, order_id) = match body.razorpay_order_id.clone().filter(|s| !s.is_empty()) {
        Some(o) => ("razorpay_order_id", Some(o)),
        // The seed's field for the order id.
        None => (
            "razorpay_subscription_id",
            body.razorpay_subscription_id.clone(),
        ),
    };
    let order_id = str_field(&order_id, "razorpay_order_id")?.to_owned();
    check_razorpay_id("razorpay_payment_id", &payment_id, RazorpayIdKind::Payment)
        .map_err(api_error)?;
    check_razorpay_id(order_field, &order_id, RazorpayIdKind::Order).map_err(api_error)?;
    if !razorpay::verify_order_signature(
        &order_id,
        &payment_id,
        &signature,
        ctx.payments.key_secret(),
    ) {
        return Err(api_error(BillingError::BadSignature));
    }
    let amount = match &body.amount {
        None | Some(Value::Null) => None,
        v => Some(int_field(v, "amount")?),
    };
    let text = CheerText::new(body.name.as_deref(), body.message.as_deref()).map_err(api_error)?;
    let fp = json!({ "payment": payment_id, "signature": signature, "name": body.name, "message": body.message });
    idempotency::run(&req, &ctx, user.user_id, &fp, || async {
        let (db, gw) = crate::workflows::billing::ports(&ctx.db, &ctx.payments);
        let callback = flow::OrderCallback {
            amount,
            text: text.clone(),
        };
        let confirmed = flow::confirm_order(
            &db,
            &gw,
            user.user_id,
            &order_id,
            &payment_id,
            callback,
            Utc::now(),
        )
        .await
        .map_err(api_error)?;
        after_confirm(
            &ctx,
            Target::Order(order_id.clone()),
            &payment_id,
            confirmed,
        )
        .await?;
        Ok((StatusCode::OK, json!(CREATED)))
    })
    .await
}

/// Join a creator's free (price 0) tier.
#[utoipa::path(post, path = "/subscriptions/subscribe_to_public_tier", tag = "billing", request_body = TierBody,
    responses((status = 201, body = Details, description = "joined"), (status = 200, body = Details, description = "already a member"),
        (status = 400, description = "unknown, inactive or paid tier"), (status = 401)),
    security(("token" = []), ("jwt" = [])))]
pub async fn subscribe_to_public_tier(
    user: AuthUser,
    ctx: web::Data<AppContext>,
    body: web::Json<TierBody>,
) -> Result<HttpResponse, ApiError> {
    let tier_id = int_field(&body.tier_id, "tierID")?;
    let (db, _) = billing_ports(&ctx);
    let joined = checkout::join_free_tier(&db, user.user_id, tier_id)
        .await
        .map_err(api_error)?;
    let status = if joined {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(CREATED))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct EndBody {
    /// Tier id.
    #[schema(value_type = i64)]
    tier: Option<Value>,
    /// 1 = at the end of the paid cycle, 0 = now (access ends now).
    #[schema(value_type = i64)]
    end_type: Option<Value>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EndStatus {
    /// `Success` or `Failed`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'static str>,
}

/// End the caller's membership of a tier.
#[utoipa::path(post, path = "/subscriptions/end/", tag = "billing", request_body = EndBody,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = EndStatus), (status = 400), (status = 401), (status = 502)),
    security(("token" = []), ("jwt" = [])))]
pub async fn end(
    req: HttpRequest,
    user: AuthUser,
    ctx: web::Data<AppContext>,
    body: web::Json<EndBody>,
) -> Result<HttpResponse, ApiError> {
    let tier_id = int_field(&body.tier, "tier")?;
    let end_type = EndType::parse(int_field(&body.end_type, "end_type")?).map_err(api_error)?;
    let fp = json!({ "tier": tier_id, "end_type": end_type == EndType::CycleEnd });
    idempotency::run(&req, &ctx, user.user_id, &fp, || async {
        let (db, gw) = billing_ports(&ctx);
        let ended = checkout::end_membership(&db, &gw, Utc::now(), user.user_id, tier_id, end_type)
            .await
            .map_err(api_error)?;
        let reply = match ended {
            Ended::Ended => EndStatus {
                status: "Success",
                message: None,
            },
            Ended::NothingToEnd => EndStatus {
                status: "Failed",
                message: Some("Subscription does not exist"),
            },
        };
        Ok((StatusCode::OK, json!(reply)))
    })
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct GuestBody {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    /// `recurring`, `oneTime` or `commission`.
    payment_type: Option<String>,
    #[serde(rename = "tierID")]
    #[schema(value_type = Option<i64>)]
    tier_id: Option<Value>,
    currency: Option<String>,
    #[serde(rename = "commissionID")]
    #[schema(value_type = Option<i64>)]
    commission_id: Option<Value>,
    /// A commission request's fields (`payment_type: "commission"`).
    description: Option<String>,
    #[serde(rename = "contactDetails")]
    contact_details: Option<String>,
    #[schema(value_type = Option<String>)]
    mode_of_delivery: Option<Value>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct GuestStarted {
    pub(crate) email: String,
    pub(crate) phone: String,
    pub(crate) username: String,
    #[serde(rename = "SubscriptionID")]
    pub(crate) subscription_id: String,
    pub(crate) public_key: String,
    /// API key of the (unverified) account: `Authorization: Token <key>`.
    pub(crate) key: String,
}

/// Guest checkout: for an existing email, signs in exactly like `/rest-auth/login/` (same
/// throttle, same refusals, an unverified email included); for a new one, creates an unverified
/// `guest` account (counted against the per-address registration limit). Then starts the
/// payment. The password's strength is checked first, alike for every email.
#[utoipa::path(post, path = "/subscriptions/get_ghost_user/", tag = "billing", request_body = GuestBody,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = GuestStarted),
        (status = 400, description = "invalid field (a weak password for any email), or login's refusal: `Unable to log in with provided credentials.` / `E-mail is not verified.`"),
        (status = 429, description = "too many failed logins, or new accounts from this address; see Retry-After"),
        (status = 502)))]
pub async fn get_ghost_user(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    st: web::Data<IdentityState>,
    body: web::Json<GuestBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let email = str_field(&body.email, "email")?.to_ascii_lowercase();
    if !oasis_identity::validate::is_valid_email(&email) {
        return Err(ApiError::field(
            "email",
            oasis_identity::validate::INVALID_EMAIL,
        ));
    }
    let password = body.password.clone().unwrap_or_default();
    if password.is_empty() {
        return Err(ApiError::field("password", "This field is required."));
    }
    let phone = body.phone.clone().unwrap_or_default().trim().to_owned();
    let valid_phone = |p: &str| {
        let digits = p.chars().filter(char::is_ascii_digit).count();
        (6..=15).contains(&digits)
            && p.len() <= 32
            && p.chars().enumerate().all(|(i, c)| {
                c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')') || (c == '+' && i == 0)
            })
    };
    if !phone.is_empty() && !valid_phone(&phone) {
        return Err(ApiError::field("phone", "Enter a valid phone number."));
    }
    let ptype = GuestPaymentType::parse(str_field(&body.payment_type, "payment_type")?)
        .map_err(api_error)?;
    let tier_id = match ptype {
        GuestPaymentType::Recurring | GuestPaymentType::OneTime => {
            int_field(&body.tier_id, "tierID")?
        }
        GuestPaymentType::Commission => int_field(&body.commission_id, "commissionID")?,
    };
    // The password's strength, judged on what the caller sent only (never on whether or whose
    // account the email names): a weak password gets the same field errors for every email,
    // before any account is looked up.
    // The password is not part of the fingerprint (a stored hash of it could be cracked
    // offline); the reply is bound to the account the password opened instead.
    let fp = json!({ "email": email, "phone": phone, "type": body.payment_type,
                     "tierID": tier_id, "currency": body.currency,
                     "description": body.description, "contactDetails": body.contact_details,
                     "mode_of_delivery": body.mode_of_delivery });
    let payment = match ptype {
        GuestPaymentType::Recurring => GuestPayment::Recurring,
        GuestPaymentType::OneTime => GuestPayment::OneTime {
            currency: body.currency.clone(),
        },
        GuestPaymentType::Commission => GuestPayment::Commission {
            request: crate::routes::commissions::RequestBody {
                commission_id: body.commission_id.clone(),
                description: body.description.clone(),
                contact_details: body.contact_details.clone(),
                mode_of_delivery: body.mode_of_delivery.clone(),
                currency: body.currency.clone(),
            }
            .input()?,
        },
    };
    let checkout = GuestCheckout {
        email,
        phone,
        password,
        payment,
        tier_id,
    };
    guest::checkout(&ctx, &st, &req, checkout, &fp).await
}
