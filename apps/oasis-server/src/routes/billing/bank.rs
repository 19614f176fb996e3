//! `/subscriptions/api/bankdetails`: a creator's payout bank account. Validated, sealed with
//! AES-256-GCM (key derived from `OASIS_SECRET_KEY`), masked on read, never logged. Changing it
//! (POST, PATCH, DELETE) needs the current password in the body; an account without a usable
//! password confirms through a link mailed to its address (202 until then).
use crate::auth::CreatorUser;
use crate::context::AppContext;
use crate::error::ApiError;
use crate::routes::identity::{self as id, ChangeAuth, IdentityState};
use crate::web;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use oasis_billing::bank::{BankCipher, BankDetails, KEY_VERSION};
use oasis_db::billing as store;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

/// Request body. Deliberately no `Debug`: it carries the account number.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct BankBody {
    /// `^[A-Z]{4}0[A-Z0-9]{6}$`
    #[serde(rename = "ifscCode")]
    ifsc_code: Option<String>,
    /// 9 to 18 digits.
    #[serde(rename = "accountNumber")]
    account_number: Option<String>,
    #[serde(rename = "BankName")]
    bank_name: Option<String>,
    #[serde(rename = "accountHolderName")]
    account_holder_name: Option<String>,
    /// The payout contact phone (10 digits, optional `+91`).
    #[serde(rename = "contactPhone")]
    contact_phone: Option<String>,
    /// The legal name Razorpay's linked account is made in (4 to 200 characters).
    #[serde(rename = "legalName")]
    legal_name: Option<String>,
    /// `individual`, `proprietorship`, `partnership`, `private_limited`, `public_limited`,
    /// `llp`, `ngo` or `not_yet_registered`.
    #[serde(rename = "businessType")]
    business_type: Option<String>,
    /// The current password (not needed by accounts without one: they confirm by mail).
    password: Option<String>,
}

/// DELETE body.
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct PasswordBody {
    /// The current password (not needed by accounts without one: they confirm by mail).
    password: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BankOut {
    #[serde(rename = "ifscCode")]
    ifsc_code: String,
    /// Masked: only the last 4 digits are shown.
    #[serde(rename = "accountNumber")]
    account_number: String,
    #[serde(rename = "BankName")]
    bank_name: String,
    #[serde(rename = "accountHolderName")]
    account_holder_name: String,
    #[serde(rename = "contactPhone")]
    contact_phone: String,
    #[serde(rename = "legalName")]
    legal_name: String,
    #[serde(rename = "businessType")]
    business_type: String,
}

impl From<&BankDetails> for BankOut {
    fn from(d: &BankDetails) -> Self {
        BankOut {
            ifsc_code: d.ifsc_code.clone(),
            account_number: d.masked_account_number(),
            bank_name: d.bank_name.clone(),
            account_holder_name: d.account_holder_name.clone(),
            contact_phone: d.contact_phone.clone(),
            legal_name: d.legal_name.clone(),
            business_type: d.business_type.clone(),
        }
    }
}

fn cipher(ctx: &AppContext) -> BankCipher {
    BankCipher::new(ctx.settings.secret().expose_secret().as_bytes())
}

pub(crate) async fn load(ctx: &AppContext, user_id: i64) -> Result<Option<BankDetails>, ApiError> {
    let sealed = ctx
        .db
        .run(move |c| Ok(store::bank_details(c, user_id)?))
        .await?;
    match sealed {
        None => Ok(None),
        Some(s) => cipher(ctx)
            .open(user_id, &s.nonce, &s.ciphertext)
            .map(Some)
            .ok_or_else(|| {
                ApiError::internal("bank details cannot be decrypted (secret key changed?)")
            }),
    }
}

async fn store_details(ctx: &AppContext, user_id: i64, d: &BankDetails) -> Result<bool, ApiError> {
    let (nonce, ct) = cipher(ctx)
        .seal(user_id, d)
        .map_err(|_| ApiError::internal("encryption failed"))?;
    ctx.db
        .tx(move |c| {
            let created = store::save_bank_details(c, user_id, &nonce, &ct, KEY_VERSION)?;
            crate::workflows::payouts::queue_linked_account(c, user_id)?;
            Ok(created)
        })
        .await
}

/// The caller's bank details, masked.
#[utoipa::path(get, path = "/subscriptions/api/bankdetails", tag = "billing",
    responses((status = 200, body = BankOut), (status = 401), (status = 403, description = "not a creator"), (status = 404)),
    security(("token" = []), ("jwt" = [])))]
