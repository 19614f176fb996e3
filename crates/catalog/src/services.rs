//! Catalog use cases over the repository traits. Each is meant to run inside one transaction.
use crate::error::CatalogError;
use crate::model::*;
use crate::ports::*;
use crate::validate::*;
use crate::visibility::can_view;
use oasis_kernel::{FieldErrors, RepoError};
use std::collections::HashSet;

fn free_tier_conflict(e: RepoError) -> CatalogError {
    if e.is_conflict_on("tiers_one_free_tier_key") {
        CatalogError::field(
            "price",
            "You already have an active free tier (price 0); deactivate it first.",
        )
    } else {
        e.into()
    }
}

/// A tier the caller owns; `NotFound` when missing, `NotOwner` when someone else's.
pub fn owned_tier(repo: &mut impl TierRepo, actor: i64, id: i64) -> Result<Tier, CatalogError> {
    let tier = repo.find_tier(id)?.ok_or(CatalogError::NotFound)?;
    if tier.creator_id != actor {
        return Err(CatalogError::NotOwner);
    }
    Ok(tier)
}

pub fn create_tier(
    repo: &mut impl TierRepo,
    creator: i64,
    input: TierInput,
) -> Result<Tier, CatalogError> {
    let new = validate_new_tier(input)?;
    repo.insert_tier(creator, &new).map_err(free_tier_conflict)
}

/// Owner-only partial update. Deactivating (`is_active: false`) stops new memberships; a price
/// change applies to new members only (billing keeps each membership's own price).
pub fn update_tier(
    repo: &mut impl TierRepo,
    actor: i64,
    id: i64,
    input: TierInput,
) -> Result<Tier, CatalogError> {
    let tier = owned_tier(repo, actor, id)?;
    let changes = validate_tier_changes(&tier, input)?;
    repo.update_tier(id, &changes).map_err(free_tier_conflict)
}

/// Owner-only delete; refused while the tier has paying members or gates posts.
pub fn delete_tier<R: TierRepo + TierMembers>(
    repo: &mut R,
    actor: i64,
    id: i64,
) -> Result<(), CatalogError> {
    owned_tier(repo, actor, id)?;
    let members = repo
        .paying_member_counts(&[id])?
        .get(&id)
        .copied()
        .unwrap_or(0);
    if members > 0 {
        return Err(CatalogError::TierHasMembers(members));
    }
    let posts = repo.posts_gated_by(id)?;
    if posts > 0 {
        return Err(CatalogError::TierInUse(posts));
    }
    repo.delete_tier(id)?;
    Ok(())
}

/// Every id in `tier_ids` must be a tier of `creator` (400 on `tiers` otherwise).
fn check_tiers_belong(
    repo: &mut impl TierRepo,
    creator: i64,
    tier_ids: &[i64],
) -> Result<(), CatalogError> {
    if tier_ids.is_empty() {
        return Ok(());
    }
    let owners = repo.tier_creators(tier_ids)?;
    let mut errs = FieldErrors::new();
    for id in tier_ids {
        match owners.get(id) {
            None => errs.add(
                "tiers",
                format!("Invalid pk \"{id}\" - object does not exist."),
            ),
            Some(c) if *c != creator => errs.add(
                "tiers",
                format!("Tier {id} is not one of the post creator's tiers."),
            ),
            Some(_) => {}
        }
    }
    errs.into_result().map_err(Into::into)
}

/// Every id in `media_ids` must be media uploaded by `creator`.
fn check_media_belong(
    repo: &mut impl PostRepo,
    creator: i64,
    media_ids: &[i64],
) -> Result<(), CatalogError> {
    if media_ids.is_empty() {
        return Ok(());
    }
    let owners = repo.media_owners(media_ids)?;
    let mut errs = FieldErrors::new();
    for id in media_ids {
        if owners.get(id) != Some(&creator) {
            errs.add(
                "attachments",
                format!("Invalid pk \"{id}\" - object does not exist."),
            );
        }
    }
    errs.into_result().map_err(Into::into)
}

/// A post the caller owns; `NotFound` when missing, `NotOwner` when someone else's.
pub fn owned_post(repo: &mut impl PostRepo, actor: i64, id: i64) -> Result<PostGate, CatalogError> {
    let gate = repo.find_post_gate(id)?.ok_or(CatalogError::NotFound)?;
    if gate.creator_id != actor {
        return Err(CatalogError::NotOwner);
    }
    Ok(gate)
}

/// Creates a post; returns its id.
pub fn create_post<R: PostRepo + TierRepo>(
    repo: &mut R,
    creator: i64,
    input: PostInput,
) -> Result<i64, CatalogError> {
    let new = validate_new_post(input)?;
    check_tiers_belong(repo, creator, &new.tier_ids)?;
    check_media_belong(repo, creator, &new.attachment_ids)?;
    let id = repo.insert_post(creator, &new.title, &new.body)?;
    if !new.tier_ids.is_empty() {
        repo.set_post_tiers(id, &new.tier_ids)?;
    }
    if !new.attachment_ids.is_empty() {
        repo.set_post_attachments(id, &new.attachment_ids)?;
    }
    Ok(id)
}

