//! Creators' offerings and the public lists of them.
use super::dto::{
    offering_dto, public_offering_dto, Deletable, OfferingBody, OfferingDto, OfferingPage,
    PublicOfferingPage,
};
use crate::auth::{AuthUser, MaybeAuthUser};
use crate::db::Db;
use crate::error::ApiError;
use crate::pagination::paginated;
use crate::web;
use actix_web::{HttpRequest, HttpResponse};
use chrono::Utc;
use oasis_commissions::services;
use oasis_db::commissions::{self as repo, PgCommissions};
use oasis_kernel::PageRequest;
use serde::Deserialize;

/// `?page=&page_size=` (and `?creator=` on the public list).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OfferingQuery {
    /// Only this creator's offerings.
    pub creator: Option<i64>,
    pub page: Option<i64>,
    /// Items per page (1–`OASIS_MAX_PAGE_SIZE`, 100 by default; default 10).
    pub page_size: Option<i64>,
}

impl OfferingQuery {
    fn page(&self, req: &HttpRequest) -> Result<PageRequest, ApiError> {
        crate::pagination::page_request(req, self.page, self.page_size)
    }
}

/// The caller's own offerings (open and closed), newest first.
#[utoipa::path(get, path = "/commissions/api/commission-creator/", tag = "commissions",
    params(OfferingQuery), security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = OfferingPage), (status = 401)))]
pub async fn list_own(
    req: HttpRequest,
    db: web::Data<Db>,
    user: AuthUser,
    q: web::Query<OfferingQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = q.page(&req)?;
    let me = user.user_id;
    let p = db
        .run(move |c| Ok(repo::list_offerings(c, Some(me), true, page, Utc::now())?))
        .await?
        .map(|v| offering_dto(&v));
    Ok(HttpResponse::Ok().json(paginated(&req, page, p)?))
}

/// Creates an offering (creators only).
#[utoipa::path(post, path = "/commissions/api/commission-creator/", tag = "commissions",
    request_body = OfferingBody, security(("token" = []), ("jwt" = [])),
    responses((status = 201, body = OfferingDto), (status = 400, description = "invalid fields"),
        (status = 401), (status = 403, description = "not a creator")))]
pub async fn create(
    db: web::Data<Db>,
    user: AuthUser,
    body: web::Json<OfferingBody>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner().into();
    let me = user.user_id;
    let v = db
        .tx(move |c| {
            let now = Utc::now();
            let o = services::create_offering(&mut PgCommissions(c), me, &input, now)?;
            Ok(repo::offering_view(c, o, now)?)
        })
        .await?;
    Ok(HttpResponse::Created().json(offering_dto(&v)))
}

/// One offering: anyone may read an open one, the owner any of theirs (a closed one is 404 to
/// others).
#[utoipa::path(get, path = "/commissions/api/commission-creator/{id}/", tag = "commissions",
    params(("id" = i64, Path)), security((), ("token" = []), ("jwt" = [])),
    responses((status = 200, body = OfferingDto), (status = 404)))]
pub async fn retrieve(
    db: web::Data<Db>,
    user: MaybeAuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (id, me) = (id.into_inner(), user.user_id());
    let v = db
        .run(move |c| {
            let o = services::visible_offering(&mut PgCommissions(c), me, id)?;
            Ok(repo::offering_view(c, o, Utc::now())?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(offering_dto(&v)))
}

/// Changes an offering (the owner only). A new price applies to new requests only.
#[utoipa::path(patch, path = "/commissions/api/commission-creator/{id}/", tag = "commissions",
    params(("id" = i64, Path)), request_body = OfferingBody, security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = OfferingDto), (status = 400), (status = 401),
        (status = 403, description = "not the owner"), (status = 404)))]
pub async fn update(
    db: web::Data<Db>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<OfferingBody>,
) -> Result<HttpResponse, ApiError> {
    let (id, me) = (id.into_inner(), user.user_id);
    let input = body.into_inner().into();
    let v = db
        .tx(move |c| {
            let now = Utc::now();
            let o = services::update_offering(&mut PgCommissions(c), me, id, &input, now)?;
            Ok(repo::offering_view(c, o, now)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(offering_dto(&v)))
}

/// Deletes an offering (the owner only) that has no active request; its past requests stay
/// readable.
#[utoipa::path(delete, path = "/commissions/api/commission-creator/{id}/", tag = "commissions",
    params(("id" = i64, Path)), security(("token" = []), ("jwt" = [])),
    responses((status = 204), (status = 401), (status = 403, description = "not the owner"),
        (status = 404), (status = 409, description = "it has active requests")))]
pub async fn destroy(
    db: web::Data<Db>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (id, me) = (id.into_inner(), user.user_id);
    db.tx(move |c| {
        Ok(services::delete_offering(
            &mut PgCommissions(c),
            me,
            id,
            Utc::now(),
        )?)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Whether the owner may delete the offering now (false while any request of it is active).
#[utoipa::path(get, path = "/commissions/api/deletable/{id}", tag = "commissions",
    params(("id" = i64, Path)), security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = Deletable), (status = 401), (status = 404, description = "not the owner's")))]
pub async fn deletable(
    db: web::Data<Db>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (id, me) = (id.into_inner(), user.user_id);
    let deletable = db
        .run(move |c| Ok(services::deletable(&mut PgCommissions(c), me, id)?))
        .await?;
    Ok(HttpResponse::Ok().json(Deletable { deletable }))
}

/// A creator's open offerings (anyone, anonymous too).
#[utoipa::path(get, path = "/commissions/list/{creator_id}", tag = "commissions",
    params(("creator_id" = i64, Path), OfferingQuery), security((), ("token" = []), ("jwt" = [])),
    responses((status = 200, body = OfferingPage)))]
pub async fn list_of_creator(
    req: HttpRequest,
    db: web::Data<Db>,
    creator: web::Path<i64>,
    q: web::Query<OfferingQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = q.page(&req)?;
    let creator = creator.into_inner();
    let p = db
        .run(move |c| {
            Ok(repo::list_offerings(
                c,
                Some(creator),
                false,
                page,
                Utc::now(),
            )?)
        })
        .await?
        .map(|v| offering_dto(&v));
    Ok(HttpResponse::Ok().json(paginated(&req, page, p)?))
}

/// Open offerings of every creator (`?creator=` filters), each with the creator's `username`
/// and `profile_pic`.
#[utoipa::path(get, path = "/commissions/api/get-commissions", tag = "commissions",
    params(OfferingQuery), security((), ("token" = []), ("jwt" = [])),
    responses((status = 200, body = PublicOfferingPage)))]
pub async fn list_public(
    req: HttpRequest,
    db: web::Data<Db>,
    q: web::Query<OfferingQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = q.page(&req)?;
    let creator = q.creator;
    let p = db
        .run(move |c| Ok(repo::list_offerings(c, creator, false, page, Utc::now())?))
        .await?
        .map(|v| public_offering_dto(&v));
    Ok(HttpResponse::Ok().json(paginated(&req, page, p)?))
}
