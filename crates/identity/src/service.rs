//! Identity workflows over [`IdentityRepo`]. Each function is meant to run inside one database
//! transaction; none of them hashes passwords (bcrypt runs on the blocking pool, outside the
//! transaction, and its result is passed in).
use crate::jwt::{JwtKeys, TokenPair, TokenType};
use crate::model::{LoginType, NewUser, SocialProfile, User};
use crate::repo::{IdentityRepo, RefreshRecord};
use crate::secrets::{key_hash, new_api_key, new_confirmation_key};
use crate::validate::{self, Registration};
use crate::{IdentityError, CONFIRMATION_TTL};
use oasis_kernel::{FieldErrors, RepoError, Timestamp};

pub const EMAIL_TAKEN: &str = "A user is already registered with this e-mail address.";
pub const USERNAME_TAKEN: &str = "A user with that username already exists.";
pub const EMAIL_CONSTRAINT: &str = "users_email_lower_key";
pub const USERNAME_CONSTRAINT: &str = "users_username_lower_key";

/// Uniqueness problems of a registration, found before the (slow) password hash is computed.
pub fn registration_conflicts(
    repo: &mut impl IdentityRepo,
    reg: &Registration,
) -> Result<FieldErrors, RepoError> {
    let mut e = FieldErrors::new();
    if repo.user_by_email(&reg.email)?.is_some() {
        e.add("email", EMAIL_TAKEN);
    }
    if repo.user_by_username(&reg.username)?.is_some() {
        e.add("username", USERNAME_TAKEN);
    }
    Ok(e)
}

/// Creates an unverified manual account and its first pending confirmation (its id is returned:
/// the email is rendered, with a fresh key, when it is sent — [`issue_confirmation_key`]).
pub fn register(
    repo: &mut impl IdentityRepo,
    reg: &Registration,
    password_hash: String,
    now: Timestamp,
) -> Result<(User, i64), IdentityError> {
    let new = NewUser {
        username: reg.username.clone(),
        email: reg.email.clone(),
        first_name: reg.first_name.clone(),
        last_name: reg.last_name.clone(),
        password_hash: Some(password_hash),
        login_type: LoginType::Manual,
        email_verified: false,
        profile_pic: None,
    };
    let Some(user) = repo.insert_user(&new)? else {
        // Lost a race with another registration: say which field.
        let e = registration_conflicts(repo, reg)?;
        return Err(if e.is_empty() {
            IdentityError::field("username", USERNAME_TAKEN)
        } else {
            IdentityError::Invalid(e)
        });
    };
    let confirmation = start_confirmation(repo, user.id, &user.email, now)?;
    Ok((user, confirmation))
}

/// Records a pending confirmation of `email` (3 days) and returns its id, to be mailed. No key
/// exists yet: [`issue_confirmation_key`] mints it when the email is sent.
pub fn start_confirmation(
    repo: &mut impl IdentityRepo,
    user_id: i64,
    email: &str,
    now: Timestamp,
) -> Result<i64, RepoError> {
    repo.insert_confirmation(user_id, email, now + CONFIRMATION_TTL)
}

/// A confirmation key just minted for a pending confirmation, to be mailed to `email`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedKey {
    pub user_id: i64,
    pub email: String,
    pub key: String,
}

/// Mints the key of a pending confirmation at send time (only its hash is stored; a second call,
/// e.g. a retried send, replaces it). `None` when the confirmation was used, expired or is gone:
/// nothing to send.
pub fn issue_confirmation_key(
    repo: &mut impl IdentityRepo,
    confirmation_id: i64,
    now: Timestamp,
) -> Result<Option<IssuedKey>, RepoError> {
    let key = new_confirmation_key();
    Ok(repo
        .set_confirmation_key(confirmation_id, &key_hash(&key), now)?
        .map(|(user_id, email)| IssuedKey {
            user_id,
            email,
            key,
        }))
}

/// Confirms the email a key was issued for (single use, 3 days): the account's email becomes
/// that address, verified.
pub fn confirm_email(
    repo: &mut impl IdentityRepo,
    key: &str,
    now: Timestamp,
) -> Result<User, IdentityError> {
    let (user_id, email) = repo
        .consume_confirmation(&key_hash(key.trim()), now)?
        .ok_or(IdentityError::NotFound)?;
    if let Some(other) = repo.user_by_email(&email)? {
        if other.id != user_id {
            return Err(IdentityError::field("key", EMAIL_TAKEN));
        }
    }
    match repo.set_email(user_id, &email, true) {
        Err(e) if e.is_conflict_on(EMAIL_CONSTRAINT) => {
            return Err(IdentityError::field("key", EMAIL_TAKEN))
        }
        r => r?,
    }
    repo.user_by_id(user_id)?.ok_or(IdentityError::NotFound)
}

