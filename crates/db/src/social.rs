//! Postgres adapter for the social domain (migration `2026-11-28-040000_social`): follows, the
//! feed, creator profiles, search and the dashboards.
//!
//! Reads other domains' tables (users, posts, post_tiers, tiers, memberships, payments,
//! billing_orders) with `sql_query`; posts are always *rendered* by
//! [`crate::catalog::load_post_views`] (the catalog's post shape and visibility rule), this module
//! only chooses which post ids, in which order.
//!
//! Membership access is billing's SQL mirror of its entitlement rule, `billing_has_access(...)`.
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Date, Float4, Nullable, SmallInt, Text, Timestamptz};
use oasis_kernel::{Currency, Money, RepoError, Timestamp};
use oasis_social::{FeedCursor, FeedPosition, FollowRepo, FollowTarget, SearchQuery, Timeline};

use crate::{repo_error, CachedExt};

// Billing's entitlement rule in SQL, for a membership row aliased `m`.
use crate::billing::{MembershipFacts, HAS_ACCESS};

/// The social repositories over one connection.
pub struct PgSocial<'a>(pub &'a mut PgConnection);

#[derive(QueryableByName)]
struct TargetRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Bool)]
    is_creator: bool,
}

#[derive(QueryableByName)]
struct FlagRow {
    #[diesel(sql_type = Bool)]
    flag: bool,
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

impl FollowRepo for PgSocial<'_> {
    fn find_target(&mut self, id: i64) -> Result<Option<FollowTarget>, RepoError> {
        let r: Option<TargetRow> =
            diesel::sql_query("SELECT id, is_creator FROM users WHERE id = $1 AND is_active")
                .bind::<BigInt, _>(id)
                .get_result(self.0)
                .optional()
                .map_err(repo_error)?;
        Ok(r.map(|r| FollowTarget {
            id: r.id,
            is_creator: r.is_creator,
        }))
    }

    fn insert_follow(&mut self, follower_id: i64, creator_id: i64) -> Result<bool, RepoError> {
        let n = diesel::sql_query(
            "INSERT INTO follows (follower_id, creator_id) VALUES ($1, $2)
             ON CONFLICT ON CONSTRAINT follows_follower_creator_key DO NOTHING",
        )
        .bind::<BigInt, _>(follower_id)
        .bind::<BigInt, _>(creator_id)
        .execute(self.0)
        .map_err(repo_error)?;
        Ok(n == 1)
    }

    fn delete_follow(&mut self, follower_id: i64, creator_id: i64) -> Result<bool, RepoError> {
        let n = diesel::sql_query("DELETE FROM follows WHERE follower_id = $1 AND creator_id = $2")
            .bind::<BigInt, _>(follower_id)
            .bind::<BigInt, _>(creator_id)
            .execute(self.0)
            .map_err(repo_error)?;
        Ok(n == 1)
    }

    fn is_following(&mut self, follower_id: i64, creator_id: i64) -> Result<bool, RepoError> {
        let r: FlagRow = diesel::sql_query(
            "SELECT EXISTS (SELECT 1 FROM follows WHERE follower_id = $1 AND creator_id = $2) AS flag",
        )
        .bind::<BigInt, _>(follower_id)
        .bind::<BigInt, _>(creator_id)
        .get_result(self.0)
        .map_err(repo_error)?;
        Ok(r.flag)
    }
}

/// Makes `fan` follow `creator` when a membership starts (billing's hook; same transaction).
/// Idempotent; does nothing for a creator joining their own tier.
pub fn follow_on_membership(
    conn: &mut PgConnection,
    fan: i64,
    creator: i64,
) -> Result<(), RepoError> {
    if fan != creator {
        PgSocial(conn).insert_follow(fan, creator)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Feed

/// The creators whose posts make up `$1`'s feed: followed, or with a membership giving access.
fn feed_sources() -> String {
    format!(
        "SELECT f.creator_id FROM follows f WHERE f.follower_id = $1
         UNION
         SELECT t.creator_id FROM memberships m JOIN tiers t ON t.id = m.tier_id
         WHERE m.user_id = $1 AND {HAS_ACCESS}"
    )
}

/// The newest `n` posts of each source creator that pass `filter` (a condition on `p`), merged
/// newest first: bounded work per creator, each an index range scan of
/// `posts_creator_created_idx`.
fn feed_page_sql(filter: &str, per_creator: &str, limit: &str, offset: &str) -> String {
    format!(
        "SELECT x.id, x.created_at FROM src CROSS JOIN LATERAL (
             SELECT p.id, p.created_at FROM posts p
             WHERE p.creator_id = src.creator_id AND {filter}
             ORDER BY p.created_at DESC, p.id DESC LIMIT {per_creator}
         ) x ORDER BY x.created_at DESC, x.id DESC LIMIT {limit} OFFSET {offset}"
    )
}

/// Posts of the source creators: one row of `creator_post_counts` per creator (kept exact by
/// triggers in the posts' own transactions), never a count of every followed post per page.
const SOURCE_POSTS: &str = "COALESCE((SELECT sum(c.posts) FROM creator_post_counts c
               WHERE c.creator_id IN (SELECT creator_id FROM src)), 0)";

