//! An in-memory [`PaymentGateway`] for the workflows' unit tests: it keeps plans,
//! subscriptions, orders, payments and refunds as Razorpay would, lets a test act as the fan
//! (pay an order, charge a subscription) and make the next calls fail.
use crate::events::{OrderSnapshot, PaymentSnapshot, PaymentStatus};
use crate::gateway::*;
use crate::reconcile::InvoiceSnapshot;
use crate::state::SubscriptionSnapshot;
use crate::MembershipStatus;
use oasis_kernel::Timestamp;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Clone)]
struct Sub {
    plan_id: String,
    /// A plan change waiting for the cycle end.
    scheduled_plan: Option<String>,
    payment_method: Option<String>,
    total_count: i64,
    /// The first charge when later than the creation (`start_at`).
    start_at: Option<Timestamp>,
    snapshot: SubscriptionSnapshot,
    notes: BTreeMap<String, String>,
}

impl Sub {
    fn remote(&self, snapshot: SubscriptionSnapshot) -> RemoteSubscription {
        RemoteSubscription {
            snapshot,
            notes: self.notes.clone(),
            plan_id: self.plan_id.clone(),
            has_scheduled_changes: self.scheduled_plan.is_some(),
            payment_method: self.payment_method.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct Ord {
    snapshot: OrderSnapshot,
    payments: Vec<String>,
}

#[derive(Debug, Default)]
struct State {
    seq: u64,
    plans: BTreeMap<String, PlanRequest>,
    subscriptions: BTreeMap<String, Sub>,
    orders: BTreeMap<String, Ord>,
    payments: BTreeMap<String, PaymentSnapshot>,
    invoices: Vec<InvoiceSnapshot>,
    /// idempotency key → refund
    refunds: BTreeMap<String, RefundReceipt>,
    /// The next refund is made, but its answer is lost (a timeout after the gateway acted).
    lose_next_answer: bool,
    failures: VecDeque<GatewayError>,
    calls: Vec<String>,
    /// Route: linked account id → (email, product activation status).
    accounts: BTreeMap<String, (String, String)>,
    transfers: Vec<RemoteTransfer>,
    reversals: Vec<(String, RemoteReversal)>,
    /// The next transfer is made, but its answer is lost.
    lose_next_transfer_answer: bool,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct MemoryGateway {
    state: Mutex<State>,
}

impl MemoryGateway {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next call (of any kind) fails with `e`; queued failures are used in order.
    pub fn fail_next(&self, e: GatewayError) {
        self.lock().failures.push_back(e);
    }

    /// The next refund is made, but the caller gets [`GatewayError::Unavailable`] instead of
    /// its answer.
    pub fn lose_next_refund_answer(&self) {
        self.lock().lose_next_answer = true;
    }

    /// The next transfer is made, but the caller gets [`GatewayError::Unavailable`].
    pub fn lose_next_transfer_answer(&self) {
        self.lock().lose_next_transfer_answer = true;
    }

    /// Sets the `route` product's activation status of every linked account.
    pub fn set_route_status(&self, status: &str) {
        for v in self.lock().accounts.values_mut() {
            v.1 = status.to_owned();
        }
    }

    /// Every transfer made.
    pub fn transfers(&self) -> Vec<RemoteTransfer> {
        self.lock().transfers.clone()
    }

    /// Every call made so far, as `"<operation> <argument>"`.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// How many calls of one operation were made.
    pub fn count(&self, operation: &str) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.split(' ').next() == Some(operation))
            .count()
    }

    /// The fan pays an order (`amount`/`currency` may differ from what was asked); returns
    /// the captured payment.
    pub fn pay_order(
        &self,
        order_id: &str,
        amount: i64,
        currency: &str,
        at: Timestamp,
    ) -> PaymentSnapshot {
        let mut s = self.lock();
        let id = next_id(&mut s, "pay");
        let notes = s
            .orders
            .get(order_id)
            .map(|o| o.snapshot.notes.clone())
            .unwrap_or_default();
        let p = PaymentSnapshot {
            id: id.clone(),
            amount,
            currency: currency.to_owned(),
            status: PaymentStatus::Captured,
            order_id: Some(order_id.to_owned()),
            invoice_id: None,
            amount_refunded: 0,
            notes,
            email: None,
            contact: None,
            created_at: at,
            fee: Some(gateway_fee(amount)),
            instrument: None,
        };
        if let Some(o) = s.orders.get_mut(order_id) {
            o.snapshot.paid = true;
            o.payments.push(id.clone());
        }
        s.payments.insert(id, p.clone());
        p
    }

    /// Razorpay charges a subscription's next cycle: it becomes `active`, its paid period
    /// moves on by `period`, and a paid invoice records the payment. Returns the payment.
    pub fn charge_subscription(
        &self,
        sub_id: &str,
        at: Timestamp,
        period: chrono::Duration,
    ) -> Option<PaymentSnapshot> {
        let mut s = self.lock();
        let id = next_id(&mut s, "pay");
        let inv = next_id(&mut s, "inv");
        let amount = {
            let sub = s.subscriptions.get(sub_id)?;
            s.plans
                .get(&sub.plan_id)
                .map(|p| (p.amount, p.currency.clone()))
        };
        let (amount, currency) = amount?;
        let sub = s.subscriptions.get_mut(sub_id)?;
        sub.snapshot.status = Some(MembershipStatus::Active);
        sub.snapshot.paid_count += 1;
        let start = sub.snapshot.current_end.unwrap_or(at);
        sub.snapshot.current_start = Some(start);
        sub.snapshot.current_end = Some(start + period);
        sub.snapshot.observed_at = at;
        let notes = sub.notes.clone();
        let p = PaymentSnapshot {
            id: id.clone(),
            amount,
            currency,
            status: PaymentStatus::Captured,
            order_id: None,
            invoice_id: Some(inv.clone()),
            amount_refunded: 0,
            notes,
            email: None,
            contact: None,
            created_at: at,
            fee: Some(gateway_fee(amount)),
            instrument: None,
        };
        s.payments.insert(id.clone(), p.clone());
        s.invoices.push(InvoiceSnapshot {
            id: inv,
            subscription_id: Some(sub_id.to_owned()),
            payment_id: Some(id),
            paid: true,
        });
        Some(p)
    }

    /// The subscription as the gateway holds it.
    pub fn subscription(&self, id: &str) -> Option<RemoteSubscription> {
        self.lock()
            .subscriptions
            .get(id)
            .map(|s| s.remote(s.snapshot.clone()))
    }

    /// The plan a subscription was created on, and its `total_count`.
    /// The `start_at` a subscription was created with.
    pub fn start_at(&self, sub_id: &str) -> Option<Timestamp> {
        self.lock().subscriptions.get(sub_id)?.start_at
    }

    pub fn plan_of(&self, sub_id: &str) -> Option<(PlanRequest, i64)> {
        let s = self.lock();
        let sub = s.subscriptions.get(sub_id)?;
        Some((s.plans.get(&sub.plan_id)?.clone(), sub.total_count))
    }

    /// The order as the gateway holds it.
    pub fn order(&self, id: &str) -> Option<OrderSnapshot> {
        self.lock().orders.get(id).map(|o| o.snapshot.clone())
    }

    /// Every refund made, in key order.
    pub fn refunds(&self) -> Vec<RefundReceipt> {
        self.lock().refunds.values().cloned().collect()
    }

    /// Moves a subscription's status by Razorpay's rule `to` (an `Err` is its refusal).
    fn set_status(
        &self,
        call: String,
        id: &str,
        now: Timestamp,
        to: impl FnOnce(Option<MembershipStatus>) -> Result<MembershipStatus, &'static str>,
    ) -> Result<RemoteSubscription, GatewayError> {
        let mut s = self.enter(call)?;
        let sub = s.subscriptions.get_mut(id).ok_or(GatewayError::NotFound)?;
        let status = to(sub.snapshot.status).map_err(|d| GatewayError::Rejected {
            code: "BAD_REQUEST_ERROR".into(),
            description: d.into(),
        })?;
        sub.snapshot.status = Some(status);
        sub.snapshot.observed_at = now;
        Ok(sub.remote(sub.snapshot.clone()))
    }

    /// Records the call; fails it if a failure is queued.
    fn enter(&self, call: String) -> Result<MutexGuard<'_, State>, GatewayError> {
        let mut s = self.lock();
        s.calls.push(call);
        match s.failures.pop_front() {
            Some(e) => Err(e),
            None => Ok(s),
        }
    }
}

/// The fee the fake charges on capture, like the simulator: 2% plus 18% GST on it.
pub fn gateway_fee(amount: i64) -> i64 {
    let fee = amount * 2 / 100;
    fee + fee * 18 / 100
}

fn next_id(s: &mut State, prefix: &str) -> String {
    s.seq += 1;
    format!("{prefix}_mem{:010}", s.seq)
}

impl PaymentGateway for MemoryGateway {
    fn public_key(&self) -> &str {
        "rzp_test_memory"
    }