pub async fn get_bank(
    user: CreatorUser,
    ctx: web::Data<AppContext>,
) -> Result<HttpResponse, ApiError> {
    let d = load(&ctx, user.user_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(HttpResponse::Ok().json(BankOut::from(&d)))
}

fn full(body: &BankBody) -> Result<BankDetails, ApiError> {
    let mut errs = oasis_kernel::FieldErrors::new();
    for (v, name) in [
        (&body.ifsc_code, "ifscCode"),
        (&body.account_number, "accountNumber"),
        (&body.bank_name, "BankName"),
        (&body.account_holder_name, "accountHolderName"),
        (&body.contact_phone, "contactPhone"),
        (&body.legal_name, "legalName"),
        (&body.business_type, "businessType"),
    ] {
        if v.is_none() {
            errs.add(name, "This field is required.");
        }
    }
    let checked = BankDetails::new(
        body.ifsc_code.as_deref().unwrap_or_default(),
        body.account_number.as_deref().unwrap_or_default(),
        body.bank_name.as_deref().unwrap_or_default(),
        body.account_holder_name.as_deref().unwrap_or_default(),
        body.contact_phone.as_deref().unwrap_or_default(),
        body.legal_name.as_deref().unwrap_or_default(),
        body.business_type.as_deref().unwrap_or_default(),
    );
    // Every field's errors at once (DRF's way): a missing field says so, a given one is checked.
    if let Err(invalid) = &checked {
        for (field, msgs) in invalid.iter() {
            if !errs.has(field) {
                for m in msgs {
                    errs.add(field, m.clone());
                }
            }
        }
    }
    errs.into_result()?;
    Ok(checked?)
}

/// Authorises a change for the caller: `Ok(None)` = apply now (password right); `Ok(Some(_))`
/// = the change was stored and a confirmation link mailed (answer 202 with the detail).
async fn authorize(
    ctx: &AppContext,
    st: &web::Data<IdentityState>,
    req: &HttpRequest,
    user_id: i64,
    password: Option<String>,
    pending: impl FnOnce() -> Result<(String, Vec<u8>, String), ApiError>,
) -> Result<Option<HttpResponse>, ApiError> {
    let me = id::load_user(ctx, user_id).await?;
    match id::authorize_change(ctx, st, req, &me, password).await? {
        ChangeAuth::Password => Ok(None),
        ChangeAuth::ByMail => {
            let (kind, payload, what) = pending()?;
            let per_hour = ctx.settings.identity_mails_per_hour;
            ctx.db
                .tx(move |c| {
                    let change = oasis_identity::PendingChange {
                        user_id,
                        kind,
                        payload,
                    };
                    id::request_by_mail(c, &me, &change, &what, "non_field_errors", per_hour)
                })
                .await?;
            ctx.jobs.wake();
            Ok(Some(HttpResponse::Accepted().json(
                crate::routes::identity::detail(id::CONFIRM_BY_MAIL),
            )))
        }
    }
}

/// A pending `bank.set`: nonce and ciphertext, sealed for the user as stored.
fn sealed_payload(ctx: &AppContext, user_id: i64, d: &BankDetails) -> Result<Vec<u8>, ApiError> {
    let (mut nonce, ct) = cipher(ctx)
        .seal(user_id, d)
        .map_err(|_| ApiError::internal("encryption failed"))?;
    nonce.extend_from_slice(&ct);
    Ok(nonce)
}

fn describe(d: &BankDetails) -> String {
    format!(
        "set its payout bank account to {} account {} (IFSC {})",
        d.bank_name,
        d.masked_account_number(),
        d.ifsc_code
    )
}

/// Applies a pending bank-account change confirmed through the emailed link, in the caller's
/// transaction; returns what happened, in words.
pub(crate) fn apply_pending_change(
    c: &mut diesel::PgConnection,
    user_id: i64,
    kind: &str,
    payload: &[u8],
) -> Result<String, ApiError> {
    match kind {
        id::BANK_SET => {
            let nonce_len = ring::aead::NONCE_LEN;
            if payload.len() <= nonce_len {
                return Err(ApiError::internal("malformed pending bank change"));
            }
            let (nonce, ct) = payload.split_at(nonce_len);
            store::save_bank_details(c, user_id, nonce, ct, KEY_VERSION)?;
            crate::workflows::payouts::queue_linked_account(c, user_id)?;
            Ok("Your payout bank account was saved.".to_owned())
        }
        id::BANK_DELETE => Ok(if store::delete_bank_details(c, user_id)? {
            "Your payout bank account was removed.".to_owned()
        } else {
            "There was no payout bank account to remove.".to_owned()
        }),
        _ => Err(ApiError::not_found()),
    }
}

/// Set (or replace) the caller's bank details. Needs `password`; without a usable password,
/// 202 and a confirmation link to the account's address.
#[utoipa::path(post, path = "/subscriptions/api/bankdetails", tag = "billing", request_body = BankBody,
    responses((status = 201, body = BankOut), (status = 200, body = BankOut, description = "replaced"),
        (status = 202, description = "`{\"detail\"}`: waits for the link mailed to the account (no usable password)"),
        (status = 400, description = "field errors; `{\"password\": [...]}` when missing or wrong"), (status = 401), (status = 403),
        (status = 429, description = "too many wrong passwords")),
    security(("token" = []), ("jwt" = [])))]
