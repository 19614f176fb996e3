//! The repository contract: behaviour every implementation of the catalog repositories must
//! have. It runs against the in-memory fake (unit tests) and against PostgreSQL
//! (`tests/api/catalog.rs`), so the two cannot drift. Panics on the first violation.
//!
//! The caller passes three distinct existing user ids; nothing else needs to exist.
use crate::model::*;
use crate::ports::*;
use oasis_kernel::Currency;
use std::collections::HashSet;

fn new_tier(name: &str, price: i64) -> NewTier {
    NewTier {
        name: name.into(),
        description: "desc".into(),
        price,
        annual_price: None,
        trial_days: 0,
        currency: Currency::Usd,
        benefits: vec!["one".into(), "two".into()],
        is_active: true,
    }
}

fn set(v: &[i64]) -> HashSet<i64> {
    v.iter().copied().collect()
}

/// Runs every part of the contract.
pub fn run_all<R: TierRepo + PostRepo + EngagementRepo>(repo: &mut R, a: i64, b: i64, c: i64) {
    tiers(repo, a, b);
    posts(repo, a, b);
    engagement(repo, a, b, c);
}

pub fn tiers<R: TierRepo>(repo: &mut R, a: i64, b: i64) {
    let gold = repo.insert_tier(a, &new_tier("Gold", 1_000)).unwrap();
    assert_eq!(gold.creator_id, a);
    assert_eq!(gold.name, "Gold");
    assert_eq!(gold.currency, Currency::Usd);
    assert_eq!(gold.benefits, vec!["one".to_owned(), "two".to_owned()]);
    assert!(gold.is_active);
    assert_eq!(repo.find_tier(gold.id).unwrap(), Some(gold.clone()));
    assert_eq!(repo.find_tier(-1).unwrap(), None);

    // Partial update: only the given fields change.
    let changed = repo
        .update_tier(
            gold.id,
            &TierChanges {
                price: Some(2_000),
                is_active: Some(false),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(changed.price, 2_000);
    assert_eq!(changed.annual_price, None, "unchanged");
    assert!(!changed.is_active);
    let yearly = repo
        .update_tier(
            gold.id,
            &TierChanges {
                annual_price: Some(Some(20_000)),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!((yearly.price, yearly.annual_price), (2_000, Some(20_000)));
    let monthly_only = repo
        .update_tier(
            gold.id,
            &TierChanges {
                annual_price: Some(None),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        monthly_only.annual_price, None,
        "an explicit null removes it"
    );
    assert_eq!(changed.name, "Gold");
    assert_eq!(changed.benefits, gold.benefits);

    // One active free tier per creator, reported on the named constraint.
    let free = repo.insert_tier(a, &new_tier("Free", 0)).unwrap();
    let err = repo.insert_tier(a, &new_tier("Free 2", 0)).unwrap_err();
    assert!(err.is_conflict_on("tiers_one_free_tier_key"), "{err:?}");
    repo.insert_tier(b, &new_tier("B free", 0)).unwrap();
    repo.update_tier(
        free.id,
        &TierChanges {
            is_active: Some(false),
            ..Default::default()
        },
    )
    .unwrap();
    repo.insert_tier(a, &new_tier("Free again", 0)).unwrap();

    let owners = repo.tier_creators(&[gold.id, free.id, -5]).unwrap();
    assert_eq!(owners.len(), 2);
    assert_eq!(owners[&gold.id], a);
    assert_eq!(repo.posts_gated_by(gold.id).unwrap(), 0);
    repo.delete_tier(free.id).unwrap();
    assert_eq!(repo.find_tier(free.id).unwrap(), None);
}

pub fn posts<R: TierRepo + PostRepo>(repo: &mut R, a: i64, _b: i64) {
    let t1 = repo.insert_tier(a, &new_tier("P1", 1_000)).unwrap();
    let t2 = repo.insert_tier(a, &new_tier("P2", 3_000)).unwrap();
    let id = repo.insert_post(a, "title", "body").unwrap();
    let gate = repo.find_post_gate(id).unwrap().unwrap();
    assert_eq!(gate.creator_id, a);
    assert!(gate.tier_ids.is_empty(), "new posts are public");
    repo.set_post_tiers(id, &[t1.id, t2.id]).unwrap();
    let gate = repo.find_post_gate(id).unwrap().unwrap();
    assert_eq!(set(&gate.tier_ids), set(&[t1.id, t2.id]));
    assert_eq!(repo.posts_gated_by(t1.id).unwrap(), 1);
    // Replacing keeps exactly the given tiers.
    repo.set_post_tiers(id, &[t2.id]).unwrap();
    assert_eq!(
        repo.find_post_gate(id).unwrap().unwrap().tier_ids,
        vec![t2.id]
    );
    repo.remove_post_tiers(id, &[t1.id, t2.id]).unwrap();
    assert!(repo
        .find_post_gate(id)
        .unwrap()
        .unwrap()
        .tier_ids
        .is_empty());
    repo.update_post(id, Some("new title"), None).unwrap();
    repo.update_post(id, None, None).unwrap();
    assert!(repo.media_owners(&[-1]).unwrap().is_empty());
    repo.delete_post(id).unwrap();
    assert_eq!(repo.find_post_gate(id).unwrap(), None);
}

pub fn engagement<R: PostRepo + EngagementRepo>(repo: &mut R, a: i64, b: i64, c: i64) {
    let post = repo.insert_post(a, "t", "b").unwrap();
    let (l1, created) = repo.like(post, b).unwrap();
    assert!(created);
    assert_eq!((l1.post_id, l1.user_id), (post, b));
    let (l2, created) = repo.like(post, b).unwrap();
    assert!(!created, "a second like is not created");
    assert_eq!(l2.id, l1.id);
    let (l3, created) = repo.like(post, c).unwrap();
    assert!(created);
    assert_ne!(l3.id, l1.id);
    assert_eq!(repo.find_like(l1.id).unwrap(), Some(l1.clone()));
    repo.delete_like(l1.id).unwrap();
    assert_eq!(repo.find_like(l1.id).unwrap(), None);
    let (again, created) = repo.like(post, b).unwrap();
    assert!(created, "liking again after unliking creates a new like");
    assert_ne!(again.id, l1.id);

    let cm = repo.insert_comment(post, c, "hello").unwrap();
    assert_eq!(
        (cm.post_id, cm.user_id, cm.text.as_str()),
        (post, c, "hello")
    );
    assert!(!cm.username.is_empty());
    let edited = repo.update_comment(cm.id, "edited").unwrap();
    assert_eq!(edited.text, "edited");
    assert_eq!(edited.created_at, cm.created_at);
    assert_eq!(repo.find_comment(cm.id).unwrap(), Some(edited));
    repo.delete_comment(cm.id).unwrap();
    assert_eq!(repo.find_comment(cm.id).unwrap(), None);
    repo.delete_post(post).unwrap();
}