/// Page-number mode: `$1` viewer, `$2` pinned max id (NULL = pin now), `$3` limit, `$4` offset,
/// `$5` limit + offset (saturating).
///
/// `count` is the snapshot's: the sources' posts minus those newer than the pin (a range of
/// `posts_creator_id_idx` per creator — only the posts published since the pin); the same number
/// as counting the posts with `id <= pin`, which the tests check.
fn feed_pinned_sql() -> String {
    let page = feed_page_sql("p.id <= (SELECT max_id FROM pin)", "$5", "$3", "$4");
    format!(
        "WITH src AS MATERIALIZED ({src}),
         pin AS MATERIALIZED (
             SELECT COALESCE($2, (SELECT max(id) FROM posts), 0)::bigint AS max_id),
         tot AS (
             SELECT ({SOURCE_POSTS}
                     - COALESCE((SELECT sum((SELECT count(*) FROM posts p
                                             WHERE p.creator_id = src.creator_id
                                               AND p.id > (SELECT max_id FROM pin)))
                                 FROM src), 0))::bigint AS total),
         page AS ({page})
         SELECT pin.max_id, tot.total, page.id, page.created_at
         FROM pin CROSS JOIN tot LEFT JOIN page ON true
         ORDER BY page.created_at DESC, page.id DESC",
        src = feed_sources(),
    )
}

/// Cursor mode: `$1` viewer, `$2`/`$3` the cursor's (created_at, id), `$4` limit (+1 to see
/// whether more follow).
fn feed_cursor_sql() -> String {
    let page = feed_page_sql("(p.created_at, p.id) < ($2, $3)", "$4", "$4", "0");
    format!(
        "WITH src AS MATERIALIZED ({src}),
         tot AS (SELECT {SOURCE_POSTS}::bigint AS total),
         page AS ({page})
         SELECT 0::bigint AS max_id, tot.total, page.id, page.created_at
         FROM tot LEFT JOIN page ON true
         ORDER BY page.created_at DESC, page.id DESC",
        src = feed_sources(),
    )
}

#[derive(QueryableByName)]
struct FeedRow {
    #[diesel(sql_type = BigInt)]
    max_id: i64,
    #[diesel(sql_type = BigInt)]
    total: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    id: Option<i64>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    created_at: Option<Timestamp>,
}

pub use oasis_social::FeedPage;

