//! Folding Razorpay's view of a subscription into the stored membership, so that duplicated,
//! reordered and replayed deliveries converge on one final state.
use crate::entitlement::{MembershipKind, MembershipStatus};
use oasis_kernel::Timestamp;

/// The billing-relevant state of a stored membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipState {
    pub kind: MembershipKind,
    pub status: MembershipStatus,
    pub current_start: Option<Timestamp>,
    pub current_end: Option<Timestamp>,
    pub cancel_at_period_end: bool,
    pub ended_at: Option<Timestamp>,
    pub paid_count: i64,
    /// Observation time of the snapshot the status came from.
    pub state_at: Option<Timestamp>,
}

impl MembershipState {
    /// A freshly created recurring membership (subscription created, nothing paid).
    pub fn new_recurring() -> Self {
        Self {
            kind: MembershipKind::Recurring,
            status: MembershipStatus::Created,
            current_start: None,
            current_end: None,
            cancel_at_period_end: false,
            ended_at: None,
            paid_count: 0,
            state_at: None,
        }
    }

    pub fn has_access(&self, now: Timestamp) -> bool {
        crate::has_access(&self.access_facts(), now)
    }

    /// What the entitlement rule reads of this state.
    pub fn access_facts(&self) -> crate::entitlement::AccessFacts {
        crate::entitlement::AccessFacts {
            kind: self.kind,
            status: self.status,
            current_start: self.current_start,
            current_end: self.current_end,
            cancel_at_period_end: self.cancel_at_period_end,
        }
    }
}

/// Razorpay's subscription entity as seen at `observed_at` (a webhook's `created_at`, or the
/// time of a fetch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionSnapshot {
    pub id: String,
    /// `None` when Razorpay sent a status we do not know (the status is then left alone).
    pub status: Option<MembershipStatus>,
    pub current_start: Option<Timestamp>,
    pub current_end: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub paid_count: i64,
    pub observed_at: Timestamp,
}

