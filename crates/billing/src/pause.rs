//! Pausing and resuming a fan's recurring membership, as rules over billing's types (the app's
//! `billing.pause` / `billing.resume` jobs and routes apply them).
//!
//! Razorpay's rules (razorpay.com/docs/api/payments/subscriptions/pause-subscription and
//! …/resume-subscription; SPEC.md "Subscriptions"):
//! - `POST /v1/subscriptions/:id/pause {pause_at: "now"}` pauses at once; `now` is the only
//!   value. Only an `active` subscription can be paused; pausing an `authenticated` one cancels
//!   it, so Oasis never asks for that.
//! - `POST /v1/subscriptions/:id/resume {resume_at: "now"}` resumes a `paused` one at once.
//! - A paused subscription is not charged; both fire webhooks (`subscription.paused` /
//!   `subscription.resumed`) that merge like any other snapshot.
//!
//! So a fan's pause is *scheduled* for the end of the paid period: the fan keeps access until
//! then (`has_access` gives a `paused` membership access until `current_end`), Razorpay is asked
//! to pause `lead` before the renewal charge would be made, and Oasis resumes the subscription
//! after `cycles` periods (or earlier, when the fan asks): no charge and no access in between.
use crate::{BillingError, BillingPeriod, MembershipStatus};
use oasis_kernel::Timestamp;

/// A fan may skip 1 to 3 cycles.
pub const MAX_PAUSE_CYCLES: i64 = 3;

/// Where a pause stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PauseState {
    /// Waiting for the end of the paid period.
    Scheduled,
    /// Paused at Razorpay; resumed at `resume_at`.
    Paused,
    /// Resumed at Razorpay (done).
    Resumed,
    /// The fan resumed before it took effect (done; nothing was asked of Razorpay).
    Cancelled,
    /// Razorpay could not pause it (done; the reason is recorded).
    Failed,
}

impl PauseState {
    pub const ALL: [PauseState; 5] = [
        Self::Scheduled,
        Self::Paused,
        Self::Resumed,
        Self::Cancelled,
        Self::Failed,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Paused => "paused",
            Self::Resumed => "resumed",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }
    /// An unknown stored value is `None` (the adapter makes it an error).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
    /// Scheduled or paused: blocks another pause of the same membership.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Scheduled | Self::Paused)
    }
}

/// `cycles` of a pause request: 1 to [`MAX_PAUSE_CYCLES`].
pub fn validate_cycles(cycles: i64) -> Result<i64, BillingError> {
    if (1..=MAX_PAUSE_CYCLES).contains(&cycles) {
        Ok(cycles)
    } else {
        Err(BillingError::invalid(
            "cycles",
            format!("Ensure this value is between 1 and {MAX_PAUSE_CYCLES}."),
        ))
    }
}

/// What a pause request needs of the membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pausable {
    pub status: MembershipStatus,
    pub cancel_at_period_end: bool,
    pub current_end: Option<Timestamp>,
    pub period: BillingPeriod,
}

/// Whether the membership may be paused now; the refusal says why (HTTP 400 on `tier`).
pub fn check_pausable(m: &Pausable) -> Result<Timestamp, BillingError> {
    let refuse = |why: String| Err(BillingError::invalid("tier", why));
    if m.status != MembershipStatus::Active {
        return refuse(format!(
            "Only an active membership can be paused (Razorpay pauses only active subscriptions); this one is {}.",
            m.status.as_str()
        ));
    }
    if m.cancel_at_period_end {
        return refuse(
            "This membership ends at the end of its period; it cannot be paused.".into(),
        );
    }
    match m.current_end {
        Some(end) => Ok(end),
        None => refuse("This membership has no paid period yet.".into()),
    }
}

/// When to ask Razorpay to pause: `lead` before the paid period ends (before the renewal
/// charge), or now when that is past.
pub fn pause_at(current_end: Timestamp, now: Timestamp, lead: chrono::Duration) -> Timestamp {
    (current_end - lead).max(now)
}

/// When to resume: `cycles` billing periods after the paid period's end (calendar months, as
/// Razorpay bills monthly and yearly plans).
pub fn resume_at(current_end: Timestamp, period: BillingPeriod, cycles: i64) -> Timestamp {
    let months = u32::try_from(cycles.clamp(1, MAX_PAUSE_CYCLES) * period.months()).unwrap_or(1);
    current_end
        .checked_add_months(chrono::Months::new(months))
        .unwrap_or(current_end)
}