/// The feed of `viewer` at `pos`: one query (sources, snapshot pin, count and page together),
/// kept as a prepared statement per connection ([`crate::cached`]).
pub fn feed_page(
    conn: &mut PgConnection,
    viewer: i64,
    pos: &FeedPosition,
) -> Result<FeedPage, RepoError> {
    let (rows, limit, offset): (Vec<FeedRow>, i64, i64) = match *pos {
        FeedPosition::Page { page, max_id } => (
            diesel::sql_query(feed_pinned_sql())
                .bind::<BigInt, _>(viewer)
                .bind::<Nullable<BigInt>, _>(max_id)
                .bind::<BigInt, _>(page.limit())
                .bind::<BigInt, _>(page.offset())
                .bind::<BigInt, _>(page.limit().saturating_add(page.offset()))
                .cached()
                .load(conn)
                .map_err(repo_error)?,
            page.limit(),
            page.offset(),
        ),
        FeedPosition::After { cursor, page_size } => (
            diesel::sql_query(feed_cursor_sql())
                .bind::<BigInt, _>(viewer)
                .bind::<Timestamptz, _>(cursor.created_at)
                .bind::<BigInt, _>(cursor.id)
                .bind::<BigInt, _>(page_size + 1)
                .cached()
                .load(conn)
                .map_err(repo_error)?,
            page_size,
            -1,
        ),
    };
    let (count, max_id) = rows.first().map(|r| (r.total, r.max_id)).unwrap_or((0, 0));
    let mut items: Vec<(i64, Timestamp)> = rows
        .into_iter()
        .filter_map(|r| Some((r.id?, r.created_at?)))
        .collect();
    let has_more = if offset < 0 {
        // Cursor mode fetched one extra row.
        let more = items.len() as i64 > limit;
        items.truncate(limit as usize);
        more
    } else {
        offset + (items.len() as i64) < count
    };
    let next_cursor = has_more
        .then(|| {
            items
                .last()
                .map(|&(id, created_at)| FeedCursor { created_at, id })
        })
        .flatten();
    Ok(FeedPage {
        count,
        max_id,
        post_ids: items.into_iter().map(|(id, _)| id).collect(),
        has_more,
        next_cursor,
    })
}

/// What the read cache keeps of one fan: whom they follow, their memberships (as the
/// entitlement rule reads them, with each tier's creator), and the posts they liked — `None`
/// when they liked more than the limit asked for (then ask per post,
/// [`crate::catalog::liked_posts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanReads {
    pub follows: Vec<i64>,
    pub memberships: Vec<MembershipFacts>,
    /// Sorted.
    pub likes: Option<Vec<i64>>,
}

#[derive(QueryableByName)]
struct FanRow {
    #[diesel(sql_type = SmallInt)]
    part: i16,
    #[diesel(sql_type = BigInt)]
    a: i64,
    #[diesel(sql_type = BigInt)]
    b: i64,
    #[diesel(sql_type = Nullable<Text>)]
    kind: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    status: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    current_start: Option<Timestamp>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    current_end: Option<Timestamp>,
    #[diesel(sql_type = Bool)]
    cancel: bool,
}

/// [`FanReads`] of `fan`, counting likes up to `like_limit`: one statement (three index scans).
pub fn fan_reads(
    conn: &mut PgConnection,
    fan: i64,
    like_limit: i64,
) -> Result<FanReads, RepoError> {
    let rows: Vec<FanRow> = diesel::sql_query(
        "SELECT 1::int2 AS part, m.tier_id AS a, t.creator_id AS b, m.kind, m.status,
                m.current_start, m.current_end, m.cancel_at_period_end AS cancel
         FROM memberships m JOIN tiers t ON t.id = m.tier_id WHERE m.user_id = $1
         UNION ALL
         SELECT 2::int2, f.creator_id, 0, NULL, NULL, NULL, NULL, false
         FROM follows f WHERE f.follower_id = $1
         UNION ALL
         (SELECT 3::int2, l.post_id, 0, NULL, NULL, NULL, NULL, false
          FROM likes l WHERE l.user_id = $1 LIMIT $2)",
    )
    .bind::<BigInt, _>(fan)
    .bind::<BigInt, _>(like_limit.saturating_add(1))
    .cached()
    .load(conn)
    .map_err(repo_error)?;
    let mut out = FanReads {
        follows: Vec::new(),
        memberships: Vec::new(),
        likes: None,
    };
    let mut likes = Vec::new();
    for r in rows {
        match r.part {
            1 => out.memberships.push(MembershipFacts::from_row(
                r.a,
                r.b,
                r.kind.as_deref().unwrap_or_default(),
                r.status.as_deref().unwrap_or_default(),
                r.current_start,
                r.current_end,
                r.cancel,
            )?),
            2 => out.follows.push(r.a),
            _ => likes.push(r.a),
        }
    }
    if likes.len() as i64 <= like_limit {
        likes.sort_unstable();
        out.likes = Some(likes);
    }
    Ok(out)
}

#[derive(QueryableByName)]
struct TimelineRow {
    #[diesel(sql_type = BigInt)]
    creator_id: i64,
    #[diesel(sql_type = BigInt)]
    total: i64,
    #[diesel(sql_type = BigInt)]
    max_id: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    id: Option<i64>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    created_at: Option<Timestamp>,
}

