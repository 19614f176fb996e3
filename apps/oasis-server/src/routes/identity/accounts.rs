//! Registration, email verification and account profiles.
use super::{detail, DetailResponse, IdentityState};
use crate::auth::AuthUser;
use crate::context::AppContext;
use crate::error::ApiError;
use crate::mail::MailJob;
use crate::web;
use actix_web::HttpResponse;
use chrono::Utc;
use oasis_db::identity::PgIdentity;
use oasis_identity::model::{ProfileChanges, User};
use oasis_identity::service::{self, USERNAME_CONSTRAINT, USERNAME_TAKEN};
use oasis_identity::validate::{self, RegistrationInput};
use oasis_identity::{IdentityRepo, PendingChange};
use oasis_kernel::FieldErrors;
use serde::{Deserialize, Serialize};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/authenticate/rest-auth/registration").route(web::post().to(register)),
    )
    .service(
        web::resource("/authenticate/rest-auth/registration/verify-email")
            .route(web::post().to(verify_email)),
    )
    .service(
        web::resource("/authenticate/rest-auth/registration/account-confirm-email/{key}")
            .route(web::get().to(confirm_email_page)),
    )
    .service(
        web::resource("/authenticate/rest-auth/registration/resend-email")
            .route(web::post().to(resend_email)),
    )
    .service(
        web::resource("/authenticate/rest-auth/user")
            .route(web::get().to(get_me))
            .route(web::patch().to(patch_me))
            .route(web::put().to(patch_me)),
    )
    .service(web::resource("/authenticate/api/users/{id}").route(web::get().to(public_profile)));
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RegisterBody {
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    username: Option<String>,
    password: Option<String>,
    password2: Option<String>,
    /// Only `manual` registers with a password.
    login_type: Option<String>,
}

/// Creates an unverified account and mails a verification link.
#[utoipa::path(post, path = "/authenticate/rest-auth/registration/", tag = "identity",
    request_body = RegisterBody,
    responses((status = 201, body = DetailResponse, description = "`Verification e-mail sent.`"),
              (status = 400, description = "field errors"),
              (status = 429, description = "too many new accounts from this address (`OASIS_REGISTRATIONS_PER_HOUR`); see Retry-After")))]
pub async fn register(
    ctx: web::Data<AppContext>,
    st: web::Data<IdentityState>,
    req: actix_web::HttpRequest,
    body: web::Json<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    // New accounts per client address and hour: refused early (before hashing), and counted
    // atomically in the transaction that creates the account.
    let client = super::client_addr(&req);
    let per_hour = ctx.settings.registrations_per_hour;
    let b = body.into_inner();
    let reg = validate::registration(&RegistrationInput {
        email: b.email,
        first_name: b.first_name,
        last_name: b.last_name,
        username: b.username,
        password: b.password,
        password2: b.password2,
        login_type: b.login_type,
    })?;
    let r = reg.clone();
    let cl = client.clone();
    let conflicts = ctx
        .db
        .run(move |c| {
            super::check_registration_limit(c, per_hour, &cl)?;
            Ok(service::registration_conflicts(&mut PgIdentity(c), &r)?)
        })
        .await?;
    conflicts.into_result()?;
    let hash = st.hash(reg.password.clone()).await?;
    ctx.db
        .tx(move |c| {
            let now = Utc::now();
            super::reserve_registration(c, per_hour, &client)?;
            let (user, confirmation_id) = service::register(&mut PgIdentity(c), &reg, hash, now)?;
            PgIdentity(c).log_mail(user.id, "verify", now)?;
            crate::mail::enqueue(c, &MailJob::ConfirmEmail { confirmation_id })?;
            Ok(())
        })
        .await?;
    ctx.jobs.wake();
    Ok(HttpResponse::Created().json(detail("Verification e-mail sent.")))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct KeyBody {
    pub(super) key: Option<String>,
}

async fn confirm(ctx: &AppContext, key: String) -> Result<User, ApiError> {
    ctx.db
        .tx(move |c| {
            Ok(service::confirm_email(
                &mut PgIdentity(c),
                &key,
                Utc::now(),
            )?)
        })
        .await
}

/// Confirms an email with the key from the verification email (single use, 3 days).
#[utoipa::path(post, path = "/authenticate/rest-auth/registration/verify-email/", tag = "identity",
    request_body = KeyBody,
    responses((status = 200, body = DetailResponse, description = "`ok`"),
              (status = 404, description = "unknown, used or expired key")))]
