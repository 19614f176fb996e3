//! The live notification stream (`GET /feed/api/notifications/stream`, Server-Sent Events).
//!
//! Every server process keeps one dedicated PostgreSQL connection LISTENing on
//! [`oasis_db::notify::STREAM_CHANNEL`]; the fan-out (any process) NOTIFYs the ids of the
//! notifications it stored, in its transaction, and read/delete NOTIFY unread-count changes.
//! The listener hands what it hears to the [`StreamHub`], which wakes the local streams of
//! those recipients through small bounded channels (a stream whose channel is full — a client
//! that stopped reading — is dropped from the hub and ends; it resumes with `Last-Event-ID`).
//! A woken stream reads its rows from the table (`id > cursor`, in id order), so what it sends
//! is always the stored notification as the inbox shows it, and a reconnect with
//! `Last-Event-ID: <id>` gets exactly what came after `<id>`.
//!
//! Framing is four lines of code ([`event`]): an SSE crate would add more than it saves.
use crate::config::SseSettings;
use crate::db::{Db, DbError};
use actix_web::web::Bytes;
use diesel::{Connection, PgConnection};
use oasis_db::notify::{self as repo, Heard, PgNotify};
use oasis_notify::Notification;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// What wakes a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// This notification of the stream's user was stored (and committed).
    New(i64),
    /// The user's unread count changed.
    Unread,
    /// Something may have been missed (the listener reconnected): read everything new.
    Resync,
}

/// Why a stream was refused (HTTP 429).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StreamRefused {
    #[error("Too many notification streams are open for this user.")]
    PerUser,
    #[error("This server holds too many notification streams.")]
    Total,
}

struct Sub {
    id: u64,
    tx: mpsc::Sender<Signal>,
}

#[derive(Default)]
struct Subs {
    /// Who gets signals.
    by_user: HashMap<i64, Vec<Sub>>,
    /// Open streams (their guards), per user and in all: the caps.
    open_per_user: HashMap<i64, usize>,
    open: usize,
}

struct Inner {
    settings: SseSettings,
    subs: Mutex<Subs>,
    next_id: AtomicU64,
    stop: watch::Sender<bool>,
}

/// The process's live streams (cheap to clone).
#[derive(Clone)]
pub struct StreamHub {
    inner: Arc<Inner>,
}

