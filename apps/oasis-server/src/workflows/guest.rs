//! Guest checkout (`POST /subscriptions/get_ghost_user/`), a workflow spanning identity and
//! billing: identity first (registration's password rules, login's check for a known email
//! with its throttle and refusals, a new unverified `guest` account for an unknown one,
//! counted against the per-address registration limit), then billing's checkout workflow.
//!
//! The security rules: the caller is authenticated like a login before an Idempotency-Key is
//! honoured (and a reply is looked up under the authenticated account only); stored replies
//! hold no API key (a replay mints a new one); an unverified email gets login's refusal unless
//! this very account holds a reply for the key; known and unknown emails are answered alike.
use crate::context::AppContext;
use crate::error::ApiError;
use crate::idempotency;
use crate::routes::billing::api_error;
use crate::routes::billing::checkout::GuestStarted;
use crate::routes::identity::{self, IdentityState, LoginRefusal};
use crate::workflows::billing_db::billing_ports;
use crate::workflows::checkout::{start_onetime, start_recurring};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use chrono::Utc;
use oasis_billing::workflows::checkout;
use oasis_billing::BillingPeriod;
use oasis_db::identity::PgIdentity;
use oasis_identity::service;
use oasis_identity::{IdentityError, IdentityRepo};
use serde_json::{json, Value};

/// What a guest pays for.
pub enum GuestPayment {
    Recurring,
    /// `currency`, when given, must be the tier's.
    OneTime {
        currency: Option<String>,
    },
}

/// A parsed guest checkout request.
pub struct GuestCheckout {
    /// Lower-cased, checked for shape.
    pub email: String,
    pub phone: String,
    pub password: String,
    pub payment: GuestPayment,
    pub tier_id: i64,
}

/// Runs a guest checkout; `fingerprint` is the request's (without the password) for the
/// Idempotency-Key.
pub async fn checkout(
    ctx: &AppContext,
    st: &IdentityState,
    req: &HttpRequest,
    g: GuestCheckout,
    fingerprint: &Value,
) -> Result<HttpResponse, ApiError> {
    let GuestCheckout {
        email,
        phone,
        password,
        payment,
        tier_id,
    } = g;
    // The password's strength, judged on what the caller sent only (never on whether or whose
    // account the email names): a weak password gets the same field errors for every email,
    // before any account is looked up.
    password_strength(&email, &password)?;
    let claim = idempotency::Claim::from_request(req, fingerprint)?;
    // Validate the target before touching any account.
    checkout::paid_tier(&billing_ports(ctx).0, tier_id, 0)
        .await
        .map_err(api_error)?;
    let guest = guest_account(ctx, st, req, &email, &phone, &password, claim.as_ref()).await?;
    let (user_id, username, created) = match guest {
        Guest::Replay { user_id, stored } => return replay_guest(ctx, user_id, stored).await,
        Guest::Run {
            user_id,
            username,
            created,
        } => (user_id, username, created),
    };
    let started = async {
        let id = match &payment {
            GuestPayment::Recurring => {
                start_recurring(ctx, user_id, tier_id, BillingPeriod::Monthly)
                    .await
                    .map_err(api_error)?
            }
            GuestPayment::OneTime { currency } => {
                start_onetime(ctx, user_id, &username, tier_id, currency.as_deref())
                    .await
                    .map_err(api_error)?
            }
        };
        Ok::<_, ApiError>(json!(GuestStarted {
            email: email.clone(),
            phone: phone.clone(),
            username: username.clone(),
            subscription_id: id,
            public_key: ctx.payments.key_id().to_owned(),
            key: String::new(),
        }))
    }
    .await;
    let reply = match started {
        Ok(reply) => reply,
        Err(e) => {
            if let Some(c) = &claim {
                idempotency::finish(&ctx.db, user_id, c, None).await;
            }
            if created {
                // Nobody holds a key to the account this request made: remove it, so that a
                // retry creates it afresh instead of meeting an unverified account.
                let dropped = ctx
                    .db
                    .tx(move |c| Ok(PgIdentity(c).delete_unused_guest_user(user_id)?))
                    .await;
                if let Err(d) = dropped {
                    tracing::warn!(user = user_id, error = %d, "could not remove an unused guest account");
                }
            }
            return Err(e);
        }
    };
    // Stored without the API key: a replay mints a new one for the authenticated caller.
    let stored = without_key(reply);
    if let Some(c) = &claim {
        idempotency::finish(&ctx.db, user_id, c, Some((StatusCode::OK, &stored))).await;
    }
    let key = ctx
        .db
        .tx(move |c| Ok(service::issue_api_key(&mut PgIdentity(c), user_id)?))
        .await?;
    Ok(HttpResponse::Ok().json(with_key(stored, key)))
}

fn without_key(mut reply: Value) -> Value {
    if let Some(o) = reply.as_object_mut() {
        o.remove("key");
    }
    reply
}

fn with_key(mut reply: Value, key: String) -> Value {
    if let Some(o) = reply.as_object_mut() {
        o.insert("key".to_owned(), Value::String(key));
    }
    reply
}

/// Registration's password validators, over the attributes the caller sent.
fn password_strength(email: &str, password: &str) -> Result<(), ApiError> {
    let problems = oasis_identity::password::validate(
        password,
        oasis_identity::password::UserAttributes {
            username: email.split('@').next().unwrap_or_default(),
            email,
            first_name: "",
            last_name: "",
        },
    );
    if problems.is_empty() {
        return Ok(());
    }
    let mut errs = oasis_kernel::FieldErrors::new();
    for p in problems {
        errs.add("password", p);
    }
    Err(ApiError::Validation(errs))
}

