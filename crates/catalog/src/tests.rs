use crate::*;
use std::collections::HashSet;

fn set(ids: &[i64]) -> HashSet<i64> {
    ids.iter().copied().collect()
}

#[test]
fn public_posts_are_visible_to_everyone() {
    assert!(can_view(1, &[], None, &set(&[])));
    assert!(can_view(1, &[], Some(2), &set(&[])));
}

#[test]
fn gated_posts_need_creator_or_access() {
    let tiers = [10, 11];
    assert!(!can_view(1, &tiers, None, &set(&[10])), "anonymous");
    assert!(can_view(1, &tiers, Some(1), &set(&[])), "owner");
    assert!(can_view(1, &tiers, Some(2), &set(&[11])), "entitled");
    assert!(!can_view(1, &tiers, Some(2), &set(&[12])), "other tier");
    assert!(!can_view(1, &tiers, Some(2), &set(&[])), "nothing");
}
