#![doc = include_str!("../README.md")]

pub mod admin;
pub mod cached;
pub mod cluster;
pub mod errors;
pub mod migrations;
pub mod pool;
/// Diesel table definitions, generated from migrations/ by `scripts/print-schema.sh`.
pub mod schema;

pub mod billing;
pub mod billing_change;
mod billing_checkout;
pub mod billing_hiatus;
pub mod billing_pause;
pub mod catalog;
pub mod commissions;
/// The shell-wide `Idempotency-Key` store.
pub mod idempotency;
pub mod identity;
pub mod jobs;
/// billing's earnings ledger (`oasis_billing::ledger::LedgerStore` for `billing::PgBilling`).
pub mod ledger;
pub mod notify;
pub mod payouts;
pub mod social;
/// The read cache's invalidation keys (LISTEN/NOTIFY).
pub mod touch;

pub use cached::CachedExt;
pub use diesel;
pub use errors::repo_error;
pub use pool::{build_pool, PgPool, PoolOptions, PooledConn};
