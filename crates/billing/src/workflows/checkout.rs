//! Starting and ending memberships, one-time purchases, cheers and commission payments.
//!
//! Every start follows one shape: check the target in the store, ask the gateway for the
//! Razorpay object (between transactions: never wait on the network inside one), store what
//! was asked (amount, currency, typed [`CheckoutNotes`]) and answer its id for Checkout.
use crate::checkout::{Cheer, EndType};
use crate::gateway::{
    BillingPeriod, OrderRequest, PaymentGateway, PlanRequest, SubscriptionRequest,
};
use crate::integrity::{self, Asked, VoidReason};
use crate::notes::{CheckoutNotes, Payer};
use crate::ports::{Announcement, BillingDb, NewOrder, Offer, OrderKind, Reservation, TierForSale};
use crate::{BillingError, MembershipKind, MembershipStatus};
use oasis_kernel::Timestamp;
use std::future::Future;
use std::time::Duration;

/// How long a start waits for a concurrent start of the same fan and tier to store its
/// subscription id before answering [`BillingError::InProgress`].
pub const RESERVATION_WAIT: Duration = Duration::from_secs(15);
/// How often the waiting start looks again.
pub const RESERVATION_POLL: Duration = Duration::from_millis(100);
/// A reservation without a subscription id older than this was abandoned mid-flight (a crash
/// between the gateway's answer and our commit): it is dropped and the start retried.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(120);

/// The waiting loop's sleep (the shell: tokio's timer; tests: an instant one).
pub trait Pause: Send + Sync {
    fn pause(&self, d: Duration) -> impl Future<Output = ()> + Send;
}

/// Who pays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buyer {
    pub id: i64,
    pub username: String,
}

/// A started checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// `sub_…` or `order_…`: what Checkout opens.
    pub id: String,
    /// A pending checkout made at an older price was voided on the way (its cancellation at
    /// the gateway is queued): the shell wakes the job runner.
    pub replaced_stale: bool,
}

/// What ending a membership did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Ended,
    /// The caller has no membership of the tier that can be ended.
    NothingToEnd,
}

/// A tier that can be bought with money by `buyer`.
pub async fn paid_tier(
    db: &impl BillingDb,
    tier_id: i64,
    buyer: i64,
) -> Result<TierForSale, BillingError> {
    let tier = db
        .tx(move |t| Ok(t.store().tier_for_sale(tier_id)?))
        .await?
        .ok_or_else(|| BillingError::invalid("tierID", "Tier not found."))?;
    if !tier.tier.is_active {
        return Err(BillingError::invalid(
            "tierID",
            "This tier accepts no new members.",
        ));
    }
    if tier.tier.price == 0 {
        return Err(BillingError::invalid(
            "tierID",
            "This is a free tier: join it with /subscriptions/subscribe_to_public_tier.",
        ));
    }
    if tier.tier.creator_id == buyer {
        return Err(BillingError::invalid(
            "tierID",
            "You cannot subscribe to your own tier.",
        ));
    }
    Ok(tier)
}

enum Step {
    Done(String),
    Wait,
    Retry,
    Replaced,
    Create {
        membership_id: i64,
        plan: Option<String>,
        /// The subscription's first charge (`start_at`) when later than now: the trial's end,
        /// or the end of the creator's hiatus.
        first_charge: Option<Timestamp>,
    },
}

