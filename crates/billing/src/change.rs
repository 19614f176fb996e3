//! Changing a membership's tier: what the fan is shown before anything changes. Pure rules:
//! [`check_change`] (which changes may be asked for at all) and [`preview`] (what they cost).
//! `GET /subscriptions/change/preview` answers with them and `POST /subscriptions/change/`
//! makes the change the preview announced (the app's `workflows::change`): a `billing_changes`
//! row is recorded before Razorpay is asked, so a crash or a lost answer is resolved by fetching
//! the subscription ([`ChangeState`], [`resolve_step`]).
//!
//! Razorpay's documented rules for `PATCH /v1/subscriptions/:id {plan_id, schedule_change_at}`
//! (razorpay.com/docs/payments/subscriptions/update, …/api/payments/subscriptions/update-subscription):
//! - only `authenticated` and `active` subscriptions can be updated, and only card mandates
//!   (not UPI or eMandate; for domestic cards only the offer) — elsewhere Oasis must *replace*
//!   the subscription: cancel at cycle end plus a new one starting at the period end;
//! - `schedule_change_at: "now"`: Razorpay compares the remaining amount of the current cycle on
//!   the old plan with the amount for the rest of the cycle on the new plan; it charges the
//!   difference at once through an invoice (an upgrade; if that charge fails the subscription is
//!   not updated) or refunds it through a credit note (a downgrade). No charge or refund when they
//!   are equal. In USD the prorated difference must be at least 50 cents, and never less than the
//!   smallest currency subunit;
//! - `schedule_change_at: "cycle_end"`: the new plan applies from the next charge, at its price.
//!
//! Oasis applies an upgrade now (access to the new tier at once, the prorated difference charged
//! as Razorpay does) and a downgrade at the cycle end (access to the old tier until then, the next
//! charge at the new price): a downgrade never leaves an unexplained credit.
use crate::ports::{Offer, TierRef};
use crate::{BillingError, BillingPeriod, MembershipStatus};
use oasis_kernel::Timestamp;

/// When a change takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effective {
    Now,
    CycleEnd,
}

/// How the change is made at Razorpay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeMethod {
    /// `PATCH /v1/subscriptions/:id` (card mandates).
    Update,
    /// Cancel at cycle end and a new subscription from the period end (where Razorpay refuses an
    /// update).
    Replace,
}

impl Effective {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Now => "now",
            Self::CycleEnd => "cycle_end",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Now, Self::CycleEnd]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

impl ChangeMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Update => "update",
            Self::Replace => "replace",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Update, Self::Replace]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// How the change is made for a subscription whose mandate is `payment_method` (Razorpay's
/// `payment_method` of the subscription): card mandates are updated; UPI, eMandate and other
/// mandates are replaced. Unknown (`None`): an update is tried, and a refusal falls back to a
/// replacement.
pub fn method_for(payment_method: Option<&str>) -> ChangeMethod {
    match payment_method {
        None => ChangeMethod::Update,
        Some(m) if m.eq_ignore_ascii_case("card") => ChangeMethod::Update,
        Some(_) => ChangeMethod::Replace,
    }
}

/// Where a recorded change stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeState {
    /// Recorded; Razorpay is being asked (or its answer was lost: [`resolve_step`] decides).
    Requested,
    /// Made at Razorpay for the cycle end; the membership moves when the first charge at the
    /// new price comes, or when the cycle end has passed.
    Scheduled,
    /// In force: the membership is on the new tier (an update), or the old subscription ends
    /// at the cycle end and the replacement starts then (a replacement).
    Applied,
    /// Razorpay did not make it (the reason is recorded; the fan may ask again).
    Failed,
}

impl ChangeState {
    pub const ALL: [ChangeState; 4] = [
        Self::Requested,
        Self::Scheduled,
        Self::Applied,
        Self::Failed,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Scheduled => "scheduled",
            Self::Applied => "applied",
            Self::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
    /// Requested or scheduled: blocks another change (and a pause) of the same membership.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Requested | Self::Scheduled)
    }
}

/// What a requested update's answer (or, after a crash or a lost answer, the subscription as
/// fetched) says happened at Razorpay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// The subscription bills the new plan now.
    AppliedNow,
    /// The new plan waits for the cycle end.
    Scheduled,
    /// Neither: the update was not made.
    NotMade,
}

