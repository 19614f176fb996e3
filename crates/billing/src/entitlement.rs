//! THE entitlement rule. The SQL function `billing_has_access` (migration
//! `2026-11-28-030000_billing`) mirrors [`has_access`] line by line; keep them in step (a test in
//! `oasis-db` runs both over the same fixtures).
use oasis_kernel::Timestamp;

/// Grace after a failed renewal while Razorpay retries (`pending`).
pub const GRACE_DAYS: i64 = 3;
/// Access bought by a one-time tier purchase.
pub const ONE_TIME_DAYS: i64 = 30;

/// How a membership was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MembershipKind {
    /// A Razorpay subscription, charged monthly.
    Recurring,
    /// One Razorpay order: one period of access, no renewal.
    OneTime,
    /// A price-0 (public) tier.
    Free,
}

impl MembershipKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recurring => "recurring",
            Self::OneTime => "one_time",
            Self::Free => "free",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "recurring" => Self::Recurring,
            "one_time" => Self::OneTime,
            "free" => Self::Free,
            _ => return None,
        })
    }
}

/// Membership status: Razorpay's subscription statuses (one-time and free memberships use
/// `created`/`active`/`cancelled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MembershipStatus {
    Created,
    Authenticated,
    Active,
    Pending,
    Halted,
    Paused,
    Cancelled,
    Completed,
    Expired,
}

impl MembershipStatus {
    pub const ALL: [MembershipStatus; 9] = [
        Self::Created,
        Self::Authenticated,
        Self::Active,
        Self::Pending,
        Self::Halted,
        Self::Paused,
        Self::Cancelled,
        Self::Completed,
        Self::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Authenticated => "authenticated",
            Self::Active => "active",
            Self::Pending => "pending",
            Self::Halted => "halted",
            Self::Paused => "paused",
            Self::Cancelled => "cancelled",
            Self::Completed => "completed",
            Self::Expired => "expired",
        }
    }

    /// Parses Razorpay's / our status name; unknown names are `None` (ignored, never guessed).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// `cancelled`, `completed` and `expired` never change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Cancelled | Self::Completed | Self::Expired)
    }

    /// THE live statuses: a recurring membership in one of these blocks a second one for the
    /// same user and tier (a checkout under way, or a subscription Razorpay may still charge).
    /// The SQL function `billing_status_is_live` (migration `2026-12-01-700000_billing_live_statuses`)
    /// mirrors this list; a test in `tests/api/billing.rs` checks that they agree on every status.
    pub const LIVE: [MembershipStatus; 5] = [
        Self::Created,
        Self::Authenticated,
        Self::Active,
        Self::Pending,
        Self::Paused,
    ];

    /// One of [`Self::LIVE`].
    pub fn is_live(self) -> bool {
        Self::LIVE.contains(&self)
    }

    /// Tie-break between snapshots observed at the same time with the same `paid_count`: later
    /// in the lifecycle wins.
    pub fn rank(self) -> u8 {
        match self {
            Self::Created => 0,
            Self::Authenticated => 1,
            Self::Active => 2,
            Self::Paused => 3,
            Self::Pending => 4,
            Self::Halted => 5,
            Self::Expired | Self::Completed | Self::Cancelled => 6,
        }
    }
}

/// What the entitlement rule reads of a membership: its kind, status and paid period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessFacts {
    pub kind: MembershipKind,
    pub status: MembershipStatus,
    pub current_start: Option<Timestamp>,
    pub current_end: Option<Timestamp>,
    pub cancel_at_period_end: bool,
}

