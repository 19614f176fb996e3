//! The authorization matrix: every operation of `/api/openapi.json` × {anonymous, fan, member of
//! the tier, other creator, owner} → the expected status, run against the real app and compared
//! cell by cell. Every id in a path or body belongs to the owner or the member (see
//! [`super::world`]), so the fan's and the other creator's cells are the IDOR checks: another
//! user's id must get them nothing. A new route without a row fails the test, and so does a row
//! whose route is not in the document.
//!
//! Besides the status, no answer to someone who may not read them may carry the gated post's body,
//! the member's comment on it or the commission request's contact details.
use super::world::{self, World, CONTACT, GATED_BODY, GATED_COMMENT, PASSWORD, ROLES};
use oasis_tests::{json, spawn_app, Resp, TestApp};
use serde_json::Value;
use std::collections::BTreeSet;

pub enum Body {
    None,
    Json(Value),
    /// A multipart upload of one file.
    Upload(&'static str, Vec<u8>),
}

pub struct Row {
    pub method: &'static str,
    /// The path as the OpenAPI document spells it.
    pub template: &'static str,
    /// The concrete path (and query) called.
    pub path: String,
    pub body: Body,
    /// Expected status per role: anonymous, fan, member, other creator, owner.
    pub expect: [u16; 5],
    /// Call with the role's spare API key (the row ends the session it is called with).
    pub spare: bool,
    /// Another path for one role (when two roles may each destroy an object: one object each).
    pub path_for: Option<(usize, String)>,
}

impl Row {
    fn path_for(mut self, role: usize, path: String) -> Row {
        self.path_for = Some((role, path));
        self
    }

