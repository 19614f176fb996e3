//! What every route module gets at start-up.
use crate::config::Settings;
use crate::db::Db;
use crate::jobs::JobQueue;
use std::sync::Arc;

/// Shared, cheaply clonable application context.
#[derive(Clone)]
pub struct AppContext {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub jobs: JobQueue,
    /// The Razorpay peer (real account, or the embedded simulator); built after bind.
    pub payments: crate::payments::Payments,
    /// This process's live notification streams.
    pub streams: crate::stream::StreamHub,
    /// The hot reads' cache (see [`crate::read_cache`]).
    pub reads: std::sync::Arc<crate::read_cache::ReadCache>,
}
