//! An in-memory store for the rules' unit tests.
use crate::model::*;
use crate::ports::{Audience, InboxRepo, NotifyRepo, PreferencesRepo};
use oasis_kernel::RepoError;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Default)]
pub struct MemoryNotify {
    pub users: BTreeMap<i64, String>,
    pub posts: BTreeMap<i64, PostFacts>,
    pub comments: BTreeMap<i64, (i64, i64, String)>,
    pub likes: BTreeMap<i64, (i64, i64)>,
    /// (follower, creator)
    pub follows: BTreeSet<(i64, i64)>,
    /// (member, creator) with access now
    pub members: BTreeSet<(i64, i64)>,
    pub memberships: Vec<MembershipFacts>,
    pub payments: BTreeMap<String, PaymentFacts>,
    pub subscriptions: BTreeMap<String, SubscriptionFacts>,
    pub refunds: BTreeMap<String, RefundFacts>,
    pub commissions: BTreeMap<i64, CommissionFacts>,
    pub stored: Vec<Notification>,
    /// Stored hidden: the recipient turned the category off in-app.
    pub hidden: BTreeSet<i64>,
    pub prefs: BTreeMap<i64, Preferences>,
    next_id: i64,
}

impl MemoryNotify {
    pub fn for_user(&self, user: i64) -> Vec<&Notification> {
        self.stored
            .iter()
            .filter(|n| n.recipient_id == user && !self.hidden.contains(&n.id))
            .collect()
    }

    fn shown(&self, recipient: i64) -> impl Iterator<Item = &Notification> {
        self.stored
            .iter()
            .filter(move |n| n.recipient_id == recipient && !self.hidden.contains(&n.id))
    }
}

impl PreferencesRepo for MemoryNotify {
    fn preferences(&mut self, user: i64) -> Result<Preferences, RepoError> {
        Ok(self.prefs.get(&user).cloned().unwrap_or_default())
    }
    fn save_preferences(&mut self, user: i64, prefs: &Preferences) -> Result<(), RepoError> {
        self.prefs.insert(user, prefs.clone());
        Ok(())
    }
}

