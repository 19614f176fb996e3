//! Fans' requests: started with a Razorpay order (billing's), confirmed by the Checkout
//! callback, the webhook or reconciliation, then moved through their lifecycle by the two
//! parties. Anyone but the fan and the creator gets 404 for reads and writes alike.
use super::dto::{
    request_dto, ConfirmBody, RequestBody, RequestDto, RequestPage, RequestStarted, StatusBody,
};
use crate::auth::AuthUser;
use crate::context::AppContext;
use crate::error::ApiError;
use crate::pagination::paginated;
use crate::routes::billing::{api_error, str_field};
use crate::routes::catalog::MediaLinks;
use crate::web;
use crate::workflows::commissions as flow;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use oasis_billing::checkout::{check_razorpay_id, RazorpayIdKind};
use oasis_billing::workflows::checkout::Buyer;
use oasis_billing::BillingError;
use oasis_commissions::{RequestStatus, StatusChange};
use oasis_db::commissions::{self as repo, RequestsOf};
use serde::Deserialize;

fn links(req: &HttpRequest, ctx: &AppContext, viewer: i64) -> MediaLinks {
    MediaLinks::new(req, &ctx.settings, Some(viewer))
}

fn parse_status(s: &str) -> Result<RequestStatus, ApiError> {
    RequestStatus::parse(s.trim())
        .ok_or_else(|| ApiError::field("status", format!("\"{s}\" is not a valid choice.")))
}

/// Orders a commission: a slot is reserved and a Razorpay order made for the offering's price
/// (Checkout opens `SubscriptionID` with `public_key`). Refused with a reason — the creator's
/// own offering, a closed one or no free slot (409), another currency (400) — before anything
/// is created at Razorpay.
#[utoipa::path(post, path = "/commissions/api/commission-user/", tag = "commissions",
    request_body = RequestBody, params(("Idempotency-Key" = Option<String>, Header, description = "replays the first response")),
    security(("token" = []), ("jwt" = [])),
    responses((status = 201, body = RequestStarted), (status = 400), (status = 401),
        (status = 409, description = "own, closed or full offering"), (status = 502)))]
pub async fn create(
    req: HttpRequest,
    user: AuthUser,
    ctx: web::Data<AppContext>,
    body: web::Json<RequestBody>,
) -> Result<HttpResponse, ApiError> {
    let input = body.input()?;
    let fp = serde_json::json!({
        "commissionID": input.commission_id, "description": input.description,
        "contactDetails": input.contact_details, "mode_of_delivery": input.mode_of_delivery,
        "currency": input.currency,
    });
    crate::idempotency::run(&req, &ctx, user.user_id, &fp, || async {
        let fan = Buyer {
            id: user.user_id,
            username: user.username.clone(),
        };
        let started = flow::start_request(&ctx, fan, input).await?;
        let r = &started.view.request;
        let body = RequestStarted {
            id: r.id,
            status: r.status.as_str().to_owned(),
            amount: r.amount,
            currency: r.currency.code().to_owned(),
            subscription_id: started.order_id,
            public_key: ctx.payments.key_id().to_owned(),
        };
        Ok((StatusCode::CREATED, serde_json::json!(body)))
    })
    .await
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Fan,
    Creator,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestQuery {
    /// `fan`: the caller's own requests (the default for callers who are not creators).
    pub role: Option<Role>,
    /// Only requests in this status.
    pub status: Option<String>,
    pub page: Option<i64>,
    pub page_size: Option<i64>,
}

/// For a creator, the requests received from `ordered` on (`?status=awaiting_payment` shows
/// unpaid ones); with `?role=fan`, or for a caller who is not a creator, the caller's own
/// requests. Newest first.
#[utoipa::path(get, path = "/commissions/api/get-commissions-user", tag = "commissions",
    params(RequestQuery), security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = RequestPage), (status = 400), (status = 401)))]
