//! `oasis_billing::ports::CheckoutStore` for [`PgBilling`]: the checkout steps (tiers, plans,
//! the recurring reservation, free tiers, ending), delegating to the functions of
//! [`crate::billing`]. Kept in its own file so the adapter's internals can change apart.
use crate::billing::{self as b, PgBilling};
use oasis_billing::ports::{
    CheckoutStore, EndableMembership, Offer, OpenHiatus, PendingMembership, Reservation,
    TierForSale, TierRef,
};
use oasis_billing::{MembershipKind, MembershipStatus};
use oasis_kernel::{RepoError, Timestamp};

fn unknown(what: &str, v: &str) -> RepoError {
    RepoError::Unavailable(format!("unknown {what} {v:?} in memberships"))
}

impl CheckoutStore for PgBilling<'_> {
    fn tier_for_sale(&mut self, tier_id: i64) -> Result<Option<TierForSale>, RepoError> {
        Ok(b::tier(self.0, tier_id)?.map(|t| TierForSale {
            tier: t.to_ref(),
            name: t.name,
            trial_days: i64::from(t.trial_days),
        }))
    }
    fn is_creator(&mut self, user_id: i64) -> Result<bool, RepoError> {
        b::is_creator(self.0, user_id)
    }
    fn plan_id(&mut self, offer: &Offer) -> Result<Option<String>, RepoError> {
        b::plan_id(self.0, offer)
    }
    fn save_plan(&mut self, offer: &Offer, plan_id: &str) -> Result<String, RepoError> {
        b::save_plan(self.0, offer, plan_id)
    }
    fn start_trial(
        &mut self,
        membership_id: i64,
        user_id: i64,
        creator_id: i64,
        trial_end: Timestamp,
    ) -> Result<bool, RepoError> {
        b::start_trial(self.0, membership_id, user_id, creator_id, trial_end)
    }
    fn reserve_recurring(&mut self, user_id: i64, offer: &Offer) -> Result<Reservation, RepoError> {
        Ok(match b::reserve_recurring(self.0, user_id, offer)? {
            b::Reservation::New(id) => Reservation::New(id),
            b::Reservation::Existing(m) => Reservation::Existing(PendingMembership {
                id: m.id,
                status: MembershipStatus::parse(&m.status)
                    .ok_or_else(|| unknown("status", &m.status))?,
                period: m.period()?,
                amount: m.amount,
                currency: m.currency,
                subscription_id: m.razorpay_subscription_id,
                created_at: m.created_at,
            }),
        })
    }
    fn attach_subscription(
        &mut self,
        membership_id: i64,
        subscription_id: &str,
    ) -> Result<(), RepoError> {
        b::attach_subscription(self.0, membership_id, subscription_id)
    }
    fn open_hiatus(
        &mut self,
        creator_id: i64,
        at: Timestamp,
    ) -> Result<Option<OpenHiatus>, RepoError> {
        Ok(
            crate::billing_hiatus::current(self.0, creator_id, at)?.map(|h| OpenHiatus {
                id: h.id,
                resumes_at: h.resumes_at,
            }),
        )
    }
    fn join_during_hiatus(
        &mut self,
        membership_id: i64,
        hiatus: &OpenHiatus,
        first_charge: Timestamp,
    ) -> Result<(), RepoError> {
        crate::billing_hiatus::join(self.0, membership_id, hiatus.id, first_charge)
    }
    fn drop_reservation(&mut self, membership_id: i64) -> Result<(), RepoError> {
        b::drop_reservation(self.0, membership_id)
    }
    fn join_free_tier(&mut self, user_id: i64, tier: &TierRef) -> Result<bool, RepoError> {
        b::join_free_tier(self.0, user_id, tier.id, &tier.currency)
    }
    fn lock_endable_membership(
        &mut self,
        user_id: i64,
        tier_id: i64,
    ) -> Result<Option<EndableMembership>, RepoError> {
        b::lock_endable_membership(self.0, user_id, tier_id)?
            .map(|m| {
                Ok(EndableMembership {
                    id: m.id,
                    kind: MembershipKind::parse(&m.kind).ok_or_else(|| unknown("kind", &m.kind))?,
                    subscription_id: m.razorpay_subscription_id,
                })
            })
            .transpose()
    }
    fn cancel_membership(
        &mut self,
        membership_id: i64,
        at_cycle_end: bool,
        now: Timestamp,
    ) -> Result<(), RepoError> {
        b::cancel_membership(self.0, membership_id, at_cycle_end, now)
    }
}
