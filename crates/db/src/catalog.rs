//! Postgres adapter for the catalog domain: tiers, posts, post_tiers, likes, comments, media,
//! post_attachments (migration 2026-11-28-020000_catalog).
//!
//! [`load_post_views`] renders any list of posts for one viewer in a fixed number of queries
//! (posts with counters and tier ids, attachments, the viewer's tier access) — reused by the feed.
use diesel::dsl::now as db_now;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Text, Timestamptz};
use oasis_catalog::media::MediaKind;
use oasis_catalog::*;
use oasis_kernel::{Currency, Page, PageRequest, RepoError, Timestamp};
use std::collections::{HashMap, HashSet};

use crate::schema::{
    comments, creator_post_counts, likes, media, post_attachments, post_tiers, posts, tiers, users,
};
use crate::{repo_error, CachedExt};

/// The catalog repositories over one connection (run inside the request's transaction).
pub struct PgCatalog<'a>(pub &'a mut PgConnection);

// ---------------------------------------------------------------------------------------------
// Billing ports: billing owns memberships and answers through `oasis_db::billing::PgTierAccess`.

/// The tiers `user_id` holds access to, asked of billing's adapter.
pub fn tiers_with_access(
    conn: &mut PgConnection,
    user_id: i64,
    tier_ids: &[i64],
) -> Result<HashSet<i64>, RepoError> {
    if tier_ids.is_empty() {
        return Ok(HashSet::new());
    }
    billing_port::tiers_with_access(conn, user_id, tier_ids)
}

mod billing_port {
    use super::*;
    /// Billing's answer (memberships currently giving access).
    pub fn tiers_with_access(
        conn: &mut PgConnection,
        user_id: i64,
        tier_ids: &[i64],
    ) -> Result<HashSet<i64>, RepoError> {
        crate::billing::PgTierAccess(conn).tiers_with_access(user_id, tier_ids)
    }
    /// Billing's paying members per tier.
    pub fn paying_member_counts(
        conn: &mut PgConnection,
        tier_ids: &[i64],
    ) -> Result<HashMap<i64, i64>, RepoError> {
        crate::billing::PgTierAccess(conn).paying_member_counts(tier_ids)
    }
}

impl TierAccess for PgCatalog<'_> {
    fn tiers_with_access(
        &mut self,
        user_id: i64,
        tier_ids: &[i64],
    ) -> Result<HashSet<i64>, RepoError> {
        tiers_with_access(self.0, user_id, tier_ids)
    }
}

impl TierMembers for PgCatalog<'_> {
    fn paying_member_counts(&mut self, tier_ids: &[i64]) -> Result<HashMap<i64, i64>, RepoError> {
        if tier_ids.is_empty() {
            return Ok(HashMap::new());
        }
        billing_port::paying_member_counts(self.0, tier_ids)
    }
}

// ---------------------------------------------------------------------------------------------
// Rows

#[derive(Queryable, Selectable)]
#[diesel(table_name = tiers, check_for_backend(diesel::pg::Pg))]
struct TierRow {
    id: i64,
    creator_id: i64,
    name: String,
    description: String,
    price: i64,
    currency: String,
    benefits: serde_json::Value,
    is_active: bool,
    created_at: Timestamp,
    updated_at: Timestamp,
    annual_price: Option<i64>,
    trial_days: i32,
}

#[derive(Insertable)]
#[diesel(table_name = tiers)]
struct NewTierRow<'a> {
    creator_id: i64,
    name: &'a str,
    description: &'a str,
    price: i64,
    currency: &'a str,
    benefits: serde_json::Value,
    is_active: bool,
    annual_price: Option<i64>,
    trial_days: i32,
}

/// `None` fields are left as they are (`updated_at` is set beside it).
#[derive(AsChangeset)]
#[diesel(table_name = tiers)]
struct TierChangeset<'a> {
    name: Option<&'a str>,
    description: Option<&'a str>,
    price: Option<i64>,
    currency: Option<&'a str>,
    benefits: Option<serde_json::Value>,
    is_active: Option<bool>,
    /// `Some(None)` writes NULL.
    annual_price: Option<Option<i64>>,
    trial_days: Option<i32>,
}

