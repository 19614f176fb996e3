//! `notify` routes: `/feed/api/notifications/...` — the caller's notifications in
//! django-notifications-hq's shape (`?max=N` → `{"unread_count", "unread_list", "all_count",
//! "all_list"}`), the unread count, mark read, delete; the notification settings
//! (`/feed/api/notification-settings/`) and the signed one-click unsubscribe link. The
//! `notify.fanout` and `notify.email` jobs live in `crate::workflows::notify{,_mail}`.
use crate::auth::{AuthUser, MaybeAuthUser};
use crate::context::AppContext;
use crate::error::ApiError;
use crate::stream::{StreamAuthError, StreamRefused};
use crate::web;
use crate::workflows::notify_mail::{self, UnsubscribeError};
use actix_web::HttpResponse;
use oasis_db::notify::PgNotify;
use oasis_notify::{Notification, NotifyError, Preferences};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, unread_count, stream_ticket, stream, mark_all_as_read, mark_as_read, destroy, get_settings,
        patch_settings, unsubscribe_form, unsubscribe),
    components(schemas(NotificationDto, NotificationList, UnreadCount, MarkedAll, ChannelsDto,
        StreamTicket)),
    tags((name = "notify", description = "The caller's notifications"))
)]
pub struct ApiDoc;

pub fn config(cfg: &mut web::ServiceConfig, _ctx: &AppContext) {
    cfg.service(web::resource("/feed/api/notifications").route(web::get().to(list)))
        .service(
            web::resource("/feed/api/notifications/unread_count")
                .route(web::get().to(unread_count)),
        )
        // Before `{id}`, which would match these paths too (and answer 405).
        .service(
            web::resource("/feed/api/notifications/stream-ticket")
                .route(web::post().to(stream_ticket)),
        )
        .service(web::resource("/feed/api/notifications/stream").route(web::get().to(stream)))
        .service(
            web::resource("/feed/api/notifications/mark_all_as_read")
                .route(web::post().to(mark_all_as_read)),
        )
        .service(
            web::resource("/feed/api/notifications/{id}/read").route(web::post().to(mark_as_read)),
        )
        .service(web::resource("/feed/api/notifications/{id}").route(web::delete().to(destroy)))
        .service(
            web::resource("/feed/api/notification-settings")
                .route(web::get().to(get_settings))
                .route(web::patch().to(patch_settings)),
        )
        .service(
            web::resource("/feed/api/notification-settings/unsubscribe/{token}")
                .route(web::get().to(unsubscribe_form))
                .route(web::post().to(unsubscribe)),
        );
}

impl From<UnsubscribeError> for ApiError {
    fn from(e: UnsubscribeError) -> Self {
        match e {
            UnsubscribeError::BadToken => ApiError::bad_request("invalid_token", e.to_string()),
            UnsubscribeError::Notify(n) => n.into(),
            UnsubscribeError::Db(d) => d.into(),
        }
    }
}

impl From<StreamRefused> for ApiError {
    fn from(e: StreamRefused) -> Self {
        ApiError::detail(
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
            "too_many_streams",
            e.to_string(),
        )
    }
}

impl From<StreamAuthError> for ApiError {
    fn from(e: StreamAuthError) -> Self {
        match e {
            StreamAuthError::Anonymous => ApiError::not_authenticated(),
            StreamAuthError::BadTicket => ApiError::authentication_failed(e.to_string()),
            StreamAuthError::Db(d) => d.into(),
        }
    }
}

