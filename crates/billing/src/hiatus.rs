//! A creator's hiatus: every active membership's subscription is paused at Razorpay so that it
//! skips its next `cycles` charges (1 to 3), then resumed. Rules over billing's types; the app's
//! `billing.hiatus` job applies them (a batch at a time, at a bounded rate, resumable after a
//! crash). Razorpay's pause/resume rules are [`crate::pause`]'s: only `active` subscriptions
//! pause, only `paused` ones resume. Members keep access throughout (the creator chose the
//! break): their period end is extended to the hiatus' end.
use oasis_kernel::Timestamp;

/// Where a hiatus stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HiatusState {
    /// The job is pausing the members' subscriptions.
    Pausing,
    /// All asked; waiting for `resumes_at`.
    Paused,
    /// The job is resuming them.
    Resuming,
    /// Over.
    Done,
}

impl HiatusState {
    pub const ALL: [HiatusState; 4] = [Self::Pausing, Self::Paused, Self::Resuming, Self::Done];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pausing => "pausing",
            Self::Paused => "paused",
            Self::Resuming => "resuming",
            Self::Done => "done",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Where one member's subscription stands in a hiatus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberState {
    /// Not asked yet.
    Pending,
    /// Paused at Razorpay.
    Paused,
    /// Razorpay would not pause it (the reason is kept); it is charged as usual.
    Failed,
    /// Resumed at Razorpay.
    Resumed,
}

impl MemberState {
    pub const ALL: [MemberState; 4] = [Self::Pending, Self::Paused, Self::Failed, Self::Resumed];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paused => "paused",
            Self::Failed => "failed",
            Self::Resumed => "resumed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// When a hiatus started at `now` for `cycles` ends: `cycles` calendar months later (the
/// charges skipped are the monthly ones; a yearly member's next charge is further away and is
/// simply not touched by a pause shorter than its year).
pub fn resumes_at(now: Timestamp, cycles: i64) -> Timestamp {
    let months = u32::try_from(cycles.clamp(1, crate::pause::MAX_PAUSE_CYCLES)).unwrap_or(1);
    now.checked_add_months(chrono::Months::new(months))
        .unwrap_or(now)
}

/// The pause between two calls to Razorpay at `rate_per_sec` calls a second.
pub fn spacing(rate_per_sec: i64) -> std::time::Duration {
    std::time::Duration::from_millis(1000 / u64::try_from(rate_per_sec.max(1)).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn a_hiatus_lasts_its_cycles_in_calendar_months_and_calls_are_spaced() {
        let t = Utc.with_ymd_and_hms(2026, 12, 15, 0, 0, 0).unwrap();
        assert_eq!(
            resumes_at(t, 2),
            Utc.with_ymd_and_hms(2027, 2, 15, 0, 0, 0).unwrap()
        );
        assert_eq!(spacing(5), std::time::Duration::from_millis(200));
        assert_eq!(spacing(0), std::time::Duration::from_millis(1000));
        for s in HiatusState::ALL {
            assert_eq!(HiatusState::parse(s.as_str()), Some(s));
        }
        for s in MemberState::ALL {
            assert_eq!(MemberState::parse(s.as_str()), Some(s));
        }
    }
}