    fn path(&self, role: usize) -> &str {
        match &self.path_for {
            Some((r, p)) if *r == role => p,
            _ => &self.path,
        }
    }
}

fn row(
    method: &'static str,
    template: &'static str,
    path: impl Into<String>,
    body: Body,
    expect: [u16; 5],
) -> Row {
    Row {
        method,
        template,
        path: path.into(),
        body,
        expect,
        spare: false,
        path_for: None,
    }
}

fn j(v: Value) -> Body {
    Body::Json(v)
}

const ALL200: [u16; 5] = [200; 5];
/// Signed in: anyone but anonymous.
const SIGNED_IN: [u16; 5] = [401, 200, 200, 200, 200];
/// Behind the owner's tier: its members and the owner.
const LOCKED: [u16; 5] = [403, 403, 200, 403, 200];
/// Creators only, each for themselves.
const CREATORS: [u16; 5] = [401, 403, 403, 200, 200];

/// The table. `{role}` in a JSON string is replaced by the calling role's name (for bodies that
/// must differ per caller, such as a new account's email).
pub fn rows(w: &World) -> Vec<Row> {
    let o = w.owner.id;
    let m = &w.member;
    let wrong_sig = "0".repeat(64);
    vec![
        // --- health
        row("GET", "/health", "/health", Body::None, ALL200),
        row("GET", "/ready", "/ready", Body::None, ALL200),
        // --- identity
        row(
            "POST",
            "/authenticate/rest-auth/registration/",
            "/authenticate/rest-auth/registration/",
            j(
                json!({"username": "reg_{role}", "email": "reg_{role}@example.com",
                     "password": PASSWORD, "password2": PASSWORD, "login_type": "manual"}),
            ),
            [201; 5],
        ),
        row(
            "POST",
            "/authenticate/rest-auth/registration/verify-email/",
            "/authenticate/rest-auth/registration/verify-email/",
            j(json!({"key": "not-a-key"})),
            [404; 5],
        ),
        row(
            "GET",
            "/authenticate/rest-auth/registration/account-confirm-email/{key}/",
            "/authenticate/rest-auth/registration/account-confirm-email/not-a-key/",
            Body::None,
            [404; 5],
        ),
        row(
            "POST",
            "/authenticate/rest-auth/registration/resend-email/",
            "/authenticate/rest-auth/registration/resend-email/",
            j(json!({"email": m.email})),
            ALL200,
        ),
        row(
            "GET",
            "/authenticate/rest-auth/user/",
            "/authenticate/rest-auth/user/",
            Body::None,
            SIGNED_IN,
        ),
        row(
            "PATCH",
            "/authenticate/rest-auth/user/",
            "/authenticate/rest-auth/user/",
            j(json!({"first_name": "Renamed"})),
            SIGNED_IN,
        ),
        row(
            "POST",
            "/authenticate/rest-auth/user/confirm-change/",
            "/authenticate/rest-auth/user/confirm-change/",
            j(json!({"key": "not-a-key"})),
            [404; 5],
        ),
        row(
            "GET",
            "/authenticate/rest-auth/user/confirm-change/{key}/",
            "/authenticate/rest-auth/user/confirm-change/not-a-key/",
            Body::None,
            [404; 5],
        ),
        row(
            "GET",
            "/authenticate/api/users/{id}/",
            format!("/authenticate/api/users/{o}/"),
            Body::None,
            ALL200,
        ),
        row(
            "POST",
            "/authenticate/rest-auth/login/",
            "/authenticate/rest-auth/login/",
            j(json!({"username": m.username, "password": PASSWORD})),
            ALL200,
        ),
        Row {
            spare: true,
            ..row(
                "POST",
                "/authenticate/rest-auth/logout/",
                "/authenticate/rest-auth/logout/",
                j(json!({})),
                ALL200,
            )
        },
        row(
            "POST",
            "/authenticate/rest-auth/password/change/",
            "/authenticate/rest-auth/password/change/",
            j(
                json!({"old_password": "not-the-password", "new_password1": "N3w-pass-word-x",
                     "new_password2": "N3w-pass-word-x"}),
            ),
            [401, 400, 400, 400, 400],
        ),
        row(
            "POST",
            "/authenticate/rest-auth/password/reset/",
            "/authenticate/rest-auth/password/reset/",
            j(json!({"email": w.owner.email})),
            ALL200,
        ),
        row(
            "POST",
            "/authenticate/rest-auth/password/reset/confirm/",
            "/authenticate/rest-auth/password/reset/confirm/",
            j(
                json!({"uid": "x", "token": "y", "new_password1": "N3w-pass-word-x",
                     "new_password2": "N3w-pass-word-x"}),
            ),
            [400; 5],
        ),
        row(
            "GET",
            "/authenticate/rest-auth/password/reset/confirm/{uid}/{token}/",
            "/authenticate/rest-auth/password/reset/confirm/x/y/",
            Body::None,
            // The page with the form; the token is checked when it is posted.
            ALL200,
        ),
        row(
            "POST",
            "/authenticate/api/token/",
            "/authenticate/api/token/",
            j(json!({"username": m.username, "password": PASSWORD})),
            ALL200,
        ),
        row(
            "POST",
            "/authenticate/api/token/refresh/",
            "/authenticate/api/token/refresh/",
            j(json!({"refresh": "not.a.jwt"})),
            [401; 5],
        ),
        row(
            "POST",
            "/authenticate/api/token/verify/",
            "/authenticate/api/token/verify/",
            j(json!({"token": "not.a.jwt"})),
            [401; 5],
        ),
        row(
            "POST",
            "/authenticate/rest-auth/google/",
            "/authenticate/rest-auth/google/",
            j(json!({"access_token": "x", "id_token": "x"})),
            [400; 5],
        ),
        row(
            "POST",
            "/authenticate/rest-auth/facebook/",
            "/authenticate/rest-auth/facebook/",
            j(json!({"access_token": "x"})),
            [400; 5],
        ),
        // --- catalog: tiers
        row(
            "GET",
            "/content/api/tiers/",
            format!("/content/api/tiers/?creator={o}"),
            Body::None,
            ALL200,
        ),
        row(
            "POST",
            "/content/api/tiers/",
            "/content/api/tiers/",
            j(
                json!({"name": "New", "description": "d", "price": 700, "currency": "INR", "benefits": []}),
            ),
            [401, 403, 403, 201, 201],
        ),
        row(
            "GET",
            "/content/api/tiers/{id}/",
            format!("/content/api/tiers/{}/", w.tier),
            Body::None,
            ALL200,
        ),
        row(
            "PATCH",
            "/content/api/tiers/{id}/",
            format!("/content/api/tiers/{}/", w.tier),
            j(json!({"description": "patched"})),
            [401, 403, 403, 403, 200],
        ),
        row(
            "DELETE",
            "/content/api/tiers/{id}/",
            format!("/content/api/tiers/{}/", w.tier_del),
            Body::None,
            [401, 403, 403, 403, 204],
        ),
        // --- catalog: posts
        row(
            "GET",
            "/content/api/content/",
            format!("/content/api/content/?creator={o}"),
            Body::None,
            ALL200,
        ),
        row(
            "POST",
            "/content/api/content/",
            "/content/api/content/",
            j(json!({"title": "t", "body": "b", "tiers": [w.tier], "attachments": [w.media]})),
            [401, 403, 403, 400, 201],
        ),
        row(
            "GET",
            "/content/api/content/{id}/",
            format!("/content/api/content/{}/", w.post_gated),
            Body::None,
            ALL200,
        ),
        row(
            "PATCH",
            "/content/api/content/{id}/",
            format!("/content/api/content/{}/", w.post_public),
            j(json!({"title": "patched"})),
            [401, 403, 403, 403, 200],
        ),
        row(
            "DELETE",
            "/content/api/content/{id}/",
            format!("/content/api/content/{}/", w.post_del),
            Body::None,
            [401, 403, 403, 403, 204],
        ),
        row(
            "DELETE",
            "/content/api/remove-tiers/{id}/",
            format!("/content/api/remove-tiers/{}/", w.post_rmtier),
            j(json!({"tiers": [w.tier]})),
            [401, 403, 403, 403, 200],
        ),
        // --- catalog: media
        row(
            "POST",
            "/content/api/media/",
            "/content/api/media/",
            Body::Upload("matrix.png", world::png()),
            [401, 201, 201, 201, 201],
        ),
        row(
            "GET",
            "/content/api/media/{id}/",
            format!("/content/api/media/{}/", w.media),
            Body::None,
            [403, 403, 200, 403, 200],
        ),
        row(
            "GET",
            "/content/api/media/{id}/file",
            format!("/content/api/media/{}/file", w.media),
            Body::None,
            [403, 403, 200, 403, 200],
        ),
        // --- catalog: likes and comments
        row(
            "GET",
            "/content/api/likes/",
            format!("/content/api/likes/?post={}", w.post_gated),
            Body::None,
            LOCKED,
        ),
        row(
            "POST",
            "/content/api/likes/",
            "/content/api/likes/",
            j(json!({"post": w.post_gated})),
            // The member liked it already: the same like again (idempotent).
            [401, 403, 200, 403, 201],
        ),
        row(
            "GET",
            "/content/api/likes/{id}/",
            format!("/content/api/likes/{}/", w.like_gated),
            Body::None,
            LOCKED,
        ),
        row(
            "DELETE",
            "/content/api/likes/{id}/",
            format!("/content/api/likes/{}/", w.like),
            Body::None,
            [401, 403, 204, 403, 403],
        ),
        row(
            "GET",
            "/content/api/comment/",
            format!("/content/api/comment/?post={}", w.post_gated),
            Body::None,
            LOCKED,
        ),
        row(
            "POST",
            "/content/api/comment/",
            "/content/api/comment/",
            j(json!({"post": w.post_gated, "text": "hello"})),
            [401, 403, 201, 403, 201],
        ),
        row(
            "GET",
            "/content/api/comment/{id}/",
            format!("/content/api/comment/{}/", w.comment_gated),
            Body::None,
            LOCKED,
        ),
        row(
            "PATCH",
            "/content/api/comment/{id}/",
            format!("/content/api/comment/{}/", w.comment),
            j(json!({"text": "edited"})),
            [401, 403, 200, 403, 403],
        ),
        row(
            "DELETE",
            "/content/api/comment/{id}/",
            format!("/content/api/comment/{}/", w.comment_del),
            Body::None,
            // The post's creator moderates: they may delete any comment on their posts.
            [401, 403, 204, 403, 204],
        )
        .path_for(4, format!("/content/api/comment/{}/", w.comment_mod)),
        // --- social
        row(
            "GET",
            "/feed/api/follow/{creator_id}",
            format!("/feed/api/follow/{o}"),
            Body::None,
            SIGNED_IN,
        ),
        row(
            "POST",
            "/feed/api/follow/{creator_id}",
            format!("/feed/api/follow/{o}"),
            j(json!({})),
            [401, 200, 200, 200, 400],
        ),
        row(
            "DELETE",
            "/feed/api/follow/{creator_id}",
            format!("/feed/api/follow/{o}"),
            Body::None,
            [401, 200, 200, 200, 400],
        ),
        row(
            "PATCH",
            "/content/api/user-creator",
            "/content/api/user-creator",
            j(json!({"creator": o, "follow": true})),
            [401, 200, 200, 200, 400],
        ),
        row(
            "GET",
            "/feed/api/feed",
            "/feed/api/feed",
            Body::None,
            SIGNED_IN,
        ),
        row(
            "GET",
            "/feed/api/user-profile/{id}",
            format!("/feed/api/user-profile/{o}"),
            Body::None,
            ALL200,
        ),
        row(
            "GET",
            "/feed/api/get-posts",
            "/feed/api/get-posts",
            Body::None,
            SIGNED_IN,
        ),
        row(
            "GET",
            "/feed/api/search",
            "/feed/api/search?q=owner",
            Body::None,
            ALL200,
        ),
        row(
            "GET",
            "/feed/api/stats",
            "/feed/api/stats",
            Body::None,
            CREATORS,
        ),
        row(
            "GET",
            "/feed/api/userstats",
            "/feed/api/userstats",
            Body::None,
            SIGNED_IN,
        ),
        // --- billing: memberships
        row(
            "POST",
            "/subscriptions/pause",
            "/subscriptions/pause",
            j(json!({"tier": w.tier_pause, "cycles": 1})),
            [401, 400, 200, 400, 400],
        ),
        row(
            "POST",
            "/subscriptions/resume",
            "/subscriptions/resume",
            j(json!({"tier": w.tier_pause})),
            [401, 400, 200, 400, 400],
        ),
        row(
            "GET",
            "/subscriptions/change/preview",
            format!(
                "/subscriptions/change/preview?tier={}&to={}",
                w.tier, w.tier2
            ),
            Body::None,
            [401, 400, 200, 400, 400],
        ),
        row(
            "POST",
            "/subscriptions/change",
            "/subscriptions/change",
            j(json!({"tier": w.tier_change, "to": w.tier2})),
            [401, 400, 200, 400, 400],
        ),
        row(
            "POST",
            "/subscriptions/hiatus",
            "/subscriptions/hiatus",
            // Out of range for every role: who may start one is checked without pausing the
            // world's memberships (which later rows rely on).
            j(json!({"cycles": 0})),
            [401, 403, 403, 400, 400],
        ),
        row(
            "GET",
            "/subscriptions/hiatus",
            "/subscriptions/hiatus",
            Body::None,
            CREATORS,
        ),
        row(
            "GET",
            "/subscriptions/api/payouts",
            "/subscriptions/api/payouts",
            Body::None,
            CREATORS,
        ),
        row(
            "GET",
            "/subscriptions/list",
            "/subscriptions/list",
            Body::None,
            SIGNED_IN,
        ),
        row(
            "GET",
            "/subscriptions/list_message/{creator_id}",
            format!("/subscriptions/list_message/{o}"),
            Body::None,
            ALL200,
        ),
        row(
            "GET",
            "/subscriptions/list_tips/{userID}",
            format!("/subscriptions/list_tips/{o}"),
            Body::None,
            [401, 403, 403, 403, 200],
        ),
        row(
            "POST",
            "/razorpay/webhooks/",
            "/razorpay/webhooks/",
            j(json!({"event": "payment.captured", "payload": {}})),
            [400; 5],
        ),
        row(
            "POST",
            "/razorpay/webhooks/save_onetime_order/",
            "/razorpay/webhooks/save_onetime_order/",
            j(json!({"event": "payment.captured", "payload": {}})),
            [400; 5],
        ),
        // --- billing: checkout
        row(
            "POST",
            "/subscriptions/create",
            "/subscriptions/create",
            j(json!({"tierID": w.tier})),
            [401, 200, 400, 200, 400],
        ),
        row(
            "POST",
            "/subscriptions/save",
            "/subscriptions/save",
            j(
                json!({"tierID": w.tier, "razorpay_payment_id": "pay_MatrixNoSuch01",
                     "razorpay_signature": wrong_sig, "razorpay_subscription_id": "sub_MatrixNoSuch01"}),
            ),
            [401, 400, 400, 400, 400],
        ),
        row(
            "POST",
            "/subscriptions/create_onetime/",
            "/subscriptions/create_onetime/",
            j(json!({"tierID": w.tier})),
            [401, 200, 200, 200, 400],
        ),
        row(
            "POST",
            "/subscriptions/create_order",
            "/subscriptions/create_order",
            j(
                json!({"amount": 500, "currency": "INR", "creatorID": o, "name": "n", "message": "m"}),
            ),
            [401, 200, 200, 200, 400],
        ),
        row(
            "POST",
            "/subscriptions/save_order",
            "/subscriptions/save_order",
            j(
                json!({"razorpay_payment_id": "pay_MatrixNoSuch01", "razorpay_signature": wrong_sig,
                     "razorpay_order_id": "order_MatrixNoSuch1"}),
            ),
            [401, 400, 400, 400, 400],
        ),
        row(
            "POST",
            "/subscriptions/subscribe_to_public_tier",
            "/subscriptions/subscribe_to_public_tier",
            j(json!({"tierID": w.tier_free})),
            [401, 201, 201, 201, 400],
        ),
        row(
            "POST",
            "/subscriptions/end/",
            "/subscriptions/end/",
            j(json!({"tier": w.tier_end, "end_type": 1})),
            // The legacy answer when there is nothing to end: 200 `{"status": "Failed"}`.
            SIGNED_IN,
        ),
        row(
            "POST",
            "/subscriptions/get_ghost_user/",
            "/subscriptions/get_ghost_user/",
            j(
                json!({"email": "ghost_{role}@example.com", "password": PASSWORD,
                     "payment_type": "recurring", "tierID": w.tier}),
            ),
            ALL200,
        ),
        // --- billing: earnings and bank details
        row(
            "GET",
            "/subscriptions/api/earnings",
            "/subscriptions/api/earnings",
            Body::None,
            CREATORS,
        ),
        row(
            "GET",
            "/subscriptions/api/earnings/statement",
            "/subscriptions/api/earnings/statement?from=2020-01-01&to=2030-01-01",
            Body::None,
            CREATORS,
        ),
        row(
            "GET",
            "/subscriptions/api/bankdetails",
            "/subscriptions/api/bankdetails",
            Body::None,
            [401, 403, 403, 404, 200],
        ),
        row(
            "PATCH",
            "/subscriptions/api/bankdetails",
            "/subscriptions/api/bankdetails",
            j(json!({"BankName": "Patched", "password": PASSWORD})),
            [401, 403, 403, 404, 200],
        ),
        row(
            "POST",
            "/subscriptions/api/bankdetails",
            "/subscriptions/api/bankdetails",
            j(
                json!({"ifscCode": "SBIN0004321", "accountNumber": "1234567890123",
                     "BankName": "SBI", "accountHolderName": "Someone", "contactPhone": "9000090001",
                     "legalName": "Someone", "businessType": "individual", "password": PASSWORD}),
            ),
            // The owner's replace their stored ones.
            [401, 403, 403, 201, 200],
        ),
        row(
            "DELETE",
            "/subscriptions/api/bankdetails",
            "/subscriptions/api/bankdetails",
            j(json!({"password": PASSWORD})),
            [401, 403, 403, 204, 204],
        ),
        // --- notifications
        row(
            "GET",
            "/feed/api/notifications/",
            "/feed/api/notifications/",
            Body::None,
            SIGNED_IN,
        ),
        row(
            "GET",
            "/feed/api/notifications/unread_count",
            "/feed/api/notifications/unread_count",
            Body::None,
            SIGNED_IN,
        ),
        row(
            "POST",
            "/feed/api/notifications/{id}/read",
            format!("/feed/api/notifications/{}/read", w.notification),
            j(json!({})),
            [401, 404, 404, 404, 200],
        ),
        row(
            "DELETE",
            "/feed/api/notifications/{id}",
            format!("/feed/api/notifications/{}", w.notification_del),
            Body::None,
            [401, 404, 404, 404, 204],
        ),
        row(
            "POST",
            "/feed/api/notifications/mark_all_as_read",
            "/feed/api/notifications/mark_all_as_read",
            j(json!({})),
            SIGNED_IN,
        ),
        row(
            "GET",
            "/feed/api/notification-settings/",
            "/feed/api/notification-settings/",
            Body::None,
            SIGNED_IN,
        ),
        row(
            "PATCH",
            "/feed/api/notification-settings/",
            "/feed/api/notification-settings/",
            j(json!({})),
            SIGNED_IN,
        ),
        row(
            "GET",
            "/feed/api/notification-settings/unsubscribe/{token}",
            "/feed/api/notification-settings/unsubscribe/not-a-token",
            Body::None,
            [400; 5],
        ),
        row(
            "POST",
            "/feed/api/notification-settings/unsubscribe/{token}",
            "/feed/api/notification-settings/unsubscribe/not-a-token",
            j(json!({})),
            [400; 5],
        ),
        // --- commissions: offerings
        row(
            "GET",
            "/commissions/api/commission-creator/",
            "/commissions/api/commission-creator/",
            Body::None,
            // The caller's own offerings (none for a fan).
            SIGNED_IN,
        ),
        row(
            "POST",
            "/commissions/api/commission-creator/",
            "/commissions/api/commission-creator/",
            j(
                json!({"title": "New", "description": "d", "price": 500, "currency": "INR",
                     "delivery_days": 3, "slots": 2, "is_open": true}),
            ),
            [401, 403, 403, 201, 201],
        ),
        row(
            "GET",
            "/commissions/api/commission-creator/{id}/",
            format!("/commissions/api/commission-creator/{}/", w.offering),
            Body::None,
            ALL200,
        ),
        row(
            "PATCH",
            "/commissions/api/commission-creator/{id}/",
            format!("/commissions/api/commission-creator/{}/", w.offering),
            j(json!({"description": "patched"})),
            [401, 403, 403, 403, 200],
        ),
        row(
            "DELETE",
            "/commissions/api/commission-creator/{id}/",
            format!("/commissions/api/commission-creator/{}/", w.offering_del),
            Body::None,
            [401, 403, 403, 403, 204],
        ),
        row(
            "GET",
            "/commissions/api/deletable/{id}",
            format!("/commissions/api/deletable/{}", w.offering),
            Body::None,
            [401, 404, 404, 404, 200],
        ),
        row(
            "GET",
            "/commissions/list/{creator_id}",
            format!("/commissions/list/{o}"),
            Body::None,
            ALL200,
        ),
        row(
            "GET",
            "/commissions/api/get-commissions",
            format!("/commissions/api/get-commissions?creator={o}"),
            Body::None,
            ALL200,
        ),
        // --- commissions: requests
        row(
            "POST",
            "/commissions/api/commission-user/",
            "/commissions/api/commission-user/",
            j(
                json!({"commissionID": w.offering, "description": "d", "contactDetails": "c",
                     "mode_of_delivery": "1", "currency": "INR"}),
            ),
            [401, 201, 201, 201, 409],
        ),
        row(
            "GET",
            "/commissions/api/get-commissions-user",
            "/commissions/api/get-commissions-user",
            Body::None,
            SIGNED_IN,
        ),
        row(
            "GET",
            "/commissions/api/commission-user/{id}/",
            format!("/commissions/api/commission-user/{}/", w.request),
            Body::None,
            [401, 404, 200, 404, 200],
        ),
        row(
            "PATCH",
            "/commissions/api/commission-user/{id}/",
            format!("/commissions/api/commission-user/{}/", w.request),
            j(json!({"status": "accepted"})),
            [401, 404, 403, 404, 200],
        ),
        row(
            "POST",
            "/commissions/api/commission-user/{id}/confirm/",
            format!(
                "/commissions/api/commission-user/{}/confirm/",
                w.request_unpaid
            ),
            j(json!({"razorpay_order_id": w.request_unpaid_order,
                     "razorpay_payment_id": w.request_unpaid_paid["razorpay_payment_id"],
                     "razorpay_signature": w.request_unpaid_paid["razorpay_signature"]})),
            [401, 404, 200, 404, 403],
        ),
    ]
}

/// `{role}` in every string of `v` replaced by `role`.
fn per_role(v: &Value, role: &str) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace("{role}", role)),
        Value::Array(a) => Value::Array(a.iter().map(|x| per_role(x, role)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), per_role(x, role)))
                .collect(),
        ),
        other => other.clone(),
    }
}

