//! An in-memory [`CommissionStore`] for the services' unit tests (the Postgres adapter is
//! exercised end to end in `tests/api`).
use crate::model::{
    ChangeRecord, HistoryEntry, NewRequest, Offering, OfferingFields, Request, RequestStatus,
};
use crate::ports::CommissionStore;
use crate::rules::holds_slot;
use oasis_kernel::{RepoError, Timestamp};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Default)]
pub struct MemoryStore {
    pub creators: BTreeSet<i64>,
    pub offerings: BTreeMap<i64, (Offering, bool)>,
    pub requests: BTreeMap<i64, Request>,
    pub history: Vec<(i64, HistoryEntry)>,
    /// media id → owner
    pub media: BTreeMap<i64, i64>,
    pub delivered: Vec<(i64, i64)>,
    next: i64,
}

impl MemoryStore {
    fn id(&mut self) -> i64 {
        self.next += 1;
        self.next
    }
    fn live(&self, id: i64) -> Option<Offering> {
        self.offerings
            .get(&id)
            .filter(|(_, deleted)| !deleted)
            .map(|(o, _)| o.clone())
    }
    fn log(
        &mut self,
        id: i64,
        status: RequestStatus,
        by: Option<i64>,
        msg: Option<String>,
        at: Timestamp,
    ) {
        self.history.push((
            id,
            HistoryEntry {
                status,
                at,
                by,
                message: msg,
            },
        ));
    }
}