/// The one place notify errors become HTTP errors.
impl From<NotifyError> for ApiError {
    fn from(e: NotifyError) -> Self {
        match e {
            NotifyError::Invalid { field, message } => ApiError::field(field, message),
            NotifyError::NotFound => ApiError::not_found(),
            NotifyError::Repo(r) => r.into(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Wire shapes

/// One notification (django-notifications-hq's live-list item). `slug` is the id (also sent
/// misspelled `sulg`, as the seed documents it); `actor`, `target`, `action_object` are display
/// strings (`str(obj)`), with typed ids alongside.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationDto {
    pub id: i64,
    pub slug: i64,
    pub sulg: i64,
    pub level: &'static str,
    pub recipient: i64,
    pub unread: bool,
    /// The actor's username (null when the actor is gone or there is none).
    pub actor: Option<String>,
    pub actor_id: Option<i64>,
    pub verb: String,
    /// `new_post`, `comment`, `like`, `follow`, `membership`, `cheer`, `payment_failed`,
    /// `membership_halted`, `payment_refunded`.
    pub kind: &'static str,
    pub target: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<i64>,
    pub action_object: Option<String>,
    pub action_object_type: Option<String>,
    pub action_object_id: Option<i64>,
    /// Kind-specific details; about a tier-gated post only its id and title (never its body).
    #[schema(value_type = Object)]
    pub data: Value,
    pub timestamp: chrono::DateTime<chrono::Utc>,
}

fn dto(n: Notification) -> NotificationDto {
    let (target, target_type, target_id) = match n.target {
        Some(o) => (Some(o.repr), Some(o.kind), Some(o.id)),
        None => (None, None, None),
    };
    let (action_object, action_object_type, action_object_id) = match n.action_object {
        Some(o) => (Some(o.repr), Some(o.kind), Some(o.id)),
        None => (None, None, None),
    };
    NotificationDto {
        id: n.id,
        slug: n.id,
        sulg: n.id,
        level: "info",
        recipient: n.recipient_id,
        unread: n.unread,
        actor: n.actor_name,
        actor_id: n.actor_id,
        verb: n.verb,
        kind: n.kind.as_str(),
        target,
        target_type,
        target_id,
        action_object,
        action_object_type,
        action_object_id,
        data: n.data,
        timestamp: n.created_at,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationList {
    pub unread_count: i64,
    pub unread_list: Vec<NotificationDto>,
    pub all_count: i64,
    pub all_list: Vec<NotificationDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnreadCount {
    pub unread_count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MarkedAll {
    /// How many were unread.
    pub marked: u64,
    pub unread_count: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct MaxQuery {
    /// How many of each list (1–100, default 100).
    #[param(value_type = Option<i64>)]
    pub max: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StreamTicket {
    /// Pass as `?ticket=` to `GET /feed/api/notifications/stream` (once).
    pub ticket: String,
    /// Seconds it stays valid.
    pub expires_in: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct StreamQuery {
    /// A ticket from `POST /feed/api/notifications/stream-ticket` (for `EventSource`, which
    /// cannot send an `Authorization` header).
    pub ticket: Option<String>,
}

/// The inbox item's JSON, for the stream.
fn stream_item(n: Notification) -> Value {
    serde_json::to_value(dto(n)).unwrap_or(Value::Null)
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// The caller's notifications, newest first: counts, the newest `max` unread and the newest
/// `max` of all.
#[utoipa::path(get, path = "/feed/api/notifications/", tag = "notify", params(MaxQuery),
    security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = NotificationList), (status = 400, description = "bad `max`"),
        (status = 401)))]
pub async fn list(
    ctx: web::Data<AppContext>,
    user: AuthUser,
    q: web::Query<MaxQuery>,
) -> Result<HttpResponse, ApiError> {
    let (me, max) = (user.user_id, q.into_inner().max);
    let inbox = ctx
        .db
        .run(move |c| Ok(oasis_notify::inbox(&mut PgNotify(c), me, max.as_deref())?))
        .await?;
    Ok(HttpResponse::Ok().json(NotificationList {
        unread_count: inbox.unread_count,
        unread_list: inbox.unread.into_iter().map(dto).collect(),
        all_count: inbox.all_count,
        all_list: inbox.all.into_iter().map(dto).collect(),
    }))
}

/// How many of the caller's notifications are unread.
#[utoipa::path(get, path = "/feed/api/notifications/unread_count", tag = "notify",
    security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = UnreadCount), (status = 401)))]
pub async fn unread_count(
    ctx: web::Data<AppContext>,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let me = user.user_id;
    let unread_count = ctx
        .db
        .run(move |c| Ok(oasis_notify::unread_count(&mut PgNotify(c), me)?))
        .await?;
    Ok(HttpResponse::Ok().json(UnreadCount { unread_count }))
}

/// A single-use ticket (valid `OASIS_SSE_TICKET_SECS`, 60 s by default) that opens the
/// caller's notification stream, for `EventSource`. Only its hash is stored.
#[utoipa::path(post, path = "/feed/api/notifications/stream-ticket", tag = "notify",
    security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = StreamTicket), (status = 401)))]
