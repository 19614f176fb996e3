//! Where a feed request starts: a pinned page number or a keyset cursor.
use crate::SocialError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use oasis_kernel::{PageRequest, Timestamp};

/// A keyset position: the `(created_at, id)` of the last item a client has seen. The next page
/// holds posts strictly older in `(created_at DESC, id DESC)` order, so posts published meanwhile
/// never shift it, and deleted ones leave no gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FeedCursor {
    pub created_at: Timestamp,
    pub id: i64,
}

const CURSOR_VERSION: &str = "v1";

impl FeedCursor {
    /// Opaque text for `?cursor=`: base64url of `v1:<created_at µs>:<id>`.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{CURSOR_VERSION}:{}:{}",
            self.created_at.timestamp_micros(),
            self.id
        ))
    }

    /// Parses what [`encode`](Self::encode) produced; anything else is `None`.
    pub fn decode(s: &str) -> Option<Self> {
        if s.len() > 128 {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()?;
        let text = String::from_utf8(raw).ok()?;
        let mut parts = text.split(':');
        if parts.next()? != CURSOR_VERSION {
            return None;
        }
        let micros: i64 = parts.next()?.parse().ok()?;
        let id: i64 = parts.next()?.parse().ok()?;
        if parts.next().is_some() || id < 1 {
            return None;
        }
        let created_at = chrono::DateTime::from_timestamp_micros(micros)?;
        Some(Self { created_at, id })
    }
}

/// A validated feed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedPosition {
    /// DRF page numbers, pinned to posts with `id <= max_id` once page 1 has fixed it
    /// (`None` = page 1 of a fresh snapshot: the adapter pins the newest post id).
    Page {
        page: PageRequest,
        max_id: Option<i64>,
    },
    /// Keyset pagination after `cursor`.
    After { cursor: FeedCursor, page_size: i64 },
}

impl FeedPosition {
    /// Validates raw query values (`max_page_size`: the largest page allowed). `cursor` wins
    /// over `page` when both are sent.
    pub fn parse(
        page: Option<i64>,
        page_size: Option<i64>,
        max_id: Option<i64>,
        cursor: Option<&str>,
        max_page_size: i64,
    ) -> Result<Self, SocialError> {
        let req = PageRequest::new(page, page_size, max_page_size).map_err(|e| {
            let (field, msg) = e
                .iter()
                .next()
                .map(|(k, v)| (k.clone(), v.join(" ")))
                .unwrap_or_default();
            SocialError::invalid(if field == "page" { "page" } else { "page_size" }, msg)
        })?;
        if let Some(c) = cursor.filter(|c| !c.is_empty()) {
            let cursor = FeedCursor::decode(c)
                .ok_or_else(|| SocialError::invalid("cursor", "Invalid cursor"))?;
            return Ok(FeedPosition::After {
                cursor,
                page_size: req.page_size,
            });
        }
        if let Some(m) = max_id {
            if m < 0 {
                return Err(SocialError::invalid("max_id", "Invalid snapshot id."));
            }
        }
        Ok(FeedPosition::Page { page: req, max_id })
    }

    pub fn page_size(&self) -> i64 {
        match self {
            FeedPosition::Page { page, .. } => page.page_size,
            FeedPosition::After { page_size, .. } => *page_size,
        }
    }
}

/// One page of feed post ids, newest first (the posts are rendered elsewhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedPage {
    /// Posts in the feed (within the pinned snapshot in page mode).
    pub count: i64,
    /// The snapshot's newest post id (page mode; carry it in `next`/`previous`).
    pub max_id: i64,
    pub post_ids: Vec<i64>,
    /// Whether more posts follow this page.
    pub has_more: bool,
    /// Keyset position of this page's last post (for `?cursor=`), when more follow.
    pub next_cursor: Option<FeedCursor>,
}

/// What the feed needs of one creator: how many posts they have, their highest post id, and
/// the `(created_at, id)` of their newest posts (newest first; all of them, or only the newest
/// ones when [`Timeline::complete`] is false).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    pub total: i64,
    /// 0 when they have no posts.
    pub max_id: i64,
    pub newest: Vec<FeedCursor>,
}

impl Timeline {
    /// Whether `newest` holds every post.
    pub fn complete(&self) -> bool {
        self.newest.len() as i64 >= self.total
    }
}

fn newest_first(a: &FeedCursor, b: &FeedCursor) -> std::cmp::Ordering {
    (b.created_at, b.id).cmp(&(a.created_at, a.id))
}

