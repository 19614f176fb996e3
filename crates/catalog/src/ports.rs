//! Repository traits (implemented over PostgreSQL in `oasis-db`) and the ports billing answers.
use crate::model::*;
use oasis_kernel::RepoError;
use std::collections::{HashMap, HashSet};

/// Which tiers a user currently holds access to ("holds access" is billing's definition:
/// an active or paid-up membership, or the creator's free tier joined). Implemented by the billing
/// adapter over its memberships.
pub trait TierAccess {
    /// The subset of `tier_ids` that `user_id` currently holds access to.
    fn tiers_with_access(
        &mut self,
        user_id: i64,
        tier_ids: &[i64],
    ) -> Result<HashSet<i64>, RepoError>;
}

/// How many members currently pay for each tier (billing answers; missing ids = 0).
pub trait TierMembers {
    fn paying_member_counts(&mut self, tier_ids: &[i64]) -> Result<HashMap<i64, i64>, RepoError>;
}

pub trait TierRepo {
    /// Unique violation `tiers_one_free_tier_key` when the creator already has an active free tier.
    /// After a reported conflict the repository stays usable (the adapter uses a savepoint).
    fn insert_tier(&mut self, creator_id: i64, tier: &NewTier) -> Result<Tier, RepoError>;
    fn find_tier(&mut self, id: i64) -> Result<Option<Tier>, RepoError>;
    fn update_tier(&mut self, id: i64, changes: &TierChanges) -> Result<Tier, RepoError>;
    fn delete_tier(&mut self, id: i64) -> Result<(), RepoError>;
    /// The creator of each existing tier among `ids`.
    fn tier_creators(&mut self, ids: &[i64]) -> Result<HashMap<i64, i64>, RepoError>;
    /// How many posts a tier gates.
    fn posts_gated_by(&mut self, tier_id: i64) -> Result<i64, RepoError>;
}

pub trait PostRepo {
    fn insert_post(&mut self, creator_id: i64, title: &str, body: &str) -> Result<i64, RepoError>;
    /// The post's creator and tiers.
    fn find_post_gate(&mut self, id: i64) -> Result<Option<PostGate>, RepoError>;
    fn update_post(
        &mut self,
        id: i64,
        title: Option<&str>,
        body: Option<&str>,
    ) -> Result<(), RepoError>;
    /// Replaces the post's tiers.
    fn set_post_tiers(&mut self, id: i64, tier_ids: &[i64]) -> Result<(), RepoError>;
    fn remove_post_tiers(&mut self, id: i64, tier_ids: &[i64]) -> Result<(), RepoError>;
    /// Replaces the post's attachments (in order).
    fn set_post_attachments(&mut self, id: i64, media_ids: &[i64]) -> Result<(), RepoError>;
    fn delete_post(&mut self, id: i64) -> Result<(), RepoError>;
    /// The owner of each existing media row among `ids`.
    fn media_owners(&mut self, ids: &[i64]) -> Result<HashMap<i64, i64>, RepoError>;
}

pub trait EngagementRepo {
    /// Inserts the like unless the user already likes the post (no error, also under concurrent
    /// calls); returns the like and whether it was created now.
    fn like(&mut self, post_id: i64, user_id: i64) -> Result<(Like, bool), RepoError>;
    fn find_like(&mut self, id: i64) -> Result<Option<Like>, RepoError>;
    fn delete_like(&mut self, id: i64) -> Result<(), RepoError>;
    fn insert_comment(
        &mut self,
        post_id: i64,
        user_id: i64,
        text: &str,
    ) -> Result<Comment, RepoError>;
    fn find_comment(&mut self, id: i64) -> Result<Option<Comment>, RepoError>;
    fn update_comment(&mut self, id: i64, text: &str) -> Result<Comment, RepoError>;
    fn delete_comment(&mut self, id: i64) -> Result<(), RepoError>;
}
