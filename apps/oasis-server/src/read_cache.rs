//! The read cache: the hot reads (feed, profiles, post records, tier lists, who a credential
//! is) kept in memory and dropped the moment a write touches what they were read from.
//!
//! **How a result knows it is stale.** Every write to a table a cached read depends on names the
//! keys it changed ([`oasis_db::touch`]: `c<creator>`, `p<post>`, `u<user>`, `f`/`m`/`l<fan>`),
//! from a statement-level trigger, on two channels: this process hears its own writes on the
//! writing connection itself right after its work ([`crate::db::Db`] drains them before the
//! handler answers), other processes' through the listener thread (within
//! `OASIS_SSE_LISTEN_POLL_MS`). Each key hashes to one of [`STRIPES`] counters holding the
//! sequence number of the last touch heard; a result is stored with the sequence number taken
//! *before* its queries ran and the stripes of the keys it depends on, and is used only while none
//! of those stripes moved past it. A touch between the start of the queries and the store
//! therefore keeps the result out; a touch after the store retires it. A statement touching more
//! than 300 keys, an unreadable payload and a lost listener connection retire everything (the
//! epoch); nothing is stored while the listener is not connected (other processes' writes would
//! go unheard).
//!
//! **What is never cached:** decisions that a clock makes. Entitlements are cached as the
//! membership *facts* and evaluated with [`oasis_billing::has_access`] at each request. A feed
//! page is never kept either: it is merged at each request from what is — whom the fan follows
//! and their memberships (access decided now) and each source creator's newest posts
//! ([`oasis_social::page_from_timelines`]). A tier list's paying member counts are kept until
//! the clock first changes one of them: the database answers the counts together with the
//! earliest instant at which a counted membership's access begins or ends
//! ([`oasis_billing::access_changes_at`]), and the list is kept until then, and for at most
//! `OASIS_READ_CACHE_MAX_AGE_MS` (a safety net for writes that fire no trigger).
//!
//! Memory: each shelf is a bounded S3-FIFO map (quick_cache) weighted by an estimate of the
//! bytes it holds; all shelves together stay within `OASIS_READ_CACHE_MB`.
use crate::config::ReadCacheSettings;
use crate::db::Db;
use crate::error::ApiError;
use diesel::PgConnection;
use oasis_catalog::{PostRecord, PostView, Tier};
use oasis_db::billing::MembershipFacts;
use oasis_db::identity::TokenOwner;
use oasis_db::social::{FanReads, Profile};
use oasis_db::touch::{Key, Touched};
use oasis_identity::model::User;
use oasis_kernel::{Page, PageRequest, RepoError};
use oasis_social::{FeedPage, FeedPosition, Timeline};
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A tier list's key: creator, active tiers only, page.
type TierKey = (i64, bool, PageRequest);

/// Touch counters (a key shares one with the keys that hash alike: a touch of either retires
/// both, which costs a miss, never a stale answer). 64 Ki × 8 bytes.
pub const STRIPES: usize = 1 << 16;

/// What this process has heard of writes.
pub struct Versions {
    stripes: Box<[AtomicU64]>,
    seq: AtomicU64,
    epoch: AtomicU64,
    live: AtomicBool,
    synced: AtomicU64,
}

/// Taken before a result's queries run.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    epoch: u64,
    seq: u64,
    live: bool,
}

impl Default for Versions {
    fn default() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
            seq: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            live: AtomicBool::new(false),
            synced: AtomicU64::new(0),
        }
    }
}

