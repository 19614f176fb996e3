//! Postgres adapter for the catalog domain: tiers, posts, post_tiers, likes, comments, media,
//! post_attachments (migration 2026-11-28-020000_catalog).
//!
//! [`load_post_views`] renders any list of posts for one viewer in a fixed number of queries
//! (posts with counters and tier ids, attachments, the viewer's tier access) — reused by the feed.
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Jsonb, Nullable, Text, Timestamptz};
use oasis_catalog::media::MediaKind;
use oasis_catalog::*;
use oasis_kernel::{Currency, Page, PageRequest, RepoError, Timestamp};
use std::collections::{HashMap, HashSet};

use crate::repo_error;

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

#[derive(QueryableByName)]
struct TierRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    creator_id: i64,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    description: String,
    #[diesel(sql_type = BigInt)]
    price: i64,
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = Jsonb)]
    benefits: serde_json::Value,
    #[diesel(sql_type = Bool)]
    is_active: bool,
    #[diesel(sql_type = Timestamptz)]
    created_at: Timestamp,
    #[diesel(sql_type = Timestamptz)]
    updated_at: Timestamp,
}

impl From<TierRow> for Tier {
    fn from(r: TierRow) -> Self {
        Tier {
            id: r.id,
            creator_id: r.creator_id,
            name: r.name,
            description: r.description,
            price: r.price,
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

const TIER_COLS: &str =
    "id, creator_id, name, description, price, currency, benefits, is_active, created_at, updated_at";

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(QueryableByName)]
struct PairRow {
    #[diesel(sql_type = BigInt)]
    a: i64,
    #[diesel(sql_type = BigInt)]
    b: i64,
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

#[derive(QueryableByName)]
struct LikeRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    post_id: i64,
    #[diesel(sql_type = BigInt)]
    user_id: i64,
    #[diesel(sql_type = Timestamptz)]
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

#[derive(QueryableByName)]
struct CommentRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    post_id: i64,
    #[diesel(sql_type = BigInt)]
    user_id: i64,
    #[diesel(sql_type = Text)]
    username: String,
    #[diesel(sql_type = Text)]
    text: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: Timestamp,
    #[diesel(sql_type = Timestamptz)]
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

const COMMENT_SELECT: &str =
    "SELECT c.id, c.post_id, c.user_id, u.username, c.text, c.created_at, c.updated_at
     FROM comments c JOIN users u ON u.id = c.user_id";

#[derive(QueryableByName)]
struct MediaRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    owner_id: i64,
    #[diesel(sql_type = Text)]
    sha256: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    content_type: String,
    #[diesel(sql_type = BigInt)]
    size: i64,
    #[diesel(sql_type = Text)]
    filename: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: Timestamp,
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

const MEDIA_COLS: &str = "id, owner_id, sha256, kind, content_type, size, filename, created_at";

type BoxedQuery<'a> =
    diesel::query_builder::BoxedSqlQuery<'a, diesel::pg::Pg, diesel::query_builder::SqlQuery>;

/// Runs a `SELECT count(*) AS count ...`.
fn count(conn: &mut PgConnection, q: BoxedQuery<'_>) -> Result<i64, RepoError> {
    let r: CountRow = q.get_result(conn).map_err(repo_error)?;
    Ok(r.count)
}

// ---------------------------------------------------------------------------------------------
// Tiers

impl TierRepo for PgCatalog<'_> {
    fn insert_tier(&mut self, creator_id: i64, t: &NewTier) -> Result<Tier, RepoError> {
        // In a savepoint: a unique violation (second free tier) leaves the caller's transaction
        // usable, as the trait promises.
        let r: TierRow = self
            .0
            .transaction(|c| {
                diesel::sql_query(format!(
                    "INSERT INTO tiers (creator_id, name, description, price, currency, benefits, is_active)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {TIER_COLS}"
                ))
                .bind::<BigInt, _>(creator_id)
                .bind::<Text, _>(&t.name)
                .bind::<Text, _>(&t.description)
                .bind::<BigInt, _>(t.price)
                .bind::<Text, _>(t.currency.code())
                .bind::<Jsonb, _>(serde_json::json!(t.benefits))
                .bind::<Bool, _>(t.is_active)
                .get_result(c)
            })
            .map_err(repo_error)?;
        Ok(r.into())
    }

    fn find_tier(&mut self, id: i64) -> Result<Option<Tier>, RepoError> {
        let r: Option<TierRow> =
            diesel::sql_query(format!("SELECT {TIER_COLS} FROM tiers WHERE id = $1"))
                .bind::<BigInt, _>(id)
                .get_result(self.0)
                .optional()
                .map_err(repo_error)?;
        Ok(r.map(Into::into))
    }

    fn update_tier(&mut self, id: i64, c: &TierChanges) -> Result<Tier, RepoError> {
        // In a savepoint, like insert_tier (reactivating a second free tier is a conflict).
        let r: TierRow = self
            .0
            .transaction(|conn| {
                diesel::sql_query(format!(
                    "UPDATE tiers SET
                        name = COALESCE($2, name),
                        description = COALESCE($3, description),
                        price = COALESCE($4, price),
                        currency = COALESCE($5, currency),
                        benefits = COALESCE($6, benefits),
                        is_active = COALESCE($7, is_active),
                        updated_at = now()
                     WHERE id = $1 RETURNING {TIER_COLS}"
                ))
                .bind::<BigInt, _>(id)
                .bind::<Nullable<Text>, _>(c.name.as_deref())
                .bind::<Nullable<Text>, _>(c.description.as_deref())
                .bind::<Nullable<BigInt>, _>(c.price)
                .bind::<Nullable<Text>, _>(c.currency.map(|c| c.code()))
                .bind::<Nullable<Jsonb>, _>(c.benefits.as_ref().map(|b| serde_json::json!(b)))
                .bind::<Nullable<Bool>, _>(c.is_active)
                .get_result(conn)
            })
            .map_err(repo_error)?;
        Ok(r.into())
    }

    fn delete_tier(&mut self, id: i64) -> Result<(), RepoError> {
        delete_row(self.0, "tiers", id)
    }

    fn tier_creators(&mut self, ids: &[i64]) -> Result<HashMap<i64, i64>, RepoError> {
        let rows: Vec<PairRow> =
            diesel::sql_query("SELECT id AS a, creator_id AS b FROM tiers WHERE id = ANY($1)")
                .bind::<Array<BigInt>, _>(ids)
                .load(self.0)
                .map_err(repo_error)?;
        Ok(rows.into_iter().map(|r| (r.a, r.b)).collect())
    }

    fn posts_gated_by(&mut self, tier_id: i64) -> Result<i64, RepoError> {
        count(
            self.0,
            diesel::sql_query("SELECT count(*) AS count FROM post_tiers WHERE tier_id = $1")
                .into_boxed()
                .bind::<BigInt, _>(tier_id),
        )
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
    let filter = if only_active {
        "creator_id = $1 AND is_active"
    } else {
        "creator_id = $1"
    };
    let total = count(
        conn,
        diesel::sql_query(format!(
            "SELECT count(*) AS count FROM tiers WHERE {filter}"
        ))
        .into_boxed()
        .bind::<BigInt, _>(creator_id),
    )?;
    let rows: Vec<TierRow> = diesel::sql_query(format!(
        "SELECT {TIER_COLS} FROM tiers WHERE {filter} ORDER BY price, id LIMIT $2 OFFSET $3"
    ))
    .bind::<BigInt, _>(creator_id)
    .bind::<BigInt, _>(page.limit())
    .bind::<BigInt, _>(page.offset())
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

// ---------------------------------------------------------------------------------------------
// Posts

impl PostRepo for PgCatalog<'_> {
    fn insert_post(&mut self, creator_id: i64, title: &str, body: &str) -> Result<i64, RepoError> {
        let r: IdRow = diesel::sql_query(
            "INSERT INTO posts (creator_id, title, body) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind::<BigInt, _>(creator_id)
        .bind::<Text, _>(title)
        .bind::<Text, _>(body)
        .get_result(self.0)
        .map_err(repo_error)?;
        Ok(r.id)
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
        diesel::sql_query(
            "UPDATE posts SET title = COALESCE($2, title), body = COALESCE($3, body),
                 updated_at = now() WHERE id = $1",
        )
        .bind::<BigInt, _>(id)
        .bind::<Nullable<Text>, _>(title)
        .bind::<Nullable<Text>, _>(body)
        .execute(self.0)
        .map_err(repo_error)?;
        Ok(())
    }

    fn set_post_tiers(&mut self, id: i64, tier_ids: &[i64]) -> Result<(), RepoError> {
        diesel::sql_query("DELETE FROM post_tiers WHERE post_id = $1 AND NOT (tier_id = ANY($2))")
            .bind::<BigInt, _>(id)
            .bind::<Array<BigInt>, _>(tier_ids)
            .execute(self.0)
            .map_err(repo_error)?;
        diesel::sql_query(
            "INSERT INTO post_tiers (post_id, tier_id) SELECT $1, unnest($2::bigint[])
             ON CONFLICT DO NOTHING",
        )
        .bind::<BigInt, _>(id)
        .bind::<Array<BigInt>, _>(tier_ids)
        .execute(self.0)
        .map_err(repo_error)?;
        Ok(())
    }

    fn remove_post_tiers(&mut self, id: i64, tier_ids: &[i64]) -> Result<(), RepoError> {
        diesel::sql_query("DELETE FROM post_tiers WHERE post_id = $1 AND tier_id = ANY($2)")
            .bind::<BigInt, _>(id)
            .bind::<Array<BigInt>, _>(tier_ids)
            .execute(self.0)
            .map_err(repo_error)?;
        Ok(())
    }

    fn set_post_attachments(&mut self, id: i64, media_ids: &[i64]) -> Result<(), RepoError> {
        diesel::sql_query("DELETE FROM post_attachments WHERE post_id = $1")
            .bind::<BigInt, _>(id)
            .execute(self.0)
            .map_err(repo_error)?;
        diesel::sql_query(
            "INSERT INTO post_attachments (post_id, media_id, position)
             SELECT $1, m, (o - 1)::int FROM unnest($2::bigint[]) WITH ORDINALITY AS t(m, o)",
        )
        .bind::<BigInt, _>(id)
        .bind::<Array<BigInt>, _>(media_ids)
        .execute(self.0)
        .map_err(repo_error)?;
        Ok(())
    }

    fn delete_post(&mut self, id: i64) -> Result<(), RepoError> {
        delete_row(self.0, "posts", id)
    }

    fn media_owners(&mut self, ids: &[i64]) -> Result<HashMap<i64, i64>, RepoError> {
        let rows: Vec<PairRow> =
            diesel::sql_query("SELECT id AS a, owner_id AS b FROM media WHERE id = ANY($1)")
                .bind::<Array<BigInt>, _>(ids)
                .load(self.0)
                .map_err(repo_error)?;
        Ok(rows.into_iter().map(|r| (r.a, r.b)).collect())
    }
}

/// A post's creator and tiers.
pub fn find_post_gate(conn: &mut PgConnection, id: i64) -> Result<Option<PostGate>, RepoError> {
    let r: Option<GateRow> = diesel::sql_query(format!(
        "SELECT p.id, p.creator_id, {TIER_IDS_OF_P} FROM posts p WHERE p.id = $1"
    ))
    .bind::<BigInt, _>(id)
    .get_result(conn)
    .optional()
    .map_err(repo_error)?;
    Ok(r.map(Into::into))
}

/// Ids of a page of posts, newest first: one creator's, or everyone's.
pub fn list_post_ids(
    conn: &mut PgConnection,
    creator_id: Option<i64>,
    page: PageRequest,
) -> Result<Page<i64>, RepoError> {
    let (total, rows): (i64, Vec<IdRow>) = match creator_id {
        Some(c) => (
            count(
                conn,
                diesel::sql_query("SELECT count(*) AS count FROM posts WHERE creator_id = $1")
                    .into_boxed()
                    .bind::<BigInt, _>(c),
            )?,
            diesel::sql_query(
                "SELECT id FROM posts WHERE creator_id = $1
                 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
            )
            .bind::<BigInt, _>(c)
            .bind::<BigInt, _>(page.limit())
            .bind::<BigInt, _>(page.offset())
            .load(conn)
            .map_err(repo_error)?,
        ),
        None => (
            count(
                conn,
                diesel::sql_query("SELECT count(*) AS count FROM posts").into_boxed(),
            )?,
            diesel::sql_query(
                "SELECT id FROM posts ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2",
            )
            .bind::<BigInt, _>(page.limit())
            .bind::<BigInt, _>(page.offset())
            .load(conn)
            .map_err(repo_error)?,
        ),
    };
    Ok(Page {
        count: total,
        results: rows.into_iter().map(|r| r.id).collect(),
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
    if post_ids.is_empty() {
        return Ok(Vec::new());
    }
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
    .load(conn)
    .map_err(repo_error)?;
    let atts: Vec<AttachmentRow> = diesel::sql_query(
        "SELECT pa.post_id, m.id AS media_id, m.kind, m.content_type, m.size, m.filename, pa.position
         FROM post_attachments pa JOIN media m ON m.id = pa.media_id
         WHERE pa.post_id = ANY($1) ORDER BY pa.post_id, pa.position",
    )
    .bind::<Array<BigInt>, _>(post_ids)
    .load(conn)
    .map_err(repo_error)?;
    let access = match viewer {
        Some(v) => {
            let mut gated: Vec<i64> = rows
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
        out.push(PostView::for_viewer(record, viewer, &access));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Likes and comments

impl EngagementRepo for PgCatalog<'_> {
    fn like(&mut self, post_id: i64, user_id: i64) -> Result<(Like, bool), RepoError> {
        let created: Option<LikeRow> = diesel::sql_query(
            "INSERT INTO likes (post_id, user_id) VALUES ($1, $2)
             ON CONFLICT (post_id, user_id) DO NOTHING
             RETURNING id, post_id, user_id, created_at",
        )
        .bind::<BigInt, _>(post_id)
        .bind::<BigInt, _>(user_id)
        .get_result(self.0)
        .optional()
        .map_err(repo_error)?;
        if let Some(r) = created {
            return Ok((r.into(), true));
        }
        let existing: LikeRow = diesel::sql_query(
            "SELECT id, post_id, user_id, created_at FROM likes WHERE post_id = $1 AND user_id = $2",
        )
        .bind::<BigInt, _>(post_id)
        .bind::<BigInt, _>(user_id)
        .get_result(self.0)
        .map_err(repo_error)?;
        Ok((existing.into(), false))
    }

    fn find_like(&mut self, id: i64) -> Result<Option<Like>, RepoError> {
        let r: Option<LikeRow> =
            diesel::sql_query("SELECT id, post_id, user_id, created_at FROM likes WHERE id = $1")
                .bind::<BigInt, _>(id)
                .get_result(self.0)
                .optional()
                .map_err(repo_error)?;
        Ok(r.map(Into::into))
    }

    fn delete_like(&mut self, id: i64) -> Result<(), RepoError> {
        delete_row(self.0, "likes", id)
    }

    fn insert_comment(
        &mut self,
        post_id: i64,
        user_id: i64,
        text: &str,
    ) -> Result<Comment, RepoError> {
        let r: IdRow = diesel::sql_query(
            "INSERT INTO comments (post_id, user_id, text) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind::<BigInt, _>(post_id)
        .bind::<BigInt, _>(user_id)
        .bind::<Text, _>(text)
        .get_result(self.0)
        .map_err(repo_error)?;
        self.find_comment(r.id)?.ok_or(RepoError::NotFound)
    }

    fn find_comment(&mut self, id: i64) -> Result<Option<Comment>, RepoError> {
        let r: Option<CommentRow> = diesel::sql_query(format!("{COMMENT_SELECT} WHERE c.id = $1"))
            .bind::<BigInt, _>(id)
            .get_result(self.0)
            .optional()
            .map_err(repo_error)?;
        Ok(r.map(Into::into))
    }

    fn update_comment(&mut self, id: i64, text: &str) -> Result<Comment, RepoError> {
        diesel::sql_query("UPDATE comments SET text = $2, updated_at = now() WHERE id = $1")
            .bind::<BigInt, _>(id)
            .bind::<Text, _>(text)
            .execute(self.0)
            .map_err(repo_error)?;
        self.find_comment(id)?.ok_or(RepoError::NotFound)
    }

    fn delete_comment(&mut self, id: i64) -> Result<(), RepoError> {
        delete_row(self.0, "comments", id)
    }
}

/// Deletes one row by id; `NotFound` when it was already gone, so of two concurrent deletes
/// exactly one succeeds (the other answers 404).
fn delete_row(conn: &mut PgConnection, table: &'static str, id: i64) -> Result<(), RepoError> {
    let n = diesel::sql_query(format!("DELETE FROM {table} WHERE id = $1"))
        .bind::<BigInt, _>(id)
        .execute(conn)
        .map_err(repo_error)?;
    if n == 0 {
        return Err(RepoError::NotFound);
    }
    Ok(())
}

/// A page of a post's likes, oldest first.
pub fn list_likes(
    conn: &mut PgConnection,
    post_id: i64,
    page: PageRequest,
) -> Result<Page<Like>, RepoError> {
    let total = count(
        conn,
        diesel::sql_query("SELECT count(*) AS count FROM likes WHERE post_id = $1")
            .into_boxed()
            .bind::<BigInt, _>(post_id),
    )?;
    let rows: Vec<LikeRow> = diesel::sql_query(
        "SELECT id, post_id, user_id, created_at FROM likes WHERE post_id = $1
         ORDER BY id LIMIT $2 OFFSET $3",
    )
    .bind::<BigInt, _>(post_id)
    .bind::<BigInt, _>(page.limit())
    .bind::<BigInt, _>(page.offset())
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
    let total = count(
        conn,
        diesel::sql_query("SELECT count(*) AS count FROM comments WHERE post_id = $1")
            .into_boxed()
            .bind::<BigInt, _>(post_id),
    )?;
    let rows: Vec<CommentRow> = diesel::sql_query(format!(
        "{COMMENT_SELECT} WHERE c.post_id = $1 ORDER BY c.created_at, c.id LIMIT $2 OFFSET $3"
    ))
    .bind::<BigInt, _>(post_id)
    .bind::<BigInt, _>(page.limit())
    .bind::<BigInt, _>(page.offset())
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
    let r: MediaRow = diesel::sql_query(format!(
        "INSERT INTO media (owner_id, sha256, kind, content_type, size, filename)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {MEDIA_COLS}"
    ))
    .bind::<BigInt, _>(owner_id)
    .bind::<Text, _>(sha256)
    .bind::<Text, _>(kind.as_str())
    .bind::<Text, _>(content_type)
    .bind::<BigInt, _>(size)
    .bind::<Text, _>(filename)
    .get_result(conn)
    .map_err(repo_error)?;
    Ok(r.into())
}

pub fn find_media(conn: &mut PgConnection, id: i64) -> Result<Option<Media>, RepoError> {
    let r: Option<MediaRow> =
        diesel::sql_query(format!("SELECT {MEDIA_COLS} FROM media WHERE id = $1"))
            .bind::<BigInt, _>(id)
            .get_result(conn)
            .optional()
            .map_err(repo_error)?;
    Ok(r.map(Into::into))
}

/// The posts a media row is attached to.
pub fn media_post_gates(
    conn: &mut PgConnection,
    media_id: i64,
) -> Result<Vec<PostGate>, RepoError> {
    let rows: Vec<GateRow> = diesel::sql_query(format!(
        "SELECT p.id, p.creator_id, {TIER_IDS_OF_P}
         FROM post_attachments pa JOIN posts p ON p.id = pa.post_id WHERE pa.media_id = $1"
    ))
    .bind::<BigInt, _>(media_id)
    .load(conn)
    .map_err(repo_error)?;
    Ok(rows.into_iter().map(Into::into).collect())
}