pub async fn verify_email(
    ctx: web::Data<AppContext>,
    body: web::Json<KeyBody>,
) -> Result<HttpResponse, ApiError> {
    let key = required("key", body.into_inner().key)?;
    confirm(&ctx, key).await?;
    Ok(HttpResponse::Ok().json(detail("ok")))
}

pub(super) fn html_page(
    status: actix_web::http::StatusCode,
    title: &str,
    message: &str,
) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
             <body style=\"font-family: sans-serif; max-width: 32em; margin: 4em auto\">\
             <h1>{title}</h1><p>{message}</p></body></html>"
        ))
}

/// The link in the verification email: confirms and shows a short HTML page. An unknown, used
/// or expired key is the usual JSON 404 (the app's error middleware keeps error bodies JSON).
#[utoipa::path(get, path = "/authenticate/rest-auth/registration/account-confirm-email/{key}/",
    tag = "identity", params(("key" = String, Path, description = "confirmation key")),
    responses((status = 200, description = "HTML: confirmed"),
              (status = 404, description = "invalid, used or expired link")))]
pub async fn confirm_email_page(
    ctx: web::Data<AppContext>,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let u = match confirm(&ctx, key.into_inner()).await {
        Ok(u) => u,
        // A person followed the link: answer with a page, not JSON.
        Err(ApiError::Detail { status, .. }) if status.is_client_error() => {
            return Ok(html_page(
                status,
                "Link not valid",
                "This confirmation link is invalid, was already used or has expired. \
                 Ask for a new one from the sign-in page.",
            ))
        }
        Err(e) => return Err(e),
    };
    Ok(html_page(
        actix_web::http::StatusCode::OK,
        "E-mail confirmed",
        &format!(
            "Thank you: {} is confirmed. You can sign in to Oasis now.",
            escape(&u.email)
        ),
    ))
}

pub(super) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct EmailBody {
    pub(super) email: Option<String>,
}

pub(super) fn required(field: &str, v: Option<String>) -> Result<String, ApiError> {
    match v {
        None => Err(ApiError::field(field, validate::REQUIRED)),
        Some(s) if s.trim().is_empty() => Err(ApiError::field(field, validate::BLANK)),
        Some(s) if s.contains('\0') => Err(ApiError::field(field, validate::NULL_CHARACTERS)),
        Some(s) => Ok(s),
    }
}

pub(super) fn required_email(v: Option<String>) -> Result<String, ApiError> {
    let email = required("email", v)?.trim().to_owned();
    if !validate::is_valid_email(&email) {
        return Err(ApiError::field("email", validate::INVALID_EMAIL));
    }
    Ok(email)
}

/// Sends a new verification email to an unverified account. Always 200 (no enumeration).
#[utoipa::path(post, path = "/authenticate/rest-auth/registration/resend-email/", tag = "identity",
    request_body = EmailBody,
    responses((status = 200, body = DetailResponse, description = "`ok`, whether or not the account exists")))]