pub async fn stream_ticket(
    ctx: web::Data<AppContext>,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let (ticket, expires_in) =
        crate::stream::mint_ticket(&ctx.db, user.user_id, ctx.settings.sse.ticket_secs).await?;
    Ok(HttpResponse::Ok().json(StreamTicket { ticket, expires_in }))
}

/// The caller's live notifications (Server-Sent Events). Each new notification is an event
/// with `id:` = its id and `data:` = the inbox item (as in `all_list`); each change of the
/// unread count is `event: unread_count` with `data: {"unread_count": N}` (also sent first);
/// a `: heartbeat` comment every `OASIS_SSE_HEARTBEAT_SECS`. `Last-Event-ID: <id>` sends what
/// came after `<id>` first, once, in order. Authenticated by header or `?ticket=`. At most
/// `OASIS_SSE_MAX_PER_USER` streams a user and `OASIS_SSE_MAX` in all per server process:
/// over either, 429.
#[utoipa::path(get, path = "/feed/api/notifications/stream", tag = "notify", params(StreamQuery,
        ("Last-Event-ID" = Option<i64>, Header, description = "the last notification id received")),
    security(("token" = []), ("jwt" = []), ()),
    responses((status = 200, description = "the event stream", content_type = "text/event-stream"),
        (status = 401, description = "no credentials, or an invalid, used or expired ticket"),
        (status = 429, description = "too many streams open")))]
pub async fn stream(
    ctx: web::Data<AppContext>,
    req: actix_web::HttpRequest,
    user: MaybeAuthUser,
    q: web::Query<StreamQuery>,
) -> Result<HttpResponse, ApiError> {
    let me = crate::stream::stream_user(&ctx.db, user.user_id(), q.into_inner().ticket).await?;
    let last_event_id = req
        .headers()
        .get("Last-Event-ID")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let body = ctx
        .streams
        .open_stream(ctx.db.clone(), me, last_event_id, stream_item)?;
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(actix_web::http::header::ContentEncoding::Identity)
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

/// Marks all of the caller's notifications read.
#[utoipa::path(post, path = "/feed/api/notifications/mark_all_as_read", tag = "notify",
    security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = MarkedAll), (status = 401)))]
pub async fn mark_all_as_read(
    ctx: web::Data<AppContext>,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let me = user.user_id;
    let marked = ctx
        .db
        .tx(move |c| Ok(oasis_notify::mark_all_read(&mut PgNotify(c), me)?))
        .await?;
    Ok(HttpResponse::Ok().json(MarkedAll {
        marked,
        unread_count: 0,
    }))
}

/// Marks one of the caller's notifications read (someone else's: 404).
#[utoipa::path(post, path = "/feed/api/notifications/{id}/read", tag = "notify",
    params(("id" = i64, Path)), security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = NotificationDto), (status = 401), (status = 404)))]
pub async fn mark_as_read(
    ctx: web::Data<AppContext>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (me, id) = (user.user_id, id.into_inner());
    let n = ctx
        .db
        .tx(move |c| Ok(oasis_notify::mark_read(&mut PgNotify(c), me, id)?))
        .await?;
    Ok(HttpResponse::Ok().json(dto(n)))
}

/// Deletes one of the caller's notifications (someone else's: 404).
#[utoipa::path(delete, path = "/feed/api/notifications/{id}", tag = "notify",
    params(("id" = i64, Path)), security(("token" = []), ("jwt" = [])),
    responses((status = 204), (status = 401), (status = 404)))]
