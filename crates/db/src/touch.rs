//! What the read cache hears: the keys every write names (migration
//! `2026-12-07-010000_read_cache_touch`).
//!
//! A statement-level trigger on each table a cached read depends on calls `oasis_touch(keys)`,
//! which NOTIFYs the keys on [`CACHE_CHANNEL`] (every process's listener) and on
//! `oasis_touch_<backend pid>` — the writing connection's own channel. A pooled connection of a
//! server LISTENs on its own channel ([`listen_own`]), so right after its work the server reads
//! what it wrote ([`drain_own`]) before it answers: a process always reads its own writes, and
//! other processes within their listener's poll interval.
use crate::errors::repo_error;
use diesel::{PgConnection, RunQueryDsl};
use oasis_kernel::RepoError;

/// The channel every server process's listener LISTENs on for the read cache.
pub const CACHE_CHANNEL: &str = "oasis_cache";
/// The prefix of each connection's own channel (`oasis_touch_<pg_backend_pid()>`).
pub const OWN_CHANNEL_PREFIX: &str = "oasis_touch_";

/// One thing a write changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// A creator's catalog: the list of their posts, their tiers and member counts, their
    /// follower count.
    Creator(i64),
    /// One post's record (text, tiers, attachments, like and comment counts).
    Post(i64),
    /// An account: its profile, its API tokens, its sessions.
    User(i64),
    /// Whom a fan follows.
    Follows(i64),
    /// A fan's memberships.
    Memberships(i64),
    /// What a fan liked.
    Likes(i64),
}

impl Key {
    /// A small number per kind (for hashing).
    pub fn tag(&self) -> u8 {
        match self {
            Key::Creator(_) => 1,
            Key::Post(_) => 2,
            Key::User(_) => 3,
            Key::Follows(_) => 4,
            Key::Memberships(_) => 5,
            Key::Likes(_) => 6,
        }
    }

    pub fn id(&self) -> i64 {
        match *self {
            Key::Creator(i)
            | Key::Post(i)
            | Key::User(i)
            | Key::Follows(i)
            | Key::Memberships(i)
            | Key::Likes(i) => i,
        }
    }

    fn parse(s: &str) -> Option<Key> {
        let (tag, id) = s.split_at_checked(1)?;
        let id: i64 = id.parse().ok()?;
        Some(match tag {
            "c" => Key::Creator(id),
            "p" => Key::Post(id),
            "u" => Key::User(id),
            "f" => Key::Follows(id),
            "m" => Key::Memberships(id),
            "l" => Key::Likes(id),
            _ => return None,
        })
    }
}

/// What one payload says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touched {
    /// These keys changed.
    Keys(Vec<Key>),
    /// Too many to name (a bulk statement), or something unreadable: everything may have
    /// changed.
    Everything,
    /// A marker `sync <n>` (tests wait for it: everything committed before it was heard).
    Sync(u64),
}

/// Parses a payload of `oasis_touch` (or a `sync <n>` marker). Anything unknown counts as
/// [`Touched::Everything`]: dropping too much is safe, keeping too much is not.
pub fn parse(payload: &str) -> Touched {
    if payload == "*" {
        return Touched::Everything;
    }
    if let Some(n) = payload.strip_prefix("sync ") {
        return n.parse().map(Touched::Sync).unwrap_or(Touched::Everything);
    }
    payload
        .split(' ')
        .map(Key::parse)
        .collect::<Option<Vec<_>>>()
        .map(Touched::Keys)
        .unwrap_or(Touched::Everything)
}

/// Makes a pooled connection LISTEN on its own channel (once, when it is opened).
pub fn listen_own(c: &mut PgConnection) -> Result<(), RepoError> {
    diesel::sql_query(format!(
        "DO $$ BEGIN EXECUTE format('LISTEN %I', '{OWN_CHANNEL_PREFIX}' || pg_backend_pid()); END $$"
    ))
    .execute(c)
    .map_err(repo_error)?;
    Ok(())
}

/// What this connection's own writes touched since the last call (already received with the
/// replies to its statements: no round trip). An error means the connection is broken.
pub fn drain_own(c: &mut PgConnection) -> Result<Vec<Touched>, RepoError> {
    let mut out = Vec::new();
    for n in c.notifications_iter() {
        let n = n.map_err(repo_error)?;
        if n.channel.starts_with(OWN_CHANNEL_PREFIX) {
            out.push(parse(&n.payload));
        }
    }
    Ok(out)
}

/// Starts listening on [`CACHE_CHANNEL`] (the listener's dedicated connection).
pub fn listen_all(c: &mut PgConnection) -> Result<(), RepoError> {
    diesel::sql_query(format!("LISTEN {CACHE_CHANNEL}"))
        .execute(c)
        .map_err(repo_error)?;
    Ok(())
}

/// Sends a `sync <n>` marker on [`CACHE_CHANNEL`] (see [`Touched::Sync`]).
pub fn send_sync(c: &mut PgConnection, n: u64) -> Result<(), RepoError> {
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<diesel::sql_types::Text, _>(CACHE_CHANNEL)
        .bind::<diesel::sql_types::Text, _>(format!("sync {n}"))
        .execute(c)
        .map_err(repo_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_and_unknown_ones_drop_everything() {
        assert_eq!(
            parse("c12 p345 u1 f2 m3 l4"),
            Touched::Keys(vec![
                Key::Creator(12),
                Key::Post(345),
                Key::User(1),
                Key::Follows(2),
                Key::Memberships(3),
                Key::Likes(4)
            ])
        );
        assert_eq!(parse("*"), Touched::Everything);
        assert_eq!(parse("sync 77"), Touched::Sync(77));
        for bad in ["", "x1", "c", "c1 zz", "sync x"] {
            assert_eq!(parse(bad), Touched::Everything, "{bad:?}");
        }
    }
}