/// `t` to the whole second (Razorpay's `start_at` is Unix seconds).
fn whole_seconds(t: Timestamp) -> Timestamp {
    chrono::DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// One look at the reservation of (fan, tier) at `at`.
fn reservation_step(
    store: &mut (impl crate::ports::BillingStore + ?Sized),
    fan: i64,
    tier: &TierForSale,
    offer: &Offer,
    at: Timestamp,
) -> Result<Step, BillingError> {
    let plan = store.plan_id(offer)?;
    let m = match store.reserve_recurring(fan, offer)? {
        Reservation::New(membership_id) => {
            let creator = tier.tier.creator_id;
            // Joining while the creator's page is on hiatus: access at once, the first charge
            // when the hiatus ends (the members' charges are skipped until then too).
            let hiatus = store.open_hiatus(creator, at)?;
            let from = hiatus.map_or(at, |h| h.resumes_at.max(at));
            // A fan's first membership of the creator starts with the tier's trial, if any
            // (after the hiatus: the break is not the trial).
            let trial_end = if tier.trial_days > 0 {
                let end = whole_seconds(from + chrono::Duration::days(tier.trial_days));
                store
                    .start_trial(membership_id, fan, creator, end)?
                    .then_some(end)
            } else {
                None
            };
            let first_charge = match (trial_end, hiatus) {
                (Some(end), _) => Some(end),
                (None, Some(_)) => Some(whole_seconds(from)),
                (None, None) => None,
            };
            if let (Some(h), Some(first)) = (hiatus, first_charge) {
                store.join_during_hiatus(membership_id, &h, first)?;
            }
            return Ok(Step::Create {
                membership_id,
                plan,
                first_charge,
            });
        }
        Reservation::Existing(m) => m,
    };
    Ok(match m.subscription_id {
        Some(sid) if m.status == MembershipStatus::Created => {
            let asked = Asked {
                amount: m.amount,
                currency: &m.currency,
                period: m.period,
            };
            if m.period == offer.period && integrity::reusable(&asked, &tier.tier) {
                Step::Done(sid)
            } else {
                // Made at another price or period: cancel it at the gateway (best effort, recorded; a
                // payment that still comes is refunded) and make a new one.
                store.void_membership(m.id, VoidReason::Replaced, at)?;
                store.request_subscription_cancel(m.id, &sid, VoidReason::Replaced)?;
                Step::Replaced
            }
        }
        Some(_) => return Err(BillingError::AlreadySubscribed),
        None if m.created_at
            < at - chrono::Duration::from_std(ABANDONED_AFTER).unwrap_or_default() =>
        {
            store.drop_reservation(m.id)?;
            Step::Retry
        }
        None => Step::Wait,
    })
}

/// Starts (or returns the pending) recurring membership of `fan` in `tier_id`, billed per
/// `period` (a yearly one at the tier's `annual_price`; refused when the tier has none). Two
/// concurrent calls share one subscription: the store admits one reservation; the other call
/// waits for its subscription id. A failed gateway call drops the reservation. A pending
/// checkout of the other period is replaced (one live membership per fan and tier).
pub async fn start_recurring(
    db: &impl BillingDb,
    gateway: &impl PaymentGateway,
    pause: &impl Pause,
    now: Timestamp,
    fan: i64,
    tier_id: i64,
    period: BillingPeriod,
) -> Result<Started, BillingError> {
    let tier = paid_tier(db, tier_id, fan).await?;
    let offer = tier.tier.offer(period).ok_or_else(|| {
        BillingError::invalid("period", "This tier is not sold yearly: choose monthly.")
    })?;
    let mut waited = Duration::ZERO;
    let mut replaced_stale = false;
    loop {
        let at = now + chrono::Duration::from_std(waited).unwrap_or_default();
        let (t, o) = (tier.clone(), offer.clone());
        let step = db
            .tx(move |tx| reservation_step(tx.store(), fan, &t, &o, at))
            .await?;
        match step {
            Step::Done(id) => return Ok(Started { id, replaced_stale }),
            Step::Retry => continue,
            Step::Replaced => {
                replaced_stale = true;
                continue;
            }
            Step::Wait => {
                if waited >= RESERVATION_WAIT {
                    return Err(BillingError::InProgress);
                }
                pause.pause(RESERVATION_POLL).await;
                waited += RESERVATION_POLL;
            }
            Step::Create {
                membership_id,
                plan,
                first_charge,
            } => {
                return match create_subscription(
                    db,
                    gateway,
                    &tier,
                    &offer,
                    plan,
                    fan,
                    first_charge,
                )
                .await
                {
                    Ok(sid) => {
                        let s = sid.clone();
                        db.tx(move |tx| Ok(tx.store().attach_subscription(membership_id, &s)?))
                            .await?;
                        Ok(Started {
                            id: sid,
                            replaced_stale,
                        })
                    }
                    Err(e) => {
                        // Best effort: an undropped reservation is dropped as abandoned later.
                        let _ = db
                            .tx(move |tx| Ok(tx.store().drop_reservation(membership_id)?))
                            .await;
                        Err(e)
                    }
                };
            }
        }
    }
}

/// The Razorpay plan of `offer`: reused when made before, else created and stored.
pub async fn plan_for(
    db: &impl BillingDb,
    gateway: &impl PaymentGateway,
    tier_name: &str,
    offer: &Offer,
    known: Option<String>,
) -> Result<String, BillingError> {
    if let Some(p) = known {
        return Ok(p);
    }
    let p = gateway
        .create_plan(&PlanRequest {
            tier_id: offer.tier_id,
            name: tier_name.chars().take(100).collect(),
            amount: offer.amount,
            currency: offer.currency.clone(),
            period: offer.period,
        })
        .await?;
    let o = offer.clone();
    db.tx(move |tx| Ok(tx.store().save_plan(&o, &p)?)).await
}

async fn create_subscription(
    db: &impl BillingDb,
    gateway: &impl PaymentGateway,
    tier: &TierForSale,
    offer: &Offer,
    plan: Option<String>,
    fan: i64,
    first_charge: Option<Timestamp>,
) -> Result<String, BillingError> {
    let plan_id = plan_for(db, gateway, &tier.name, offer, plan).await?;
    Ok(gateway
        .create_subscription(&SubscriptionRequest {
            plan_id,
            total_count: offer.period.total_count(),
            notes: CheckoutNotes::Recurring {
                payer: Payer::Id(fan),
                tier_id: offer.tier_id,
                period: offer.period,
            },
            start_at: first_charge,
            change_id: None,
        })
        .await?)
}

/// Creates a gateway order for `new`'s amount and currency, then stores `new` with the
/// gateway's order id and the notes sent.
async fn order(
    db: &impl BillingDb,
    gateway: &impl PaymentGateway,
    receipt: String,
    notes: CheckoutNotes,
    new: NewOrder,
) -> Result<String, BillingError> {
    let id = gateway
        .create_order(&OrderRequest {
            amount: new.amount,
            currency: new.currency.clone(),
            receipt,
            notes: notes.clone(),
        })
        .await?;
    let stored = NewOrder {
        razorpay_order_id: id.clone(),
        notes: serde_json::to_value(notes.to_map()).unwrap_or_default(),
        ..new
    };
    db.tx(move |tx| {
        tx.store().insert_order(&stored)?;
        Ok(())
    })
    .await?;
    Ok(id)
}

/// Starts a one-time purchase of a tier (one period of access, no renewal). `currency`, when
/// given, must be the tier's.
pub async fn start_onetime(
    db: &impl BillingDb,
    gateway: &impl PaymentGateway,
    now: Timestamp,
    buyer: &Buyer,
    tier_id: i64,
    currency: Option<&str>,
) -> Result<Started, BillingError> {
    let tier = paid_tier(db, tier_id, buyer.id).await?.tier;
    if let Some(cur) = currency.map(str::trim).filter(|c| !c.is_empty()) {
        if !cur.eq_ignore_ascii_case(&tier.currency) {
            return Err(BillingError::invalid(
                "currency",
                format!("This tier is priced in {}.", tier.currency),
            ));
        }
    }
    let notes = CheckoutNotes::OneTime {
        payer: Payer::Id(buyer.id),
        username: Some(buyer.username.clone()),
        tier_id: tier.id,
    };
    let receipt = format!("ot-{}-{}-{}", buyer.id, tier.id, now.timestamp());
    let id = order(
        db,
        gateway,
        receipt,
        notes,
        NewOrder {
            razorpay_order_id: String::new(),
            kind: OrderKind::OneTime,
            user_id: Some(buyer.id),
            creator_id: Some(tier.creator_id),
            tier_id: Some(tier.id),
            reference_id: None,
            amount: tier.price,
            currency: tier.currency.clone(),
            name: String::new(),
            message: String::new(),
            notes: serde_json::Value::Null,
        },
    )
    .await?;
    Ok(Started {
        id,
        replaced_stale: false,
    })
}

/// Starts a cheer (a tip with a message; validated by [`crate::checkout::validate_cheer`]) to
/// a creator. The public name defaults to the payer's username.
pub async fn start_cheer(
    db: &impl BillingDb,
    gateway: &impl PaymentGateway,
    now: Timestamp,
    payer: &Buyer,
    creator_id: i64,
    cheer: Cheer,
) -> Result<Started, BillingError> {
    if !db
        .tx(move |t| Ok(t.store().is_creator(creator_id)?))
        .await?
    {
        return Err(BillingError::invalid("creatorID", "Creator not found."));
    }
    // Tipping oneself would only pad one's own cheers and stats (and pay Razorpay's fee).
    if creator_id == payer.id {
        return Err(BillingError::invalid(
            "creatorID",
            "You cannot cheer yourself.",
        ));
    }
    let display = if cheer.name.is_empty() {
        payer.username.clone()
    } else {
        cheer.name.clone()
    };
    let notes = CheckoutNotes::Cheer {
        creator_id,
        payer: Some(Payer::Username(payer.username.clone())),
        name: display.clone(),
        message: cheer.message.clone(),
    };
    let receipt = format!("cheer-{}-{}", payer.id, now.timestamp());
    let id = order(
        db,
        gateway,
        receipt,
        notes,
        NewOrder {
            razorpay_order_id: String::new(),
            kind: OrderKind::Cheer,
            user_id: Some(payer.id),
            creator_id: Some(creator_id),
            tier_id: None,
            reference_id: None,
            amount: cheer.amount,
            currency: cheer.currency.code().to_owned(),
            name: display,
            message: cheer.message,
            notes: serde_json::Value::Null,
        },
    )
    .await?;
    Ok(Started {
        id,
        replaced_stale: false,
    })
}

/// A commission's payment to start (for the commissions domain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommissionPayment {
    pub commission_id: i64,
    pub creator_id: i64,
    /// Integer minor units.
    pub amount: i64,
    pub currency: String,
    /// The request paid for (its id and texts go into the notes, as in the seed's payload).
    pub request: Option<crate::notes::CommissionRequestNotes>,
}

