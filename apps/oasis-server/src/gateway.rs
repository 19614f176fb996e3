//! billing's [`PaymentGateway`] port over the `razorpay` client: requests built from billing's
//! types, answers turned into billing's snapshots, and Razorpay's errors into [`GatewayError`]
//! (the only place that knows how Razorpay says "no such id").
use crate::payments::Payments;
use chrono::{DateTime, TimeZone, Utc};
use oasis_billing::gateway::*;
use oasis_billing::reconcile::InvoiceSnapshot;
use oasis_billing::trials::InstrumentKey;
use oasis_billing::SubscriptionSnapshot;
use oasis_billing::{MembershipStatus, OrderSnapshot, PaymentSnapshot, PaymentStatus};
use oasis_kernel::Timestamp;
use razorpay::{
    CancelAt, CreateOrder, CreatePlan, CreateRefund, CreateSubscription, Notes, Period,
    ScheduleChangeAt, UpdateSubscription,
};
use std::collections::BTreeMap;

/// The Razorpay account (or the embedded simulator) as billing's gateway.
#[derive(Clone)]
pub struct RazorpayGateway(pub Payments);

fn ts(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_else(Utc::now)
}

fn opt_ts(secs: Option<i64>) -> Option<DateTime<Utc>> {
    secs.filter(|s| *s > 0).map(ts)
}

