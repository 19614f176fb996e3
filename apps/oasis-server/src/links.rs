//! The origin of the absolute links in answers (pagination's `next`/`previous`, signed download
//! URLs, media `file` URLs): `OASIS_PUBLIC_URL`. A client's `Host`, `X-Forwarded-Host` and
//! `X-Forwarded-Proto` never choose it — otherwise anyone could make the server hand out links
//! (with signatures in them) to a host of their choosing. Only a reverse proxy listed in
//! `OASIS_TRUSTED_PROXIES` (the TCP peer) may name the scheme and host it serves the API on.
use crate::config::Settings;
use crate::context::AppContext;
use actix_web::HttpRequest;

/// `scheme://host[:port][/prefix]` without a trailing slash.
pub fn base_url(req: &HttpRequest) -> String {
    match req.app_data::<actix_web::web::Data<AppContext>>() {
        Some(ctx) => base_url_with(req, &ctx.settings),
        // Not mounted in the app (never in practice): relative links.
        None => String::new(),
    }
}

/// [`base_url`] with the settings at hand.
pub fn base_url_with(req: &HttpRequest, settings: &Settings) -> String {
    let public = settings.public_url.trim_end_matches('/');
    let trusted = req
        .peer_addr()
        .is_some_and(|peer| settings.trusted_proxies.contains(&peer.ip()));
    if !trusted {
        return public.to_owned();
    }
    let Ok(url) = url::Url::parse(public) else {
        return public.to_owned();
    };
    let scheme = forwarded(req, "x-forwarded-proto")
        .filter(|p| matches!(p.as_str(), "http" | "https"))
        .unwrap_or_else(|| url.scheme().to_owned());
    let host = forwarded(req, "x-forwarded-host")
        .filter(|h| is_host(h))
        .unwrap_or_else(|| match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => String::new(),
        });
    let prefix = url.path().trim_end_matches('/');
    format!("{scheme}://{host}{prefix}")
}

/// The first (client-facing) value of a forwarded header, lower-cased.
fn forwarded(req: &HttpRequest, name: &str) -> Option<String> {
    let v = req.headers().get(name)?.to_str().ok()?;
    let first = v.split(',').next()?.trim().to_ascii_lowercase();
    (!first.is_empty()).then_some(first)
}

/// `host`, `host:port` or `[v6]:port`: nothing that could end the authority or start a path.
fn is_host(h: &str) -> bool {
    h.len() <= 255
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn settings(trusted: &[&str]) -> Settings {
        let mut s = Settings::load_from(|k| match k {
            "OASIS_PUBLIC_URL" => Some("https://api.example.com/v1/".into()),
            _ => None,
        })
        .unwrap();
        s.trusted_proxies = trusted.iter().map(|a| a.parse().unwrap()).collect();
        s
    }

    fn req(peer: &str) -> HttpRequest {
        TestRequest::default()
            .peer_addr(peer.parse().unwrap())
            .insert_header(("Host", "evil.example"))
            .insert_header(("X-Forwarded-Host", "evil.example"))
            .insert_header(("X-Forwarded-Proto", "http"))
            .to_http_request()
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let s = settings(&["10.0.0.1"]);
        assert_eq!(
            base_url_with(&req("203.0.113.9:5000"), &s),
            "https://api.example.com/v1"
        );
        assert_eq!(
            base_url_with(&req("10.0.0.1:5000"), &s),
            "http://evil.example/v1"
        );
        let bad = TestRequest::default()
            .peer_addr("10.0.0.1:1".parse().unwrap())
            .insert_header(("X-Forwarded-Host", "a.example/@b"))
            .to_http_request();
        assert_eq!(base_url_with(&bad, &s), "https://api.example.com/v1");
    }
}