impl CommissionStore for MemoryStore {
    fn is_creator(&mut self, user_id: i64) -> Result<bool, RepoError> {
        Ok(self.creators.contains(&user_id))
    }
    fn insert_offering(
        &mut self,
        creator_id: i64,
        f: &OfferingFields,
        now: Timestamp,
    ) -> Result<Offering, RepoError> {
        let o = Offering {
            id: self.id(),
            creator_id,
            title: f.title.clone(),
            description: f.description.clone(),
            price: f.price,
            currency: f.currency,
            delivery_days: f.delivery_days,
            slots: f.slots,
            is_open: f.is_open,
            created_at: now,
            updated_at: now,
        };
        self.offerings.insert(o.id, (o.clone(), false));
        Ok(o)
    }
    fn find_offering(&mut self, id: i64) -> Result<Option<Offering>, RepoError> {
        Ok(self.live(id))
    }
    fn lock_offering(&mut self, id: i64) -> Result<Option<Offering>, RepoError> {
        Ok(self.live(id))
    }
    fn update_offering(
        &mut self,
        id: i64,
        f: &OfferingFields,
        now: Timestamp,
    ) -> Result<Offering, RepoError> {
        let (o, _) = self.offerings.get_mut(&id).ok_or(RepoError::NotFound)?;
        o.title = f.title.clone();
        o.description = f.description.clone();
        o.price = f.price;
        o.currency = f.currency;
        o.delivery_days = f.delivery_days;
        o.slots = f.slots;
        o.is_open = f.is_open;
        o.updated_at = now;
        Ok(o.clone())
    }
    fn delete_offering(&mut self, id: i64, _now: Timestamp) -> Result<(), RepoError> {
        if let Some(e) = self.offerings.get_mut(&id) {
            e.1 = true;
        }
        Ok(())
    }
    fn count_active_requests(&mut self, commission_id: i64) -> Result<i64, RepoError> {
        Ok(self
            .requests
            .values()
            .filter(|r| r.commission_id == commission_id && r.status.is_active())
            .count() as i64)
    }
    fn count_slot_holders(&mut self, commission_id: i64, now: Timestamp) -> Result<i64, RepoError> {
        Ok(self
            .requests
            .values()
            .filter(|r| r.commission_id == commission_id && holds_slot(r.status, r.hold_until, now))
            .count() as i64)
    }
    fn insert_request(&mut self, n: &NewRequest) -> Result<Request, RepoError> {
        let r = Request {
            id: self.id(),
            commission_id: n.commission_id,
            fan_id: n.fan_id,
            creator_id: n.creator_id,
            description: n.description.clone(),
            contact_details: n.contact_details.clone(),
            mode_of_delivery: n.mode_of_delivery.clone(),
            status: RequestStatus::AwaitingPayment,
            amount: n.amount,
            currency: n.currency,
            razorpay_order_id: None,
            razorpay_payment_id: None,
            hold_until: n.hold_until,
            paid_at: None,
            deliver_by: None,
            delivered_at: None,
            created_at: n.created_at,
            updated_at: n.created_at,
        };
        self.requests.insert(r.id, r.clone());
        self.log(
            r.id,
            RequestStatus::AwaitingPayment,
            Some(n.fan_id),
            None,
            n.created_at,
        );
        Ok(r)
    }
    fn set_request_order(&mut self, id: i64, order_id: &str) -> Result<(), RepoError> {
        if self
            .requests
            .values()
            .any(|r| r.id != id && r.razorpay_order_id.as_deref() == Some(order_id))
        {
            return Err(RepoError::Conflict {
                constraint: "commission_requests_razorpay_order_id_key".into(),
            });
        }
        if let Some(r) = self.requests.get_mut(&id) {
            r.razorpay_order_id = Some(order_id.to_owned());
        }
        Ok(())
    }
    fn delete_request(&mut self, id: i64) -> Result<(), RepoError> {
        self.requests.remove(&id);
        self.history.retain(|(r, _)| *r != id);
        Ok(())
    }
    fn lock_request(&mut self, id: i64) -> Result<Option<Request>, RepoError> {
        Ok(self.requests.get(&id).cloned())
    }
    fn lock_request_by_order(&mut self, order_id: &str) -> Result<Option<Request>, RepoError> {
        Ok(self
            .requests
            .values()
            .find(|r| r.razorpay_order_id.as_deref() == Some(order_id))
            .cloned())
    }
    fn save_change(
        &mut self,
        id: i64,
        to: RequestStatus,
        by: Option<i64>,
        rec: &ChangeRecord,
        now: Timestamp,
    ) -> Result<Request, RepoError> {
        let r = self.requests.get_mut(&id).ok_or(RepoError::NotFound)?;
        r.status = to;
        r.updated_at = now;
        if let Some(p) = &rec.paid {
            r.razorpay_payment_id = Some(p.payment_id.clone());
            r.paid_at = Some(p.paid_at);
            r.deliver_by = Some(p.deliver_by);
        }
        if let Some(d) = &rec.delivery {
            r.delivered_at = Some(now);
            for m in &d.attachments {
                self.delivered.push((id, *m));
            }
        }
        let r = self.requests[&id].clone();
        self.log(id, to, by, rec.message.clone(), now);
        Ok(r)
    }
    fn media_owned_by(&mut self, owner: i64, ids: &[i64]) -> Result<usize, RepoError> {
        Ok(ids
            .iter()
            .filter(|m| self.media.get(m) == Some(&owner))
            .count())
    }
    fn due_expiries(&mut self, now: Timestamp, limit: i64) -> Result<Vec<i64>, RepoError> {
        Ok(self
            .requests
            .values()
            .filter(|r| r.status == RequestStatus::AwaitingPayment && r.hold_until <= now)
            .take(limit as usize)
            .map(|r| r.id)
            .collect())
    }
    fn due_completions(
        &mut self,
        delivered_before: Timestamp,
        limit: i64,
    ) -> Result<Vec<i64>, RepoError> {
        Ok(self
            .requests
            .values()
            .filter(|r| {
                r.status == RequestStatus::Delivered
                    && r.delivered_at.is_some_and(|d| d <= delivered_before)
            })
            .take(limit as usize)
            .map(|r| r.id)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{OfferingInput, RequestInput, StatusChange};
    use crate::services::{self, PaymentApplied};
    use crate::CommissionError;
    use chrono::{TimeZone, Utc};

    const CREATOR: i64 = 100;
    const FAN: i64 = 200;
    const OTHER: i64 = 300;
    const HOLD: i64 = 1800;

    fn t(secs: i64) -> Timestamp {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    fn world(slots: i64) -> (MemoryStore, i64) {
        let mut s = MemoryStore::default();
        s.creators.insert(CREATOR);
        let o = services::create_offering(
            &mut s,
            CREATOR,
            &OfferingInput {
                title: Some("Portrait".into()),
                price: Some(50_000),
                currency: Some("INR".into()),
                delivery_days: Some(7),
                slots: Some(slots),
                ..Default::default()
            },
            t(0),
        )
        .unwrap();
        (s, o.id)
    }

    fn ask(
        s: &mut MemoryStore,
        fan: i64,
        commission: i64,
        at: Timestamp,
    ) -> Result<Request, CommissionError> {
        let input = RequestInput {
            commission_id: commission,
            description: "a cat".into(),
            ..Default::default()
        };
        let (r, _) = services::reserve_request(s, fan, &input, at, HOLD)?;
        services::attach_order(s, r.id, &format!("order_{}", r.id))?;
        Ok(r)
    }

    fn code(e: CommissionError) -> String {
        match e {
            CommissionError::Conflict { code, .. } => code.to_owned(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn slots_are_held_until_the_hold_ends_and_only_creators_offer() {
        let (mut s, c) = world(1);
        assert!(matches!(
            services::create_offering(&mut s, FAN, &OfferingInput::default(), t(0)),
            Err(CommissionError::NotCreator)
        ));
        ask(&mut s, FAN, c, t(0)).unwrap();
        assert_eq!(
            code(ask(&mut s, OTHER, c, t(10)).unwrap_err()),
            "no_free_slot"
        );
        // The hold ends: the slot is free again even before the sweep expires the request.
        ask(&mut s, OTHER, c, t(HOLD)).unwrap();
        assert!(!services::deletable(&mut s, CREATOR, c).unwrap());
        assert!(matches!(
            services::deletable(&mut s, OTHER, c),
            Err(CommissionError::NotFound)
        ));
    }

    #[test]
    fn a_payment_applies_once_and_late_or_extra_payments_are_refunded() {
        let (mut s, c) = world(1);
        let r = ask(&mut s, FAN, c, t(0)).unwrap();
        let oid = format!("order_{}", r.id);
        let paid = services::record_payment(&mut s, &oid, "pay_1", 50_000, t(5), t(6)).unwrap();
        let PaymentApplied::Ordered(ch) = paid else {
            panic!("{paid:?}")
        };
        assert_eq!(ch.request.status, RequestStatus::Ordered);
        assert_eq!(
            ch.request.deliver_by,
            Some(t(5) + chrono::Duration::days(7))
        );
        assert_eq!(
            services::record_payment(&mut s, &oid, "pay_1", 50_000, t(5), t(7)).unwrap(),
            PaymentApplied::AlreadyApplied
        );
        assert!(matches!(
            services::record_payment(&mut s, &oid, "pay_2", 50_000, t(5), t(7)).unwrap(),
            PaymentApplied::Refund(d) if d.payment_id == "pay_2"
        ));
        assert_eq!(
            services::record_payment(&mut s, "order_x", "pay_3", 1, t(5), t(7)).unwrap(),
            PaymentApplied::UnknownOrder
        );
    }

    #[test]
    fn an_expired_request_is_honoured_only_with_a_free_slot() {
        let (mut s, c) = world(1);
        let late = ask(&mut s, FAN, c, t(0)).unwrap();
        let expired =
            services::system_change(&mut s, late.id, RequestStatus::Expired, t(HOLD), 7).unwrap();
        assert_eq!(expired.unwrap().request.status, RequestStatus::Expired);
        let taker = ask(&mut s, OTHER, c, t(HOLD + 1)).unwrap();
        let oid = format!("order_{}", late.id);
        let refunded =
            services::record_payment(&mut s, &oid, "pay_l", 50_000, t(HOLD + 2), t(HOLD + 2))
                .unwrap();
        assert!(
            matches!(refunded, PaymentApplied::Refund(ref d) if d.reason.contains("no slot")),
            "{refunded:?}"
        );
        assert_eq!(s.requests[&late.id].status, RequestStatus::Expired);
        // The slot frees up (the other request expires): a later payment is honoured.
        services::system_change(&mut s, taker.id, RequestStatus::Expired, t(2 * HOLD + 1), 7)
            .unwrap();
        let honoured =
            services::record_payment(&mut s, &oid, "pay_l", 50_000, t(3 * HOLD), t(3 * HOLD))
                .unwrap();
        assert!(
            matches!(honoured, PaymentApplied::Ordered(_)),
            "{honoured:?}"
        );
        let steps: Vec<_> = s
            .history
            .iter()
            .filter(|(r, _)| *r == late.id)
            .map(|(_, h)| (h.status, h.by))
            .collect();
        assert_eq!(
            steps,
            [
                (RequestStatus::AwaitingPayment, Some(FAN)),
                (RequestStatus::Expired, None),
                (RequestStatus::Ordered, None)
            ]
        );
    }

    #[test]
    fn transitions_owe_refunds_and_strangers_see_nothing() {
        let (mut s, c) = world(3);
        let r = ask(&mut s, FAN, c, t(0)).unwrap();
        let change = |to| StatusChange {
            to,
            message: Some("reason".into()),
            attachments: Vec::new(),
        };
        assert!(matches!(
            services::change_status(
                &mut s,
                OTHER,
                r.id,
                &change(RequestStatus::Cancelled),
                t(1),
                7
            ),
            Err(CommissionError::NotFound)
        ));
        // Paid, then rejected: a full refund of that payment.
        services::record_payment(
            &mut s,
            &format!("order_{}", r.id),
            "pay_r",
            50_000,
            t(1),
            t(1),
        )
        .unwrap();
        let ch = services::change_status(
            &mut s,
            CREATOR,
            r.id,
            &change(RequestStatus::Rejected),
            t(2),
            7,
        )
        .unwrap();
        let due = ch.refund.unwrap();
        assert_eq!(
            (due.payment_id.as_str(), due.amount, due.fan_id),
            ("pay_r", 50_000, FAN)
        );
        // Unpaid and cancelled: nothing to refund; a payment arriving later is refunded.
        let u = ask(&mut s, FAN, c, t(3)).unwrap();
        let ch = services::change_status(
            &mut s,
            FAN,
            u.id,
            &change(RequestStatus::Cancelled),
            t(4),
            7,
        )
        .unwrap();
        assert!(ch.refund.is_none());
        assert!(matches!(
            services::record_payment(
                &mut s,
                &format!("order_{}", u.id),
                "pay_u",
                50_000,
                t(5),
                t(5)
            )
            .unwrap(),
            PaymentApplied::Refund(_)
        ));
        // A delivery's files must be the creator's.
        let d = ask(&mut s, FAN, c, t(6)).unwrap();
        services::record_payment(
            &mut s,
            &format!("order_{}", d.id),
            "pay_d",
            50_000,
            t(6),
            t(6),
        )
        .unwrap();
        for to in [RequestStatus::Accepted, RequestStatus::InProgress] {
            services::change_status(&mut s, CREATOR, d.id, &change(to), t(7), 7).unwrap();
        }
        s.media.insert(1, CREATOR);
        s.media.insert(2, OTHER);
        let deliver = |files: Vec<i64>| StatusChange {
            to: RequestStatus::Delivered,
            message: Some("here".into()),
            attachments: files,
        };
        assert!(matches!(
            services::change_status(&mut s, CREATOR, d.id, &deliver(vec![2]), t(8), 7),
            Err(CommissionError::Invalid(_))
        ));
        services::change_status(&mut s, CREATOR, d.id, &deliver(vec![1, 1]), t(8), 7).unwrap();
        assert_eq!(s.delivered, [(d.id, 1)]);
        // Autocompletion waits for its delay.
        assert!(
            services::system_change(&mut s, d.id, RequestStatus::Completed, t(9), 7)
                .unwrap()
                .is_none()
        );
        let done = services::system_change(
            &mut s,
            d.id,
            RequestStatus::Completed,
            t(8) + chrono::Duration::days(7),
            7,
        )
        .unwrap();
        assert_eq!(done.unwrap().by, None);
    }
}
