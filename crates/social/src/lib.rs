#![doc = include_str!("../README.md")]

#[doc(hidden)]
pub mod contract;
mod error;
#[doc(hidden)]
pub mod fake;
pub mod feed;
pub mod follow;
pub mod search;
pub mod stats;

pub use error::SocialError;
pub use feed::{page_from_timelines, FeedCursor, FeedPage, FeedPosition, Timeline};
pub use follow::{follow, is_following, unfollow, FollowRepo, FollowTarget};
pub use search::SearchQuery;