/// Reads the subscription's plan and scheduled change against the change asked for.
pub fn resolve_step(
    remote_plan_id: &str,
    has_scheduled_changes: bool,
    to_plan_id: &str,
    effective: Effective,
) -> UpdateOutcome {
    if remote_plan_id == to_plan_id {
        UpdateOutcome::AppliedNow
    } else if has_scheduled_changes && effective == Effective::CycleEnd {
        UpdateOutcome::Scheduled
    } else {
        UpdateOutcome::NotMade
    }
}

/// The prorated charges an immediate upgrade asked at `now` may come with: Razorpay prorates
/// at the moment it makes the update, a little after the preview, so its charge lies between
/// the proration `skew` later (the floor) and the preview's (the ceiling). `(floor, ceiling)`.
pub fn charge_window(
    current: &CurrentCycle,
    target: &Offer,
    now: Timestamp,
    skew: chrono::Duration,
) -> Result<(i64, i64), BillingError> {
    let at = preview(current, target, now, ChangeMethod::Update)?;
    let later = preview(current, target, now + skew, ChangeMethod::Update)?;
    Ok((later.charge_now.min(at.charge_now), at.charge_now))
}

/// The membership being changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentCycle {
    pub amount: i64,
    pub currency: String,
    pub period: BillingPeriod,
    pub current_start: Timestamp,
    pub current_end: Timestamp,
}

/// What the fan is shown, and what the change must then do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangePreview {
    pub effective: Effective,
    pub method: ChangeMethod,
    /// Charged at once (minor units).
    pub charge_now: i64,
    /// Given back (always 0: downgrades wait for the cycle end).
    pub credit: i64,
    pub next_charge_amount: i64,
    pub next_charge_at: Timestamp,
    pub currency: String,
}

/// The membership a change is asked of, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changeable {
    pub status: MembershipStatus,
    pub cancel_at_period_end: bool,
    pub current_start: Option<Timestamp>,
    pub current_end: Option<Timestamp>,
    pub period: BillingPeriod,
    pub amount: i64,
    pub currency: String,
    /// A pause is scheduled or in force.
    pub pause_open: bool,
}

/// Which changes may be asked for: an active membership in a paid period, not ending and not
/// paused, to another active tier of the same creator sold per the membership's period.
/// Returns the current cycle and the target's offer for [`preview`].
pub fn check_change(
    m: &Changeable,
    from: &TierRef,
    to: Option<&TierRef>,
) -> Result<(CurrentCycle, Offer), BillingError> {
    let to = match to {
        Some(t) if t.is_active => t,
        _ => return Err(BillingError::invalid("to", "No such tier.")),
    };
    if to.id == from.id {
        return Err(BillingError::invalid("to", "That is already your tier."));
    }
    if to.creator_id != from.creator_id {
        return Err(BillingError::invalid(
            "to",
            "That tier belongs to another creator; a change stays with the same creator.",
        ));
    }
    let refuse = |why: String| Err(BillingError::invalid("tier", why));
    if m.status != MembershipStatus::Active {
        return refuse(format!(
            "Only an active membership can change tier (Razorpay updates only active subscriptions in a paid cycle); this one is {}.",
            m.status.as_str()
        ));
    }
    if m.cancel_at_period_end {
        return refuse(
            "This membership ends at the end of its period; it cannot change tier.".into(),
        );
    }
    if m.pause_open {
        return refuse(
            "This membership has a pause scheduled or in force; resume it first.".into(),
        );
    }
    let (Some(current_start), Some(current_end)) = (m.current_start, m.current_end) else {
        return refuse("This membership has no paid period yet.".into());
    };
    let Some(offer) = to.offer(m.period) else {
        return Err(BillingError::invalid(
            "to",
            format!("That tier is not sold {}.", m.period.as_str()),
        ));
    };
    Ok((
        CurrentCycle {
            amount: m.amount,
            currency: m.currency.clone(),
            period: m.period,
            current_start,
            current_end,
        },
        offer,
    ))
}

