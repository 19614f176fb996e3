//! DRF page-number pagination: `?page=N&page_size=M` → `{"count","next","previous","results"}`
//! with absolute links to the neighbour pages.
use crate::error::ApiError;
use actix_web::http::StatusCode;
use actix_web::HttpRequest;
use oasis_kernel::{Page, PageRequest};
use serde::Serialize;

/// The largest page size (`OASIS_MAX_PAGE_SIZE`) of the app serving `req`.
pub fn max_page_size(req: &HttpRequest) -> i64 {
    req.app_data::<actix_web::web::Data<crate::context::AppContext>>()
        .map(|c| c.settings.max_page_size)
        .unwrap_or(oasis_kernel::MAX_PAGE_SIZE)
}

/// `?page=N&page_size=M` checked against the configured largest page size.
pub fn page_request(
    req: &HttpRequest,
    page: Option<i64>,
    page_size: Option<i64>,
) -> Result<PageRequest, ApiError> {
    Ok(PageRequest::new(page, page_size, max_page_size(req))?)
}

/// DRF's paginated list.
#[derive(Debug, Serialize)]
pub struct Paginated<T> {
    pub count: i64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<T>,
}

/// The request's absolute URL (on the public origin, see [`crate::links`]) with the query
/// parameters named in `replace` removed and `set` appended (other filters are kept).
pub fn page_link(req: &HttpRequest, replace: &[&str], set: &[(&str, String)]) -> String {
    let base = format!("{}{}", crate::links::base_url(req), req.path());
    let mut q: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .filter(|(k, _)| !replace.contains(&k.as_str()))
        .collect();
    q.extend(set.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    if q.is_empty() {
        return base;
    }
    let qs = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(q)
        .finish();
    format!("{base}?{qs}")
}

/// Wraps a page; a page past the end is DRF's 404 `{"detail": "Invalid page."}`.
pub fn paginated<T>(
    req: &HttpRequest,
    page: PageRequest,
    p: Page<T>,
) -> Result<Paginated<T>, ApiError> {
    if page.page > 1 && page.offset() >= p.count {
        return Err(ApiError::detail(
            StatusCode::NOT_FOUND,
            "not_found",
            "Invalid page.",
        ));
    }
    let link = |n: i64| {
        let set = if n > 1 {
            vec![("page", n.to_string())]
        } else {
            Vec::new()
        };
        page_link(req, &["page"], &set)
    };
    Ok(Paginated {
        count: p.count,
        next: p.has_next(&page).then(|| link(page.page + 1)),
        previous: (page.page > 1).then(|| link(page.page - 1)),
        results: p.results,
    })
}
