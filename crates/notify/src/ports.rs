//! Repository traits (implemented over PostgreSQL by `oasis_db::notify`, in memory by
//! [`crate::fake`]).
use crate::model::*;
use oasis_kernel::{RepoError, Timestamp};

/// Who receives one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// One user.
    User(i64),
    /// Everyone following `creator` or holding a membership with access to one of the
    /// creator's tiers (each once), never the creator themself.
    FollowersAndMembers { creator: i64 },
}

/// What the fan-out reads (facts at the time the job runs) and writes.
pub trait NotifyRepo {
    fn post(&mut self, id: i64) -> Result<Option<PostFacts>, RepoError>;
    fn comment(&mut self, id: i64) -> Result<Option<CommentFacts>, RepoError>;
    fn like(&mut self, id: i64) -> Result<Option<LikeFacts>, RepoError>;
    fn username(&mut self, user_id: i64) -> Result<Option<String>, RepoError>;
    /// When `follower` started following `creator`; `None` when they do not (now).
    fn followed_at(&mut self, follower: i64, creator: i64) -> Result<Option<Timestamp>, RepoError>;
    /// The fan's membership of one of the creator's tiers that just started (the one giving
    /// access now, else the most recently updated).
    fn membership_of(
        &mut self,
        fan: i64,
        creator: i64,
    ) -> Result<Option<MembershipFacts>, RepoError>;
    fn payment(&mut self, razorpay_payment_id: &str) -> Result<Option<PaymentFacts>, RepoError>;
    fn subscription(
        &mut self,
        razorpay_subscription_id: &str,
    ) -> Result<Option<SubscriptionFacts>, RepoError>;
    /// The automatic refund of a payment, once Razorpay accepted it (`None` before).
    fn refund(&mut self, razorpay_payment_id: &str) -> Result<Option<RefundFacts>, RepoError>;
    /// A commission request (its offering's title and its two parties).
    fn commission(&mut self, request_id: i64) -> Result<Option<CommissionFacts>, RepoError>;
    /// Inserts `n` for every member of `audience` (one statement), skipping recipients that
    /// already hold `(kind, event_key)`. A recipient who turned the kind's category off
    /// in-app gets it stored hidden (never in the inbox or the stream; it may still be mailed).
    /// Returns the stored ones.
    fn insert(
        &mut self,
        n: &NewNotification,
        audience: Audience,
    ) -> Result<Vec<Delivered>, RepoError>;
}

/// A user's inbox. Every method is scoped to `recipient`.
pub trait InboxRepo {
    /// Counts, the newest `max` notifications and the newest `max` unread ones.
    fn inbox(&mut self, recipient: i64, max: i64) -> Result<Inbox, RepoError>;
    fn unread_count(&mut self, recipient: i64) -> Result<i64, RepoError>;
    /// Returns how many were unread.
    fn mark_all_read(&mut self, recipient: i64) -> Result<u64, RepoError>;
    /// Marks one read; `None` when it is not the recipient's.
    fn mark_read(&mut self, recipient: i64, id: i64) -> Result<Option<Notification>, RepoError>;
    /// `false` when it is not the recipient's.
    fn delete(&mut self, recipient: i64, id: i64) -> Result<bool, RepoError>;
    /// The recipient's shown notifications with an id above `after`, in id order, at most
    /// `max` (the live stream and its `Last-Event-ID` resume).
    fn since(
        &mut self,
        recipient: i64,
        after: i64,
        max: i64,
    ) -> Result<Vec<Notification>, RepoError>;
    /// One shown notification of the recipient.
    fn get(&mut self, recipient: i64, id: i64) -> Result<Option<Notification>, RepoError>;
}

/// A user's notification settings.
pub trait PreferencesRepo {
    /// Stored switches over the defaults.
    fn preferences(&mut self, user: i64) -> Result<Preferences, RepoError>;
    /// Stores every category's switches.
    fn save_preferences(&mut self, user: i64, prefs: &Preferences) -> Result<(), RepoError>;
}