/// The account a guest checkout acts for, known only once its password was checked (or it was
/// just created): only then is the Idempotency-Key looked at, under that account's id.
enum Guest {
    /// Run the checkout; the Idempotency-Key (if any) is claimed for `user_id`.
    Run {
        user_id: i64,
        username: String,
        /// Made by this request.
        created: bool,
    },
    /// The authenticated account already holds a reply for this Idempotency-Key.
    Replay {
        user_id: i64,
        stored: idempotency::Stored,
    },
}

/// Replays a stored guest reply with a new API key for its (just authenticated) account: the
/// stored reply holds no credential.
async fn replay_guest(
    ctx: &AppContext,
    user_id: i64,
    stored: idempotency::Stored,
) -> Result<HttpResponse, ApiError> {
    let reply: Value = serde_json::from_slice(&stored.body).map_err(ApiError::internal)?;
    let key = ctx
        .db
        .tx(move |c| Ok(service::issue_api_key(&mut PgIdentity(c), user_id)?))
        .await?;
    let body = serde_json::to_vec(&with_key(reply, key)).map_err(ApiError::internal)?;
    Ok(idempotency::replayed(stored.status, body))
}

/// The guest's account: a new email gets a new unverified `guest` account; an existing one is
/// signed in to with login's check (wrong password → login's refusal; unverified email →
/// login's refusal, unless this very account holds a reply for the Idempotency-Key, i.e. the
/// request that created it is being retried).
async fn guest_account(
    ctx: &AppContext,
    st: &IdentityState,
    req: &HttpRequest,
    email: &str,
    phone: &str,
    password: &str,
    claim: Option<&idempotency::Claim>,
) -> Result<Guest, ApiError> {
    let e = email.to_owned();
    let existing = ctx
        .db
        .run(move |c| Ok(PgIdentity(c).user_by_email(&e)?))
        .await?;
    if existing.is_none() {
        if let Some(g) = create_guest(ctx, st, req, email, phone, password, claim).await? {
            return Ok(g);
        }
        // Another request created this email meanwhile: sign in to it like any existing one.
    }
    let checked =
        identity::check_email_password(ctx, st, req, email.to_owned(), password.to_owned()).await?;
    let (user_id, username, verified) = match checked {
        Ok(u) => (u.id, u.username, true),
        Err(LoginRefusal::NotVerified) => {
            let e = email.to_owned();
            let u = ctx
                .db
                .run(move |c| Ok(PgIdentity(c).user_by_email(&e)?))
                .await?
                .ok_or(IdentityError::EmailNotVerified)?;
            (u.id, u.username, false)
        }
        Err(refusal) => return Err(refusal.into()),
    };
    let Some(claim) = claim.cloned() else {
        return if verified {
            Ok(Guest::Run {
                user_id,
                username,
                created: false,
            })
        } else {
            Err(IdentityError::EmailNotVerified.into())
        };
    };
    let ttl = ctx.settings.idempotency_ttl_secs;
    let found = ctx
        .db
        .run(move |c| {
            if verified {
                idempotency::begin(c, user_id, &claim, ttl)
            } else {
                idempotency::find(c, user_id, &claim, ttl)
            }
        })
        .await?;
    match found {
        Some(stored) => Ok(Guest::Replay { user_id, stored }),
        None if verified => Ok(Guest::Run {
            user_id,
            username,
            created: false,
        }),
        None => Err(IdentityError::EmailNotVerified.into()),
    }
}

/// A new unverified `guest` account, throttled like a login for an unknown email and counted
/// against the per-address registration limit; its Idempotency-Key (if any) is claimed in the
/// creating transaction. `None` when another request created the email first.
async fn create_guest(
    ctx: &AppContext,
    st: &IdentityState,
    req: &HttpRequest,
    email: &str,
    phone: &str,
    password: &str,
    claim: Option<&idempotency::Claim>,
) -> Result<Option<Guest>, ApiError> {
    let client = identity::client_addr(req);
    let scopes = service::login_scopes(email, None, &client);
    let per_hour = ctx.settings.registrations_per_hour;
    let policy = st.policy;
    let cl = client.clone();
    ctx.db
        .run(move |c| {
            service::check_throttle(&mut PgIdentity(c), &scopes, policy, Utc::now())?;
            identity::check_registration_limit(c, per_hour, &cl)?;
            Ok(())
        })
        .await?;
    let hash = st.hash(password.to_owned()).await?;
    let (e, ph) = (email.to_owned(), phone.to_owned());
    let (claim, ttl) = (claim.cloned(), ctx.settings.idempotency_ttl_secs);
    ctx.db
        .tx(move |c| {
            let phone = (!ph.is_empty()).then_some(ph.as_str());
            let Some((user_id, username)) = PgIdentity(c).create_guest_user(&e, phone, &hash)?
            else {
                return Ok(None);
            };
            identity::reserve_registration(c, per_hour, &client)?;
            if let Some(claim) = &claim {
                if let Some(stored) = idempotency::begin(c, user_id, claim, ttl)? {
                    // Unreachable for a new account id; answered correctly all the same.
                    return Ok(Some(Guest::Replay { user_id, stored }));
                }
            }
            Ok(Some(Guest::Run {
                user_id,
                username,
                created: true,
            }))
        })
        .await
}
