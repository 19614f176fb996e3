//! The behaviour every [`IdentityRepo`] must have, as one suite run against the in-memory fake
//! (unit tests) and the PostgreSQL adapter (integration tests), so the two cannot drift.
//! Each check panics with a message on failure. Run it on an empty store.
use crate::model::{LoginType, NewUser, ProfileChanges};
use crate::repo::{IdentityRepo, PendingChange, RefreshRecord, Reservation};
use chrono::Duration;
use oasis_kernel::Timestamp;

fn new_user(name: &str, email: &str) -> NewUser {
    NewUser {
        username: name.into(),
        email: email.into(),
        first_name: "F".into(),
        last_name: "L".into(),
        password_hash: Some("$2b$04$hash".into()),
        login_type: LoginType::Manual,
        email_verified: false,
        profile_pic: None,
    }
}

/// Runs every check. `now` should be close to the store's clock.
pub fn run_all(repo: &mut impl IdentityRepo, now: Timestamp) {
    users(repo);
    confirmations(repo, now);
    refresh_tokens(repo, now);
    failures(repo, now);
    api_keys(repo);
    social(repo);
    mail_log(repo, now);
    reservations(repo, now);
    sessions_and_claims(repo, now);
    pending_changes(repo, now);
}

pub fn reservations(repo: &mut impl IdentityRepo, now: Timestamp) {
    let a = "contract:ra".to_owned();
    let b = "contract:rb".to_owned();
    let both = [a.clone(), b.clone()];
    let since = now - Duration::seconds(60);
    let Reservation::Reserved(first) = repo.reserve_attempt(&both, 2, since, now).unwrap() else {
        panic!("first reservation is granted")
    };
    assert_eq!(first.len(), 2, "one attempt per scope");
    repo.record_failure(std::slice::from_ref(&a), now - Duration::seconds(5))
        .unwrap();
    match repo.reserve_attempt(&both, 2, since, now).unwrap() {
        Reservation::Refused(full) => {
            assert_eq!(full.len(), 1, "only the scope at the limit: {full:?}");
            assert_eq!(full[0].scope, a);
            assert_eq!(full[0].count, 2);
        }
        other => panic!("the limit holds: {other:?}"),
    }
    let counts = repo.failures_since(&both, since).unwrap();
    let of = |s: &str| counts.iter().find(|c| c.scope == s).map_or(0, |c| c.count);
    assert_eq!((of(&a), of(&b)), (2, 1), "a refusal records nothing");
    repo.release_attempts(&first).unwrap();
    let counts = repo.failures_since(&both, since).unwrap();
    let of = |s: &str| counts.iter().find(|c| c.scope == s).map_or(0, |c| c.count);
    assert_eq!(
        (of(&a), of(&b)),
        (1, 0),
        "released attempts no longer count"
    );
    assert!(matches!(
        repo.reserve_attempt(&both, 2, since, now).unwrap(),
        Reservation::Reserved(_)
    ));
    // Outside the window, nothing counts.
    assert!(matches!(
        repo.reserve_attempt(&both, 2, now + Duration::seconds(1), now)
            .unwrap(),
        Reservation::Reserved(_)
    ));
}

pub fn sessions_and_claims(repo: &mut impl IdentityRepo, now: Timestamp) {
    let u = repo
        .insert_user(&new_user("contract_e", "e@example.com"))
        .unwrap()
        .unwrap();
    assert_eq!(u.session_epoch, 0);
    assert_eq!(repo.lock_user(u.id).unwrap().as_ref(), Some(&u));
    assert!(repo.lock_user(u.id + 1_000_000).unwrap().is_none());
    repo.bump_session_epoch(u.id).unwrap();
    repo.bump_session_epoch(u.id).unwrap();
    assert_eq!(repo.user_by_id(u.id).unwrap().unwrap().session_epoch, 2);
    repo.set_password(u.id, None).unwrap();
    assert!(repo
        .user_by_id(u.id)
        .unwrap()
        .unwrap()
        .password_hash
        .is_none());

    repo.link_social(u.id, LoginType::Google, "sub-e1", None)
        .unwrap();
    repo.link_social(u.id, LoginType::Facebook, "sub-e2", None)
        .unwrap();
    assert_eq!(repo.unlink_all_social(u.id).unwrap(), 2);
    assert!(repo
        .user_by_social(LoginType::Google, "sub-e1")
        .unwrap()
        .is_none());

    for (email, key) in [("e2@example.com", b"key-e1"), ("e3@example.com", b"key-e2")] {
        let id = repo
            .insert_confirmation(u.id, email, now + Duration::days(1))
            .unwrap();
        assert!(repo.set_confirmation_key(id, key, now).unwrap().is_some());
    }
    assert_eq!(repo.cancel_confirmations(u.id, now).unwrap(), 2);
    assert_eq!(repo.consume_confirmation(b"key-e1", now).unwrap(), None);
    assert_eq!(repo.cancel_confirmations(u.id, now).unwrap(), 0);
}