/// Starts the payment of a commission: an order with notes `{type: commission, creatorID,
/// username, commissionID, requestID, description, contactDetails, status, mode_of_delivery}`
/// stored as a `commission` order. Its accepted payment is announced
/// ([`Announcement::CommissionPaid`]) in the transaction that records it. Its payment is recorded once (the
/// webhook, the Checkout callback or reconciliation, like any order).
pub async fn start_commission_order(
    db: &impl BillingDb,
    gateway: &impl PaymentGateway,
    now: Timestamp,
    payer: &Buyer,
    c: &CommissionPayment,
) -> Result<Started, BillingError> {
    let cur: oasis_kernel::Currency =
        c.currency
            .parse()
            .map_err(|e: oasis_kernel::ParseCurrencyError| {
                BillingError::invalid("currency", e.to_string())
            })?;
    if c.amount < cur.min_charge() || c.amount > cur.max_charge() {
        return Err(BillingError::invalid(
            "amount",
            "Amount out of bounds for the currency.",
        ));
    }
    let notes = CheckoutNotes::Commission {
        creator_id: c.creator_id,
        payer: Some(Payer::Username(payer.username.clone())),
        commission_id: c.commission_id,
        request: c.request.clone(),
    };
    let receipt = format!("comm-{}-{}", c.commission_id, now.timestamp());
    let id = order(
        db,
        gateway,
        receipt,
        notes,
        NewOrder {
            razorpay_order_id: String::new(),
            kind: OrderKind::Commission,
            user_id: Some(payer.id),
            creator_id: Some(c.creator_id),
            tier_id: None,
            reference_id: Some(c.commission_id),
            amount: c.amount,
            currency: cur.code().to_owned(),
            name: String::new(),
            message: String::new(),
            notes: serde_json::Value::Null,
        },
    )
    .await?;
    Ok(Started {
        id,
        replaced_stale: false,
    })
}

