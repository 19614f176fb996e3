use crate::media::MediaKind;
use oasis_kernel::{Currency, Timestamp};

/// A membership tier of a creator. Price is in minor units; 0 = the public (free) tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub id: i64,
    pub creator_id: i64,
    pub name: String,
    pub description: String,
    pub price: i64,
    /// The yearly price beside the monthly `price` (minor units; `None` = monthly only).
    pub annual_price: Option<i64>,
    /// Days of free trial a fan's first membership of this creator starts with (0–31).
    pub trial_days: i64,
    pub currency: Currency,
    pub benefits: Vec<String>,
    pub is_active: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A validated new tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTier {
    pub name: String,
    pub description: String,
    pub price: i64,
    pub annual_price: Option<i64>,
    pub trial_days: i64,
    pub currency: Currency,
    pub benefits: Vec<String>,
    pub is_active: bool,
}

/// A validated partial update of a tier (`None` = unchanged). A price change applies to new
/// members only: billing keeps the price each membership was bought at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TierChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub price: Option<i64>,
    /// `Some(None)` removes the yearly price (new yearly checkouts stop; existing yearly
    /// memberships keep theirs).
    pub annual_price: Option<Option<i64>>,
    pub trial_days: Option<i64>,
    pub currency: Option<Currency>,
    pub benefits: Option<Vec<String>>,
    pub is_active: Option<bool>,
}

/// Who owns a post and which tiers unlock it: all the visibility rule needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostGate {
    pub id: i64,
    pub creator_id: i64,
    pub tier_ids: Vec<i64>,
}

/// A validated new post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPost {
    pub title: String,
    pub body: String,
    pub tier_ids: Vec<i64>,
    pub attachment_ids: Vec<i64>,
}

/// A validated partial update of a post (`None` = unchanged; `Some(vec![])` clears).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostChanges {
    pub title: Option<String>,
    pub body: Option<String>,
    pub tier_ids: Option<Vec<i64>>,
    pub attachment_ids: Option<Vec<i64>>,
}

/// A file attached to a post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub media_id: i64,
    pub kind: MediaKind,
    pub content_type: String,
    pub size: i64,
    pub filename: String,
}

/// A post as stored, with its counters for one viewer, before the visibility rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostRecord {
    pub id: i64,
    pub creator_id: i64,
    pub title: String,
    pub body: String,
    pub tier_ids: Vec<i64>,
    pub attachments: Vec<Attachment>,
    pub like_count: i64,
    pub comment_count: i64,
    pub liked_by_me: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Like {
    pub id: i64,
    pub post_id: i64,
    pub user_id: i64,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: i64,
    pub post_id: i64,
    pub user_id: i64,
    /// The author's username (joined by the adapter, for display).
    pub username: String,
    pub text: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// An uploaded file (bytes stored by content hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub id: i64,
    pub owner_id: i64,
    pub sha256: String,
    pub kind: MediaKind,
    pub content_type: String,
    pub size: i64,
    pub filename: String,
    pub created_at: Timestamp,
}
