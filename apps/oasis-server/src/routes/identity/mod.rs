//! `identity` routes: registration and email verification, sessions (API keys and JWT),
//! password flows, social login (Google OpenID Connect, Facebook) and the authenticator behind
//! `AuthUser` (`Token <key>` and `Bearer <access JWT>`).
//!
//! Paths follow dj-rest-auth + simplejwt (see the seed README); every one answers with and
//! without a trailing slash.
use crate::auth::{Credentials, Principal};
use crate::context::AppContext;
use crate::error::ApiError;
use crate::mail::{Email, MailJob};
use crate::web;
use actix_web::http::StatusCode;
use futures_util::future::BoxFuture;
use oasis_identity::jwt::{JwtKeys, TokenType};
use oasis_identity::password::{check_password, Bcrypt, PasswordHasher};
use oasis_identity::reset::ResetSigner;
use oasis_identity::service::ThrottlePolicy;
use oasis_identity::IdentityError;
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

mod accounts;
mod changes;
mod sessions;
mod social;

pub use accounts::{load_user, PublicProfile, UserBody};
pub use changes::{
    authorize_change, request_by_mail, ChangeAuth, BANK_DELETE, BANK_SET, CONFIRM_BY_MAIL,
    EMAIL_CHANGE,
};
pub use sessions::{check_current_password, WRONG_PASSWORD};
pub(crate) use sessions::{check_email_password, LoginRefusal};

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        accounts::register,
        accounts::verify_email,
        accounts::confirm_email_page,
        accounts::resend_email,
        accounts::get_me,
        accounts::patch_me,
        accounts::public_profile,
        changes::confirm_change,
        changes::confirm_change_page,
        sessions::login,
        sessions::logout,
        sessions::password_change,
        sessions::password_reset,
        sessions::password_reset_confirm,
        sessions::password_reset_page,
        sessions::token_obtain,
        sessions::token_refresh,
        sessions::token_verify,
        social::google,
        social::facebook,
    ),
    components(schemas(
        accounts::RegisterBody,
        accounts::KeyBody,
        accounts::EmailBody,
        accounts::PatchUserBody,
        accounts::UserBody,
        accounts::PublicProfile,
        sessions::LoginBody,
        sessions::LoginResponse,
        sessions::LogoutBody,
        sessions::PasswordChangeBody,
        sessions::PasswordResetConfirmBody,
        sessions::TokenPairBody,
        sessions::RefreshBody,
        sessions::VerifyBody,
        social::GoogleBody,
        social::FacebookBody,
        social::SocialLoginResponse,
        DetailResponse,
    )),
    tags((name = "identity", description = "Accounts, sessions, tokens, password flows, social login"))
)]
pub struct ApiDoc;

/// `{"detail": "..."}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct DetailResponse {
    pub detail: String,
}

pub fn detail(msg: &str) -> DetailResponse {
    DetailResponse {
        detail: msg.to_owned(),
    }
}

pub fn config(cfg: &mut web::ServiceConfig, ctx: &AppContext) {
    cfg.app_data(web::Data::new(IdentityState::new(ctx)));
    accounts::config(cfg);
    changes::config(cfg);
    sessions::config(cfg);
    social::config(cfg);
}

pub fn jobs(registry: &mut crate::jobs::JobRegistry, ctx: &AppContext) {
    let st = Arc::new(IdentityState::new(ctx));
    let db = ctx.db.clone();
    let render: crate::mail::Renderer = Arc::new(move |job| {
        let (st, db) = (st.clone(), db.clone());
        Box::pin(async move {
            db.tx(move |c| render_mail(c, &st, job))
                .await
                .map_err(|e| crate::mail::MailError::Render(e.to_string()))
        })
    });
    crate::mail::jobs(registry, &ctx.settings.mail, render);
}

