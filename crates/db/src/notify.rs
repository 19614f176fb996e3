//! Postgres adapter for the notify domain: the `notifications` table, the facts the fan-out
//! reads (posts, comments, likes, follows, memberships, payments — other domains' tables, read
//! only) and [`enqueue_event`], the outbox helper every capability calls in its own transaction.
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Jsonb, Nullable, Text, Timestamptz};
use oasis_kernel::RepoError;
use oasis_notify::{
    Audience, Category, Channels, CommentFacts, CommissionFacts, Delivered, Event, Inbox,
    InboxRepo, Kind, LikeFacts, MembershipFacts, NewNotification, Notification, NotifyRepo, ObjRef,
    PaymentFacts, PostFacts, Preferences, PreferencesRepo, RefundFacts, SubscriptionFacts,
    JOB_FANOUT,
};

use crate::{repo_error, CachedExt};

// Billing's entitlement rule in SQL, for a membership row aliased `m`.
use crate::billing::HAS_ACCESS;

/// Raises `event`: queues a `notify.fanout` job in the caller's transaction (the outbox). Call
/// `ctx.jobs.wake()` after commit for low latency.
pub fn enqueue_event(c: &mut PgConnection, event: &Event) -> Result<(), RepoError> {
    let payload = serde_json::to_value(event).map_err(|e| RepoError::Unavailable(e.to_string()))?;
    crate::jobs::enqueue(c, JOB_FANOUT, &payload)?;
    Ok(())
}

/// Runs one event's fan-out in the caller's transaction (the `notify.fanout` job handler);
/// returns the notifications it stored.
pub fn run_fanout(c: &mut PgConnection, event: &Event) -> Result<Vec<Delivered>, RepoError> {
    oasis_notify::fan_out(&mut PgNotify(c), event).map_err(|e| match e {
        oasis_notify::NotifyError::Repo(r) => r,
        other => RepoError::Unavailable(other.to_string()),
    })
}

/// The notify repositories over one connection.
pub struct PgNotify<'a>(pub &'a mut PgConnection);

#[derive(QueryableByName)]
struct PostRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    creator_id: i64,
    #[diesel(sql_type = Text)]
    creator_name: String,
    #[diesel(sql_type = Text)]
    title: String,
    #[diesel(sql_type = Text)]
    body: String,
    #[diesel(sql_type = Array<BigInt>)]
    tier_ids: Vec<i64>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct PairRow {
    #[diesel(sql_type = BigInt)]
    post_id: i64,
    #[diesel(sql_type = BigInt)]
    user_id: i64,
    #[diesel(sql_type = Text)]
    text: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct NameRow {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct MembershipRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    tier_id: i64,
    #[diesel(sql_type = Text)]
    tier_name: String,
    #[diesel(sql_type = Text)]
    kind: String,
}

#[derive(QueryableByName)]
struct PaymentRow {
    #[diesel(sql_type = Text)]
    razorpay_payment_id: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    user_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    creator_id: Option<i64>,
    #[diesel(sql_type = BigInt)]
    amount: i64,
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    order_id: Option<i64>,
    #[diesel(sql_type = Bool)]
    order_paid: bool,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    message: String,
    #[diesel(sql_type = Nullable<Text>)]
    tier_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    creator_name: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    period_start: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    period_end: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct SubscriptionRow {
    #[diesel(sql_type = BigInt)]
    membership_id: i64,
    #[diesel(sql_type = BigInt)]
    fan_id: i64,
    #[diesel(sql_type = BigInt)]
    creator_id: i64,
    #[diesel(sql_type = Text)]
    tier_name: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    paid_count: i64,
}

#[derive(QueryableByName)]
struct RefundRow {
    #[diesel(sql_type = Text)]
    razorpay_payment_id: String,
    #[diesel(sql_type = BigInt)]
    amount: i64,
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = Text)]
    reason: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    fan_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    creator_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    tier_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    tier_name: Option<String>,
}

#[derive(QueryableByName)]
struct NotificationRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    recipient_id: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    actor_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    actor_name: Option<String>,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    verb: String,
    #[diesel(sql_type = Nullable<Text>)]
    target_type: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    target_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    target_repr: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    action_object_type: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    action_object_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    action_object_repr: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    post_id: Option<i64>,
    #[diesel(sql_type = Jsonb)]
    data: serde_json::Value,
    #[diesel(sql_type = Bool)]
    unread: bool,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    /// Whether the post it is about is tier-gated now.
    #[diesel(sql_type = Bool)]
    post_gated: bool,
}

fn obj(kind: Option<String>, id: Option<i64>, repr: Option<String>) -> Option<ObjRef> {
    Some(ObjRef {
        kind: kind?,
        id: id.unwrap_or_default(),
        repr: repr.unwrap_or_default(),
    })
}

impl NotificationRow {
    fn into_domain(self) -> Result<Notification, RepoError> {
        let gated = self.post_gated;
        Ok(oasis_notify::as_seen_now(self.into_stored()?, gated))
    }