pub async fn call(app: &TestApp, row: &Row, role: usize, token: Option<&str>) -> Resp {
    let method = reqwest::Method::from_bytes(row.method.as_bytes()).expect("method");
    let mut req = app.client.request(method, app.url(row.path(role)));
    if let Some(t) = token {
        req = req.header("Authorization", format!("Token {t}"));
    }
    req = match &row.body {
        Body::None => req,
        Body::Json(v) => req.json(&per_role(v, ROLES[role])),
        Body::Upload(name, bytes) => req
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={}", world::BOUNDARY),
            )
            .body(world::multipart(name, bytes)),
    };
    app.send(req).await
}

/// Does `path` (without its query) fit the OpenAPI `template`?
fn fits(template: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(a, b)| a == b || (a.starts_with('{') && a.ends_with('}') && !b.is_empty()))
}

/// Every (METHOD, path) of the OpenAPI document.
pub async fn operations(app: &TestApp) -> BTreeSet<(String, String)> {
    let doc = app.get("/api/openapi.json", None).await;
    assert_eq!(doc.status, 200);
    let mut ops = BTreeSet::new();
    for (path, item) in doc.body["paths"].as_object().expect("paths") {
        for m in ["get", "put", "post", "patch", "delete"] {
            if item.get(m).is_some() {
                ops.insert((m.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

#[tokio::test]
async fn authorization_matrix_matches_cell_by_cell() {
    let app = spawn_app().await;
    let w = world::build(&app, "mx", &app.url("/_razorpay")).await;
    let table = rows(&w);

    // Coverage: one row per documented operation, and no row for an undocumented one.
    let documented = operations(&app).await;
    let mut covered = BTreeSet::new();
    for r in &table {
        assert!(
            fits(r.template, &r.path),
            "{} {}: path {} does not fit the template",
            r.method,
            r.template,
            r.path
        );
        if let Some((_, p)) = &r.path_for {
            assert!(fits(r.template, p), "{} {}: {p}", r.method, r.template);
        }
        assert!(
            covered.insert((r.method.to_owned(), r.template.to_owned())),
            "two rows for {} {}",
            r.method,
            r.template
        );
    }
    let missing: Vec<_> = documented.difference(&covered).collect();
    let extra: Vec<_> = covered.difference(&documented).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "the matrix and /api/openapi.json disagree:\n  operations without a row: {missing:?}\n  rows without an operation: {extra:?}"
    );

    let mut mismatches = vec![];
    let mut leaks = vec![];
    let mut cells = 0;
    // How often the member or the owner were shown the gated body and the contact details (so
    // the leak check looks for text that really is in answers).
    let mut shown = [0; 3];
    for r in &table {
        // The roles that are refused first, then those that succeed (a success may change or
        // remove what the others would have been refused).
        let mut order: Vec<usize> = (0..5).collect();
        order.sort_by_key(|&i| (r.expect[i] < 300, i));
        for role in order {
            let token = if r.spare {
                w.spare[role].as_deref()
            } else {
                world::role_token(&w, role)
            };
            let got = call(&app, r, role, token).await;
            cells += 1;
            if got.status != r.expect[role] {
                mismatches.push(format!(
                    "{:6} {:55} {:9} expected {} got {}: {}",
                    r.method,
                    r.path(role),
                    ROLES[role],
                    r.expect[role],
                    got.status,
                    got.text.chars().take(160).collect::<String>()
                ));
            }
            if matches!(role, 2 | 4) {
                for (i, secret) in [GATED_BODY, CONTACT, GATED_COMMENT].iter().enumerate() {
                    if got.text.contains(secret) {
                        shown[i] += 1;
                    }
                }
            }
            // anonymous, fan, other creator: neither the gated body nor the member's contact details.
            if matches!(role, 0 | 1 | 3) {
                for secret in [GATED_BODY, CONTACT, GATED_COMMENT] {
                    if got.text.contains(secret) {
                        leaks.push(format!(
                            "{} {} as {}: {secret}",
                            r.method, r.path, ROLES[role]
                        ));
                    }
                }
            }
        }
    }
    println!(
        "authorization matrix: {} rows, {cells} cells, {} mismatched, {} leaks",
        table.len(),
        mismatches.len(),
        leaks.len()
    );
    assert!(
        shown.iter().all(|&n| n > 0),
        "the markers never appeared: {shown:?}"
    );
    assert!(
        mismatches.is_empty() && leaks.is_empty(),
        "authorization matrix: {} of {cells} cells differ:\n{}\nleaks:\n{}",
        mismatches.len(),
        mismatches.join("\n"),
        leaks.join("\n")
    );
}

/// Ids in a body, one at a time (in the matrix a body may carry several, and one refusal would
/// hide another): another creator may not attach the owner's file or gate with the owner's
/// tier, neither on a new post nor on their own existing one — attaching it to a public post
/// would publish the owner's gated file.
#[tokio::test]
async fn ids_in_bodies_are_refused_one_by_one() {
    let app = spawn_app().await;
    let w = world::build(&app, "ib", &app.url("/_razorpay")).await;
    let other = &w.other;
    let r = app
        .post(
            "/content/api/content/",
            &json!({"title": "t", "body": "b"}),
            Some(&other.token),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let own = r.body["id"].as_i64().unwrap();
    for (method, path, body, field) in [
        (
            "POST",
            "/content/api/content/".to_owned(),
            json!({"title": "t", "body": "b", "attachments": [w.media]}),
            "attachments",
        ),
        (
            "POST",
            "/content/api/content/".to_owned(),
            json!({"title": "t", "body": "b", "tiers": [w.tier]}),
            "tiers",
        ),
        (
            "PATCH",
            format!("/content/api/content/{own}/"),
            json!({"attachments": [w.media]}),
            "attachments",
        ),
        (
            "PATCH",
            format!("/content/api/content/{own}/"),
            json!({"tiers": [w.tier]}),
            "tiers",
        ),
        (
            "DELETE",
            format!("/content/api/remove-tiers/{own}/"),
            json!({"tiers": [w.tier]}),
            "tiers",
        ),
    ] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = app
            .send(
                app.client
                    .request(m, app.url(&path))
                    .header("Authorization", format!("Token {}", other.token))
                    .json(&body),
            )
            .await;
        assert_eq!(r.status, 400, "{method} {path} {body}: {}", r.text);
        assert!(r.body[field].is_array(), "{method} {path}: {}", r.text);
    }
    // Nothing changed: the other creator's post has no tiers and no attachments, and the
    // owner's file is still attached to the owner's gated post only.
    let r = app
        .get(&format!("/content/api/content/{own}/"), Some(&other.token))
        .await;
    assert_eq!(r.body["tiers"], json!([]), "{}", r.text);
    assert_eq!(r.body["attachments"], json!([]), "{}", r.text);
    let r = app
        .get(
            &format!("/content/api/media/{}/", w.media),
            Some(&other.token),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
}
