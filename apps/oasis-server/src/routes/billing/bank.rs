//! `/subscriptions/api/bankdetails`: a creator's payout bank account. Validated, sealed with
//! AES-256-GCM (key derived from `OASIS_SECRET_KEY`), masked on read, never logged.
use crate::auth::CreatorUser;
use crate::context::AppContext;
use crate::error::ApiError;
use crate::web;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
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
}

impl From<&BankDetails> for BankOut {
    fn from(d: &BankDetails) -> Self {
        BankOut {
            ifsc_code: d.ifsc_code.clone(),
            account_number: d.masked_account_number(),
            bank_name: d.bank_name.clone(),
            account_holder_name: d.account_holder_name.clone(),
        }
    }
}

fn cipher(ctx: &AppContext) -> BankCipher {
    BankCipher::new(ctx.settings.secret().expose_secret().as_bytes())
}

async fn load(ctx: &AppContext, user_id: i64) -> Result<Option<BankDetails>, ApiError> {
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
            Ok(store::save_bank_details(
                c,
                user_id,
                &nonce,
                &ct,
                KEY_VERSION,
            )?)
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
    ] {
        if v.is_none() {
            errs.add(name, "This field is required.");
        }
    }
    errs.into_result()?;
    Ok(BankDetails::new(
        body.ifsc_code.as_deref().unwrap_or_default(),
        body.account_number.as_deref().unwrap_or_default(),
        body.bank_name.as_deref().unwrap_or_default(),
        body.account_holder_name.as_deref().unwrap_or_default(),
    )?)
}

/// Set (or replace) the caller's bank details.
#[utoipa::path(post, path = "/subscriptions/api/bankdetails", tag = "billing", request_body = BankBody,
    responses((status = 201, body = BankOut), (status = 200, body = BankOut, description = "replaced"),
        (status = 400), (status = 401), (status = 403)),
    security(("token" = []), ("jwt" = [])))]
pub async fn post_bank(
    user: CreatorUser,
    ctx: web::Data<AppContext>,
    body: web::Json<BankBody>,
) -> Result<HttpResponse, ApiError> {
    let d = full(&body)?;
    let created = store_details(&ctx, user.user_id, &d).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(BankOut::from(&d)))
}

/// Change some fields of the caller's bank details.
#[utoipa::path(patch, path = "/subscriptions/api/bankdetails", tag = "billing", request_body = BankBody,
    responses((status = 200, body = BankOut), (status = 400), (status = 401), (status = 403), (status = 404)),
    security(("token" = []), ("jwt" = [])))]
pub async fn patch_bank(
    user: CreatorUser,
    ctx: web::Data<AppContext>,
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
    )?;
    store_details(&ctx, user.user_id, &d).await?;
    Ok(HttpResponse::Ok().json(BankOut::from(&d)))
}

/// Remove the caller's bank details.
#[utoipa::path(delete, path = "/subscriptions/api/bankdetails", tag = "billing",
    responses((status = 204), (status = 401), (status = 403), (status = 404)),
    security(("token" = []), ("jwt" = [])))]
pub async fn delete_bank(
    user: CreatorUser,
    ctx: web::Data<AppContext>,
) -> Result<HttpResponse, ApiError> {
    let uid = user.user_id;
    let deleted = ctx
        .db
        .tx(move |c| Ok(store::delete_bank_details(c, uid)?))
        .await?;
    if !deleted {
        return Err(ApiError::not_found());
    }
    Ok(HttpResponse::NoContent().finish())
}