/// Renders an identity email at send time, minting the secret in its link now (a confirmation
/// key, stored as a hash; a reset token, signed): the queued job carries only the row's id.
fn render_mail(
    c: &mut diesel::PgConnection,
    st: &IdentityState,
    job: MailJob,
) -> Result<Option<Email>, ApiError> {
    use oasis_identity::IdentityRepo;
    let now = chrono::Utc::now();
    match job {
        MailJob::ConfirmEmail { confirmation_id } => {
            let mut repo = oasis_db::identity::PgIdentity(c);
            let Some(issued) =
                oasis_identity::service::issue_confirmation_key(&mut repo, confirmation_id, now)?
            else {
                return Ok(None);
            };
            let user = repo.user_by_id(issued.user_id)?.filter(|u| u.is_active);
            Ok(user.map(|u| st.confirmation_email(&u.username, &issued.email, &issued.key)))
        }
        MailJob::PasswordReset { user_id } => {
            let user = oasis_db::identity::PgIdentity(c)
                .user_by_id(user_id)?
                .filter(|u| u.is_active);
            Ok(user.map(|u| st.reset_email(&u, now)))
        }
        MailJob::ConfirmChange {
            pending_change_id,
            what,
        } => {
            let mut repo = oasis_db::identity::PgIdentity(c);
            let Some((user_id, token)) = oasis_identity::service::issue_pending_change_token(
                &mut repo,
                pending_change_id,
                now,
            )?
            else {
                return Ok(None);
            };
            let user = repo.user_by_id(user_id)?.filter(|u| u.is_active);
            Ok(user.map(|u| st.change_email(&u, &what, &token)))
        }
    }
}

/// What the identity handlers share: hasher, token keys, throttle policy, HTTP clients.
pub struct IdentityState {
    pub hasher: Arc<Bcrypt>,
    pub jwt: JwtKeys,
    pub reset: ResetSigner,
    pub policy: ThrottlePolicy,
    pub public_url: String,
    pub http: reqwest::Client,
}

/// One bcrypt hasher per cost for the whole process: its dummy hash costs one bcrypt run,
/// computed on a spare thread at start-up (never on an async worker).
fn hasher(cost: u32) -> Arc<Bcrypt> {
    static HASHERS: Mutex<Option<HashMap<u32, Arc<Bcrypt>>>> = Mutex::new(None);
    let mut map = HASHERS.lock().unwrap_or_else(|e| e.into_inner());
    map.get_or_insert_with(HashMap::new)
        .entry(cost)
        .or_insert_with(|| {
            // The cost was validated (4–31) when settings loaded, so this cannot fail.
            let h = Arc::new(Bcrypt::new(cost).expect("bcrypt cost validated by config"));
            let warm = h.clone();
            std::thread::spawn(move || warm.warm());
            h
        })
        .clone()
}

pub(crate) fn jwt_keys(ctx: &AppContext) -> JwtKeys {
    let s = &ctx.settings;
    JwtKeys::from_secret(
        s.secret().expose_secret().as_bytes(),
        s.jwt_access_ttl,
        s.jwt_refresh_ttl,
    )
}

