//! Follows: a fan (any user) follows a creator.
use crate::SocialError;
use oasis_kernel::RepoError;

/// What the follow rules need to know about the target user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowTarget {
    pub id: i64,
    pub is_creator: bool,
}

pub trait FollowRepo {
    /// The active user `id`, if any.
    fn find_target(&mut self, id: i64) -> Result<Option<FollowTarget>, RepoError>;
    /// Inserts the follow unless present (also under concurrent calls); true when created now.
    fn insert_follow(&mut self, follower_id: i64, creator_id: i64) -> Result<bool, RepoError>;
    /// Deletes the follow if present; true when one was deleted.
    fn delete_follow(&mut self, follower_id: i64, creator_id: i64) -> Result<bool, RepoError>;
    fn is_following(&mut self, follower_id: i64, creator_id: i64) -> Result<bool, RepoError>;
}

fn check_target(
    repo: &mut impl FollowRepo,
    follower: i64,
    creator: i64,
) -> Result<(), SocialError> {
    if follower == creator {
        return Err(SocialError::CannotFollowSelf);
    }
    let target = repo
        .find_target(creator)?
        .ok_or(SocialError::UserNotFound)?;
    if !target.is_creator {
        return Err(SocialError::NotACreator);
    }
    Ok(())
}

/// Makes `follower` follow `creator` (idempotent). Returns true when the follow is new.
pub fn follow(
    repo: &mut impl FollowRepo,
    follower: i64,
    creator: i64,
) -> Result<bool, SocialError> {
    check_target(repo, follower, creator)?;
    Ok(repo.insert_follow(follower, creator)?)
}

/// Makes `follower` stop following `creator` (idempotent). Returns true when a follow was removed.
pub fn unfollow(
    repo: &mut impl FollowRepo,
    follower: i64,
    creator: i64,
) -> Result<bool, SocialError> {
    check_target(repo, follower, creator)?;
    Ok(repo.delete_follow(follower, creator)?)
}

/// Whether `follower` follows `user` (false for yourself or a non-creator; 404 for nobody).
pub fn is_following(
    repo: &mut impl FollowRepo,
    follower: i64,
    user: i64,
) -> Result<bool, SocialError> {
    repo.find_target(user)?.ok_or(SocialError::UserNotFound)?;
    if follower == user {
        return Ok(false);
    }
    Ok(repo.is_following(follower, user)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::MemoryFollows;

    fn fake() -> MemoryFollows {
        MemoryFollows::with_users(&[(1, false), (2, true), (3, false)])
    }

    #[test]
    fn fake_honours_the_contract() {
        crate::contract::run_all(&mut fake(), 2, 1, 3, 99);
    }

    #[test]
    fn follow_is_idempotent_and_unfollow_too() {
        let mut r = fake();
        assert!(follow(&mut r, 1, 2).unwrap());
        assert!(!follow(&mut r, 1, 2).unwrap());
        assert!(is_following(&mut r, 1, 2).unwrap());
        assert!(unfollow(&mut r, 1, 2).unwrap());
        assert!(!unfollow(&mut r, 1, 2).unwrap());
        assert!(!is_following(&mut r, 1, 2).unwrap());
    }

    #[test]
    fn self_non_creator_and_missing_are_refused() {
        let mut r = fake();
        assert!(matches!(
            follow(&mut r, 2, 2),
            Err(SocialError::CannotFollowSelf)
        ));
        assert!(matches!(
            follow(&mut r, 1, 3),
            Err(SocialError::NotACreator)
        ));
        assert!(matches!(
            follow(&mut r, 1, 99),
            Err(SocialError::UserNotFound)
        ));
        assert!(matches!(
            unfollow(&mut r, 1, 3),
            Err(SocialError::NotACreator)
        ));
        assert!(!is_following(&mut r, 1, 3).unwrap());
        assert!(!is_following(&mut r, 2, 2).unwrap());
        assert!(r.follows.is_empty());
    }
}
