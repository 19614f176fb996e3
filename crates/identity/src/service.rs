//! Identity workflows over [`IdentityRepo`]. Each function is meant to run inside one database
//! transaction; none of them hashes passwords (bcrypt runs on the blocking pool, outside the
//! transaction, and its result is passed in).
use crate::jwt::{JwtKeys, TokenPair, TokenType};
use crate::model::{LoginType, NewUser, SocialProfile, User};
use crate::repo::{FailureCount, IdentityRepo, PendingChange, RefreshRecord, Reservation};
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
    match check_new_email(repo, user, new_email)? {
        Some(email) => Ok(Some(start_confirmation(repo, user.id, &email, now)?)),
        None => Ok(None),
    }
}

/// The address an email change would move to (trimmed), checked: valid and not taken. `None`
/// when it is the current address (nothing to change).
pub fn check_new_email(
    repo: &mut impl IdentityRepo,
    user: &User,
    new_email: &str,
) -> Result<Option<String>, IdentityError> {
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
    Ok(Some(new_email.to_owned()))
}

/// Stores a change that waits for the link mailed to the account's current address (accounts
/// without a usable password confirm sensitive changes that way); returns its id. The link's
/// token is minted when the email is sent ([`issue_pending_change_token`]): nothing secret
/// waits in a job. Single use, [`crate::CHANGE_TTL`]; only a hash is stored. A newer request of
/// the same kind replaces an older one.
pub fn request_pending_change(
    repo: &mut impl IdentityRepo,
    change: &PendingChange,
    now: Timestamp,
) -> Result<i64, RepoError> {
    // A token nobody ever sees, until the sender replaces it.
    let unseen = new_confirmation_key();
    repo.insert_pending_change(change, &key_hash(&unseen), now + crate::CHANGE_TTL)
}

/// Mints the token of a pending change at send time (a retried send replaces it); returns the
/// user id and the token, `None` when the change was used, cancelled or expired.
pub fn issue_pending_change_token(
    repo: &mut impl IdentityRepo,
    id: i64,
    now: Timestamp,
) -> Result<Option<(i64, String)>, RepoError> {
    let token = new_confirmation_key();
    Ok(repo
        .rekey_pending_change(id, &key_hash(&token), now)?
        .map(|user_id| (user_id, token)))
}

/// Uses up a pending-change token; `NotFound` when unknown, used, cancelled or expired.
pub fn consume_pending_change(
    repo: &mut impl IdentityRepo,
    token: &str,
    now: Timestamp,
) -> Result<PendingChange, IdentityError> {
    repo.consume_pending_change(&key_hash(token.trim()), now)?
        .ok_or(IdentityError::NotFound)
}

/// Identity emails one account may receive per hour by default (verification, reset, email
/// change; the server's `OASIS_IDENTITY_MAILS_PER_HOUR`).
pub const MAILS_PER_HOUR: u32 = 5;

/// Whether another identity email may go to the user now, at most `per_hour` an hour; if so,
/// it is recorded. Callers answer the same either way (no enumeration), they only skip the send.
pub fn may_mail(
    repo: &mut impl IdentityRepo,
    user_id: i64,
    kind: &str,
    now: Timestamp,
    per_hour: u32,
) -> Result<bool, RepoError> {
    if repo.mails_since(user_id, now - chrono::Duration::hours(1))? >= per_hour {
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

fn retry_after(counts: Vec<FailureCount>, policy: ThrottlePolicy, now: Timestamp) -> Option<u64> {
    counts
        .into_iter()
        .filter(|c| c.count >= policy.max_failures)
        .map(|c| {
            let oldest = c.oldest.unwrap_or(now);
            (oldest + policy.window - now).num_seconds().max(1) as u64
        })
        .max()
}

/// `Err(Throttled)` when any scope reached the limit within the window. Records nothing: a
/// cheap early refusal only — what must hold under concurrency is [`reserve_attempt`]'s job.
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
    match retry_after(counts, policy, now) {
        Some(s) => Err(IdentityError::Throttled {
            retry_after_secs: s,
        }),
        None => Ok(()),
    }
}

/// A password attempt reserved against the throttle before the password is checked. It counts
/// as a failure in each of its scopes unless [`finish_login`] (or [`release_attempt`]) releases
/// it after the password proved right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub scopes: Vec<String>,
    ids: Vec<i64>,
}

