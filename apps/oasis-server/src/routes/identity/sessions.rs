//! Sessions: password login (API key), logout, JWT obtain/refresh/verify, password change and
//! reset.
use super::accounts::{required, required_email};
use super::{client_addr, detail, token_not_valid, DetailResponse, IdentityState};
use crate::auth::{AuthUser, Credentials, MaybeAuthUser};
use crate::context::AppContext;
use crate::error::ApiError;
use crate::mail::MailJob;
use crate::web;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use chrono::Utc;
use diesel::PgConnection;
use oasis_db::identity::PgIdentity;
use oasis_identity::jwt::TokenType;
use oasis_identity::model::User;
use oasis_identity::password::UserAttributes;
use oasis_identity::reset::{decode_uid, ResetSubject};
use oasis_identity::secrets::key_hash;
use oasis_identity::service::{self, LoginOutcome, RefreshOutcome};
use oasis_identity::validate;
use oasis_identity::IdentityRepo;
use serde::{Deserialize, Serialize};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/authenticate/rest-auth/login").route(web::post().to(login)))
        .service(web::resource("/authenticate/rest-auth/logout").route(web::post().to(logout)))
        .service(
            web::resource("/authenticate/rest-auth/password/change")
                .route(web::post().to(password_change)),
        )
        .service(
            web::resource("/authenticate/rest-auth/password/reset")
                .route(web::post().to(password_reset)),
        )
        .service(
            web::resource("/authenticate/rest-auth/password/reset/confirm")
                .route(web::post().to(password_reset_confirm)),
        )
        .service(
            web::resource("/authenticate/rest-auth/password/reset/confirm/{uid}/{token}")
                .route(web::get().to(password_reset_page)),
        )
        .service(web::resource("/authenticate/api/token").route(web::post().to(token_obtain)))
        .service(
            web::resource("/authenticate/api/token/refresh").route(web::post().to(token_refresh)),
        )
        .service(
            web::resource("/authenticate/api/token/verify").route(web::post().to(token_verify)),
        );
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginBody {
    email: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    /// API key for `Authorization: Token <key>` (40 hex).
    key: String,
    user_id: i64,
    is_creator: bool,
}

/// Why a password login did not produce a session.
pub(crate) enum LoginRefusal {
    BadCredentials,
    NotVerified,
}

/// Login's refusals, answered alike wherever a password is checked.
impl From<LoginRefusal> for ApiError {
    fn from(r: LoginRefusal) -> Self {
        match r {
            LoginRefusal::BadCredentials => oasis_identity::IdentityError::BadCredentials.into(),
            LoginRefusal::NotVerified => oasis_identity::IdentityError::EmailNotVerified.into(),
        }
    }
}

/// The identifier (email or username) and password of a login body.
fn login_fields(b: LoginBody) -> Result<(String, bool, String), ApiError> {
    let password = required("password", b.password)?;
    let email = b
        .email
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty());
    let username = b
        .username
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty());
    for (field, v) in [("email", &email), ("username", &username)] {
        if v.as_ref().is_some_and(|s| s.contains('\0')) {
            return Err(ApiError::field(field, validate::NULL_CHARACTERS));
        }
    }
    match (email, username) {
        (Some(e), _) => Ok((e, true, password)),
        (None, Some(u)) => {
            let by_email = u.contains('@');
            Ok((u, by_email, password))
        }
        (None, None) => Err(ApiError::field(
            "non_field_errors",
            "Must include either \"username\" or \"email\" and \"password\".",
        )),
    }
}

