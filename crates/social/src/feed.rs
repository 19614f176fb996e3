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
}