/// The [`Timeline`] of each of `creators` with up to `keep` of their newest posts: one
/// statement (per creator: their row of `creator_post_counts`, the top of
/// `posts_creator_id_idx` and a range of `posts_creator_created_idx`).
pub fn timelines(
    conn: &mut PgConnection,
    creators: &[i64],
    keep: i64,
) -> Result<Vec<(i64, Timeline)>, RepoError> {
    if creators.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<TimelineRow> = diesel::sql_query(
        "SELECT s.id AS creator_id,
                COALESCE((SELECT c.posts FROM creator_post_counts c WHERE c.creator_id = s.id),
                         0)::bigint AS total,
                COALESCE((SELECT max(p.id) FROM posts p WHERE p.creator_id = s.id), 0) AS max_id,
                x.id, x.created_at
         FROM unnest($1::bigint[]) s(id) LEFT JOIN LATERAL (
             SELECT p.id, p.created_at FROM posts p WHERE p.creator_id = s.id
             ORDER BY p.created_at DESC, p.id DESC LIMIT $2
         ) x ON true
         ORDER BY s.id, x.created_at DESC, x.id DESC",
    )
    .bind::<Array<BigInt>, _>(creators)
    .bind::<BigInt, _>(keep)
    .cached()
    .load(conn)
    .map_err(repo_error)?;
    let mut out: Vec<(i64, Timeline)> = Vec::with_capacity(creators.len());
    for r in rows {
        if out.last().is_none_or(|(c, _)| *c != r.creator_id) {
            out.push((
                r.creator_id,
                Timeline {
                    total: r.total,
                    max_id: r.max_id,
                    newest: Vec::new(),
                },
            ));
        }
        if let (Some(id), Some(created_at), Some((_, t))) = (r.id, r.created_at, out.last_mut()) {
            t.newest.push(FeedCursor { created_at, id });
        }
    }
    Ok(out)
}

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

/// `EXPLAIN` of the feed query for `viewer` at page 1 (tests assert on the plan).
pub fn explain_feed(conn: &mut PgConnection, viewer: i64) -> Result<String, RepoError> {
    let lines: Vec<PlanLine> = diesel::sql_query(format!("EXPLAIN {}", feed_pinned_sql()))
        .bind::<BigInt, _>(viewer)
        .bind::<Nullable<BigInt>, _>(None::<i64>)
        .bind::<BigInt, _>(10_i64)
        .bind::<BigInt, _>(0_i64)
        .bind::<BigInt, _>(10_i64)
        .load(conn)
        .map_err(repo_error)?;
    Ok(lines
        .into_iter()
        .map(|l| l.line)
        .collect::<Vec<_>>()
        .join("\n"))
}

// ---------------------------------------------------------------------------------------------
// Profiles

/// A user's public profile with counters for one viewer.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Profile {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub username: String,
    #[diesel(sql_type = Text)]
    pub first_name: String,
    #[diesel(sql_type = Text)]
    pub last_name: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub profile_pic: Option<String>,
    #[diesel(sql_type = Text)]
    pub bio: String,
    #[diesel(sql_type = Bool)]
    pub is_creator: bool,
    #[diesel(sql_type = BigInt)]
    pub follower_count: i64,
    #[diesel(sql_type = BigInt)]
    pub post_count: i64,
    #[diesel(sql_type = Bool)]
    pub is_following: bool,
}

/// The active user `id` as `viewer` (0 = anonymous) sees it; one cached query.
pub fn profile(
    conn: &mut PgConnection,
    id: i64,
    viewer: i64,
) -> Result<Option<Profile>, RepoError> {
    diesel::sql_query(
        "SELECT u.id, u.username, u.first_name, u.last_name, u.profile_pic, u.bio, u.is_creator,
            (SELECT count(*) FROM follows f WHERE f.creator_id = u.id) AS follower_count,
            COALESCE((SELECT c.posts FROM creator_post_counts c WHERE c.creator_id = u.id), 0)
                AS post_count,
            EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = $2 AND f.creator_id = u.id)
                AS is_following
         FROM users u WHERE u.id = $1 AND u.is_active",
    )
    .bind::<BigInt, _>(id)
    .bind::<BigInt, _>(viewer)
    .cached()
    .get_result(conn)
    .optional()
    .map_err(repo_error)
}