    fn into_stored(self) -> Result<Notification, RepoError> {
        // The CHECK constraint admits only known kinds; anything else is an error, never a default.
        let kind = Kind::parse(&self.kind).ok_or_else(|| {
            RepoError::Unavailable(format!(
                "notifications.kind: unknown stored value {:?}",
                self.kind
            ))
        })?;
        Ok(Notification {
            id: self.id,
            recipient_id: self.recipient_id,
            actor_id: self.actor_id,
            actor_name: self.actor_name,
            kind,
            verb: self.verb,
            target: obj(self.target_type, self.target_id, self.target_repr),
            action_object: obj(
                self.action_object_type,
                self.action_object_id,
                self.action_object_repr,
            ),
            post_id: self.post_id,
            data: self.data,
            unread: self.unread,
            created_at: self.created_at,
        })
    }
}

const SELECT_NOTIFICATION: &str =
    "SELECT n.id, n.recipient_id, n.actor_id, u.username AS actor_name,
        n.kind, n.verb, n.target_type, n.target_id, n.target_repr, n.action_object_type,
        n.action_object_id, n.action_object_repr, n.post_id, n.data, n.unread, n.created_at,
        (n.post_id IS NOT NULL
         AND EXISTS (SELECT 1 FROM post_tiers pt WHERE pt.post_id = n.post_id)) AS post_gated
    FROM notifications n LEFT JOIN users u ON u.id = n.actor_id";

