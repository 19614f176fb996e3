//! Notification kinds, events and the facts the rules read.
use oasis_kernel::Timestamp;
use serde::{Deserialize, Serialize};

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A creator you follow or are a member of published a post.
    NewPost,
    /// Someone commented on your post.
    Comment,
    /// Someone liked your post.
    Like,
    /// Someone followed you.
    Follow,
    /// A fan joined (or bought) one of your tiers.
    Membership,
    /// A fan's cheer was paid.
    Cheer,
    /// Your payment failed.
    PaymentFailed,
    /// Your membership was halted (renewal payments failed).
    MembershipHalted,
    /// A payment was refunded automatically: its tier was no longer sold at its price (to the
    /// fan who paid and to the creator).
    PaymentRefunded,
    /// A commission request moved on (paid: the creator; accepted, delivered, rejected,
    /// completed: the fan; cancelled: the creator).
    Commission,
    /// A payment of yours succeeded (membership charge, one-time purchase, cheer): the receipt.
    Receipt,
    /// Your access ends soon (a membership cancelled at the end of its cycle, or a one-time
    /// purchase): raised by the `notify.access_ending` periodic job.
    AccessEnding,
    /// A membership changed tier (to the fan and the creator; it says "changed", never
    /// "cancelled").
    MembershipChanged,
    /// A creator you are a member of went on hiatus: your charges are skipped, your access
    /// stays.
    CreatorHiatus,
}