/// A throttled password check: (1) read the account and reserve the attempt against the
/// throttle of the account and of the client address, atomically (refused when either already
/// holds the limit: at most `OASIS_LOGIN_MAX_FAILURES` passwords are ever checked per scope and
/// window, however many requests race); (2) bcrypt on the blocking pool, outside any
/// transaction, always exactly one verify; (3) one transaction that settles the attempt (a
/// wrong password stays counted, a right one gives its reservation back) and, on success, runs
/// `issue`.
async fn password_login<T, F>(
    ctx: &AppContext,
    st: &IdentityState,
    req: &HttpRequest,
    body: LoginBody,
    issue: F,
) -> Result<Result<(User, T), LoginRefusal>, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut PgConnection, &User) -> Result<T, ApiError> + Send + 'static,
{
    let (ident, by_email, password) = login_fields(body)?;
    let client = client_addr(req);
    let policy = st.policy;
    let (user, attempt) = ctx
        .db
        .tx(move |c| {
            let mut repo = PgIdentity(c);
            let user = if by_email {
                repo.user_by_email(&ident)?
            } else {
                repo.user_by_username(&ident)?
            };
            let scopes = service::login_scopes(&ident, user.as_ref(), &client);
            let attempt = service::reserve_attempt(&mut repo, &scopes, policy, Utc::now())?;
            Ok((user, attempt))
        })
        .await?;
    let ok = st
        .verify(
            user.as_ref().and_then(|u| u.password_hash.clone()),
            password,
        )
        .await?;
    ctx.db
        .tx(move |c| {
            let outcome = service::finish_login(&mut PgIdentity(c), user, ok, &attempt)?;
            Ok(match outcome {
                LoginOutcome::Success(u) => {
                    let t = issue(c, &u)?;
                    Ok((*u, t))
                }
                LoginOutcome::BadCredentials => Err(LoginRefusal::BadCredentials),
                LoginOutcome::NotVerified => Err(LoginRefusal::NotVerified),
            })
        })
        .await
}

/// Login's password check by email for another route (guest checkout): the same throttle, the
/// same recorded failures and the same refusals as `/rest-auth/login/`, issuing nothing.
pub(crate) async fn check_email_password(
    ctx: &AppContext,
    st: &IdentityState,
    req: &HttpRequest,
    email: String,
    password: String,
) -> Result<Result<User, LoginRefusal>, ApiError> {
    let body = LoginBody {
        email: Some(email),
        username: None,
        password: Some(password),
    };
    let outcome = password_login(ctx, st, req, body, |_, _| Ok(())).await?;
    Ok(outcome.map(|(user, ())| user))
}

/// The message of a wrong current password (`password` of email and bank-account changes).
pub const WRONG_PASSWORD: &str = "Your password was entered incorrectly. Please enter it again.";

/// Checks the signed-in user's current password before a sensitive change. Throttled exactly
/// like a login (same scopes and limit, reserved before bcrypt runs): a stolen session cannot be
/// used to guess the password at bcrypt speed. A wrong password is a 400 `{field: [wrong]}`.
pub async fn check_current_password(
    ctx: &AppContext,
    st: &IdentityState,
    req: &HttpRequest,
    user: &User,
    field: &str,
    password: String,
    wrong: &str,
) -> Result<(), ApiError> {
    let scopes = service::login_scopes(&user.username, Some(user), &client_addr(req));
    let policy = st.policy;
    let attempt = ctx
        .db
        .tx(move |c| {
            Ok(service::reserve_attempt(
                &mut PgIdentity(c),
                &scopes,
                policy,
                Utc::now(),
            )?)
        })
        .await?;
    if !st.verify(user.password_hash.clone(), password).await? {
        return Err(ApiError::field(field, wrong));
    }
    ctx.db
        .tx(move |c| Ok(service::release_attempt(&mut PgIdentity(c), &attempt)?))
        .await
}

fn issue_key(c: &mut PgConnection, u: &User) -> Result<String, ApiError> {
    Ok(service::issue_api_key(&mut PgIdentity(c), u.id)?)
}

/// Signs in with email or username and password; answers an API key.
#[utoipa::path(post, path = "/authenticate/rest-auth/login/", tag = "identity",
    request_body = LoginBody,
    responses((status = 200, body = LoginResponse),
              (status = 400, description = "`Unable to log in with provided credentials.` or `E-mail is not verified.`"),
              (status = 429, description = "too many failed logins; see Retry-After")))]
pub async fn login(
    ctx: web::Data<AppContext>,
    st: web::Data<IdentityState>,
    req: HttpRequest,
    body: web::Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    match password_login(&ctx, &st, &req, body.into_inner(), issue_key).await? {
        Ok((u, key)) => Ok(HttpResponse::Ok().json(LoginResponse {
            key,
            user_id: u.id,
            is_creator: u.is_creator,
        })),
        Err(refusal) => Err(refusal.into()),
    }
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct LogoutBody {
    /// Optional: a refresh token whose family is revoked as well.
    refresh: Option<String>,
}

/// Revokes the presented API key (and, if given, the refresh token's family).
#[utoipa::path(post, path = "/authenticate/rest-auth/logout/", tag = "identity",
    request_body(content = Option<LogoutBody>), security((), ("token" = []), ("jwt" = [])),
    responses((status = 200, body = DetailResponse, description = "`Successfully logged out.`")))]
