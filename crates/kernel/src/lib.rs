#![doc = include_str!("../README.md")]

mod errors;
mod money;
mod page;

pub use errors::{FieldErrors, RepoError};
pub use money::{Currency, Money, ParseCurrencyError};
pub use page::{Page, PageRequest, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

/// Timestamps are UTC everywhere.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