/// Smallest prorated difference Razorpay accepts for an immediate update, in minor units.
fn min_difference(currency: &str) -> i64 {
    if currency.eq_ignore_ascii_case("USD") {
        50
    } else {
        1
    }
}

/// The preview of changing `current` to `target` at `now` by `method`.
pub fn preview(
    current: &CurrentCycle,
    target: &Offer,
    now: Timestamp,
    method: ChangeMethod,
) -> Result<ChangePreview, BillingError> {
    if !current.currency.eq_ignore_ascii_case(&target.currency) {
        return Err(BillingError::invalid(
            "to",
            format!(
                "That tier is priced in {}; yours in {}.",
                target.currency, current.currency
            ),
        ));
    }
    let at_cycle_end = ChangePreview {
        effective: Effective::CycleEnd,
        method,
        charge_now: 0,
        credit: 0,
        next_charge_amount: target.amount,
        next_charge_at: current.current_end,
        currency: current.currency.clone(),
    };
    let upgrade = target.amount > current.amount && target.period == current.period;
    if !upgrade || method == ChangeMethod::Replace || now >= current.current_end {
        return Ok(at_cycle_end);
    }
    let cycle = (current.current_end - current.current_start)
        .num_seconds()
        .max(1);
    let remaining = (current.current_end - now.max(current.current_start))
        .num_seconds()
        .clamp(0, cycle);
    // The difference of the remaining amounts, rounded half up in integer arithmetic.
    let diff = i128::from(target.amount - current.amount) * i128::from(remaining);
    let charge = ((2 * diff + i128::from(cycle)) / (2 * i128::from(cycle))) as i64;
    if charge < min_difference(&current.currency) {
        return Ok(at_cycle_end);
    }
    Ok(ChangePreview {
        effective: Effective::Now,
        charge_now: charge,
        ..at_cycle_end
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    fn t(d: i64) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap() + Duration::days(d)
    }

    fn cur(amount: i64, currency: &str) -> CurrentCycle {
        CurrentCycle {
            amount,
            currency: currency.into(),
            period: BillingPeriod::Monthly,
            current_start: t(0),
            current_end: t(30),
        }
    }

    fn to(amount: i64, currency: &str) -> Offer {
        Offer {
            tier_id: 9,
            period: BillingPeriod::Monthly,
            amount,
            currency: currency.into(),
        }
    }

    #[test]
    fn an_upgrade_charges_the_prorated_difference_now() {
        let p = preview(
            &cur(30_000, "INR"),
            &to(60_000, "INR"),
            t(10),
            ChangeMethod::Update,
        )
        .unwrap();
        assert_eq!(p.effective, Effective::Now);
        assert_eq!(p.charge_now, 20_000, "two thirds of the cycle left × 30000");
        assert_eq!(
            (p.credit, p.next_charge_amount, p.next_charge_at),
            (0, 60_000, t(30))
        );
    }

    #[test]
    fn a_downgrade_waits_for_the_cycle_end_and_credits_nothing() {
        let p = preview(
            &cur(60_000, "INR"),
            &to(30_000, "INR"),
            t(10),
            ChangeMethod::Update,
        )
        .unwrap();
        assert_eq!(
            (
                p.effective,
                p.charge_now,
                p.credit,
                p.next_charge_amount,
                p.next_charge_at
            ),
            (Effective::CycleEnd, 0, 0, 30_000, t(30))
        );
    }

    #[test]
    fn a_replace_or_a_tiny_difference_applies_at_the_cycle_end() {
        let p = preview(
            &cur(30_000, "INR"),
            &to(60_000, "INR"),
            t(10),
            ChangeMethod::Replace,
        )
        .unwrap();
        assert_eq!(
            (p.effective, p.method, p.charge_now),
            (Effective::CycleEnd, ChangeMethod::Replace, 0)
        );
        // 10 cents more with 1/30 of the cycle left: under Razorpay's 50-cent minimum.
        let p = preview(
            &cur(1_000, "USD"),
            &to(1_100, "USD"),
            t(29),
            ChangeMethod::Update,
        )
        .unwrap();
        assert_eq!(p.effective, Effective::CycleEnd);
    }

    fn tier(id: i64, creator_id: i64, price: i64) -> TierRef {
        TierRef {
            id,
            creator_id,
            price,
            annual_price: None,
            currency: "INR".into(),
            is_active: true,
        }
    }

    fn member() -> Changeable {
        Changeable {
            status: MembershipStatus::Active,
            cancel_at_period_end: false,
            current_start: Some(t(0)),
            current_end: Some(t(30)),
            period: BillingPeriod::Monthly,
            amount: 30_000,
            currency: "INR".into(),
            pause_open: false,
        }
    }

    fn refused(m: &Changeable, to: Option<&TierRef>) -> (&'static str, String) {
        match check_change(m, &tier(1, 7, 30_000), to) {
            Err(BillingError::Invalid { field, message }) => (field, message),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_change_is_checked_before_it_is_priced() {
        let (cycle, offer) =
            check_change(&member(), &tier(1, 7, 30_000), Some(&tier(2, 7, 60_000))).unwrap();
        assert_eq!((cycle.amount, cycle.current_end), (30_000, t(30)));
        assert_eq!((offer.tier_id, offer.amount), (2, 60_000));

        assert_eq!(refused(&member(), Some(&tier(1, 7, 30_000))).0, "to");
        assert!(refused(&member(), Some(&tier(3, 8, 60_000)))
            .1
            .contains("another creator"));
        assert_eq!(refused(&member(), None).1, "No such tier.");
        let mut inactive = tier(2, 7, 60_000);
        inactive.is_active = false;
        assert_eq!(refused(&member(), Some(&inactive)).1, "No such tier.");
        let mut yearly = member();
        yearly.period = BillingPeriod::Yearly;
        assert!(refused(&yearly, Some(&tier(2, 7, 60_000)))
            .1
            .contains("yearly"));

        let to = tier(2, 7, 60_000);
        let mut halted = member();
        halted.status = MembershipStatus::Halted;
        assert!(refused(&halted, Some(&to)).1.contains("halted"));
        let mut ending = member();
        ending.cancel_at_period_end = true;
        assert_eq!(refused(&ending, Some(&to)).0, "tier");
        let mut paused = member();
        paused.pause_open = true;
        assert!(refused(&paused, Some(&to)).1.contains("pause"));
        let mut unpaid = member();
        unpaid.current_end = None;
        assert!(refused(&unpaid, Some(&to)).1.contains("no paid period"));
    }

    #[test]
    fn card_mandates_update_and_others_are_replaced() {
        assert_eq!(method_for(Some("card")), ChangeMethod::Update);
        assert_eq!(method_for(None), ChangeMethod::Update);
        assert_eq!(method_for(Some("upi")), ChangeMethod::Replace);
        assert_eq!(method_for(Some("emandate")), ChangeMethod::Replace);
        for s in ChangeState::ALL {
            assert_eq!(ChangeState::parse(s.as_str()), Some(s));
        }
        assert!(ChangeState::Scheduled.is_open() && !ChangeState::Applied.is_open());
    }

    #[test]
    fn a_lost_answer_is_resolved_from_the_subscriptions_plan() {
        use Effective::*;
        assert_eq!(
            resolve_step("plan_b", false, "plan_b", Now),
            UpdateOutcome::AppliedNow
        );
        assert_eq!(
            resolve_step("plan_a", true, "plan_b", CycleEnd),
            UpdateOutcome::Scheduled
        );
        assert_eq!(
            resolve_step("plan_a", false, "plan_b", CycleEnd),
            UpdateOutcome::NotMade
        );
        assert_eq!(
            resolve_step("plan_a", true, "plan_b", Now),
            UpdateOutcome::NotMade
        );
    }

    #[test]
    fn the_prorated_charge_may_come_a_little_later_and_a_little_lower() {
        let (floor, ceiling) = charge_window(
            &cur(30_000, "INR"),
            &to(60_000, "INR"),
            t(10),
            chrono::Duration::days(3),
        )
        .unwrap();
        assert_eq!((floor, ceiling), (17_000, 20_000));
    }

    #[test]
    fn another_currency_is_refused() {
        assert!(preview(
            &cur(30_000, "INR"),
            &to(1_000, "USD"),
            t(1),
            ChangeMethod::Update
        )
        .is_err());
    }
}