impl StreamHub {
    pub fn new(settings: SseSettings) -> Self {
        let (stop, _) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                settings,
                subs: Mutex::new(Subs::default()),
                next_id: AtomicU64::new(1),
                stop,
            }),
        }
    }

    pub fn settings(&self) -> &SseSettings {
        &self.inner.settings
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Subs> {
        // A panic while holding the lock leaves plain counters behind: still usable.
        self.inner.subs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many streams are open in this process.
    pub fn open(&self) -> usize {
        self.lock().open
    }

    /// Registers a stream of `user`, within the caps.
    fn subscribe(&self, user: i64) -> Result<(Guard, mpsc::Receiver<Signal>), StreamRefused> {
        let s = &self.inner.settings;
        let mut subs = self.lock();
        if subs.open >= s.max_total {
            return Err(StreamRefused::Total);
        }
        let mine = subs.open_per_user.get(&user).copied().unwrap_or(0);
        if mine >= s.max_per_user {
            return Err(StreamRefused::PerUser);
        }
        let (tx, rx) = mpsc::channel(s.buffer.max(1));
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        subs.by_user.entry(user).or_default().push(Sub { id, tx });
        *subs.open_per_user.entry(user).or_default() += 1;
        subs.open += 1;
        Ok((
            Guard {
                hub: self.clone(),
                user,
                id,
            },
            rx,
        ))
    }

    fn send(&self, user: i64, signal: Signal) {
        let mut subs = self.lock();
        let Some(list) = subs.by_user.get_mut(&user) else {
            return;
        };
        list.retain(|sub| match sub.tx.try_send(signal) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::info!(user, stream = sub.id, "slow notification stream dropped");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        if list.is_empty() {
            subs.by_user.remove(&user);
        }
    }

    /// Hands what the listener heard to the streams of its recipients.
    pub fn dispatch(&self, heard: Heard) {
        match heard {
            Heard::New(pairs) => {
                for (user, id) in pairs {
                    self.send(user, Signal::New(id));
                }
            }
            Heard::Unread(user) => self.send(user, Signal::Unread),
            // The read cache's (the listener hands it there).
            Heard::Cache(_) => {}
        }
    }

    /// Tells every stream to read what is new (after the listener lost its connection).
    fn resync_all(&self) {
        let users: Vec<i64> = self.lock().by_user.keys().copied().collect();
        for u in users {
            self.send(u, Signal::Resync);
        }
    }

    /// Ends every stream (server shutdown); new ones are refused from then on.
    pub fn shutdown(&self) {
        // `send_replace`: stored even while no stream holds a receiver.
        self.inner.stop.send_replace(true);
    }

    pub fn is_shut_down(&self) -> bool {
        *self.inner.stop.borrow()
    }

    /// Starts this process's listener (a thread with its own connection, reconnecting with
    /// back-off); it ends after [`StreamHub::shutdown`].
    /// With `cache`, the same connection hears the read cache's channel and reports to it.
    pub fn start_listener(
        &self,
        database_url: String,
        cache: Option<Arc<crate::read_cache::Versions>>,
    ) -> std::thread::JoinHandle<()> {
        // Weak: the thread also ends once the application is gone.
        let hub = Arc::downgrade(&self.inner);
        std::thread::Builder::new()
            .name("oasis-listen".into())
            .spawn(move || listen_loop(&hub, &database_url, cache.as_deref()))
            .expect("spawn the notification listener thread")
    }
}

/// The listener thread: one connection, non-blocking reads every `OASIS_SSE_LISTEN_POLL_MS`,
/// reconnects with back-off (then a resync of every stream: what was NOTIFYed meanwhile is
/// read from the table).
fn listen_loop(
    hub: &std::sync::Weak<Inner>,
    url: &str,
    cache: Option<&crate::read_cache::Versions>,
) {
    let upgrade = || hub.upgrade().map(|inner| StreamHub { inner });
    let Some(h) = upgrade() else { return };
    let poll = Duration::from_millis(h.inner.settings.listen_poll_ms.max(1));
    drop(h);
    let mut conn: Option<PgConnection> = None;
    let mut ever_connected = false;
    let mut backoff = Duration::from_millis(500);
    let mut last_ping = Instant::now();
    loop {
        let Some(hub) = upgrade() else { return };
        if hub.is_shut_down() {
            return;
        }
        let Some(c) = conn.as_mut() else {
            match PgConnection::establish(url)
                .map_err(|e| e.to_string())
                .and_then(|mut c| {
                    repo::listen(&mut c, cache.is_some())
                        .map(|_| c)
                        .map_err(|e| e.to_string())
                }) {
                Ok(c) => {
                    conn = Some(c);
                    if let Some(v) = cache {
                        v.set_live(true);
                    }
                    backoff = Duration::from_millis(500);
                    if ever_connected {
                        tracing::info!("notification listener reconnected");
                        hub.resync_all();
                    }
                    ever_connected = true;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "notification listener cannot connect; retrying");
                    drop(hub);
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
            continue;
        };
        let heard = repo::heard(c).and_then(|h| {
            // A half-open connection never fails a non-blocking read: ask something now and
            // then.
            if last_ping.elapsed() > Duration::from_secs(30) {
                last_ping = Instant::now();
                repo::ping(c)?;
            }
            Ok(h)
        });
        match heard {
            Ok(list) => {
                for h in list {
                    match (h, cache) {
                        (Heard::Cache(t), Some(v)) => v.apply(&t),
                        (Heard::Cache(_), None) => {}
                        (h, _) => hub.dispatch(h),
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "notification listener lost its connection");
                if let Some(v) = cache {
                    v.set_live(false);
                }
                conn = None;
                continue;
            }
        }
        drop(hub);
        std::thread::sleep(poll);
    }
}

impl StreamHub {
    /// Opens a stream of `user`'s notifications after `last_event_id` (`None`: from now on).
    /// `render` makes the inbox item's JSON.
    pub fn open_stream(
        &self,
        db: Db,
        user: i64,
        last_event_id: Option<i64>,
        render: fn(Notification) -> serde_json::Value,
    ) -> Result<
        impl futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>>,
        StreamRefused,
    > {
        if self.is_shut_down() {
            return Err(StreamRefused::Total);
        }
        let (guard, rx) = self.subscribe(user)?;
        let heartbeat = Duration::from_secs(self.inner.settings.heartbeat_secs.max(1));
        let state = State {
            _guard: guard,
            user,
            cursor: last_event_id,
            recent: VecDeque::new(),
            last_unread: None,
            rx,
            stop: self.inner.stop.subscribe(),
            heartbeat,
            db,
            render,
            opened: false,
        };
        Ok(futures_util::stream::unfold(state, |mut s| async move {
            let chunk = s.next_chunk().await?;
            Some((Ok(chunk), s))
        }))
    }
}

/// Why a stream could not be opened for this caller.
#[derive(Debug, thiserror::Error)]
pub enum StreamAuthError {
    /// No credentials and no ticket (401).
    #[error("Authentication credentials were not provided.")]
    Anonymous,
    /// A ticket that is unknown, used or expired (401).
    #[error("Invalid or expired stream ticket.")]
    BadTicket,
    #[error(transparent)]
    Db(#[from] DbError),
}

fn ticket_hash(ticket: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, ticket.as_bytes())
        .as_ref()
        .to_vec()
}

/// Mints a stream ticket for `user` (only its hash is stored): `(ticket, expires_in secs)`.
pub async fn mint_ticket(db: &Db, user: i64, ttl_secs: i64) -> Result<(String, i64), DbError> {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    let ticket = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = ticket_hash(&ticket);
    db.run_as::<_, DbError, _>(move |c| Ok(repo::create_stream_ticket(c, user, &hash, ttl_secs)?))
        .await?;
    Ok((ticket, ttl_secs))
}

/// Whose stream this is: the authenticated caller, else the user of a valid ticket (redeemed:
/// it cannot open a second stream).
pub async fn stream_user(
    db: &Db,
    caller: Option<i64>,
    ticket: Option<String>,
) -> Result<i64, StreamAuthError> {
    if let Some(user) = caller {
        return Ok(user);
    }
    let ticket = ticket.ok_or(StreamAuthError::Anonymous)?;
    let hash = ticket_hash(&ticket);
    db.run_as::<_, DbError, _>(move |c| Ok(repo::redeem_stream_ticket(c, &hash)?))
        .await?
        .ok_or(StreamAuthError::BadTicket)
}

/// Unregisters a stream when it ends (the caps count open streams).
struct Guard {
    hub: StreamHub,
    user: i64,
    id: u64,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut subs = self.hub.lock();
        if let Some(list) = subs.by_user.get_mut(&self.user) {
            list.retain(|s| s.id != self.id);
            if list.is_empty() {
                subs.by_user.remove(&self.user);
            }
        }
        if let Some(n) = subs.open_per_user.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                subs.open_per_user.remove(&self.user);
            }
        }
        subs.open = subs.open.saturating_sub(1);
    }
}

/// Ids delivered out of order are remembered this long (a notification committed after a
/// newer one of the same user arrives late, once).
const RECENT: usize = 64;
/// Rows read per query while catching up.
const BATCH: i64 = 100;

struct State {
    _guard: Guard,
    user: i64,
    /// The highest id sent (`None` until the first read: from now on).
    cursor: Option<i64>,
    /// Ids sent lately (to send a late-committed lower id once).
    recent: VecDeque<i64>,
    last_unread: Option<i64>,
    rx: mpsc::Receiver<Signal>,
    stop: watch::Receiver<bool>,
    heartbeat: Duration,
    db: Db,
    render: fn(Notification) -> serde_json::Value,
    opened: bool,
}

/// One SSE event: `id:` (optional), `event:` (optional) and one `data:` line (compact JSON
/// never holds a raw newline).
pub fn event(id: Option<i64>, name: Option<&str>, data: &serde_json::Value) -> String {
    let mut out = String::new();
    if let Some(id) = id {
        out.push_str(&format!("id: {id}\n"));
    }
    if let Some(name) = name {
        out.push_str(&format!("event: {name}\n"));
    }
    out.push_str(&format!("data: {data}\n\n"));
    out
}

/// What one read found.
struct Read {
    new: Vec<Notification>,
    late: Vec<Notification>,
    unread: i64,
}

impl State {
    /// The next bytes to send; `None` ends the stream.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if !self.opened {
            self.opened = true;
            // `retry:` tells EventSource how soon to reconnect after a drop.
            let mut out = String::from("retry: 2000\n\n");
            out.push_str(&self.read(&[]).await?);
            return Some(Bytes::from(out));
        }
        loop {
            let signal = tokio::select! {
                biased;
                _ = self.stop.wait_for(|s| *s) => return None,
                s = self.rx.recv() => s?,
                _ = tokio::time::sleep(self.heartbeat) => {
                    return Some(Bytes::from_static(b": heartbeat\n\n"));
                }
            };
            // Everything already waiting is served by one read.
            let mut signals = vec![signal];
            while let Ok(s) = self.rx.try_recv() {
                signals.push(s);
            }
            let out = self.read(&signals).await?;
            if !out.is_empty() {
                return Some(Bytes::from(out));
            }
        }
    }

    /// Reads what is new for the signals and frames it; `None` when the database failed
    /// (the stream ends; the client resumes with `Last-Event-ID`).
    async fn read(&mut self, signals: &[Signal]) -> Option<String> {
        let (user, cursor) = (self.user, self.cursor);
        let late: Vec<i64> = signals
            .iter()
            .filter_map(|s| match s {
                Signal::New(id) if cursor.is_some_and(|c| *id <= c) => Some(*id),
                _ => None,
            })
            .filter(|id| !self.recent.contains(id))
            .collect();
        let result = self
            .db
            .run_as::<_, DbError, _>(move |c| {
                let mut repo = PgNotify(c);
                let mut new = Vec::new();
                let mut after = match cursor {
                    Some(c) => c,
                    None => repo::latest_shown_id(repo.0, user)?,
                };
                loop {
                    let batch =
                        oasis_notify::since(&mut repo, user, after, BATCH).map_err(notify_to_db)?;
                    let full = batch.len() as i64 == BATCH;
                    if let Some(last) = batch.last() {
                        after = last.id;
                    }
                    new.extend(batch);
                    if !full {
                        break;
                    }
                }
                let mut late_rows = Vec::new();
                for id in late {
                    if let Some(n) = oasis_notify::InboxRepo::get(&mut repo, user, id)? {
                        late_rows.push(n);
                    }
                }
                let unread = oasis_notify::unread_count(&mut repo, user).map_err(notify_to_db)?;
                Ok((
                    Read {
                        new,
                        late: late_rows,
                        unread,
                    },
                    after,
                ))
            })
            .await;
        let (read, after) = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(user, error = %e, "notification stream ends: database error");
                return None;
            }
        };
        self.cursor = Some(after);
        let mut out = String::new();
        // Late ones carry no `id:`: the client's Last-Event-ID stays the highest id sent.
        for n in read.late {
            self.remember(n.id);
            out.push_str(&event(None, None, &(self.render)(n)));
        }
        for n in read.new {
            self.remember(n.id);
            out.push_str(&event(Some(n.id), None, &(self.render)(n)));
        }
        if self.last_unread != Some(read.unread) {
            self.last_unread = Some(read.unread);
            out.push_str(&event(
                None,
                Some("unread_count"),
                &serde_json::json!({ "unread_count": read.unread }),
            ));
        }
        Some(out)
    }

    fn remember(&mut self, id: i64) {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(id);
    }
}