/// Asks to change the email: nothing changes until the new address is confirmed. Returns the
/// pending confirmation to mail, or `None` when the address is the current one.
pub fn request_email_change(
    repo: &mut impl IdentityRepo,
    user: &User,
    new_email: &str,
    now: Timestamp,
) -> Result<Option<i64>, IdentityError> {
    let new_email = new_email.trim();
    if new_email.eq_ignore_ascii_case(&user.email) {
        return Ok(None);
    }
    if !validate::is_valid_email(new_email) {
        return Err(IdentityError::field("email", validate::INVALID_EMAIL));
    }
    if repo.user_by_email(new_email)?.is_some() {
        return Err(IdentityError::field("email", EMAIL_TAKEN));
    }
    Ok(Some(start_confirmation(repo, user.id, new_email, now)?))
}

/// Identity emails one account may receive per hour (verification, reset, email change).
pub const MAILS_PER_HOUR: u32 = 5;

/// Whether another identity email may go to the user now; if so, it is recorded. Callers answer
/// the same either way (no enumeration), they only skip the send.
pub fn may_mail(
    repo: &mut impl IdentityRepo,
    user_id: i64,
    kind: &str,
    now: Timestamp,
) -> Result<bool, RepoError> {
    if repo.mails_since(user_id, now - chrono::Duration::hours(1))? >= MAILS_PER_HOUR {
        return Ok(false);
    }
    repo.log_mail(user_id, kind, now)?;
    Ok(true)
}

/// Failed-login throttle settings.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub max_failures: u32,
    pub window: chrono::Duration,
}

/// The throttle scopes of a login attempt: the account (or, when no account matches, the
/// identifier typed, so unknown names are throttled alike) and the client address.
pub fn login_scopes(identifier: &str, user: Option<&User>, client: &str) -> Vec<String> {
    let account = match user {
        Some(u) => format!("user:{}", u.id),
        None => format!("login:{}", identifier.trim().to_lowercase()),
    };
    vec![account, format!("addr:{client}")]
}

/// `Err(Throttled)` when any scope reached the limit within the window.
pub fn check_throttle(
    repo: &mut impl IdentityRepo,
    scopes: &[String],
    policy: ThrottlePolicy,
    now: Timestamp,
) -> Result<(), IdentityError> {
    if policy.max_failures == 0 {
        return Ok(());
    }
    let counts = repo.failures_since(scopes, now - policy.window)?;
    let mut retry: Option<i64> = None;
    for c in counts {
        if c.count >= policy.max_failures {
            let oldest = c.oldest.unwrap_or(now);
            let secs = (oldest + policy.window - now).num_seconds().max(1);
            retry = Some(retry.map_or(secs, |r| r.max(secs)));
        }
    }
    match retry {
        Some(s) => Err(IdentityError::Throttled {
            retry_after_secs: s as u64,
        }),
        None => Ok(()),
    }
}

/// What a password login ends with (all outcomes commit: failures are recorded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    Success(Box<User>),
    BadCredentials,
    NotVerified,
}

/// Records the result of a password check: a failure counts against every scope, a success
/// clears the account's failures. An unverified account with the right password is refused.
pub fn finish_login(
    repo: &mut impl IdentityRepo,
    user: Option<User>,
    password_ok: bool,
    scopes: &[String],
    now: Timestamp,
) -> Result<LoginOutcome, RepoError> {
    let user = match user {
        Some(u) if password_ok && u.is_active => u,
        _ => {
            repo.record_failure(scopes, now)?;
            return Ok(LoginOutcome::BadCredentials);
        }
    };
    if let Some(account) = scopes.first() {
        repo.clear_failures(account)?;
    }
    if !user.email_verified {
        return Ok(LoginOutcome::NotVerified);
    }
    Ok(LoginOutcome::Success(Box::new(user)))
}

/// Creates an API key for the user; the key is returned once and only its hash is stored.
pub fn issue_api_key(repo: &mut impl IdentityRepo, user_id: i64) -> Result<String, RepoError> {
    let key = new_api_key();
    repo.insert_api_key(user_id, &key_hash(&key))?;
    Ok(key)
}

