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

// ---------------------------------------------------------------------------------------------
// Services over an in-memory fake repository.

use oasis_kernel::{Currency, RepoError};
use std::collections::HashMap;

#[derive(Default)]
struct Fake {
    tiers: HashMap<i64, Tier>,
    posts: HashMap<i64, (PostGate, String, String)>,
    media: HashMap<i64, i64>,
    attachments: HashMap<i64, Vec<i64>>,
    likes: Vec<Like>,
    comments: HashMap<i64, Comment>,
    access: HashMap<i64, HashSet<i64>>,
    members: HashMap<i64, i64>,
    next: i64,
}

fn now() -> oasis_kernel::Timestamp {
    oasis_kernel::Timestamp::default()
}

impl Fake {
    fn id(&mut self) -> i64 {
        self.next += 1;
        self.next
    }
}

impl TierAccess for Fake {
    fn tiers_with_access(&mut self, user: i64, ids: &[i64]) -> Result<HashSet<i64>, RepoError> {
        let held = self.access.get(&user).cloned().unwrap_or_default();
        Ok(ids.iter().copied().filter(|t| held.contains(t)).collect())
    }
}

impl TierMembers for Fake {
    fn paying_member_counts(&mut self, ids: &[i64]) -> Result<HashMap<i64, i64>, RepoError> {
        Ok(ids
            .iter()
            .filter_map(|i| self.members.get(i).map(|n| (*i, *n)))
            .collect())
    }
}

impl TierRepo for Fake {
    fn insert_tier(&mut self, creator_id: i64, t: &NewTier) -> Result<Tier, RepoError> {
        if t.price == 0
            && t.is_active
            && self
                .tiers
                .values()
                .any(|x| x.creator_id == creator_id && x.price == 0 && x.is_active)
        {
            return Err(RepoError::Conflict {
                constraint: "tiers_one_free_tier_key".into(),
            });
        }
        let id = self.id();
        let tier = Tier {
            id,
            creator_id,
            name: t.name.clone(),
            description: t.description.clone(),
            price: t.price,
            annual_price: t.annual_price,
            trial_days: t.trial_days,
            currency: t.currency,
            benefits: t.benefits.clone(),
            is_active: t.is_active,
            created_at: now(),
            updated_at: now(),
        };
        self.tiers.insert(id, tier.clone());
        Ok(tier)
    }
    fn find_tier(&mut self, id: i64) -> Result<Option<Tier>, RepoError> {
        Ok(self.tiers.get(&id).cloned())
    }
    fn update_tier(&mut self, id: i64, c: &TierChanges) -> Result<Tier, RepoError> {
        let t = self.tiers.get_mut(&id).ok_or(RepoError::NotFound)?;
        if let Some(p) = c.price {
            t.price = p;
        }
        if let Some(a) = c.annual_price {
            t.annual_price = a;
        }
        if let Some(d) = c.trial_days {
            t.trial_days = d;
        }
        if let Some(a) = c.is_active {
            t.is_active = a;
        }
        if let Some(n) = &c.name {
            t.name = n.clone();
        }
        Ok(t.clone())
    }
    fn delete_tier(&mut self, id: i64) -> Result<(), RepoError> {
        self.tiers.remove(&id);
        Ok(())
    }
    fn tier_creators(&mut self, ids: &[i64]) -> Result<HashMap<i64, i64>, RepoError> {
        Ok(ids
            .iter()
            .filter_map(|i| self.tiers.get(i).map(|t| (*i, t.creator_id)))
            .collect())
    }
    fn posts_gated_by(&mut self, tier_id: i64) -> Result<i64, RepoError> {
        Ok(self
            .posts
            .values()
            .filter(|(g, _, _)| g.tier_ids.contains(&tier_id))
            .count() as i64)
    }
}