pub async fn post_bank(
    user: CreatorUser,
    ctx: web::Data<AppContext>,
    st: web::Data<IdentityState>,
    req: HttpRequest,
    body: web::Json<BankBody>,
) -> Result<HttpResponse, ApiError> {
    let d = full(&body)?;
    let uid = user.user_id;
    if let Some(accepted) = authorize(&ctx, &st, &req, uid, body.password.clone(), || {
        Ok((
            id::BANK_SET.into(),
            sealed_payload(&ctx, uid, &d)?,
            describe(&d),
        ))
    })
    .await?
    {
        return Ok(accepted);
    }
    let created = store_details(&ctx, uid, &d).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(BankOut::from(&d)))
}

/// Change some fields of the caller's bank details. Needs `password` (or, without a usable
/// password, the emailed link: 202).
#[utoipa::path(patch, path = "/subscriptions/api/bankdetails", tag = "billing", request_body = BankBody,
    responses((status = 200, body = BankOut),
        (status = 202, description = "waits for the link mailed to the account (no usable password)"),
        (status = 400), (status = 401), (status = 403), (status = 404), (status = 429)),
    security(("token" = []), ("jwt" = [])))]
pub async fn patch_bank(
    user: CreatorUser,
    ctx: web::Data<AppContext>,
    st: web::Data<IdentityState>,
    req: HttpRequest,
    body: web::Json<BankBody>,
) -> Result<HttpResponse, ApiError> {
    let cur = load(&ctx, user.user_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let d = BankDetails::new(
        body.ifsc_code.as_deref().unwrap_or(&cur.ifsc_code),
        body.account_number
            .as_deref()
            .unwrap_or(&cur.account_number),
        body.bank_name.as_deref().unwrap_or(&cur.bank_name),
        body.account_holder_name
            .as_deref()
            .unwrap_or(&cur.account_holder_name),
        body.contact_phone.as_deref().unwrap_or(&cur.contact_phone),
        body.legal_name.as_deref().unwrap_or(&cur.legal_name),
        body.business_type.as_deref().unwrap_or(&cur.business_type),
    )?;
    let uid = user.user_id;
    if let Some(accepted) = authorize(&ctx, &st, &req, uid, body.password.clone(), || {
        Ok((
            id::BANK_SET.into(),
            sealed_payload(&ctx, uid, &d)?,
            describe(&d),
        ))
    })
    .await?
    {
        return Ok(accepted);
    }
    store_details(&ctx, uid, &d).await?;
    Ok(HttpResponse::Ok().json(BankOut::from(&d)))
}

/// Remove the caller's bank details. Needs `{"password"}` in the body (or, without a usable
/// password, the emailed link: 202).
#[utoipa::path(delete, path = "/subscriptions/api/bankdetails", tag = "billing",
    request_body(content = Option<PasswordBody>),
    responses((status = 204),
        (status = 202, description = "waits for the link mailed to the account (no usable password)"),
        (status = 400, description = "`{\"password\": [...]}` when missing or wrong"),
        (status = 401), (status = 403), (status = 404), (status = 429)),
    security(("token" = []), ("jwt" = [])))]
pub async fn delete_bank(
    user: CreatorUser,
    ctx: web::Data<AppContext>,
    st: web::Data<IdentityState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let b: PasswordBody = if body.iter().all(|c| c.is_ascii_whitespace()) {
        PasswordBody::default()
    } else {
        crate::json::from_slice(&body)?
    };
    let uid = user.user_id;
    if load(&ctx, uid).await?.is_none() {
        return Err(ApiError::not_found());
    }
    if let Some(accepted) = authorize(&ctx, &st, &req, uid, b.password, || {
        Ok((
            id::BANK_DELETE.into(),
            Vec::new(),
            "remove its payout bank account".into(),
        ))
    })
    .await?
    {
        return Ok(accepted);
    }
    let deleted = ctx
        .db
        .tx(move |c| Ok(store::delete_bank_details(c, uid)?))
        .await?;
    if !deleted {
        return Err(ApiError::not_found());
    }
    Ok(HttpResponse::NoContent().finish())
}