pub async fn resend_email(
    ctx: web::Data<AppContext>,
    body: web::Json<EmailBody>,
) -> Result<HttpResponse, ApiError> {
    let email = required_email(body.into_inner().email)?;
    let per_hour = ctx.settings.identity_mails_per_hour;
    let queued = ctx
        .db
        .tx(move |c| {
            let mut repo = PgIdentity(c);
            match repo.user_by_email(&email)? {
                Some(u)
                    if u.is_active
                        && !u.email_verified
                        && service::may_mail(&mut repo, u.id, "verify", Utc::now(), per_hour)? =>
                {
                    let confirmation_id =
                        service::start_confirmation(&mut repo, u.id, &u.email, Utc::now())?;
                    crate::mail::enqueue(c, &MailJob::ConfirmEmail { confirmation_id })?;
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
        .await?;
    if queued {
        ctx.jobs.wake();
    }
    Ok(HttpResponse::Ok().json(detail("ok")))
}

/// The signed-in user's own account.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserBody {
    pk: i64,
    username: String,
    email: String,
    first_name: String,
    last_name: String,
    is_creator: bool,
    profile_pic: Option<String>,
    bio: String,
    login_type: String,
}

impl From<User> for UserBody {
    fn from(u: User) -> Self {
        UserBody {
            pk: u.id,
            username: u.username,
            email: u.email,
            first_name: u.first_name,
            last_name: u.last_name,
            is_creator: u.is_creator,
            profile_pic: u.profile_pic,
            bio: u.bio,
            login_type: u.login_type,
        }
    }
}

/// Loads an account (404 if there is none).
pub async fn load_user(ctx: &AppContext, id: i64) -> Result<User, ApiError> {
    ctx.db
        .run(move |c| Ok(PgIdentity(c).user_by_id(id)?))
        .await?
        .ok_or_else(ApiError::not_found)
}

/// The own account.
#[utoipa::path(get, path = "/authenticate/rest-auth/user/", tag = "identity",
    security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = UserBody), (status = 401, description = "not signed in")))]
pub async fn get_me(ctx: web::Data<AppContext>, me: AuthUser) -> Result<HttpResponse, ApiError> {
    let u = load_user(&ctx, me.user_id).await?;
    Ok(HttpResponse::Ok().json(UserBody::from(u)))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PatchUserBody {
    username: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    /// `true` makes the user a creator.
    is_creator: Option<bool>,
    bio: Option<String>,
    /// An http(s) URL, or null to clear.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    profile_pic: Option<Option<String>>,
    /// A new address is only used once confirmed through the link mailed to it. Changing it
    /// needs `password` (accounts without a usable password confirm by a link mailed to the
    /// current address instead).
    email: Option<String>,
    /// The current password; required when `email` changes.
    password: Option<String>,
}

fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

const BIO_MAX: usize = 5000;

/// Updates the own account. Changing `email` needs the current `password` (400
/// `{"password": [...]}` when missing or wrong, throttled like a failed login) and mails a
/// confirmation link to the new address; the account keeps the old address until it is
/// confirmed. An account without a usable password (social login only) confirms instead through
/// a link mailed to its current address, which then sends the new address its link.
#[utoipa::path(patch, path = "/authenticate/rest-auth/user/", tag = "identity",
    security(("token" = []), ("jwt" = [])), request_body = PatchUserBody,
    responses((status = 200, body = UserBody), (status = 400, description = "field errors (also a missing or wrong `password` for an email change)"),
              (status = 401, description = "not signed in"),
              (status = 429, description = "too many wrong passwords; see Retry-After")))]