impl PostRepo for Fake {
    fn insert_post(&mut self, creator_id: i64, title: &str, body: &str) -> Result<i64, RepoError> {
        let id = self.id();
        let gate = PostGate {
            id,
            creator_id,
            tier_ids: vec![],
        };
        self.posts.insert(id, (gate, title.into(), body.into()));
        Ok(id)
    }
    fn find_post_gate(&mut self, id: i64) -> Result<Option<PostGate>, RepoError> {
        Ok(self.posts.get(&id).map(|p| p.0.clone()))
    }
    fn update_post(&mut self, id: i64, t: Option<&str>, b: Option<&str>) -> Result<(), RepoError> {
        let p = self.posts.get_mut(&id).ok_or(RepoError::NotFound)?;
        if let Some(t) = t {
            p.1 = t.into();
        }
        if let Some(b) = b {
            p.2 = b.into();
        }
        Ok(())
    }
    fn set_post_tiers(&mut self, id: i64, tier_ids: &[i64]) -> Result<(), RepoError> {
        self.posts
            .get_mut(&id)
            .ok_or(RepoError::NotFound)?
            .0
            .tier_ids = tier_ids.to_vec();
        Ok(())
    }
    fn remove_post_tiers(&mut self, id: i64, tier_ids: &[i64]) -> Result<(), RepoError> {
        let p = self.posts.get_mut(&id).ok_or(RepoError::NotFound)?;
        p.0.tier_ids.retain(|t| !tier_ids.contains(t));
        Ok(())
    }
    fn set_post_attachments(&mut self, id: i64, media_ids: &[i64]) -> Result<(), RepoError> {
        self.attachments.insert(id, media_ids.to_vec());
        Ok(())
    }
    fn delete_post(&mut self, id: i64) -> Result<(), RepoError> {
        self.posts.remove(&id);
        Ok(())
    }
    fn media_owners(&mut self, ids: &[i64]) -> Result<HashMap<i64, i64>, RepoError> {
        Ok(ids
            .iter()
            .filter_map(|i| self.media.get(i).map(|o| (*i, *o)))
            .collect())
    }
}

impl EngagementRepo for Fake {
    fn like(&mut self, post_id: i64, user_id: i64) -> Result<(Like, bool), RepoError> {
        if let Some(l) = self
            .likes
            .iter()
            .find(|l| l.post_id == post_id && l.user_id == user_id)
        {
            return Ok((l.clone(), false));
        }
        let like = Like {
            id: self.id(),
            post_id,
            user_id,
            created_at: now(),
        };
        self.likes.push(like.clone());
        Ok((like, true))
    }
    fn find_like(&mut self, id: i64) -> Result<Option<Like>, RepoError> {
        Ok(self.likes.iter().find(|l| l.id == id).cloned())
    }
    fn delete_like(&mut self, id: i64) -> Result<(), RepoError> {
        self.likes.retain(|l| l.id != id);
        Ok(())
    }
    fn insert_comment(
        &mut self,
        post_id: i64,
        user_id: i64,
        text: &str,
    ) -> Result<Comment, RepoError> {
        let c = Comment {
            id: self.id(),
            post_id,
            user_id,
            username: format!("u{user_id}"),
            text: text.into(),
            created_at: now(),
            updated_at: now(),
        };
        self.comments.insert(c.id, c.clone());
        Ok(c)
    }
    fn find_comment(&mut self, id: i64) -> Result<Option<Comment>, RepoError> {
        Ok(self.comments.get(&id).cloned())
    }
    fn update_comment(&mut self, id: i64, text: &str) -> Result<Comment, RepoError> {
        let c = self.comments.get_mut(&id).ok_or(RepoError::NotFound)?;
        c.text = text.into();
        Ok(c.clone())
    }
    fn delete_comment(&mut self, id: i64) -> Result<(), RepoError> {
        self.comments.remove(&id);
        Ok(())
    }
}

fn tier_input(name: &str, price: i64) -> TierInput {
    TierInput {
        name: Some(name.into()),
        price: Some(price),
        ..Default::default()
    }
}

const ALICE: i64 = 1_000;
const BOB: i64 = 2_000;
const FAN: i64 = 3_000;