impl Versions {
    fn stripe(key: &Key) -> u32 {
        // splitmix64 of (kind, id).
        let mut z =
            ((key.tag() as u64) << 56 ^ key.id() as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) as usize & (STRIPES - 1)) as u32
    }

    fn touch(&self, key: &Key) {
        let s = self.seq.fetch_add(1, SeqCst) + 1;
        self.stripes[Self::stripe(key) as usize].fetch_max(s, SeqCst);
    }

    fn touch_all(&self) {
        self.epoch.fetch_add(1, SeqCst);
    }

    /// Applies what a write touched.
    pub fn apply(&self, t: &Touched) {
        match t {
            Touched::Keys(keys) => keys.iter().for_each(|k| self.touch(k)),
            Touched::Everything => self.touch_all(),
            Touched::Sync(n) => self.synced.store(*n, SeqCst),
        }
    }

    /// The listener connected (`true`) or lost its connection: either way what was cached may
    /// have missed a write.
    pub fn set_live(&self, live: bool) {
        self.touch_all();
        self.live.store(live, SeqCst);
    }

    /// The last `sync <n>` marker heard (tests wait for theirs).
    pub fn synced(&self) -> u64 {
        self.synced.load(SeqCst)
    }

    pub fn ticket(&self) -> Ticket {
        Ticket {
            live: self.live.load(SeqCst),
            epoch: self.epoch.load(SeqCst),
            seq: self.seq.load(SeqCst),
        }
    }

    fn still_valid(&self, t: &Ticket, deps: &[u32]) -> bool {
        t.live
            && self.epoch.load(SeqCst) == t.epoch
            && deps
                .iter()
                .all(|&d| self.stripes[d as usize].load(SeqCst) <= t.seq)
    }
}

struct Stamped<V> {
    value: V,
    ticket: Ticket,
    deps: Box<[u32]>,
    /// When the clock alone may change the answer (`None`: only a write can).
    until: Option<Instant>,
    /// From when one reader reads it again in the background while the others are still
    /// answered from it (between half and three quarters of its life), so that a hot result
    /// never expires under its readers all at once.
    refresh_at: Option<Instant>,
    /// Whether a reader took that refresh.
    refreshing: AtomicBool,
    weight: u64,
}

#[derive(Clone)]
struct ByWeight;

impl<K, V> quick_cache::Weighter<K, Arc<Stamped<V>>> for ByWeight {
    fn weight(&self, _key: &K, v: &Arc<Stamped<V>>) -> u64 {
        v.weight
    }
}

/// One kind of cached result.
struct Shelf<K, V> {
    map: quick_cache::sync::Cache<K, Arc<Stamped<V>>, ByWeight>,
}

/// Bytes of bookkeeping per entry (key, stamp, the map's slot), added to the value's estimate.
const ENTRY_OVERHEAD: u64 = 128;

impl<K: Eq + Hash + Clone, V: Clone> Shelf<K, V> {
    fn new(bytes: u64) -> Self {
        Self {
            map: quick_cache::sync::Cache::with_weighter(
                (bytes / 512).max(16) as usize,
                bytes.max(4096),
                ByWeight,
            ),
        }
    }

    fn get(&self, rc: &ReadCache, key: &K) -> Option<V> {
        self.entry(rc, key).map(|e| e.value.clone())
    }

    /// [`Shelf::get`], and whether the caller is the one to read the value again now (its
    /// refresh time passed and no other reader took the refresh).
    fn get_or_refresh(&self, rc: &ReadCache, key: &K) -> Option<(V, bool)> {
        let e = self.entry(rc, key)?;
        let refresh =
            e.refresh_at.is_some_and(|r| Instant::now() >= r) && !e.refreshing.swap(true, SeqCst);
        Some((e.value.clone(), refresh))
    }

    fn entry(&self, rc: &ReadCache, key: &K) -> Option<Arc<Stamped<V>>> {
        let e = self.map.get(key)?;
        if rc.versions.still_valid(&e.ticket, &e.deps) && e.until.is_none_or(|u| Instant::now() < u)
        {
            Some(e)
        } else {
            self.map.remove(key);
            None
        }
    }

    /// Keeps `value`, read after `ticket` was taken, unless one of `deps` was touched since.
    fn put(&self, rc: &ReadCache, key: K, ticket: Ticket, deps: &[Key], value: V, bytes: usize) {
        self.put_until(rc, key, ticket, deps, value, bytes, None)
    }