impl NotifyRepo for MemoryNotify {
    fn post(&mut self, id: i64) -> Result<Option<PostFacts>, RepoError> {
        Ok(self.posts.get(&id).cloned())
    }
    fn comment(&mut self, id: i64) -> Result<Option<CommentFacts>, RepoError> {
        Ok(self.comments.get(&id).and_then(|(post, author, text)| {
            Some(CommentFacts {
                id,
                created_at: chrono::Utc::now(),
                author_id: *author,
                text: text.clone(),
                post: self.posts.get(post)?.clone(),
            })
        }))
    }
    fn like(&mut self, id: i64) -> Result<Option<LikeFacts>, RepoError> {
        Ok(self.likes.get(&id).and_then(|(post, user)| {
            Some(LikeFacts {
                id,
                created_at: chrono::Utc::now(),
                user_id: *user,
                post: self.posts.get(post)?.clone(),
            })
        }))
    }
    fn username(&mut self, user_id: i64) -> Result<Option<String>, RepoError> {
        Ok(self.users.get(&user_id).cloned())
    }
    fn followed_at(
        &mut self,
        follower: i64,
        creator: i64,
    ) -> Result<Option<oasis_kernel::Timestamp>, RepoError> {
        Ok(self
            .follows
            .contains(&(follower, creator))
            .then(chrono::Utc::now))
    }
    fn membership_of(
        &mut self,
        fan: i64,
        creator: i64,
    ) -> Result<Option<MembershipFacts>, RepoError> {
        Ok(self
            .memberships
            .iter()
            .rev()
            .find(|m| m.fan_id == fan && m.creator_id == creator)
            .cloned())
    }
    fn payment(&mut self, id: &str) -> Result<Option<PaymentFacts>, RepoError> {
        Ok(self.payments.get(id).cloned())
    }
    fn subscription(&mut self, id: &str) -> Result<Option<SubscriptionFacts>, RepoError> {
        Ok(self.subscriptions.get(id).cloned())
    }
    fn refund(&mut self, id: &str) -> Result<Option<RefundFacts>, RepoError> {
        Ok(self.refunds.get(id).cloned())
    }
    fn commission(&mut self, id: i64) -> Result<Option<CommissionFacts>, RepoError> {
        Ok(self.commissions.get(&id).cloned())
    }
    fn insert(
        &mut self,
        n: &NewNotification,
        audience: Audience,
    ) -> Result<Vec<Delivered>, RepoError> {
        let recipients: BTreeSet<i64> = match audience {
            Audience::User(u) => [u].into(),
            Audience::FollowersAndMembers { creator } => self
                .follows
                .iter()
                .chain(self.members.iter())
                .filter(|(u, c)| *c == creator && *u != creator)
                .map(|(u, _)| *u)
                .collect(),
        };
        let mut inserted = Vec::new();
        // As the PostgreSQL store: nobody is notified of their own action.
        for r in recipients.into_iter().filter(|r| Some(*r) != n.actor_id) {
            let dup = self.stored.iter().any(|s| {
                s.recipient_id == r
                    && s.kind == n.kind
                    && s.data.get("_key").and_then(|k| k.as_str()) == Some(&n.event_key)
            });
            if dup {
                continue;
            }
            self.next_id += 1;
            let mut data = n.data.clone();
            data["_key"] = serde_json::json!(n.event_key);
            self.stored.push(Notification {
                id: self.next_id,
                recipient_id: r,
                actor_id: n.actor_id,
                actor_name: n.actor_id.and_then(|a| self.users.get(&a).cloned()),
                kind: n.kind,
                verb: n.verb.clone(),
                target: n.target.clone(),
                action_object: n.action_object.clone(),
                post_id: n.post_id,
                data,
                unread: true,
                created_at: n.occurred_at.unwrap_or_else(chrono::Utc::now),
            });
            let shown = self
                .prefs
                .get(&r)
                .is_none_or(|p| p.get(n.kind.category()).in_app);
            if !shown {
                self.hidden.insert(self.next_id);
            }
            inserted.push(Delivered {
                id: self.next_id,
                recipient_id: r,
                kind: n.kind,
            });
        }
        Ok(inserted)
    }
}