    async fn create_plan(&self, plan: &PlanRequest) -> Result<String, GatewayError> {
        let mut s = self.enter(format!("create_plan {}", plan.tier_id))?;
        let id = next_id(&mut s, "plan");
        s.plans.insert(id.clone(), plan.clone());
        Ok(id)
    }

    async fn create_subscription(&self, req: &SubscriptionRequest) -> Result<String, GatewayError> {
        let mut s = self.enter(format!("create_subscription {}", req.plan_id))?;
        if !s.plans.contains_key(&req.plan_id) {
            return Err(GatewayError::Rejected {
                code: "BAD_REQUEST_ERROR".into(),
                description: "The id provided does not exist".into(),
            });
        }
        let id = next_id(&mut s, "sub");
        let sub = Sub {
            plan_id: req.plan_id.clone(),
            scheduled_plan: None,
            payment_method: None,
            total_count: req.total_count,
            start_at: req.start_at,
            snapshot: SubscriptionSnapshot {
                id: id.clone(),
                status: Some(MembershipStatus::Created),
                current_start: None,
                current_end: None,
                ended_at: None,
                paid_count: 0,
                observed_at: chrono::DateTime::<chrono::Utc>::MIN_UTC,
            },
            notes: {
                let mut notes = req.notes.to_map();
                if let Some(c) = req.change_id {
                    notes.insert(CHANGE_NOTE.to_owned(), c.to_string());
                }
                notes
            },
        };
        s.subscriptions.insert(id.clone(), sub);
        Ok(id)
    }

