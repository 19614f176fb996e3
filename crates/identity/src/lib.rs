#![doc = include_str!("../README.md")]

pub mod contract;
pub mod error;
pub mod jwt;
pub mod model;
pub mod password;
pub mod repo;
pub mod reset;
pub mod secrets;
pub mod service;
pub mod validate;

#[cfg(test)]
mod fake;

pub use error::IdentityError;
pub use model::{LoginType, NewUser, SocialProfile, User};
pub use repo::{IdentityRepo, PendingChange, RefreshRecord, Reservation};

/// Email-confirmation keys live this long.
pub const CONFIRMATION_TTL: chrono::Duration = chrono::Duration::days(3);
/// Password-reset tokens live this long.
pub const RESET_TTL: chrono::Duration = chrono::Duration::hours(24);
/// Links confirming a pending change (email or bank account of an account without a usable
/// password) live this long.
pub const CHANGE_TTL: chrono::Duration = chrono::Duration::hours(24);