/// Owner-only partial update (tiers and attachments, when given, replace the current ones).
pub fn update_post<R: PostRepo + TierRepo>(
    repo: &mut R,
    actor: i64,
    id: i64,
    input: PostInput,
) -> Result<(), CatalogError> {
    owned_post(repo, actor, id)?;
    let changes = validate_post_changes(input)?;
    if let Some(t) = &changes.tier_ids {
        check_tiers_belong(repo, actor, t)?;
    }
    if let Some(a) = &changes.attachment_ids {
        check_media_belong(repo, actor, a)?;
    }
    repo.update_post(id, changes.title.as_deref(), changes.body.as_deref())?;
    if let Some(t) = &changes.tier_ids {
        repo.set_post_tiers(id, t)?;
    }
    if let Some(a) = &changes.attachment_ids {
        repo.set_post_attachments(id, a)?;
    }
    Ok(())
}

/// Owner-only: removes `tier_ids` from the post. Unknown tiers or tiers of another creator → 400
/// and nothing changes; the creator's tiers that are not on the post are ignored.
pub fn remove_post_tiers<R: PostRepo + TierRepo>(
    repo: &mut R,
    actor: i64,
    id: i64,
    tier_ids: Option<Vec<i64>>,
) -> Result<(), CatalogError> {
    owned_post(repo, actor, id)?;
    let Some(tier_ids) = tier_ids else {
        return Err(CatalogError::field("tiers", "This field is required."));
    };
    if tier_ids.is_empty() {
        return Err(CatalogError::field("tiers", "This list may not be empty."));
    }
    let tier_ids = dedup_ids(&tier_ids);
    if tier_ids.len() > MAX_POST_TIERS {
        return Err(CatalogError::field(
            "tiers",
            format!("Ensure this field has no more than {MAX_POST_TIERS} elements."),
        ));
    }
    check_tiers_belong(repo, actor, &tier_ids)?;
    repo.remove_post_tiers(id, &tier_ids)?;
    Ok(())
}

pub fn delete_post(repo: &mut impl PostRepo, actor: i64, id: i64) -> Result<(), CatalogError> {
    owned_post(repo, actor, id)?;
    repo.delete_post(id)?;
    Ok(())
}

/// The post if `viewer` may see it: `NotFound` when missing, `Locked` when gated.
pub fn visible_post<R: PostRepo + TierAccess>(
    repo: &mut R,
    post_id: i64,
    viewer: Option<i64>,
) -> Result<PostGate, CatalogError> {
    let gate = repo
        .find_post_gate(post_id)?
        .ok_or(CatalogError::NotFound)?;
    let access = match viewer {
        Some(v) if !gate.tier_ids.is_empty() && v != gate.creator_id => {
            repo.tiers_with_access(v, &gate.tier_ids)?
        }
        _ => HashSet::new(),
    };
    if !can_view(gate.creator_id, &gate.tier_ids, viewer, &access) {
        return Err(CatalogError::Locked);
    }
    Ok(gate)
}

/// Like a post the user may see; a second like returns the first (`false` = not created now).
pub fn like_post<R: PostRepo + TierAccess + EngagementRepo>(
    repo: &mut R,
    user: i64,
    post_id: i64,
) -> Result<(Like, bool), CatalogError> {
    visible_post(repo, post_id, Some(user))?;
    Ok(repo.like(post_id, user)?)
}

/// A like is removed by its author only (others get `NotFound`: likes are not theirs to see by id).
pub fn unlike<R: EngagementRepo>(
    repo: &mut R,
    user: i64,
    like_id: i64,
) -> Result<(), CatalogError> {
    let like = repo.find_like(like_id)?.ok_or(CatalogError::NotFound)?;
    if like.user_id != user {
        return Err(CatalogError::NotOwner);
    }
    repo.delete_like(like_id)?;
    Ok(())
}

pub fn add_comment<R: PostRepo + TierAccess + EngagementRepo>(
    repo: &mut R,
    user: i64,
    post_id: i64,
    text: Option<String>,
) -> Result<Comment, CatalogError> {
    let text = validate_comment_text(text)?;
    visible_post(repo, post_id, Some(user))?;
    Ok(repo.insert_comment(post_id, user, &text)?)
}

/// A comment the viewer may read (its post must be visible to them).
pub fn visible_comment<R: PostRepo + TierAccess + EngagementRepo>(
    repo: &mut R,
    viewer: Option<i64>,
    id: i64,
) -> Result<(Comment, PostGate), CatalogError> {
    let c = repo.find_comment(id)?.ok_or(CatalogError::NotFound)?;
    let gate = visible_post(repo, c.post_id, viewer)?;
    Ok((c, gate))
}

/// Only the author edits a comment, and only while they may still see the post.
pub fn edit_comment<R: PostRepo + TierAccess + EngagementRepo>(
    repo: &mut R,
    user: i64,
    id: i64,
    text: Option<String>,
) -> Result<Comment, CatalogError> {
    let (c, _) = visible_comment(repo, Some(user), id)?;
    if c.user_id != user {
        return Err(CatalogError::NotOwner);
    }
    let text = validate_comment_text(text)?;
    Ok(repo.update_comment(id, &text)?)
}

/// The author or the post's creator deletes a comment.
pub fn delete_comment<R: PostRepo + TierAccess + EngagementRepo>(
    repo: &mut R,
    user: i64,
    id: i64,
) -> Result<(), CatalogError> {
    let c = repo.find_comment(id)?.ok_or(CatalogError::NotFound)?;
    let gate = repo
        .find_post_gate(c.post_id)?
        .ok_or(CatalogError::NotFound)?;
    if gate.creator_id == user {
        repo.delete_comment(id)?;
        return Ok(());
    }
    visible_post(repo, c.post_id, Some(user))?;
    if c.user_id != user {
        return Err(CatalogError::NotOwner);
    }
    repo.delete_comment(id)?;
    Ok(())
}