/// Issues an access/refresh pair and records the refresh token (a new family unless given).
pub fn issue_jwt_pair(
    repo: &mut impl IdentityRepo,
    keys: &JwtKeys,
    user_id: i64,
    family: Option<&str>,
    now: Timestamp,
) -> Result<TokenPair, RepoError> {
    let pair = keys.pair(user_id, now);
    let c = &pair.refresh_claims;
    repo.insert_refresh(&RefreshRecord {
        jti: c.jti.clone(),
        user_id,
        family: family.map_or_else(|| c.jti.clone(), str::to_owned),
        expires_at: c.expires_at(),
        used: false,
        revoked: false,
    })?;
    Ok(pair)
}

/// What presenting a refresh token ends with; both outcomes commit (a reuse revokes a family).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    Rotated(TokenPair),
    /// Invalid, expired, revoked or reused (→ 401).
    Refused,
}

/// Rotates a refresh token: the presented one is used up and a new pair of the same family is
/// issued. Presenting an already-rotated token revokes its whole family (a stolen token and the
/// legitimate one cannot both keep working).
pub fn rotate_refresh(
    repo: &mut impl IdentityRepo,
    keys: &JwtKeys,
    token: &str,
    now: Timestamp,
) -> Result<RefreshOutcome, RepoError> {
    let Ok(claims) = keys.decode(token, Some(TokenType::Refresh), now) else {
        return Ok(RefreshOutcome::Refused);
    };
    let Some(rec) = repo.lock_refresh(&claims.jti)? else {
        return Ok(RefreshOutcome::Refused);
    };
    if rec.revoked || rec.user_id != claims.user_id {
        return Ok(RefreshOutcome::Refused);
    }
    if rec.used {
        repo.revoke_refresh_family(&rec.family, now)?;
        return Ok(RefreshOutcome::Refused);
    }
    match repo.user_by_id(rec.user_id)? {
        Some(u) if u.is_active => {}
        _ => return Ok(RefreshOutcome::Refused),
    }
    repo.mark_refresh_used(&rec.jti, now)?;
    Ok(RefreshOutcome::Rotated(issue_jwt_pair(
        repo,
        keys,
        rec.user_id,
        Some(&rec.family),
        now,
    )?))
}

/// A refresh token is valid right now (signature, expiry, not revoked or used) — for `verify`.
pub fn refresh_is_live(repo: &mut impl IdentityRepo, jti: &str) -> Result<bool, RepoError> {
    Ok(repo
        .lock_refresh(jti)?
        .is_some_and(|r| !r.revoked && !r.used))
}

/// Sets a new password hash and revokes every other API key (all but `keep`) and every refresh
/// token of the user.
pub fn replace_password(
    repo: &mut impl IdentityRepo,
    user_id: i64,
    new_hash: &str,
    keep_key: Option<&[u8]>,
    now: Timestamp,
) -> Result<(), RepoError> {
    repo.set_password(user_id, Some(new_hash))?;
    repo.delete_api_keys_except(user_id, keep_key)?;
    repo.revoke_user_refresh(user_id, now)?;
    Ok(())
}

/// The username a social account starts from: the person's name, else the email's local part,
/// reduced to `[a-z0-9_.-]`, 3–24 characters.
pub fn username_base(first: &str, last: &str, email: Option<&str>) -> String {
    let clean = |s: &str| -> String {
        s.to_lowercase()
            .chars()
            .filter_map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                    Some(c)
                } else if c.is_whitespace() {
                    Some('_')
                } else {
                    None
                }
            })
            .collect()
    };
    let mut base = clean(&format!("{} {}", first.trim(), last.trim()));
    base = base
        .trim_matches(|c| matches!(c, '_' | '.' | '-'))
        .to_owned();
    if base.len() < 3 {
        if let Some(local) = email.and_then(|e| e.split('@').next()) {
            base = clean(local);
        }
    }
    if base.len() < 3 {
        base = format!("user{base}");
    }
    base.truncate(24);
    base
}

/// The n-th candidate username for a base (`base`, `base1`, `base2`, ...).
pub fn username_candidate(base: &str, n: u32) -> String {
    if n == 0 {
        base.to_owned()
    } else {
        format!("{base}{n}")
    }
}

pub const SOCIAL_EMAIL_REQUIRED: &str =
    "The identity provider did not share an e-mail address; allow e-mail access and try again.";
pub const SOCIAL_EMAIL_UNVERIFIED: &str =
    "An account with this e-mail address already exists. Sign in with your password; the provider did not verify this e-mail address.";

