//! The repository contract: behaviour every [`FollowRepo`] must have. It runs against the
//! in-memory fake (unit tests) and against PostgreSQL (`tests/api/social.rs`), so the two cannot
//! drift. Panics on the first violation.
//!
//! The caller passes an existing creator, two existing non-creators and an id nobody has.
use crate::follow::{FollowRepo, FollowTarget};

pub fn run_all<R: FollowRepo>(repo: &mut R, creator: i64, fan: i64, other: i64, missing: i64) {
    targets(repo, creator, fan, missing);
    follows(repo, creator, fan, other);
}

pub fn targets<R: FollowRepo>(repo: &mut R, creator: i64, fan: i64, missing: i64) {
    assert_eq!(
        repo.find_target(creator).unwrap(),
        Some(FollowTarget {
            id: creator,
            is_creator: true
        })
    );
    assert_eq!(
        repo.find_target(fan).unwrap(),
        Some(FollowTarget {
            id: fan,
            is_creator: false
        })
    );
    assert_eq!(repo.find_target(missing).unwrap(), None);
}

pub fn follows<R: FollowRepo>(repo: &mut R, creator: i64, fan: i64, other: i64) {
    assert!(!repo.is_following(fan, creator).unwrap());
    assert!(repo.insert_follow(fan, creator).unwrap(), "created");
    assert!(!repo.insert_follow(fan, creator).unwrap(), "already there");
    assert!(repo.is_following(fan, creator).unwrap());
    // Directional, per follower.
    assert!(!repo.is_following(creator, fan).unwrap());
    assert!(!repo.is_following(other, creator).unwrap());
    assert!(repo.insert_follow(other, creator).unwrap());
    assert!(repo.delete_follow(fan, creator).unwrap(), "deleted");
    assert!(
        !repo.delete_follow(fan, creator).unwrap(),
        "nothing left to delete"
    );
    assert!(!repo.is_following(fan, creator).unwrap());
    assert!(
        repo.is_following(other, creator).unwrap(),
        "others untouched"
    );
    assert!(repo.delete_follow(other, creator).unwrap());
}