#[test]
fn tier_validation_and_free_tier_uniqueness() {
    let mut r = Fake::default();
    let t = create_tier(&mut r, ALICE, tier_input("Gold", 50_000)).unwrap();
    assert_eq!(t.currency, Currency::Inr);
    assert!(t.is_active);
    let e = create_tier(&mut r, ALICE, tier_input("Cheap", 50)).unwrap_err();
    assert!(
        matches!(e, CatalogError::Invalid(ref f) if f.has("price")),
        "{e:?}"
    );
    let e = create_tier(&mut r, ALICE, TierInput::default()).unwrap_err();
    assert!(matches!(e, CatalogError::Invalid(ref f) if f.has("name") && f.has("price")));
    let e = create_tier(
        &mut r,
        ALICE,
        TierInput {
            currency: Some("EUR".into()),
            ..tier_input("x", 1000)
        },
    )
    .unwrap_err();
    assert!(matches!(e, CatalogError::Invalid(ref f) if f.has("currency")));
    create_tier(&mut r, ALICE, tier_input("Free", 0)).unwrap();
    let e = create_tier(&mut r, ALICE, tier_input("Free again", 0)).unwrap_err();
    assert!(matches!(e, CatalogError::Invalid(ref f) if f.has("price")));
    // Another creator has their own free tier.
    create_tier(&mut r, BOB, tier_input("Free", 0)).unwrap();
}

#[test]
fn a_trial_is_zero_to_thirty_one_days_of_a_paid_tier() {
    let mut r = Fake::default();
    let trial = |price, days| TierInput {
        trial_days: Some(days),
        ..tier_input("Gold", price)
    };
    let field = |e: CatalogError| matches!(e, CatalogError::Invalid(ref f) if f.has("trial_days"));
    let t = create_tier(&mut r, ALICE, trial(50_000, 31)).unwrap();
    assert_eq!(t.trial_days, 31);
    assert!(field(
        create_tier(&mut r, ALICE, trial(50_000, 32)).unwrap_err()
    ));
    assert!(field(
        create_tier(&mut r, ALICE, trial(50_000, -1)).unwrap_err()
    ));
    assert!(field(create_tier(&mut r, ALICE, trial(0, 7)).unwrap_err()));
    assert_eq!(
        create_tier(&mut r, BOB, tier_input("Silver", 100))
            .unwrap()
            .trial_days,
        0
    );
}

#[test]
fn a_yearly_price_needs_a_paid_tier_and_the_charge_limits() {
    let mut r = Fake::default();
    let yearly = |price, annual| TierInput {
        annual_price: Some(annual),
        ..tier_input("Gold", price)
    };
    let t = create_tier(&mut r, ALICE, yearly(50_000, Some(500_000))).unwrap();
    assert_eq!((t.price, t.annual_price), (50_000, Some(500_000)));
    let field =
        |e: CatalogError| matches!(e, CatalogError::Invalid(ref f) if f.has("annual_price"));
    assert!(field(
        create_tier(&mut r, ALICE, yearly(0, Some(500_000))).unwrap_err()
    ));
    assert!(field(
        create_tier(&mut r, ALICE, yearly(50_000, Some(50))).unwrap_err()
    ));
    let null = create_tier(&mut r, ALICE, yearly(60_000, None)).unwrap();
    assert_eq!(null.annual_price, None);
    // Updates: checked against the resulting price; an explicit null removes it.
    let to_free = TierInput {
        price: Some(0),
        ..Default::default()
    };
    assert!(field(
        update_tier(&mut r, ALICE, t.id, to_free).unwrap_err()
    ));
    let removed = TierInput {
        annual_price: Some(None),
        ..Default::default()
    };
    let t = update_tier(&mut r, ALICE, t.id, removed).unwrap();
    assert_eq!((t.price, t.annual_price), (50_000, None));
}

