//! An in-memory [`FollowRepo`] for unit tests (it honours [`crate::contract`]).
use crate::follow::{FollowRepo, FollowTarget};
use oasis_kernel::RepoError;
use std::collections::{HashMap, HashSet};

#[derive(Debug, Default)]
pub struct MemoryFollows {
    /// Active users: id → is_creator.
    pub users: HashMap<i64, bool>,
    pub follows: HashSet<(i64, i64)>,
}

impl MemoryFollows {
    pub fn with_users(users: &[(i64, bool)]) -> Self {
        Self {
            users: users.iter().copied().collect(),
            follows: HashSet::new(),
        }
    }
}

impl FollowRepo for MemoryFollows {
    fn find_target(&mut self, id: i64) -> Result<Option<FollowTarget>, RepoError> {
        Ok(self
            .users
            .get(&id)
            .map(|&is_creator| FollowTarget { id, is_creator }))
    }
    fn insert_follow(&mut self, follower_id: i64, creator_id: i64) -> Result<bool, RepoError> {
        if follower_id == creator_id {
            // The table's CHECK constraint.
            return Err(RepoError::Conflict {
                constraint: "follows_not_self".into(),
            });
        }
        Ok(self.follows.insert((follower_id, creator_id)))
    }
    fn delete_follow(&mut self, follower_id: i64, creator_id: i64) -> Result<bool, RepoError> {
        Ok(self.follows.remove(&(follower_id, creator_id)))
    }
    fn is_following(&mut self, follower_id: i64, creator_id: i64) -> Result<bool, RepoError> {
        Ok(self.follows.contains(&(follower_id, creator_id)))
    }
}