    async fn find_change_subscription(
        &self,
        plan_id: &str,
        change_id: i64,
        _since: Timestamp,
    ) -> Result<Option<String>, GatewayError> {
        let s = self.enter(format!("find_change_subscription {plan_id} {change_id}"))?;
        let want = change_id.to_string();
        Ok(s.subscriptions
            .iter()
            .find(|(_, sub)| sub.plan_id == plan_id && sub.notes.get(CHANGE_NOTE) == Some(&want))
            .map(|(id, _)| id.clone()))
    }

    async fn fetch_subscription(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<RemoteSubscription, GatewayError> {
        let s = self.enter(format!("fetch_subscription {id}"))?;
        let sub = s.subscriptions.get(id).ok_or(GatewayError::NotFound)?;
        let mut snapshot = sub.snapshot.clone();
        snapshot.observed_at = now;
        Ok(sub.remote(snapshot))
    }

    async fn pause_subscription(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<RemoteSubscription, GatewayError> {
        self.set_status(format!("pause_subscription {id}"), id, now, |s| match s {
            Some(MembershipStatus::Active) => Ok(MembershipStatus::Paused),
            _ => Err("Subscription cannot be paused in this status."),
        })
    }

    async fn resume_subscription(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<RemoteSubscription, GatewayError> {
        self.set_status(format!("resume_subscription {id}"), id, now, |s| match s {
            Some(MembershipStatus::Paused) => Ok(MembershipStatus::Active),
            _ => Err("Subscription cannot be resumed in this status."),
        })
    }

    async fn cancel_subscription(
        &self,
        id: &str,
        at_cycle_end: bool,
        now: Timestamp,
    ) -> Result<RemoteSubscription, GatewayError> {
        let mut s = self.enter(format!("cancel_subscription {id}"))?;
        let sub = s.subscriptions.get_mut(id).ok_or(GatewayError::NotFound)?;
        if matches!(
            sub.snapshot.status,
            Some(MembershipStatus::Cancelled | MembershipStatus::Completed)
        ) {
            return Err(GatewayError::Rejected {
                code: "BAD_REQUEST_ERROR".into(),
                description: "Subscription is not cancellable in cancelled status.".into(),
            });
        }
        if !at_cycle_end || sub.snapshot.paid_count == 0 {
            sub.snapshot.status = Some(MembershipStatus::Cancelled);
            sub.snapshot.ended_at = Some(now);
        }
        sub.snapshot.observed_at = now;
        Ok(sub.remote(sub.snapshot.clone()))
    }

    /// Like Razorpay: only authenticated or active subscriptions, never a UPI mandate; the
    /// change applies now or waits for the cycle end (the fake charges no proration).
    async fn update_subscription(
        &self,
        id: &str,
        plan_id: &str,
        at_cycle_end: bool,
        now: Timestamp,
    ) -> Result<RemoteSubscription, GatewayError> {
        let mut s = self.enter(format!("update_subscription {id} {plan_id}"))?;
        let known = s.plans.contains_key(plan_id);
        let sub = s.subscriptions.get_mut(id).ok_or(GatewayError::NotFound)?;
        let refuse = |d: &str| GatewayError::Rejected {
            code: "BAD_REQUEST_ERROR".into(),
            description: d.into(),
        };
        if !known {
            return Err(refuse("The id provided does not exist"));
        }
        if sub.payment_method.as_deref() == Some("upi") {
            return Err(refuse(
                "subscriptions cannot be updated when payment mode is UPI",
            ));
        }
        if !matches!(
            sub.snapshot.status,
            Some(MembershipStatus::Active | MembershipStatus::Authenticated)
        ) {
            return Err(refuse("Subscription cannot be updated in this status."));
        }
        if at_cycle_end {
            sub.scheduled_plan = Some(plan_id.to_owned());
        } else {
            sub.plan_id = plan_id.to_owned();
        }
        sub.snapshot.observed_at = now;
        Ok(sub.remote(sub.snapshot.clone()))
    }

    async fn subscription_invoices(&self, id: &str) -> Result<Vec<InvoiceSnapshot>, GatewayError> {
        let s = self.enter(format!("subscription_invoices {id}"))?;
        Ok(s.invoices
            .iter()
            .filter(|i| i.subscription_id.as_deref() == Some(id))
            .cloned()
            .collect())
    }

    async fn create_order(&self, req: &OrderRequest) -> Result<String, GatewayError> {
        let mut s = self.enter(format!("create_order {}", req.receipt))?;
        let id = next_id(&mut s, "order");
        s.orders.insert(
            id.clone(),
            Ord {
                snapshot: OrderSnapshot {
                    id: id.clone(),
                    amount: req.amount,
                    currency: req.currency.clone(),
                    paid: false,
                    notes: req.notes.to_map(),
                },
                payments: Vec::new(),
            },
        );
        Ok(id)
    }

    async fn fetch_order(&self, id: &str) -> Result<OrderSnapshot, GatewayError> {
        let s = self.enter(format!("fetch_order {id}"))?;
        s.orders
            .get(id)
            .map(|o| o.snapshot.clone())
            .ok_or(GatewayError::NotFound)
    }

    async fn order_payments(&self, id: &str) -> Result<Vec<PaymentSnapshot>, GatewayError> {
        let s = self.enter(format!("order_payments {id}"))?;
        let o = s.orders.get(id).ok_or(GatewayError::NotFound)?;
        Ok(o.payments
            .iter()
            .filter_map(|p| s.payments.get(p).cloned())
            .collect())
    }

    async fn fetch_payment(&self, id: &str) -> Result<Option<PaymentSnapshot>, GatewayError> {
        let s = self.enter(format!("fetch_payment {id}"))?;
        s.payments
            .get(id)
            .cloned()
            .map(Some)
            .ok_or(GatewayError::NotFound)
    }

    async fn payment_refunds(&self, payment_id: &str) -> Result<Vec<RefundReceipt>, GatewayError> {
        let s = self.enter(format!("payment_refunds {payment_id}"))?;
        if !s.payments.contains_key(payment_id) {
            return Err(GatewayError::NotFound);
        }
        Ok(s.refunds
            .values()
            .filter(|r| r.payment_id == payment_id)
            .cloned()
            .collect())
    }

    async fn refund(
        &self,
        payment_id: &str,
        amount: i64,
        idempotency_key: &str,
    ) -> Result<RefundReceipt, GatewayError> {
        let mut s = self.enter(format!("refund {payment_id}"))?;
        if let Some(r) = s.refunds.get(idempotency_key) {
            return Ok(r.clone());
        }
        let Some(p) = s.payments.get(payment_id).cloned() else {
            return Err(GatewayError::NotFound);
        };
        if amount <= 0 || p.amount_refunded + amount > p.amount {
            return Err(GatewayError::Rejected {
                code: "BAD_REQUEST_ERROR".into(),
                description: "The refund amount exceeds what can be refunded.".into(),
            });
        }
        let id = next_id(&mut s, "rfnd");
        let r = RefundReceipt {
            id,
            payment_id: payment_id.to_owned(),
            amount,
            status: "processed".into(),
            idempotency_key: Some(idempotency_key.to_owned()),
        };
        if let Some(p) = s.payments.get_mut(payment_id) {
            p.amount_refunded += amount;
            if p.amount_refunded == p.amount {
                p.status = PaymentStatus::Refunded;
            }
        }
        s.refunds.insert(idempotency_key.to_owned(), r.clone());
        if std::mem::take(&mut s.lose_next_answer) {
            return Err(GatewayError::Unavailable("the answer was lost".into()));
        }
        Ok(r)
    }

    async fn create_linked_account(
        &self,
        req: &LinkedAccountRequest,
    ) -> Result<String, GatewayError> {
        let mut s = self.enter(format!("create_linked_account {}", req.reference_id))?;
        if let Some((id, _)) = s.accounts.iter().find(|(_, v)| v.0 == req.email) {
            return Ok(id.clone());
        }
        let id = next_id(&mut s, "acc");
        s.accounts
            .insert(id.clone(), (req.email.clone(), "requested".into()));
        Ok(id)
    }

    async fn update_linked_account(
        &self,
        account_id: &str,
        _req: &LinkedAccountRequest,
    ) -> Result<(), GatewayError> {
        let s = self.enter(format!("update_linked_account {account_id}"))?;
        s.accounts
            .get(account_id)
            .map(|_| ())
            .ok_or(GatewayError::NotFound)
    }

    async fn save_stakeholder(
        &self,
        account_id: &str,
        stakeholder_id: Option<&str>,
        _name: &str,
        _email: &str,
    ) -> Result<String, GatewayError> {
        let mut s = self.enter(format!("save_stakeholder {account_id}"))?;
        match stakeholder_id {
            Some(id) => Ok(id.to_owned()),
            None => Ok(next_id(&mut s, "sth")),
        }
    }

    async fn request_route_product(
        &self,
        account_id: &str,
    ) -> Result<(String, String), GatewayError> {
        let mut s = self.enter(format!("request_route_product {account_id}"))?;
        let status = s
            .accounts
            .get(account_id)
            .map(|v| v.1.clone())
            .ok_or(GatewayError::NotFound)?;
        Ok((next_id(&mut s, "acc_prd"), status))
    }

    async fn configure_route_product(
        &self,
        account_id: &str,
        _product_id: &str,
        _bank: &SettlementBank,
    ) -> Result<String, GatewayError> {
        let mut s = self.enter(format!("configure_route_product {account_id}"))?;
        let v = s
            .accounts
            .get_mut(account_id)
            .ok_or(GatewayError::NotFound)?;
        if v.1 == "requested" {
            v.1 = "under_review".into();
        }
        Ok(v.1.clone())
    }

    async fn create_transfer(
        &self,
        payment_id: &str,
        account_id: &str,
        amount: i64,
        on_hold: bool,
        intent: i64,
    ) -> Result<RemoteTransfer, GatewayError> {
        let mut s = self.enter(format!("create_transfer {payment_id}"))?;
        if s.accounts.get(account_id).map(|v| v.1.as_str()) != Some("activated") {
            return Err(GatewayError::Rejected {
                code: "BAD_REQUEST_ERROR".into(),
                description: "linked account not activated".into(),
            });
        }
        let id = next_id(&mut s, "trf");
        let t = RemoteTransfer {
            id,
            payment_id: payment_id.to_owned(),
            amount,
            on_hold,
            processed: Some(true),
            error: None,
            intent: Some(intent),
            settlement_id: None,
        };
        s.transfers.push(t.clone());
        if std::mem::take(&mut s.lose_next_transfer_answer) {
            return Err(GatewayError::Unavailable("answer lost".into()));
        }
        Ok(t)
    }

    async fn payment_transfers(
        &self,
        payment_id: &str,
    ) -> Result<Vec<RemoteTransfer>, GatewayError> {
        let s = self.enter(format!("payment_transfers {payment_id}"))?;
        Ok(s.transfers
            .iter()
            .filter(|t| t.payment_id == payment_id)
            .cloned()
            .collect())
    }

    async fn release_transfer(&self, transfer_id: &str) -> Result<RemoteTransfer, GatewayError> {
        let mut s = self.enter(format!("release_transfer {transfer_id}"))?;
        let t = s
            .transfers
            .iter_mut()
            .find(|t| t.id == transfer_id)
            .ok_or(GatewayError::NotFound)?;
        t.on_hold = false;
        Ok(t.clone())
    }

    async fn transfer_reversals(
        &self,
        transfer_id: &str,
    ) -> Result<Vec<RemoteReversal>, GatewayError> {
        let s = self.enter(format!("transfer_reversals {transfer_id}"))?;
        Ok(s.reversals
            .iter()
            .filter(|(t, _)| t == transfer_id)
            .map(|(_, r)| r.clone())
            .collect())
    }

    async fn reverse_transfer(
        &self,
        transfer_id: &str,
        intent: i64,
    ) -> Result<String, GatewayError> {
        let mut s = self.enter(format!("reverse_transfer {transfer_id}"))?;
        let id = next_id(&mut s, "rvrsl");
        s.reversals.push((
            transfer_id.to_owned(),
            RemoteReversal {
                id: id.clone(),
                intent: Some(intent),
            },
        ));
        Ok(id)
    }

    async fn settlement_transfers(
        &self,
        settlement_id: &str,
    ) -> Result<Vec<RemoteTransfer>, GatewayError> {
        let s = self.enter(format!("settlement_transfers {settlement_id}"))?;
        Ok(s.transfers
            .iter()
            .filter(|t| t.settlement_id.as_deref() == Some(settlement_id))
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notes::{CheckoutNotes, Payer};

    fn run<F: std::future::Future>(f: F) -> F::Output {
        pollster::block_on(f)
    }

    #[test]
    fn orders_payments_and_refunds_behave_like_razorpay() {
        let g = MemoryGateway::new();
        let now = chrono::Utc::now();
        let notes = CheckoutNotes::Cheer {
            creator_id: 1,
            payer: Some(Payer::Username("fan".into())),
            name: "Fan".into(),
            message: "hi".into(),
        };
        let oid = run(g.create_order(&OrderRequest {
            amount: 500,
            currency: "INR".into(),
            receipt: "cheer-1".into(),
            notes: notes.clone(),
        }))
        .unwrap();
        assert!(oid.starts_with("order_"));
        assert!(!run(g.fetch_order(&oid)).unwrap().paid);
        let p = g.pay_order(&oid, 500, "INR", now);
        assert!(run(g.fetch_order(&oid)).unwrap().paid);
        assert_eq!(run(g.order_payments(&oid)).unwrap(), vec![p.clone()]);
        assert_eq!(p.notes, notes.to_map());
        let r1 = run(g.refund(&p.id, 500, "refund-key-1")).unwrap();
        let r2 = run(g.refund(&p.id, 500, "refund-key-1")).unwrap();
        assert_eq!(r1, r2, "the same key answers the same refund");
        assert_eq!(g.refunds().len(), 1);
        assert!(matches!(
            run(g.refund(&p.id, 1, "refund-key-2")),
            Err(GatewayError::Rejected { .. })
        ));
        assert_eq!(
            run(g.fetch_payment(&p.id)).unwrap().unwrap().status,
            PaymentStatus::Refunded
        );
        assert_eq!(
            run(g.fetch_order("order_missing")),
            Err(GatewayError::NotFound)
        );
    }

    #[test]
    fn subscriptions_charge_and_cancel() {
        let g = MemoryGateway::new();
        let now = chrono::Utc::now();
        let plan = run(g.create_plan(&PlanRequest {
            tier_id: 3,
            name: "Gold".into(),
            amount: 1000,
            currency: "INR".into(),
            period: BillingPeriod::Monthly,
        }))
        .unwrap();
        let sid = run(g.create_subscription(&SubscriptionRequest {
            plan_id: plan,
            total_count: 120,
            notes: CheckoutNotes::Recurring {
                payer: Payer::Id(5),
                tier_id: 3,
                period: crate::BillingPeriod::Monthly,
            },
            start_at: None,
            change_id: None,
        }))
        .unwrap();
        let p = g
            .charge_subscription(&sid, now, chrono::Duration::days(30))
            .unwrap();
        assert_eq!(p.amount, 1000);
        let s = run(g.fetch_subscription(&sid, now)).unwrap();
        assert_eq!(s.snapshot.status, Some(MembershipStatus::Active));
        assert_eq!(s.snapshot.paid_count, 1);
        let inv = run(g.subscription_invoices(&sid)).unwrap();
        assert_eq!(inv[0].payment_id.as_deref(), Some(p.id.as_str()));
        let c = run(g.cancel_subscription(&sid, false, now)).unwrap();
        assert_eq!(c.snapshot.status, Some(MembershipStatus::Cancelled));
        g.fail_next(GatewayError::Unavailable("down".into()));
        assert!(run(g.fetch_subscription(&sid, now)).is_err());
        assert!(run(g.fetch_subscription(&sid, now)).is_ok());
        assert_eq!(g.count("fetch_subscription"), 3);
    }
}