fn max_opt(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Merges a snapshot into the stored state. Commutative over any set of snapshots of one
/// subscription:
/// - `paid_count`, `current_end` (and the `current_start` paired with the latest period) only grow;
/// - a terminal status (cancelled/completed/expired) sticks once stored; among terminals the
///   first stored wins (we never resurrect or re-label an ended membership);
/// - otherwise the status comes from the snapshot with the greatest
///   (`paid_count`, `observed_at`, status rank);
/// - a cancellation that takes effect at or after the period end is a cancel-at-cycle-end.
pub fn merge_subscription(local: &MembershipState, snap: &SubscriptionSnapshot) -> MembershipState {
    let mut out = local.clone();
    out.paid_count = local.paid_count.max(snap.paid_count);
    if snap.current_end > local.current_end && snap.current_end.is_some() {
        out.current_start = snap.current_start.or(local.current_start);
    } else if local.current_start.is_none() {
        out.current_start = snap.current_start;
    }
    out.current_end = max_opt(local.current_end, snap.current_end);
    let Some(status) = snap.status else {
        return out;
    };
    if local.status.is_terminal() {
        return out;
    }
    let newer = if status.is_terminal() {
        true
    } else {
        let key_local = (local.paid_count, local.state_at, local.status.rank());
        let key_snap = (snap.paid_count, Some(snap.observed_at), status.rank());
        key_snap > key_local
    };
    if newer {
        out.status = status;
        out.state_at = Some(snap.observed_at);
        if status.is_terminal() {
            out.ended_at = snap.ended_at.or(Some(snap.observed_at));
            if status == MembershipStatus::Cancelled {
                // Razorpay cancels a cycle-end cancellation at `current_end`.
                if let (Some(ended), Some(end)) = (out.ended_at, out.current_end) {
                    if ended >= end {
                        out.cancel_at_period_end = true;
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};
    use MembershipStatus as S;

    fn t(secs: i64) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap() + Duration::seconds(secs)
    }

    fn snap(status: S, paid: i64, at: i64, end: Option<i64>) -> SubscriptionSnapshot {
        SubscriptionSnapshot {
            id: "sub_x".into(),
            status: Some(status),
            current_start: end.map(|e| t(e - 30 * 86400)),
            current_end: end.map(t),
            ended_at: None,
            paid_count: paid,
            observed_at: t(at),
        }
    }

    fn fold(snaps: &[SubscriptionSnapshot]) -> MembershipState {
        snaps.iter().fold(MembershipState::new_recurring(), |s, x| {
            merge_subscription(&s, x)
        })
    }

    fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
        if items.len() <= 1 {
            return vec![items.to_vec()];
        }
        let mut out = Vec::new();
        for i in 0..items.len() {
            let mut rest = items.to_vec();
            let x = rest.remove(i);
            for mut p in permutations(&rest) {
                p.insert(0, x.clone());
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn checkout_events_in_any_order_and_duplicated_give_the_same_state() {
        let month = 30 * 86400;
        let events = vec![
            snap(S::Authenticated, 0, 10, None),
            snap(S::Active, 1, 10, Some(10 + month)),
            snap(S::Active, 1, 11, Some(10 + month)), // charged
            snap(S::Active, 2, 10 + month, Some(10 + 2 * month)), // renewal
        ];
        let expected = fold(&events);
        assert_eq!(expected.status, S::Active);
        assert_eq!(expected.paid_count, 2);
        assert_eq!(expected.current_end, Some(t(10 + 2 * month)));
        for p in permutations(&events) {
            let mut with_dups = p.clone();
            with_dups.extend(p.iter().take(2).cloned());
            assert_eq!(fold(&p), expected);
            assert_eq!(fold(&with_dups), expected);
        }
    }

    #[test]
    fn pending_then_recovery_and_halt_converge() {
        let month = 30 * 86400;
        let a = vec![
            snap(S::Active, 1, 10, Some(month)),
            snap(S::Pending, 1, month + 5, Some(month)),
            snap(S::Active, 2, month + 86400, Some(2 * month)),
        ];
        let expected = fold(&a);
        assert_eq!(expected.status, S::Active);
        for p in permutations(&a) {
            assert_eq!(fold(&p), expected);
        }
        let b = vec![
            snap(S::Active, 1, 10, Some(month)),
            snap(S::Pending, 1, month + 5, Some(month)),
            snap(S::Halted, 1, month + 4 * 86400, Some(month)),
        ];
        let expected = fold(&b);
        assert_eq!(expected.status, S::Halted);
        for p in permutations(&b) {
            assert_eq!(fold(&p), expected);
        }
    }

    #[test]
    fn terminal_sticks_and_cycle_end_cancellation_is_detected() {
        let month = 30 * 86400;
        let mut cancelled = snap(S::Cancelled, 1, month, Some(month));
        cancelled.ended_at = Some(t(month));
        let events = vec![snap(S::Active, 1, 10, Some(month)), cancelled];
        for p in permutations(&events) {
            let s = fold(&p);
            assert_eq!(s.status, S::Cancelled);
            assert!(s.cancel_at_period_end);
            assert!(s.has_access(t(month - 1)));
            assert!(!s.has_access(t(month + 1)));
        }
        // Cancelled immediately mid-period: no access.
        let mut now_cancel = snap(S::Cancelled, 1, 100, Some(month));
        now_cancel.ended_at = Some(t(100));
        let s = fold(&[snap(S::Active, 1, 10, Some(month)), now_cancel]);
        assert!(!s.cancel_at_period_end);
        assert!(!s.has_access(t(200)));
    }

    #[test]
    fn unknown_status_only_moves_the_period() {
        let mut s = snap(S::Active, 1, 10, Some(1000));
        s.status = None;
        let out = fold(&[s]);
        assert_eq!(out.status, S::Created);
        assert_eq!(out.current_end, Some(t(1000)));
    }
}