pub async fn logout(
    ctx: web::Data<AppContext>,
    st: web::Data<IdentityState>,
    me: MaybeAuthUser,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let b: LogoutBody = if body.iter().all(|c| c.is_ascii_whitespace()) {
        LogoutBody::default()
    } else {
        crate::json::from_slice(&body)?
    };
    let key = match me.0.as_ref().map(|p| &p.credentials) {
        Some(Credentials::Token(k)) => Some(key_hash(k)),
        _ => None,
    };
    let refresh = b
        .refresh
        .and_then(|t| st.jwt.decode(&t, Some(TokenType::Refresh), Utc::now()).ok());
    let user_id = me.user_id();
    ctx.db
        .tx(move |c| {
            let mut repo = PgIdentity(c);
            if let Some(k) = key {
                repo.delete_api_key(&k)?;
            }
            if let Some(claims) = refresh {
                if let Some(rec) = repo.lock_refresh(&claims.jti)? {
                    if user_id.is_none() || user_id == Some(rec.user_id) {
                        repo.revoke_refresh_family(&rec.family, Utc::now())?;
                    }
                }
            }
            Ok(())
        })
        .await?;
    Ok(HttpResponse::Ok().json(detail("Successfully logged out.")))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasswordChangeBody {
    old_password: Option<String>,
    new_password1: Option<String>,
    new_password2: Option<String>,
}

fn attrs(u: &User) -> UserAttributes<'_> {
    UserAttributes {
        username: &u.username,
        email: &u.email,
        first_name: &u.first_name,
        last_name: &u.last_name,
    }
}

/// Changes the own password; every other API key and every refresh token is revoked.
#[utoipa::path(post, path = "/authenticate/rest-auth/password/change/", tag = "identity",
    request_body = PasswordChangeBody, security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = DetailResponse, description = "`New password has been saved.`"),
              (status = 400, description = "field errors"), (status = 401, description = "not signed in")))]
pub async fn password_change(
    ctx: web::Data<AppContext>,
    st: web::Data<IdentityState>,
    req: HttpRequest,
    me: AuthUser,
    body: web::Json<PasswordChangeBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let old = required("old_password", b.old_password)?;
    let user_id = me.user_id;
    let user = ctx
        .db
        .run(move |c| Ok(PgIdentity(c).user_by_id(user_id)?))
        .await?
        .ok_or_else(ApiError::not_found)?;
    // Wrong old passwords count like failed logins (same scopes and limit).
    check_current_password(
        &ctx,
        &st,
        &req,
        &user,
        "old_password",
        old,
        "Your old password was entered incorrectly. Please enter it again.",
    )
    .await?;
    let new = validate::new_password(
        b.new_password1.as_deref(),
        b.new_password2.as_deref(),
        attrs(&user),
    )?;
    let hash = st.hash(new).await?;
    let keep = match &me.credentials {
        Credentials::Token(k) => Some(key_hash(k)),
        Credentials::Bearer(_) => None,
    };
    ctx.db
        .tx(move |c| {
            Ok(service::replace_password(
                &mut PgIdentity(c),
                user_id,
                &hash,
                keep.as_deref(),
                Utc::now(),
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(detail("New password has been saved.")))
}

/// Mails a password-reset link if an account has this email. Always 200 (no enumeration).
#[utoipa::path(post, path = "/authenticate/rest-auth/password/reset/", tag = "identity",
    request_body = super::accounts::EmailBody,
    responses((status = 200, body = DetailResponse, description = "`Password reset e-mail has been sent.`")))]
pub async fn password_reset(
    ctx: web::Data<AppContext>,
    body: web::Json<super::accounts::EmailBody>,
) -> Result<HttpResponse, ApiError> {
    let email = required_email(body.into_inner().email)?;
    let per_hour = ctx.settings.identity_mails_per_hour;
    let queued = ctx
        .db
        .tx(move |c| {
            let user = PgIdentity(c).user_by_email(&email)?;
            let Some(u) = user.filter(|u| u.is_active) else {
                return Ok(false);
            };
            // Capped per account and hour; the answer is the same either way.
            if !service::may_mail(&mut PgIdentity(c), u.id, "reset", Utc::now(), per_hour)? {
                return Ok(false);
            }
            // The token is made when the email is sent: it never sits in the job queue.
            crate::mail::enqueue(c, &MailJob::PasswordReset { user_id: u.id })?;
            Ok(true)
        })
        .await?;
    if queued {
        ctx.jobs.wake();
    }
    Ok(HttpResponse::Ok().json(detail("Password reset e-mail has been sent.")))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasswordResetConfirmBody {
    uid: Option<String>,
    token: Option<String>,
    new_password1: Option<String>,
    new_password2: Option<String>,
}

const INVALID_VALUE: &str = "Invalid value";

/// Sets a new password with the uid and token from the reset email (single use, 24 h; dies
/// when the password changes). Ends every session of the account (API keys, refresh tokens,
/// JWTs), and marks the email verified (the link reached it); an account whose email was never
/// verified is claimed by the owner of the address (linked provider identities and pending
/// changes of whoever registered it end too).
#[utoipa::path(post, path = "/authenticate/rest-auth/password/reset/confirm/", tag = "identity",
    request_body = PasswordResetConfirmBody,
    responses((status = 200, body = DetailResponse, description = "`Password has been reset with the new password.`"),
              (status = 400, description = "`{\"token\": [\"Invalid value\"]}` and other field errors")))]