// ---------------------------------------------------------------------------------------------
// Search

/// A creator found by name.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct CreatorHit {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub username: String,
    #[diesel(sql_type = Text)]
    pub first_name: String,
    #[diesel(sql_type = Text)]
    pub last_name: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub profile_pic: Option<String>,
    #[diesel(sql_type = Text)]
    pub bio: String,
    #[diesel(sql_type = BigInt)]
    pub follower_count: i64,
    #[diesel(sql_type = Float4)]
    pub score: f32,
}

const FULL_NAME: &str = "lower(u.first_name || ' ' || u.last_name)";

/// Creators whose username or full name is similar to the query (trigram similarity, word
/// similarity for partial names, substring), best first. Uses the trigram GIN indexes.
pub fn search_creators(
    conn: &mut PgConnection,
    q: &SearchQuery,
    limit: i64,
) -> Result<Vec<CreatorHit>, RepoError> {
    // Word similarity ≥ 0.5 lets "katherin" or "jonse" find "katherine_jones".
    diesel::sql_query("SET LOCAL pg_trgm.word_similarity_threshold = 0.5")
        .execute(conn)
        .map_err(repo_error)?;
    // Score and limit first; follower counts only for the page.
    diesel::sql_query(format!(
        "SELECT h.id, h.username, h.first_name, h.last_name, h.profile_pic, h.bio, h.score,
            (SELECT count(*) FROM follows f WHERE f.creator_id = h.id) AS follower_count
         FROM (
             SELECT u.id, u.username, u.first_name, u.last_name, u.profile_pic, u.bio,
                (GREATEST(similarity(lower(u.username), $1), word_similarity($1, lower(u.username)),
                          similarity({FULL_NAME}, $1), word_similarity($1, {FULL_NAME}))
                 + CASE WHEN lower(u.username) = $1 THEN 1.0
                        WHEN lower(u.username) LIKE $3 ESCAPE '\\' THEN 0.5
                        WHEN {FULL_NAME} LIKE $3 ESCAPE '\\' THEN 0.3
                        ELSE 0.0 END)::real AS score
             FROM users u
             WHERE u.is_creator AND u.is_active
               AND (lower(u.username) % $1 OR lower(u.username) %> $1
                    OR lower(u.username) LIKE $2 ESCAPE '\\'
                    OR {FULL_NAME} % $1 OR {FULL_NAME} %> $1 OR {FULL_NAME} LIKE $2 ESCAPE '\\')
             ORDER BY score DESC, u.id
             LIMIT $4
         ) h
         ORDER BY h.score DESC, h.id"
    ))
    .bind::<Text, _>(&q.text)
    .bind::<Text, _>(q.contains_pattern())
    .bind::<Text, _>(q.prefix_pattern())
    .bind::<BigInt, _>(limit)
    .load(conn)
    .map_err(repo_error)
}

const TITLE_TSV: &str = "to_tsvector('english'::regconfig, p.title)";
const FULL_TSV: &str = "(setweight(to_tsvector('english'::regconfig, p.title), 'A') \
     || setweight(to_tsvector('english'::regconfig, p.body), 'B'))";

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Ids of posts matching the query for `viewer` (0 = anonymous), best first.
///
/// A post matches on title + body only when the viewer may read it (public, own, or a tier of it
/// held through a membership with access); otherwise on its title alone, and it is then ranked
/// on its title alone — its body can neither make it appear nor move it.
pub fn search_post_ids(
    conn: &mut PgConnection,
    q: &SearchQuery,
    viewer: i64,
    limit: i64,
) -> Result<Vec<i64>, RepoError> {
    let Some(tsq) = q.prefix_tsquery() else {
        return Ok(Vec::new());
    };
    // Readability per candidate: its tiers (primary-key lookup on post_tiers) against the
    // viewer's held tiers (computed once), never a scan of post_tiers.
    let rows: Vec<IdRow> = diesel::sql_query(format!(
        "WITH held AS MATERIALIZED (
             SELECT COALESCE(array_agg(m.tier_id), '{{}}') AS tiers FROM memberships m
             WHERE m.user_id = $2 AND {HAS_ACCESS})
         SELECT c.id FROM (
             SELECT p.id, p.created_at,
                 {TITLE_TSV} @@ to_tsquery('english'::regconfig, $1) AS title_hit,
                 (g.n = 0 OR p.creator_id = $2 OR g.held) AS readable,
                 CASE WHEN g.n = 0 OR p.creator_id = $2 OR g.held
                      THEN ts_rank({FULL_TSV}, to_tsquery('english'::regconfig, $1))
                      ELSE ts_rank(setweight({TITLE_TSV}, 'A'), to_tsquery('english'::regconfig, $1))
                 END AS rank
             FROM posts p CROSS JOIN held
             CROSS JOIN LATERAL (
                 SELECT count(*) AS n,
                        COALESCE(bool_or(pt.tier_id = ANY(held.tiers)), false) AS held
                 FROM post_tiers pt WHERE pt.post_id = p.id) g
             WHERE {TITLE_TSV} @@ to_tsquery('english'::regconfig, $1)
                OR {FULL_TSV} @@ to_tsquery('english'::regconfig, $1)
         ) c
         WHERE c.title_hit OR c.readable
         ORDER BY c.rank DESC, c.created_at DESC, c.id DESC
         LIMIT $3"
    ))
    .bind::<Text, _>(tsq)
    .bind::<BigInt, _>(viewer)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .map_err(repo_error)?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