impl NotifyRepo for PgNotify<'_> {
    fn post(&mut self, id: i64) -> Result<Option<PostFacts>, RepoError> {
        let row: Option<PostRow> = diesel::sql_query(
            "SELECT p.id, p.creator_id, u.username AS creator_name, p.title, p.body,
                COALESCE((SELECT array_agg(pt.tier_id ORDER BY pt.tier_id) FROM post_tiers pt
                          WHERE pt.post_id = p.id), '{}') AS tier_ids, p.created_at
             FROM posts p JOIN users u ON u.id = p.creator_id WHERE p.id = $1",
        )
        .bind::<BigInt, _>(id)
        .get_result(self.0)
        .optional()
        .map_err(repo_error)?;
        Ok(row.map(|r| PostFacts {
            id: r.id,
            creator_id: r.creator_id,
            creator_name: r.creator_name,
            title: r.title,
            body: r.body,
            tier_ids: r.tier_ids,
            created_at: r.created_at,
        }))
    }

    fn comment(&mut self, id: i64) -> Result<Option<CommentFacts>, RepoError> {
        let row: Option<PairRow> = diesel::sql_query(
            "SELECT post_id, user_id, text, created_at FROM comments WHERE id = $1",
        )
        .bind::<BigInt, _>(id)
        .get_result(self.0)
        .optional()
        .map_err(repo_error)?;
        let Some(r) = row else { return Ok(None) };
        Ok(self.post(r.post_id)?.map(|post| CommentFacts {
            id,
            created_at: r.created_at,
            author_id: r.user_id,
            text: r.text,
            post,
        }))
    }

    fn like(&mut self, id: i64) -> Result<Option<LikeFacts>, RepoError> {
        let row: Option<PairRow> = diesel::sql_query(
            "SELECT post_id, user_id, '' AS text, created_at FROM likes WHERE id = $1",
        )
        .bind::<BigInt, _>(id)
        .get_result(self.0)
        .optional()
        .map_err(repo_error)?;
        let Some(r) = row else { return Ok(None) };
        Ok(self.post(r.post_id)?.map(|post| LikeFacts {
            id,
            created_at: r.created_at,
            user_id: r.user_id,
            post,
        }))
    }

    fn username(&mut self, user_id: i64) -> Result<Option<String>, RepoError> {
        let row: Option<NameRow> =
            diesel::sql_query("SELECT username AS name FROM users WHERE id = $1")
                .bind::<BigInt, _>(user_id)
                .get_result(self.0)
                .optional()
                .map_err(repo_error)?;
        Ok(row.map(|r| r.name))
    }

    fn followed_at(
        &mut self,
        follower: i64,
        creator: i64,
    ) -> Result<Option<DateTime<Utc>>, RepoError> {
        #[derive(QueryableByName)]
        struct At {
            #[diesel(sql_type = Timestamptz)]
            at: DateTime<Utc>,
        }
        let row: Option<At> = diesel::sql_query(
            "SELECT created_at AS at FROM follows WHERE follower_id = $1 AND creator_id = $2",
        )
        .bind::<BigInt, _>(follower)
        .bind::<BigInt, _>(creator)
        .get_result(self.0)
        .optional()
        .map_err(repo_error)?;
        Ok(row.map(|r| r.at))
    }

    fn membership_of(
        &mut self,
        fan: i64,
        creator: i64,
    ) -> Result<Option<MembershipFacts>, RepoError> {
        let row: Option<MembershipRow> = diesel::sql_query(format!(
            "SELECT m.id, t.id AS tier_id, t.name AS tier_name, m.kind
             FROM memberships m JOIN tiers t ON t.id = m.tier_id
             WHERE m.user_id = $1 AND t.creator_id = $2
             ORDER BY {HAS_ACCESS} DESC, m.updated_at DESC, m.id DESC LIMIT 1"
        ))
        .bind::<BigInt, _>(fan)
        .bind::<BigInt, _>(creator)
        .get_result(self.0)
        .optional()
        .map_err(repo_error)?;
        Ok(row.map(|r| MembershipFacts {
            id: r.id,
            fan_id: fan,
            creator_id: creator,
            tier_id: r.tier_id,
            tier_name: r.tier_name,
            kind: r.kind,
        }))
    }

    fn payment(&mut self, razorpay_payment_id: &str) -> Result<Option<PaymentFacts>, RepoError> {
        let row: Option<PaymentRow> = diesel::sql_query(
            "SELECT p.razorpay_payment_id, p.kind, p.status,
                COALESCE(p.user_id, m.user_id, o.user_id) AS user_id,
                COALESCE(p.creator_id, t.creator_id, o.creator_id) AS creator_id,
                p.amount, p.currency, o.id AS order_id,
                COALESCE(o.status = 'paid', false) AS order_paid,
                COALESCE(o.name, '') AS name, COALESCE(o.message, '') AS message,
                t.name AS tier_name, cu.username AS creator_name,
                m.current_start AS period_start, m.current_end AS period_end
             FROM payments p
             LEFT JOIN billing_orders o ON o.id = p.order_id
             LEFT JOIN memberships m ON m.id = p.membership_id
             LEFT JOIN tiers t ON t.id = COALESCE(m.tier_id, o.tier_id)
             LEFT JOIN users cu ON cu.id = COALESCE(p.creator_id, t.creator_id, o.creator_id)
             WHERE p.razorpay_payment_id = $1",
        )
        .bind::<Text, _>(razorpay_payment_id)
        .cached()
        .get_result(self.0)
        .optional()
        .map_err(repo_error)?;
        Ok(row.map(|r| PaymentFacts {
            razorpay_payment_id: r.razorpay_payment_id,
            kind: r.kind,
            status: r.status,
            user_id: r.user_id,
            creator_id: r.creator_id,
            amount: r.amount,
            currency: r.currency,
            order_id: r.order_id,
            order_paid: r.order_paid,
            name: r.name,
            message: r.message,
            tier_name: r.tier_name,
            creator_name: r.creator_name,
            period_start: r.period_start,
            period_end: r.period_end,
        }))
    }

    fn subscription(
        &mut self,
        razorpay_subscription_id: &str,
    ) -> Result<Option<SubscriptionFacts>, RepoError> {
        let row: Option<SubscriptionRow> = diesel::sql_query(
            "SELECT m.id AS membership_id, m.user_id AS fan_id, t.creator_id, t.name AS tier_name,
                m.status, m.paid_count
             FROM memberships m JOIN tiers t ON t.id = m.tier_id
             WHERE m.razorpay_subscription_id = $1",
        )
        .bind::<Text, _>(razorpay_subscription_id)
        .cached()
        .get_result(self.0)
        .optional()
        .map_err(repo_error)?;
        Ok(row.map(|r| SubscriptionFacts {
            membership_id: r.membership_id,
            fan_id: r.fan_id,
            creator_id: r.creator_id,
            tier_name: r.tier_name,
            status: r.status,
            paid_count: r.paid_count,
        }))
    }

    fn refund(&mut self, razorpay_payment_id: &str) -> Result<Option<RefundFacts>, RepoError> {
        let row: Option<RefundRow> = diesel::sql_query(
            "SELECT r.razorpay_payment_id, r.amount, r.currency, r.reason,
                r.user_id AS fan_id, COALESCE(r.creator_id, t.creator_id) AS creator_id,
                r.tier_id, COALESCE(t.name, c.title) AS tier_name
             FROM billing_refunds r LEFT JOIN tiers t ON t.id = r.tier_id
             -- A commission's refund names the offering.
             LEFT JOIN billing_orders o ON o.id = r.order_id AND o.kind = 'commission'
             LEFT JOIN commissions c ON c.id = o.reference_id
             WHERE r.razorpay_payment_id = $1 AND r.status = 'sent'",
        )
        .bind::<Text, _>(razorpay_payment_id)
        .cached()
        .get_result(self.0)
        .optional()
        .map_err(repo_error)?;
        Ok(row.map(|r| RefundFacts {
            razorpay_payment_id: r.razorpay_payment_id,
            amount: r.amount,
            currency: r.currency,
            reason: r.reason,
            fan_id: r.fan_id,
            creator_id: r.creator_id,
            tier_id: r.tier_id,
            tier_name: r.tier_name,
        }))
    }

    fn commission(&mut self, request_id: i64) -> Result<Option<CommissionFacts>, RepoError> {
        use crate::schema::{commission_requests as r, commissions as c, users as u};
        let row: Option<(i64, i64, i64, i64, i64, String, String)> = r::table
            .inner_join(c::table)
            .filter(r::id.eq(request_id))
            .select((
                r::id,
                r::commission_id,
                r::fan_id,
                r::creator_id,
                r::amount,
                r::currency,
                c::title,
            ))
            .first(self.0)
            .optional()
            .map_err(repo_error)?;
        let Some((request_id, commission_id, fan_id, creator_id, amount, currency, title)) = row
        else {
            return Ok(None);
        };
        let names: std::collections::HashMap<i64, String> = u::table
            .filter(u::id.eq_any([fan_id, creator_id]))
            .select((u::id, u::username))
            .load::<(i64, String)>(self.0)
            .map_err(repo_error)?
            .into_iter()
            .collect();
        let name = |id: i64| names.get(&id).cloned().unwrap_or_default();
        Ok(Some(CommissionFacts {
            request_id,
            commission_id,
            title,
            fan_id,
            creator_id,
            fan_username: name(fan_id),
            creator_username: name(creator_id),
            amount,
            currency,
        }))
    }

    /// One statement whatever the audience's size: `INSERT ... SELECT` over the recipients.
    fn insert(
        &mut self,
        n: &NewNotification,
        audience: Audience,
    ) -> Result<Vec<Delivered>, RepoError> {
        #[derive(QueryableByName)]
        struct Inserted {
            #[diesel(sql_type = BigInt)]
            id: i64,
            #[diesel(sql_type = BigInt)]
            recipient_id: i64,
            #[diesel(sql_type = Bool)]
            shown: bool,
        }
        let (source, who) = match audience {
            Audience::User(u) => ("SELECT $13::bigint AS id".to_owned(), u),
            Audience::FollowersAndMembers { creator } => (
                format!(
                    "SELECT f.follower_id AS id FROM follows f WHERE f.creator_id = $13
                     UNION
                     SELECT m.user_id FROM memberships m JOIN tiers t ON t.id = m.tier_id
                     WHERE t.creator_id = $13 AND {HAS_ACCESS}"
                ),
                creator,
            ),
        };
        let t = n.target.as_ref();
        let a = n.action_object.as_ref();
        // `shown`: false for recipients who turned the category off in-app (the row stays for
        // its mail, e.g. a receipt).
        let inserted: Vec<Inserted> = diesel::sql_query(format!(
            "INSERT INTO notifications (recipient_id, actor_id, kind, verb, target_type, target_id,
                 target_repr, action_object_type, action_object_id, action_object_repr, post_id,
                 event_key, data, created_at, shown)
             SELECT r.id, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, COALESCE($14, now()),
                 NOT EXISTS (SELECT 1 FROM notification_settings s
                             WHERE s.user_id = r.id AND s.category = $15 AND NOT s.in_app)
             FROM ({source}) r JOIN users u ON u.id = r.id
             WHERE u.is_active AND r.id IS DISTINCT FROM $1
             ON CONFLICT ON CONSTRAINT notifications_recipient_kind_event_key DO NOTHING
             RETURNING id, recipient_id, shown"
        ))
        .bind::<Nullable<BigInt>, _>(n.actor_id)
        .bind::<Text, _>(n.kind.as_str())
        .bind::<Text, _>(&n.verb)
        .bind::<Nullable<Text>, _>(t.map(|o| o.kind.as_str()))
        .bind::<Nullable<BigInt>, _>(t.map(|o| o.id))
        .bind::<Nullable<Text>, _>(t.map(|o| o.repr.as_str()))
        .bind::<Nullable<Text>, _>(a.map(|o| o.kind.as_str()))
        .bind::<Nullable<BigInt>, _>(a.map(|o| o.id))
        .bind::<Nullable<Text>, _>(a.map(|o| o.repr.as_str()))
        .bind::<Nullable<BigInt>, _>(n.post_id)
        .bind::<Text, _>(&n.event_key)
        .bind::<Jsonb, _>(&n.data)
        .bind::<BigInt, _>(who)
        .bind::<Nullable<Timestamptz>, _>(n.occurred_at)
        .bind::<Text, _>(n.kind.category().as_str())
        .load(self.0)
        .map_err(repo_error)?;
        let live: Vec<(i64, i64)> = inserted
            .iter()
            .filter(|r| r.shown)
            .map(|r| (r.recipient_id, r.id))
            .collect();
        notify_new(self.0, &live)?;
        Ok(inserted
            .into_iter()
            .map(|r| Delivered {
                id: r.id,
                recipient_id: r.recipient_id,
                kind: n.kind,
            })
            .collect())
    }
}

