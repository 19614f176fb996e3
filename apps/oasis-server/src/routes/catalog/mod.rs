//! `catalog` routes: `/content/api/...` — tiers, posts gated by tiers, likes, comments, media.
//!
//! DRF ModelViewSet conventions: `GET` list (paginated `{"count","next","previous","results"}`),
//! `POST` create, `GET/PATCH/DELETE <id>/`, with or without the trailing slash.
//! Every read of a post, its comments, likes or attachments goes through the domain's
//! visibility rule (`oasis_catalog::can_view`).
use crate::context::AppContext;
use crate::error::ApiError;
use crate::web;
use actix_web::http::StatusCode;
use oasis_catalog::CatalogError;
use oasis_kernel::PageRequest;
use serde::Deserialize;

mod dto;
mod engagement;
mod links;
mod media;
mod posts;
mod tiers;

pub use dto::{post_dto, tier_dto, AttachmentDto, PostDto, TierDto};
pub use links::MediaLinks;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        tiers::list, tiers::create, tiers::retrieve, tiers::update, tiers::destroy,
        posts::list, posts::create, posts::retrieve, posts::update, posts::destroy,
        posts::remove_tiers,
        engagement::list_likes, engagement::create_like, engagement::retrieve_like,
        engagement::destroy_like,
        engagement::list_comments, engagement::create_comment, engagement::retrieve_comment,
        engagement::update_comment, engagement::destroy_comment,
        media::upload, media::retrieve, media::download,
    ),
    components(schemas(
        dto::TierDto, dto::TierBody, dto::TierPage, dto::PostDto, dto::AttachmentDto,
        dto::PostBody, dto::PostPage, dto::RemoveTiersBody, dto::LikeDto, dto::LikeBody,
        dto::LikePage, dto::CommentDto, dto::CommentBody, dto::CommentPage, dto::MediaDto,
        dto::UploadForm,
    )),
    tags((name = "catalog", description = "Tiers, posts gated by tiers, likes, comments, media"))
)]
pub struct ApiDoc;

pub fn config(cfg: &mut web::ServiceConfig, _ctx: &AppContext) {
    cfg.service(
        web::resource("/content/api/tiers")
            .route(web::get().to(tiers::list))
            .route(web::post().to(tiers::create)),
    )
    .service(
        web::resource("/content/api/tiers/{id}")
            .route(web::get().to(tiers::retrieve))
            .route(web::patch().to(tiers::update))
            .route(web::delete().to(tiers::destroy)),
    )
    .service(
        web::resource("/content/api/content")
            .route(web::get().to(posts::list))
            .route(web::post().to(posts::create)),
    )
    .service(
        web::resource("/content/api/content/{id}")
            .route(web::get().to(posts::retrieve))
            .route(web::patch().to(posts::update))
            .route(web::delete().to(posts::destroy)),
    )
    .service(
        web::resource("/content/api/remove-tiers/{id}")
            .route(web::delete().to(posts::remove_tiers)),
    )
    .service(
        web::resource("/content/api/likes")
            .route(web::get().to(engagement::list_likes))
            .route(web::post().to(engagement::create_like)),
    )
    .service(
        web::resource("/content/api/likes/{id}")
            .route(web::get().to(engagement::retrieve_like))
            .route(web::delete().to(engagement::destroy_like)),
    )
    .service(
        web::resource("/content/api/comment")
            .route(web::get().to(engagement::list_comments))
            .route(web::post().to(engagement::create_comment)),
    )
    .service(
        web::resource("/content/api/comment/{id}")
            .route(web::get().to(engagement::retrieve_comment))
            .route(web::patch().to(engagement::update_comment))
            .route(web::delete().to(engagement::destroy_comment)),
    )
    .service(web::resource("/content/api/media").route(web::post().to(media::upload)))
    .service(web::resource("/content/api/media/{id}").route(web::get().to(media::retrieve)))
    .service(web::resource("/content/api/media/{id}/file").route(web::get().to(media::download)));
}

/// The one place catalog errors become HTTP errors.
impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Invalid(f) => ApiError::Validation(f),
            CatalogError::NotFound => ApiError::not_found(),
            CatalogError::NotOwner => {
                ApiError::forbidden("You do not have permission to perform this action.")
            }
            CatalogError::Locked => ApiError::detail(
                StatusCode::FORBIDDEN,
                "post_locked",
                "This post is for members of its tiers only.",
            ),
            CatalogError::TierHasMembers(n) => ApiError::conflict(
                "tier_has_members",
                format!(
                    "This tier has {n} paying member(s) and cannot be deleted; deactivate it instead (is_active: false)."
                ),
            ),
            CatalogError::TierInUse(n) => ApiError::conflict(
                "tier_in_use",
                format!(
                    "This tier gates {n} post(s); remove it from them first, or deactivate it (is_active: false)."
                ),
            ),
            CatalogError::Repo(e) => e.into(),
        }
    }
}

/// `?page=&page_size=` plus the list filters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Filter by creator (user id).
    pub creator: Option<i64>,
    /// Filter by post id (likes, comments).
    pub post: Option<i64>,
    /// 1-based page number.
    pub page: Option<i64>,
    /// Items per page (1–`OASIS_MAX_PAGE_SIZE`, 100 by default; default 10).
    pub page_size: Option<i64>,
}

impl ListQuery {
    pub fn page(&self, req: &actix_web::HttpRequest) -> Result<PageRequest, ApiError> {
        crate::pagination::page_request(req, self.page, self.page_size)
    }
}

pub use crate::pagination::{paginated, Paginated};