/// Reserves one password attempt in every scope, atomically (run it in its own transaction and
/// commit before checking the password): `Err(Throttled)` when a scope already holds
/// `policy.max_failures` attempts in the window, even when requests race — at most that many
/// passwords are ever evaluated per scope and window.
pub fn reserve_attempt(
    repo: &mut impl IdentityRepo,
    scopes: &[String],
    policy: ThrottlePolicy,
    now: Timestamp,
) -> Result<Attempt, IdentityError> {
    if policy.max_failures == 0 {
        return Ok(Attempt {
            scopes: scopes.to_vec(),
            ids: Vec::new(),
        });
    }
    match repo.reserve_attempt(scopes, policy.max_failures, now - policy.window, now)? {
        Reservation::Reserved(ids) => Ok(Attempt {
            scopes: scopes.to_vec(),
            ids,
        }),
        Reservation::Refused(counts) => Err(IdentityError::Throttled {
            retry_after_secs: retry_after(counts, policy, now).unwrap_or(1),
        }),
    }
}

/// Releases a reserved attempt whose password proved right, and forgets the failures of its
/// account scope (the first scope), as a successful login does.
pub fn release_attempt(repo: &mut impl IdentityRepo, attempt: &Attempt) -> Result<(), RepoError> {
    repo.release_attempts(&attempt.ids)?;
    if let Some(account) = attempt.scopes.first() {
        repo.clear_failures(account)?;
    }
    Ok(())
}

/// New accounts one client address may create per hour, shared by registration and guest
/// checkout (`OASIS_REGISTRATIONS_PER_HOUR`; 0 = no limit).
pub fn registration_policy(per_hour: u32) -> ThrottlePolicy {
    ThrottlePolicy {
        max_failures: per_hour,
        window: chrono::Duration::hours(1),
    }
}

/// The throttle scope of new accounts from one client address (counted in the same per-scope
/// table as failed logins, under its own prefix).
pub fn registration_scopes(client: &str) -> Vec<String> {
    vec![format!("register:{client}")]
}

/// Early refusal of a new account from `client` (records nothing; call before hashing).
pub fn check_registration_limit(
    repo: &mut impl IdentityRepo,
    client: &str,
    per_hour: u32,
    now: Timestamp,
) -> Result<(), IdentityError> {
    check_throttle(
        repo,
        &registration_scopes(client),
        registration_policy(per_hour),
        now,
    )
}

/// Counts one new account from `client` against the hourly limit, atomically; call it in the
/// transaction that creates the account, so a failed creation rolls the count back too.
/// `Err(Throttled)` (429 with Retry-After) when the address reached the limit.
pub fn reserve_registration(
    repo: &mut impl IdentityRepo,
    client: &str,
    per_hour: u32,
    now: Timestamp,
) -> Result<(), IdentityError> {
    reserve_attempt(
        repo,
        &registration_scopes(client),
        registration_policy(per_hour),
        now,
    )
    .map(|_| ())
}

/// What a password login ends with (all outcomes commit: failures are recorded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    Success(Box<User>),
    BadCredentials,
    NotVerified,
}