impl IdentityState {
    pub fn new(ctx: &AppContext) -> Self {
        let s = &ctx.settings;
        Self {
            hasher: hasher(s.bcrypt_cost),
            jwt: jwt_keys(ctx),
            reset: ResetSigner::from_secret(s.secret().expose_secret().as_bytes()),
            policy: ThrottlePolicy {
                max_failures: s.login_max_failures,
                window: chrono::Duration::seconds(s.login_window_secs),
            },
            public_url: s.public_url.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(15))
                .build()
                .unwrap_or_default(),
        }
    }

    /// bcrypt hash on the blocking pool.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let h = self.hasher.clone();
        web::block(move || h.hash(&password))
            .await?
            .map_err(ApiError::internal)
    }

    /// Password check on the blocking pool; always exactly one bcrypt verify (a dummy hash
    /// stands in for a missing account or password).
    pub async fn verify(&self, stored: Option<String>, password: String) -> Result<bool, ApiError> {
        let h = self.hasher.clone();
        Ok(web::block(move || check_password(&*h, stored.as_deref(), &password)).await?)
    }

    pub fn confirm_link(&self, key: &str) -> String {
        format!(
            "{}/authenticate/rest-auth/registration/account-confirm-email/{key}/",
            self.public_url
        )
    }

    /// The verification email for `email` with `key`.
    /// The email asking an account without a password to confirm a change by its link.
    pub fn change_email(
        &self,
        user: &oasis_identity::model::User,
        what: &str,
        token: &str,
    ) -> Email {
        let link = format!(
            "{}/authenticate/rest-auth/user/confirm-change/{token}/",
            self.public_url
        );
        Email {
            to: user.email.clone(),
            subject: "Confirm the change to your Oasis account".to_owned(),
            body: format!(
                "Hello {},\n\nSomeone signed in to your Oasis account asked to {what}. Your account \
                 signs in without a password, so we ask you here. Open this link to confirm the \
                 change:\n\n{link}\n\n\
                 The link works once and expires in 24 hours. If you did not ask for this, ignore \
                 this e-mail: nothing changes.\n",
                user.username
            ),
            links: vec![link],
            ..Email::default()
        }
    }

    pub fn confirmation_email(&self, username: &str, email: &str, key: &str) -> Email {
        let link = self.confirm_link(key);
        Email {
            to: email.to_owned(),
            subject: "Confirm your e-mail address".to_owned(),
            body: format!(
                "Hello {username},\n\n\
                 Please confirm your e-mail address for Oasis by opening this link:\n\n\
                 {link}\n\n\
                 or enter this key in the app: {key}\n\n\
                 The link expires in 3 days. If you did not ask for this, ignore this e-mail.\n"
            ),
            links: vec![link],
            ..Email::default()
        }
    }
}

impl IdentityState {
    /// The password-reset email for `u`, with a token made now (bound to the current password
    /// hash and email, so it works once and dies with a password change).
    pub fn reset_email(
        &self,
        u: &oasis_identity::model::User,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Email {
        let uid = oasis_identity::reset::encode_uid(u.id);
        let token = self.reset.make(
            oasis_identity::reset::ResetSubject {
                user_id: u.id,
                password_hash: u.password_hash.as_deref(),
                email: &u.email,
            },
            now,
        );
        let link = format!(
            "{}/authenticate/rest-auth/password/reset/confirm/{uid}/{token}/",
            self.public_url
        );
        Email {
            to: u.email.clone(),
            subject: "Reset your Oasis password".to_owned(),
            body: format!(
                "Hello {},\n\nSomeone (hopefully you) asked to reset the password of your \
                 Oasis account. Open this link to choose a new one:\n\n{link}\n\n\
                 uid: {uid}\ntoken: {token}\n\n\
                 The link works once and expires in 24 hours. If you did not ask for this, \
                 ignore this e-mail: your password stays as it is.\n",
                u.username
            ),
            links: vec![link],
            ..Email::default()
        }
    }
}

/// The one place where identity errors become HTTP responses.
impl From<IdentityError> for ApiError {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::Invalid(f) => ApiError::Validation(f),
            IdentityError::BadCredentials => ApiError::field(
                "non_field_errors",
                "Unable to log in with provided credentials.",
            ),
            IdentityError::EmailNotVerified => {
                ApiError::field("non_field_errors", "E-mail is not verified.")
            }
            IdentityError::Throttled { retry_after_secs } => {
                ApiError::too_many_requests(retry_after_secs)
            }
            IdentityError::TokenInvalid => token_not_valid("Token is invalid or expired"),
            IdentityError::NotFound => ApiError::not_found(),
            IdentityError::Social(m) => ApiError::field("non_field_errors", m),
            IdentityError::ProviderUnavailable(m) => ApiError::bad_gateway(m),
            IdentityError::Repo(r) => r.into(),
        }
    }
}

pub(crate) fn token_not_valid(detail: &str) -> ApiError {
    ApiError::detail(StatusCode::UNAUTHORIZED, "token_not_valid", detail)
}

