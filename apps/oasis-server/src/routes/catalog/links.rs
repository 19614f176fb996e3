//! Signed download URLs of media (HMAC-SHA256 of media id, viewer and expiry with a key derived
//! from `OASIS_SECRET_KEY`), issued by the DTOs and checked by the download handler.
use crate::config::Settings;
use actix_web::HttpRequest;
use secrecy::ExposeSecret;

/// Signed URLs issued to a link's viewer live 60–70 minutes (rounded so that pages rendered
/// within the same 10 minutes share URLs and browser caches).
const LINK_TTL_SECS: i64 = 3_600;
const LINK_ROUND_SECS: i64 = 600;

pub(super) fn link_key(settings: &Settings) -> ring::hmac::Key {
    let root = settings.secret().expose_secret().as_bytes().to_vec();
    let derive = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &root);
    let sub = ring::hmac::sign(&derive, b"oasis/catalog/media-links/v1");
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, sub.as_ref())
}

pub(super) fn message(media_id: i64, viewer: i64, exp: i64) -> String {
    format!("media:{media_id}:{viewer}:{exp}")
}

/// Signs attachment download URLs for one viewer.
#[derive(Clone)]
pub struct MediaLinks {
    base: String,
    key: ring::hmac::Key,
    viewer: i64,
    exp: i64,
}

impl MediaLinks {
    /// Links on the public origin (see [`crate::links`]), for `viewer` (None = anonymous).
    pub fn new(req: &HttpRequest, settings: &Settings, viewer: Option<i64>) -> Self {
        let now = chrono::Utc::now().timestamp();
        Self {
            base: crate::links::base_url_with(req, settings),
            key: link_key(settings),
            viewer: viewer.unwrap_or(0),
            exp: (now + LINK_TTL_SECS) / LINK_ROUND_SECS * LINK_ROUND_SECS + LINK_ROUND_SECS,
        }
    }

    /// The unsigned download URL of a media row (access decided by the caller's credentials).
    pub fn plain_url(&self, media_id: i64) -> String {
        format!("{}/content/api/media/{media_id}/file", self.base)
    }

    /// The signed download URL of a media row.
    pub fn url(&self, media_id: i64) -> String {
        let sig = ring::hmac::sign(
            &self.key,
            message(media_id, self.viewer, self.exp).as_bytes(),
        );
        format!(
            "{}/content/api/media/{media_id}/file?v={}&exp={}&sig={}",
            self.base,
            self.viewer,
            self.exp,
            hex::encode(sig.as_ref())
        )
    }
}