pub async fn list(
    req: HttpRequest,
    user: AuthUser,
    ctx: web::Data<AppContext>,
    q: web::Query<RequestQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = crate::pagination::page_request(&req, q.page, q.page_size)?;
    let status = q.status.as_deref().map(parse_status).transpose()?;
    let me = user.user_id;
    let of = match (q.role, user.is_creator) {
        (Some(Role::Fan), _) | (None, false) => RequestsOf::Fan(me),
        (Some(Role::Creator), _) | (None, true) => RequestsOf::Creator(me),
    };
    let p = ctx
        .db
        .run(move |c| Ok(repo::list_requests(c, of, status, page)?))
        .await?;
    let links = links(&req, &ctx, me);
    let p = p.map(|v| request_dto(&v, &links));
    Ok(HttpResponse::Ok().json(paginated(&req, page, p)?))
}

/// One request (its fan and its creator only; 404 for anyone else).
#[utoipa::path(get, path = "/commissions/api/commission-user/{id}/", tag = "commissions",
    params(("id" = i64, Path)), security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = RequestDto), (status = 401), (status = 404)))]
pub async fn retrieve(
    req: HttpRequest,
    user: AuthUser,
    ctx: web::Data<AppContext>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let v = flow::request_for(&ctx, user.user_id, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(request_dto(&v, &links(&req, &ctx, user.user_id))))
}

/// Moves a request on: the creator accepts, starts (`in_progress`), delivers (a `message` and
/// optional `attachments`) or rejects an ordered request (a reason in `message`: full refund);
/// the fan cancels before acceptance (full refund once paid), after a missed `deliver_by`
/// (full refund), or marks a delivery `completed`. 403 for the other party's move, 409 when the
/// state does not allow it.
#[utoipa::path(patch, path = "/commissions/api/commission-user/{id}/", tag = "commissions",
    params(("id" = i64, Path)), request_body = StatusBody, security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = RequestDto), (status = 400), (status = 401),
        (status = 403, description = "the other party's move"), (status = 404),
        (status = 409, description = "the state does not allow it")))]
pub async fn update(
    req: HttpRequest,
    user: AuthUser,
    ctx: web::Data<AppContext>,
    id: web::Path<i64>,
    body: web::Json<StatusBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let to = parse_status(str_field(&body.status, "status")?)?;
    let change = StatusChange {
        to,
        message: body.message,
        attachments: body.attachments.unwrap_or_default(),
    };
    let v = flow::change_status(&ctx, user.user_id, id.into_inner(), change).await?;
    Ok(HttpResponse::Ok().json(request_dto(&v, &links(&req, &ctx, user.user_id))))
}

/// Confirms a request's Checkout payment (signature checked first: a bad one is 400 and
/// changes nothing). Whichever of this, the webhook and reconciliation comes first records
/// it, once; a later confirmation answers the request as it is.
#[utoipa::path(post, path = "/commissions/api/commission-user/{id}/confirm/", tag = "commissions",
    params(("id" = i64, Path)), request_body = ConfirmBody, security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = RequestDto), (status = 400, description = "bad signature or order"),
        (status = 401), (status = 404)))]
pub async fn confirm(
    req: HttpRequest,
    user: AuthUser,
    ctx: web::Data<AppContext>,
    id: web::Path<i64>,
    body: web::Json<ConfirmBody>,
) -> Result<HttpResponse, ApiError> {
    let order_id = str_field(&body.razorpay_order_id, "razorpay_order_id")?.to_owned();
    let payment_id = str_field(&body.razorpay_payment_id, "razorpay_payment_id")?.to_owned();
    let signature = str_field(&body.razorpay_signature, "razorpay_signature")?;
    check_razorpay_id("razorpay_order_id", &order_id, RazorpayIdKind::Order).map_err(api_error)?;
    check_razorpay_id("razorpay_payment_id", &payment_id, RazorpayIdKind::Payment)
        .map_err(api_error)?;
    if !razorpay::verify_order_signature(
        &order_id,
        &payment_id,
        signature,
        ctx.payments.key_secret(),
    ) {
        return Err(api_error(BillingError::BadSignature));
    }
    let v =
        flow::confirm_payment(&ctx, user.user_id, id.into_inner(), order_id, payment_id).await?;
    Ok(HttpResponse::Ok().json(request_dto(&v, &links(&req, &ctx, user.user_id))))
}