// ---------------------------------------------------------------------------------------------
// Dashboards

#[derive(QueryableByName)]
struct MoneyRow {
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = BigInt)]
    amount: i64,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn money_rows(rows: Vec<MoneyRow>) -> (Vec<Money>, i64) {
    let mut count = 0;
    let mut out: Vec<Money> = rows
        .into_iter()
        .filter_map(|r| {
            count += r.n;
            let c: Currency = r.currency.parse().ok()?;
            Some(Money::new(r.amount, c))
        })
        .collect();
    out.sort_by_key(|m| m.currency);
    (out, count)
}

/// Money sums per currency with their row counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub count: i64,
    pub amounts: Vec<Money>,
}

fn totals(conn: &mut PgConnection, sql: &str, user: i64) -> Result<Totals, RepoError> {
    let rows: Vec<MoneyRow> = diesel::sql_query(sql)
        .bind::<BigInt, _>(user)
        .load(conn)
        .map_err(repo_error)?;
    let (amounts, count) = money_rows(rows);
    Ok(Totals { count, amounts })
}

/// Net money of payments received (`creator_id`) or made (`user_id`): captured or partly
/// refunded, minus refunds.
const NET: &str = "sum(p.amount - p.amount_refunded)::bigint";
const SETTLED: &str = "p.status IN ('captured', 'refunded')";

/// A tier with its active members.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct TierMembers {
    #[diesel(sql_type = BigInt)]
    pub tier_id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = BigInt)]
    pub price: i64,
    #[diesel(sql_type = Text)]
    pub currency: String,
    #[diesel(sql_type = Bool)]
    pub is_active: bool,
    #[diesel(sql_type = BigInt)]
    pub active_members: i64,
}

/// A creator's dashboard numbers (see the stats route for their meaning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatorStats {
    pub followers: i64,
    pub posts: i64,
    pub tiers: Vec<TierMembers>,
    pub active_members: i64,
    pub mrr: Vec<Money>,
    pub earnings_this_month: Totals,
    pub earnings_all_time: Totals,
    /// What the creator keeps of those (the earnings ledger: after Razorpay's and the platform's
    /// fees, net of refunds), per currency.
    pub net_earnings_this_month: Vec<Money>,
    pub net_earnings_all_time: Vec<Money>,
    pub tips: Totals,
    /// Commission payments received, net of refunds.
    pub commission_earnings: Totals,
    /// Received commission requests that are ordered, accepted or in progress.
    pub open_commissions: i64,
    pub daily_counts: Vec<(chrono::NaiveDate, i64, i64)>,
    pub daily_earnings: Vec<(chrono::NaiveDate, Money)>,
}

#[derive(QueryableByName)]
struct CountersRow {
    #[diesel(sql_type = BigInt)]
    followers: i64,
    #[diesel(sql_type = BigInt)]
    posts: i64,
    #[diesel(sql_type = BigInt)]
    active_members: i64,
}

#[derive(QueryableByName)]
struct DayCountRow {
    #[diesel(sql_type = Date)]
    day: chrono::NaiveDate,
    #[diesel(sql_type = BigInt)]
    members: i64,
    #[diesel(sql_type = BigInt)]
    followers: i64,
}

