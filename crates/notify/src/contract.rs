//! The behaviour every store of notifications must have ([`NotifyRepo::insert`] for one user
//! and the whole [`InboxRepo`]), as one suite run against the in-memory fake (unit tests) and
//! the PostgreSQL adapter (integration tests), so the two cannot drift.
//! Each check panics with a message on failure. Run it on a store without notifications, with
//! two users `alice` and `bob` whose usernames are given.
use crate::model::{Kind, NewNotification, ObjRef};
use crate::ports::{Audience, InboxRepo, NotifyRepo};
use chrono::Duration;
use oasis_kernel::Timestamp;

fn note(kind: Kind, key: &str, actor: Option<i64>, at: Timestamp) -> NewNotification {
    NewNotification {
        kind,
        actor_id: actor,
        verb: format!("did {key}"),
        target: Some(ObjRef::new("post", 7, "Post seven")),
        action_object: None,
        post_id: None,
        occurred_at: Some(at),
        event_key: key.to_owned(),
        data: serde_json::json!({ "x": key }),
    }
}

/// Runs every check.
pub fn run_all<R: NotifyRepo + InboxRepo>(
    repo: &mut R,
    (alice, alice_name): (i64, &str),
    (bob, bob_name): (i64, &str),
    now: Timestamp,
) {
    // Insert: once per recipient, kind and event key.
    let first = note(Kind::Like, "e1", Some(bob), now - Duration::minutes(3));
    assert_eq!(repo.insert(&first, Audience::User(alice)).unwrap().len(), 1);
    assert_eq!(
        repo.insert(&first, Audience::User(alice)).unwrap().len(),
        0,
        "the same (kind, event key) twice is stored once"
    );
    let other_kind = note(Kind::Comment, "e1", Some(bob), now - Duration::minutes(2));
    assert_eq!(
        repo.insert(&other_kind, Audience::User(alice))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        repo.insert(&first, Audience::User(bob)).unwrap().len(),
        0,
        "nobody is notified of their own action"
    );
    let for_bob = note(Kind::Like, "e1", Some(alice), now - Duration::minutes(3));
    assert_eq!(repo.insert(&for_bob, Audience::User(bob)).unwrap().len(), 1);
    let newest = note(Kind::Follow, "e2", None, now - Duration::minutes(1));
    assert_eq!(
        repo.insert(&newest, Audience::User(alice)).unwrap().len(),
        1
    );

    // The inbox: newest first by event time, counts independent of `max`, actors named.
    let inbox = repo.inbox(alice, 10).unwrap();
    assert_eq!((inbox.all_count, inbox.unread_count), (3, 3));
    let kinds: Vec<Kind> = inbox.all.iter().map(|n| n.kind).collect();
    assert_eq!(kinds, [Kind::Follow, Kind::Comment, Kind::Like]);
    assert_eq!(inbox.unread.len(), 3);
    let like = &inbox.all[2];
    assert_eq!(like.recipient_id, alice);
    assert_eq!(like.actor_id, Some(bob));
    assert_eq!(like.actor_name.as_deref(), Some(bob_name));
    assert_eq!(inbox.all[0].actor_name, None, "no actor");
    assert_eq!(like.verb, "did e1");
    assert_eq!(like.target, Some(ObjRef::new("post", 7, "Post seven")));
    assert_eq!(like.action_object, None);
    assert_eq!(like.post_id, None);
    assert_eq!(like.data["x"], "e1", "data kept: {:?}", like.data);
    assert!(like.unread);
    assert_eq!(
        like.created_at.timestamp(),
        (now - Duration::minutes(3)).timestamp(),
        "created_at is the event's time"
    );
    let one = repo.inbox(alice, 1).unwrap();
    assert_eq!((one.all_count, one.unread_count), (3, 3));
    assert_eq!(one.all.len(), 1);
    assert_eq!(one.all[0].kind, Kind::Follow);
    let bobs = repo.inbox(bob, 10).unwrap();
    assert_eq!(bobs.all_count, 1);
    assert_eq!(bobs.all[0].actor_name.as_deref(), Some(alice_name));

    // The stream's reads: id order above a cursor, scoped to the recipient.
    let ids: Vec<i64> = repo
        .since(alice, 0, 10)
        .unwrap()
        .iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "id order: {ids:?}");
    let after_first: Vec<i64> = repo
        .since(alice, ids[0], 1)
        .unwrap()
        .iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(after_first, [ids[1]], "above the cursor, at most max");
    assert!(repo.since(alice, ids[2], 10).unwrap().is_empty());
    assert_eq!(repo.get(alice, ids[1]).unwrap().map(|n| n.id), Some(ids[1]));
    assert_eq!(repo.get(bob, ids[1]).unwrap(), None, "not bob's");

    // Reading and deleting are scoped to the recipient.
    let id = like.id;
    assert_eq!(repo.mark_read(bob, id).unwrap(), None, "not bob's");
    let read = repo.mark_read(alice, id).unwrap().expect("alice's");
    assert!(!read.unread);
    assert_eq!(repo.unread_count(alice).unwrap(), 2);
    let inbox = repo.inbox(alice, 10).unwrap();
    assert_eq!((inbox.all_count, inbox.unread_count), (3, 2));
    assert!(inbox.unread.iter().all(|n| n.id != id));
    assert_eq!(repo.unread_count(bob).unwrap(), 1);
    assert_eq!(repo.mark_all_read(alice).unwrap(), 2);
    assert_eq!(repo.mark_all_read(alice).unwrap(), 0);
    assert_eq!(repo.unread_count(alice).unwrap(), 0);
    assert_eq!(repo.unread_count(bob).unwrap(), 1, "bob's untouched");
    assert!(!repo.delete(bob, id).unwrap(), "not bob's");
    assert!(repo.delete(alice, id).unwrap());
    assert!(!repo.delete(alice, id).unwrap(), "already gone");
    assert_eq!(repo.inbox(alice, 10).unwrap().all_count, 2);
    assert_eq!(repo.mark_read(alice, id).unwrap(), None);
}

#[cfg(test)]
mod tests {
    use crate::fake::MemoryNotify;

    #[test]
    fn memory_store_meets_the_contract() {
        let mut m = MemoryNotify::default();
        m.users.insert(1, "alice".into());
        m.users.insert(2, "bob".into());
        super::run_all(&mut m, (1, "alice"), (2, "bob"), chrono::Utc::now());
    }
}
