//! In-memory [`IdentityRepo`] for unit tests (mirrors the PostgreSQL adapter's semantics:
//! case-insensitive uniqueness, single-use confirmations, windowed failure counts).
use crate::model::{LoginType, NewUser, ProfileChanges, User};
use crate::repo::{FailureCount, IdentityRepo, PendingChange, RefreshRecord, Reservation};
use oasis_kernel::{RepoError, Timestamp};
use std::collections::HashMap;

#[derive(Default)]
pub struct FakeRepo {
    pub users: Vec<User>,
    pub social: Vec<(i64, LoginType, String)>,
    pub api_keys: Vec<(i64, Vec<u8>)>,
    /// (user id, email, key hash — empty until the email is sent, expiry, used).
    pub confirmations: Vec<(i64, String, Vec<u8>, Timestamp, bool)>,
    pub refresh: HashMap<String, RefreshRecord>,
    /// (id, scope, at)
    pub failures: Vec<(i64, String, Timestamp)>,
    pub next_failure_id: i64,
    pub mails: Vec<(i64, String, Timestamp)>,
    /// (change, token hash, expires at, used)
    pub pending: Vec<(PendingChange, Vec<u8>, Timestamp, bool)>,
}

impl IdentityRepo for FakeRepo {
    fn insert_user(&mut self, u: &NewUser) -> Result<Option<User>, RepoError> {
        if self.users.iter().any(|x| {
            x.username.eq_ignore_ascii_case(&u.username) || x.email.eq_ignore_ascii_case(&u.email)
        }) {
            return Ok(None);
        }
        let user = User {
            id: self.users.len() as i64 + 1,
            username: u.username.clone(),
            email: u.email.clone(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            password_hash: u.password_hash.clone(),
            is_creator: false,
            profile_pic: u.profile_pic.clone(),
            bio: String::new(),
            login_type: u.login_type.as_str().into(),
            email_verified: u.email_verified,
            is_active: true,
            credentials_changed_at: None,
            session_epoch: 0,
        };
        self.users.push(user.clone());
        Ok(Some(user))
    }
    fn user_by_id(&mut self, id: i64) -> Result<Option<User>, RepoError> {
        Ok(self.users.iter().find(|u| u.id == id).cloned())
    }
    fn lock_user(&mut self, id: i64) -> Result<Option<User>, RepoError> {
        self.user_by_id(id)
    }
    fn user_by_username(&mut self, username: &str) -> Result<Option<User>, RepoError> {
        Ok(self
            .users
            .iter()
            .find(|u| u.username.eq_ignore_ascii_case(username))
            .cloned())
    }
    fn user_by_email(&mut self, email: &str) -> Result<Option<User>, RepoError> {
        Ok(self
            .users
            .iter()
            .find(|u| u.email.eq_ignore_ascii_case(email))
            .cloned())
    }
    fn user_by_social(&mut self, p: LoginType, s: &str) -> Result<Option<User>, RepoError> {
        let id = self
            .social
            .iter()
            .find(|(_, pp, ss)| *pp == p && ss == s)
            .map(|x| x.0);
        Ok(id.and_then(|id| self.users.iter().find(|u| u.id == id).cloned()))
    }
    fn link_social(
        &mut self,
        user_id: i64,
        p: LoginType,
        s: &str,
        _email: Option<&str>,
    ) -> Result<(), RepoError> {
        if !self.social.iter().any(|(_, pp, ss)| *pp == p && ss == s) {
            self.social.push((user_id, p, s.into()));
        }
        Ok(())
    }
    fn unlink_all_social(&mut self, user_id: i64) -> Result<u64, RepoError> {
        let before = self.social.len();
        self.social.retain(|(u, _, _)| *u != user_id);
        Ok((before - self.social.len()) as u64)
    }
    fn set_email(&mut self, user_id: i64, email: &str, verified: bool) -> Result<(), RepoError> {
        if self
            .users
            .iter()
            .any(|u| u.id != user_id && u.email.eq_ignore_ascii_case(email))
        {
            return Err(RepoError::Conflict {
                constraint: "users_email_lower_key".into(),
            });
        }
        let u = self
            .users
            .iter_mut()
            .find(|u| u.id == user_id)
            .ok_or(RepoError::NotFound)?;
        u.email = email.into();
        u.email_verified = verified;
        Ok(())
    }
    fn set_password(&mut self, user_id: i64, hash: Option<&str>) -> Result<(), RepoError> {
        let u = self
            .users
            .iter_mut()
            .find(|u| u.id == user_id)
            .ok_or(RepoError::NotFound)?;
        u.password_hash = hash.map(str::to_owned);
        u.credentials_changed_at = Some(chrono::Utc::now());
        Ok(())
    }
    fn bump_session_epoch(&mut self, user_id: i64) -> Result<(), RepoError> {
        let u = self
            .users
            .iter_mut()
            .find(|u| u.id == user_id)
            .ok_or(RepoError::NotFound)?;
        u.session_epoch += 1;
        Ok(())
    }
    fn update_profile(&mut self, user_id: i64, c: &ProfileChanges) -> Result<User, RepoError> {
        let u = self
            .users
            .iter_mut()
            .find(|u| u.id == user_id)
            .ok_or(RepoError::NotFound)?;
        if let Some(v) = &c.username {
            u.username = v.clone();
        }
        if let Some(v) = &c.first_name {
            u.first_name = v.clone();
        }
        if let Some(v) = &c.last_name {
            u.last_name = v.clone();
        }
        if let Some(v) = c.is_creator {
            u.is_creator = v;
        }
        if let Some(v) = &c.bio {
            u.bio = v.clone();
        }
        if let Some(v) = &c.profile_pic {
            u.profile_pic = v.clone();
        }
        Ok(u.clone())
    }
    fn insert_api_key(&mut self, user_id: i64, h: &[u8]) -> Result<(), RepoError> {
        self.api_keys.push((user_id, h.to_vec()));
        Ok(())
    }
    fn delete_api_key(&mut self, h: &[u8]) -> Result<(), RepoError> {
        self.api_keys.retain(|(_, k)| k != h);
        Ok(())
    }
    fn delete_api_keys_except(
        &mut self,
        user_id: i64,
        keep: Option<&[u8]>,
    ) -> Result<u64, RepoError> {
        let before = self.api_keys.len();
        self.api_keys
            .retain(|(u, k)| *u != user_id || Some(k.as_slice()) == keep);
        Ok((before - self.api_keys.len()) as u64)
    }
    fn insert_confirmation(
        &mut self,
        user_id: i64,
        email: &str,
        exp: Timestamp,
    ) -> Result<i64, RepoError> {
        self.confirmations
            .push((user_id, email.into(), Vec::new(), exp, false));
        Ok(self.confirmations.len() as i64)
    }
    fn set_confirmation_key(
        &mut self,
        id: i64,
        h: &[u8],
        now: Timestamp,
    ) -> Result<Option<(i64, String)>, RepoError> {
        let Some(c) = usize::try_from(id - 1)
            .ok()
            .and_then(|i| self.confirmations.get_mut(i))
        else {
            return Ok(None);
        };
        if c.4 || c.3 <= now {
            return Ok(None);
        }
        c.2 = h.to_vec();
        Ok(Some((c.0, c.1.clone())))
    }
    fn consume_confirmation(
        &mut self,
        h: &[u8],
        now: Timestamp,
    ) -> Result<Option<(i64, String)>, RepoError> {
        for c in &mut self.confirmations {
            if !c.2.is_empty() && c.2 == h && !c.4 && c.3 > now {
                c.4 = true;
                return Ok(Some((c.0, c.1.clone())));
            }
        }
        Ok(None)
    }
    fn cancel_confirmations(&mut self, user_id: i64, _now: Timestamp) -> Result<u64, RepoError> {
        let mut n = 0;
        for c in self
            .confirmations
            .iter_mut()
            .filter(|c| c.0 == user_id && !c.4)
        {
            c.4 = true;
            n += 1;
        }
        Ok(n)
    }
    fn insert_pending_change(
        &mut self,
        change: &PendingChange,
        token_hash: &[u8],
        expires_at: Timestamp,
    ) -> Result<i64, RepoError> {
        for p in self
            .pending
            .iter_mut()
            .filter(|p| p.0.user_id == change.user_id && p.0.kind == change.kind)
        {
            p.3 = true;
        }
        self.pending
            .push((change.clone(), token_hash.to_vec(), expires_at, false));
        Ok(self.pending.len() as i64)
    }
    fn rekey_pending_change(
        &mut self,
        id: i64,
        token_hash: &[u8],
        now: Timestamp,
    ) -> Result<Option<i64>, RepoError> {
        let Some(p) = usize::try_from(id - 1)
            .ok()
            .and_then(|i| self.pending.get_mut(i))
        else {
            return Ok(None);
        };
        if p.3 || p.2 <= now {
            return Ok(None);
        }
        p.1 = token_hash.to_vec();
        Ok(Some(p.0.user_id))
    }
    fn consume_pending_change(
        &mut self,
        token_hash: &[u8],
        now: Timestamp,
    ) -> Result<Option<PendingChange>, RepoError> {
        for p in &mut self.pending {
            if p.1 == token_hash && !p.3 && p.2 > now {
                p.3 = true;
                return Ok(Some(p.0.clone()));
            }
        }
        Ok(None)
    }
    fn cancel_pending_changes(&mut self, user_id: i64, _now: Timestamp) -> Result<u64, RepoError> {
        let mut n = 0;
        for p in self
            .pending
            .iter_mut()
            .filter(|p| p.0.user_id == user_id && !p.3)
        {
            p.3 = true;
            n += 1;
        }
        Ok(n)
    }
    fn insert_refresh(&mut self, r: &RefreshRecord) -> Result<(), RepoError> {
        self.refresh.insert(r.jti.clone(), r.clone());
        Ok(())
    }
    fn lock_refresh(&mut self, jti: &str) -> Result<Option<RefreshRecord>, RepoError> {
        Ok(self.refresh.get(jti).cloned())
    }
    fn mark_refresh_used(&mut self, jti: &str, _now: Timestamp) -> Result<(), RepoError> {
        if let Some(r) = self.refresh.get_mut(jti) {
            r.used = true;
        }
        Ok(())
    }
    fn revoke_refresh_family(&mut self, family: &str, _now: Timestamp) -> Result<u64, RepoError> {
        let mut n = 0;
        for r in self
            .refresh
            .values_mut()
            .filter(|r| r.family == family && !r.revoked)
        {
            r.revoked = true;
            n += 1;
        }
        Ok(n)
    }
    fn revoke_user_refresh(&mut self, user_id: i64, _now: Timestamp) -> Result<u64, RepoError> {
        let mut n = 0;
        for r in self
            .refresh
            .values_mut()
            .filter(|r| r.user_id == user_id && !r.revoked)
        {
            r.revoked = true;
            n += 1;
        }
        Ok(n)
    }
    fn failures_since(
        &mut self,
        scopes: &[String],
        since: Timestamp,
    ) -> Result<Vec<FailureCount>, RepoError> {
        Ok(scopes
            .iter()
            .map(|s| {
                let hits: Vec<Timestamp> = self
                    .failures
                    .iter()
                    .filter(|(_, sc, at)| sc == s && *at > since)
                    .map(|x| x.2)
                    .collect();
                FailureCount {
                    scope: s.clone(),
                    count: hits.len() as u32,
                    oldest: hits.iter().min().copied(),
                }
            })
            .collect())
    }
    fn record_failure(&mut self, scopes: &[String], now: Timestamp) -> Result<(), RepoError> {
        for s in scopes {
            self.next_failure_id += 1;
            self.failures.push((self.next_failure_id, s.clone(), now));
        }
        Ok(())
    }
    fn reserve_attempt(
        &mut self,
        scopes: &[String],
        max: u32,
        since: Timestamp,
        now: Timestamp,
    ) -> Result<Reservation, RepoError> {
        let full: Vec<FailureCount> = self
            .failures_since(scopes, since)?
            .into_iter()
            .filter(|c| c.count >= max)
            .collect();
        if !full.is_empty() {
            return Ok(Reservation::Refused(full));
        }
        let mut ids = Vec::new();
        for s in scopes {
            self.next_failure_id += 1;
            self.failures.push((self.next_failure_id, s.clone(), now));
            ids.push(self.next_failure_id);
        }
        Ok(Reservation::Reserved(ids))
    }
    fn release_attempts(&mut self, ids: &[i64]) -> Result<(), RepoError> {
        self.failures.retain(|(id, _, _)| !ids.contains(id));
        Ok(())
    }
    fn clear_failures(&mut self, scope: &str) -> Result<(), RepoError> {
        self.failures.retain(|(_, s, _)| s != scope);
        Ok(())
    }
    fn mails_since(&mut self, user_id: i64, since: Timestamp) -> Result<u32, RepoError> {
        Ok(self
            .mails
            .iter()
            .filter(|(u, _, at)| *u == user_id && *at > since)
            .count() as u32)
    }
    fn log_mail(&mut self, user_id: i64, kind: &str, now: Timestamp) -> Result<(), RepoError> {
        self.mails.push((user_id, kind.into(), now));
        Ok(())
    }
}