    /// [`Shelf::put`] for a value the clock alone may change at `until`.
    #[allow(clippy::too_many_arguments)]
    fn put_until(
        &self,
        rc: &ReadCache,
        key: K,
        ticket: Ticket,
        deps: &[Key],
        value: V,
        bytes: usize,
        until: Option<Instant>,
    ) {
        if !rc.enabled {
            return;
        }
        let deps: Box<[u32]> = deps.iter().map(Versions::stripe).collect();
        if !rc.versions.still_valid(&ticket, &deps) {
            return;
        }
        let weight = ENTRY_OVERHEAD + bytes as u64 + 4 * deps.len() as u64;
        // Between half and three quarters of its life, spread by the instant it was read, so
        // that results read together are not all read again together.
        let refresh_at = until.map(|u| {
            let now = Instant::now();
            let spread = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos() % 250);
            now + u.saturating_duration_since(now) * (500 + spread) / 1000
        });
        self.map.insert(
            key,
            Arc::new(Stamped {
                value,
                ticket,
                deps,
                until,
                refresh_at,
                refreshing: AtomicBool::new(false),
                weight,
            }),
        );
    }
}

fn record_bytes(r: &PostRecord) -> usize {
    std::mem::size_of::<PostRecord>()
        + r.title.len()
        + r.body.len()
        + 8 * r.tier_ids.len()
        + r.attachments
            .iter()
            .map(|a| 96 + a.content_type.len() + a.filename.len())
            .sum::<usize>()
}

fn tier_bytes(t: &Tier) -> usize {
    std::mem::size_of::<Tier>()
        + t.name.len()
        + t.description.len()
        + t.benefits.iter().map(|b| 24 + b.len()).sum::<usize>()
}

/// A tier with its paying member count.
pub type TierWithCount = (Tier, i64);

/// A user's profile page: the profile, its tiers with member counts, a page of posts.
pub struct ProfilePage {
    pub profile: Profile,
    pub tiers: Vec<TierWithCount>,
    pub posts: Page<PostView>,
}

/// The process's read cache (see the module docs). Disabled, every read goes to the database
/// (through the same code) and nothing is kept.
pub struct ReadCache {
    enabled: bool,
    max_age: Duration,
    timeline_posts: i64,
    fan_likes: i64,
    versions: Arc<Versions>,
    tokens: Shelf<Vec<u8>, TokenOwner>,
    users: Shelf<i64, User>,
    posts: Shelf<i64, PostRecord>,
    /// Per fan: whom they follow, their memberships' facts, their likes (when few enough).
    fans: Shelf<i64, Arc<FanReads>>,
    /// Per fan who liked more than `fan_likes` posts: the posts known to be liked (true) or not
    /// (false) by them, merged as they read more posts (a like or unlike of theirs retires it).
    liked: Shelf<i64, Arc<HashMap<i64, bool>>>,
    /// Per creator: their newest posts for feeds.
    timelines: Shelf<i64, Arc<Timeline>>,
    profiles: Shelf<(i64, i64), Profile>,
    creator_posts: Shelf<(i64, PageRequest), Page<i64>>,
    tiers: Shelf<TierKey, Arc<Page<TierWithCount>>>,
}

