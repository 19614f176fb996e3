//! `/content/api/content/`: posts, gated by tiers; `/content/api/remove-tiers/<pk>/`.
use super::dto::{post_dto, PostBody, PostDto, PostPage, RemoveTiersBody};
use super::{paginated, ListQuery, MediaLinks};
use crate::auth::{AuthUser, CreatorUser, MaybeAuthUser};
use crate::context::AppContext;
use crate::db::Db;
use crate::error::ApiError;
use crate::web;
use actix_web::{HttpRequest, HttpResponse};
use oasis_catalog::PostInput;
use oasis_db::catalog::{self as repo, PgCatalog};

fn input(b: PostBody) -> PostInput {
    PostInput {
        title: b.title,
        body: b.body,
        tiers: b.tiers,
        attachments: b.attachments,
    }
}

/// Loads one post rendered for `viewer` (404 when missing).
fn one(
    c: &mut diesel::PgConnection,
    id: i64,
    viewer: Option<i64>,
) -> Result<oasis_catalog::PostView, ApiError> {
    repo::load_post_views(c, &[id], viewer)?
        .pop()
        .ok_or_else(ApiError::not_found)
}

/// Lists posts newest first: `?creator=<id>` for one creator's, otherwise everyone's. Posts the
/// caller may not see are listed locked (`body: null`, no attachment URLs).
#[utoipa::path(get, path = "/content/api/content/", tag = "catalog", params(ListQuery),
    security((), ("token" = []), ("jwt" = [])),
    responses((status = 200, body = PostPage)))]
pub async fn list(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    user: MaybeAuthUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = q.page(&req)?;
    let viewer = user.user_id();
    let creator = q.creator;
    let p = ctx
        .db
        .run(move |c| {
            let ids = repo::list_post_ids(c, creator, page)?;
            let views = repo::load_post_views(c, &ids.results, viewer)?;
            Ok(oasis_kernel::Page {
                count: ids.count,
                results: views,
            })
        })
        .await?;
    let links = MediaLinks::new(&req, &ctx.settings, viewer);
    let p = p.map(|v| post_dto(v, &links));
    Ok(HttpResponse::Ok().json(paginated(&req, page, p)?))
}

/// Creates a post (creators only). Its tiers must be the creator's own; attachments are media
/// ids the creator uploaded.
#[utoipa::path(post, path = "/content/api/content/", tag = "catalog", request_body = PostBody,
    security(("token" = []), ("jwt" = [])),
    responses((status = 201, body = PostDto), (status = 400, description = "invalid fields, foreign tiers or media"),
        (status = 401), (status = 403, description = "not a creator")))]
pub async fn create(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    user: CreatorUser,
    body: web::Json<PostBody>,
) -> Result<HttpResponse, ApiError> {
    let me = user.user_id;
    let input = input(body.into_inner());
    let view = ctx
        .db
        .tx(move |c| {
            let id = oasis_catalog::create_post(&mut PgCatalog(c), me, input)?;
            oasis_db::notify::enqueue_event(
                c,
                &oasis_notify::Event::PostPublished { post_id: id },
            )?;
            one(c, id, Some(me))
        })
        .await?;
    ctx.jobs.wake();
    let links = MediaLinks::new(&req, &ctx.settings, Some(me));
    Ok(HttpResponse::Created().json(post_dto(view, &links)))
}

/// One post, locked (`body: null`) when the caller may not see it.
#[utoipa::path(get, path = "/content/api/content/{id}/", tag = "catalog",
    params(("id" = i64, Path)), security((), ("token" = []), ("jwt" = [])),
    responses((status = 200, body = PostDto), (status = 404)))]
pub async fn retrieve(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    user: MaybeAuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let viewer = user.user_id();
    let view = ctx
        .reads
        .post_views(&ctx.db, vec![id], viewer)
        .await?
        .pop()
        .ok_or_else(ApiError::not_found)?;
    let links = MediaLinks::new(&req, &ctx.settings, viewer);
    Ok(HttpResponse::Ok().json(post_dto(view, &links)))
}

/// Updates a post (owner only); `tiers` / `attachments`, when given, replace the current ones.
#[utoipa::path(patch, path = "/content/api/content/{id}/", tag = "catalog", request_body = PostBody,
    params(("id" = i64, Path)), security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = PostDto), (status = 400), (status = 401),
        (status = 403, description = "not the owner"), (status = 404)))]
pub async fn update(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<PostBody>,
) -> Result<HttpResponse, ApiError> {
    let (id, me, input) = (id.into_inner(), user.user_id, input(body.into_inner()));
    let view = ctx
        .db
        .tx(move |c| {
            oasis_catalog::update_post(&mut PgCatalog(c), me, id, input)?;
            one(c, id, Some(me))
        })
        .await?;
    let links = MediaLinks::new(&req, &ctx.settings, Some(me));
    Ok(HttpResponse::Ok().json(post_dto(view, &links)))
}

/// Deletes a post (owner only) with its likes, comments and attachment links.
#[utoipa::path(delete, path = "/content/api/content/{id}/", tag = "catalog",
    params(("id" = i64, Path)), security(("token" = []), ("jwt" = [])),
    responses((status = 204), (status = 401), (status = 403, description = "not the owner"), (status = 404)))]
pub async fn destroy(
    db: web::Data<Db>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (id, me) = (id.into_inner(), user.user_id);
    db.tx(move |c| Ok(oasis_catalog::delete_post(&mut PgCatalog(c), me, id)?))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Removes tiers from a post (owner only). Unknown tiers or tiers of another creator → 400 and
/// nothing changes. Removing every tier makes the post public.
#[utoipa::path(delete, path = "/content/api/remove-tiers/{id}/", tag = "catalog",
    request_body = RemoveTiersBody, params(("id" = i64, Path)), security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = PostDto), (status = 400), (status = 401),
        (status = 403, description = "not the owner"), (status = 404)))]
pub async fn remove_tiers(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<RemoveTiersBody>,
) -> Result<HttpResponse, ApiError> {
    let (id, me, tiers) = (id.into_inner(), user.user_id, body.into_inner().tiers);
    let view = ctx
        .db
        .tx(move |c| {
            oasis_catalog::remove_post_tiers(&mut PgCatalog(c), me, id, tiers)?;
            one(c, id, Some(me))
        })
        .await?;
    let links = MediaLinks::new(&req, &ctx.settings, Some(me));
    Ok(HttpResponse::Ok().json(post_dto(view, &links)))
}
