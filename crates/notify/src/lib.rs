#![doc = include_str!("../README.md")]

pub mod contract;
mod error;
#[doc(hidden)]
pub mod fake;
mod model;
mod ports;
mod rules;

pub use error::NotifyError;
pub use model::{
    AccessEndingFacts, Category, Channels, CommentFacts, CommissionFacts, CommissionStep,
    Delivered, Event, Inbox, Kind, LikeFacts, MembershipFacts, NewNotification, Notification,
    ObjRef, PaymentFacts, PostFacts, Preferences, RefundFacts, SubscriptionFacts,
};
pub use ports::{Audience, InboxRepo, NotifyRepo, PreferencesRepo};
pub use rules::{
    access_ending, as_seen_now, delete, fan_out, inbox, mark_all_read, mark_read, money,
    notifications_for, preferences, since, unread_count, update_preferences, DEFAULT_MAX, MAX_MAX,
    PREVIEW_CHARS,
};

/// The job kind that carries [`Event`]s from the outbox to [`fan_out`].
pub const JOB_FANOUT: &str = "notify.fanout";