impl From<TierRow> for Tier {
    fn from(r: TierRow) -> Self {
        Tier {
            id: r.id,
            creator_id: r.creator_id,
            name: r.name,
            description: r.description,
            price: r.price,
            annual_price: r.annual_price,
            trial_days: i64::from(r.trial_days),
            currency: r.currency.parse().unwrap_or(Currency::Inr),
            benefits: match r.benefits {
                serde_json::Value::Array(a) => a
                    .into_iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            },
            is_active: r.is_active,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(QueryableByName)]
struct GateRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    creator_id: i64,
    #[diesel(sql_type = Array<BigInt>)]
    tier_ids: Vec<i64>,
}

impl From<GateRow> for PostGate {
    fn from(r: GateRow) -> Self {
        PostGate {
            id: r.id,
            creator_id: r.creator_id,
            tier_ids: r.tier_ids,
        }
    }
}

const TIER_IDS_OF_P: &str =
    "COALESCE((SELECT array_agg(pt.tier_id ORDER BY pt.tier_id) FROM post_tiers pt WHERE pt.post_id = p.id), '{}') AS tier_ids";

#[derive(Queryable, Selectable)]
#[diesel(table_name = likes, check_for_backend(diesel::pg::Pg))]
struct LikeRow {
    id: i64,
    post_id: i64,
    user_id: i64,
    created_at: Timestamp,
}

impl From<LikeRow> for Like {
    fn from(r: LikeRow) -> Self {
        Like {
            id: r.id,
            post_id: r.post_id,
            user_id: r.user_id,
            created_at: r.created_at,
        }
    }
}

/// A comment joined with its author's username (`comments INNER JOIN users`).
#[derive(Queryable, Selectable)]
#[diesel(table_name = comments, check_for_backend(diesel::pg::Pg))]
struct CommentRow {
    id: i64,
    post_id: i64,
    user_id: i64,
    #[diesel(select_expression = users::username)]
    username: String,
    text: String,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl From<CommentRow> for Comment {
    fn from(r: CommentRow) -> Self {
        Comment {
            id: r.id,
            post_id: r.post_id,
            user_id: r.user_id,
            username: r.username,
            text: r.text,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = media, check_for_backend(diesel::pg::Pg))]
struct MediaRow {
    id: i64,
    owner_id: i64,
    sha256: String,
    kind: String,
    content_type: String,
    size: i64,
    filename: String,
    created_at: Timestamp,
}

#[derive(Insertable)]
#[diesel(table_name = media)]
struct NewMediaRow<'a> {
    owner_id: i64,
    sha256: &'a str,
    kind: &'a str,
    content_type: &'a str,
    size: i64,
    filename: &'a str,
}

impl From<MediaRow> for Media {
    fn from(r: MediaRow) -> Self {
        Media {
            id: r.id,
            owner_id: r.owner_id,
            sha256: r.sha256,
            kind: MediaKind::parse(&r.kind).unwrap_or(MediaKind::Attachment),
            content_type: r.content_type,
            size: r.size,
            filename: r.filename,
            created_at: r.created_at,
        }
    }
}

/// A delete of one row by id: `NotFound` when it was already gone, so of two concurrent deletes
/// exactly one succeeds (the other answers 404).
fn deleted(n: usize) -> Result<(), RepoError> {
    if n == 0 {
        return Err(RepoError::NotFound);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Tiers

impl TierRepo for PgCatalog<'_> {
    fn insert_tier(&mut self, creator_id: i64, t: &NewTier) -> Result<Tier, RepoError> {
        // In a savepoint: a unique violation (second free tier) leaves the caller's transaction
        // usable, as the trait promises.
        let row = NewTierRow {
            creator_id,
            name: &t.name,
            description: &t.description,
            price: t.price,
            currency: t.currency.code(),
            benefits: serde_json::json!(t.benefits),
            is_active: t.is_active,
            annual_price: t.annual_price,
            trial_days: i32::try_from(t.trial_days).unwrap_or(0),
        };
        let r: TierRow = self
            .0
            .transaction(|c| {
                diesel::insert_into(tiers::table)
                    .values(&row)
                    .returning(TierRow::as_returning())
                    .get_result(c)
            })
            .map_err(repo_error)?;
        Ok(r.into())
    }

    fn find_tier(&mut self, id: i64) -> Result<Option<Tier>, RepoError> {
        let r: Option<TierRow> = tiers::table
            .find(id)
            .select(TierRow::as_select())
            .first(self.0)
            .optional()
            .map_err(repo_error)?;
        Ok(r.map(Into::into))
    }

    fn update_tier(&mut self, id: i64, c: &TierChanges) -> Result<Tier, RepoError> {
        // In a savepoint, like insert_tier (reactivating a second free tier is a conflict).
        let changes = TierChangeset {
            name: c.name.as_deref(),
            description: c.description.as_deref(),
            price: c.price,
            currency: c.currency.map(|c| c.code()),
            benefits: c.benefits.as_ref().map(|b| serde_json::json!(b)),
            is_active: c.is_active,
            annual_price: c.annual_price,
            trial_days: c.trial_days.and_then(|d| i32::try_from(d).ok()),
        };
        let r: TierRow = self
            .0
            .transaction(|conn| {
                diesel::update(tiers::table.find(id))
                    .set((changes, tiers::updated_at.eq(db_now)))
                    .returning(TierRow::as_returning())
                    .get_result(conn)
            })
            .map_err(repo_error)?;
        Ok(r.into())
    }

    fn delete_tier(&mut self, id: i64) -> Result<(), RepoError> {
        deleted(
            diesel::delete(tiers::table.find(id))
                .execute(self.0)
                .map_err(repo_error)?,
        )
    }

    fn tier_creators(&mut self, ids: &[i64]) -> Result<HashMap<i64, i64>, RepoError> {
        let rows: Vec<(i64, i64)> = tiers::table
            .filter(tiers::id.eq_any(ids))
            .select((tiers::id, tiers::creator_id))
            .load(self.0)
            .map_err(repo_error)?;
        Ok(rows.into_iter().collect())
    }

    fn posts_gated_by(&mut self, tier_id: i64) -> Result<i64, RepoError> {
        post_tiers::table
            .filter(post_tiers::tier_id.eq(tier_id))
            .count()
            .get_result(self.0)
            .map_err(repo_error)
    }
}

/// A page of tiers: one creator's (`only_active` for other viewers), oldest first (cheapest
/// first within a creator reads better, but creation order is what the creator arranged).
pub fn list_tiers(
    conn: &mut PgConnection,
    creator_id: i64,
    only_active: bool,
    page: PageRequest,
) -> Result<Page<Tier>, RepoError> {
    let filtered = || {
        let q = tiers::table
            .filter(tiers::creator_id.eq(creator_id))
            .into_boxed();
        if only_active {
            q.filter(tiers::is_active)
        } else {
            q
        }
    };
    let total: i64 = filtered().count().get_result(conn).map_err(repo_error)?;
    let rows: Vec<TierRow> = filtered()
        .order((tiers::price, tiers::id))
        .limit(page.limit())
        .offset(page.offset())
        .select(TierRow::as_select())
        .load(conn)
        .map_err(repo_error)?;
    Ok(Page {
        count: total,
        results: rows.into_iter().map(Into::into).collect(),
    })
}

/// Paying member counts for tiers (billing's answer; 0 while billing has none).
pub fn paying_member_counts(
    conn: &mut PgConnection,
    tier_ids: &[i64],
) -> Result<HashMap<i64, i64>, RepoError> {
    PgCatalog(conn).paying_member_counts(tier_ids)
}

/// `tiers`, in order, each with its paying member count (one query).
pub fn with_member_counts(
    conn: &mut PgConnection,
    tiers: Vec<Tier>,
) -> Result<TiersWithCounts, RepoError> {
    Ok(with_member_counts_until(conn, tiers)?.0)
}

/// Tiers, in order, each with its paying member count.
pub type TiersWithCounts = Vec<(Tier, i64)>;

/// [`with_member_counts`], and how long the clock alone leaves the counts as they are
/// ([`crate::billing::MemberCounts::hold_for`]; `None`: until a write).
pub fn with_member_counts_until(
    conn: &mut PgConnection,
    tiers: Vec<Tier>,
) -> Result<(TiersWithCounts, Option<std::time::Duration>), RepoError> {
    let ids: Vec<i64> = tiers.iter().map(|t| t.id).collect();
    let counts = crate::billing::paying_member_counts_until(conn, &ids)?;
    let with = tiers
        .into_iter()
        .map(|t| {
            let n = counts.counts.get(&t.id).copied().unwrap_or(0);
            (t, n)
        })
        .collect();
    Ok((with, counts.hold_for))
}

// ---------------------------------------------------------------------------------------------
// Posts

impl PostRepo for PgCatalog<'_> {
    fn insert_post(&mut self, creator_id: i64, title: &str, body: &str) -> Result<i64, RepoError> {
        diesel::insert_into(posts::table)
            .values((
                posts::creator_id.eq(creator_id),
                posts::title.eq(title),
                posts::body.eq(body),
            ))
            .returning(posts::id)
            .get_result(self.0)
            .map_err(repo_error)
    }

    fn find_post_gate(&mut self, id: i64) -> Result<Option<PostGate>, RepoError> {
        find_post_gate(self.0, id)
    }

    fn update_post(
        &mut self,
        id: i64,
        title: Option<&str>,
        body: Option<&str>,
    ) -> Result<(), RepoError> {
        diesel::update(posts::table.find(id))
            .set((
                title.map(|t| posts::title.eq(t)),
                body.map(|b| posts::body.eq(b)),
                posts::updated_at.eq(db_now),
            ))
            .execute(self.0)
            .map_err(repo_error)?;
        Ok(())
    }

    fn set_post_tiers(&mut self, id: i64, tier_ids: &[i64]) -> Result<(), RepoError> {
        diesel::delete(
            post_tiers::table
                .filter(post_tiers::post_id.eq(id))
                .filter(post_tiers::tier_id.ne_all(tier_ids)),
        )
        .execute(self.0)
        .map_err(repo_error)?;
        if tier_ids.is_empty() {
            return Ok(());
        }
        let rows: Vec<_> = tier_ids
            .iter()
            .map(|t| (post_tiers::post_id.eq(id), post_tiers::tier_id.eq(*t)))
            .collect();
        diesel::insert_into(post_tiers::table)
            .values(rows)
            .on_conflict_do_nothing()
            .execute(self.0)
            .map_err(repo_error)?;
        Ok(())
    }

    fn remove_post_tiers(&mut self, id: i64, tier_ids: &[i64]) -> Result<(), RepoError> {
        diesel::delete(
            post_tiers::table
                .filter(post_tiers::post_id.eq(id))
                .filter(post_tiers::tier_id.eq_any(tier_ids)),
        )
        .execute(self.0)
        .map_err(repo_error)?;
        Ok(())
    }

    fn set_post_attachments(&mut self, id: i64, media_ids: &[i64]) -> Result<(), RepoError> {
        diesel::delete(post_attachments::table.filter(post_attachments::post_id.eq(id)))
            .execute(self.0)
            .map_err(repo_error)?;
        if media_ids.is_empty() {
            return Ok(());
        }
        let mut rows = Vec::with_capacity(media_ids.len());
        for (position, m) in media_ids.iter().enumerate() {
            let position = i32::try_from(position)
                .map_err(|_| RepoError::Unavailable("too many attachments".to_owned()))?;
            rows.push((
                post_attachments::post_id.eq(id),
                post_attachments::media_id.eq(*m),
                post_attachments::position.eq(position),
            ));
        }
        diesel::insert_into(post_attachments::table)
            .values(rows)
            .execute(self.0)
            .map_err(repo_error)?;
        Ok(())
    }

    fn delete_post(&mut self, id: i64) -> Result<(), RepoError> {
        deleted(
            diesel::delete(posts::table.find(id))
                .execute(self.0)
                .map_err(repo_error)?,
        )
    }

    fn media_owners(&mut self, ids: &[i64]) -> Result<HashMap<i64, i64>, RepoError> {
        let rows: Vec<(i64, i64)> = media::table
            .filter(media::id.eq_any(ids))
            .select((media::id, media::owner_id))
            .load(self.0)
            .map_err(repo_error)?;
        Ok(rows.into_iter().collect())
    }
}

/// A post's creator and tiers (tier ids ascending).
pub fn find_post_gate(conn: &mut PgConnection, id: i64) -> Result<Option<PostGate>, RepoError> {
    let post: Option<(i64, i64)> = posts::table
        .find(id)
        .select((posts::id, posts::creator_id))
        .first(conn)
        .optional()
        .map_err(repo_error)?;
    let Some((id, creator_id)) = post else {
        return Ok(None);
    };
    let tier_ids: Vec<i64> = post_tiers::table
        .filter(post_tiers::post_id.eq(id))
        .select(post_tiers::tier_id)
        .order(post_tiers::tier_id)
        .load(conn)
        .map_err(repo_error)?;
    Ok(Some(PostGate {
        id,
        creator_id,
        tier_ids,
    }))
}

/// Ids of a page of posts, newest first: one creator's, or everyone's.
pub fn list_post_ids(
    conn: &mut PgConnection,
    creator_id: Option<i64>,
    page: PageRequest,
) -> Result<Page<i64>, RepoError> {
    let filtered = || {
        let q = posts::table.into_boxed();
        match creator_id {
            Some(c) => q.filter(posts::creator_id.eq(c)),
            None => q,
        }
    };
    let total: i64 = match creator_id {
        // One creator's: the counter row the posts' triggers keep exact (no count per page).
        Some(c) => creator_post_counts::table
            .find(c)
            .select(creator_post_counts::posts)
            .first(conn)
            .optional()
            .map_err(repo_error)?
            .unwrap_or(0),
        None => filtered().count().get_result(conn).map_err(repo_error)?,
    };
    let ids: Vec<i64> = filtered()
        .select(posts::id)
        .order((posts::created_at.desc(), posts::id.desc()))
        .limit(page.limit())
        .offset(page.offset())
        .load(conn)
        .map_err(repo_error)?;
    Ok(Page {
        count: total,
        results: ids,
    })
}

#[derive(QueryableByName)]
struct PostRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    creator_id: i64,
    #[diesel(sql_type = Text)]
    title: String,
    #[diesel(sql_type = Text)]
    body: String,
    #[diesel(sql_type = Array<BigInt>)]
    tier_ids: Vec<i64>,
    #[diesel(sql_type = BigInt)]
    like_count: i64,
    #[diesel(sql_type = BigInt)]
    comment_count: i64,
    #[diesel(sql_type = Bool)]
    liked_by_me: bool,
    #[diesel(sql_type = Timestamptz)]
    created_at: Timestamp,
    #[diesel(sql_type = Timestamptz)]
    updated_at: Timestamp,
}

#[derive(QueryableByName)]
struct AttachmentRow {
    #[diesel(sql_type = BigInt)]
    post_id: i64,
    #[diesel(sql_type = BigInt)]
    media_id: i64,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    content_type: String,
    #[diesel(sql_type = BigInt)]
    size: i64,
    #[diesel(sql_type = Text)]
    filename: String,
    #[diesel(sql_type = Integer)]
    position: i32,
}

/// Renders posts for one viewer, in the order of `post_ids` (missing ids are skipped), with like
/// and comment counts, `liked_by_me`, tiers, attachments, and the visibility rule applied
/// (locked posts: `body` None, attachments without names). Three queries for any page size:
/// posts + counters + tier ids, attachments, and the viewer's tier access.
pub fn load_post_views(
    conn: &mut PgConnection,
    post_ids: &[i64],
    viewer: Option<i64>,
) -> Result<Vec<PostView>, RepoError> {
    let records = load_post_records(conn, post_ids, viewer)?;
    let access = match viewer {
        Some(v) => {
            let mut gated: Vec<i64> = records
                .iter()
                .filter(|r| r.creator_id != v)
                .flat_map(|r| r.tier_ids.iter().copied())
                .collect();
            gated.sort_unstable();
            gated.dedup();
            tiers_with_access(conn, v, &gated)?
        }
        None => HashSet::new(),
    };
    Ok(records
        .into_iter()
        .map(|r| PostView::for_viewer(r, viewer, &access))
        .collect())
}

/// The stored posts `post_ids` (in that order, missing ones left out) with their counters;
/// `liked_by_me` for `viewer` (false for `None`). Two queries.
pub fn load_post_records(
    conn: &mut PgConnection,
    post_ids: &[i64],
    viewer: Option<i64>,
) -> Result<Vec<PostRecord>, RepoError> {
    if post_ids.is_empty() {
        return Ok(Vec::new());
    }
    // Feed rendering: correlated counts, EXISTS and array_agg per post in one round trip.
    let rows: Vec<PostRow> = diesel::sql_query(format!(
        "SELECT p.id, p.creator_id, p.title, p.body, {TIER_IDS_OF_P},
            (SELECT count(*) FROM likes l WHERE l.post_id = p.id) AS like_count,
            (SELECT count(*) FROM comments c WHERE c.post_id = p.id) AS comment_count,
            EXISTS (SELECT 1 FROM likes l WHERE l.post_id = p.id AND l.user_id = $2) AS liked_by_me,
            p.created_at, p.updated_at
         FROM posts p WHERE p.id = ANY($1)"
    ))
    .bind::<Array<BigInt>, _>(post_ids)
    .bind::<BigInt, _>(viewer.unwrap_or(0))
    .cached()
    .load(conn)
    .map_err(repo_error)?;
    // Feed rendering: kept beside its sibling above (same `ANY($1)` batch, typed by name).
    let atts: Vec<AttachmentRow> = diesel::sql_query(
        "SELECT pa.post_id, m.id AS media_id, m.kind, m.content_type, m.size, m.filename, pa.position
         FROM post_attachments pa JOIN media m ON m.id = pa.media_id
         WHERE pa.post_id = ANY($1) ORDER BY pa.post_id, pa.position",
    )
    .bind::<Array<BigInt>, _>(post_ids)
    .cached()
    .load(conn)
    .map_err(repo_error)?;
    let mut by_post: HashMap<i64, Vec<Attachment>> = HashMap::new();
    for a in atts {
        let _ = a.position;
        by_post.entry(a.post_id).or_default().push(Attachment {
            media_id: a.media_id,
            kind: MediaKind::parse(&a.kind).unwrap_or(MediaKind::Attachment),
            content_type: a.content_type,
            size: a.size,
            filename: a.filename,
        });
    }
    let mut by_id: HashMap<i64, PostRow> = rows.into_iter().map(|r| (r.id, r)).collect();
    let mut out = Vec::with_capacity(post_ids.len());
    for id in post_ids {
        let Some(r) = by_id.remove(id) else { continue };
        let record = PostRecord {
            id: r.id,
            creator_id: r.creator_id,
            title: r.title,
            body: r.body,
            tier_ids: r.tier_ids,
            attachments: by_post.remove(&r.id).unwrap_or_default(),
            like_count: r.like_count,
            comment_count: r.comment_count,
            liked_by_me: r.liked_by_me,
            created_at: r.created_at,
            updated_at: r.updated_at,
        };
        out.push(record);
    }
    Ok(out)
}

/// Which of `post_ids` `user` liked (one query).
pub fn liked_posts(
    conn: &mut PgConnection,
    user: i64,
    post_ids: &[i64],
) -> Result<HashSet<i64>, RepoError> {
    if post_ids.is_empty() {
        return Ok(HashSet::new());
    }
    #[derive(QueryableByName)]
    struct IdRow {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let rows: Vec<IdRow> = diesel::sql_query(
        "SELECT l.post_id AS id FROM likes l WHERE l.user_id = $1 AND l.post_id = ANY($2)",
    )
    .bind::<BigInt, _>(user)
    .bind::<Array<BigInt>, _>(post_ids)
    .cached()
    .load(conn)
    .map_err(repo_error)?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

// ---------------------------------------------------------------------------------------------
// Likes and comments

impl EngagementRepo for PgCatalog<'_> {
    fn like(&mut self, post_id: i64, user_id: i64) -> Result<(Like, bool), RepoError> {
        let created: Option<LikeRow> = diesel::insert_into(likes::table)
            .values((likes::post_id.eq(post_id), likes::user_id.eq(user_id)))
            .on_conflict((likes::post_id, likes::user_id))
            .do_nothing()
            .returning(LikeRow::as_returning())
            .get_result(self.0)
            .optional()
            .map_err(repo_error)?;
        if let Some(r) = created {
            return Ok((r.into(), true));
        }
        let existing: LikeRow = likes::table
            .filter(likes::post_id.eq(post_id))
            .filter(likes::user_id.eq(user_id))
            .select(LikeRow::as_select())
            .first(self.0)
            .map_err(repo_error)?;
        Ok((existing.into(), false))
    }

    fn find_like(&mut self, id: i64) -> Result<Option<Like>, RepoError> {
        let r: Option<LikeRow> = likes::table
            .find(id)
            .select(LikeRow::as_select())
            .first(self.0)
            .optional()
            .map_err(repo_error)?;
        Ok(r.map(Into::into))
    }

    fn delete_like(&mut self, id: i64) -> Result<(), RepoError> {
        deleted(
            diesel::delete(likes::table.find(id))
                .execute(self.0)
                .map_err(repo_error)?,
        )
    }

    fn insert_comment(
        &mut self,
        post_id: i64,
        user_id: i64,
        text: &str,
    ) -> Result<Comment, RepoError> {
        let id: i64 = diesel::insert_into(comments::table)
            .values((
                comments::post_id.eq(post_id),
                comments::user_id.eq(user_id),
                comments::text.eq(text),
            ))
            .returning(comments::id)
            .get_result(self.0)
            .map_err(repo_error)?;
        self.find_comment(id)?.ok_or(RepoError::NotFound)
    }

    fn find_comment(&mut self, id: i64) -> Result<Option<Comment>, RepoError> {
        let r: Option<CommentRow> = comments::table
            .inner_join(users::table)
            .filter(comments::id.eq(id))
            .select(CommentRow::as_select())
            .first(self.0)
            .optional()
            .map_err(repo_error)?;
        Ok(r.map(Into::into))
    }

    fn update_comment(&mut self, id: i64, text: &str) -> Result<Comment, RepoError> {
        diesel::update(comments::table.find(id))
            .set((comments::text.eq(text), comments::updated_at.eq(db_now)))
            .execute(self.0)
            .map_err(repo_error)?;
        self.find_comment(id)?.ok_or(RepoError::NotFound)
    }

    fn delete_comment(&mut self, id: i64) -> Result<(), RepoError> {
        deleted(
            diesel::delete(comments::table.find(id))
                .execute(self.0)
                .map_err(repo_error)?,
        )
    }
}

/// A page of a post's likes, oldest first.
pub fn list_likes(
    conn: &mut PgConnection,
    post_id: i64,
    page: PageRequest,
) -> Result<Page<Like>, RepoError> {
    let total: i64 = likes::table
        .filter(likes::post_id.eq(post_id))
        .count()
        .get_result(conn)
        .map_err(repo_error)?;
    let rows: Vec<LikeRow> = likes::table
        .filter(likes::post_id.eq(post_id))
        .order(likes::id)
        .limit(page.limit())
        .offset(page.offset())
        .select(LikeRow::as_select())
        .load(conn)
        .map_err(repo_error)?;
    Ok(Page {
        count: total,
        results: rows.into_iter().map(Into::into).collect(),
    })
}

/// A page of a post's comments, oldest first.
pub fn list_comments(
    conn: &mut PgConnection,
    post_id: i64,
    page: PageRequest,
) -> Result<Page<Comment>, RepoError> {
    let total: i64 = comments::table
        .filter(comments::post_id.eq(post_id))
        .count()
        .get_result(conn)
        .map_err(repo_error)?;
    let rows: Vec<CommentRow> = comments::table
        .inner_join(users::table)
        .filter(comments::post_id.eq(post_id))
        .order((comments::created_at, comments::id))
        .limit(page.limit())
        .offset(page.offset())
        .select(CommentRow::as_select())
        .load(conn)
        .map_err(repo_error)?;
    Ok(Page {
        count: total,
        results: rows.into_iter().map(Into::into).collect(),
    })
}

// ---------------------------------------------------------------------------------------------
// Media

/// Records an upload whose bytes are already stored under their hash.
pub fn insert_media(
    conn: &mut PgConnection,
    owner_id: i64,
    sha256: &str,
    kind: MediaKind,
    content_type: &str,
    size: i64,
    filename: &str,
) -> Result<Media, RepoError> {
    let r: MediaRow = diesel::insert_into(media::table)
        .values(NewMediaRow {
            owner_id,
            sha256,
            kind: kind.as_str(),
            content_type,
            size,
            filename,
        })
        .returning(MediaRow::as_returning())
        .get_result(conn)
        .map_err(repo_error)?;
    Ok(r.into())
}

pub fn find_media(conn: &mut PgConnection, id: i64) -> Result<Option<Media>, RepoError> {
    let r: Option<MediaRow> = media::table
        .find(id)
        .select(MediaRow::as_select())
        .first(conn)
        .optional()
        .map_err(repo_error)?;
    Ok(r.map(Into::into))
}

/// The posts a media row is attached to.
pub fn media_post_gates(
    conn: &mut PgConnection,
    media_id: i64,
) -> Result<Vec<PostGate>, RepoError> {
    // array_agg of each post's tiers in one round trip (the builder has no aggregate subquery).
    let rows: Vec<GateRow> = diesel::sql_query(format!(
        "SELECT p.id, p.creator_id, {TIER_IDS_OF_P}
         FROM post_attachments pa JOIN posts p ON p.id = pa.post_id WHERE pa.media_id = $1"
    ))
    .bind::<BigInt, _>(media_id)
    .load(conn)
    .map_err(repo_error)?;
    Ok(rows.into_iter().map(Into::into).collect())
}
