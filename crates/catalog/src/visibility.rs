//! THE visibility rule. Every place that shows a post, its body, attachments, likes or comments
//! (posts, feed, search, comments, attachments, notifications) decides with [`can_view`].
use crate::model::{Attachment, PostRecord};
use oasis_kernel::Timestamp;
use std::collections::HashSet;

/// May `viewer` see the body and attachments of a post by `post_creator` gated by `post_tier_ids`?
///
/// Yes when the post is public (no tiers), the viewer is its creator, or the viewer holds access
/// to at least one of its tiers (`viewer_tiers_with_access`, from [`crate::TierAccess`]; it may
/// contain other tiers too). Anonymous viewers see public posts only.
pub fn can_view(
    post_creator: i64,
    post_tier_ids: &[i64],
    viewer: Option<i64>,
    viewer_tiers_with_access: &HashSet<i64>,
) -> bool {
    if post_tier_ids.is_empty() {
        return true;
    }
    match viewer {
        None => false,
        Some(v) if v == post_creator => true,
        Some(_) => post_tier_ids
            .iter()
            .any(|t| viewer_tiers_with_access.contains(t)),
    }
}

/// A post as one viewer may see it. When `locked`, `body` is `None` and attachments keep only
/// their id, kind, type and size (no file name, and the HTTP layer gives no URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostView {
    pub id: i64,
    pub creator_id: i64,
    pub title: String,
    pub body: Option<String>,
    pub tier_ids: Vec<i64>,
    pub attachments: Vec<Attachment>,
    pub like_count: i64,
    pub comment_count: i64,
    pub liked_by_me: bool,
    pub locked: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl PostView {
    /// Applies [`can_view`] to a loaded post.
    pub fn for_viewer(
        post: PostRecord,
        viewer: Option<i64>,
        viewer_tiers_with_access: &HashSet<i64>,
    ) -> Self {
        let visible = can_view(
            post.creator_id,
            &post.tier_ids,
            viewer,
            viewer_tiers_with_access,
        );
        let attachments = if visible {
            post.attachments
        } else {
            post.attachments
                .into_iter()
                .map(|a| Attachment {
                    filename: String::new(),
                    ..a
                })
                .collect()
        };
        PostView {
            id: post.id,
            creator_id: post.creator_id,
            title: post.title,
            body: visible.then_some(post.body),
            tier_ids: post.tier_ids,
            attachments,
            like_count: post.like_count,
            comment_count: post.comment_count,
            liked_by_me: post.liked_by_me,
            locked: !visible,
            created_at: post.created_at,
            updated_at: post.updated_at,
        }
    }
}