pub async fn destroy(
    ctx: web::Data<AppContext>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (me, id) = (user.user_id, id.into_inner());
    ctx.db
        .tx(move |c| Ok(oasis_notify::delete(&mut PgNotify(c), me, id)?))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// One category's switches.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelsDto {
    pub in_app: bool,
    pub email: bool,
}

fn settings_dto(p: &Preferences) -> serde_json::Map<String, Value> {
    p.0.iter()
        .map(|(c, ch)| {
            (
                c.as_str().to_owned(),
                serde_json::json!({ "in_app": ch.in_app, "email": ch.email }),
            )
        })
        .collect()
}

/// The caller's notification settings: an object keyed by category (`receipts`,
/// `membership_warnings`, `creator_activity`, `commission_updates`, `new_posts`, `social`,
/// `security`), each `{"in_app": bool, "email": bool}`.
#[utoipa::path(get, path = "/feed/api/notification-settings/", tag = "notify",
    security(("token" = []), ("jwt" = [])),
    responses((status = 200, description = "category → switches",
        body = std::collections::BTreeMap<String, ChannelsDto>), (status = 401)))]
pub async fn get_settings(
    ctx: web::Data<AppContext>,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let me = user.user_id;
    let p = ctx
        .db
        .run(move |c| Ok(oasis_notify::preferences(&mut PgNotify(c), me)?))
        .await?;
    Ok(HttpResponse::Ok().json(settings_dto(&p)))
}

/// Changes any subset of the settings (`{"new_posts": {"email": false}}`); answers all of them.
/// `in_app: false` keeps the category out of the inbox and the stream. Receipts' and security
/// mails' `email` cannot be false, social's cannot be true: 400 with the category as field.
#[utoipa::path(patch, path = "/feed/api/notification-settings/", tag = "notify",
    request_body(content = Object, description = "category → {in_app?, email?}"),
    security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = std::collections::BTreeMap<String, ChannelsDto>),
        (status = 400, description = "unknown category or setting, or a switch that cannot be changed"),
        (status = 401)))]
pub async fn patch_settings(
    ctx: web::Data<AppContext>,
    user: AuthUser,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (me, patch) = (user.user_id, body.into_inner());
    let p = ctx
        .db
        .tx(move |c| {
            Ok(oasis_notify::update_preferences(
                &mut PgNotify(c),
                me,
                &patch,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(settings_dto(&p)))
}

/// The page behind an email's unsubscribe link (no login): one button that POSTs. A GET
/// changes nothing, so link scanners cannot unsubscribe anyone.
#[utoipa::path(get, path = "/feed/api/notification-settings/unsubscribe/{token}", tag = "notify",
    params(("token" = String, Path)),
    responses((status = 200, description = "HTML form", content_type = "text/html"),
        (status = 400, description = "invalid token")))]
pub async fn unsubscribe_form(
    ctx: web::Data<AppContext>,
    req: actix_web::HttpRequest,
    token: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let Some((_, category)) = notify_mail::verify_unsubscribe_token(&ctx.settings, &token) else {
        return Err(UnsubscribeError::BadToken.into());
    };
    Ok(html(notify_mail::unsubscribe_page(
        Some(category),
        false,
        req.path(),
    )))
}

/// Unsubscribes (no login): RFC 8058 one-click (`List-Unsubscribe=One-Click`, what mail
/// clients POST) or the form's button. Turns the token's category's email off; idempotent.
#[utoipa::path(post, path = "/feed/api/notification-settings/unsubscribe/{token}", tag = "notify",
    params(("token" = String, Path)),
    responses((status = 200, description = "HTML confirmation", content_type = "text/html"),
        (status = 400, description = "invalid token")))]
pub async fn unsubscribe(
    ctx: web::Data<AppContext>,
    token: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let category = notify_mail::unsubscribe(&ctx.db, &ctx.settings, &token).await?;
    Ok(html(notify_mail::unsubscribe_page(
        Some(category),
        true,
        "",
    )))
}

fn html(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        ))
        .body(body)
}