/// The feed page at `pos` drawn from the timelines of its source creators (each once), exactly
/// as the database would answer it: the newest posts of the sources, newest first, with ties
/// broken by the higher id. A fresh page pins the highest post id of its sources (every post
/// they had when it was read); a pinned page holds the posts with `id <= max_id` and counts
/// them; a cursor page the posts strictly older than the cursor, counting every post.
///
/// `None` when a timeline holds too few of its newest posts to answer (a deep page, or a pin
/// below posts of a partly held timeline): ask the database.
pub fn page_from_timelines(sources: &[&Timeline], pos: &FeedPosition) -> Option<FeedPage> {
    let mut count = 0_i64;
    let mut items: Vec<FeedCursor> = Vec::new();
    match *pos {
        FeedPosition::Page { page, max_id } => {
            let (limit, offset) = (page.limit(), page.offset());
            let need = limit.saturating_add(offset);
            let pin = max_id.unwrap_or_else(|| sources.iter().map(|t| t.max_id).max().unwrap_or(0));
            for t in sources {
                count += t.total;
                if pin >= t.max_id {
                    if (t.newest.len() as i64) < need.min(t.total) {
                        return None;
                    }
                    items.extend(t.newest.iter().take(need as usize));
                } else {
                    if !t.complete() {
                        return None;
                    }
                    let within: Vec<&FeedCursor> =
                        t.newest.iter().filter(|c| c.id <= pin).collect();
                    count -= (t.newest.len() - within.len()) as i64;
                    items.extend(within.into_iter().take(need as usize));
                }
            }
            items.sort_by(newest_first);
            let page_items: Vec<FeedCursor> = items
                .into_iter()
                .skip(offset as usize)
                .take(limit as usize)
                .collect();
            let has_more = offset + (page_items.len() as i64) < count;
            Some(finish(count, pin, page_items, has_more))
        }
        FeedPosition::After { cursor, page_size } => {
            let need = page_size.saturating_add(1);
            let before = |c: &&FeedCursor| (c.created_at, c.id) < (cursor.created_at, cursor.id);
            for t in sources {
                count += t.total;
                let older: Vec<&FeedCursor> = t.newest.iter().filter(before).collect();
                if !t.complete() && (older.len() as i64) < need {
                    return None;
                }
                items.extend(older.into_iter().take(need as usize));
            }
            items.sort_by(newest_first);
            let has_more = items.len() as i64 > page_size;
            items.truncate(page_size as usize);
            Some(finish(count, 0, items, has_more))
        }
    }
}