impl PreferencesRepo for PgNotify<'_> {
    fn preferences(&mut self, user: i64) -> Result<Preferences, RepoError> {
        use crate::schema::notification_settings::dsl as s;
        let rows: Vec<(String, bool, bool)> = s::notification_settings
            .filter(s::user_id.eq(user))
            .select((s::category, s::in_app, s::email))
            .load(self.0)
            .map_err(repo_error)?;
        let mut prefs = Preferences::default();
        for (category, in_app, email) in rows {
            let c = Category::parse(&category).ok_or_else(|| {
                RepoError::Unavailable(format!("unknown notification category {category:?}"))
            })?;
            prefs.0.insert(c, Channels { in_app, email });
        }
        Ok(prefs)
    }

    fn save_preferences(&mut self, user: i64, prefs: &Preferences) -> Result<(), RepoError> {
        use crate::schema::notification_settings::dsl as s;
        let rows: Vec<_> = prefs
            .0
            .iter()
            .map(|(c, ch)| {
                (
                    s::user_id.eq(user),
                    s::category.eq(c.as_str()),
                    s::in_app.eq(ch.in_app),
                    s::email.eq(ch.email),
                )
            })
            .collect();
        diesel::insert_into(s::notification_settings)
            .values(&rows)
            .on_conflict((s::user_id, s::category))
            .do_update()
            .set((
                s::in_app.eq(diesel::upsert::excluded(s::in_app)),
                s::email.eq(diesel::upsert::excluded(s::email)),
                s::updated_at.eq(diesel::dsl::now),
            ))
            .execute(self.0)
            .map_err(repo_error)?;
        Ok(())
    }
}

/// What a notification's mail is rendered from.
#[derive(Debug, Clone)]
pub struct NotificationMail {
    pub notification: Notification,
    pub recipient_email: String,
    pub recipient_name: String,
    /// The recipient's switches for the notification's category, now.
    pub channels: Channels,
    /// Mails of rate-capped categories sent to the recipient in the last hour.
    pub mailed_last_hour: i64,
}

