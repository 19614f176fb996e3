//! Changing a membership's tier, the shell's part: reads the caller's membership and both tiers
//! and answers with billing's rules ([`oasis_billing::change`]). Only the preview is built; the
//! change itself is not (see the closing note of issue 14).
use crate::context::AppContext;
use crate::error::ApiError;
use crate::routes::billing::api_error;
use chrono::Utc;
use oasis_billing::change::{self, ChangeMethod, ChangePreview, Changeable};
use oasis_billing::BillingError;
use oasis_db::billing::tier;
use oasis_db::billing_pause::lock_for_pause;

/// `GET /subscriptions/change/preview`: what changing the caller's membership of `tier_id` to
/// `to_id` would do, by a plan update at Razorpay.
pub async fn preview_change(
    ctx: &AppContext,
    user_id: i64,
    tier_id: i64,
    to_id: i64,
) -> Result<ChangePreview, ApiError> {
    let now = Utc::now();
    ctx.db
        .run(move |c| {
            // Locks only for this statement (no transaction): a read.
            let Some((m, open)) = lock_for_pause(c, user_id, tier_id)? else {
                return Err(api_error(BillingError::invalid(
                    "tier",
                    "You have no membership of this tier to change.",
                )));
            };
            let state = m.state()?;
            let member = Changeable {
                status: state.status,
                cancel_at_period_end: state.cancel_at_period_end,
                current_start: state.current_start,
                current_end: state.current_end,
                period: m.period()?,
                amount: m.amount,
                currency: m.currency.clone(),
                pause_open: open.is_some(),
            };
            let from = tier(c, m.tier_id)?
                .ok_or_else(|| api_error(BillingError::invalid("tier", "No such tier.")))?
                .to_ref();
            let to = tier(c, to_id)?.map(|t| t.to_ref());
            let (cycle, offer) =
                change::check_change(&member, &from, to.as_ref()).map_err(api_error)?;
            change::preview(&cycle, &offer, now, ChangeMethod::Update).map_err(api_error)
        })
        .await
}