pub async fn password_reset_confirm(
    ctx: web::Data<AppContext>,
    st: web::Data<IdentityState>,
    body: web::Json<PasswordResetConfirmBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let uid = required("uid", b.uid)?;
    let token = required("token", b.token)?;
    let user_id = decode_uid(uid.trim()).ok_or_else(|| ApiError::field("uid", INVALID_VALUE))?;
    let user = ctx
        .db
        .run(move |c| Ok(PgIdentity(c).user_by_id(user_id)?))
        .await?
        .filter(|u| u.is_active)
        .ok_or_else(|| ApiError::field("uid", INVALID_VALUE))?;
    let subject = |u: &User| -> (i64, Option<String>, String) {
        (u.id, u.password_hash.clone(), u.email.clone())
    };
    let check = |st: &IdentityState, s: &(i64, Option<String>, String), token: &str| {
        st.reset.check(
            ResetSubject {
                user_id: s.0,
                password_hash: s.1.as_deref(),
                email: &s.2,
            },
            token.trim(),
            Utc::now(),
        )
    };
    let seen = subject(&user);
    if !check(&st, &seen, &token) {
        return Err(ApiError::field("token", INVALID_VALUE));
    }
    let new = validate::new_password(
        b.new_password1.as_deref(),
        b.new_password2.as_deref(),
        attrs(&user),
    )?;
    let hash = st.hash(new).await?;
    let st2 = st.clone();
    ctx.db
        .tx(move |c| {
            // Lock the account and check the token again: two concurrent uses of one token
            // cannot both succeed (the first changes the hash the token is bound to).
            use diesel::RunQueryDsl;
            diesel::sql_query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
                .bind::<diesel::sql_types::BigInt, _>(user_id)
                .execute(c)?;
            let mut repo = PgIdentity(c);
            let now_user = repo
                .user_by_id(user_id)?
                .ok_or_else(|| ApiError::field("uid", INVALID_VALUE))?;
            if subject(&now_user) != seen || !check(&st2, &seen, &token) {
                return Err(ApiError::field("token", INVALID_VALUE));
            }
            if now_user.email_verified {
                service::replace_password(&mut repo, user_id, &hash, None, Utc::now())?;
            } else {
                // The link reached this address: that proves it, like a verification email —
                // and whoever registered the account may not be its owner, so the owner now
                // holds it alone (the registrant's sessions, links and pending changes end).
                service::claim_unverified(&mut repo, &now_user, Some(&hash), Utc::now())?;
            }
            Ok(())
        })
        .await?;
    Ok(HttpResponse::Ok().json(detail("Password has been reset with the new password.")))
}

/// The link in the reset email: a short HTML page telling the app's flow (the API itself takes
/// the new password at `POST /authenticate/rest-auth/password/reset/confirm/`).
#[utoipa::path(get, path = "/authenticate/rest-auth/password/reset/confirm/{uid}/{token}/",
    tag = "identity",
    params(("uid" = String, Path, description = "user id, base64"), ("token" = String, Path, description = "reset token")),
    responses((status = 200, description = "HTML page")))]
