//! `/content/api/tiers/`: creators' membership tiers.
use super::dto::{tier_dto, TierBody, TierDto, TierPage};
use super::{paginated, ListQuery};
use crate::auth::{AuthUser, CreatorUser, MaybeAuthUser};
use crate::db::Db;
use crate::error::ApiError;
use crate::web;
use actix_web::{HttpRequest, HttpResponse};
use oasis_db::catalog::{self as repo, PgCatalog};

fn with_counts(
    c: &mut diesel::PgConnection,
    tiers: Vec<oasis_catalog::Tier>,
) -> Result<Vec<TierDto>, ApiError> {
    Ok(repo::with_member_counts(c, tiers)?
        .into_iter()
        .map(|(t, n)| tier_dto(t, n))
        .collect())
}

/// Lists tiers: `?creator=<id>` gives that creator's active tiers to anyone (all of them to the
/// creator); without it, the caller's own tiers (active and inactive).
#[utoipa::path(get, path = "/content/api/tiers/", tag = "catalog", params(ListQuery),
    security((), ("token" = []), ("jwt" = [])),
    responses((status = 200, body = TierPage), (status = 401, description = "no `creator` and anonymous")))]
pub async fn list(
    req: HttpRequest,
    ctx: web::Data<crate::context::AppContext>,
    user: MaybeAuthUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = q.page(&req)?;
    let me = user.user_id();
    let (creator, only_active) = match (q.creator, me) {
        (Some(c), me) => (c, me != Some(c)),
        (None, Some(me)) => (me, false),
        (None, None) => return Err(ApiError::not_authenticated()),
    };
    let p = ctx.reads.tiers(&ctx.db, creator, only_active, page).await?;
    let p = oasis_kernel::Page {
        count: p.count,
        results: p
            .results
            .iter()
            .map(|(t, n)| tier_dto(t.clone(), *n))
            .collect(),
    };
    Ok(HttpResponse::Ok().json(paginated(&req, page, p)?))
}

/// Creates a tier (creators only). Price 0 = the public (free) tier, at most one active.
#[utoipa::path(post, path = "/content/api/tiers/", tag = "catalog", request_body = TierBody,
    security(("token" = []), ("jwt" = [])),
    responses((status = 201, body = TierDto), (status = 400, description = "invalid fields"),
        (status = 401), (status = 403, description = "not a creator")))]
pub async fn create(
    db: web::Data<Db>,
    user: CreatorUser,
    body: web::Json<TierBody>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner().into();
    let me = user.user_id;
    let tier = db
        .tx(move |c| Ok(oasis_catalog::create_tier(&mut PgCatalog(c), me, input)?))
        .await?;
    Ok(HttpResponse::Created().json(tier_dto(tier, 0)))
}

/// One tier (anyone).
#[utoipa::path(get, path = "/content/api/tiers/{id}/", tag = "catalog",
    params(("id" = i64, Path)), security((), ("token" = []), ("jwt" = [])),
    responses((status = 200, body = TierDto), (status = 404)))]
pub async fn retrieve(db: web::Data<Db>, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let dto = db
        .run(move |c| {
            use oasis_catalog::TierRepo;
            let t = PgCatalog(c)
                .find_tier(id)?
                .ok_or_else(ApiError::not_found)?;
            Ok(with_counts(c, vec![t])?.remove(0))
        })
        .await?;
    Ok(HttpResponse::Ok().json(dto))
}

/// Updates a tier (owner only). `is_active: false` deactivates it (no new members); a new price
/// applies to new members only.
#[utoipa::path(patch, path = "/content/api/tiers/{id}/", tag = "catalog", request_body = TierBody,
    params(("id" = i64, Path)), security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = TierDto), (status = 400), (status = 401),
        (status = 403, description = "not the owner"), (status = 404)))]
pub async fn update(
    db: web::Data<Db>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<TierBody>,
) -> Result<HttpResponse, ApiError> {
    let (id, me, input) = (id.into_inner(), user.user_id, body.into_inner().into());
    let dto = db
        .tx(move |c| {
            let t = oasis_catalog::update_tier(&mut PgCatalog(c), me, id, input)?;
            Ok(with_counts(c, vec![t])?.remove(0))
        })
        .await?;
    Ok(HttpResponse::Ok().json(dto))
}

/// Deletes a tier (owner only): 409 while it has paying members or gates posts.
#[utoipa::path(delete, path = "/content/api/tiers/{id}/", tag = "catalog",
    params(("id" = i64, Path)), security(("token" = []), ("jwt" = [])),
    responses((status = 204), (status = 401), (status = 403, description = "not the owner"),
        (status = 404), (status = 409, description = "paying members (`tier_has_members`) or gates posts (`tier_in_use`)")))]
pub async fn destroy(
    db: web::Data<Db>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (id, me) = (id.into_inner(), user.user_id);
    db.tx(move |c| Ok(oasis_catalog::delete_tier(&mut PgCatalog(c), me, id)?))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