/// Whether a membership gives access to its tier at `now`.
///
/// - recurring: `active`/`paused` inside the paid period; `authenticated` (authorised, first
///   charge later) from `current_start` (when set) until `current_end`, which only a free trial
///   (the trial's end) and a change of tier's replacement set before the first charge (the
///   replacement: from the old subscription's period end, where its first charge is due, until
///   `OASIS_BILLING_REPLACE_GRACE_SECS` later, so that a late or retried first charge leaves no
///   window without access); other authenticated subscriptions have no period; `pending` until
///   3 days after it;
///   cancelled-at-cycle-end until the period ends; nothing else (halted, cancelled now,
///   completed, expired, or not yet paid: created/authenticated);
/// - one-time: paid (`active`) and less than 30 days ago (`current_end` = paid + 30 days);
/// - free: while `active`.
pub fn has_access(m: &AccessFacts, now: Timestamp) -> bool {
    use MembershipStatus as S;
    let AccessFacts {
        kind,
        status,
        current_start,
        current_end,
        cancel_at_period_end,
    } = *m;
    let before = |end: Option<Timestamp>, extra_days: i64| {
        end.is_some_and(|e| now < e + chrono::Duration::days(extra_days))
    };
    match kind {
        MembershipKind::Free => status == S::Active,
        MembershipKind::OneTime => status == S::Active && before(current_end, 0),
        MembershipKind::Recurring => match status {
            S::Active | S::Paused => before(current_end, 0),
            // Authenticated (authorised, first charge later): only a free trial and a
            // replacement set a period before the first charge (a replacement's starts later).
            S::Authenticated => current_start.is_none_or(|s| s <= now) && before(current_end, 0),
            S::Pending => before(current_end, GRACE_DAYS),
            S::Cancelled => cancel_at_period_end && before(current_end, 0),
            S::Created | S::Halted | S::Completed | S::Expired => false,
        },
    }
}

/// The first instant after `now` at which [`has_access`] changes by the clock alone (a period
/// beginning or ending), or `None` when the clock cannot change it (only a write can). Exact:
/// the answer is the same on `[now, t)` and different at `t`. The SQL function
/// `billing_access_changes_at` (migration `2026-12-08-010000_billing_access_changes_at`)
/// mirrors it; the read cache keeps a tier list's paying member counts until the earliest of
/// these among its memberships.
pub fn access_changes_at(m: &AccessFacts, now: Timestamp) -> Option<Timestamp> {
    use MembershipStatus as S;
    let ends = |extra_days: i64| {
        m.current_end
            .map(|e| e + chrono::Duration::days(extra_days))
            .filter(|&e| now < e)
    };
    match m.kind {
        MembershipKind::Free => None,
        MembershipKind::OneTime => (m.status == S::Active).then(|| ends(0)).flatten(),
        MembershipKind::Recurring => match m.status {
            S::Active | S::Paused => ends(0),
            // Before its start: access begins at the start (when the period is not over by
            // then); from it: access ends with the period.
            S::Authenticated => match (m.current_start, ends(0)) {
                (Some(s), Some(e)) if now < s => (s < e).then_some(s),
                (_, e) => e,
            },
            S::Pending => ends(GRACE_DAYS),
            S::Cancelled => m.cancel_at_period_end.then(|| ends(0)).flatten(),
            S::Created | S::Halted | S::Completed | S::Expired => None,
        },
    }
}

/// One entitlement case: the rule's inputs and the instant to evaluate at.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub kind: MembershipKind,
    pub status: MembershipStatus,
    pub current_start: Option<Timestamp>,
    pub current_end: Option<Timestamp>,
    pub cancel_at_period_end: bool,
    pub at: Timestamp,
}

/// Fixtures shared by the unit tests here and the SQL-mirror test (`tests/api/billing.rs`):
/// every kind × status × period end (none, 4 days ago, 2 days ago, 1 h ago, in 1 h, in 20 days)
/// × cancel flag, evaluated at the current time; the period start takes turns among none, an
/// hour ago and in an hour (so that an authenticated replacement before its start is covered).
pub fn fixtures() -> Vec<Case> {
    let at = chrono::Utc::now();
    let mut out = Vec::new();
    for kind in [
        MembershipKind::Recurring,
        MembershipKind::OneTime,
        MembershipKind::Free,
    ] {
        for status in MembershipStatus::ALL {
            for end in [
                None,
                Some(-24 * 4),
                Some(-24 * 2),
                Some(-1),
                Some(1),
                Some(24 * 20),
            ]
            .into_iter()
            .enumerate()
            {
                for (c, cancel_at_period_end) in [false, true].into_iter().enumerate() {
                    let start = [None, Some(-1), Some(1)][(2 * end.0 + c) % 3];
                    let end = end.1;
                    out.push(Case {
                        kind,
                        status,
                        current_start: start.map(|h| at + chrono::Duration::hours(h)),
                        current_end: end.map(|h| at + chrono::Duration::hours(h)),
                        cancel_at_period_end,
                        at,
                    });
                }
            }
        }
    }
    out
}