pub async fn password_reset_page(path: web::Path<(String, String)>) -> HttpResponse {
    let (uid, token) = path.into_inner();
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '='))
            .collect()
    };
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Reset your password</title></head>\
             <body style=\"font-family: sans-serif; max-width: 32em; margin: 4em auto\">\
             <h1>Reset your password</h1>\
             <p>Open the Oasis app to choose a new password, or send \
             <code>POST /authenticate/rest-auth/password/reset/confirm/</code> with \
             <code>uid</code>, <code>token</code>, <code>new_password1</code> and <code>new_password2</code>.</p>\
             <p>uid: <code>{}</code><br>token: <code>{}</code></p></body></html>",
            clean(&uid),
            clean(&token)
        ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenPairBody {
    access: String,
    refresh: String,
}

/// simplejwt: obtain an access/refresh pair with username or email and password.
#[utoipa::path(post, path = "/authenticate/api/token/", tag = "identity",
    request_body = LoginBody,
    responses((status = 200, body = TokenPairBody),
              (status = 401, description = "`No active account found with the given credentials`"),
              (status = 400, description = "`E-mail is not verified.`"),
              (status = 429, description = "too many failed logins")))]
pub async fn token_obtain(
    ctx: web::Data<AppContext>,
    st: web::Data<IdentityState>,
    req: HttpRequest,
    body: web::Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let keys = st.jwt.clone();
    let issue = move |c: &mut PgConnection, u: &User| -> Result<_, ApiError> {
        Ok(service::issue_jwt_pair(
            &mut PgIdentity(c),
            &keys,
            u,
            None,
            Utc::now(),
        )?)
    };
    match password_login(&ctx, &st, &req, body.into_inner(), issue).await? {
        Ok((_, pair)) => Ok(HttpResponse::Ok().json(TokenPairBody {
            access: pair.access,
            refresh: pair.refresh,
        })),
        Err(LoginRefusal::BadCredentials) => Err(ApiError::detail(
            StatusCode::UNAUTHORIZED,
            "no_active_account",
            "No active account found with the given credentials",
        )),
        Err(LoginRefusal::NotVerified) => {
            Err(oasis_identity::IdentityError::EmailNotVerified.into())
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RefreshBody {
    refresh: Option<String>,
}

/// simplejwt: rotate a refresh token into a new pair. A token that was already rotated is
/// refused and revokes its whole family.
#[utoipa::path(post, path = "/authenticate/api/token/refresh/", tag = "identity",
    request_body = RefreshBody,
    responses((status = 200, body = TokenPairBody),
              (status = 401, description = "`token_not_valid`: invalid, expired, revoked or reused")))]
pub async fn token_refresh(
    ctx: web::Data<AppContext>,
    st: web::Data<IdentityState>,
    body: web::Json<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    let token = required("refresh", body.into_inner().refresh)?;
    let keys = st.jwt.clone();
    let outcome = ctx
        .db
        .tx(move |c| {
            Ok(service::rotate_refresh(
                &mut PgIdentity(c),
                &keys,
                token.trim(),
                Utc::now(),
            )?)
        })
        .await?;
    match outcome {
        RefreshOutcome::Rotated(pair) => Ok(HttpResponse::Ok().json(TokenPairBody {
            access: pair.access,
            refresh: pair.refresh,
        })),
        RefreshOutcome::Refused => Err(token_not_valid("Token is invalid or expired")),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct VerifyBody {
    token: Option<String>,
}

/// simplejwt: is this token (access or refresh) valid? A used or revoked refresh token is not.
#[utoipa::path(post, path = "/authenticate/api/token/verify/", tag = "identity",
    request_body = VerifyBody,
    responses((status = 200, description = "`{}`"), (status = 401, description = "`token_not_valid`")))]
pub async fn token_verify(
    ctx: web::Data<AppContext>,
    st: web::Data<IdentityState>,
    body: web::Json<VerifyBody>,
) -> Result<HttpResponse, ApiError> {
    let token = required("token", body.into_inner().token)?;
    let claims = st
        .jwt
        .decode(token.trim(), None, Utc::now())
        .map_err(|_| token_not_valid("Token is invalid or expired"))?;
    if claims.token_type == TokenType::Refresh.as_str() {
        let jti = claims.jti.clone();
        let live = ctx
            .db
            .tx(move |c| Ok(service::refresh_is_live(&mut PgIdentity(c), &jti)?))
            .await?;
        if !live {
            return Err(token_not_valid("Token is blacklisted"));
        }
    } else if claims.token_type != TokenType::Access.as_str() {
        return Err(token_not_valid("Token has wrong type"));
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({})))
}