impl ReadCache {
    pub fn new(s: &ReadCacheSettings) -> Self {
        // Shares of the budget, sized on the `large` benchmark's working set (10,000 fans, 1,000
        // creators): a token (~200 B) and what the feed reads of a fan (~500 B) per fan; the
        // ~14,000 posts read (~830 B each); 1,000 timelines (~1.4 KB each); profiles and tiers.
        let part = |fortieths: u64| s.bytes / 40 * fortieths;
        Self {
            enabled: s.enabled,
            max_age: Duration::from_millis(s.max_age_ms),
            timeline_posts: s.timeline_posts,
            fan_likes: s.fan_likes,
            versions: Arc::new(Versions::default()),
            tokens: Shelf::new(part(3)),
            users: Shelf::new(part(1)),
            posts: Shelf::new(part(15)),
            fans: Shelf::new(part(8)),
            liked: Shelf::new(part(2)),
            timelines: Shelf::new(part(5)),
            profiles: Shelf::new(part(2)),
            creator_posts: Shelf::new(part(2)),
            tiers: Shelf::new(part(2)),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// What the database layer and the listener report writes to (`None` when disabled).
    pub fn versions(&self) -> Option<Arc<Versions>> {
        self.enabled.then(|| self.versions.clone())
    }

    // -----------------------------------------------------------------------------------------
    // Who a credential is

    /// The active user behind an API key.
    pub async fn token_owner(
        self: &Arc<Self>,
        db: &Db,
        key: &str,
    ) -> Result<Option<TokenOwner>, ApiError> {
        let hash = oasis_db::identity::token_hash(key);
        if let Some(o) = self.tokens.get(self, &hash) {
            return Ok(Some(o));
        }
        let (me, key) = (self.clone(), key.to_owned());
        db.run(move |c| {
            let t = me.versions.ticket();
            let owner = oasis_db::identity::user_for_token(c, &key)?;
            if let Some(o) = &owner {
                let bytes = 64 + o.username.len();
                me.tokens
                    .put(&me, hash, t, &[Key::User(o.user_id)], o.clone(), bytes);
            }
            Ok(owner)
        })
        .await
    }

    /// A user by id (active or not: the caller decides).
    pub async fn user(self: &Arc<Self>, db: &Db, id: i64) -> Result<Option<User>, ApiError> {
        if let Some(u) = self.users.get(self, &id) {
            return Ok(Some(u));
        }
        let me = self.clone();
        db.run(move |c| {
            use oasis_identity::IdentityRepo;
            let t = me.versions.ticket();
            let user = oasis_db::identity::PgIdentity(c).user_by_id(id)?;
            if let Some(u) = &user {
                let bytes = std::mem::size_of::<User>()
                    + u.username.len()
                    + u.email.len()
                    + u.first_name.len()
                    + u.last_name.len()
                    + u.bio.len()
                    + 96;
                me.users.put(&me, id, t, &[Key::User(id)], u.clone(), bytes);
            }
            Ok(user)
        })
        .await
    }

    // -----------------------------------------------------------------------------------------
    // Posts as one viewer sees them

    /// `ids` (in that order, missing ones left out) as `viewer` sees them.
    pub async fn post_views(
        self: &Arc<Self>,
        db: &Db,
        ids: Vec<i64>,
        viewer: Option<i64>,
    ) -> Result<Vec<PostView>, ApiError> {
        if let Some(v) = self.cached_views(&ids, viewer) {
            return Ok(v);
        }
        let me = self.clone();
        db.run(move |c| {
            let t = me.versions.ticket();
            Ok(me.load_views(c, t, &ids, viewer)?)
        })
        .await
    }

    /// From memory alone, or `None` when anything is missing.
    fn cached_views(&self, ids: &[i64], viewer: Option<i64>) -> Option<Vec<PostView>> {
        let records = ids
            .iter()
            .map(|id| self.posts.get(self, id))
            .collect::<Option<Vec<_>>>()?;
        let Some(v) = viewer else {
            return Some(assemble(records, None, &HashSet::new(), &[]));
        };
        let fan = self.fans.get(self, &v)?;
        let liked = match &fan.likes {
            Some(all) => liked_among(all, ids),
            None => {
                let known = self.liked.get(self, &v)?;
                ids.iter()
                    .filter_map(|id| match known.get(id) {
                        None => Some(None),
                        Some(true) => Some(Some(*id)),
                        Some(false) => None,
                    })
                    .collect::<Option<HashSet<i64>>>()?
            }
        };
        Some(assemble(records, viewer, &liked, &fan.memberships))
    }

    /// Whatever is missing from memory is read (and kept); one connection, up to three queries.
    fn load_views(
        &self,
        c: &mut PgConnection,
        t: Ticket,
        ids: &[i64],
        viewer: Option<i64>,
    ) -> Result<Vec<PostView>, RepoError> {
        let mut have: HashMap<i64, PostRecord> = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        for &id in ids {
            match self.posts.get(self, &id) {
                Some(r) => {
                    have.insert(id, r);
                }
                None => missing.push(id),
            }
        }
        for r in oasis_db::catalog::load_post_records(c, &missing, None)? {
            self.posts.put(
                self,
                r.id,
                t,
                &[Key::Post(r.id)],
                r.clone(),
                record_bytes(&r),
            );
            have.insert(r.id, r);
        }
        let records: Vec<PostRecord> = ids.iter().filter_map(|id| have.remove(id)).collect();
        let Some(v) = viewer else {
            return Ok(assemble(records, None, &HashSet::new(), &[]));
        };
        let fan = self.fan(c, t, v)?;
        let liked = match &fan.likes {
            Some(all) => liked_among(all, ids),
            None => self.liked_post_by_post(c, t, v, &records)?,
        };
        Ok(assemble(records, viewer, &liked, &fan.memberships))
    }

    /// Which of `records` `v` liked, for a fan with too many likes to keep whole.
    fn liked_post_by_post(
        &self,
        c: &mut PgConnection,
        t: Ticket,
        v: i64,
        records: &[PostRecord],
    ) -> Result<HashSet<i64>, RepoError> {
        let known = self.liked.get(self, &v);
        let mut liked = HashSet::new();
        let mut unknown = Vec::new();
        for r in records {
            match known.as_ref().and_then(|k| k.get(&r.id)) {
                Some(true) => {
                    liked.insert(r.id);
                }
                Some(false) => {}
                None => unknown.push(r.id),
            }
        }
        if !unknown.is_empty() {
            let found = oasis_db::catalog::liked_posts(c, v, &unknown)?;
            // What was known (still valid when read, after `t`) plus what was just asked.
            let mut merged = known.map(|k| (*k).clone()).unwrap_or_default();
            for id in unknown {
                let yes = found.contains(&id);
                merged.insert(id, yes);
                if yes {
                    liked.insert(id);
                }
            }
            let bytes = 48 + 24 * merged.len();
            self.liked
                .put(self, v, t, &[Key::Likes(v)], Arc::new(merged), bytes);
        }
        Ok(liked)
    }

    /// What the feed and post views read of fan `v`: whom they follow, their memberships, their
    /// likes (one query when not in memory).
    fn fan(&self, c: &mut PgConnection, t: Ticket, v: i64) -> Result<Arc<FanReads>, RepoError> {
        if let Some(f) = self.fans.get(self, &v) {
            return Ok(f);
        }
        let f = Arc::new(oasis_db::social::fan_reads(c, v, self.fan_likes)?);
        let bytes = 64
            + 8 * f.follows.len()
            + 8 * f.likes.as_ref().map_or(0, Vec::len)
            + std::mem::size_of::<MembershipFacts>() * f.memberships.len();
        self.fans.put(
            self,
            v,
            t,
            &[Key::Follows(v), Key::Memberships(v), Key::Likes(v)],
            f.clone(),
            bytes,
        );
        Ok(f)
    }

    // -----------------------------------------------------------------------------------------
    // The feed, profiles, tier lists

    /// A page of `viewer`'s feed with its posts: merged from what the fan follows and the source
    /// creators' timelines when those answer it, read from the database otherwise.
    pub async fn feed(
        self: &Arc<Self>,
        db: &Db,
        viewer: i64,
        pos: FeedPosition,
    ) -> Result<(FeedPage, Vec<PostView>), ApiError> {
        if let Some(page) = self.cached_feed(viewer, &pos) {
            if let Some(views) = self.cached_views(&page.post_ids, Some(viewer)) {
                return Ok((page, views));
            }
        }
        let me = self.clone();
        db.run(move |c| {
            if !me.enabled {
                // Nothing is kept: the database's own feed query, one statement.
                let page = oasis_db::social::feed_page(c, viewer, &pos)?;
                let views = me.load_views(c, me.versions.ticket(), &page.post_ids, Some(viewer))?;
                return Ok((page, views));
            }
            let t = me.versions.ticket();
            let fan = me.fan(c, t, viewer)?;
            let sources = feed_sources(&fan, chrono::Utc::now());
            let mut have: HashMap<i64, Arc<Timeline>> = HashMap::with_capacity(sources.len());
            let mut missing = Vec::new();
            for &s in &sources {
                match me.timelines.get(&me, &s) {
                    Some(tl) => {
                        have.insert(s, tl);
                    }
                    None => missing.push(s),
                }
            }
            for (creator, tl) in oasis_db::social::timelines(c, &missing, me.timeline_posts)? {
                let tl = Arc::new(tl);
                let bytes = 48 + std::mem::size_of::<oasis_social::FeedCursor>() * tl.newest.len();
                me.timelines
                    .put(&me, creator, t, &[Key::Creator(creator)], tl.clone(), bytes);
                have.insert(creator, tl);
            }
            let timelines: Vec<&Timeline> = sources
                .iter()
                .filter_map(|s| have.get(s).map(|t| &**t))
                .collect();
            let page = match oasis_social::page_from_timelines(&timelines, &pos) {
                Some(page) => page,
                None => oasis_db::social::feed_page(c, viewer, &pos)?,
            };
            let views = me.load_views(c, t, &page.post_ids, Some(viewer))?;
            Ok((page, views))
        })
        .await
    }

    /// The feed page from memory alone, when everything it needs is there.
    fn cached_feed(&self, viewer: i64, pos: &FeedPosition) -> Option<FeedPage> {
        let fan = self.fans.get(self, &viewer)?;
        let timelines = feed_sources(&fan, chrono::Utc::now())
            .iter()
            .map(|s| self.timelines.get(self, s))
            .collect::<Option<Vec<_>>>()?;
        let refs: Vec<&Timeline> = timelines.iter().map(|t| &**t).collect();
        oasis_social::page_from_timelines(&refs, pos)
    }

    /// `creator`'s tiers (only the active ones when `only_active`) with paying member counts.
    pub async fn tiers(
        self: &Arc<Self>,
        db: &Db,
        creator: i64,
        only_active: bool,
        page: PageRequest,
    ) -> Result<Arc<Page<TierWithCount>>, ApiError> {
        if let Some(p) = self.cached_tiers(db, (creator, only_active, page)) {
            return Ok(p);
        }
        let me = self.clone();
        db.run(move |c| {
            let t = me.versions.ticket();
            Ok(me.load_tiers(c, t, creator, only_active, page)?)
        })
        .await
    }

    /// A tier list from memory; the first reader past its refresh time also has it read again
    /// in the background (the others go on being answered from memory meanwhile).
    fn cached_tiers(self: &Arc<Self>, db: &Db, key: TierKey) -> Option<Arc<Page<TierWithCount>>> {
        let (p, refresh) = self.tiers.get_or_refresh(self, &key)?;
        if refresh {
            let (me, db) = (self.clone(), db.clone());
            tokio::spawn(async move {
                let read = db
                    .run(move |c| {
                        let t = me.versions.ticket();
                        Ok(me.read_tiers(c, t, key)?)
                    })
                    .await;
                if let Err(e) = read {
                    // The kept list expires at its time and is read at the next request.
                    tracing::warn!(error = %e, creator = key.0, "tier list refresh failed");
                }
            });
        }
        Some(p)
    }

    fn load_tiers(
        &self,
        c: &mut PgConnection,
        t: Ticket,
        creator: i64,
        only_active: bool,
        page: PageRequest,
    ) -> Result<Arc<Page<TierWithCount>>, RepoError> {
        let key = (creator, only_active, page);
        match self.tiers.get(self, &key) {
            Some(p) => Ok(p),
            None => self.read_tiers(c, t, key),
        }
    }

    /// Reads a tier list with its paying member counts and keeps it.
    fn read_tiers(
        &self,
        c: &mut PgConnection,
        t: Ticket,
        key: TierKey,
    ) -> Result<Arc<Page<TierWithCount>>, RepoError> {
        let (creator, only_active, page) = key;
        // Before the counts are read: the database's "how long they hold" runs from later.
        let read_at = Instant::now();
        let tiers = oasis_db::catalog::list_tiers(c, creator, only_active, page)?;
        let (results, hold_for) = oasis_db::catalog::with_member_counts_until(c, tiers.results)?;
        let p = Arc::new(Page {
            count: tiers.count,
            results,
        });
        let bytes = 32
            + p.results
                .iter()
                .map(|(t, _)| tier_bytes(t) + 8)
                .sum::<usize>();
        // Paying member counts change with writes (which retire the list) and with the clock
        // alone, at the first period start or end among the memberships they count: kept until
        // then, and for at most max_age.
        let hold = hold_for.map_or(self.max_age, |h| h.min(self.max_age));
        let until = Some(read_at + hold);
        self.tiers.put_until(
            self,
            key,
            t,
            &[Key::Creator(creator)],
            p.clone(),
            bytes,
            until,
        );
        Ok(p)
    }

    /// User `id`'s profile as `viewer` sees it, with `tiers_shown` of their tiers (creators
    /// only; all of them for the creator themself) and a page of their posts; `None` when there
    /// is no such active user.
    pub async fn profile_page(
        self: &Arc<Self>,
        db: &Db,
        id: i64,
        viewer: Option<i64>,
        tiers_shown: i64,
        page: PageRequest,
    ) -> Result<Option<ProfilePage>, ApiError> {
        let tier_page = PageRequest {
            page: 1,
            page_size: tiers_shown,
        };
        let only_active = viewer != Some(id);
        if let Some(p) = self.cached_profile(db, id, viewer, only_active, tier_page, page) {
            return Ok(Some(p));
        }
        let me = self.clone();
        db.run(move |c| {
            let t = me.versions.ticket();
            let key = (id, viewer.unwrap_or(0));
            let profile = match me.profiles.get(&me, &key) {
                Some(p) => p,
                None => {
                    let Some(p) = oasis_db::social::profile(c, id, viewer.unwrap_or(0))? else {
                        return Ok(None);
                    };
                    let deps = [
                        Key::User(id),
                        Key::Creator(id),
                        Key::Follows(viewer.unwrap_or(0)),
                    ];
                    let bytes = std::mem::size_of::<Profile>()
                        + p.username.len()
                        + p.first_name.len()
                        + p.last_name.len()
                        + p.bio.len()
                        + p.profile_pic.as_ref().map_or(0, String::len);
                    me.profiles.put(&me, key, t, &deps, p.clone(), bytes);
                    p
                }
            };
            let tiers = if profile.is_creator {
                me.load_tiers(c, t, id, only_active, tier_page)?
                    .results
                    .clone()
            } else {
                Vec::new()
            };
            let ids = match me.creator_posts.get(&me, &(id, page)) {
                Some(ids) => ids,
                None => {
                    let ids = oasis_db::catalog::list_post_ids(c, Some(id), page)?;
                    let bytes = 32 + 8 * ids.results.len();
                    me.creator_posts.put(
                        &me,
                        (id, page),
                        t,
                        &[Key::Creator(id)],
                        ids.clone(),
                        bytes,
                    );
                    ids
                }
            };
            let views = me.load_views(c, t, &ids.results, viewer)?;
            Ok(Some(ProfilePage {
                profile,
                tiers,
                posts: Page {
                    count: ids.count,
                    results: views,
                },
            }))
        })
        .await
    }

    fn cached_profile(
        self: &Arc<Self>,
        db: &Db,
        id: i64,
        viewer: Option<i64>,
        only_active: bool,
        tier_page: PageRequest,
        page: PageRequest,
    ) -> Option<ProfilePage> {
        let profile = self.profiles.get(self, &(id, viewer.unwrap_or(0)))?;
        let tiers = if profile.is_creator {
            self.cached_tiers(db, (id, only_active, tier_page))?
                .results
                .clone()
        } else {
            Vec::new()
        };
        let ids = self.creator_posts.get(self, &(id, page))?;
        let views = self.cached_views(&ids.results, viewer)?;
        Some(ProfilePage {
            profile,
            tiers,
            posts: Page {
                count: ids.count,
                results: views,
            },
        })
    }
}

/// The creators whose posts make up a fan's feed at `now`: followed, or a membership giving
/// access (the same rule as the database's feed query), each once.
fn feed_sources(fan: &FanReads, now: chrono::DateTime<chrono::Utc>) -> Vec<i64> {
    let mut s: Vec<i64> = fan
        .follows
        .iter()
        .copied()
        .chain(
            fan.memberships
                .iter()
                .filter(|m| oasis_billing::has_access(&m.facts, now))
                .map(|m| m.creator_id),
        )
        .collect();
    s.sort_unstable();
    s.dedup();
    s
}

/// Which of `ids` are in `all` (sorted).
fn liked_among(all: &[i64], ids: &[i64]) -> HashSet<i64> {
    ids.iter()
        .copied()
        .filter(|id| all.binary_search(id).is_ok())
        .collect()
}

/// The visibility rule over cached parts: entitlements evaluated now.
fn assemble(
    records: Vec<PostRecord>,
    viewer: Option<i64>,
    liked: &HashSet<i64>,
    memberships: &[MembershipFacts],
) -> Vec<PostView> {
    let now = chrono::Utc::now();
    let access: HashSet<i64> = memberships
        .iter()
        .filter(|m| oasis_billing::has_access(&m.facts, now))
        .map(|m| m.tier_id)
        .collect();
    records
        .into_iter()
        .map(|mut r| {
            r.liked_by_me = liked.contains(&r.id);
            PostView::for_viewer(r, viewer, &access)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket_then(v: &Versions, touch: Option<Key>) -> bool {
        let t = v.ticket();
        if let Some(k) = touch {
            v.touch(&k);
        }
        v.still_valid(&t, &[Versions::stripe(&Key::Post(7))])
    }

    #[test]
    fn a_result_is_valid_until_a_key_it_depends_on_is_touched() {
        let v = Versions::default();
        // Not live (no listener yet): nothing is valid.
        assert!(!ticket_then(&v, None));
        v.set_live(true);
        assert!(ticket_then(&v, None));
        assert!(ticket_then(&v, Some(Key::Post(8))), "another key");
        assert!(!ticket_then(&v, Some(Key::Post(7))), "its own key");
        let t = v.ticket();
        v.apply(&Touched::Everything);
        assert!(!v.still_valid(&t, &[]), "everything");
        let t = v.ticket();
        v.set_live(false);
        v.set_live(true);
        assert!(!v.still_valid(&t, &[]), "the listener reconnected");
        v.apply(&Touched::Sync(42));
        assert_eq!(v.synced(), 42);
    }

    #[test]
    fn kinds_of_keys_with_the_same_id_land_apart() {
        let ids: HashSet<u32> = [
            Key::Creator(1),
            Key::Post(1),
            Key::User(1),
            Key::Follows(1),
            Key::Memberships(1),
            Key::Likes(1),
        ]
        .iter()
        .map(Versions::stripe)
        .collect();
        assert_eq!(ids.len(), 6);
    }
}