fn finish(count: i64, max_id: i64, items: Vec<FeedCursor>, has_more: bool) -> FeedPage {
    FeedPage {
        count,
        max_id,
        next_cursor: if has_more {
            items.last().copied()
        } else {
            None
        },
        post_ids: items.into_iter().map(|c| c.id).collect(),
        has_more,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = FeedCursor {
            created_at: chrono::Utc
                .timestamp_micros(1_764_000_000_123_456)
                .single()
                .unwrap(),
            id: 42,
        };
        let s = c.encode();
        assert!(!s.contains('='));
        assert_eq!(FeedCursor::decode(&s), Some(c));
        for bad in ["", "xyz", "djE6eDox", "!!!", &"a".repeat(500)] {
            assert_eq!(FeedCursor::decode(bad), None, "{bad}");
        }
        // Wrong version.
        assert_eq!(FeedCursor::decode(&URL_SAFE_NO_PAD.encode("v2:1:1")), None);
        assert_eq!(FeedCursor::decode(&URL_SAFE_NO_PAD.encode("v1:1:0")), None);
    }

    #[test]
    fn position_parses_pages_and_cursors() {
        assert_eq!(
            FeedPosition::parse(None, None, None, None, oasis_kernel::MAX_PAGE_SIZE).unwrap(),
            FeedPosition::Page {
                page: PageRequest::default(),
                max_id: None
            }
        );
        assert!(matches!(
            FeedPosition::parse(Some(0), None, None, None, oasis_kernel::MAX_PAGE_SIZE),
            Err(SocialError::Invalid { field: "page", .. })
        ));
        assert!(matches!(
            FeedPosition::parse(None, Some(101), None, None, oasis_kernel::MAX_PAGE_SIZE),
            Err(SocialError::Invalid {
                field: "page_size",
                ..
            })
        ));
        assert!(matches!(
            FeedPosition::parse(None, None, None, Some("nope"), oasis_kernel::MAX_PAGE_SIZE),
            Err(SocialError::Invalid {
                field: "cursor",
                ..
            })
        ));
        let c = FeedCursor {
            created_at: chrono::Utc::now(),
            id: 7,
        };
        let p = FeedPosition::parse(
            Some(3),
            Some(5),
            Some(9),
            Some(&c.encode()),
            oasis_kernel::MAX_PAGE_SIZE,
        )
        .unwrap();
        assert!(matches!(p, FeedPosition::After { page_size: 5, .. }));
    }

    /// The database's answer over every post of the sources (the specification).
    fn reference(all: &[Vec<FeedCursor>], pos: &FeedPosition) -> FeedPage {
        let mut posts: Vec<FeedCursor> = all.iter().flatten().copied().collect();
        posts.sort_by(newest_first);
        match *pos {
            FeedPosition::Page { page, max_id } => {
                let pin = max_id.unwrap_or_else(|| posts.iter().map(|c| c.id).max().unwrap_or(0));
                posts.retain(|c| c.id <= pin);
                let count = posts.len() as i64;
                let items: Vec<FeedCursor> = posts
                    .into_iter()
                    .skip(page.offset() as usize)
                    .take(page.limit() as usize)
                    .collect();
                let more = page.offset() + (items.len() as i64) < count;
                finish(count, pin, items, more)
            }
            FeedPosition::After { cursor, page_size } => {
                let count = posts.len() as i64;
                posts.retain(|c| (c.created_at, c.id) < (cursor.created_at, cursor.id));
                let more = posts.len() as i64 > page_size;
                posts.truncate(page_size as usize);
                finish(count, 0, posts, more)
            }
        }
    }

    #[test]
    fn pages_from_timelines_are_the_databases_pages_or_none() {
        // A small deterministic generator (an LCG): creators with posts whose times collide
        // (ties broken by id), timelines cut at random depths, pages, pins and cursors.
        let mut seed = 0x2545_F491_4F6C_DD1D_u64;
        let mut next = move |n: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) % n
        };
        let t0 = chrono::Utc.timestamp_opt(1_764_000_000, 0).unwrap();
        let (mut answered, mut declined) = (0, 0);
        for _ in 0..400 {
            let creators = 1 + next(5) as usize;
            let mut id = 0_i64;
            let mut all: Vec<Vec<FeedCursor>> = vec![Vec::new(); creators];
            for _ in 0..next(60) {
                id += 1;
                let c = FeedCursor {
                    created_at: t0 + chrono::Duration::seconds(next(40) as i64),
                    id,
                };
                all[next(creators as u64) as usize].push(c);
            }
            let complete: Vec<Timeline> = all
                .iter()
                .map(|posts| {
                    let mut newest = posts.clone();
                    newest.sort_by(newest_first);
                    Timeline {
                        total: posts.len() as i64,
                        max_id: posts.iter().map(|c| c.id).max().unwrap_or(0),
                        newest,
                    }
                })
                .collect();
            // The same, each cut at a random depth (a third of them left whole).
            let timelines: Vec<Timeline> = complete
                .iter()
                .map(|t| {
                    let full = t.newest.len();
                    let keep = if next(3) == 0 {
                        full
                    } else {
                        next(full as u64 + 1) as usize
                    };
                    Timeline {
                        newest: t.newest[..keep].to_vec(),
                        ..t.clone()
                    }
                })
                .collect();
            let page_size = 1 + next(6) as i64;
            let pos = match next(3) {
                0 => FeedPosition::Page {
                    page: PageRequest {
                        page: 1 + next(4) as i64,
                        page_size,
                    },
                    max_id: None,
                },
                1 => FeedPosition::Page {
                    page: PageRequest {
                        page: 1 + next(4) as i64,
                        page_size,
                    },
                    max_id: Some(next(id as u64 + 2) as i64),
                },
                _ => FeedPosition::After {
                    cursor: FeedCursor {
                        created_at: t0 + chrono::Duration::seconds(next(42) as i64),
                        id: 1 + next(id as u64 + 2) as i64,
                    },
                    page_size,
                },
            };
            let want = reference(&all, &pos);
            let full: Vec<&Timeline> = complete.iter().collect();
            assert_eq!(
                page_from_timelines(&full, &pos),
                Some(want.clone()),
                "{pos:?}"
            );
            let cut: Vec<&Timeline> = timelines.iter().collect();
            match page_from_timelines(&cut, &pos) {
                Some(got) => {
                    assert_eq!(got, want, "{pos:?} {timelines:?}");
                    answered += 1;
                }
                None => declined += 1,
            }
        }
        // Both paths were exercised.
        assert!(
            answered > 50 && declined > 20,
            "{answered} answered, {declined} declined"
        );
    }
}