impl Kind {
    pub const ALL: [Kind; 14] = [
        Kind::NewPost,
        Kind::Comment,
        Kind::Like,
        Kind::Follow,
        Kind::Membership,
        Kind::Cheer,
        Kind::PaymentFailed,
        Kind::MembershipHalted,
        Kind::PaymentRefunded,
        Kind::Commission,
        Kind::Receipt,
        Kind::AccessEnding,
        Kind::MembershipChanged,
        Kind::CreatorHiatus,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::NewPost => "new_post",
            Kind::Comment => "comment",
            Kind::Like => "like",
            Kind::Follow => "follow",
            Kind::Membership => "membership",
            Kind::Cheer => "cheer",
            Kind::PaymentFailed => "payment_failed",
            Kind::MembershipHalted => "membership_halted",
            Kind::PaymentRefunded => "payment_refunded",
            Kind::Commission => "commission",
            Kind::Receipt => "receipt",
            Kind::AccessEnding => "access_ending",
            Kind::MembershipChanged => "membership_changed",
            Kind::CreatorHiatus => "creator_hiatus",
        }
    }

    /// The preference category it belongs to.
    pub fn category(self) -> Category {
        match self {
            Kind::NewPost => Category::NewPosts,
            Kind::Comment | Kind::Like | Kind::Follow => Category::Social,
            Kind::Membership | Kind::Cheer => Category::CreatorActivity,
            Kind::PaymentFailed | Kind::MembershipHalted | Kind::AccessEnding => {
                Category::MembershipWarnings
            }
            Kind::PaymentRefunded | Kind::Receipt | Kind::MembershipChanged => Category::Receipts,
            Kind::CreatorHiatus => Category::MembershipWarnings,
            Kind::Commission => Category::CommissionUpdates,
        }
    }

    /// Whether a notification of this kind is also mailed at once (when its category's email
    /// is on). New posts go out in the daily digest instead; social kinds (likes above all)
    /// are only ever in-app.
    pub fn mailed_at_once(self) -> bool {
        match self {
            Kind::Receipt
            | Kind::PaymentRefunded
            | Kind::PaymentFailed
            | Kind::MembershipHalted
            | Kind::AccessEnding
            | Kind::Membership
            | Kind::Cheer
            | Kind::Commission => true,
            // In-app only for now (no email template yet).
            Kind::NewPost
            | Kind::Comment
            | Kind::Like
            | Kind::Follow
            | Kind::MembershipChanged
            | Kind::CreatorHiatus => false,
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What a user can turn on or off, per channel (`GET/PATCH /feed/api/notification-settings/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Every successful payment, and refunds. Email cannot be turned off.
    Receipts,
    /// Payment failed, membership halted, access ends soon.
    MembershipWarnings,
    /// For creators: new members, new tips, commission requests.
    CreatorActivity,
    /// For fans: a commission's status changed.
    CommissionUpdates,
    /// New posts from creators you follow (email: a daily digest).
    NewPosts,
    /// Comments, likes and follows: in-app only.
    Social,
    /// Identity's verification and password-reset mails. Email cannot be turned off.
    Security,
}

impl Category {
    pub const ALL: [Category; 7] = [
        Category::Receipts,
        Category::MembershipWarnings,
        Category::CreatorActivity,
        Category::CommissionUpdates,
        Category::NewPosts,
        Category::Social,
        Category::Security,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Receipts => "receipts",
            Category::MembershipWarnings => "membership_warnings",
            Category::CreatorActivity => "creator_activity",
            Category::CommissionUpdates => "commission_updates",
            Category::NewPosts => "new_posts",
            Category::Social => "social",
            Category::Security => "security",
        }
    }

    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Its email cannot be turned off (receipts and security mails).
    pub fn email_required(self) -> bool {
        matches!(self, Category::Receipts | Category::Security)
    }

    /// It is never emailed (likes and the rest of the social kinds).
    pub fn in_app_only(self) -> bool {
        matches!(self, Category::Social)
    }

    /// Everything on, except what is never emailed.
    pub fn default_channels(self) -> Channels {
        Channels {
            in_app: true,
            email: !self.in_app_only(),
        }
    }

    /// Whether a mail of this category may be skipped by the per-recipient rate cap (receipts
    /// and security mails always go).
    pub fn rate_capped(self) -> bool {
        !self.email_required()
    }
}

/// One category's switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channels {
    pub in_app: bool,
    pub email: bool,
}

/// A user's switches for every category (stored rows over the defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences(pub std::collections::BTreeMap<Category, Channels>);

impl Default for Preferences {
    fn default() -> Self {
        Preferences(
            Category::ALL
                .into_iter()
                .map(|c| (c, c.default_channels()))
                .collect(),
        )
    }
}

impl Preferences {
    pub fn get(&self, c: Category) -> Channels {
        self.0
            .get(&c)
            .copied()
            .unwrap_or_else(|| c.default_channels())
    }
}

/// A notification just stored by the fan-out (for the mails it may cause).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub id: i64,
    pub recipient_id: i64,
    pub kind: Kind,
}

/// Something that happened, raised (as a `notify.fanout` job) in the transaction that made it
/// happen. Small on purpose: the fan-out reads the facts when it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    PostPublished {
        post_id: i64,
    },
    Commented {
        comment_id: i64,
    },
    Liked {
        like_id: i64,
    },
    Followed {
        follower_id: i64,
        creator_id: i64,
    },
    /// A membership (recurring, one-time or free) just gave `fan_id` access to a tier of
    /// `creator_id`.
    MembershipStarted {
        fan_id: i64,
        creator_id: i64,
    },
    /// A Razorpay payment was recorded or changed (cheers paid, payments failed).
    PaymentRecorded {
        payment_id: String,
    },
    /// A Razorpay subscription's state was applied (halted memberships).
    SubscriptionChanged {
        subscription_id: String,
    },
    /// Razorpay accepted an automatic refund of this payment (billing's `billing_refunds`).
    PaymentRefunded {
        payment_id: String,
    },
    /// A fan's membership changed tier (now, or scheduled for `effective_at`). Carries the
    /// names as they were when it changed.
    MembershipChanged {
        change_id: i64,
        fan_id: i64,
        creator_id: i64,
        from_tier: String,
        to_tier: String,
        /// `Some`: the change takes effect then (a downgrade at the cycle end).
        effective_at: Option<Timestamp>,
    },
    /// A creator's hiatus paused a fan's membership until `resumes_at`.
    CreatorHiatus {
        hiatus_id: i64,
        fan_id: i64,
        creator_id: i64,
        resumes_at: Timestamp,
    },
    /// A commission request took a step; `actor` made it (`None`: the system).
    CommissionChanged {
        request_id: i64,
        step: CommissionStep,
        actor: Option<i64>,
    },
}

/// The steps of a commission request that notify someone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommissionStep {
    Paid,
    Accepted,
    Delivered,
    Rejected,
    Cancelled,
    Completed,
}

impl CommissionStep {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paid => "paid",
            Self::Accepted => "accepted",
            Self::Delivered => "delivered",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Completed => "completed",
        }
    }
}

/// What a commission notification says of its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommissionFacts {
    pub request_id: i64,
    pub commission_id: i64,
    pub title: String,
    pub fan_id: i64,
    pub creator_id: i64,
    pub fan_username: String,
    pub creator_username: String,
    pub amount: i64,
    pub currency: String,
}

/// A reference to another object: its type, id and display text (django's `str(obj)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjRef {
    pub kind: String,
    pub id: i64,
    pub repr: String,
}

impl ObjRef {
    pub fn new(kind: &str, id: i64, repr: impl Into<String>) -> Self {
        ObjRef {
            kind: kind.to_owned(),
            id,
            repr: repr.into(),
        }
    }
}

/// A notification to insert for an [`crate::Audience`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    pub kind: Kind,
    pub actor_id: Option<i64>,
    pub verb: String,
    pub target: Option<ObjRef>,
    pub action_object: Option<ObjRef>,
    /// The post it is about (deleting the post deletes its notifications).
    pub post_id: Option<i64>,
    /// When it happened (the post's, comment's, like's, follow's time), so that an inbox is in
    /// event order whatever order the jobs ran in; `None` = now.
    pub occurred_at: Option<Timestamp>,
    /// Unique per recipient and kind: the same event never notifies twice.
    pub event_key: String,
    pub data: serde_json::Value,
}

/// A stored notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub id: i64,
    pub recipient_id: i64,
    pub actor_id: Option<i64>,
    pub actor_name: Option<String>,
    pub kind: Kind,
    pub verb: String,
    pub target: Option<ObjRef>,
    pub action_object: Option<ObjRef>,
    pub post_id: Option<i64>,
    pub data: serde_json::Value,
    pub unread: bool,
    pub created_at: Timestamp,
}

/// One page of a user's inbox.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Inbox {
    pub unread_count: i64,
    pub all_count: i64,
    pub unread: Vec<Notification>,
    pub all: Vec<Notification>,
}