/// Joins a creator's free (price 0) tier; `true` when joined now, `false` when already a
/// member. A new member follows the creator (announced).
pub async fn join_free_tier(
    db: &impl BillingDb,
    fan: i64,
    tier_id: i64,
) -> Result<bool, BillingError> {
    db.tx(move |t| {
        let tier = t
            .store()
            .find_tier(tier_id)?
            .ok_or_else(|| BillingError::invalid("tierID", "Tier not found."))?;
        if tier.price != 0 {
            return Err(BillingError::invalid("tierID", "This tier is not free."));
        }
        if !tier.is_active {
            return Err(BillingError::invalid(
                "tierID",
                "This tier accepts no new members.",
            ));
        }
        // As for paid tiers: a creator is never a member (nor a follower) of themselves.
        if tier.creator_id == fan {
            return Err(BillingError::invalid(
                "tierID",
                "You cannot subscribe to your own tier.",
            ));
        }
        let joined = t.store().join_free_tier(fan, &tier)?;
        if joined {
            t.announce(&Announcement::MembershipStarted {
                fan,
                creator: tier.creator_id,
            })?;
        }
        Ok(joined)
    })
    .await
}

/// Ends the caller's membership of a tier: a free one locally, now; a recurring one at the
/// gateway (now or at the end of the paid cycle), then its answer is applied.
pub async fn end_membership(
    db: &impl BillingDb,
    gateway: &impl PaymentGateway,
    now: Timestamp,
    fan: i64,
    tier_id: i64,
    end: EndType,
) -> Result<Ended, BillingError> {
    let Some(m) = db
        .tx(move |t| Ok(t.store().lock_endable_membership(fan, tier_id)?))
        .await?
    else {
        return Ok(Ended::NothingToEnd);
    };
    if m.kind == MembershipKind::Free {
        db.tx(move |t| Ok(t.store().cancel_membership(m.id, false, now)?))
            .await?;
        return Ok(Ended::Ended);
    }
    let Some(sid) = m.subscription_id.clone() else {
        return Ok(Ended::NothingToEnd);
    };
    let at_end = end == EndType::CycleEnd;
    let remote = gateway.cancel_subscription(&sid, at_end, now).await?;
    db.tx(move |t| {
        let applied =
            crate::apply::apply_subscription(t.store(), &remote.snapshot, &remote.notes, now)?;
        if let Some((fan, creator)) = applied.started {
            t.announce(&Announcement::MembershipStarted { fan, creator })?;
        }
        t.store().cancel_membership(m.id, at_end, now)?;
        Ok(())
    })
    .await?;
    Ok(Ended::Ended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkout::validate_cheer;
    use crate::gateway::{GatewayError, RefundReceipt, RemoteSubscription};
    use crate::memory::{MemoryDb, MemoryStore};
    use crate::memory_gateway::MemoryGateway;
    use crate::ports::{BillingStore, CheckoutStore, Order, TierRef};
    use crate::reconcile::InvoiceSnapshot;
    use crate::{OrderSnapshot, PaymentSnapshot};
    use chrono::{TimeZone, Utc};
    use std::pin::Pin;
    use std::task::{Context, Poll};

    const FAN: i64 = 1;
    const CREATOR: i64 = 2;
    const PAID: i64 = 7;
    const FREE: i64 = 8;

    fn t(s: i64) -> Timestamp {
        Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
    }

    fn tier(id: i64, price: i64) -> TierRef {
        TierRef {
            id,
            creator_id: CREATOR,
            price,
            annual_price: None,
            currency: "INR".into(),
            is_active: true,
        }
    }

    fn world() -> MemoryDb {
        let mut s = MemoryStore::default();
        s.add_user(FAN, "fan");
        s.add_creator(CREATOR, "maker");
        s.put_tier_named(tier(PAID, 50_000), "Gold");
        s.put_tier_named(tier(FREE, 0), "Friends");
        s.set_clock(t(0));
        MemoryDb::new(s)
    }

    fn fan() -> Buyer {
        Buyer {
            id: FAN,
            username: "fan".into(),
        }
    }

    /// Answers `Pending` once, then `Ready`: lets another future run.
    struct YieldOnce(bool);

    impl Future for YieldOnce {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                Poll::Ready(())
            } else {
                self.0 = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    /// A pause that takes no time (it only yields).
    struct Instant;

    impl Pause for Instant {
        fn pause(&self, _: Duration) -> impl Future<Output = ()> + Send {
            YieldOnce(false)
        }
    }

    /// A gateway whose subscriptions take a while to create (it yields first).
    struct Slow(MemoryGateway);

    impl PaymentGateway for Slow {
        fn public_key(&self) -> &str {
            self.0.public_key()
        }
        async fn create_plan(&self, p: &PlanRequest) -> Result<String, GatewayError> {
            self.0.create_plan(p).await
        }
        async fn create_subscription(
            &self,
            r: &SubscriptionRequest,
        ) -> Result<String, GatewayError> {
            YieldOnce(false).await;
            YieldOnce(false).await;
            self.0.create_subscription(r).await
        }
        async fn find_change_subscription(
            &self,
            plan_id: &str,
            change_id: i64,
            since: Timestamp,
        ) -> Result<Option<String>, GatewayError> {
            self.0
                .find_change_subscription(plan_id, change_id, since)
                .await
        }
        async fn fetch_subscription(
            &self,
            id: &str,
            now: Timestamp,
        ) -> Result<RemoteSubscription, GatewayError> {
            self.0.fetch_subscription(id, now).await
        }
        async fn cancel_subscription(
            &self,
            id: &str,
            at_end: bool,
            now: Timestamp,
        ) -> Result<RemoteSubscription, GatewayError> {
            self.0.cancel_subscription(id, at_end, now).await
        }
        async fn subscription_invoices(
            &self,
            id: &str,
        ) -> Result<Vec<InvoiceSnapshot>, GatewayError> {
            self.0.subscription_invoices(id).await
        }
        async fn create_order(&self, r: &OrderRequest) -> Result<String, GatewayError> {
            self.0.create_order(r).await
        }
        async fn update_subscription(
            &self,
            id: &str,
            plan_id: &str,
            at_cycle_end: bool,
            now: Timestamp,
        ) -> Result<RemoteSubscription, GatewayError> {
            self.0
                .update_subscription(id, plan_id, at_cycle_end, now)
                .await
        }
        async fn pause_subscription(
            &self,
            id: &str,
            now: Timestamp,
        ) -> Result<RemoteSubscription, GatewayError> {
            self.0.pause_subscription(id, now).await
        }
        async fn resume_subscription(
            &self,
            id: &str,
            now: Timestamp,
        ) -> Result<RemoteSubscription, GatewayError> {
            self.0.resume_subscription(id, now).await
        }
        async fn fetch_order(&self, id: &str) -> Result<OrderSnapshot, GatewayError> {
            self.0.fetch_order(id).await
        }
        async fn order_payments(&self, id: &str) -> Result<Vec<PaymentSnapshot>, GatewayError> {
            self.0.order_payments(id).await
        }
        async fn fetch_payment(&self, id: &str) -> Result<Option<PaymentSnapshot>, GatewayError> {
            self.0.fetch_payment(id).await
        }
        async fn payment_refunds(&self, id: &str) -> Result<Vec<RefundReceipt>, GatewayError> {
            self.0.payment_refunds(id).await
        }
        async fn refund(
            &self,
            id: &str,
            amount: i64,
            key: &str,
        ) -> Result<RefundReceipt, GatewayError> {
            self.0.refund(id, amount, key).await
        }
    }

    fn start(
        db: &MemoryDb,
        gw: &impl PaymentGateway,
        now: Timestamp,
    ) -> Result<Started, BillingError> {
        pollster::block_on(start_recurring(
            db,
            gw,
            &Instant,
            now,
            FAN,
            PAID,
            BillingPeriod::Monthly,
        ))
    }

    fn live(db: &MemoryDb) -> Vec<crate::ports::Membership> {
        db.with(|s| s.memberships())
            .into_iter()
            .filter(|m| m.state.status.is_live())
            .collect()
    }

    fn invalid_field(r: Result<impl std::fmt::Debug, BillingError>) -> &'static str {
        match r {
            Err(BillingError::Invalid { field, .. }) => field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn a_fan_joining_during_a_hiatus_pays_first_at_its_end_and_a_trial_starts_after_it() {
        let (db, gw) = (world(), MemoryGateway::new());
        let resumes = t(5_000_000);
        db.with(|s| {
            s.set_trial_days(PAID, 7);
            s.set_hiatus(CREATOR, 41, resumes);
        });
        let first = start(&db, &gw, t(10)).unwrap();
        let trial_end = resumes + chrono::Duration::days(7);
        assert_eq!(gw.start_at(&first.id), Some(trial_end));
        let (m, _) = db.with(|s| s.latest_membership(FAN, PAID)).unwrap();
        assert_eq!(m.state.current_end, Some(trial_end), "access at once");
        assert_eq!(db.with(|s| s.joined_in_hiatus().to_vec()), vec![(41, m.id)]);

        // A tier without a trial: the first charge is the hiatus' end.
        db.with(|s| {
            s.add_user(3, "other");
            s.put_tier_named(tier(9, 20_000), "Silver");
        });
        let join = |fan, tier_id, at| {
            pollster::block_on(start_recurring(
                &db,
                &gw,
                &Instant,
                at,
                fan,
                tier_id,
                BillingPeriod::Monthly,
            ))
            .unwrap()
        };
        let second = join(FAN, 9, t(20));
        assert_eq!(gw.start_at(&second.id), Some(resumes));
        // Once the hiatus has reached its end, a join is charged at once.
        let third = join(3, 9, resumes);
        assert_eq!(gw.start_at(&third.id), None);
        assert_eq!(db.with(|s| s.joined_in_hiatus().len()), 2);
    }

    #[test]
    fn a_recurring_start_makes_one_plan_and_subscription_and_a_repeat_returns_it() {
        let (db, gw) = (world(), MemoryGateway::new());
        let first = start(&db, &gw, t(10)).unwrap();
        assert!(first.id.starts_with("sub_"));
        assert!(!first.replaced_stale);
        let again = start(&db, &gw, t(20)).unwrap();
        assert_eq!(again.id, first.id);
        assert_eq!(gw.count("create_plan"), 1);
        assert_eq!(gw.count("create_subscription"), 1);
        let sub = gw.subscription(&first.id).unwrap();
        assert_eq!(
            sub.notes.get("type").map(String::as_str),
            Some("subscription")
        );
        assert_eq!(sub.notes.get("userID").map(String::as_str), Some("1"));
        assert_eq!(sub.notes.get("tierID").map(String::as_str), Some("7"));
        let (m, stored_sub) = db.with(|s| s.latest_membership(FAN, PAID)).unwrap();
        assert_eq!(stored_sub.as_deref(), Some(first.id.as_str()));
        assert_eq!((m.amount, m.currency.as_str()), (50_000, "INR"));
        // The plan is reused by the next fan at the same price.
        db.with(|s| s.add_user(3, "other"));
        pollster::block_on(start_recurring(
            &db,
            &gw,
            &Instant,
            t(30),
            3,
            PAID,
            BillingPeriod::Monthly,
        ))
        .unwrap();
        assert_eq!(gw.count("create_plan"), 1);
        assert_eq!(gw.count("create_subscription"), 2);
    }

    #[test]
    fn a_yearly_start_uses_the_annual_price_on_its_own_plan() {
        let db = world();
        db.with(|s| {
            let mut t = tier(PAID, 50_000);
            t.annual_price = Some(500_000);
            s.put_tier_named(t, "Gold")
        });
        let gw = MemoryGateway::new();
        let yearly = |now| {
            pollster::block_on(start_recurring(
                &db,
                &gw,
                &Instant,
                now,
                FAN,
                PAID,
                BillingPeriod::Yearly,
            ))
        };
        let y = yearly(t(10)).unwrap();
        let (plan, total_count) = gw.plan_of(&y.id).unwrap();
        assert_eq!(
            (plan.period, plan.amount, total_count),
            (BillingPeriod::Yearly, 500_000, 10)
        );
        let notes = gw.subscription(&y.id).unwrap().notes;
        assert_eq!(notes.get("period").map(String::as_str), Some("yearly"));
        let (m, _) = db.with(|s| s.latest_membership(FAN, PAID)).unwrap();
        assert_eq!((m.period, m.amount), (BillingPeriod::Yearly, 500_000));
        assert_eq!(yearly(t(20)).unwrap().id, y.id, "reused while pending");
        // Switching the pending checkout to monthly replaces it (one live membership).
        let m2 = start(&db, &gw, t(30)).unwrap();
        assert!(m2.replaced_stale);
        let (plan, total_count) = gw.plan_of(&m2.id).unwrap();
        assert_eq!(
            (plan.period, plan.amount, total_count),
            (BillingPeriod::Monthly, 50_000, 120)
        );
        assert!(!gw
            .subscription(&m2.id)
            .unwrap()
            .notes
            .contains_key("period"));
        assert_eq!(live(&db).len(), 1);
        // Plans are per (tier, period, price): a second yearly fan reuses the yearly plan.
        db.with(|s| s.add_user(3, "other"));
        pollster::block_on(start_recurring(
            &db,
            &gw,
            &Instant,
            t(40),
            3,
            PAID,
            BillingPeriod::Yearly,
        ))
        .unwrap();
        assert_eq!(gw.count("create_plan"), 2);
    }

    #[test]
    fn a_yearly_start_of_a_monthly_only_tier_is_refused() {
        let (db, gw) = (world(), MemoryGateway::new());
        let r = pollster::block_on(start_recurring(
            &db,
            &gw,
            &Instant,
            t(1),
            FAN,
            PAID,
            BillingPeriod::Yearly,
        ));
        assert_eq!(invalid_field(r), "period");
        assert_eq!(gw.calls().len(), 0);
    }

    #[test]
    fn two_concurrent_starts_of_one_fan_and_tier_share_one_subscription() {
        let db = world();
        let gw = Slow(MemoryGateway::new());
        let go = || start_recurring(&db, &gw, &Instant, t(10), FAN, PAID, BillingPeriod::Monthly);
        let (mut a, mut b) = (Box::pin(go()), Box::pin(go()));
        let (mut ra, mut rb) = (None, None);
        pollster::block_on(std::future::poll_fn(|cx| {
            if ra.is_none() {
                if let Poll::Ready(r) = a.as_mut().poll(cx) {
                    ra = Some(r);
                }
            }
            if rb.is_none() {
                if let Poll::Ready(r) = b.as_mut().poll(cx) {
                    rb = Some(r);
                }
            }
            if ra.is_some() && rb.is_some() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }));
        let (ra, rb) = (ra.unwrap().unwrap(), rb.unwrap().unwrap());
        assert_eq!(ra.id, rb.id);
        assert_eq!(gw.0.count("create_subscription"), 1);
        assert_eq!(live(&db).len(), 1);
    }

    #[test]
    fn a_reservation_in_flight_is_waited_for_then_answered_in_progress() {
        let db = world();
        let reserved = db.with(|s| {
            s.reserve_recurring(FAN, &tier(PAID, 50_000).monthly())
                .unwrap()
        });
        assert!(matches!(reserved, Reservation::New(_)));
        let gw = MemoryGateway::new();
        // Made 10 s before: not abandoned; nobody attaches a subscription.
        assert!(matches!(
            start(&db, &gw, t(10)),
            Err(BillingError::InProgress)
        ));
        assert_eq!(gw.count("create_subscription"), 0);
    }

    #[test]
    fn an_abandoned_reservation_is_dropped_and_the_start_retried() {
        let db = world();
        let Reservation::New(old) = db.with(|s| {
            s.reserve_recurring(FAN, &tier(PAID, 50_000).monthly())
                .unwrap()
        }) else {
            panic!("reserved")
        };
        let gw = MemoryGateway::new();
        let s = start(&db, &gw, t(121)).unwrap();
        let (m, sub) = db.with(|s| s.latest_membership(FAN, PAID)).unwrap();
        assert_ne!(m.id, old);
        assert_eq!(sub, Some(s.id));
        assert_eq!(live(&db).len(), 1);
    }

    #[test]
    fn a_failed_gateway_call_drops_the_reservation() {
        let (db, gw) = (world(), MemoryGateway::new());
        gw.fail_next(GatewayError::Unavailable("down".into()));
        assert!(matches!(
            start(&db, &gw, t(10)),
            Err(BillingError::Gateway(GatewayError::Unavailable(_)))
        ));
        assert!(live(&db).is_empty());
        // The plan was not made either: nothing half-done remains, a retry starts afresh.
        let s = start(&db, &gw, t(11)).unwrap();
        assert!(s.id.starts_with("sub_"));
        // A failure of the subscription itself (after the plan) drops it too.
        db.with(|s| s.add_user(3, "other"));
        gw.fail_next(GatewayError::Rejected {
            code: "BAD_REQUEST_ERROR".into(),
            description: "no".into(),
        });
        assert!(pollster::block_on(start_recurring(
            &db,
            &gw,
            &Instant,
            t(12),
            3,
            PAID,
            BillingPeriod::Monthly
        ))
        .is_err());
        assert_eq!(live(&db).len(), 1);
    }

    #[test]
    fn a_price_change_replaces_the_pending_checkout() {
        let (db, gw) = (world(), MemoryGateway::new());
        let old = start(&db, &gw, t(10)).unwrap();
        db.with(|s| s.put_tier(tier(PAID, 60_000)));
        let new = start(&db, &gw, t(20)).unwrap();
        assert_ne!(new.id, old.id);
        assert!(new.replaced_stale);
        let cancels = db.with(|s| s.cancellations());
        assert_eq!(cancels.len(), 1);
        assert_eq!(
            (cancels[0].0.as_str(), cancels[0].2),
            (old.id.as_str(), VoidReason::Replaced)
        );
        let live = live(&db);
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].amount, 60_000);
        assert_eq!(gw.count("create_plan"), 2);
    }

    #[test]
    fn a_live_paid_membership_is_not_started_twice() {
        let (db, gw) = (world(), MemoryGateway::new());
        start(&db, &gw, t(10)).unwrap();
        let (m, _) = db.with(|s| s.latest_membership(FAN, PAID)).unwrap();
        let mut state = m.state.clone();
        state.status = MembershipStatus::Active;
        db.with(|s| s.save_membership_state(m.id, &state).unwrap());
        assert!(matches!(
            start(&db, &gw, t(20)),
            Err(BillingError::AlreadySubscribed)
        ));
    }

    #[test]
    fn paid_starts_refuse_unknown_free_inactive_and_own_tiers() {
        let (db, gw) = (world(), MemoryGateway::new());
        for (tier_id, buyer) in [(99, FAN), (FREE, FAN), (PAID, CREATOR)] {
            assert_eq!(
                invalid_field(pollster::block_on(start_recurring(
                    &db,
                    &gw,
                    &Instant,
                    t(1),
                    buyer,
                    tier_id,
                    BillingPeriod::Monthly,
                ))),
                "tierID"
            );
        }
        db.with(|s| {
            s.put_tier(TierRef {
                is_active: false,
                ..tier(PAID, 50_000)
            })
        });
        assert_eq!(
            invalid_field(pollster::block_on(start_onetime(
                &db,
                &gw,
                t(1),
                &fan(),
                PAID,
                None
            ))),
            "tierID"
        );
        assert!(gw.calls().is_empty());
    }

    #[test]
    fn a_one_time_purchase_stores_its_order_as_asked() {
        let (db, gw) = (world(), MemoryGateway::new());
        assert_eq!(
            invalid_field(pollster::block_on(start_onetime(
                &db,
                &gw,
                t(1),
                &fan(),
                PAID,
                Some("USD")
            ))),
            "currency"
        );
        let s =
            pollster::block_on(start_onetime(&db, &gw, t(1), &fan(), PAID, Some("inr"))).unwrap();
        let orders: Vec<Order> = db.with(|st| st.orders());
        assert_eq!(orders.len(), 1);
        let o = &orders[0];
        assert_eq!(o.razorpay_order_id, s.id);
        assert_eq!(
            (o.kind, o.amount, o.user_id, o.creator_id, o.tier_id),
            (
                OrderKind::OneTime,
                50_000,
                Some(FAN),
                Some(CREATOR),
                Some(PAID)
            )
        );
        assert!(gw
            .calls()
            .iter()
            .any(|c| c == &format!("create_order ot-1-7-{}", t(1).timestamp())));
    }

    #[test]
    fn a_cheer_goes_to_a_creator_within_its_limits() {
        let (db, gw) = (world(), MemoryGateway::new());
        let cheer = |amount, message: &str| validate_cheer(amount, "INR", "", message);
        // The limits are validate_cheer's, checked before anything else.
        assert_eq!(invalid_field(cheer(99, "hi")), "amount");
        assert_eq!(invalid_field(cheer(500, &"x".repeat(1001))), "message");
        assert_eq!(
            invalid_field(pollster::block_on(start_cheer(
                &db,
                &gw,
                t(1),
                &fan(),
                FAN,
                cheer(500, "hi").unwrap()
            ))),
            "creatorID"
        );
        // A creator cannot cheer themselves.
        let creator = Buyer {
            id: CREATOR,
            username: "creator".into(),
        };
        assert_eq!(
            invalid_field(pollster::block_on(start_cheer(
                &db,
                &gw,
                t(1),
                &creator,
                CREATOR,
                cheer(500, "hi").unwrap()
            ))),
            "creatorID"
        );
        assert!(gw.calls().is_empty());
        let long = "é".repeat(300);
        let s = pollster::block_on(start_cheer(
            &db,
            &gw,
            t(1),
            &fan(),
            CREATOR,
            cheer(500, &long).unwrap(),
        ))
        .unwrap();
        let o = db.with(|st| st.orders()).pop().unwrap();
        assert_eq!(o.razorpay_order_id, s.id);
        assert_eq!(
            (o.kind, o.amount, o.name.as_str()),
            (OrderKind::Cheer, 500, "fan")
        );
        assert_eq!(o.message, long);
        let notes = gw.order(&s.id).unwrap().notes;
        assert_eq!(notes.get("type").map(String::as_str), Some("cheer"));
        assert_eq!(notes.get("message").map(|m| m.chars().count()), Some(250));
        assert_eq!(notes.get("username").map(String::as_str), Some("fan"));
    }

    #[test]
    fn a_commission_order_is_bounded_and_stored() {
        let (db, gw) = (world(), MemoryGateway::new());
        let c = |amount, currency: &str| CommissionPayment {
            commission_id: 42,
            creator_id: CREATOR,
            amount,
            currency: currency.into(),
            request: None,
        };
        let start = |c: &CommissionPayment| {
            pollster::block_on(start_commission_order(&db, &gw, t(1), &fan(), c))
        };
        assert_eq!(invalid_field(start(&c(99, "INR"))), "amount");
        assert_eq!(invalid_field(start(&c(500, "XXX"))), "currency");
        let s = start(&c(500, "INR")).unwrap();
        let o = db.with(|st| st.orders()).pop().unwrap();
        assert_eq!(
            (o.razorpay_order_id, o.kind, o.reference_id),
            (s.id, OrderKind::Commission, Some(42))
        );
    }

    #[test]
    fn a_free_tier_is_joined_once_and_ended_locally() {
        let (db, gw) = (world(), MemoryGateway::new());
        assert_eq!(
            invalid_field(pollster::block_on(join_free_tier(&db, FAN, PAID))),
            "tierID"
        );
        assert_eq!(
            invalid_field(pollster::block_on(join_free_tier(&db, FAN, 99))),
            "tierID"
        );
        assert_eq!(
            invalid_field(pollster::block_on(join_free_tier(&db, CREATOR, FREE))),
            "tierID",
            "the creator of the tier"
        );
        assert!(pollster::block_on(join_free_tier(&db, FAN, FREE)).unwrap());
        assert!(!pollster::block_on(join_free_tier(&db, FAN, FREE)).unwrap());
        assert_eq!(
            db.announcements(),
            vec![Announcement::MembershipStarted {
                fan: FAN,
                creator: CREATOR
            }]
        );
        let end = |e| pollster::block_on(end_membership(&db, &gw, t(5), FAN, FREE, e)).unwrap();
        assert_eq!(end(EndType::CycleEnd), Ended::Ended);
        assert_eq!(end(EndType::Now), Ended::NothingToEnd);
        assert!(gw.calls().is_empty());
        let (m, _) = db.with(|s| s.latest_membership(FAN, FREE)).unwrap();
        assert_eq!(
            (m.state.status, m.state.ended_at),
            (MembershipStatus::Cancelled, Some(t(5)))
        );
    }

    #[test]
    fn a_recurring_membership_ends_now_at_the_gateway() {
        let (db, gw) = (world(), MemoryGateway::new());
        let s = start(&db, &gw, t(10)).unwrap();
        let ended =
            pollster::block_on(end_membership(&db, &gw, t(20), FAN, PAID, EndType::Now)).unwrap();
        assert_eq!(ended, Ended::Ended);
        assert_eq!(gw.count("cancel_subscription"), 1);
        assert_eq!(
            gw.subscription(&s.id).unwrap().snapshot.status,
            Some(MembershipStatus::Cancelled)
        );
        let (m, _) = db.with(|s| s.latest_membership(FAN, PAID)).unwrap();
        assert_eq!(m.state.status, MembershipStatus::Cancelled);
        assert_eq!(
            pollster::block_on(end_membership(&db, &gw, t(30), FAN, PAID, EndType::Now)).unwrap(),
            Ended::NothingToEnd
        );
    }

    #[test]
    fn a_paid_recurring_membership_ends_at_cycle_end() {
        let (db, gw) = (world(), MemoryGateway::new());
        let s = start(&db, &gw, t(10)).unwrap();
        gw.charge_subscription(&s.id, t(15), chrono::Duration::days(30))
            .unwrap();
        let (m, _) = db.with(|s| s.latest_membership(FAN, PAID)).unwrap();
        let ended = pollster::block_on(end_membership(
            &db,
            &gw,
            t(20),
            FAN,
            PAID,
            EndType::CycleEnd,
        ))
        .unwrap();
        assert_eq!(ended, Ended::Ended);
        let after = db
            .with(|s| s.memberships())
            .into_iter()
            .find(|x| x.id == m.id)
            .unwrap();
        assert!(after.state.cancel_at_period_end);
        assert_eq!(after.state.status, MembershipStatus::Active);
        assert!(after.state.has_access(t(20) + chrono::Duration::days(29)));
        // Applying the gateway's answer made the membership live: the fan follows.
        assert!(db
            .announcements()
            .contains(&Announcement::MembershipStarted {
                fan: FAN,
                creator: CREATOR
            }));
    }
}