#[derive(QueryableByName)]
struct DayMoneyRow {
    #[diesel(sql_type = Date)]
    day: chrono::NaiveDate,
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = BigInt)]
    amount: i64,
}

/// Days are UTC days; the series covers `days` days up to today.
pub fn creator_stats(
    conn: &mut PgConnection,
    creator: i64,
    days: i64,
) -> Result<CreatorStats, RepoError> {
    let c: CountersRow = diesel::sql_query(format!(
        "SELECT (SELECT count(*) FROM follows f WHERE f.creator_id = $1) AS followers,
            (SELECT count(*) FROM posts p WHERE p.creator_id = $1) AS posts,
            (SELECT count(DISTINCT m.user_id) FROM memberships m JOIN tiers t ON t.id = m.tier_id
             WHERE t.creator_id = $1 AND {HAS_ACCESS}) AS active_members"
    ))
    .bind::<BigInt, _>(creator)
    .get_result(conn)
    .map_err(repo_error)?;
    let tiers: Vec<TierMembers> = diesel::sql_query(format!(
        "SELECT t.id AS tier_id, t.name, t.price, t.currency, t.is_active,
            count(DISTINCT m.user_id) FILTER (WHERE m.id IS NOT NULL AND {HAS_ACCESS}) AS active_members
         FROM tiers t LEFT JOIN memberships m ON m.tier_id = t.id
         WHERE t.creator_id = $1
         GROUP BY t.id ORDER BY t.price, t.id"
    ))
    .bind::<BigInt, _>(creator)
    .load(conn)
    .map_err(repo_error)?;
    // Monthly recurring revenue: recurring memberships giving access that will renew; a
    // yearly membership counts as a twelfth of its price a month (rounded once, on the sum).
    let mrr = totals(
        conn,
        &format!(
            "SELECT m.currency,
                round(sum(CASE m.period WHEN 'yearly' THEN m.amount::numeric / 12
                               ELSE m.amount END))::bigint AS amount,
                count(*) AS n
             FROM memberships m JOIN tiers t ON t.id = m.tier_id
             WHERE t.creator_id = $1 AND m.kind = 'recurring' AND NOT m.cancel_at_period_end
               AND m.status IN ('active', 'pending') AND {HAS_ACCESS}
             GROUP BY m.currency"
        ),
        creator,
    )?
    .amounts;
    let earnings = |when: &str| {
        format!(
            "SELECT p.currency, {NET} AS amount, count(*) AS n FROM payments p
             WHERE p.creator_id = $1 AND {SETTLED} {when} GROUP BY p.currency"
        )
    };
    let earnings_this_month = totals(
        conn,
        &earnings(
            "AND p.paid_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
        ),
        creator,
    )?;
    let earnings_all_time = totals(conn, &earnings(""), creator)?;
    let tips = totals(conn, &earnings("AND p.kind = 'cheer'"), creator)?;
    let commission_earnings = totals(conn, &earnings("AND p.kind = 'commission'"), creator)?;
    let open_commissions = crate::commissions::open_requests_of_creator(conn, creator)?;
    // The creator's accounts in the ledger (migration 2026-12-02-130000_ledger).
    let ledger_net = |when: &str| {
        format!(
            "SELECT e.currency, sum(e.amount)::bigint AS amount, count(DISTINCT p.id) AS n
             FROM ledger_entries e JOIN ledger_postings p ON p.id = e.posting_id
             WHERE e.creator_id = $1 AND e.account LIKE 'creator\\_%' {when} GROUP BY e.currency"
        )
    };
    let net_earnings_this_month = totals(
        conn,
        &ledger_net(
            "AND p.posted_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
        ),
        creator,
    )?
    .amounts;
    let net_earnings_all_time = totals(conn, &ledger_net(""), creator)?.amounts;
    let daily: Vec<DayCountRow> = diesel::sql_query(
        "WITH days AS (SELECT (now() AT TIME ZONE 'UTC')::date - ($2 - 1)::int AS first)
         SELECT day, sum(members)::bigint AS members, sum(followers)::bigint AS followers FROM (
             SELECT (m.created_at AT TIME ZONE 'UTC')::date AS day, count(DISTINCT m.user_id) AS members,
                    0::bigint AS followers
             FROM memberships m JOIN tiers t ON t.id = m.tier_id, days
             WHERE t.creator_id = $1 AND m.status NOT IN ('created', 'authenticated')
               AND m.created_at >= days.first::timestamp AT TIME ZONE 'UTC'
             GROUP BY 1
             UNION ALL
             SELECT (f.created_at AT TIME ZONE 'UTC')::date, 0, count(*)
             FROM follows f, days
             WHERE f.creator_id = $1 AND f.created_at >= days.first::timestamp AT TIME ZONE 'UTC'
             GROUP BY 1
         ) d GROUP BY day",
    )
    .bind::<BigInt, _>(creator)
    .bind::<BigInt, _>(days)
    .load(conn)
    .map_err(repo_error)?;
    let daily_money: Vec<DayMoneyRow> = diesel::sql_query(format!(
        "SELECT (p.paid_at AT TIME ZONE 'UTC')::date AS day, p.currency, {NET} AS amount
         FROM payments p
         WHERE p.creator_id = $1 AND {SETTLED}
           AND p.paid_at >= ((now() AT TIME ZONE 'UTC')::date - ($2 - 1)::int)::timestamp AT TIME ZONE 'UTC'
         GROUP BY 1, 2"
    ))
    .bind::<BigInt, _>(creator)
    .bind::<BigInt, _>(days)
    .load(conn)
    .map_err(repo_error)?;
    Ok(CreatorStats {
        followers: c.followers,
        posts: c.posts,
        active_members: c.active_members,
        tiers,
        mrr,
        earnings_this_month,
        earnings_all_time,
        net_earnings_this_month,
        net_earnings_all_time,
        tips,
        commission_earnings,
        open_commissions,
        daily_counts: daily
            .into_iter()
            .map(|r| (r.day, r.members, r.followers))
            .collect(),
        daily_earnings: daily_money
            .into_iter()
            .filter_map(|r| Some((r.day, Money::new(r.amount, r.currency.parse().ok()?))))
            .collect(),
    })
}

