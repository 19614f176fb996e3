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
    CommentFacts, CommissionFacts, CommissionStep, Event, Inbox, Kind, LikeFacts, MembershipFacts,
    NewNotification, Notification, ObjRef, PaymentFacts, PostFacts, RefundFacts, SubscriptionFacts,
};
pub use ports::{Audience, InboxRepo, NotifyRepo};
pub use rules::{
    as_seen_now, delete, fan_out, inbox, mark_all_read, mark_read, notifications_for, unread_count,
    DEFAULT_MAX, MAX_MAX, PREVIEW_CHARS,
};

/// The job kind that carries [`Event`]s from the outbox to [`fan_out`].
pub const JOB_FANOUT: &str = "notify.fanout";
