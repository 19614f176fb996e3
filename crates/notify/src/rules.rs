//! THE rules: who is notified for what, with which words, and what a notification about a
//! post may carry.
use crate::model::*;
use crate::ports::{Audience, InboxRepo, NotifyRepo, PreferencesRepo};
use crate::NotifyError;
use serde_json::json;

/// `?max=` when absent, and its bounds (django-notifications-hq's `max` on the live lists).
pub const DEFAULT_MAX: i64 = 100;
pub const MAX_MAX: i64 = 100;
/// At most this many characters of a public post's body, or of a comment, are quoted.
pub const PREVIEW_CHARS: usize = 140;

fn excerpt(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() <= PREVIEW_CHARS {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(PREVIEW_CHARS - 1).collect();
    out.push('…');
    out
}

/// `INR 50.00`: amounts stay integer minor units in `data`; this is for the words only.
pub fn money(amount: i64, currency: &str) -> String {
    format!("{currency} {}.{:02}", amount / 100, amount % 100)
}

/// The visibility rule for notifications. What a notification may say about a post: its
/// title always (titles of locked posts are public, as in the feed), and a body preview only
/// when the post is public. A tier-gated post's body never enters a notification — not even
/// one sent to a member (the stored text cannot follow later changes of access).
pub fn post_data(post: &PostFacts) -> serde_json::Value {
    let mut d = json!({
        "post_id": post.id,
        "title": post.title,
        "locked": post.is_gated(),
    });
    if !post.is_gated() {
        d["preview"] = json!(excerpt(&post.body));
    }
    d
}

/// The same rule at read time: a notification about a post that is tier-gated NOW carries
/// no body preview, whatever was stored when it was public (a post can be gated after the
/// fact). Comments are quoted only to the post's creator, who always may see them.
pub fn as_seen_now(mut n: Notification, post_gated_now: bool) -> Notification {
    if post_gated_now {
        if let Some(d) = n.data.as_object_mut() {
            d.remove("preview");
            d.insert("locked".into(), json!(true));
        }
    }
    n
}

fn post_ref(post: &PostFacts) -> ObjRef {
    ObjRef::new("post", post.id, post.title.clone())
}

/// What `event` notifies, to whom. Self-notifications are never produced: the actor is never
/// a recipient. Facts that no longer exist (a deleted post) produce nothing.
pub fn notifications_for(
    repo: &mut impl NotifyRepo,
    event: &Event,
) -> Result<Vec<(NewNotification, Audience)>, NotifyError> {
    let mut out = Vec::new();
    match event {
        Event::PostPublished { post_id } => {
            if let Some(post) = repo.post(*post_id)? {
                let verb = if post.is_gated() {
                    "published a new post for members"
                } else {
                    "published a new post"
                };
                out.push((
                    NewNotification {
                        kind: Kind::NewPost,
                        actor_id: Some(post.creator_id),
                        verb: verb.into(),
                        target: None,
                        action_object: Some(post_ref(&post)),
                        post_id: Some(post.id),
                        occurred_at: Some(post.created_at),
                        event_key: format!("post:{}", post.id),
                        data: post_data(&post),
                    },
                    Audience::FollowersAndMembers {
                        creator: post.creator_id,
                    },
                ));
            }
        }
        Event::Commented { comment_id } => {
            if let Some(c) = repo.comment(*comment_id)? {
                // The post's creator may always see their post, so the comment may be quoted.
                if c.author_id != c.post.creator_id {
                    let mut data = post_data(&c.post);
                    data["comment_id"] = json!(c.id);
                    data["comment"] = json!(excerpt(&c.text));
                    out.push((
                        NewNotification {
                            kind: Kind::Comment,
                            actor_id: Some(c.author_id),
                            verb: "commented on your post".into(),
                            target: Some(post_ref(&c.post)),
                            action_object: Some(ObjRef::new("comment", c.id, excerpt(&c.text))),
                            post_id: Some(c.post.id),
                            occurred_at: Some(c.created_at),
                            event_key: format!("comment:{}", c.id),
                            data,
                        },
                        Audience::User(c.post.creator_id),
                    ));
                }
            }
        }
        Event::Liked { like_id } => {
            if let Some(l) = repo.like(*like_id)? {
                if l.user_id != l.post.creator_id {
                    out.push((
                        NewNotification {
                            kind: Kind::Like,
                            actor_id: Some(l.user_id),
                            verb: "liked your post".into(),
                            target: Some(post_ref(&l.post)),
                            action_object: None,
                            post_id: Some(l.post.id),
                            // Per user and post: unlike + like again does not notify twice.
                            occurred_at: Some(l.created_at),
                            event_key: format!("like:{}:{}", l.post.id, l.user_id),
                            data: post_data(&l.post),
                        },
                        Audience::User(l.post.creator_id),
                    ));
                }
            }
        }
        Event::Followed {
            follower_id,
            creator_id,
        } => {
            // Nothing when the follow is already gone (unfollowed before the job ran).
            let followed_at = repo.followed_at(*follower_id, *creator_id)?;
            if let (true, Some(at)) = (follower_id != creator_id, followed_at) {
                let name = repo.username(*creator_id)?.unwrap_or_default();
                out.push((
                    NewNotification {
                        kind: Kind::Follow,
                        actor_id: Some(*follower_id),
                        verb: "started following you".into(),
                        target: Some(ObjRef::new("user", *creator_id, name)),
                        action_object: None,
                        post_id: None,
                        occurred_at: Some(at),
                        event_key: format!("follow:{follower_id}"),
                        data: json!({ "follower_id": follower_id }),
                    },
                    Audience::User(*creator_id),
                ));
            }
        }
        Event::MembershipStarted { fan_id, creator_id } => {
            if fan_id != creator_id {
                if let Some(m) = repo.membership_of(*fan_id, *creator_id)? {
                    out.push((
                        NewNotification {
                            kind: Kind::Membership,
                            actor_id: Some(m.fan_id),
                            verb: format!("joined {}", m.tier_name),
                            target: Some(ObjRef::new("tier", m.tier_id, m.tier_name.clone())),
                            action_object: None,
                            post_id: None,
                            occurred_at: None,
                            event_key: format!("membership:{}", m.id),
                            data: json!({
                                "membership_id": m.id,
                                "tier_id": m.tier_id,
                                "tier": m.tier_name,
                                "membership_kind": m.kind,
                            }),
                        },
                        Audience::User(m.creator_id),
                    ));
                }
            }
        }
        Event::PaymentRecorded { payment_id } => {
            if let Some(p) = repo.payment(payment_id)? {
                out.extend(payment_notifications(&p));
            }
        }
        Event::SubscriptionChanged { subscription_id } => {
            if let Some(s) = repo.subscription(subscription_id)? {
                // A failed renewal charge shows as `pending` (Razorpay retries; the charge's
                // own `payment.failed` is not linked to the membership).
                if s.status == "pending" {
                    out.push((
                        NewNotification {
                            kind: Kind::PaymentFailed,
                            actor_id: Some(s.creator_id),
                            verb: format!(
                                "Your renewal payment for {} failed. It will be retried: please check your payment method.",
                                s.tier_name
                            ),
                            target: Some(ObjRef::new(
                                "membership",
                                s.membership_id,
                                s.tier_name.clone(),
                            )),
                            action_object: None,
                            post_id: None,
                            occurred_at: None,
                            event_key: format!("pending:{}:{}", s.membership_id, s.paid_count),
                            data: json!({ "membership_id": s.membership_id, "tier": s.tier_name }),
                        },
                        Audience::User(s.fan_id),
                    ));
                }
                if s.status == "halted" {
                    out.push((
                        NewNotification {
                            kind: Kind::MembershipHalted,
                            actor_id: Some(s.creator_id),
                            verb: format!(
                                "Your membership of {} is on hold: its renewal payments failed.",
                                s.tier_name
                            ),
                            target: Some(ObjRef::new(
                                "membership",
                                s.membership_id,
                                s.tier_name.clone(),
                            )),
                            action_object: None,
                            post_id: None,
                            // Once per halt: a membership halted again after a paid cycle
                            // notifies again.
                            occurred_at: None,
                            event_key: format!("halted:{}:{}", s.membership_id, s.paid_count),
                            data: json!({ "membership_id": s.membership_id, "tier": s.tier_name }),
                        },
                        Audience::User(s.fan_id),
                    ));
                }
            }
        }
        Event::PaymentRefunded { payment_id } => {
            if let Some(r) = repo.refund(payment_id)? {
                out.extend(refund_notifications(&r));
            }
        }
        Event::MembershipChanged {
            change_id,
            fan_id,
            creator_id,
            from_tier,
            to_tier,
            effective_at,
        } => {
            let when = effective_at
                .map(|t| format!(" from {}", t.format("%-d %b %Y")))
                .unwrap_or_default();
            let data = json!({
                "change_id": change_id,
                "from_tier": from_tier,
                "to_tier": to_tier,
                "effective_at": effective_at,
            });
            out.push((
                NewNotification {
                    kind: Kind::MembershipChanged,
                    actor_id: Some(*creator_id),
                    verb: format!("Your membership changed from {from_tier} to {to_tier}{when}."),
                    target: None,
                    action_object: None,
                    post_id: None,
                    occurred_at: None,
                    event_key: format!("change:{change_id}"),
                    data: data.clone(),
                },
                Audience::User(*fan_id),
            ));
            if fan_id != creator_id {
                out.push((
                    NewNotification {
                        kind: Kind::MembershipChanged,
                        actor_id: Some(*fan_id),
                        verb: format!(
                            "changed their membership from {from_tier} to {to_tier}{when}"
                        ),
                        target: None,
                        action_object: None,
                        post_id: None,
                        occurred_at: None,
                        event_key: format!("change:{change_id}"),
                        data,
                    },
                    Audience::User(*creator_id),
                ));
            }
        }
        Event::CreatorHiatus {
            hiatus_id,
            fan_id,
            creator_id,
            resumes_at,
        } => {
            let name = repo.username(*creator_id)?.unwrap_or_default();
            out.push((
                NewNotification {
                    kind: Kind::CreatorHiatus,
                    actor_id: Some(*creator_id),
                    verb: format!(
                        "{name} is taking a break until {}: your membership's charges are paused and your access stays.",
                        resumes_at.format("%-d %b %Y")
                    ),
                    target: Some(ObjRef::new("user", *creator_id, name)),
                    action_object: None,
                    post_id: None,
                    occurred_at: None,
                    event_key: format!("hiatus:{hiatus_id}"),
                    data: json!({ "hiatus_id": hiatus_id, "resumes_at": resumes_at }),
                },
                Audience::User(*fan_id),
            ));
        }
        Event::CommissionChanged {
            request_id,
            step,
            actor,
        } => {
            if let Some(c) = repo.commission(*request_id)? {
                out.extend(commission_notifications(&c, *step, *actor));
            }
        }
    }
    Ok(out)
}

/// A commission request's step: the creator hears of a paid or cancelled request, the fan of
/// everything the creator does and of a delivery completed by itself; nobody of their own step.
fn commission_notifications(
    c: &CommissionFacts,
    step: CommissionStep,
    actor: Option<i64>,
) -> Vec<(NewNotification, Audience)> {
    let price = money(c.amount, &c.currency);
    let (to, verb) = match step {
        CommissionStep::Paid => (
            vec![c.creator_id],
            format!("{} ordered \"{}\" ({price}).", c.fan_username, c.title),
        ),
        CommissionStep::Accepted => (
            vec![c.fan_id],
            format!(
                "{} accepted your request for \"{}\".",
                c.creator_username, c.title
            ),
        ),
        CommissionStep::Delivered => (
            vec![c.fan_id],
            format!("{} delivered \"{}\".", c.creator_username, c.title),
        ),
        CommissionStep::Rejected => (
            vec![c.fan_id],
            format!(
                "{} declined your request for \"{}\"; your {price} is refunded.",
                c.creator_username, c.title
            ),
        ),
        CommissionStep::Cancelled => (
            vec![c.creator_id],
            format!(
                "{} cancelled their request for \"{}\".",
                c.fan_username, c.title
            ),
        ),
        CommissionStep::Completed => (
            vec![c.fan_id, c.creator_id],
            format!("The request for \"{}\" is completed.", c.title),
        ),
    };
    to.into_iter()
        .filter(|r| Some(*r) != actor)
        .map(|r| {
            (
                NewNotification {
                    kind: Kind::Commission,
                    actor_id: actor,
                    verb: verb.clone(),
                    target: Some(ObjRef::new(
                        "commission_request",
                        c.request_id,
                        c.title.clone(),
                    )),
                    action_object: None,
                    post_id: None,
                    occurred_at: None,
                    event_key: format!("commission:{}:{}", c.request_id, step.as_str()),
                    data: json!({
                        "request_id": c.request_id,
                        "commission_id": c.commission_id,
                        "step": step.as_str(),
                        "title": c.title,
                        "amount": c.amount,
                        "currency": c.currency,
                    }),
                },
                Audience::User(r),
            )
        })
        .collect()
}

/// An automatic refund: the fan is told their money is coming back and why; the creator that
/// a payment for their tier was returned (and why, so they see what their change did).
fn refund_notifications(r: &RefundFacts) -> Vec<(NewNotification, Audience)> {
    let what = r.tier_name.clone().unwrap_or_else(|| "a tier".to_owned());
    let data = json!({
        "payment_id": r.razorpay_payment_id,
        "amount": r.amount,
        "currency": r.currency,
        "tier_id": r.tier_id,
        "tier": r.tier_name,
        "reason": r.reason,
    });
    let note = |verb: String, actor: Option<i64>| NewNotification {
        kind: Kind::PaymentRefunded,
        actor_id: actor,
        verb,
        target: r.tier_id.map(|id| ObjRef::new("tier", id, what.clone())),
        action_object: None,
        post_id: None,
        occurred_at: None,
        event_key: format!("refund:{}", r.razorpay_payment_id),
        data: data.clone(),
    };
    let mut out = Vec::new();
    if let Some(fan) = r.fan_id {
        out.push((
            note(
                format!(
                    "Your payment of {} for {what} was refunded: {}.",
                    money(r.amount, &r.currency),
                    r.reason
                ),
                r.creator_id.filter(|c| *c != fan),
            ),
            Audience::User(fan),
        ));
    }
    if let Some(creator) = r.creator_id.filter(|c| Some(*c) != r.fan_id) {
        out.push((
            note(
                format!(
                    "A payment of {} for {what} was refunded automatically: {}.",
                    money(r.amount, &r.currency),
                    r.reason
                ),
                r.fan_id,
            ),
            Audience::User(creator),
        ));
    }
    out
}

fn payment_notifications(p: &PaymentFacts) -> Vec<(NewNotification, Audience)> {
    let mut out = Vec::new();
    let paid = matches!(p.status.as_str(), "authorized" | "captured") || p.order_paid;
    if p.kind == "cheer" && paid {
        if let Some(creator) = p.creator_id.filter(|c| Some(*c) != p.user_id) {
            let key = match p.order_id {
                Some(o) => format!("cheer:order:{o}"),
                None => format!("cheer:payment:{}", p.razorpay_payment_id),
            };
            let name = p.name.trim();
            out.push((
                NewNotification {
                    kind: Kind::Cheer,
                    actor_id: p.user_id,
                    verb: format!("cheered you with {}", money(p.amount, &p.currency)),
                    target: None,
                    action_object: Some(ObjRef::new(
                        "cheer",
                        p.order_id.unwrap_or_default(),
                        if name.is_empty() { "a fan" } else { name },
                    )),
                    post_id: None,
                    occurred_at: None,
                    event_key: key,
                    data: json!({
                        "name": p.name,
                        "message": p.message,
                        "amount": p.amount,
                        "currency": p.currency,
                    }),
                },
                Audience::User(creator),
            ));
        }
    }
    if paid {
        if let Some(fan) = p.user_id {
            out.push((receipt(p), Audience::User(fan)));
        }
    }
    if p.status == "failed" && !p.order_paid {
        if let Some(fan) = p.user_id {
            let what = p
                .tier_name
                .clone()
                .unwrap_or_else(|| p.kind.replace('_', "-"));
            out.push((
                NewNotification {
                    kind: Kind::PaymentFailed,
                    actor_id: p.creator_id.filter(|c| *c != fan),
                    verb: format!(
                        "Your payment of {} for {what} failed.",
                        money(p.amount, &p.currency)
                    ),
                    target: None,
                    action_object: None,
                    post_id: None,
                    occurred_at: None,
                    event_key: format!("payment:{}", p.razorpay_payment_id),
                    data: json!({
                        "payment_id": p.razorpay_payment_id,
                        "payment_kind": p.kind,
                        "amount": p.amount,
                        "currency": p.currency,
                        "tier": p.tier_name,
                    }),
                },
                Audience::User(fan),
            ));
        }
    }
    out
}

/// The receipt of a successful payment, for the payer: amount, currency, what it paid for
/// (tier and period, or the cheer), the Razorpay payment id and the creator.
fn receipt(p: &PaymentFacts) -> NewNotification {
    let what = match (p.kind.as_str(), &p.tier_name) {
        ("cheer", _) => "a cheer".to_owned(),
        (_, Some(t)) => t.clone(),
        (k, None) => k.replace('_', "-"),
    };
    NewNotification {
        kind: Kind::Receipt,
        actor_id: p.creator_id.filter(|c| Some(*c) != p.user_id),
        verb: format!(
            "Your payment of {} for {what} was received.",
            money(p.amount, &p.currency)
        ),
        target: None,
        action_object: None,
        post_id: None,
        occurred_at: None,
        event_key: format!("receipt:{}", p.razorpay_payment_id),
        data: json!({
            "payment_id": p.razorpay_payment_id,
            "payment_kind": p.kind,
            "amount": p.amount,
            "currency": p.currency,
            "tier": p.tier_name,
            "creator_id": p.creator_id,
            "creator": p.creator_name,
            "period_start": p.period_start,
            "period_end": p.period_end,
        }),
    }
}

/// The "access ends soon" warning of one membership, to its fan. Keyed by membership and end
/// of access, so a membership is warned once per period (a renewed or extended one again).
pub fn access_ending(f: &AccessEndingFacts) -> (NewNotification, Audience) {
    let day = f.ends_at.format("%-d %b %Y");
    let verb = match f.kind.as_str() {
        "one_time" => format!("Your access to {} ends on {day}.", f.tier_name),
        _ => format!(
            "Your cancelled membership of {} ends on {day}; it will not renew.",
            f.tier_name
        ),
    };
    (
        NewNotification {
            kind: Kind::AccessEnding,
            actor_id: Some(f.creator_id).filter(|c| *c != f.fan_id),
            verb,
            target: None,
            action_object: None,
            post_id: None,
            occurred_at: None,
            event_key: format!("membership:{}:{}", f.membership_id, f.ends_at.timestamp()),
            data: json!({
                "membership_id": f.membership_id,
                "membership_kind": f.kind,
                "tier": f.tier_name,
                "creator_id": f.creator_id,
                "creator": f.creator_name,
                "ends_at": f.ends_at,
            }),
        },
        Audience::User(f.fan_id),
    )
}

/// Runs one event's fan-out: idempotent (re-running inserts nothing new). Returns the
/// notifications it stored (the caller queues their mails).
pub fn fan_out(repo: &mut impl NotifyRepo, event: &Event) -> Result<Vec<Delivered>, NotifyError> {
    let mut out = Vec::new();
    for (note, audience) in notifications_for(repo, event)? {
        out.extend(repo.insert(&note, audience)?);
    }
    Ok(out)
}

/// The caller's notification settings.
pub fn preferences(repo: &mut impl PreferencesRepo, user: i64) -> Result<Preferences, NotifyError> {
    Ok(repo.preferences(user)?)
}

/// Applies a PATCH of the settings: an object keyed by category, each with `in_app` and/or
/// `email` booleans (any subset). Receipts and security mails cannot be turned off by email;
/// social notifications are never mailed. Nothing is stored unless all of it is valid.
pub fn update_preferences(
    repo: &mut impl PreferencesRepo,
    user: i64,
    patch: &serde_json::Value,
) -> Result<Preferences, NotifyError> {
    let Some(patch) = patch.as_object() else {
        return Err(NotifyError::Invalid {
            field: "non_field_errors",
            message: "Expected an object keyed by category.".into(),
        });
    };
    let mut prefs = repo.preferences(user)?;
    for (key, value) in patch {
        let Some(category) = Category::parse(key) else {
            return Err(NotifyError::Invalid {
                field: "non_field_errors",
                message: format!(
                    "Unknown category \"{key}\"; expected one of: {}.",
                    Category::ALL.map(Category::as_str).join(", ")
                ),
            });
        };
        let field = category.as_str();
        let invalid = |message: &str| NotifyError::Invalid {
            field,
            message: message.to_owned(),
        };
        let Some(obj) = value.as_object() else {
            return Err(invalid(
                "Expected an object with \"in_app\" and/or \"email\".",
            ));
        };
        let mut ch = prefs.get(category);
        for (k, v) in obj {
            let Some(on) = v.as_bool() else {
                return Err(invalid(&format!("\"{k}\" must be a boolean.")));
            };
            match k.as_str() {
                "in_app" => ch.in_app = on,
                "email" => ch.email = on,
                _ => {
                    return Err(invalid(&format!(
                        "Unknown setting \"{k}\"; expected \"in_app\" or \"email\"."
                    )))
                }
            }
        }
        if category.email_required() && !ch.email {
            return Err(invalid("These emails cannot be turned off (only in-app)."));
        }
        if category.in_app_only() && ch.email {
            return Err(invalid("These notifications are never emailed."));
        }
        prefs.0.insert(category, ch);
    }
    repo.save_preferences(user, &prefs)?;
    Ok(prefs)
}

/// Validates `?max=` (1..=100, default 100).
fn max_param(max: Option<&str>) -> Result<i64, NotifyError> {
    let Some(raw) = max else {
        return Ok(DEFAULT_MAX);
    };
    match raw.trim().parse::<i64>() {
        Ok(n) if (1..=MAX_MAX).contains(&n) => Ok(n),
        _ => Err(NotifyError::Invalid {
            field: "max",
            message: format!("Ensure this value is an integer between 1 and {MAX_MAX}."),
        }),
    }
}

/// The caller's inbox: counts and the newest `max` of all / unread notifications.
pub fn inbox(
    repo: &mut impl InboxRepo,
    recipient: i64,
    max: Option<&str>,
) -> Result<Inbox, NotifyError> {
    let max = max_param(max)?;
    Ok(repo.inbox(recipient, max)?)
}

pub fn unread_count(repo: &mut impl InboxRepo, recipient: i64) -> Result<i64, NotifyError> {
    Ok(repo.unread_count(recipient)?)
}

pub fn mark_all_read(repo: &mut impl InboxRepo, recipient: i64) -> Result<u64, NotifyError> {
    Ok(repo.mark_all_read(recipient)?)
}

/// Marks one of the caller's notifications read; someone else's is "not found".
pub fn mark_read(
    repo: &mut impl InboxRepo,
    recipient: i64,
    id: i64,
) -> Result<Notification, NotifyError> {
    repo.mark_read(recipient, id)?.ok_or(NotifyError::NotFound)
}

/// Deletes one of the caller's notifications; someone else's is "not found".
pub fn delete(repo: &mut impl InboxRepo, recipient: i64, id: i64) -> Result<(), NotifyError> {
    if repo.delete(recipient, id)? {
        Ok(())
    } else {
        Err(NotifyError::NotFound)
    }
}

/// The live stream's catch-up: the recipient's shown notifications above `after`, in id order
/// (at most `max`).
pub fn since(
    repo: &mut impl InboxRepo,
    recipient: i64,
    after: i64,
    max: i64,
) -> Result<Vec<Notification>, NotifyError> {
    Ok(repo.since(recipient, after, max.clamp(1, MAX_MAX))?)
}
