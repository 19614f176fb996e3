//! `POST /razorpay/webhooks/` (and the seed's `/razorpay/webhooks/save_onetime_order/`): a durable
//! inbox. The signature is verified over the raw bytes before anything is parsed (bad or
//! missing → 400, nothing stored); the raw event is stored once (`UNIQUE(event_id)`, the
//! `X-Razorpay-Event-Id` or `sha256:<hex of body>`) and its processing job enqueued in the same
//! statement (`workflows::inbox`: deliveries arriving together share it); 200 only after commit.
//! Processing happens in the `billing.webhook` job.
use crate::context::AppContext;
use crate::error::ApiError;
use crate::web;
use crate::workflows::inbox::WebhookInbox;
use actix_web::{HttpRequest, HttpResponse};
use oasis_db::billing::WebhookDelivery;
use serde::Serialize;

#[derive(Serialize, utoipa::ToSchema)]
pub struct WebhookAck {
    /// `ok`.
    status: &'static str,
    /// `false` when this event id was already stored (a duplicate delivery).
    new: bool,
}

/// Receives a Razorpay webhook.
#[utoipa::path(post, path = "/razorpay/webhooks/", tag = "billing",
    request_body(content = String, description = "Razorpay event JSON, verified byte-for-byte", content_type = "application/json"),
    params(
        ("X-Razorpay-Signature" = String, Header, description = "HMAC-SHA256 of the raw body with RAZORPAY_WEBHOOK_SECRET"),
        ("X-Razorpay-Event-Id" = Option<String>, Header, description = "de-duplication key (a hash of the body when absent)")),
    responses(
        (status = 200, body = WebhookAck, description = "durably stored (or a duplicate)"),
        (status = 400, description = "missing or bad signature; nothing stored")))]
pub async fn webhook(
    req: HttpRequest,
    body: web::Bytes,
    ctx: web::Data<AppContext>,
    inbox: web::Data<WebhookInbox>,
) -> Result<HttpResponse, ApiError> {
    receive(req, body, ctx, inbox).await
}

/// The seed's one-time-order webhook URL; same inbox as `/razorpay/webhooks/`.
#[utoipa::path(post, path = "/razorpay/webhooks/save_onetime_order/", tag = "billing",
    request_body(content = String, description = "Razorpay event JSON", content_type = "application/json"),
    responses((status = 200, body = WebhookAck), (status = 400, description = "bad signature; nothing stored")))]
pub async fn webhook_onetime(
    req: HttpRequest,
    body: web::Bytes,
    ctx: web::Data<AppContext>,
    inbox: web::Data<WebhookInbox>,
) -> Result<HttpResponse, ApiError> {
    receive(req, body, ctx, inbox).await
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    ctx: web::Data<AppContext>,
    inbox: web::Data<WebhookInbox>,
) -> Result<HttpResponse, ApiError> {
    let signature = req
        .headers()
        .get("X-Razorpay-Signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if signature.is_empty()
        || !razorpay::verify_webhook_signature(&body, signature, ctx.payments.webhook_secret())
    {
        tracing::warn!("webhook with a missing or bad signature rejected");
        return Err(ApiError::bad_request(
            "invalid_signature",
            "Missing or invalid X-Razorpay-Signature.",
        ));
    }
    let event_id = req
        .headers()
        .get("X-Razorpay-Event-Id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= 200)
        .map(str::to_owned)
        .unwrap_or_else(|| {
            format!(
                "sha256:{}",
                hex::encode(ring::digest::digest(&ring::digest::SHA256, &body))
            )
        });
    // Signed, so it is Razorpay's: keep it even if we cannot read it (the job records why).
    // The name is only a label: NUL (which a TEXT column refuses) is dropped, never a 500.
    let event = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("event")
                .and_then(|e| e.as_str())
                .map(|e| e.replace('\0', ""))
        })
        .unwrap_or_default();
    // Stored (with its processing job, `workflows::billing::WebhookJob`'s payload) together
    // with whatever else arrives meanwhile; answered after the commit.
    let new = inbox
        .store(WebhookDelivery {
            event_id: event_id.clone(),
            event: event.clone(),
            body: body.to_vec(),
        })
        .await?;
    tracing::info!(event_id = %event_id, event = %event, new, "webhook stored");
    Ok(HttpResponse::Ok().json(WebhookAck { status: "ok", new }))
}