impl Case {
    /// The case's membership facts.
    pub fn facts(&self) -> AccessFacts {
        AccessFacts {
            kind: self.kind,
            status: self.status,
            current_start: self.current_start,
            current_end: self.current_end,
            cancel_at_period_end: self.cancel_at_period_end,
        }
    }

    /// The pure rule on this case.
    pub fn expected(&self) -> bool {
        has_access(&self.facts(), self.at)
    }

    /// [`access_changes_at`] on this case.
    pub fn expected_change(&self) -> Option<Timestamp> {
        access_changes_at(&self.facts(), self.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};
    use MembershipKind as K;
    use MembershipStatus as S;

    /// The rule over positional facts: the cases below read as a truth table.
    fn access(
        kind: MembershipKind,
        status: MembershipStatus,
        current_start: Option<Timestamp>,
        current_end: Option<Timestamp>,
        cancel_at_period_end: bool,
        now: Timestamp,
    ) -> bool {
        has_access(
            &AccessFacts {
                kind,
                status,
                current_start,
                current_end,
                cancel_at_period_end,
            },
            now,
        )
    }

    fn now() -> Timestamp {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
    }
    fn at(hours: i64) -> Option<Timestamp> {
        Some(now() + Duration::hours(hours))
    }

    #[test]
    fn active_recurring_only_inside_paid_period() {
        assert!(access(K::Recurring, S::Active, None, at(1), false, now()));
        assert!(!access(K::Recurring, S::Active, None, at(-1), false, now()));
        assert!(!access(K::Recurring, S::Active, None, None, false, now()));
        // Exactly at the end: over.
        assert!(!access(K::Recurring, S::Active, None, at(0), false, now()));
    }

    #[test]
    fn pending_has_three_days_grace() {
        assert!(access(
            K::Recurring,
            S::Pending,
            None,
            at(-48),
            false,
            now()
        ));
        assert!(!access(
            K::Recurring,
            S::Pending,
            None,
            at(-73),
            false,
            now()
        ));
    }

    #[test]
    fn cancelled_at_cycle_end_keeps_access_until_period_end_but_cancel_now_does_not() {
        assert!(access(K::Recurring, S::Cancelled, None, at(5), true, now()));
        assert!(!access(
            K::Recurring,
            S::Cancelled,
            None,
            at(-5),
            true,
            now()
        ));
        assert!(!access(
            K::Recurring,
            S::Cancelled,
            None,
            at(5),
            false,
            now()
        ));
        // Scheduled cancellation on a still-active subscription: access as usual.
        assert!(access(K::Recurring, S::Active, None, at(5), true, now()));
    }

    #[test]
    fn halted_completed_expired_and_unpaid_give_nothing() {
        for s in [S::Halted, S::Completed, S::Expired, S::Created] {
            for cancel in [false, true] {
                assert!(
                    !access(K::Recurring, s, None, at(500), cancel, now()),
                    "{s:?}"
                );
            }
        }
    }

    #[test]
    fn an_authenticated_subscription_gives_access_only_inside_a_trial() {
        // A trial sets the period end (the trial's end) before the first charge.
        assert!(access(
            K::Recurring,
            S::Authenticated,
            None,
            at(5),
            false,
            now()
        ));
        assert!(!access(
            K::Recurring,
            S::Authenticated,
            None,
            at(-5),
            false,
            now()
        ));
        // Any other authenticated subscription (a later start) has no period yet.
        assert!(!access(
            K::Recurring,
            S::Authenticated,
            None,
            None,
            false,
            now()
        ));
    }

    #[test]
    fn a_replacement_gives_access_from_its_start_until_its_first_charge_is_judged() {
        // From the old subscription's period end (its start) for the grace, while the first
        // charge is awaited; not before the start (the old tier until then).
        let r = |start: i64, end: i64, at: i64| {
            access(
                K::Recurring,
                S::Authenticated,
                Some(now() + Duration::hours(start)),
                Some(now() + Duration::hours(end)),
                false,
                now() + Duration::hours(at),
            )
        };
        assert!(!r(10, 34, 9), "before the start");
        assert!(
            r(10, 34, 10) && r(10, 34, 33),
            "from the start through the grace"
        );
        assert!(!r(10, 34, 34), "the grace is over and no charge came");
        // Judged: charged (active, the new period), or failed (pending: the usual 3 days).
        assert!(access(
            K::Recurring,
            S::Active,
            Some(now()),
            at(720),
            false,
            now()
        ));
        assert!(access(
            K::Recurring,
            S::Pending,
            Some(now()),
            at(-48),
            false,
            now()
        ));
        assert!(!access(
            K::Recurring,
            S::Halted,
            Some(now()),
            at(24),
            false,
            now()
        ));
        // A start is ignored by every other status.
        assert!(access(K::Recurring, S::Active, at(5), at(10), false, now()));
    }

    #[test]
    fn one_time_lasts_thirty_days_from_payment() {
        let paid = now() - Duration::days(29);
        let end = Some(paid + Duration::days(ONE_TIME_DAYS));
        assert!(access(K::OneTime, S::Active, None, end, false, now()));
        let paid = now() - Duration::days(31);
        let end = Some(paid + Duration::days(ONE_TIME_DAYS));
        assert!(!access(K::OneTime, S::Active, None, end, false, now()));
        assert!(!access(K::OneTime, S::Created, None, at(100), false, now()));
        assert!(!access(
            K::OneTime,
            S::Cancelled,
            None,
            at(100),
            true,
            now()
        ));
    }

    #[test]
    fn free_tier_while_membership_exists() {
        assert!(access(K::Free, S::Active, None, None, false, now()));
        assert!(!access(K::Free, S::Cancelled, None, None, false, now()));
    }

    #[test]
    fn fixtures_cover_both_outcomes() {
        let f = fixtures();
        assert_eq!(f.len(), 3 * 9 * 6 * 2);
        assert!(f.iter().any(Case::expected));
        assert!(f.iter().any(|c| !c.expected()));
        // An authenticated period both before its start (denied) and inside it (granted).
        let auth = |c: &&Case| c.status == S::Authenticated && c.kind == K::Recurring;
        let future = |t: Option<Timestamp>, at: Timestamp| t.is_some_and(|t| t > at);
        assert!(f.iter().filter(auth).any(|c| future(c.current_start, c.at)
            && future(c.current_end, c.at)
            && !c.expected()));
        assert!(f
            .iter()
            .filter(auth)
            .any(|c| c.current_start.is_some_and(|s| s < c.at) && c.expected()));
    }

    /// Every instant the rule's answer could turn at: the periods' starts and ends, the grace's
    /// end, and just before and after each, plus far in the future.
    fn probes(c: &Case) -> Vec<Timestamp> {
        let mut t = vec![c.at + Duration::days(3650)];
        for x in [
            c.current_start,
            c.current_end,
            c.current_end.map(|e| e + Duration::days(GRACE_DAYS)),
        ]
        .into_iter()
        .flatten()
        {
            t.extend([
                x - Duration::microseconds(1),
                x,
                x + Duration::microseconds(1),
            ]);
        }
        t.retain(|&x| x >= c.at);
        t
    }

    #[test]
    fn access_changes_exactly_when_it_says() {
        let (mut some, mut none) = (0, 0);
        for c in fixtures() {
            let now = c.expected();
            let at = |t| has_access(&c.facts(), t);
            match c.expected_change() {
                Some(t) => {
                    some += 1;
                    assert!(t > c.at, "{c:?}");
                    assert_ne!(at(t), now, "{c:?}: no change at {t}");
                    for p in probes(&c).into_iter().filter(|&p| p < t) {
                        assert_eq!(at(p), now, "{c:?}: changed at {p}, before {t}");
                    }
                }
                None => {
                    none += 1;
                    for p in probes(&c) {
                        assert_eq!(at(p), now, "{c:?}: changed at {p}");
                    }
                }
            }
        }
        assert!(some > 20 && none > 20, "{some} {none}");
        // Both ways: an access that begins (a replacement's start) and one that ends.
        let begins = fixtures()
            .into_iter()
            .any(|c| !c.expected() && c.expected_change().is_some());
        let ends = fixtures()
            .into_iter()
            .any(|c| c.expected() && c.expected_change().is_some());
        assert!(begins && ends);
    }

    #[test]
    fn statuses_round_trip() {
        for s in MembershipStatus::ALL {
            assert_eq!(MembershipStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(MembershipStatus::parse("weird"), None);
    }
}