/// What the pause job does, given the subscription's status at Razorpay now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PauseStep {
    /// Active: ask Razorpay to pause.
    Pause,
    /// Already paused (a lost answer of an earlier attempt): record it.
    AlreadyPaused,
    /// Razorpay would not pause it (the reason is recorded; nothing is asked).
    Refuse(String),
}

pub fn pause_step(remote: Option<MembershipStatus>) -> PauseStep {
    match remote {
        Some(MembershipStatus::Active) => PauseStep::Pause,
        Some(MembershipStatus::Paused) => PauseStep::AlreadyPaused,
        Some(s) => PauseStep::Refuse(format!(
            "the subscription is {} at Razorpay (only active ones pause)",
            s.as_str()
        )),
        None => PauseStep::Refuse("the subscription's status at Razorpay is unknown".into()),
    }
}

/// What the resume job does, given the subscription's status at Razorpay now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeStep {
    /// Paused: ask Razorpay to resume.
    Resume,
    /// Not paused any more (resumed by an earlier attempt, or ended): record it as done.
    Done,
}

pub fn resume_step(remote: Option<MembershipStatus>) -> ResumeStep {
    match remote {
        Some(MembershipStatus::Paused) => ResumeStep::Resume,
        _ => ResumeStep::Done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use MembershipStatus as S;

    fn t(y: i32, m: u32, d: u32) -> Timestamp {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
    }

    fn pausable(status: S) -> Pausable {
        Pausable {
            status,
            cancel_at_period_end: false,
            current_end: Some(t(2026, 12, 15)),
            period: BillingPeriod::Monthly,
        }
    }

    fn refusal(r: Result<Timestamp, BillingError>) -> String {
        match r {
            Err(BillingError::Invalid { field, message }) => format!("{field}: {message}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn cycles_are_one_to_three() {
        assert!(validate_cycles(0).is_err());
        assert!(validate_cycles(4).is_err());
        assert_eq!(validate_cycles(3).unwrap(), 3);
    }

    #[test]
    fn only_an_active_renewing_paid_membership_pauses_and_the_refusal_says_why() {
        assert_eq!(
            check_pausable(&pausable(S::Active)).unwrap(),
            t(2026, 12, 15)
        );
        for s in [
            S::Created,
            S::Authenticated,
            S::Pending,
            S::Halted,
            S::Paused,
            S::Cancelled,
        ] {
            let why = refusal(check_pausable(&pausable(s)));
            assert!(why.starts_with("tier: Only an active"), "{why}");
            assert!(why.contains(s.as_str()), "{why}");
        }
        let mut ending = pausable(S::Active);
        ending.cancel_at_period_end = true;
        assert!(refusal(check_pausable(&ending)).contains("ends at the end"));
    }

    #[test]
    fn the_pause_lands_before_the_renewal_and_resumes_after_the_skipped_cycles() {
        let end = t(2026, 12, 15);
        let lead = chrono::Duration::seconds(60);
        assert_eq!(pause_at(end, t(2026, 12, 1), lead), end - lead);
        assert_eq!(
            pause_at(end, t(2026, 12, 20), lead),
            t(2026, 12, 20),
            "late: now"
        );
        assert_eq!(resume_at(end, BillingPeriod::Monthly, 2), t(2027, 2, 15));
        assert_eq!(resume_at(end, BillingPeriod::Yearly, 1), t(2027, 12, 15));
    }

    #[test]
    fn jobs_decide_from_razorpays_status() {
        assert_eq!(pause_step(Some(S::Active)), PauseStep::Pause);
        assert_eq!(pause_step(Some(S::Paused)), PauseStep::AlreadyPaused);
        assert!(matches!(
            pause_step(Some(S::Authenticated)),
            PauseStep::Refuse(_)
        ));
        assert!(matches!(pause_step(None), PauseStep::Refuse(_)));
        assert_eq!(resume_step(Some(S::Paused)), ResumeStep::Resume);
        assert_eq!(resume_step(Some(S::Active)), ResumeStep::Done);
        assert_eq!(resume_step(Some(S::Cancelled)), ResumeStep::Done);
    }
}
