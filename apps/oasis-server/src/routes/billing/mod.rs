//! Billing routes: `/subscriptions/...` (checkout flows, reads, bank details) and Razorpay
//! webhooks (`/razorpay/webhooks/`), plus the webhook/sync/reconcile jobs and the
//! `oasis billing` CLI. Field names are the seed README's; every amount is integer minor units,
//! passed through unchanged.
use crate::context::AppContext;
use crate::error::ApiError;
use crate::web;
use oasis_billing::BillingError;
use serde_json::Value;

pub(crate) mod bank;
pub(crate) mod checkout;
mod earnings;
pub(crate) mod memberships;
mod reads;
mod webhooks;

pub use crate::workflows::billing::{reconcile, replay_event, ReconcileReport};
pub(crate) use bank::apply_pending_change as apply_pending_bank_change;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        checkout::create,
        checkout::save,
        checkout::create_onetime,
        checkout::create_order,
        checkout::save_order,
        checkout::subscribe_to_public_tier,
        checkout::end,
        checkout::get_ghost_user,
        reads::list,
        reads::list_message,
        reads::list_tips,
        bank::get_bank,
        bank::post_bank,
        bank::patch_bank,
        bank::delete_bank,
        earnings::earnings,
        earnings::statement,
        earnings::payouts,
        webhooks::webhook,
        webhooks::webhook_onetime,
    ),
    components(schemas(
        checkout::CreateBody,
        checkout::CheckoutStarted,
        checkout::SaveBody,
        checkout::OnetimeBody,
        checkout::OrderBody,
        checkout::SaveOrderBody,
        checkout::TierBody,
        checkout::EndBody,
        checkout::GuestBody,
        checkout::GuestStarted,
        checkout::Details,
        checkout::EndStatus,
        reads::MembershipOut,
        reads::MembershipList,
        reads::MessageOut,
        reads::Messages,
        reads::TipOut,
        reads::Tips,
        bank::BankBody,
        bank::BankOut,
        bank::PasswordBody,
        earnings::EarningsOut,
        earnings::BalanceOut,
        earnings::StatementPage,
        earnings::LineOut,
        earnings::PayoutPage,
        earnings::PayoutOut,
        webhooks::WebhookAck,
    )),
    tags((name = "billing", description = "Memberships, one-time purchases, cheers, bank details, Razorpay webhooks"))
)]
pub struct ApiDoc;

pub fn config(cfg: &mut web::ServiceConfig, _ctx: &AppContext) {
    use web::{delete, get, patch, post, resource};
    memberships::config(cfg);
    cfg.service(resource("/subscriptions/create").route(post().to(checkout::create)))
        .service(resource("/subscriptions/save").route(post().to(checkout::save)))
        .service(
            resource("/subscriptions/create_onetime").route(post().to(checkout::create_onetime)),
        )
        .service(resource("/subscriptions/create_order").route(post().to(checkout::create_order)))
        .service(resource("/subscriptions/save_order").route(post().to(checkout::save_order)))
        .service(
            resource("/subscriptions/subscribe_to_public_tier")
                .route(post().to(checkout::subscribe_to_public_tier)),
        )
        .service(resource("/subscriptions/end").route(post().to(checkout::end)))
        .service(
            resource("/subscriptions/get_ghost_user").route(post().to(checkout::get_ghost_user)),
        )
        .service(resource("/subscriptions/list").route(get().to(reads::list)))
        .service(
            resource("/subscriptions/list_message/{creator_id}")
                .route(get().to(reads::list_message)),
        )
        .service(resource("/subscriptions/list_tips/{user_id}").route(get().to(reads::list_tips)))
        .service(
            resource("/subscriptions/api/bankdetails")
                .route(get().to(bank::get_bank))
                .route(post().to(bank::post_bank))
                .route(patch().to(bank::patch_bank))
                .route(delete().to(bank::delete_bank)),
        )
        .service(resource("/subscriptions/api/earnings").route(get().to(earnings::earnings)))
        .service(resource("/subscriptions/api/payouts").route(get().to(earnings::payouts)))
        .service(
            resource("/subscriptions/api/earnings/statement").route(get().to(earnings::statement)),
        )
        .service(resource("/razorpay/webhooks").route(post().to(webhooks::webhook)))
        .service(
            resource("/razorpay/webhooks/save_onetime_order")
                .route(post().to(webhooks::webhook_onetime)),
        );
}

/// The one place billing failures become HTTP responses.
pub(crate) fn api_error(e: BillingError) -> ApiError {
    match e {
        BillingError::Invalid { field, message } => ApiError::field(field, message),
        BillingError::BadSignature => {
            ApiError::field("razorpay_signature", "Invalid payment signature.")
        }
        BillingError::NotFound => ApiError::not_found(),
        BillingError::AlreadySubscribed => ApiError::bad_request(
            "already_subscribed",
            "You already have a live membership of this tier.",
        ),
        BillingError::TrialUsed => ApiError::bad_request(
            "trial_used",
            "Free trials are one per card or UPI ID, and this one has had a trial with this \
             creator. Nothing was charged: subscribe again to start without a trial, or use \
             another card or UPI ID.",
        ),
        BillingError::InProgress => ApiError::conflict(
            "in_progress",
            "The same request is being processed; retry shortly.",
        ),
        BillingError::Gateway(e) => {
            tracing::warn!(error = %e, "payment gateway call failed");
            ApiError::bad_gateway(
                "The payment provider is unavailable or refused the request; try again.",
            )
        }
        BillingError::Repo(r) => r.into(),
    }
}

/// An integer id field that may arrive as a number or a numeric string (DRF accepts both).
pub(crate) fn int_field(v: &Option<Value>, name: &str) -> Result<i64, ApiError> {
    match v {
        None | Some(Value::Null) => Err(ApiError::field(name, "This field is required.")),
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| ApiError::field(name, "A valid integer is required.")),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| ApiError::field(name, "A valid integer is required.")),
        Some(_) => Err(ApiError::field(name, "A valid integer is required.")),
    }
}

/// A required, non-blank string field.
pub(crate) fn str_field<'a>(v: &'a Option<String>, name: &str) -> Result<&'a str, ApiError> {
    match v.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => Ok(s),
        Some(_) => Err(ApiError::field(name, "This field may not be blank.")),
        None => Err(ApiError::field(name, "This field is required.")),
    }
}
