//! Workflows of the app that are not HTTP: the adapters the domain workflows run on (billing's
//! unit of work over PostgreSQL), jobs, reconciliation and the operator CLI.
pub mod billing;
pub mod billing_db;
pub mod change;
pub mod checkout;
pub mod cli;
pub mod commissions;
pub mod guest;
pub mod hiatus;
pub mod inbox;
pub mod notify;
pub mod notify_mail;
pub mod notify_periodic;
pub mod pause;
pub mod payouts;
pub mod refunds;

use crate::context::AppContext;
use crate::jobs::JobRegistry;

/// Registers every job handler and starts the periodic sweeps (called once at start-up).
pub fn register_all(registry: &mut JobRegistry, ctx: &AppContext) {
    crate::routes::identity::jobs(registry, ctx);
    billing::register(registry, ctx);
    refunds::register(registry, ctx);
    payouts::register(registry, ctx);
    pause::register(registry, ctx);
    change::register(registry, ctx);
    hiatus::register(registry, ctx);
    crate::idempotency::sweep_periodically(ctx);
    notify::register(registry, ctx);
    notify_mail::register(registry, ctx);
    notify_periodic::register(registry, ctx);
    commissions::register(ctx);
}