impl InboxRepo for MemoryNotify {
    fn inbox(&mut self, recipient: i64, max: i64) -> Result<Inbox, RepoError> {
        let mut mine: Vec<Notification> = self.shown(recipient).cloned().collect();
        mine.sort_by_key(|n| std::cmp::Reverse((n.created_at, n.id)));
        let max = max.max(0) as usize;
        Ok(Inbox {
            unread_count: mine.iter().filter(|n| n.unread).count() as i64,
            all_count: mine.len() as i64,
            unread: mine
                .iter()
                .filter(|n| n.unread)
                .take(max)
                .cloned()
                .collect(),
            all: mine.into_iter().take(max).collect(),
        })
    }
    fn unread_count(&mut self, recipient: i64) -> Result<i64, RepoError> {
        Ok(self.shown(recipient).filter(|n| n.unread).count() as i64)
    }
    fn mark_all_read(&mut self, recipient: i64) -> Result<u64, RepoError> {
        let mut n = 0;
        let hidden = &self.hidden;
        for s in self.stored.iter_mut() {
            if s.recipient_id == recipient && s.unread && !hidden.contains(&s.id) {
                s.unread = false;
                n += 1;
            }
        }
        Ok(n)
    }
    fn mark_read(&mut self, recipient: i64, id: i64) -> Result<Option<Notification>, RepoError> {
        Ok(self
            .stored
            .iter_mut()
            .find(|s| s.id == id && s.recipient_id == recipient && !self.hidden.contains(&s.id))
            .map(|s| {
                s.unread = false;
                s.clone()
            }))
    }
    fn delete(&mut self, recipient: i64, id: i64) -> Result<bool, RepoError> {
        let before = self.stored.len();
        self.stored.retain(|s| {
            !(s.id == id && s.recipient_id == recipient && !self.hidden.contains(&s.id))
        });
        Ok(self.stored.len() != before)
    }
    fn since(
        &mut self,
        recipient: i64,
        after: i64,
        max: i64,
    ) -> Result<Vec<Notification>, RepoError> {
        let mut mine: Vec<Notification> = self
            .shown(recipient)
            .filter(|n| n.id > after)
            .cloned()
            .collect();
        mine.sort_by_key(|n| n.id);
        mine.truncate(max.max(0) as usize);
        Ok(mine)
    }
    fn get(&mut self, recipient: i64, id: i64) -> Result<Option<Notification>, RepoError> {
        Ok(self.shown(recipient).find(|n| n.id == id).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;

    const CREATOR: i64 = 1;
    const FAN: i64 = 2;
    const MEMBER: i64 = 3;
    const STRANGER: i64 = 4;

    fn world() -> MemoryNotify {
        let mut m = MemoryNotify::default();
        for (id, name) in [(1, "maya"), (2, "fan"), (3, "member"), (4, "stranger")] {
            m.users.insert(id, name.into());
        }
        m.follows.insert((FAN, CREATOR));
        m.follows.insert((MEMBER, CREATOR));
        m.members.insert((MEMBER, CREATOR));
        m.posts.insert(
            10,
            PostFacts {
                id: 10,
                creator_id: CREATOR,
                creator_name: "maya".into(),
                title: "Public hello".into(),
                body: "everyone may read this".into(),
                tier_ids: vec![],
                created_at: chrono::Utc::now(),
            },
        );
        m.posts.insert(
            11,
            PostFacts {
                id: 11,
                creator_id: CREATOR,
                creator_name: "maya".into(),
                title: "Gold only".into(),
                body: "SECRET BODY".into(),
                tier_ids: vec![7],
                created_at: chrono::Utc::now(),
            },
        );
        m
    }

    #[test]
    fn new_post_reaches_followers_and_members_once_never_the_creator() {
        let mut m = world();
        let ev = Event::PostPublished { post_id: 10 };
        assert_eq!(fan_out(&mut m, &ev).unwrap().len(), 2);
        assert_eq!(
            fan_out(&mut m, &ev).unwrap().len(),
            0,
            "re-run duplicates nothing"
        );
        assert_eq!(m.for_user(FAN).len(), 1);
        assert_eq!(m.for_user(MEMBER).len(), 1);
        assert!(m.for_user(CREATOR).is_empty());
        assert!(m.for_user(STRANGER).is_empty());
        let n = m.for_user(FAN)[0];
        assert_eq!(n.kind, Kind::NewPost);
        assert_eq!(n.data["preview"], "everyone may read this");
        assert_eq!(n.data["locked"], false);
    }

    #[test]
    fn a_gated_post_is_announced_by_title_only() {
        let mut m = world();
        fan_out(&mut m, &Event::PostPublished { post_id: 11 }).unwrap();
        for n in &m.stored {
            let text = format!("{:?}", n);
            assert!(!text.contains("SECRET"), "body leaked: {text}");
            assert_eq!(n.data["title"], "Gold only");
            assert_eq!(n.data["locked"], true);
            assert!(n.data.get("preview").is_none());
            assert_eq!(n.verb, "published a new post for members");
        }
        assert_eq!(m.stored.len(), 2);
    }

    #[test]
    fn a_post_gated_after_the_fact_loses_its_preview_when_read() {
        let mut m = world();
        fan_out(&mut m, &Event::PostPublished { post_id: 10 }).unwrap();
        let n = m.for_user(FAN)[0].clone();
        assert_eq!(n.data["preview"], "everyone may read this");
        let still_public = as_seen_now(n.clone(), false);
        assert_eq!(still_public.data["preview"], "everyone may read this");
        let gated = as_seen_now(n, true);
        assert!(gated.data.get("preview").is_none());
        assert_eq!(gated.data["locked"], true);
        assert_eq!(gated.data["title"], "Public hello");
    }

    #[test]
    fn comments_and_likes_notify_the_creator_but_not_for_their_own() {
        let mut m = world();
        m.comments.insert(5, (11, FAN, "nice".into()));
        m.comments.insert(6, (11, CREATOR, "thanks".into()));
        m.likes.insert(8, (10, MEMBER));
        m.likes.insert(9, (10, CREATOR));
        for ev in [
            Event::Commented { comment_id: 5 },
            Event::Commented { comment_id: 6 },
            Event::Liked { like_id: 8 },
            Event::Liked { like_id: 9 },
            Event::Liked { like_id: 8 },
        ] {
            fan_out(&mut m, &ev).unwrap();
        }
        let mine = m.for_user(CREATOR);
        assert_eq!(mine.len(), 2);
        assert_eq!(mine[0].kind, Kind::Comment);
        assert_eq!(mine[0].actor_id, Some(FAN));
        assert_eq!(mine[0].data["comment"], "nice");
        assert!(!format!("{:?}", mine[0]).contains("SECRET"));
        assert_eq!(mine[1].kind, Kind::Like);
        assert_eq!(m.stored.len(), 2);
    }

    #[test]
    fn follows_memberships_cheers_and_failures() {
        let mut m = world();
        m.memberships.push(MembershipFacts {
            id: 3,
            fan_id: FAN,
            creator_id: CREATOR,
            tier_id: 7,
            tier_name: "Gold".into(),
            kind: "recurring".into(),
        });
        let pay = |kind: &str, status: &str| PaymentFacts {
            razorpay_payment_id: format!("pay_{kind}_{status}"),
            kind: kind.into(),
            status: status.into(),
            user_id: Some(FAN),
            creator_id: Some(CREATOR),
            amount: 5000,
            currency: "INR".into(),
            order_id: Some(4),
            order_paid: status == "captured",
            name: "Ann".into(),
            message: "keep going".into(),
            tier_name: None,
            creator_name: Some("cora".into()),
            period_start: None,
            period_end: None,
        };
        for p in [pay("cheer", "captured"), pay("subscription", "failed")] {
            m.payments.insert(p.razorpay_payment_id.clone(), p);
        }
        m.subscriptions.insert(
            "sub_1".into(),
            SubscriptionFacts {
                membership_id: 3,
                fan_id: FAN,
                creator_id: CREATOR,
                tier_name: "Gold".into(),
                status: "halted".into(),
                paid_count: 2,
            },
        );
        m.subscriptions.insert(
            "sub_0".into(),
            SubscriptionFacts {
                membership_id: 3,
                fan_id: FAN,
                creator_id: CREATOR,
                tier_name: "Gold".into(),
                status: "pending".into(),
                paid_count: 2,
            },
        );
        for ev in [
            Event::Followed {
                follower_id: FAN,
                creator_id: CREATOR,
            },
            Event::Followed {
                follower_id: CREATOR,
                creator_id: CREATOR,
            },
            Event::MembershipStarted {
                fan_id: FAN,
                creator_id: CREATOR,
            },
            Event::PaymentRecorded {
                payment_id: "pay_cheer_captured".into(),
            },
            Event::PaymentRecorded {
                payment_id: "pay_subscription_failed".into(),
            },
            Event::SubscriptionChanged {
                subscription_id: "sub_0".into(),
            },
            Event::SubscriptionChanged {
                subscription_id: "sub_1".into(),
            },
        ] {
            fan_out(&mut m, &ev).unwrap();
            fan_out(&mut m, &ev).unwrap();
        }
        let kinds = |u| m.for_user(u).iter().map(|n| n.kind).collect::<Vec<Kind>>();
        assert_eq!(
            kinds(CREATOR),
            [Kind::Follow, Kind::Membership, Kind::Cheer]
        );
        assert_eq!(
            kinds(FAN),
            [
                Kind::Receipt,
                Kind::PaymentFailed,
                Kind::PaymentFailed,
                Kind::MembershipHalted
            ]
        );
        let joined = m.for_user(CREATOR)[1];
        assert_eq!(joined.verb, "joined Gold");
        let cheer = m.for_user(CREATOR)[2];
        assert_eq!(cheer.data["message"], "keep going");
        assert_eq!(cheer.data["amount"], 5000);
        assert_eq!(cheer.verb, "cheered you with INR 50.00");
        let receipt = m.for_user(FAN)[0];
        assert_eq!(
            receipt.verb,
            "Your payment of INR 50.00 for a cheer was received."
        );
        assert_eq!(receipt.data["payment_id"], "pay_cheer_captured");
        assert_eq!(receipt.data["amount"], 5000);
        assert_eq!(receipt.data["currency"], "INR");
        assert_eq!(receipt.data["creator"], "cora");
    }

    #[test]
    fn preferences_patch_rules_and_in_app_off_hides() {
        let mut m = world();
        let p = preferences(&mut m, FAN).unwrap();
        assert!(p.get(Category::Receipts).email && p.get(Category::Receipts).in_app);
        assert!(!p.get(Category::Social).email, "social is in-app only");
        // Any subset; nothing stored when one part is invalid.
        let bad = update_preferences(
            &mut m,
            FAN,
            &serde_json::json!({"new_posts": {"email": false}, "receipts": {"email": false}}),
        );
        assert!(matches!(
            bad,
            Err(NotifyError::Invalid {
                field: "receipts",
                ..
            })
        ));
        assert!(
            preferences(&mut m, FAN)
                .unwrap()
                .get(Category::NewPosts)
                .email
        );
        for bad in [
            serde_json::json!({"security": {"email": false}}),
            serde_json::json!({"social": {"email": true}}),
            serde_json::json!({"nope": {"email": true}}),
            serde_json::json!({"receipts": {"in_app": "no"}}),
            serde_json::json!({"receipts": {"sms": true}}),
            serde_json::json!([1]),
        ] {
            assert!(update_preferences(&mut m, FAN, &bad).is_err(), "{bad}");
        }
        let p = update_preferences(
            &mut m,
            FAN,
            &serde_json::json!({"receipts": {"in_app": false}, "new_posts": {"email": false}}),
        )
        .unwrap();
        assert_eq!(
            p.get(Category::Receipts),
            Channels {
                in_app: false,
                email: true
            }
        );
        assert!(!p.get(Category::NewPosts).email && p.get(Category::NewPosts).in_app);
        // in_app off: stored hidden (still reported for its mail), out of the inbox.
        m.payments.insert(
            "pay_1".into(),
            PaymentFacts {
                razorpay_payment_id: "pay_1".into(),
                kind: "one_time".into(),
                status: "captured".into(),
                user_id: Some(FAN),
                creator_id: Some(CREATOR),
                amount: 9900,
                currency: "INR".into(),
                order_id: None,
                order_paid: false,
                name: String::new(),
                message: String::new(),
                tier_name: Some("Gold".into()),
                creator_name: Some("cora".into()),
                period_start: None,
                period_end: None,
            },
        );
        let delivered = fan_out(
            &mut m,
            &Event::PaymentRecorded {
                payment_id: "pay_1".into(),
            },
        )
        .unwrap();
        assert_eq!(delivered.len(), 1);
        assert_eq!(delivered[0].kind, Kind::Receipt);
        assert_eq!(delivered[0].recipient_id, FAN);
        assert!(m.for_user(FAN).is_empty());
        assert_eq!(inbox(&mut m, FAN, None).unwrap().all_count, 0);
    }

    #[test]
    fn commission_steps_tell_the_other_party_once() {
        let mut m = world();
        m.commissions.insert(
            5,
            CommissionFacts {
                request_id: 5,
                commission_id: 2,
                title: "Portrait".into(),
                fan_id: FAN,
                creator_id: CREATOR,
                fan_username: "fan".into(),
                creator_username: "maker".into(),
                amount: 25_000,
                currency: "INR".into(),
            },
        );
        let ev = |step, actor| Event::CommissionChanged {
            request_id: 5,
            step,
            actor,
        };
        assert_eq!(
            fan_out(&mut m, &ev(CommissionStep::Paid, Some(FAN)))
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            fan_out(&mut m, &ev(CommissionStep::Paid, Some(FAN)))
                .unwrap()
                .len(),
            0
        );
        assert_eq!(
            fan_out(&mut m, &ev(CommissionStep::Accepted, Some(CREATOR)))
                .unwrap()
                .len(),
            1
        );
        // Completed by the fan: the creator only; by the system: both.
        assert_eq!(
            fan_out(&mut m, &ev(CommissionStep::Completed, Some(FAN)))
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            m.for_user(CREATOR)[0].verb,
            "fan ordered \"Portrait\" (INR 250.00)."
        );
        assert_eq!(
            m.for_user(FAN)[0].verb,
            "maker accepted your request for \"Portrait\"."
        );
        assert_eq!(m.for_user(FAN).len(), 1);
        assert!(m
            .for_user(CREATOR)
            .iter()
            .all(|n| n.kind == Kind::Commission));
        assert_eq!(
            fan_out(&mut m, &ev(CommissionStep::Delivered, None))
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            fan_out(
                &mut m,
                &Event::CommissionChanged {
                    request_id: 99,
                    step: CommissionStep::Paid,
                    actor: None
                }
            )
            .unwrap()
            .len(),
            0,
            "an unknown request tells nobody"
        );
    }

    #[test]
    fn an_automatic_refund_tells_the_fan_and_the_creator_once() {
        let mut m = world();
        let ev = Event::PaymentRefunded {
            payment_id: "pay_1".into(),
        };
        assert_eq!(fan_out(&mut m, &ev).unwrap().len(), 0, "not yet refunded");
        m.refunds.insert(
            "pay_1".into(),
            RefundFacts {
                razorpay_payment_id: "pay_1".into(),
                amount: 30_000,
                currency: "INR".into(),
                reason: "the tier accepts no new members".into(),
                fan_id: Some(FAN),
                creator_id: Some(CREATOR),
                tier_id: Some(7),
                tier_name: Some("Gold".into()),
            },
        );
        assert_eq!(fan_out(&mut m, &ev).unwrap().len(), 2);
        assert_eq!(
            fan_out(&mut m, &ev).unwrap().len(),
            0,
            "re-run duplicates nothing"
        );
        let fan = m.for_user(FAN)[0];
        assert_eq!(fan.kind, Kind::PaymentRefunded);
        assert_eq!(
            fan.verb,
            "Your payment of INR 300.00 for Gold was refunded: the tier accepts no new members."
        );
        assert_eq!(fan.actor_id, Some(CREATOR));
        let creator = m.for_user(CREATOR)[0];
        assert!(creator
            .verb
            .starts_with("A payment of INR 300.00 for Gold was refunded automatically"));
        assert_eq!(creator.actor_id, Some(FAN));
        assert_eq!(creator.data["amount"], 30_000);
        assert!(m.for_user(STRANGER).is_empty());
    }

    #[test]
    fn inbox_is_scoped_to_its_owner_and_max_is_validated() {
        let mut m = world();
        fan_out(&mut m, &Event::PostPublished { post_id: 10 }).unwrap();
        fan_out(&mut m, &Event::PostPublished { post_id: 11 }).unwrap();
        let fans = m.for_user(FAN).iter().map(|n| n.id).collect::<Vec<_>>();
        assert!(matches!(
            mark_read(&mut m, STRANGER, fans[0]),
            Err(NotifyError::NotFound)
        ));
        assert!(matches!(
            delete(&mut m, STRANGER, fans[0]),
            Err(NotifyError::NotFound)
        ));
        assert!(!mark_read(&mut m, FAN, fans[0]).unwrap().unread);
        assert_eq!(unread_count(&mut m, FAN).unwrap(), 1);
        let i = inbox(&mut m, FAN, Some("1")).unwrap();
        assert_eq!((i.all_count, i.unread_count, i.all.len()), (2, 1, 1));
        for bad in ["0", "101", "x", "-1"] {
            assert!(matches!(
                inbox(&mut m, FAN, Some(bad)),
                Err(NotifyError::Invalid { field: "max", .. })
            ));
        }
        assert_eq!(inbox(&mut m, FAN, None).unwrap().all.len(), 2);
        assert_eq!(mark_all_read(&mut m, FAN).unwrap(), 1);
        assert_eq!(unread_count(&mut m, MEMBER).unwrap(), 2);
        delete(&mut m, FAN, fans[1]).unwrap();
        assert_eq!(m.for_user(FAN).len(), 1);
    }
}