/// Reads what [`NotificationMail`] needs; `None` when the notification or an active recipient
/// with an address is gone.
pub fn notification_mail(
    c: &mut PgConnection,
    id: i64,
) -> Result<Option<NotificationMail>, RepoError> {
    #[derive(QueryableByName)]
    struct Recipient {
        #[diesel(sql_type = Text)]
        email: String,
        #[diesel(sql_type = Text)]
        username: String,
        #[diesel(sql_type = BigInt)]
        mailed: i64,
    }
    let row: Option<NotificationRow> =
        diesel::sql_query(format!("{SELECT_NOTIFICATION} WHERE n.id = $1"))
            .bind::<BigInt, _>(id)
            .get_result(c)
            .optional()
            .map_err(repo_error)?;
    let Some(row) = row else { return Ok(None) };
    let notification = row.into_domain()?;
    let capped: Vec<&str> = Kind::ALL
        .into_iter()
        .filter(|k| k.category().rate_capped())
        .map(Kind::as_str)
        .collect();
    let r: Option<Recipient> = diesel::sql_query(
        "SELECT u.email, u.username,
            (SELECT count(*) FROM notifications m
             WHERE m.recipient_id = u.id AND m.emailed_at > now() - interval '1 hour'
               AND m.kind = ANY($2) AND m.id <> $3) AS mailed
         FROM users u WHERE u.id = $1 AND u.is_active AND u.email <> ''",
    )
    .bind::<BigInt, _>(notification.recipient_id)
    .bind::<Array<Text>, _>(&capped)
    .bind::<BigInt, _>(id)
    .get_result(c)
    .optional()
    .map_err(repo_error)?;
    let Some(r) = r else { return Ok(None) };
    let channels = PgNotify(c)
        .preferences(notification.recipient_id)?
        .get(notification.kind.category());
    Ok(Some(NotificationMail {
        notification,
        recipient_email: r.email,
        recipient_name: r.username,
        channels,
        mailed_last_hour: r.mailed,
    }))
}

/// Records that a notification's mail was handed to the mailer (the rate cap counts these).
pub fn mark_emailed(c: &mut PgConnection, id: i64) -> Result<(), RepoError> {
    use crate::schema::notifications::dsl as n;
    diesel::update(n::notifications.filter(n::id.eq(id)))
        .set(n::emailed_at.eq(diesel::dsl::now))
        .execute(c)
        .map_err(repo_error)?;
    Ok(())
}

#[derive(QueryableByName)]
struct CountsRow {
    #[diesel(sql_type = BigInt)]
    all_count: i64,
    #[diesel(sql_type = BigInt)]
    unread_count: i64,
}

