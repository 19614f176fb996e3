//! Sensitive account changes — the email address and the payout bank account — need more than
//! a token: the current password in the body (`password`, checked and throttled like a login),
//! or, for accounts without a usable password (social-only), the owner's consent through a
//! single-use link mailed to the account's current address. Until that link is opened the
//! change waits in `pending_changes` (only a hash of the link's token is stored).
use super::accounts::{escape, html_page, required, KeyBody};
use super::sessions::{check_current_password, WRONG_PASSWORD};
use super::{detail, DetailResponse, IdentityState};
use crate::context::AppContext;
use crate::error::ApiError;
use crate::mail::MailJob;
use crate::web;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use chrono::Utc;
use diesel::PgConnection;
use oasis_db::identity::PgIdentity;
use oasis_identity::model::User;
use oasis_identity::{service, validate, IdentityRepo, PendingChange};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/authenticate/rest-auth/user/confirm-change")
            .route(web::post().to(confirm_change)),
    )
    .service(
        web::resource("/authenticate/rest-auth/user/confirm-change/{key}")
            .route(web::get().to(confirm_change_page)),
    );
}

/// Pending change kinds.
pub const EMAIL_CHANGE: &str = "email";
pub const BANK_SET: &str = "bank.set";
pub const BANK_DELETE: &str = "bank.delete";

/// What a `202` answers when a change waits for the emailed link.
pub const CONFIRM_BY_MAIL: &str =
    "Confirm this change through the link sent to your e-mail address.";

const TOO_MANY_MAILS: &str = "Too many e-mails were sent to this account. Try again in an hour.";

/// How a sensitive change was authorised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeAuth {
    /// The current password was given and is right: apply now.
    Password,
    /// The account has no usable password: store the change and mail a link to confirm it.
    ByMail,
}

/// Authorises a sensitive change of `user`: with a usable password, `password` must be given
/// (400 `{"password": ["This field is required."]}`) and right (400 `{"password": [WRONG]}`,
/// throttled like a failed login; 429 at the limit); without one, the change must be confirmed
/// by mail.
pub async fn authorize_change(
    ctx: &AppContext,
    st: &IdentityState,
    req: &HttpRequest,
    user: &User,
    password: Option<String>,
) -> Result<ChangeAuth, ApiError> {
    if user.password_hash.is_none() {
        return Ok(ChangeAuth::ByMail);
    }
    let password = match password {
        Some(p) if !p.is_empty() => p,
        _ => return Err(ApiError::field("password", validate::REQUIRED)),
    };
    check_current_password(ctx, st, req, user, "password", password, WRONG_PASSWORD).await?;
    Ok(ChangeAuth::Password)
}

/// Stores `change` and queues the link to the account's current address, in the caller's
/// transaction. `what` completes "asked to ..." in the email. Capped with the other identity
/// emails (400 `{field: [...]}` when over).
pub fn request_by_mail(
    c: &mut PgConnection,
    user: &User,
    change: &PendingChange,
    what: &str,
    field: &str,
    mails_per_hour: u32,
) -> Result<(), ApiError> {
    let now = Utc::now();
    if !service::may_mail(&mut PgIdentity(c), user.id, "change", now, mails_per_hour)? {
        return Err(ApiError::field(field, TOO_MANY_MAILS));
    }
    let pending_change_id = service::request_pending_change(&mut PgIdentity(c), change, now)?;
    crate::mail::enqueue(
        c,
        &MailJob::ConfirmChange {
            pending_change_id,
            what: what.to_owned(),
        },
    )?;
    Ok(())
}

/// Applies a confirmed pending change (one transaction); returns what happened, in words.
async fn apply(ctx: &AppContext, key: String) -> Result<String, ApiError> {
    let per_hour = ctx.settings.identity_mails_per_hour;
    let (message, mailed) = ctx
        .db
        .tx(move |c| {
            let now = Utc::now();
            let change = service::consume_pending_change(&mut PgIdentity(c), &key, now)?;
            let user = PgIdentity(c)
                .lock_user(change.user_id)?
                .filter(|u| u.is_active)
                .ok_or_else(ApiError::not_found)?;
            match change.kind.as_str() {
                EMAIL_CHANGE => {
                    let email =
                        String::from_utf8(change.payload).map_err(|_| ApiError::not_found())?;
                    let Some(confirmation_id) =
                        service::request_email_change(&mut PgIdentity(c), &user, &email, now)?
                    else {
                        return Ok((
                            "Nothing to change: this is already your address.".into(),
                            false,
                        ));
                    };
                    if !service::may_mail(
                        &mut PgIdentity(c),
                        user.id,
                        "email-change",
                        now,
                        per_hour,
                    )? {
                        return Err(ApiError::field("email", TOO_MANY_MAILS));
                    }
                    crate::mail::enqueue(c, &MailJob::ConfirmEmail { confirmation_id })?;
                    Ok((
                        format!(
                            "Confirmed. A link was sent to {email}: the account uses that address \
                             once the link is opened."
                        ),
                        true,
                    ))
                }
                BANK_SET | BANK_DELETE => Ok((
                    crate::routes::billing::apply_pending_bank_change(
                        c,
                        user.id,
                        &change.kind,
                        &change.payload,
                    )?,
                    false,
                )),
                _ => Err(ApiError::not_found()),
            }
        })
        .await?;
    if mailed {
        ctx.jobs.wake();
    }
    Ok(message)
}

/// Confirms a pending email or bank-account change with the key from the emailed link (single
/// use, 24 h). An email change then proceeds like one made with the password: a link goes to
/// the new address, which the account uses once that link is opened.
#[utoipa::path(post, path = "/authenticate/rest-auth/user/confirm-change/", tag = "identity",
    request_body = KeyBody,
    responses((status = 200, body = DetailResponse, description = "applied (or, for an email, the new address was sent its confirmation link)"),
              (status = 400, description = "field errors (e.g. the new address was taken meanwhile)"),
              (status = 404, description = "unknown, used, replaced, cancelled or expired key")))]
pub async fn confirm_change(
    ctx: web::Data<AppContext>,
    body: web::Json<KeyBody>,
) -> Result<HttpResponse, ApiError> {
    let key = required("key", body.into_inner().key)?;
    let message = apply(&ctx, key).await?;
    Ok(HttpResponse::Ok().json(detail(&message)))
}

/// The link in the email: applies the change and shows a short HTML page.
#[utoipa::path(get, path = "/authenticate/rest-auth/user/confirm-change/{key}/",
    tag = "identity", params(("key" = String, Path, description = "confirmation key")),
    responses((status = 200, description = "HTML: applied"),
              (status = 404, description = "HTML: invalid, used or expired link")))]
pub async fn confirm_change_page(
    ctx: web::Data<AppContext>,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    match apply(&ctx, key.into_inner()).await {
        Ok(message) => Ok(html_page(
            StatusCode::OK,
            "Change confirmed",
            &escape(&message),
        )),
        Err(ApiError::Detail { status, .. }) if status.is_client_error() => Ok(html_page(
            status,
            "Link not valid",
            "This confirmation link is invalid, was already used, was replaced by a newer \
             request or has expired.",
        )),
        Err(ApiError::Validation(errors)) => Ok(html_page(
            StatusCode::BAD_REQUEST,
            "Change not applied",
            &escape(&errors.to_string()),
        )),
        Err(e) => Err(e),
    }
}
