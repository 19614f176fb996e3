//! Route modules, one per domain (Lemmy's pattern): each exposes
//! `config(cfg, ctx)` to register its routes and app data, `ApiDoc` for its OpenAPI part and,
//! where it has background work, `jobs(registry, ctx)`.
//!
//! Paths are registered WITHOUT a trailing slash: `NormalizePath` trims it before routing, so
//! `/x` and `/x/` both answer directly (no redirect).
use crate::context::AppContext;
use crate::jobs::JobRegistry;
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
    crate::payments::mount(cfg, ctx);
    social::config(cfg, ctx);
    commissions::config(cfg, ctx);
    notify::config(cfg, ctx);
}

pub fn jobs(registry: &mut JobRegistry, ctx: &AppContext) {
    identity::jobs(registry, ctx);
    billing::jobs(registry, ctx);
    crate::idempotency::sweep_periodically(ctx);
    notify::jobs(registry, ctx);
}