pub fn pending_changes(repo: &mut impl IdentityRepo, now: Timestamp) {
    let u = repo
        .insert_user(&new_user("contract_p", "p@example.com"))
        .unwrap()
        .unwrap();
    let change = |kind: &str, payload: &[u8]| PendingChange {
        user_id: u.id,
        kind: kind.into(),
        payload: payload.to_vec(),
    };
    let later = now + Duration::hours(1);
    repo.insert_pending_change(&change("email", b"old"), b"tok-1", later)
        .unwrap();
    let fresh = repo
        .insert_pending_change(&change("email", b"new"), b"tok-2a", later)
        .unwrap();
    // The link's token is minted when the email is sent: a new hash replaces the first.
    assert_eq!(
        repo.rekey_pending_change(fresh, b"tok-2", now).unwrap(),
        Some(u.id)
    );
    assert_eq!(
        repo.consume_pending_change(b"tok-2a", now).unwrap(),
        None,
        "the hash it was stored with no longer works"
    );
    repo.insert_pending_change(&change("bank.set", &[0, 1, 255]), b"tok-3", later)
        .unwrap();
    repo.insert_pending_change(
        &change("bank.delete", b""),
        b"tok-4",
        now - Duration::seconds(1),
    )
    .unwrap();
    assert_eq!(
        repo.consume_pending_change(b"tok-1", now).unwrap(),
        None,
        "replaced by a newer change of the same kind"
    );
    assert_eq!(
        repo.consume_pending_change(b"tok-2", now).unwrap(),
        Some(change("email", b"new"))
    );
    assert_eq!(
        repo.consume_pending_change(b"tok-2", now).unwrap(),
        None,
        "single use"
    );
    assert_eq!(
        repo.rekey_pending_change(fresh, b"tok-2c", now).unwrap(),
        None,
        "a used change gets no new link"
    );
    assert_eq!(
        repo.consume_pending_change(b"tok-4", now).unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        repo.cancel_pending_changes(u.id, now).unwrap(),
        2,
        "every unused one, expired or not"
    );
    assert_eq!(
        repo.consume_pending_change(b"tok-3", now).unwrap(),
        None,
        "cancelled"
    );
}

pub fn mail_log(repo: &mut impl IdentityRepo, now: Timestamp) {
    let u = repo
        .insert_user(&new_user("contract_m", "m@example.com"))
        .unwrap()
        .unwrap();
    assert_eq!(repo.mails_since(u.id, now - Duration::hours(1)).unwrap(), 0);
    repo.log_mail(u.id, "reset", now - Duration::minutes(90))
        .unwrap();
    repo.log_mail(u.id, "reset", now - Duration::minutes(5))
        .unwrap();
    repo.log_mail(u.id, "verify", now).unwrap();
    assert_eq!(repo.mails_since(u.id, now - Duration::hours(1)).unwrap(), 2);
    assert_eq!(
        repo.mails_since(u.id + 1, now - Duration::hours(1))
            .unwrap(),
        0
    );
}

