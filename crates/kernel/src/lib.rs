#![doc = include_str!("../README.md")]

mod clock;
mod errors;
mod money;
mod page;

pub use clock::{Clock, FixedClock, SystemClock};
pub use errors::{FieldErrors, RepoError};
pub use money::{Currency, Money, ParseCurrencyError};
pub use page::{Page, PageRequest, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

/// Timestamps are UTC everywhere.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