impl InboxRepo for PgNotify<'_> {
    fn inbox(&mut self, recipient: i64, max: i64) -> Result<Inbox, RepoError> {
        let counts: CountsRow = diesel::sql_query(
            "SELECT count(*) AS all_count, count(*) FILTER (WHERE unread) AS unread_count
             FROM notifications WHERE recipient_id = $1 AND shown",
        )
        .bind::<BigInt, _>(recipient)
        .get_result(self.0)
        .map_err(repo_error)?;
        // The newest `max` of all and the newest `max` unread, in one query; every extra
        // unread row is older than the newest `max`, so the first `max` rows are `all_list`.
        let rows: Vec<NotificationRow> = diesel::sql_query(format!(
            "{SELECT_NOTIFICATION}
             WHERE n.id IN (
                 (SELECT id FROM notifications WHERE recipient_id = $1 AND shown
                  ORDER BY created_at DESC, id DESC LIMIT $2)
                 UNION ALL
                 (SELECT id FROM notifications WHERE recipient_id = $1 AND shown AND unread
                  ORDER BY created_at DESC, id DESC LIMIT $2))
             ORDER BY n.created_at DESC, n.id DESC"
        ))
        .bind::<BigInt, _>(recipient)
        .bind::<BigInt, _>(max)
        .load(self.0)
        .map_err(repo_error)?;
        let all: Vec<Notification> = rows
            .into_iter()
            .map(NotificationRow::into_domain)
            .collect::<Result<_, _>>()?;
        let max = usize::try_from(max).unwrap_or(0);
        let unread = all.iter().filter(|n| n.unread).take(max).cloned().collect();
        Ok(Inbox {
            unread_count: counts.unread_count,
            all_count: counts.all_count,
            unread,
            all: all.into_iter().take(max).collect(),
        })
    }

    fn unread_count(&mut self, recipient: i64) -> Result<i64, RepoError> {
        let counts: CountsRow = diesel::sql_query(
            "SELECT 0::bigint AS all_count, count(*) AS unread_count
             FROM notifications WHERE recipient_id = $1 AND shown AND unread",
        )
        .bind::<BigInt, _>(recipient)
        .get_result(self.0)
        .map_err(repo_error)?;
        Ok(counts.unread_count)
    }

    fn mark_all_read(&mut self, recipient: i64) -> Result<u64, RepoError> {
        let n = diesel::sql_query(
            "UPDATE notifications SET unread = false WHERE recipient_id = $1 AND shown AND unread",
        )
        .bind::<BigInt, _>(recipient)
        .execute(self.0)
        .map_err(repo_error)?;
        if n > 0 {
            notify_unread_changed(self.0, recipient)?;
        }
        Ok(n as u64)
    }

    fn mark_read(&mut self, recipient: i64, id: i64) -> Result<Option<Notification>, RepoError> {
        let row: Option<NotificationRow> = diesel::sql_query(format!(
            "WITH n AS (
                 UPDATE notifications SET unread = false
                 WHERE id = $1 AND recipient_id = $2 AND shown
                 RETURNING *)
             {}",
            SELECT_NOTIFICATION.replacen("FROM notifications n", "FROM n", 1)
        ))
        .bind::<BigInt, _>(id)
        .bind::<BigInt, _>(recipient)
        .get_result(self.0)
        .optional()
        .map_err(repo_error)?;
        if row.is_some() {
            notify_unread_changed(self.0, recipient)?;
        }
        row.map(NotificationRow::into_domain).transpose()
    }

    fn delete(&mut self, recipient: i64, id: i64) -> Result<bool, RepoError> {
        let n = diesel::sql_query(
            "DELETE FROM notifications WHERE id = $1 AND recipient_id = $2 AND shown",
        )
        .bind::<BigInt, _>(id)
        .bind::<BigInt, _>(recipient)
        .execute(self.0)
        .map_err(repo_error)?;
        if n == 1 {
            notify_unread_changed(self.0, recipient)?;
        }
        Ok(n == 1)
    }

    fn since(
        &mut self,
        recipient: i64,
        after: i64,
        max: i64,
    ) -> Result<Vec<Notification>, RepoError> {
        let rows: Vec<NotificationRow> = diesel::sql_query(format!(
            "{SELECT_NOTIFICATION}
             WHERE n.recipient_id = $1 AND n.shown AND n.id > $2 ORDER BY n.id LIMIT $3"
        ))
        .bind::<BigInt, _>(recipient)
        .bind::<BigInt, _>(after)
        .bind::<BigInt, _>(max)
        .load(self.0)
        .map_err(repo_error)?;
        rows.into_iter().map(NotificationRow::into_domain).collect()
    }

    fn get(&mut self, recipient: i64, id: i64) -> Result<Option<Notification>, RepoError> {
        let row: Option<NotificationRow> = diesel::sql_query(format!(
            "{SELECT_NOTIFICATION} WHERE n.id = $1 AND n.recipient_id = $2 AND n.shown"
        ))
        .bind::<BigInt, _>(id)
        .bind::<BigInt, _>(recipient)
        .get_result(self.0)
        .optional()
        .map_err(repo_error)?;
        row.map(NotificationRow::into_domain).transpose()
    }
}

// ---------------------------------------------------------------------------------------------
// The live stream: LISTEN/NOTIFY carrying ids only (the stream reads the rows), and tickets.

/// The channel every server process LISTENs on. Payloads: `n <recipient>:<id> …` (new shown
/// notifications, up to [`IDS_PER_PAYLOAD`] pairs each) and `u <recipient>` (an unread count
/// changed). Sent inside the writing transaction: PostgreSQL delivers it at commit, never
/// for a rolled-back write.
pub const STREAM_CHANNEL: &str = "oasis_notify";
/// NOTIFY payloads must stay under 8,000 bytes: ≤ 40 bytes a pair.
pub const IDS_PER_PAYLOAD: usize = 150;

/// Announces new shown notifications `(recipient, id)` to every process's live streams.
pub fn notify_new(c: &mut PgConnection, live: &[(i64, i64)]) -> Result<(), RepoError> {
    if live.is_empty() {
        return Ok(());
    }
    let payloads: Vec<String> = live
        .chunks(IDS_PER_PAYLOAD)
        .map(|chunk| {
            let pairs: Vec<String> = chunk.iter().map(|(r, id)| format!("{r}:{id}")).collect();
            format!("n {}", pairs.join(" "))
        })
        .collect();
    send_notifies(c, &payloads)
}

/// Announces that `recipient`'s unread count changed (read, deleted).
pub fn notify_unread_changed(c: &mut PgConnection, recipient: i64) -> Result<(), RepoError> {
    send_notifies(c, &[format!("u {recipient}")])
}

fn send_notifies(c: &mut PgConnection, payloads: &[String]) -> Result<(), RepoError> {
    // `pg_notify` (not `NOTIFY`) takes bind parameters; one statement for all payloads.
    diesel::sql_query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
        .bind::<Text, _>(STREAM_CHANNEL)
        .bind::<Array<Text>, _>(payloads)
        .execute(c)
        .map_err(repo_error)?;
    Ok(())
}

/// What a stream listener heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// New shown notifications `(recipient, id)`.
    New(Vec<(i64, i64)>),
    /// A recipient's unread count changed.
    Unread(i64),
    /// The read cache's channel ([`crate::touch::CACHE_CHANNEL`]): what other writes touched.
    Cache(crate::touch::Touched),
}

/// Parses one [`STREAM_CHANNEL`] payload; `None` for anything else.
pub fn parse_payload(payload: &str) -> Option<Heard> {
    let (tag, rest) = payload.split_once(' ')?;
    match tag {
        "n" => rest
            .split(' ')
            .map(|pair| {
                let (r, id) = pair.split_once(':')?;
                Some((r.parse().ok()?, id.parse().ok()?))
            })
            .collect::<Option<Vec<_>>>()
            .map(Heard::New),
        "u" => rest.parse().ok().map(Heard::Unread),
        _ => None,
    }
}