pub async fn patch_me(
    ctx: web::Data<AppContext>,
    st: web::Data<IdentityState>,
    req: actix_web::HttpRequest,
    me: AuthUser,
    body: web::Json<PatchUserBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let mut errors = FieldErrors::new();
    let username = b.username.map(|u| u.trim().to_owned());
    if let Some(u) = &username {
        for m in validate::username_errors(u) {
            errors.add("username", m);
        }
    }
    let first_name = b.first_name.map(|s| s.trim().to_owned());
    let last_name = b.last_name.map(|s| s.trim().to_owned());
    for (field, v) in [("first_name", &first_name), ("last_name", &last_name)] {
        if let Some(v) = v {
            for m in validate::name_errors(v) {
                errors.add(field, m);
            }
        }
    }
    if b.bio.as_ref().is_some_and(|s| s.contains('\0')) {
        errors.add("bio", validate::NULL_CHARACTERS);
    }
    if b.bio.as_ref().is_some_and(|s| s.chars().count() > BIO_MAX) {
        errors.add(
            "bio",
            format!("Ensure this field has no more than {BIO_MAX} characters."),
        );
    }
    let profile_pic = match b.profile_pic {
        Some(Some(p)) if p.trim().is_empty() => Some(None),
        Some(Some(p)) => {
            match url::Url::parse(p.trim()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && !p.contains('\0') => {}
                _ => errors.add("profile_pic", "Enter a valid URL."),
            }
            Some(Some(p.trim().to_owned()))
        }
        other => other,
    };
    errors.into_result()?;
    let changes = ProfileChanges {
        username,
        first_name,
        last_name,
        is_creator: b.is_creator,
        bio: b.bio,
        profile_pic,
    };
    let user_id = me.user_id;
    // An email change is authorised (password, or a link to the current address) before
    // anything is written; the address itself is checked first so a typo costs no attempt.
    let new_email = match b.email {
        Some(e) if e.trim().is_empty() => return Err(ApiError::field("email", validate::BLANK)),
        other => other.map(|e| e.trim().to_owned()),
    };
    let mut auth = None;
    if let Some(email) = &new_email {
        let current = load_user(&ctx, user_id).await?;
        if !email.eq_ignore_ascii_case(&current.email) {
            if !validate::is_valid_email(email) {
                return Err(ApiError::field("email", validate::INVALID_EMAIL));
            }
            auth = Some(super::authorize_change(&ctx, &st, &req, &current, b.password).await?);
        }
    }
    let per_hour = ctx.settings.identity_mails_per_hour;
    let (user, mailed) = ctx
        .db
        .tx(move |c| {
            let mut repo = PgIdentity(c);
            let user = match repo.update_profile(user_id, &changes) {
                Err(e) if e.is_conflict_on(USERNAME_CONSTRAINT) => {
                    return Err(ApiError::field("username", USERNAME_TAKEN))
                }
                r => r?,
            };
            let (Some(email), Some(auth)) = (new_email, auth) else {
                return Ok((user, false));
            };
            let Some(email) = service::check_new_email(&mut repo, &user, &email)? else {
                return Ok((user, false));
            };
            match auth {
                super::ChangeAuth::Password => {
                    let confirmation_id =
                        service::start_confirmation(&mut repo, user.id, &email, Utc::now())?;
                    if !service::may_mail(&mut repo, user.id, "email-change", Utc::now(), per_hour)?
                    {
                        return Err(ApiError::field(
                            "email",
                            "Too many e-mails were sent to this account. Try again in an hour.",
                        ));
                    }
                    crate::mail::enqueue(c, &MailJob::ConfirmEmail { confirmation_id })?;
                }
                super::ChangeAuth::ByMail => {
                    let what = format!("change its e-mail address to {email}");
                    let change = PendingChange {
                        user_id: user.id,
                        kind: super::changes::EMAIL_CHANGE.to_owned(),
                        payload: email.into_bytes(),
                    };
                    super::request_by_mail(c, &user, &change, &what, "email", per_hour)?;
                }
            }
            Ok::<_, ApiError>((user, true))
        })
        .await?;
    if mailed {
        ctx.jobs.wake();
    }
    Ok(HttpResponse::Ok().json(UserBody::from(user)))
}

/// Anyone's public profile (never the email).
#[derive(Serialize, utoipa::ToSchema)]
pub struct PublicProfile {
    pk: i64,
    username: String,
    first_name: String,
    last_name: String,
    is_creator: bool,
    profile_pic: Option<String>,
    bio: String,
}

/// A user's public profile, for anyone, signed in or not.
#[utoipa::path(get, path = "/authenticate/api/users/{id}/", tag = "identity",
    params(("id" = i64, Path, description = "user id")),
    responses((status = 200, body = PublicProfile), (status = 404, description = "no such user")))]
pub async fn public_profile(
    ctx: web::Data<AppContext>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let u = load_user(&ctx, id.into_inner()).await?;
    if !u.is_active {
        return Err(ApiError::not_found());
    }
    Ok(HttpResponse::Ok().json(PublicProfile {
        pk: u.id,
        username: u.username,
        first_name: u.first_name,
        last_name: u.last_name,
        is_creator: u.is_creator,
        profile_pic: u.profile_pic,
        bio: u.bio,
    }))
}
