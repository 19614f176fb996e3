//! `/content/api/likes/` and `/content/api/comment/`: only viewers who may see a post may read
//! or write its likes and comments (locked → 403 `post_locked`).
use super::dto::*;
use super::{paginated, ListQuery};
use crate::auth::{AuthUser, MaybeAuthUser};
use crate::db::Db;
use crate::error::ApiError;
use crate::web;
use actix_web::{HttpRequest, HttpResponse};
use oasis_catalog::{CatalogError, EngagementRepo};
use oasis_db::catalog::{self as repo, PgCatalog};

fn post_field_required() -> ApiError {
    ApiError::field("post", "This field is required.")
}

/// A body's `post` that does not exist is a field error (DRF's "Invalid pk").
fn body_post_error(post: i64) -> impl Fn(CatalogError) -> ApiError {
    move |e| match e {
        CatalogError::NotFound => ApiError::field(
            "post",
            format!("Invalid pk \"{post}\" - object does not exist."),
        ),
        e => e.into(),
    }
}

/// Likes of a post (`?post=<id>` required), oldest first.
#[utoipa::path(get, path = "/content/api/likes/", tag = "catalog", params(ListQuery),
    security((), ("token" = []), ("jwt" = [])),
    responses((status = 200, body = LikePage), (status = 400, description = "no `post`"),
        (status = 403, description = "post locked"), (status = 404)))]
pub async fn list_likes(
    req: HttpRequest,
    db: web::Data<Db>,
    user: MaybeAuthUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = q.page(&req)?;
    let post = q.post.ok_or_else(post_field_required)?;
    let viewer = user.user_id();
    let p = db
        .run(move |c| {
            oasis_catalog::visible_post(&mut PgCatalog(c), post, viewer)?;
            Ok(repo::list_likes(c, post, page)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(paginated(&req, page, p.map(like_dto))?))
}

/// Likes a post. At most one like per user and post: a repeated like answers 200 with the
/// existing one (201 when created).
#[utoipa::path(post, path = "/content/api/likes/", tag = "catalog", request_body = LikeBody,
    security(("token" = []), ("jwt" = [])),
    responses((status = 201, body = LikeDto), (status = 200, body = LikeDto, description = "already liked"),
        (status = 400), (status = 401), (status = 403, description = "post locked")))]
pub async fn create_like(
    db: web::Data<Db>,
    ctx: web::Data<crate::context::AppContext>,
    user: AuthUser,
    body: web::Json<LikeBody>,
) -> Result<HttpResponse, ApiError> {
    let post = body.post.ok_or_else(post_field_required)?;
    let me = user.user_id;
    let (like, created) = db
        .tx(move |c| {
            let r = oasis_catalog::like_post(&mut PgCatalog(c), me, post)
                .map_err(body_post_error(post))?;
            if r.1 {
                oasis_db::notify::enqueue_event(
                    c,
                    &oasis_notify::Event::Liked { like_id: r.0.id },
                )?;
            }
            Ok(r)
        })
        .await?;
    ctx.jobs.wake();
    let mut res = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(res.json(like_dto(like)))
}

/// One like (its post must be visible to the caller).
#[utoipa::path(get, path = "/content/api/likes/{id}/", tag = "catalog",
    params(("id" = i64, Path)), security((), ("token" = []), ("jwt" = [])),
    responses((status = 200, body = LikeDto), (status = 403, description = "post locked"), (status = 404)))]
pub async fn retrieve_like(
    db: web::Data<Db>,
    user: MaybeAuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (id, viewer) = (id.into_inner(), user.user_id());
    let like = db
        .run(move |c| {
            let mut r = PgCatalog(c);
            let like = r.find_like(id)?.ok_or_else(ApiError::not_found)?;
            oasis_catalog::visible_post(&mut r, like.post_id, viewer)?;
            Ok(like)
        })
        .await?;
    Ok(HttpResponse::Ok().json(like_dto(like)))
}

/// Removes a like (its author only).
#[utoipa::path(delete, path = "/content/api/likes/{id}/", tag = "catalog",
    params(("id" = i64, Path)), security(("token" = []), ("jwt" = [])),
    responses((status = 204), (status = 401), (status = 403, description = "not the author"), (status = 404)))]