/// Starts listening on [`STREAM_CHANNEL`] (a dedicated connection, outside any pool), and on
/// the read cache's channel when `cache` (see [`crate::touch`]).
pub fn listen(c: &mut PgConnection, cache: bool) -> Result<(), RepoError> {
    diesel::sql_query(format!("LISTEN {STREAM_CHANNEL}"))
        .execute(c)
        .map_err(repo_error)?;
    if cache {
        crate::touch::listen_all(c)?;
    }
    Ok(())
}

/// What arrived since the last call, without blocking (libpq's `PQconsumeInput` +
/// `PQnotifies`); an error means the connection is gone.
pub fn heard(c: &mut PgConnection) -> Result<Vec<Heard>, RepoError> {
    let mut out = Vec::new();
    for n in c.notifications_iter() {
        let n = n.map_err(repo_error)?;
        if n.channel == STREAM_CHANNEL {
            if let Some(h) = parse_payload(&n.payload) {
                out.push(h);
            }
        } else if n.channel == crate::touch::CACHE_CHANNEL {
            out.push(Heard::Cache(crate::touch::parse(&n.payload)));
        }
    }
    Ok(out)
}

/// Stores a stream ticket's SHA-256 (never the ticket) for `user`, valid `ttl_secs`; drops
/// the user's expired ones.
pub fn create_stream_ticket(
    c: &mut PgConnection,
    user: i64,
    ticket_hash: &[u8],
    ttl_secs: i64,
) -> Result<(), RepoError> {
    use crate::schema::notification_stream_tickets::dsl as t;
    diesel::delete(
        t::notification_stream_tickets
            .filter(t::user_id.eq(user))
            .filter(t::expires_at.le(diesel::dsl::now)),
    )
    .execute(c)
    .map_err(repo_error)?;
    diesel::insert_into(t::notification_stream_tickets)
        .values((
            t::ticket_hash.eq(ticket_hash),
            t::user_id.eq(user),
            t::expires_at.eq(Utc::now() + chrono::Duration::seconds(ttl_secs)),
        ))
        .execute(c)
        .map_err(repo_error)?;
    Ok(())
}

/// Redeems a ticket by its hash: deletes it and returns its user when it had not expired
/// (single use: a second redeem finds nothing).
pub fn redeem_stream_ticket(
    c: &mut PgConnection,
    ticket_hash: &[u8],
) -> Result<Option<i64>, RepoError> {
    use crate::schema::notification_stream_tickets::dsl as t;
    let row: Option<(i64, DateTime<Utc>)> =
        diesel::delete(t::notification_stream_tickets.filter(t::ticket_hash.eq(ticket_hash)))
            .returning((t::user_id, t::expires_at))
            .get_result(c)
            .optional()
            .map_err(repo_error)?;
    Ok(row.and_then(|(user, expires_at)| (expires_at > Utc::now()).then_some(user)))
}

// ---------------------------------------------------------------------------------------------
// Periodic mails: access-ends warnings and the new-post digest.

/// Memberships whose access ends within `(now, now + within]` without renewing: recurring
/// ones cancelled at the end of their cycle and one-time purchases, that give access now.
pub fn access_ending_soon(
    c: &mut PgConnection,
    within_secs: i64,
) -> Result<Vec<oasis_notify::AccessEndingFacts>, RepoError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = BigInt)]
        user_id: i64,
        #[diesel(sql_type = BigInt)]
        creator_id: i64,
        #[diesel(sql_type = Text)]
        creator_name: String,
        #[diesel(sql_type = Text)]
        tier_name: String,
        #[diesel(sql_type = Text)]
        kind: String,
        #[diesel(sql_type = Timestamptz)]
        ends_at: DateTime<Utc>,
    }
    // HAS_ACCESS is billing's entitlement rule as one SQL expression.
    let rows: Vec<Row> = diesel::sql_query(format!(
        "SELECT m.id, m.user_id, t.creator_id, u.username AS creator_name, t.name AS tier_name,
             m.kind, m.current_end AS ends_at
         FROM memberships m JOIN tiers t ON t.id = m.tier_id JOIN users u ON u.id = t.creator_id
         WHERE {HAS_ACCESS}
           AND m.current_end > now() AND m.current_end <= now() + make_interval(secs => $1)
           AND (m.kind = 'one_time'
                OR (m.kind = 'recurring' AND (m.cancel_at_period_end OR m.status = 'cancelled')))
           -- A change of tier by replacement ends the old membership at its cycle end, but the
           -- fan's access goes on in the new one: that is no ending to warn of.
           AND NOT EXISTS (SELECT 1 FROM billing_changes bc
                           WHERE bc.membership_id = m.id AND bc.method = 'replace'
                             AND bc.state <> 'failed')
         ORDER BY m.id"
    ))
    .bind::<diesel::sql_types::Double, _>(within_secs as f64)
    .load(c)
    .map_err(repo_error)?;
    Ok(rows
        .into_iter()
        .map(|r| oasis_notify::AccessEndingFacts {
            membership_id: r.id,
            fan_id: r.user_id,
            creator_id: r.creator_id,
            creator_name: r.creator_name,
            tier_name: r.tier_name,
            kind: r.kind,
            ends_at: r.ends_at,
        })
        .collect())
}

