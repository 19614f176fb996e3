//! Wire shapes (DRF field names) of the catalog routes.
use super::links::MediaLinks;
use chrono::{DateTime, Utc};
use oasis_catalog::{Comment, Like, Media, PostView, Tier, TierInput};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A membership tier.
#[derive(Debug, Serialize, ToSchema)]
pub struct TierDto {
    pub id: i64,
    /// Creator (user id).
    pub creator: i64,
    pub name: String,
    pub description: String,
    /// Minor units (paise, cents); 0 = the creator's public (free) tier.
    pub price: i64,
    /// The yearly price (minor units) beside the monthly `price`; null = monthly only.
    pub annual_price: Option<i64>,
    /// Days of free trial a fan's first membership of this creator starts with (0–31; 0 = none).
    pub trial_days: i64,
    /// `INR` or `USD`.
    pub currency: String,
    pub benefits: Vec<String>,
    /// false = no new members (existing members keep access until their paid period ends).
    pub is_active: bool,
    /// Members currently holding a paid membership of this tier.
    pub subscriber_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub fn tier_dto(t: Tier, subscriber_count: i64) -> TierDto {
    TierDto {
        id: t.id,
        creator: t.creator_id,
        name: t.name,
        description: t.description,
        price: t.price,
        annual_price: t.annual_price,
        trial_days: t.trial_days,
        currency: t.currency.code().to_owned(),
        benefits: t.benefits,
        is_active: t.is_active,
        subscriber_count,
        created_at: t.created_at,
        updated_at: t.updated_at,
    }
}

/// Tier fields: all required on create except `description` (""), `annual_price` (null),
/// `currency` (INR), `benefits` ([]) and `is_active` (true); any subset on PATCH.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct TierBody {
    pub name: Option<String>,
    pub description: Option<String>,
    pub price: Option<i64>,
    /// Yearly price in minor units (a paid tier only); null removes it (monthly only).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub annual_price: Option<Option<i64>>,
    /// Free trial days, 0–31 (a paid tier only; default 0): a fan's first membership of the
    /// creator is charged first at the trial's end.
    pub trial_days: Option<i64>,
    pub currency: Option<String>,
    pub benefits: Option<Vec<String>>,
    pub is_active: Option<bool>,
}

impl From<TierBody> for TierInput {
    fn from(b: TierBody) -> Self {
        TierInput {
            name: b.name,
            description: b.description,
            price: b.price,
            annual_price: b.annual_price,
            trial_days: b.trial_days,
            currency: b.currency,
            benefits: b.benefits,
            is_active: b.is_active,
        }
    }
}

/// Absent = `None` (unchanged), `null` = `Some(None)`.
fn double_option<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

#[derive(Serialize, ToSchema)]
pub struct TierPage {
    pub count: i64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<TierDto>,
}

/// A file attached to a post. `url` and `filename` are null when the post is locked.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttachmentDto {
    /// Media id.
    pub id: i64,
    /// `image` or `attachment`.
    pub kind: String,
    pub content_type: String,
    pub size: i64,
    pub filename: Option<String>,
    /// Short-lived signed download URL, bound to the viewer; stops working when it expires or
    /// when the viewer loses access to the post.
    pub url: Option<String>,
}

/// A post as the caller may see it. Locked posts (gated by tiers the caller holds no access to)
/// keep `title` and `tiers` but have `body: null` and no attachment URLs.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PostDto {
    pub id: i64,
    /// Creator (user id).
    pub creator: i64,
    pub title: String,
    pub body: Option<String>,
    /// Tier ids that unlock the post; empty = public.
    pub tiers: Vec<i64>,
    pub attachments: Vec<AttachmentDto>,
    pub like_count: i64,
    pub comment_count: i64,
    pub liked_by_me: bool,
    pub locked: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Renders a post view (from `oasis_db::catalog::load_post_views`) for JSON output; `links`
/// signs attachment URLs for the same viewer the view was loaded for.
pub fn post_dto(view: PostView, links: &MediaLinks) -> PostDto {
    let locked = view.locked;
    PostDto {
        id: view.id,
        creator: view.creator_id,
        title: view.title,
        body: view.body,
        tiers: view.tier_ids,
        attachments: view
            .attachments
            .into_iter()
            .map(|a| AttachmentDto {
                id: a.media_id,
                kind: a.kind.as_str().to_owned(),
                content_type: a.content_type,
                size: a.size,
                filename: (!locked).then_some(a.filename),
                url: (!locked).then(|| links.url(a.media_id)),
            })
            .collect(),
        like_count: view.like_count,
        comment_count: view.comment_count,
        liked_by_me: view.liked_by_me,
        locked,
        created_at: view.created_at,
        updated_at: view.updated_at,
    }
}

/// Post fields: `title` required on create; `tiers` (ids of the creator's tiers, [] = public)
/// and `attachments` (ids of the creator's media), when given, replace the current ones.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PostBody {
    pub title: Option<String>,
    pub body: Option<String>,
    pub tiers: Option<Vec<i64>>,
    pub attachments: Option<Vec<i64>>,
}

#[derive(Serialize, ToSchema)]
pub struct PostPage {
    pub count: i64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<PostDto>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RemoveTiersBody {
    pub tiers: Option<Vec<i64>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LikeDto {
    pub id: i64,
    pub post: i64,
    pub user: i64,
    pub created_at: DateTime<Utc>,
}

pub fn like_dto(l: Like) -> LikeDto {
    LikeDto {
        id: l.id,
        post: l.post_id,
        user: l.user_id,
        created_at: l.created_at,
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct LikeBody {
    pub post: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct LikePage {
    pub count: i64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<LikeDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommentDto {
    pub id: i64,
    pub post: i64,
    /// Author (user id).
    pub user: i64,
    pub username: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub fn comment_dto(c: Comment) -> CommentDto {
    CommentDto {
        id: c.id,
        post: c.post_id,
        user: c.user_id,
        username: c.username,
        text: c.text,
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

/// `post` and `text` (1–5000 characters) on create; `text` on PATCH.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CommentBody {
    pub post: Option<i64>,
    pub text: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CommentPage {
    pub count: i64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<CommentDto>,
}

/// An uploaded file.
#[derive(Debug, Serialize, ToSchema)]
pub struct MediaDto {
    pub id: i64,
    /// Uploader (user id).
    pub owner: i64,
    /// `image` or `attachment`.
    pub kind: String,
    /// Recognised from the content, not the name.
    pub content_type: String,
    pub size: i64,
    /// SHA-256 of the content (hex).
    pub sha256: String,
    pub filename: String,
    /// Signed download URL for the caller (expires; bound to the caller).
    pub url: String,
    /// Stable, unsigned URL of the file: served to anyone while the file is its uploader's
    /// `profile_pic` (set it there) or attached to a public post; otherwise only with the
    /// credentials of the uploader or of someone who may see a post it is attached to.
    pub file: String,
    pub created_at: DateTime<Utc>,
}

pub fn media_dto(m: Media, links: &MediaLinks) -> MediaDto {
    MediaDto {
        url: links.url(m.id),
        file: links.plain_url(m.id),
        id: m.id,
        owner: m.owner_id,
        kind: m.kind.as_str().to_owned(),
        content_type: m.content_type,
        size: m.size,
        sha256: m.sha256,
        filename: m.filename,
        created_at: m.created_at,
    }
}

/// `multipart/form-data` with one file part named `file`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// JPEG/PNG/WebP/GIF image (≤ OASIS_MAX_IMAGE_BYTES) or PDF/ZIP/audio attachment
    /// (≤ OASIS_MAX_ATTACHMENT_BYTES).
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}