pub async fn destroy_like(
    db: web::Data<Db>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (id, me) = (id.into_inner(), user.user_id);
    db.tx(move |c| Ok(oasis_catalog::unlike(&mut PgCatalog(c), me, id)?))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Comments of a post (`?post=<id>` required), oldest first, paginated.
#[utoipa::path(get, path = "/content/api/comment/", tag = "catalog", params(ListQuery),
    security((), ("token" = []), ("jwt" = [])),
    responses((status = 200, body = CommentPage), (status = 400, description = "no `post`"),
        (status = 403, description = "post locked"), (status = 404)))]
pub async fn list_comments(
    req: HttpRequest,
    db: web::Data<Db>,
    user: MaybeAuthUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = q.page(&req)?;
    let post = q.post.ok_or_else(post_field_required)?;
    let viewer = user.user_id();
    let p = db
        .run(move |c| {
            oasis_catalog::visible_post(&mut PgCatalog(c), post, viewer)?;
            Ok(repo::list_comments(c, post, page)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(paginated(&req, page, p.map(comment_dto))?))
}

/// Comments on a post the caller may see (`text`: 1–5000 characters).
#[utoipa::path(post, path = "/content/api/comment/", tag = "catalog", request_body = CommentBody,
    security(("token" = []), ("jwt" = [])),
    responses((status = 201, body = CommentDto), (status = 400), (status = 401),
        (status = 403, description = "post locked")))]
pub async fn create_comment(
    db: web::Data<Db>,
    ctx: web::Data<crate::context::AppContext>,
    user: AuthUser,
    body: web::Json<CommentBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let post = body.post.ok_or_else(post_field_required)?;
    let me = user.user_id;
    let comment = db
        .tx(move |c| {
            let comment = oasis_catalog::add_comment(&mut PgCatalog(c), me, post, body.text)
                .map_err(body_post_error(post))?;
            let event = oasis_notify::Event::Commented {
                comment_id: comment.id,
            };
            oasis_db::notify::enqueue_event(c, &event)?;
            Ok(comment)
        })
        .await?;
    ctx.jobs.wake();
    Ok(HttpResponse::Created().json(comment_dto(comment)))
}

/// One comment (its post must be visible to the caller).
#[utoipa::path(get, path = "/content/api/comment/{id}/", tag = "catalog",
    params(("id" = i64, Path)), security((), ("token" = []), ("jwt" = [])),
    responses((status = 200, body = CommentDto), (status = 403, description = "post locked"), (status = 404)))]
pub async fn retrieve_comment(
    db: web::Data<Db>,
    user: MaybeAuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (id, viewer) = (id.into_inner(), user.user_id());
    let (comment, _) = db
        .run(move |c| {
            Ok(oasis_catalog::visible_comment(
                &mut PgCatalog(c),
                viewer,
                id,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(comment_dto(comment)))
}

/// Edits a comment's text (its author only, while they may see the post).
#[utoipa::path(patch, path = "/content/api/comment/{id}/", tag = "catalog", request_body = CommentBody,
    params(("id" = i64, Path)), security(("token" = []), ("jwt" = [])),
    responses((status = 200, body = CommentDto), (status = 400), (status = 401),
        (status = 403, description = "not the author, or post locked"), (status = 404)))]
pub async fn update_comment(
    db: web::Data<Db>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<CommentBody>,
) -> Result<HttpResponse, ApiError> {
    let (id, me, text) = (id.into_inner(), user.user_id, body.into_inner().text);
    let comment = db
        .tx(move |c| {
            Ok(oasis_catalog::edit_comment(
                &mut PgCatalog(c),
                me,
                id,
                text,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(comment_dto(comment)))
}

/// Deletes a comment (its author, or the post's creator).
#[utoipa::path(delete, path = "/content/api/comment/{id}/", tag = "catalog",
    params(("id" = i64, Path)), security(("token" = []), ("jwt" = [])),
    responses((status = 204), (status = 401),
        (status = 403, description = "neither author nor post creator, or post locked"), (status = 404)))]
pub async fn destroy_comment(
    db: web::Data<Db>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (id, me) = (id.into_inner(), user.user_id);
    db.tx(move |c| Ok(oasis_catalog::delete_comment(&mut PgCatalog(c), me, id)?))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