fn notify_to_db(e: oasis_notify::NotifyError) -> DbError {
    match e {
        oasis_notify::NotifyError::Repo(r) => DbError::Repo(r),
        other => DbError::Repo(oasis_kernel::RepoError::Unavailable(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(per_user: usize, total: usize) -> SseSettings {
        SseSettings {
            max_per_user: per_user,
            max_total: total,
            heartbeat_secs: 25,
            ticket_secs: 60,
            buffer: 2,
            listen_poll_ms: 100,
        }
    }

    #[test]
    fn frames_are_server_sent_events() {
        assert_eq!(
            event(Some(7), None, &serde_json::json!({"a": "x\ny"})),
            "id: 7\ndata: {\"a\":\"x\\ny\"}\n\n"
        );
        assert_eq!(
            event(
                None,
                Some("unread_count"),
                &serde_json::json!({"unread_count": 2})
            ),
            "event: unread_count\ndata: {\"unread_count\":2}\n\n"
        );
    }

    #[test]
    fn caps_count_open_streams_and_free_them_on_drop() {
        let hub = StreamHub::new(settings(2, 3));
        let a1 = hub.subscribe(1).unwrap();
        let a2 = hub.subscribe(1).unwrap();
        assert_eq!(hub.subscribe(1).err(), Some(StreamRefused::PerUser));
        let b1 = hub.subscribe(2).unwrap();
        assert_eq!(hub.subscribe(3).err(), Some(StreamRefused::Total));
        drop(a1);
        assert_eq!(hub.open(), 2);
        let _a3 = hub.subscribe(1).unwrap();
        drop((a2, b1));
        assert_eq!(hub.open(), 1);
    }

    #[test]
    fn a_stream_that_does_not_read_is_dropped_not_buffered() {
        let hub = StreamHub::new(settings(5, 5));
        let (_guard, mut rx) = hub.subscribe(1).unwrap();
        for id in 1..=5 {
            hub.dispatch(Heard::New(vec![(1, id), (2, id)]));
        }
        // Buffer of 2: the third signal found it full and dropped the sender.
        assert_eq!(rx.try_recv().ok(), Some(Signal::New(1)));
        assert_eq!(rx.try_recv().ok(), Some(Signal::New(2)));
        assert!(matches!(
            rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
        assert_eq!(hub.open(), 1, "counted until the stream itself ends");
    }
}