/// Razorpay's notes as billing reads them.
pub fn notes_map(n: &Notes) -> BTreeMap<String, String> {
    n.iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn to_notes(n: &oasis_billing::notes::CheckoutNotes) -> Notes {
    Notes(n.to_map())
}

/// A subscription entity as seen at `observed_at`.
pub fn to_subscription(s: &razorpay::Subscription, observed_at: Timestamp) -> SubscriptionSnapshot {
    SubscriptionSnapshot {
        id: s.id.clone(),
        status: MembershipStatus::parse(s.status.as_str()),
        current_start: opt_ts(s.current_start),
        current_end: opt_ts(s.current_end),
        ended_at: opt_ts(s.ended_at),
        paid_count: s.paid_count,
        observed_at,
    }
}

/// `None` for a status billing does not know (nothing is recorded from it). The card or UPI ID
/// stays here: only its keyed fingerprint goes on.
pub fn to_payment(p: &razorpay::Payment, key: &InstrumentKey) -> Option<PaymentSnapshot> {
    Some(PaymentSnapshot {
        id: p.id.clone(),
        amount: p.amount,
        currency: p.currency.clone(),
        status: PaymentStatus::parse(p.status.as_str())?,
        order_id: p.order_id.clone().filter(|s| !s.is_empty()),
        invoice_id: p.invoice_id.clone().filter(|s| !s.is_empty()),
        amount_refunded: p.amount_refunded,
        notes: notes_map(&p.notes),
        email: p.email.clone(),
        contact: p.contact.clone(),
        created_at: ts(p.created_at),
        fee: p.fee,
        instrument: key.of_payment(p.method.as_deref(), p.card_id.as_deref(), p.vpa.as_deref()),
    })
}

pub fn to_order(o: &razorpay::Order) -> OrderSnapshot {
    OrderSnapshot {
        id: o.id.clone(),
        amount: o.amount,
        currency: o.currency.clone(),
        paid: o.status.as_str() == "paid",
        notes: notes_map(&o.notes),
    }
}

pub fn to_invoice(i: &razorpay::Invoice) -> InvoiceSnapshot {
    InvoiceSnapshot {
        id: i.id.clone(),
        subscription_id: i.subscription_id.clone().filter(|s| !s.is_empty()),
        payment_id: i.payment_id.clone().filter(|s| !s.is_empty()),
        paid: i.status == razorpay::InvoiceStatus::Paid,
    }
}

/// Razorpay's failure as billing's.
pub fn gateway_error(e: razorpay::Error) -> GatewayError {
    if e.is_not_found() {
        return GatewayError::NotFound;
    }
    match e {
        razorpay::Error::Api {
            status,
            code,
            description,
            ..
        } if (400..500).contains(&status) && status != 429 => {
            GatewayError::Rejected { code, description }
        }
        other => GatewayError::Unavailable(other.to_string()),
    }
}

/// A webhook event as billing plans it (observed at the event's creation).
pub fn to_event(ev: &razorpay::WebhookEvent, key: &InstrumentKey) -> oasis_billing::Event {
    let at = ts(ev.created_at);
    let p = &ev.payload;
    oasis_billing::Event {
        name: ev.event.clone(),
        created_at: at,
        subscription: p.subscription.as_ref().map(|s| to_subscription(s, at)),
        subscription_notes: p
            .subscription
            .as_ref()
            .map(|s| notes_map(&s.notes))
            .unwrap_or_default(),
        payment: p.payment.as_ref().and_then(|p| to_payment(p, key)),
        order: p.order.as_ref().map(to_order),
        refund: p
            .refund
            .as_ref()
            .map(|r| (r.id.clone(), r.payment_id.clone(), r.amount)),
        route: route_fact(ev),
    }
}

/// What a Route (transfer, settlement, linked account) or dispute event says.
pub fn route_fact(ev: &razorpay::WebhookEvent) -> Option<oasis_billing::payouts::RouteFact> {
    use oasis_billing::ledger::PayoutStatus;
    use oasis_billing::payouts::{DisputePhase, RouteFact, TRANSFER_NOTE};
    let p = &ev.payload;
    let name = ev.event.as_str();
    if let (Some(t), "transfer.processed" | "transfer.failed") = (&p.transfer, name) {
        return Some(RouteFact::Transfer {
            transfer_id: t.id.clone(),
            payment_id: t.source.clone(),
            amount: t.amount,
            processed: name == "transfer.processed",
            error: t.error.description.clone(),
            intent: t.notes.get(TRANSFER_NOTE).and_then(|n| n.parse().ok()),
        });
    }
    if let (Some(s), "settlement.processed") = (&p.settlement, name) {
        return Some(RouteFact::Settlement {
            settlement_id: s.id.clone(),
            utr: s.utr.clone().unwrap_or_default(),
        });
    }
    if let Some(mp) = p
        .merchant_product
        .as_ref()
        .filter(|_| name.starts_with("product.route."))
    {
        let account_id = if mp.merchant_id.is_empty() {
            ev.account_id.clone().unwrap_or_default()
        } else {
            mp.merchant_id.clone()
        };
        return PayoutStatus::of_activation(mp.activation_status.as_str())
            .map(|status| RouteFact::Product { account_id, status });
    }
    if name == "account.suspended" {
        let id = p
            .account
            .as_ref()
            .map(|a| a.id.clone())
            .or_else(|| ev.account_id.clone())?;
        return Some(RouteFact::AccountSuspended { account_id: id });
    }
    if name.starts_with("payment.dispute.") {
        let payment_id = p
            .dispute
            .as_ref()
            .map(|d| d.payment_id.clone())
            .filter(|s| !s.is_empty())
            .or_else(|| p.payment.as_ref().map(|x| x.id.clone()))?;
        return DisputePhase::of_event(name).map(|phase| RouteFact::Dispute { payment_id, phase });
    }
    None
}

fn to_transfer(t: &razorpay::Transfer) -> RemoteTransfer {
    use razorpay::TransferStatus as S;
    RemoteTransfer {
        id: t.id.clone(),
        payment_id: t.source.clone(),
        amount: t.amount,
        on_hold: t.on_hold,
        processed: match t.status {
            S::Processed => Some(true),
            S::Failed => Some(false),
            _ => None,
        },
        error: t.error.description.clone(),
        intent: t
            .notes
            .get(oasis_billing::payouts::TRANSFER_NOTE)
            .and_then(|n| n.parse().ok()),
        settlement_id: t.recipient_settlement_id.clone(),
    }
}

/// Razorpay's answer to a second linked account with the same email names the first:
/// "Merchant email already exists for account - acc_…".
fn existing_account(e: &GatewayError) -> Option<String> {
    let GatewayError::Rejected { description, .. } = e else {
        return None;
    };
    let (_, tail) = description.split_once("already exists for account - ")?;
    let id = tail.trim();
    (id.starts_with("acc_") && id.len() <= 40).then(|| id.to_owned())
}

fn linked_account_body(req: &LinkedAccountRequest) -> razorpay::CreateLinkedAccount {
    razorpay::CreateLinkedAccount {
        email: req.email.clone(),
        phone: req.phone.clone(),
        account_type: "route".into(),
        reference_id: Some(req.reference_id.clone()),
        legal_business_name: req.legal_name.clone(),
        business_type: req.business_type.clone(),
        contact_name: req.contact_name.clone(),
        // Razorpay requires a profile; creators are paid for creative work.
        profile: serde_json::json!({
            "category": "others",
            "subcategory": "others",
        }),
    }
}

fn remote(s: &razorpay::Subscription, now: Timestamp) -> RemoteSubscription {
    RemoteSubscription {
        snapshot: to_subscription(s, now),
        notes: notes_map(&s.notes),
        plan_id: s.plan_id.clone(),
        has_scheduled_changes: s.has_scheduled_changes,
        payment_method: s.payment_method.clone().filter(|m| !m.is_empty()),
    }
}

/// The note that marks a refund as ours: its idempotency key.
const REFUND_NOTE: &str = "oasis_refund";

fn to_refund(r: &razorpay::Refund) -> RefundReceipt {
    RefundReceipt {
        id: r.id.clone(),
        payment_id: r.payment_id.clone(),
        amount: r.amount,
        status: r.status.as_str().to_owned(),
        idempotency_key: r.notes.get(REFUND_NOTE).map(str::to_owned),
    }
}

impl PaymentGateway for RazorpayGateway {
    fn public_key(&self) -> &str {
        self.0.key_id()
    }

    async fn create_plan(&self, plan: &PlanRequest) -> Result<String, GatewayError> {
        let name: String = plan.name.chars().take(100).collect();
        let p = self
            .0
            .client()
            .create_plan(&CreatePlan {
                period: match plan.period {
                    BillingPeriod::Monthly => Period::Monthly,
                    BillingPeriod::Yearly => Period::Yearly,
                },
                interval: 1,
                item: razorpay::PlanItem {
                    name: if name.trim().is_empty() {
                        format!("Tier {}", plan.tier_id)
                    } else {
                        name
                    },
                    amount: plan.amount,
                    currency: plan.currency.clone(),
                    description: None,
                },
                notes: Notes::new().with("tierID", plan.tier_id.to_string()),
            })
            .await
            .map_err(gateway_error)?;
        Ok(p.id)
    }

    async fn create_subscription(&self, req: &SubscriptionRequest) -> Result<String, GatewayError> {
        let s = self
            .0
            .client()
            .create_subscription(&CreateSubscription {
                plan_id: req.plan_id.clone(),
                total_count: req.total_count,
                notes: {
                    let mut notes = to_notes(&req.notes);
                    if let Some(c) = req.change_id {
                        notes.0.insert(CHANGE_NOTE.to_owned(), c.to_string());
                    }
                    notes
                },
                start_at: req.start_at.map(|t| t.timestamp()),
                ..Default::default()
            })
            .await
            .map_err(gateway_error)?;
        Ok(s.id)
    }

    async fn find_change_subscription(
        &self,
        plan_id: &str,
        change_id: i64,
        since: Timestamp,
    ) -> Result<Option<String>, GatewayError> {
        const PAGE: u32 = 100;
        // A plan is one tier's price: its subscriptions made since the change are few; the
        // bound only stops a misbehaving server from paging us forever.
        const MAX_PAGES: u64 = 50;
        let want = change_id.to_string();
        for page in 0..MAX_PAGES {
            let c = self
                .0
                .client()
                .list_subscriptions(plan_id, since.timestamp(), PAGE, page * u64::from(PAGE))
                .await
                .map_err(gateway_error)?;
            if let Some(s) = c
                .items
                .iter()
                .find(|s| s.notes.0.get(CHANGE_NOTE) == Some(&want))
            {
                return Ok(Some(s.id.clone()));
            }
            if c.items.len() < PAGE as usize {
                break;
            }
        }
        Ok(None)
    }

    async fn fetch_subscription(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<RemoteSubscription, GatewayError> {
        let s = self
            .0
            .client()
            .fetch_subscription(id)
            .await
            .map_err(gateway_error)?;
        Ok(remote(&s, now))
    }

    async fn cancel_subscription(
        &self,
        id: &str,
        at_cycle_end: bool,
        now: Timestamp,
    ) -> Result<RemoteSubscription, GatewayError> {
        let at = if at_cycle_end {
            CancelAt::CycleEnd
        } else {
            CancelAt::Now
        };
        let s = self
            .0
            .client()
            .cancel_subscription(id, at)
            .await
            .map_err(gateway_error)?;
        Ok(remote(&s, now))
    }

    async fn pause_subscription(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<RemoteSubscription, GatewayError> {
        let s = self
            .0
            .client()
            .pause_subscription(id)
            .await
            .map_err(gateway_error)?;
        Ok(remote(&s, now))
    }

    async fn resume_subscription(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<RemoteSubscription, GatewayError> {
        let s = self
            .0
            .client()
            .resume_subscription(id)
            .await
            .map_err(gateway_error)?;
        Ok(remote(&s, now))
    }

    async fn update_subscription(
        &self,
        id: &str,
        plan_id: &str,
        at_cycle_end: bool,
        now: Timestamp,
    ) -> Result<RemoteSubscription, GatewayError> {
        let s = self
            .0
            .client()
            .update_subscription(
                id,
                &UpdateSubscription {
                    plan_id: Some(plan_id.to_owned()),
                    schedule_change_at: Some(if at_cycle_end {
                        ScheduleChangeAt::CycleEnd
                    } else {
                        ScheduleChangeAt::Now
                    }),
                    ..Default::default()
                },
            )
            .await
            .map_err(gateway_error)?;
        Ok(remote(&s, now))
    }

    async fn subscription_invoices(&self, id: &str) -> Result<Vec<InvoiceSnapshot>, GatewayError> {
        let list = self
            .0
            .client()
            .fetch_subscription_invoices(id)
            .await
            .map_err(gateway_error)?;
        Ok(list.iter().map(to_invoice).collect())
    }

    async fn create_order(&self, req: &OrderRequest) -> Result<String, GatewayError> {
        let o = self
            .0
            .client()
            .create_order(&CreateOrder {
                amount: req.amount,
                currency: req.currency.clone(),
                receipt: Some(req.receipt.chars().take(40).collect()),
                notes: to_notes(&req.notes),
                ..Default::default()
            })
            .await
            .map_err(gateway_error)?;
        Ok(o.id)
    }

    async fn fetch_order(&self, id: &str) -> Result<OrderSnapshot, GatewayError> {
        let o = self
            .0
            .client()
            .fetch_order(id)
            .await
            .map_err(gateway_error)?;
        Ok(to_order(&o))
    }

    async fn order_payments(&self, id: &str) -> Result<Vec<PaymentSnapshot>, GatewayError> {
        let list = self
            .0
            .client()
            .fetch_order_payments(id)
            .await
            .map_err(gateway_error)?;
        let key = self.0.instrument_key();
        Ok(list
            .items
            .iter()
            .filter_map(|p| to_payment(p, key))
            .collect())
    }

    async fn fetch_payment(&self, id: &str) -> Result<Option<PaymentSnapshot>, GatewayError> {
        let p = self
            .0
            .client()
            .fetch_payment(id)
            .await
            .map_err(gateway_error)?;
        Ok(to_payment(&p, self.0.instrument_key()))
    }

    async fn payment_refunds(&self, payment_id: &str) -> Result<Vec<RefundReceipt>, GatewayError> {
        let list = self
            .0
            .client()
            .fetch_payment_refunds(payment_id)
            .await
            .map_err(gateway_error)?;
        Ok(list.items.iter().map(to_refund).collect())
    }

    async fn refund(
        &self,
        payment_id: &str,
        amount: i64,
        idempotency_key: &str,
    ) -> Result<RefundReceipt, GatewayError> {
        let r = self
            .0
            .client()
            .refund_payment_idempotent(
                payment_id,
                &CreateRefund {
                    amount: Some(amount),
                    // Marks the refund as ours (and which one) for `payment_refunds`.
                    notes: Notes::new().with(REFUND_NOTE, idempotency_key.to_owned()),
                    ..Default::default()
                },
                idempotency_key,
            )
            .await
            .map_err(gateway_error)?;
        Ok(to_refund(&r))
    }

    async fn create_linked_account(
        &self,
        req: &LinkedAccountRequest,
    ) -> Result<String, GatewayError> {
        match self
            .0
            .client()
            .create_linked_account(&linked_account_body(req))
            .await
            .map_err(gateway_error)
        {
            Ok(a) => Ok(a.id),
            Err(e) => existing_account(&e).ok_or(e),
        }
    }

    async fn update_linked_account(
        &self,
        account_id: &str,
        req: &LinkedAccountRequest,
    ) -> Result<(), GatewayError> {
        self.0
            .client()
            .update_linked_account(
                account_id,
                &razorpay::UpdateLinkedAccount {
                    phone: Some(req.phone.clone()),
                    legal_business_name: Some(req.legal_name.clone()),
                    contact_name: Some(req.contact_name.clone()),
                },
            )
            .await
            .map(|_| ())
            .map_err(gateway_error)
    }

    async fn save_stakeholder(
        &self,
        account_id: &str,
        stakeholder_id: Option<&str>,
        name: &str,
        email: &str,
    ) -> Result<String, GatewayError> {
        let body = razorpay::CreateStakeholder {
            name: name.to_owned(),
            email: email.to_owned(),
        };
        let c = self.0.client();
        let s = match stakeholder_id {
            Some(sid) => c.update_stakeholder(account_id, sid, &body).await,
            None => c.create_stakeholder(account_id, &body).await,
        }
        .map_err(gateway_error)?;
        Ok(s.id)
    }

    async fn request_route_product(
        &self,
        account_id: &str,
    ) -> Result<(String, String), GatewayError> {
        let p = self
            .0
            .client()
            .request_product(
                account_id,
                &razorpay::RequestProduct {
                    product_name: "route".into(),
                    tnc_accepted: true,
                },
            )
            .await
            .map_err(gateway_error)?;
        Ok((p.id, p.activation_status.as_str().to_owned()))
    }

    async fn configure_route_product(
        &self,
        account_id: &str,
        product_id: &str,
        bank: &SettlementBank,
    ) -> Result<String, GatewayError> {
        let p = self
            .0
            .client()
            .update_product(
                account_id,
                product_id,
                &razorpay::UpdateProduct {
                    settlements: razorpay::SettlementAccount {
                        account_number: Some(bank.account_number.clone()),
                        ifsc_code: Some(bank.ifsc_code.clone()),
                        beneficiary_name: Some(bank.beneficiary_name.clone()),
                    },
                    tnc_accepted: true,
                },
            )
            .await
            .map_err(gateway_error)?;
        Ok(p.activation_status.as_str().to_owned())
    }

    async fn create_transfer(
        &self,
        payment_id: &str,
        account_id: &str,
        amount: i64,
        on_hold: bool,
        intent: i64,
    ) -> Result<RemoteTransfer, GatewayError> {
        let c = self
            .0
            .client()
            .create_payment_transfers(
                payment_id,
                &razorpay::CreateTransfers {
                    transfers: vec![razorpay::NewTransfer {
                        account: account_id.to_owned(),
                        amount,
                        currency: oasis_billing::ledger::ROUTE_CURRENCY.into(),
                        notes: Notes::new()
                            .with(oasis_billing::payouts::TRANSFER_NOTE, intent.to_string()),
                        on_hold,
                    }],
                },
            )
            .await
            .map_err(gateway_error)?;
        let t = c
            .items
            .iter()
            .find(|t| {
                t.notes.get(oasis_billing::payouts::TRANSFER_NOTE) == Some(&*intent.to_string())
            })
            .or(c.items.first())
            .ok_or_else(|| GatewayError::Unavailable("no transfer in the answer".into()))?;
        // Every amount from Razorpay is checked against what was asked.
        if t.amount != amount || t.source != payment_id {
            return Err(GatewayError::Rejected {
                code: "MISMATCH".into(),
                description: format!(
                    "transfer {} is {} of {}, asked {amount} of {payment_id}",
                    t.id, t.amount, t.source
                ),
            });
        }
        Ok(to_transfer(t))
    }

    async fn payment_transfers(
        &self,
        payment_id: &str,
    ) -> Result<Vec<RemoteTransfer>, GatewayError> {
        let c = self
            .0
            .client()
            .fetch_payment_transfers(payment_id)
            .await
            .map_err(gateway_error)?;
        Ok(c.items.iter().map(to_transfer).collect())
    }

    async fn release_transfer(&self, transfer_id: &str) -> Result<RemoteTransfer, GatewayError> {
        let t = self
            .0
            .client()
            .update_transfer(
                transfer_id,
                &razorpay::UpdateTransfer {
                    on_hold: false,
                    on_hold_until: None,
                },
            )
            .await
            .map_err(gateway_error)?;
        Ok(to_transfer(&t))
    }

    async fn transfer_reversals(
        &self,
        transfer_id: &str,
    ) -> Result<Vec<RemoteReversal>, GatewayError> {
        let c = self
            .0
            .client()
            .fetch_transfer_reversals(transfer_id)
            .await
            .map_err(gateway_error)?;
        Ok(c.items
            .iter()
            .map(|r| RemoteReversal {
                id: r.id.clone(),
                intent: r
                    .notes
                    .get(oasis_billing::payouts::REVERSAL_NOTE)
                    .and_then(|n| n.parse().ok()),
            })
            .collect())
    }

    async fn reverse_transfer(
        &self,
        transfer_id: &str,
        intent: i64,
    ) -> Result<String, GatewayError> {
        let r = self
            .0
            .client()
            .reverse_transfer(
                transfer_id,
                &razorpay::CreateReversal {
                    amount: None,
                    notes: Notes::new()
                        .with(oasis_billing::payouts::REVERSAL_NOTE, intent.to_string()),
                },
            )
            .await
            .map_err(gateway_error)?;
        Ok(r.id)
    }

    async fn settlement_transfers(
        &self,
        settlement_id: &str,
    ) -> Result<Vec<RemoteTransfer>, GatewayError> {
        let c = self
            .0
            .client()
            .fetch_settlement_transfers(settlement_id)
            .await
            .map_err(gateway_error)?;
        Ok(c.items.iter().map(to_transfer).collect())
    }
}