/// Settles a reserved attempt after the password check: a failure stays counted in every scope;
/// a success releases it and clears the account's failures. `user` is the account as read when
/// its password was checked: it is locked and read again, and if its password or sessions
/// changed meanwhile (a password change, a claim by a verified owner), the check no longer
/// counts. An unverified account with the right password is refused.
pub fn finish_login(
    repo: &mut impl IdentityRepo,
    user: Option<User>,
    password_ok: bool,
    attempt: &Attempt,
) -> Result<LoginOutcome, RepoError> {
    let checked = match user {
        Some(u) if password_ok => u,
        _ => return Ok(LoginOutcome::BadCredentials),
    };
    let user = match repo.lock_user(checked.id)? {
        Some(now)
            if now.is_active
                && now.password_hash.is_some()
                && now.password_hash == checked.password_hash
                && now.session_epoch == checked.session_epoch =>
        {
            now
        }
        _ => return Ok(LoginOutcome::BadCredentials),
    };
    release_attempt(repo, attempt)?;
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

/// Issues an access/refresh pair under the account's session epoch and records the refresh
/// token (a new family unless given).
pub fn issue_jwt_pair(
    repo: &mut impl IdentityRepo,
    keys: &JwtKeys,
    user: &User,
    family: Option<&str>,
    now: Timestamp,
) -> Result<TokenPair, RepoError> {
    let pair = keys.pair(user.id, user.session_epoch, now);
    let c = &pair.refresh_claims;
    repo.insert_refresh(&RefreshRecord {
        jti: c.jti.clone(),
        user_id: user.id,
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
    let user = match repo.user_by_id(rec.user_id)? {
        Some(u) if u.is_active && u.accepts_token(claims.iat, claims.epoch) => u,
        _ => return Ok(RefreshOutcome::Refused),
    };
    repo.mark_refresh_used(&rec.jti, now)?;
    Ok(RefreshOutcome::Rotated(issue_jwt_pair(
        repo,
        keys,
        &user,
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

/// Sets a new password hash and ends every other session: every API key but `keep`, every
/// refresh token and every JWT issued so far (the session epoch moves on).
pub fn replace_password(
    repo: &mut impl IdentityRepo,
    user_id: i64,
    new_hash: &str,
    keep_key: Option<&[u8]>,
    now: Timestamp,
) -> Result<(), RepoError> {
    repo.set_password(user_id, Some(new_hash))?;
    end_sessions(repo, user_id, keep_key, now)
}

/// Ends the account's sessions: API keys (all but `keep`), refresh tokens, and JWTs (by moving
/// the session epoch on).
fn end_sessions(
    repo: &mut impl IdentityRepo,
    user_id: i64,
    keep_key: Option<&[u8]>,
    now: Timestamp,
) -> Result<(), RepoError> {
    repo.bump_session_epoch(user_id)?;
    repo.delete_api_keys_except(user_id, keep_key)?;
    repo.revoke_user_refresh(user_id, now)?;
    Ok(())
}

/// The owner of an unverified account's address proved it (a provider that verified the email,
/// or a password-reset link that reached it): whoever registered the account may have been
/// someone else (pre-account takeover), so the prover gets sole control. The account keeps its
/// id and data, but loses everything the registrant could still hold: its password (replaced
/// by `new_hash`, or made unusable — the owner can set one through reset), every API key,
/// refresh token and JWT, every linked provider identity (none of them verified the address),
/// every unused confirmation key (a pending email change would hand the account back) and
/// every pending change. The address is then marked verified. Callers link the new provider
/// identity afterwards.
pub fn claim_unverified(
    repo: &mut impl IdentityRepo,
    user: &User,
    new_hash: Option<&str>,
    now: Timestamp,
) -> Result<(), RepoError> {
    repo.set_password(user.id, new_hash)?;
    end_sessions(repo, user.id, None, now)?;
    repo.unlink_all_social(user.id)?;
    repo.cancel_confirmations(user.id, now)?;
    repo.cancel_pending_changes(user.id, now)?;
    repo.set_email(user.id, &user.email, true)?;
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
/// with the same email when the provider verified it (linked from now on; an account whose
/// email was never verified is claimed first, see [`claim_unverified`]); else a new account
/// (unique username derived from the name, no usable password). An unverified email that
/// matches an existing account is refused, never linked.
pub fn social_login(
    repo: &mut impl IdentityRepo,
    profile: &SocialProfile,
    now: Timestamp,
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
    if let Some(found) = repo.user_by_email(email)? {
        if !profile.email_verified {
            return Err(IdentityError::Social(SOCIAL_EMAIL_UNVERIFIED.into()));
        }
        // Locked: a password login or change racing with the claim settles on either side of it.
        let existing = repo.lock_user(found.id)?.ok_or(IdentityError::NotFound)?;
        if !existing.is_active {
            return Err(IdentityError::BadCredentials);
        }
        if !existing.email_verified {
            claim_unverified(repo, &existing, None, now)?;
        }
        repo.link_social(existing.id, profile.provider, &profile.subject, Some(email))?;
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
            assert!(may_mail(&mut r, 1, "reset", now, MAILS_PER_HOUR).unwrap());
        }
        assert!(!may_mail(&mut r, 1, "reset", now, MAILS_PER_HOUR).unwrap());
        assert!(
            may_mail(&mut r, 2, "reset", now, MAILS_PER_HOUR).unwrap(),
            "per account"
        );
        assert!(may_mail(
            &mut r,
            1,
            "reset",
            now + Duration::minutes(61),
            MAILS_PER_HOUR
        )
        .unwrap());
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
            let attempt = reserve_attempt(&mut r, &scopes, policy, now).unwrap();
            assert_eq!(
                finish_login(&mut r, None, false, &attempt).unwrap(),
                LoginOutcome::BadCredentials
            );
        }
        match check_throttle(&mut r, &scopes, policy, now + Duration::seconds(100)) {
            Err(IdentityError::Throttled { retry_after_secs }) => assert_eq!(retry_after_secs, 800),
            other => panic!("{other:?}"),
        }
        match reserve_attempt(&mut r, &scopes, policy, now + Duration::seconds(100)) {
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
        let policy = ThrottlePolicy {
            max_failures: 2,
            window: Duration::seconds(900),
        };
        let a = reserve_attempt(&mut r, &scopes, policy, now).unwrap();
        assert_eq!(
            finish_login(&mut r, Some(u.clone()), false, &a).unwrap(),
            LoginOutcome::BadCredentials
        );
        let a = reserve_attempt(&mut r, &scopes, policy, now).unwrap();
        assert_eq!(
            finish_login(&mut r, Some(u), true, &a).unwrap(),
            LoginOutcome::NotVerified
        );
        // The right password released its reservation and cleared the account's failures.
        assert_eq!(
            r.failures.len(),
            1,
            "only the address keeps the one failure"
        );
    }

    #[test]
    fn reservations_are_granted_up_to_the_limit_and_successes_give_theirs_back() {
        let mut r = FakeRepo::default();
        let now = Utc::now();
        let policy = ThrottlePolicy {
            max_failures: 2,
            window: Duration::seconds(60),
        };
        let scopes = vec!["user:1".to_owned(), "addr:a".to_owned()];
        let a1 = reserve_attempt(&mut r, &scopes, policy, now).unwrap();
        let _a2 = reserve_attempt(&mut r, &scopes, policy, now).unwrap();
        assert!(matches!(
            reserve_attempt(&mut r, &scopes, policy, now),
            Err(IdentityError::Throttled { .. })
        ));
        release_attempt(&mut r, &a1).unwrap();
        // The account scope is cleared; the address still holds one failure.
        reserve_attempt(&mut r, &scopes, policy, now).unwrap();
        assert!(reserve_attempt(&mut r, &scopes, policy, now).is_err());
        // Disabled throttle: always granted.
        let off = ThrottlePolicy {
            max_failures: 0,
            ..policy
        };
        reserve_attempt(&mut r, &scopes, off, now).unwrap();
    }

    #[test]
    fn a_password_checked_before_a_claim_no_longer_logs_in() {
        let mut r = FakeRepo::default();
        let now = Utc::now();
        let (u, _) = register(&mut r, &reg("amy"), "h".into(), now).unwrap();
        let scopes = login_scopes("amy", Some(&u), "a");
        let policy = ThrottlePolicy {
            max_failures: 5,
            window: Duration::seconds(900),
        };
        let a = reserve_attempt(&mut r, &scopes, policy, now).unwrap();
        social_login(&mut r, &profile("g1", "amy@example.com", true), now).unwrap();
        assert_eq!(
            finish_login(&mut r, Some(u), true, &a).unwrap(),
            LoginOutcome::BadCredentials
        );
    }

    #[test]
    fn registrations_per_address_are_reserved_atomically() {
        let mut r = FakeRepo::default();
        let now = Utc::now();
        for _ in 0..3 {
            check_registration_limit(&mut r, "10.0.0.9", 3, now).unwrap();
            reserve_registration(&mut r, "10.0.0.9", 3, now).unwrap();
        }
        assert!(check_registration_limit(&mut r, "10.0.0.9", 3, now).is_err());
        assert!(reserve_registration(&mut r, "10.0.0.9", 3, now).is_err());
        reserve_registration(&mut r, "10.0.0.10", 3, now).unwrap();
        reserve_registration(&mut r, "10.0.0.9", 3, now + Duration::minutes(61)).unwrap();
        reserve_registration(&mut r, "10.0.0.9", 0, now).unwrap();
    }

    #[test]
    fn refresh_rotation_and_reuse_revokes_family() {
        let mut r = FakeRepo::default();
        let k = keys();
        let now = Utc::now();
        let (u, _) = register(&mut r, &reg("amy"), "h".into(), now).unwrap();
        let p1 = issue_jwt_pair(&mut r, &k, &u, None, now).unwrap();
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
        let p3 = issue_jwt_pair(&mut r, &k, &u, None, now).unwrap();
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
        let p = issue_jwt_pair(&mut r, &k, &u, None, now).unwrap();
        let (_, old_claims) = k.issue(u.id, 0, TokenType::Access, now - Duration::seconds(5));
        let (_, same_second) = k.issue(u.id, 0, TokenType::Access, now);
        assert!(r
            .user_by_id(u.id)
            .unwrap()
            .unwrap()
            .accepts_token(old_claims.iat, old_claims.epoch));
        replace_password(&mut r, u.id, "h2", Some(&key_hash(&keep)), now).unwrap();
        let after = r.user_by_id(u.id).unwrap().unwrap();
        assert!(!after.accepts_token(old_claims.iat, old_claims.epoch));
        assert!(
            !after.accepts_token(same_second.iat, same_second.epoch),
            "the epoch separates tokens of the same second"
        );
        assert!(after.accepts_token(Utc::now().timestamp(), after.session_epoch));
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
        let now = Utc::now();
        let (u, created) = social_login(&mut r, &profile("g1", "ann@x.com", true), now).unwrap();
        assert!(created);
        assert_eq!(u.username, "ann_lee");
        assert!(u.password_hash.is_none());
        assert_eq!(u.login_type, "google");
        let (again, created) =
            social_login(&mut r, &profile("g1", "ann@x.com", true), now).unwrap();
        assert!(!created);
        assert_eq!(again.id, u.id);
        // A different person with the same name gets a distinct username.
        let (other, _) = social_login(&mut r, &profile("g2", "ann2@x.com", true), now).unwrap();
        assert_eq!(other.username, "ann_lee1");
    }

    #[test]
    fn verified_email_links_unverified_never_takes_over() {
        let mut r = FakeRepo::default();
        let now = Utc::now();
        let (u, _) = register(&mut r, &reg("amy"), "h".into(), now).unwrap();
        let err = social_login(&mut r, &profile("g9", "AMY@example.com", false), now).unwrap_err();
        assert!(matches!(err, IdentityError::Social(_)));
        let (linked, created) =
            social_login(&mut r, &profile("g9", "AMY@example.com", true), now).unwrap();
        assert!(!created);
        assert_eq!(linked.id, u.id);
        assert!(linked.email_verified);
        assert!(
            linked.password_hash.is_none(),
            "the registrant's password is gone"
        );
        let mut no_email = profile("g10", "", true);
        no_email.email = None;
        assert!(matches!(
            social_login(&mut r, &no_email, now),
            Err(IdentityError::Social(_))
        ));
    }

    #[test]
    fn claiming_an_unverified_account_ends_everything_the_registrant_held() {
        let mut r = FakeRepo::default();
        let k = keys();
        let now = Utc::now();
        let (u, _) = register(&mut r, &reg("sam"), "h".into(), now).unwrap();
        issue_api_key(&mut r, u.id).unwrap();
        let pair = issue_jwt_pair(&mut r, &k, &u, None, now).unwrap();
        let access = k.decode(&pair.access, None, now).unwrap();
        // A provider identity linked earlier, a pending email change, a pending change.
        r.link_social(u.id, LoginType::Facebook, "fb-sam", None)
            .unwrap();
        let change_id = request_email_change(&mut r, &u, "sam.evil@x.com", now)
            .unwrap()
            .unwrap();
        let change = issue_confirmation_key(&mut r, change_id, now)
            .unwrap()
            .unwrap()
            .key;
        let pending = request_pending_change(
            &mut r,
            &PendingChange {
                user_id: u.id,
                kind: "bank.delete".into(),
                payload: vec![],
            },
            now,
        )
        .unwrap();
        let (_, pending) = issue_pending_change_token(&mut r, pending, now)
            .unwrap()
            .unwrap();

        let (owner, _) =
            social_login(&mut r, &profile("g-sam", "SAM@example.com", true), now).unwrap();
        assert_eq!(owner.id, u.id, "the account keeps its id");
        assert!(owner.email_verified && owner.password_hash.is_none());
        assert!(r.api_keys.iter().all(|(id, _)| *id != u.id));
        assert!(!owner.accepts_token(access.iat, access.epoch));
        assert_eq!(
            rotate_refresh(&mut r, &k, &pair.refresh, now).unwrap(),
            RefreshOutcome::Refused
        );
        assert!(r
            .user_by_social(LoginType::Facebook, "fb-sam")
            .unwrap()
            .is_none());
        assert_eq!(
            r.user_by_social(LoginType::Google, "g-sam")
                .unwrap()
                .map(|x| x.id),
            Some(u.id)
        );
        assert!(matches!(
            confirm_email(&mut r, &change, now),
            Err(IdentityError::NotFound)
        ));
        assert!(consume_pending_change(&mut r, &pending, now).is_err());
        // The owner's new session stands.
        let fresh = issue_jwt_pair(&mut r, &k, &owner, None, now).unwrap();
        let c = k.decode(&fresh.access, None, now).unwrap();
        assert!(owner.accepts_token(c.iat, c.epoch));

        // A verified account being linked keeps its password and sessions.
        let (v, confirmation) = register(&mut r, &reg("val"), "hv".into(), now).unwrap();
        let key = issue_confirmation_key(&mut r, confirmation, now)
            .unwrap()
            .unwrap()
            .key;
        confirm_email(&mut r, &key, now).unwrap();
        let vkey = issue_api_key(&mut r, v.id).unwrap();
        let (linked, _) =
            social_login(&mut r, &profile("g-val", "val@example.com", true), now).unwrap();
        assert_eq!(linked.password_hash.as_deref(), Some("hv"));
        assert_eq!(linked.session_epoch, v.session_epoch);
        assert!(r.api_keys.iter().any(|(_, h)| *h == key_hash(&vkey)));
    }

    #[test]
    fn pending_changes_are_single_use_replaced_and_expire() {
        let mut r = FakeRepo::default();
        let now = Utc::now();
        let change = |kind: &str, payload: &[u8]| PendingChange {
            user_id: 1,
            kind: kind.into(),
            payload: payload.to_vec(),
        };
        let old = request_pending_change(&mut r, &change("email", b"a@x.com"), now).unwrap();
        let old_token = issue_pending_change_token(&mut r, old, now)
            .unwrap()
            .unwrap()
            .1;
        let new = request_pending_change(&mut r, &change("email", b"b@x.com"), now).unwrap();
        let bank = request_pending_change(&mut r, &change("bank.delete", b""), now).unwrap();
        assert_eq!(
            issue_pending_change_token(&mut r, old, now).unwrap(),
            None,
            "a replaced change gets no new link"
        );
        let mut mint = |id| {
            issue_pending_change_token(&mut r, id, now)
                .unwrap()
                .unwrap()
                .1
        };
        let (new, bank) = (mint(new), mint(bank));
        assert!(
            consume_pending_change(&mut r, &old_token, now).is_err(),
            "replaced"
        );
        assert_eq!(
            consume_pending_change(&mut r, &new, now).unwrap().payload,
            b"b@x.com"
        );
        assert!(
            consume_pending_change(&mut r, &new, now).is_err(),
            "single use"
        );
        let late = now + crate::CHANGE_TTL + Duration::seconds(1);
        assert!(
            consume_pending_change(&mut r, &bank, late).is_err(),
            "expired"
        );
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