/// A fan's dashboard numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserStats {
    pub following: i64,
    pub active_memberships: i64,
    pub total_spent: Totals,
    pub tips_given: Totals,
    pub commissions_ordered: i64,
    /// The fan's commission requests per status.
    pub commissions: Vec<(oasis_commissions::RequestStatus, i64)>,
}

#[derive(QueryableByName)]
struct UserCountersRow {
    #[diesel(sql_type = BigInt)]
    following: i64,
    #[diesel(sql_type = BigInt)]
    active_memberships: i64,
    #[diesel(sql_type = BigInt)]
    commissions: i64,
}

pub fn user_stats(conn: &mut PgConnection, user: i64) -> Result<UserStats, RepoError> {
    let c: UserCountersRow = diesel::sql_query(format!(
        "SELECT (SELECT count(*) FROM follows f WHERE f.follower_id = $1) AS following,
            (SELECT count(*) FROM memberships m WHERE m.user_id = $1 AND {HAS_ACCESS})
                AS active_memberships,
            (SELECT count(*) FROM billing_orders o
             WHERE o.user_id = $1 AND o.kind = 'commission' AND o.status = 'paid') AS commissions"
    ))
    .bind::<BigInt, _>(user)
    .get_result(conn)
    .map_err(repo_error)?;
    let spent = |when: &str| {
        format!(
            "SELECT p.currency, {NET} AS amount, count(*) AS n FROM payments p
             WHERE p.user_id = $1 AND {SETTLED} {when} GROUP BY p.currency"
        )
    };
    Ok(UserStats {
        following: c.following,
        active_memberships: c.active_memberships,
        total_spent: totals(conn, &spent(""), user)?,
        tips_given: totals(conn, &spent("AND p.kind = 'cheer'"), user)?,
        commissions_ordered: c.commissions,
        commissions: crate::commissions::fan_request_counts(conn, user)?,
    })
}

/// How many users `user` follows.
pub fn following_count(conn: &mut PgConnection, user: i64) -> Result<i64, RepoError> {
    let r: CountRow = diesel::sql_query("SELECT count(*) AS n FROM follows WHERE follower_id = $1")
        .bind::<BigInt, _>(user)
        .get_result(conn)
        .map_err(repo_error)?;
    Ok(r.n)
}