/// Resolves a verified provider identity to an account: the linked account; else the account
/// with the same email when the provider verified it (linked from now on); else a new account
/// (unique username derived from the name, no usable password). An unverified email that
/// matches an existing account is refused, never linked.
pub fn social_login(
    repo: &mut impl IdentityRepo,
    profile: &SocialProfile,
) -> Result<(User, bool), IdentityError> {
    if let Some(u) = repo.user_by_social(profile.provider, &profile.subject)? {
        if !u.is_active {
            return Err(IdentityError::BadCredentials);
        }
        return Ok((u, false));
    }
    let email = profile
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| IdentityError::Social(SOCIAL_EMAIL_REQUIRED.into()))?;
    if !validate::is_valid_email(email) {
        return Err(IdentityError::Social(
            "The identity provider sent an invalid e-mail address.".into(),
        ));
    }
    if let Some(existing) = repo.user_by_email(email)? {
        if !profile.email_verified {
            return Err(IdentityError::Social(SOCIAL_EMAIL_UNVERIFIED.into()));
        }
        if !existing.is_active {
            return Err(IdentityError::BadCredentials);
        }
        repo.link_social(existing.id, profile.provider, &profile.subject, Some(email))?;
        if !existing.email_verified {
            repo.set_email(existing.id, &existing.email, true)?;
        }
        let u = repo
            .user_by_id(existing.id)?
            .ok_or(IdentityError::NotFound)?;
        return Ok((u, false));
    }
    let base = username_base(&profile.first_name, &profile.last_name, Some(email));
    // Provider data goes to PostgreSQL: no NUL characters, names at most 150 characters.
    let cap = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '\0')
            .take(validate::NAME_MAX)
            .collect()
    };
    let mut new = NewUser {
        username: String::new(),
        email: email.to_owned(),
        first_name: cap(&profile.first_name),
        last_name: cap(&profile.last_name),
        password_hash: None,
        login_type: profile.provider,
        email_verified: profile.email_verified,
        profile_pic: profile.picture.clone().filter(|p| !p.contains('\0')),
    };
    for n in 0..50 {
        new.username = if n < 20 {
            username_candidate(&base, n)
        } else {
            // Crowded base: random suffixes.
            format!("{base}{}", rand::random::<u32>() % 1_000_000)
        };
        if let Some(u) = repo.insert_user(&new)? {
            repo.link_social(u.id, profile.provider, &profile.subject, Some(email))?;
            return Ok((u, true));
        }
        if repo.user_by_email(email)?.is_some() {
            // Someone registered this email meanwhile: never take it over.
            return Err(IdentityError::Social(SOCIAL_EMAIL_UNVERIFIED.into()));
        }
    }
    Err(IdentityError::Repo(RepoError::Conflict {
        constraint: USERNAME_CONSTRAINT.into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeRepo;
    use chrono::{Duration, Utc};

    fn keys() -> JwtKeys {
        JwtKeys::from_secret(b"0123456789abcdef0123456789abcdef", 300, 86400)
    }

    fn reg(name: &str) -> Registration {
        Registration {
            email: format!("{name}@example.com"),
            first_name: "A".into(),
            last_name: "B".into(),
            username: name.into(),
            password: "x".into(),
        }
    }

    #[test]
    fn register_then_confirm_once() {
        let mut r = FakeRepo::default();
        let now = Utc::now();
        let (u, pending) = register(&mut r, &reg("amy"), "h".into(), now).unwrap();
        assert!(!u.email_verified);
        let issued = issue_confirmation_key(&mut r, pending, now)
            .unwrap()
            .unwrap();
        assert_eq!(
            (issued.user_id, issued.email.as_str()),
            (u.id, "amy@example.com")
        );
        let key = issued.key;
        let u = confirm_email(&mut r, &key, now).unwrap();
        assert!(u.email_verified);
        assert!(matches!(
            confirm_email(&mut r, &key, now),
            Err(IdentityError::NotFound)
        ));
    }

    #[test]
    fn confirmation_expires_after_three_days() {
        let mut r = FakeRepo::default();
        let now = Utc::now();
        let (_, pending) = register(&mut r, &reg("amy"), "h".into(), now).unwrap();
        let key = issue_confirmation_key(&mut r, pending, now)
            .unwrap()
            .unwrap()
            .key;
        let later = now + CONFIRMATION_TTL + Duration::seconds(1);
        assert_eq!(
            issue_confirmation_key(&mut r, pending, later).unwrap(),
            None,
            "an expired confirmation is not mailed"
        );
        assert!(matches!(
            confirm_email(&mut r, &key, later),
            Err(IdentityError::NotFound)
        ));
    }

    #[test]
    fn duplicate_registration_names_the_field() {
        let mut r = FakeRepo::default();
        let now = Utc::now();
        register(&mut r, &reg("amy"), "h".into(), now).unwrap();
        let mut again = reg("amy");
        again.username = "AMY".into();
        again.email = "other@example.com".into();
        match register(&mut r, &again, "h".into(), now) {
            Err(IdentityError::Invalid(e)) => assert!(e.has("username"), "{e}"),
            other => panic!("{other:?}"),
        }
        let e = registration_conflicts(&mut r, &reg("amy")).unwrap();
        assert!(e.has("username") && e.has("email"));
    }

    #[test]
    fn email_change_waits_for_confirmation() {
        let mut r = FakeRepo::default();
        let now = Utc::now();
        let (u, _) = register(&mut r, &reg("amy"), "h".into(), now).unwrap();
        let pending = request_email_change(&mut r, &u, "new@example.com", now)
            .unwrap()
            .unwrap();
        let key = issue_confirmation_key(&mut r, pending, now)
            .unwrap()
            .unwrap()
            .key;
        assert_eq!(
            r.user_by_id(u.id).unwrap().unwrap().email,
            "amy@example.com"
        );
        let u2 = confirm_email(&mut r, &key, now).unwrap();
        assert_eq!(u2.email, "new@example.com");
        assert!(request_email_change(&mut r, &u2, "NEW@example.com", now)
            .unwrap()
            .is_none());
    }

    #[test]
    fn identity_mails_are_capped_per_hour() {
        let mut r = FakeRepo::default();
        let now = Utc::now();
        for _ in 0..MAILS_PER_HOUR {
            assert!(may_mail(&mut r, 1, "reset", now).unwrap());
        }
        assert!(!may_mail(&mut r, 1, "reset", now).unwrap());
        assert!(may_mail(&mut r, 2, "reset", now).unwrap(), "per account");
        assert!(may_mail(&mut r, 1, "reset", now + Duration::minutes(61)).unwrap());
    }

    #[test]
    fn throttle_counts_failures_per_scope() {
        let mut r = FakeRepo::default();
        let now = Utc::now();
        let policy = ThrottlePolicy {
            max_failures: 3,
            window: Duration::seconds(900),
        };
        let scopes = login_scopes("Bob", None, "10.0.0.1");
        assert_eq!(scopes[0], "login:bob");
        for _ in 0..3 {
            check_throttle(&mut r, &scopes, policy, now).unwrap();
            assert_eq!(
                finish_login(&mut r, None, false, &scopes, now).unwrap(),
                LoginOutcome::BadCredentials
            );
        }
        match check_throttle(&mut r, &scopes, policy, now + Duration::seconds(100)) {
            Err(IdentityError::Throttled { retry_after_secs }) => assert_eq!(retry_after_secs, 800),
            other => panic!("{other:?}"),
        }
        // Another address with the same name is throttled by the account scope too.
        let other = login_scopes("bob", None, "10.0.0.2");
        assert!(check_throttle(&mut r, &other, policy, now).is_err());
        // The window passes.
        check_throttle(&mut r, &scopes, policy, now + Duration::seconds(901)).unwrap();
    }

    #[test]
    fn unverified_login_is_refused_only_with_the_right_password() {
        let mut r = FakeRepo::default();
        let now = Utc::now();
        let (u, _) = register(&mut r, &reg("amy"), "h".into(), now).unwrap();
        let scopes = login_scopes("amy", Some(&u), "a");
        assert_eq!(
            finish_login(&mut r, Some(u.clone()), false, &scopes, now).unwrap(),
            LoginOutcome::BadCredentials
        );
        assert_eq!(
            finish_login(&mut r, Some(u), true, &scopes, now).unwrap(),
            LoginOutcome::NotVerified
        );
    }

    #[test]
    fn refresh_rotation_and_reuse_revokes_family() {
        let mut r = FakeRepo::default();
        let k = keys();
        let now = Utc::now();
        let (u, _) = register(&mut r, &reg("amy"), "h".into(), now).unwrap();
        let p1 = issue_jwt_pair(&mut r, &k, u.id, None, now).unwrap();
        let RefreshOutcome::Rotated(p2) = rotate_refresh(&mut r, &k, &p1.refresh, now).unwrap()
        else {
            panic!("first rotation works")
        };
        // Reusing the rotated token is refused and kills the family, including p2.
        assert_eq!(
            rotate_refresh(&mut r, &k, &p1.refresh, now).unwrap(),
            RefreshOutcome::Refused
        );
        assert_eq!(
            rotate_refresh(&mut r, &k, &p2.refresh, now).unwrap(),
            RefreshOutcome::Refused
        );
        // An access token is not a refresh token.
        assert_eq!(
            rotate_refresh(&mut r, &k, &p2.access, now).unwrap(),
            RefreshOutcome::Refused
        );
        // A new login is a new family.
        let p3 = issue_jwt_pair(&mut r, &k, u.id, None, now).unwrap();
        assert!(matches!(
            rotate_refresh(&mut r, &k, &p3.refresh, now).unwrap(),
            RefreshOutcome::Rotated(_)
        ));
    }

    #[test]
    fn password_replacement_revokes_other_keys_and_refresh_tokens() {
        let mut r = FakeRepo::default();
        let k = keys();
        let now = Utc::now();
        let (u, _) = register(&mut r, &reg("amy"), "h".into(), now).unwrap();
        let keep = issue_api_key(&mut r, u.id).unwrap();
        let _other = issue_api_key(&mut r, u.id).unwrap();
        let p = issue_jwt_pair(&mut r, &k, u.id, None, now).unwrap();
        let (_, old_claims) = k.issue(u.id, TokenType::Access, now - Duration::seconds(5));
        assert!(r
            .user_by_id(u.id)
            .unwrap()
            .unwrap()
            .accepts_token_issued_at(old_claims.iat));
        replace_password(&mut r, u.id, "h2", Some(&key_hash(&keep)), now).unwrap();
        let after = r.user_by_id(u.id).unwrap().unwrap();
        assert!(!after.accepts_token_issued_at(old_claims.iat));
        assert!(after.accepts_token_issued_at(Utc::now().timestamp()));
        assert_eq!(r.api_keys.len(), 1);
        assert_eq!(
            rotate_refresh(&mut r, &k, &p.refresh, now).unwrap(),
            RefreshOutcome::Refused
        );
    }

    fn profile(sub: &str, email: &str, verified: bool) -> SocialProfile {
        SocialProfile {
            provider: LoginType::Google,
            subject: sub.into(),
            email: Some(email.into()),
            email_verified: verified,
            first_name: "Ann".into(),
            last_name: "Lee".into(),
            picture: None,
        }
    }

    #[test]
    fn social_first_login_creates_then_finds() {
        let mut r = FakeRepo::default();
        let (u, created) = social_login(&mut r, &profile("g1", "ann@x.com", true)).unwrap();
        assert!(created);
        assert_eq!(u.username, "ann_lee");
        assert!(u.password_hash.is_none());
        assert_eq!(u.login_type, "google");
        let (again, created) = social_login(&mut r, &profile("g1", "ann@x.com", true)).unwrap();
        assert!(!created);
        assert_eq!(again.id, u.id);
        // A different person with the same name gets a distinct username.
        let (other, _) = social_login(&mut r, &profile("g2", "ann2@x.com", true)).unwrap();
        assert_eq!(other.username, "ann_lee1");
    }

    #[test]
    fn verified_email_links_unverified_never_takes_over() {
        let mut r = FakeRepo::default();
        let now = Utc::now();
        let (u, _) = register(&mut r, &reg("amy"), "h".into(), now).unwrap();
        let err = social_login(&mut r, &profile("g9", "AMY@example.com", false)).unwrap_err();
        assert!(matches!(err, IdentityError::Social(_)));
        let (linked, created) =
            social_login(&mut r, &profile("g9", "AMY@example.com", true)).unwrap();
        assert!(!created);
        assert_eq!(linked.id, u.id);
        assert!(linked.email_verified);
        let mut no_email = profile("g10", "", true);
        no_email.email = None;
        assert!(matches!(
            social_login(&mut r, &no_email),
            Err(IdentityError::Social(_))
        ));
    }

    #[test]
    fn username_bases() {
        assert_eq!(username_base("Jo", "", Some("joanna.k@x.com")), "joanna.k");
        assert_eq!(username_base("", "", None), "user");
        assert_eq!(username_base("Élodie", "Ñ", None), "lodie");
        assert_eq!(username_base(&"x".repeat(40), "", None).len(), 24);
        assert!(validate::username_errors(&username_base("A B", "C", None)).is_empty());
    }
}
