//! Route modules, one per domain (Lemmy's pattern): each exposes
//! `config(cfg, ctx)` to register its routes and app data, `ApiDoc` for its OpenAPI part and,
//! where it has background work, `jobs(registry, ctx)`.
//!
//! Paths are registered WITHOUT a trailing slash: `NormalizePath` trims it before routing, so
//! `/x` and `/x/` both answer directly (no redirect).
use crate::context::AppContext;
use crate::web::ServiceConfig;

pub mod billing;
pub mod catalog;
pub mod commissions;
pub mod health;
pub mod identity;
pub mod notify;
pub mod social;

pub fn config(cfg: &mut ServiceConfig, ctx: &AppContext) {
    health::config(cfg, ctx);
    identity::config(cfg, ctx);
    catalog::config(cfg, ctx);
    billing::config(cfg, ctx);
    mount_simulator(cfg, ctx);
    social::config(cfg, ctx);
    commissions::config(cfg, ctx);
    notify::config(cfg, ctx);
}

/// Mounts the embedded simulator under `/_razorpay` (nothing when real keys are configured).
fn mount_simulator(cfg: &mut ServiceConfig, ctx: &AppContext) {
    if let Some(sim) = ctx.payments.simulator() {
        let sim = sim.clone();
        cfg.service(
            crate::web::scope(crate::payments::SIM_PREFIX).configure(move |c| sim.configure(c)),
        );
    }
}