pub fn users(repo: &mut impl IdentityRepo) {
    let u = repo
        .insert_user(&new_user("Contract_A", "Contract.A@Example.com"))
        .unwrap()
        .expect("insert");
    assert_eq!(u.username, "Contract_A");
    assert!(!u.email_verified && u.is_active && !u.is_creator);
    assert_eq!(u.login_type, "manual");
    assert!(u.credentials_changed_at.is_none());
    assert!(
        repo.insert_user(&new_user("contract_a", "other@example.com"))
            .unwrap()
            .is_none(),
        "username unique ignoring case"
    );
    assert!(
        repo.insert_user(&new_user("contract_b", "contract.a@example.COM"))
            .unwrap()
            .is_none(),
        "email unique ignoring case"
    );
    assert_eq!(
        repo.user_by_username("CONTRACT_a").unwrap().map(|x| x.id),
        Some(u.id)
    );
    assert_eq!(
        repo.user_by_email("contract.a@example.com")
            .unwrap()
            .map(|x| x.id),
        Some(u.id)
    );
    assert_eq!(repo.user_by_id(u.id).unwrap().as_ref(), Some(&u));
    assert!(repo.user_by_id(u.id + 1_000_000).unwrap().is_none());

    let changed = repo
        .update_profile(
            u.id,
            &ProfileChanges {
                is_creator: Some(true),
                bio: Some("bio".into()),
                profile_pic: Some(Some("https://x/p.png".into())),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(changed.is_creator);
    assert_eq!(changed.bio, "bio");
    assert_eq!(changed.username, "Contract_A", "unchanged fields stay");
    assert_eq!(changed.profile_pic.as_deref(), Some("https://x/p.png"));
    let cleared = repo
        .update_profile(
            u.id,
            &ProfileChanges {
                profile_pic: Some(None),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(cleared.profile_pic, None);
    assert!(cleared.is_creator);

    repo.set_email(u.id, "new.a@example.com", true).unwrap();
    let v = repo.user_by_id(u.id).unwrap().unwrap();
    assert!(v.email_verified);
    assert_eq!(v.email, "new.a@example.com");
    let b = repo
        .insert_user(&new_user("contract_b", "b@example.com"))
        .unwrap()
        .unwrap();
    let err = repo.set_email(b.id, "NEW.A@example.com", true).unwrap_err();
    assert!(
        err.is_conflict_on(crate::service::EMAIL_CONSTRAINT),
        "email conflict names the constraint: {err:?}"
    );
}

pub fn confirmations(repo: &mut impl IdentityRepo, now: Timestamp) {
    let u = repo
        .insert_user(&new_user("contract_c", "c@example.com"))
        .unwrap()
        .unwrap();
    let fresh = repo
        .insert_confirmation(u.id, "c2@example.com", now + Duration::days(3))
        .unwrap();
    let old = repo
        .insert_confirmation(u.id, "c@example.com", now - Duration::seconds(1))
        .unwrap();
    assert_ne!(fresh, old);
    assert_eq!(
        repo.consume_confirmation(b"key-1", now).unwrap(),
        None,
        "no key before the email is sent"
    );
    assert_eq!(
        repo.set_confirmation_key(fresh, b"key-0", now).unwrap(),
        Some((u.id, "c2@example.com".to_owned()))
    );
    // Sent again (a retried job): the newest key replaces the previous one.
    assert_eq!(
        repo.set_confirmation_key(fresh, b"key-1", now).unwrap(),
        Some((u.id, "c2@example.com".to_owned()))
    );
    assert_eq!(repo.consume_confirmation(b"key-0", now).unwrap(), None);
    assert_eq!(
        repo.set_confirmation_key(old, b"key-old", now).unwrap(),
        None,
        "expired: no key"
    );
    assert_eq!(
        repo.consume_confirmation(b"key-1", now).unwrap(),
        Some((u.id, "c2@example.com".to_owned()))
    );
    assert_eq!(
        repo.consume_confirmation(b"key-1", now).unwrap(),
        None,
        "single use"
    );
    assert_eq!(
        repo.consume_confirmation(b"key-old", now).unwrap(),
        None,
        "expired"
    );
    assert_eq!(repo.consume_confirmation(b"nope", now).unwrap(), None);
    assert_eq!(
        repo.set_confirmation_key(fresh, b"key-2", now).unwrap(),
        None,
        "used: no new key"
    );
    assert_eq!(
        repo.set_confirmation_key(fresh + old + 1000, b"key-3", now)
            .unwrap(),
        None
    );
}

pub fn refresh_tokens(repo: &mut impl IdentityRepo, now: Timestamp) {
    let u = repo
        .insert_user(&new_user("contract_r", "r@example.com"))
        .unwrap()
        .unwrap();
    let rec = |jti: &str, family: &str| RefreshRecord {
        jti: jti.into(),
        user_id: u.id,
        family: family.into(),
        expires_at: now + Duration::days(1),
        used: false,
        revoked: false,
    };
    repo.insert_refresh(&rec("j1", "f1")).unwrap();
    repo.insert_refresh(&rec("j2", "f1")).unwrap();
    repo.insert_refresh(&rec("j3", "f2")).unwrap();
    let got = repo.lock_refresh("j1").unwrap().unwrap();
    assert_eq!(got.family, "f1");
    assert!(!got.used && !got.revoked);
    assert_eq!(
        got.expires_at.timestamp(),
        (now + Duration::days(1)).timestamp()
    );
    repo.mark_refresh_used("j1", now).unwrap();
    assert!(repo.lock_refresh("j1").unwrap().unwrap().used);
    assert_eq!(repo.revoke_refresh_family("f1", now).unwrap(), 2);
    assert!(repo.lock_refresh("j2").unwrap().unwrap().revoked);
    assert!(!repo.lock_refresh("j3").unwrap().unwrap().revoked);
    assert_eq!(repo.revoke_user_refresh(u.id, now).unwrap(), 1);
    assert!(repo.lock_refresh("j3").unwrap().unwrap().revoked);
    assert!(repo.lock_refresh("missing").unwrap().is_none());
}

pub fn failures(repo: &mut impl IdentityRepo, now: Timestamp) {
    let a = "contract:a".to_owned();
    let b = "contract:b".to_owned();
    repo.record_failure(&[a.clone(), b.clone()], now - Duration::seconds(100))
        .unwrap();
    repo.record_failure(std::slice::from_ref(&a), now - Duration::seconds(10))
        .unwrap();
    repo.record_failure(std::slice::from_ref(&a), now - Duration::seconds(5000))
        .unwrap();
    let mut counts = repo
        .failures_since(&[a.clone(), b.clone()], now - Duration::seconds(900))
        .unwrap();
    counts.sort_by(|x, y| x.scope.cmp(&y.scope));
    assert_eq!(counts.len(), 2);
    assert_eq!(counts[0].scope, a);
    assert_eq!(counts[0].count, 2, "only failures inside the window count");
    assert_eq!(
        counts[0].oldest.map(|t| t.timestamp()),
        Some((now - Duration::seconds(100)).timestamp())
    );
    assert_eq!(counts[1].count, 1);
    repo.clear_failures(&a).unwrap();
    let counts = repo
        .failures_since(std::slice::from_ref(&a), now - Duration::seconds(900))
        .unwrap();
    assert!(counts.iter().all(|c| c.count == 0));
}

pub fn api_keys(repo: &mut impl IdentityRepo) {
    let u = repo
        .insert_user(&new_user("contract_k", "k@example.com"))
        .unwrap()
        .unwrap();
    for k in [b"k1", b"k2", b"k3"] {
        repo.insert_api_key(u.id, k).unwrap();
    }
    repo.delete_api_key(b"k3").unwrap();
    assert_eq!(
        repo.delete_api_keys_except(u.id, Some(b"k1")).unwrap(),
        1,
        "k2 goes, k1 stays"
    );
    assert_eq!(repo.delete_api_keys_except(u.id, None).unwrap(), 1);
    repo.set_password(u.id, Some("$2b$04$new")).unwrap();
    let after = repo.user_by_id(u.id).unwrap().unwrap();
    assert_eq!(after.password_hash.as_deref(), Some("$2b$04$new"));
    assert!(after.credentials_changed_at.is_some());
}

pub fn social(repo: &mut impl IdentityRepo) {
    let u = repo
        .insert_user(&new_user("contract_s", "s@example.com"))
        .unwrap()
        .unwrap();
    assert!(repo
        .user_by_social(LoginType::Google, "sub-1")
        .unwrap()
        .is_none());
    repo.link_social(u.id, LoginType::Google, "sub-1", Some("s@example.com"))
        .unwrap();
    repo.link_social(u.id, LoginType::Google, "sub-1", Some("s@example.com"))
        .unwrap();
    assert_eq!(
        repo.user_by_social(LoginType::Google, "sub-1")
            .unwrap()
            .map(|x| x.id),
        Some(u.id)
    );
    assert!(repo
        .user_by_social(LoginType::Facebook, "sub-1")
        .unwrap()
        .is_none());
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_fake_honours_the_contract() {
        let mut repo = crate::fake::FakeRepo::default();
        super::run_all(&mut repo, chrono::Utc::now());
    }
}
