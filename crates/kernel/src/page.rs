use serde::Serialize;

pub const DEFAULT_PAGE_SIZE: i64 = 10;
/// The default largest page size (the server's `OASIS_MAX_PAGE_SIZE`).
pub const MAX_PAGE_SIZE: i64 = 100;

/// A validated page-number request (`?page=N&page_size=M`, DRF style, 1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageRequest {
    pub page: i64,
    pub page_size: i64,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            page: 1,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }
}

impl PageRequest {
    /// Validates raw query values against the largest page size `max` (at least the default
    /// page size is always allowed); errors are field messages for `page` / `page_size`.
    pub fn new(
        page: Option<i64>,
        page_size: Option<i64>,
        max: i64,
    ) -> Result<Self, crate::FieldErrors> {
        let max = max.max(DEFAULT_PAGE_SIZE);
        let mut errs = crate::FieldErrors::new();
        let page = page.unwrap_or(1);
        let page_size = page_size.unwrap_or(DEFAULT_PAGE_SIZE);
        if page < 1 {
            errs.add("page", "Invalid page.");
        }
        if !(1..=max).contains(&page_size) {
            errs.add(
                "page_size",
                format!("Ensure this value is between 1 and {max}."),
            );
        }
        errs.into_result().map(|_| Self { page, page_size })
    }
    pub fn offset(&self) -> i64 {
        (self.page - 1).saturating_mul(self.page_size)
    }
    pub fn limit(&self) -> i64 {
        self.page_size
    }
}

/// One page of results plus the total count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    pub count: i64,
    pub results: Vec<T>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            count: self.count,
            results: self.results.into_iter().map(f).collect(),
        }
    }
    pub fn has_next(&self, req: &PageRequest) -> bool {
        req.offset() + (self.results.len() as i64) < self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_request_validates() {
        assert!(PageRequest::new(Some(0), None, MAX_PAGE_SIZE).is_err());
        assert!(PageRequest::new(Some(1), Some(101), MAX_PAGE_SIZE).is_err());
        assert!(PageRequest::new(Some(1), Some(100), MAX_PAGE_SIZE).is_ok());
        assert!(PageRequest::new(Some(1), Some(21), 20).is_err());
        assert!(PageRequest::new(Some(1), Some(20), 20).is_ok());
        let p = PageRequest::new(Some(3), Some(20), MAX_PAGE_SIZE).unwrap();
        assert_eq!(p.offset(), 40);
    }
}