/// A post as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostFacts {
    pub id: i64,
    pub creator_id: i64,
    pub creator_name: String,
    pub title: String,
    pub body: String,
    /// Tiers gating the post; empty = public.
    pub tier_ids: Vec<i64>,
    pub created_at: Timestamp,
}

impl PostFacts {
    pub fn is_gated(&self) -> bool {
        !self.tier_ids.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentFacts {
    pub id: i64,
    pub created_at: Timestamp,
    pub author_id: i64,
    pub text: String,
    pub post: PostFacts,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LikeFacts {
    pub id: i64,
    pub created_at: Timestamp,
    pub user_id: i64,
    pub post: PostFacts,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipFacts {
    pub id: i64,
    pub fan_id: i64,
    pub creator_id: i64,
    pub tier_id: i64,
    pub tier_name: String,
    /// `recurring`, `one_time` or `free`.
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentFacts {
    pub razorpay_payment_id: String,
    /// `subscription`, `one_time`, `cheer` or `commission`.
    pub kind: String,
    /// Razorpay's status: `created`, `failed`, `authorized`, `captured`, `refunded`.
    pub status: String,
    pub user_id: Option<i64>,
    pub creator_id: Option<i64>,
    pub amount: i64,
    pub currency: String,
    /// The local order (cheers, one-time purchases).
    pub order_id: Option<i64>,
    pub order_paid: bool,
    /// The cheer's name and message.
    pub name: String,
    pub message: String,
    pub tier_name: Option<String>,
    /// The creator's username (receipts).
    pub creator_name: Option<String>,
    /// The membership period this payment paid for (subscription charges).
    pub period_start: Option<Timestamp>,
    pub period_end: Option<Timestamp>,
}

/// An automatic refund Razorpay accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundFacts {
    pub razorpay_payment_id: String,
    pub amount: i64,
    pub currency: String,
    /// Why it was refunded, e.g. "the tier accepts no new members".
    pub reason: String,
    pub fan_id: Option<i64>,
    pub creator_id: Option<i64>,
    pub tier_id: Option<i64>,
    pub tier_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionFacts {
    pub membership_id: i64,
    pub fan_id: i64,
    pub creator_id: i64,
    pub tier_name: String,
    pub status: String,
    pub paid_count: i64,
}

/// A membership whose access ends soon without renewing (cancelled at the end of its cycle, or
/// a one-time purchase).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEndingFacts {
    pub membership_id: i64,
    pub fan_id: i64,
    pub creator_id: i64,
    pub creator_name: String,
    pub tier_name: String,
    /// `recurring` (cancelled at cycle end) or `one_time`.
    pub kind: String,
    pub ends_at: Timestamp,
}