/// Plans today's (UTC) new-post digests, once per user and day: for every active user with an
/// address whose `new_posts` email is on and who has new_post notifications newer than their
/// last digest (at most `lookback_secs` old), a `notification_digests` row. Returns the users
/// planned now (a second run the same day plans nobody: the primary key).
pub fn plan_digests(c: &mut PgConnection, lookback_secs: i64) -> Result<Vec<i64>, RepoError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        user_id: i64,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "INSERT INTO notification_digests (user_id, day, first_id, last_id, posts)
         SELECT n.recipient_id, (now() AT TIME ZONE 'UTC')::date, min(n.id), max(n.id),
                count(*)
         FROM notifications n JOIN users u ON u.id = n.recipient_id
         WHERE n.kind = 'new_post' AND u.is_active AND u.email <> ''
           AND n.created_at > now() - make_interval(secs => $1)
           AND n.id > COALESCE((SELECT max(d.last_id) FROM notification_digests d
                                WHERE d.user_id = n.recipient_id), 0)
           AND NOT EXISTS (SELECT 1 FROM notification_settings s
                           WHERE s.user_id = n.recipient_id AND s.category = 'new_posts'
                             AND NOT s.email)
         GROUP BY n.recipient_id
         ON CONFLICT (user_id, day) DO NOTHING
         RETURNING user_id",
    )
    .bind::<diesel::sql_types::Double, _>(lookback_secs as f64)
    .load(c)
    .map_err(repo_error)?;
    Ok(rows.into_iter().map(|r| r.user_id).collect())
}

/// One post of a digest (a gated post: its title only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestPost {
    pub post_id: i64,
    pub creator: String,
    pub title: String,
    pub locked: bool,
    /// The body's preview (public posts only).
    pub preview: Option<String>,
}

/// What a digest mail is rendered from.
#[derive(Debug, Clone)]
pub struct DigestMail {
    pub user_id: i64,
    pub email: String,
    pub username: String,
    pub day: chrono::NaiveDate,
    pub email_on: bool,
    pub posts: Vec<DigestPost>,
}

/// Reads the digest planned for `user` on `day`; `None` when it (or an active recipient with
/// an address) is gone. Posts deleted since are left out; gated posts (now) carry no preview.
pub fn digest_mail(
    c: &mut PgConnection,
    user: i64,
    day: chrono::NaiveDate,
) -> Result<Option<DigestMail>, RepoError> {
    #[derive(QueryableByName)]
    struct Head {
        #[diesel(sql_type = Text)]
        email: String,
        #[diesel(sql_type = Text)]
        username: String,
        #[diesel(sql_type = BigInt)]
        first_id: i64,
        #[diesel(sql_type = BigInt)]
        last_id: i64,
    }
    let head: Option<Head> = diesel::sql_query(
        "SELECT u.email, u.username, d.first_id, d.last_id
         FROM notification_digests d JOIN users u ON u.id = d.user_id
         WHERE d.user_id = $1 AND d.day = $2 AND u.is_active AND u.email <> ''",
    )
    .bind::<BigInt, _>(user)
    .bind::<diesel::sql_types::Date, _>(day)
    .get_result(c)
    .optional()
    .map_err(repo_error)?;
    let Some(head) = head else { return Ok(None) };
    let rows: Vec<NotificationRow> = diesel::sql_query(format!(
        "{SELECT_NOTIFICATION}
         WHERE n.recipient_id = $1 AND n.kind = 'new_post' AND n.id BETWEEN $2 AND $3
           AND n.post_id IS NOT NULL
         ORDER BY n.created_at, n.id"
    ))
    .bind::<BigInt, _>(user)
    .bind::<BigInt, _>(head.first_id)
    .bind::<BigInt, _>(head.last_id)
    .load(c)
    .map_err(repo_error)?;
    let mut posts = Vec::with_capacity(rows.len());
    for r in rows {
        let n = r.into_domain()?;
        let d = &n.data;
        posts.push(DigestPost {
            post_id: n.post_id.unwrap_or_default(),
            creator: n.actor_name.unwrap_or_default(),
            title: d["title"].as_str().unwrap_or_default().to_owned(),
            locked: d["locked"].as_bool().unwrap_or(true),
            preview: d["preview"].as_str().map(str::to_owned),
        });
    }
    let email_on = PgNotify(c).preferences(user)?.get(Category::NewPosts).email;
    Ok(Some(DigestMail {
        user_id: user,
        email: head.email,
        username: head.username,
        day,
        email_on,
        posts,
    }))
}

/// The highest id of `user`'s shown notifications (0: none): where a fresh stream starts.
pub fn latest_shown_id(c: &mut PgConnection, user: i64) -> Result<i64, RepoError> {
    use crate::schema::notifications::dsl as n;
    let max: Option<i64> = n::notifications
        .filter(n::recipient_id.eq(user))
        .filter(n::shown)
        .select(diesel::dsl::max(n::id))
        .first(c)
        .map_err(repo_error)?;
    Ok(max.unwrap_or(0))
}

/// A round trip on a listening connection (finds a dead one).
pub fn ping(c: &mut PgConnection) -> Result<(), RepoError> {
    diesel::sql_query("SELECT 1")
        .execute(c)
        .map_err(repo_error)?;
    Ok(())
}