/// The authenticator behind `AuthUser`: `Token <key>` API keys (hashed lookup) and
/// `Bearer <access JWT>` (HS256, type `access`, unexpired, active user).
pub fn authenticator(ctx: &AppContext) -> crate::auth::DynAuthenticator {
    Arc::new(DbAuthenticator {
        db: ctx.db.clone(),
        reads: ctx.reads.clone(),
        jwt: jwt_keys(ctx),
    })
}

struct DbAuthenticator {
    db: crate::db::Db,
    /// Who a key or a user id is, kept until a write touches the account or its tokens.
    reads: Arc<crate::read_cache::ReadCache>,
    jwt: JwtKeys,
}

impl crate::auth::Authenticator for DbAuthenticator {
    fn authenticate(&self, creds: Credentials) -> BoxFuture<'static, Result<Principal, ApiError>> {
        let db = self.db.clone();
        let reads = self.reads.clone();
        let jwt = self.jwt.clone();
        Box::pin(async move {
            match &creds {
                Credentials::Token(key) => {
                    let owner = reads
                        .token_owner(&db, key)
                        .await?
                        .ok_or_else(|| ApiError::authentication_failed("Invalid token."))?;
                    Ok(Principal {
                        user_id: owner.user_id,
                        username: owner.username,
                        is_creator: owner.is_creator,
                        credentials: creds,
                    })
                }
                Credentials::Bearer(token) => {
                    let claims = jwt
                        .decode(token, Some(TokenType::Access), chrono::Utc::now())
                        .map_err(|_| token_not_valid("Given token not valid for any token type"))?;
                    let user = reads
                        .user(&db, claims.user_id)
                        .await?
                        .filter(|u| u.is_active)
                        .ok_or_else(|| {
                            ApiError::authentication_failed("User not found or inactive.")
                        })?;
                    if !user.accepts_token(claims.iat, claims.epoch) {
                        return Err(token_not_valid(
                            "Token was issued before the account's sessions were ended",
                        ));
                    }
                    Ok(Principal {
                        user_id: user.id,
                        username: user.username,
                        is_creator: user.is_creator,
                        credentials: creds,
                    })
                }
            }
        })
    }
}

/// The per-address limit on new accounts, shared by registration and guest checkout (pass
/// `ctx.settings.registrations_per_hour`, i.e. `OASIS_REGISTRATIONS_PER_HOUR`; `client` is
/// [`client_addr`]): an early refusal that records nothing — call it before hashing the
/// password. 429 with `Retry-After` when `client` reached the limit.
pub fn check_registration_limit(
    conn: &mut diesel::PgConnection,
    per_hour: u32,
    client: &str,
) -> Result<(), ApiError> {
    Ok(oasis_identity::service::check_registration_limit(
        &mut oasis_db::identity::PgIdentity(conn),
        client,
        per_hour,
        chrono::Utc::now(),
    )?)
}

/// Counts one new account from `client` against the same limit, atomically (concurrent
/// requests cannot exceed it). Call it inside the transaction (`Db::tx`) that creates the
/// account: if that transaction fails, the count goes with it. 429 at the limit.
pub fn reserve_registration(
    conn: &mut diesel::PgConnection,
    per_hour: u32,
    client: &str,
) -> Result<(), ApiError> {
    Ok(oasis_identity::service::reserve_registration(
        &mut oasis_db::identity::PgIdentity(conn),
        client,
        per_hour,
        chrono::Utc::now(),
    )?)
}

/// The client address used for throttling: the TCP peer; when the peer is one of
/// `OASIS_TRUSTED_PROXIES`, the nearest address in `X-Forwarded-For` that is not itself a trusted
/// proxy (a client cannot spoof its way past a proxy it does not control).
pub(crate) fn client_addr(req: &actix_web::HttpRequest) -> String {
    let Some(peer) = req.peer_addr().map(|a| a.ip()) else {
        return "unknown".to_owned();
    };
    let trusted = req
        .app_data::<web::Data<AppContext>>()
        .map(|ctx| ctx.settings.trusted_proxies.clone())
        .unwrap_or_default();
    if !trusted.contains(&peer) {
        return peer.to_string();
    }
    let forwarded: Vec<std::net::IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer)
        .to_string()
}