#[test]
fn only_owners_edit_or_delete_tiers_and_members_block_deletion() {
    let mut r = Fake::default();
    let t = create_tier(&mut r, ALICE, tier_input("Gold", 50_000)).unwrap();
    let e = update_tier(&mut r, BOB, t.id, tier_input("Mine", 100)).unwrap_err();
    assert!(matches!(e, CatalogError::NotOwner));
    assert_eq!(r.tiers[&t.id].name, "Gold");
    assert!(matches!(
        delete_tier(&mut r, BOB, t.id),
        Err(CatalogError::NotOwner)
    ));
    assert!(matches!(
        delete_tier(&mut r, ALICE, 424242),
        Err(CatalogError::NotFound)
    ));
    r.members.insert(t.id, 3);
    assert!(matches!(
        delete_tier(&mut r, ALICE, t.id),
        Err(CatalogError::TierHasMembers(3))
    ));
    r.members.clear();
    let p = create_post(
        &mut r,
        ALICE,
        PostInput {
            title: Some("p".into()),
            tiers: Some(vec![t.id]),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(matches!(
        delete_tier(&mut r, ALICE, t.id),
        Err(CatalogError::TierInUse(1))
    ));
    delete_post(&mut r, ALICE, p).unwrap();
    delete_tier(&mut r, ALICE, t.id).unwrap();
    assert!(r.tiers.is_empty());
}

#[test]
fn posts_take_only_their_creators_tiers_and_media() {
    let mut r = Fake::default();
    let a = create_tier(&mut r, ALICE, tier_input("A", 10_000)).unwrap();
    let b = create_tier(&mut r, BOB, tier_input("B", 10_000)).unwrap();
    let post = |tiers: Vec<i64>, media: Vec<i64>| PostInput {
        title: Some("t".into()),
        body: Some("b".into()),
        tiers: Some(tiers),
        attachments: Some(media),
    };
    let e = create_post(&mut r, ALICE, post(vec![a.id, b.id], vec![])).unwrap_err();
    assert!(matches!(e, CatalogError::Invalid(ref f) if f.has("tiers")));
    r.media.insert(77, BOB);
    let e = create_post(&mut r, ALICE, post(vec![a.id], vec![77])).unwrap_err();
    assert!(matches!(e, CatalogError::Invalid(ref f) if f.has("attachments")));
    assert!(r.posts.is_empty(), "nothing created");
    let id = create_post(&mut r, ALICE, post(vec![a.id, a.id], vec![])).unwrap();
    assert_eq!(r.posts[&id].0.tier_ids, vec![a.id], "duplicates dropped");
    // remove-tiers: an oversized list is refused before any lookup.
    let many: Vec<i64> = (1..=100_000).collect();
    let e = remove_post_tiers(&mut r, ALICE, id, Some(many)).unwrap_err();
    assert!(matches!(e, CatalogError::Invalid(ref f) if f.has("tiers")));
    assert_eq!(r.posts[&id].0.tier_ids, vec![a.id]);
    // remove-tiers: foreign → 400 unchanged; owner-only.
    let e = remove_post_tiers(&mut r, ALICE, id, Some(vec![b.id])).unwrap_err();
    assert!(matches!(e, CatalogError::Invalid(_)));
    assert!(matches!(
        remove_post_tiers(&mut r, BOB, id, Some(vec![a.id])),
        Err(CatalogError::NotOwner)
    ));
    assert_eq!(r.posts[&id].0.tier_ids, vec![a.id]);
    remove_post_tiers(&mut r, ALICE, id, Some(vec![a.id])).unwrap();
    assert!(r.posts[&id].0.tier_ids.is_empty());
    assert!(matches!(
        update_post(&mut r, BOB, id, PostInput::default()),
        Err(CatalogError::NotOwner)
    ));
}

#[test]
fn engagement_follows_visibility_and_ownership() {
    let mut r = Fake::default();
    let a = create_tier(&mut r, ALICE, tier_input("A", 10_000)).unwrap();
    let id = create_post(
        &mut r,
        ALICE,
        PostInput {
            title: Some("t".into()),
            tiers: Some(vec![a.id]),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(matches!(
        like_post(&mut r, FAN, id),
        Err(CatalogError::Locked)
    ));
    assert!(matches!(
        add_comment(&mut r, FAN, id, Some("hi".into())),
        Err(CatalogError::Locked)
    ));
    assert!(matches!(
        visible_post(&mut r, id, None),
        Err(CatalogError::Locked)
    ));
    assert!(matches!(
        visible_post(&mut r, 999, None),
        Err(CatalogError::NotFound)
    ));
    r.access.insert(FAN, [a.id].into_iter().collect());
    let (l1, created) = like_post(&mut r, FAN, id).unwrap();
    assert!(created);
    let (l2, created) = like_post(&mut r, FAN, id).unwrap();
    assert!(!created);
    assert_eq!(l1.id, l2.id);
    assert!(matches!(
        unlike(&mut r, BOB, l1.id),
        Err(CatalogError::NotOwner)
    ));
    let c = add_comment(&mut r, FAN, id, Some("  hi  ".into())).unwrap();
    assert_eq!(c.text, "hi");
    assert!(matches!(
        add_comment(&mut r, FAN, id, Some("x".repeat(5001))),
        Err(CatalogError::Invalid(_))
    ));
    assert!(matches!(
        add_comment(&mut r, FAN, id, Some("nul\0byte".into())),
        Err(CatalogError::Invalid(_))
    ));
    assert!(matches!(
        edit_comment(&mut r, ALICE, c.id, Some("no".into())),
        Err(CatalogError::NotOwner)
    ));
    assert!(matches!(
        delete_comment(&mut r, BOB, c.id),
        Err(CatalogError::Locked)
    ));
    edit_comment(&mut r, FAN, c.id, Some("edited".into())).unwrap();
    // The post's creator may delete any comment on it.
    delete_comment(&mut r, ALICE, c.id).unwrap();
    assert!(r.comments.is_empty());
}

#[test]
fn post_view_hides_body_and_names_when_locked() {
    let rec = PostRecord {
        id: 1,
        creator_id: ALICE,
        title: "t".into(),
        body: "secret".into(),
        tier_ids: vec![5],
        attachments: vec![Attachment {
            media_id: 9,
            kind: MediaKind::Attachment,
            content_type: "application/pdf".into(),
            size: 10,
            filename: "plan.pdf".into(),
        }],
        like_count: 2,
        comment_count: 1,
        liked_by_me: false,
        created_at: now(),
        updated_at: now(),
    };
    let v = PostView::for_viewer(rec.clone(), Some(FAN), &HashSet::new());
    assert!(v.locked);
    assert_eq!(v.body, None);
    assert_eq!(v.attachments[0].filename, "");
    assert_eq!(v.like_count, 2);
    let v = PostView::for_viewer(rec, Some(FAN), &set(&[5]));
    assert!(!v.locked);
    assert_eq!(v.body.as_deref(), Some("secret"));
    assert_eq!(v.attachments[0].filename, "plan.pdf");
}

#[test]
fn media_sniffing_and_truncation() {
    use crate::media::*;
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR........\0\0\0\0IEND\xAE\x42\x60\x82";
    let t = sniff(png).unwrap();
    assert_eq!(t.content_type, "image/png");
    assert!(looks_complete(t, png, png, png.len() as u64));
    assert!(!looks_complete(t, png, &png[..30], 30));
    let jpg = [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 0xFF, 0xD9];
    let t = sniff(&jpg).unwrap();
    assert_eq!(t.kind, MediaKind::Image);
    assert!(looks_complete(t, &jpg, &jpg, 9));
    assert!(!looks_complete(t, &jpg, &jpg[..7], 7));
    let pdf = b"%PDF-1.7\n...\n%%EOF\n";
    let t = sniff(pdf).unwrap();
    assert_eq!(t.kind, MediaKind::Attachment);
    assert!(looks_complete(t, pdf, pdf, pdf.len() as u64));
    assert!(!looks_complete(t, pdf, &pdf[..10], 10));
    let mut webp = b"RIFF\x08\0\0\0WEBPVP8 ".to_vec();
    let t = sniff(&webp).unwrap();
    assert_eq!(t.content_type, "image/webp");
    assert!(looks_complete(t, &webp, &webp, webp.len() as u64));
    webp[4] = 0xff;
    assert!(!looks_complete(t, &webp, &webp, webp.len() as u64));
    // Empty ZIP: just the end-of-central-directory record.
    let zip = b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
    let t = sniff(zip).unwrap();
    assert!(looks_complete(t, zip, zip, 22));
    assert!(!looks_complete(t, zip, &zip[..20], 20));
    assert_eq!(sniff(b"GIF89a\x01\0").unwrap().content_type, "image/gif");
    assert_eq!(sniff(b"ID3\x03\0\0\0").unwrap().content_type, "audio/mpeg");
    assert!(sniff(b"hello world").is_none());
    assert!(
        sniff(b"<svg xmlns=").is_none(),
        "SVG (scriptable) is not accepted"
    );
}

#[test]
fn fake_repository_honours_the_contract() {
    crate::contract::run_all(&mut Fake::default(), ALICE, BOB, FAN);
}
