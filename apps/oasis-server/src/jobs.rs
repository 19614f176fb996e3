//! Background job runner over the `jobs` table (see `oasis_db::jobs`).
//!
//! Domains register a handler per job kind; the runner takes due jobs with
//! `FOR UPDATE SKIP LOCKED` (several server processes can share one database), runs them off the
//! request path and retries failures with back-off. Enqueue inside the transaction that makes a
//! job necessary, then call [`JobQueue::wake`] after commit for low latency.
use crate::db::{Db, DbError};
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tracing::Instrument;

/// Why a job failed this time (it is retried with back-off, up to a limit).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error(transparent)]
    Billing(#[from] oasis_billing::BillingError),
    #[error(transparent)]
    Gateway(#[from] oasis_billing::gateway::GatewayError),
    #[error(transparent)]
    Mail(#[from] crate::mail::MailError),
    /// The payload cannot be read (it will not become readable on retry).
    #[error("bad payload: {0}")]
    Payload(#[from] serde_json::Error),
    /// Not done yet, for a reason the job states (e.g. another worker holds the work).
    #[error("{0}")]
    NotYet(String),
}

impl From<oasis_kernel::RepoError> for JobError {
    fn from(e: oasis_kernel::RepoError) -> Self {
        Self::Db(e.into())
    }
}

pub type JobResult = Result<(), JobError>;

/// Runs one job's payload. Must be idempotent: a job can run again after a crash.
pub trait JobHandler: Send + Sync + 'static {
    fn run(&self, payload: serde_json::Value) -> BoxFuture<'static, JobResult>;
}

impl<F, Fut> JobHandler for F
where
    F: Fn(serde_json::Value) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = JobResult> + Send + 'static,
{
    fn run(&self, payload: serde_json::Value) -> BoxFuture<'static, JobResult> {
        Box::pin((self)(payload))
    }
}

/// Handlers by job kind.
#[derive(Default, Clone)]
pub struct JobRegistry {
    handlers: HashMap<&'static str, Arc<dyn JobHandler>>,
}

impl JobRegistry {
    pub fn register(&mut self, kind: &'static str, handler: impl JobHandler) {
        self.handlers.insert(kind, Arc::new(handler));
    }
    pub fn kinds(&self) -> Vec<&'static str> {
        self.handlers.keys().copied().collect()
    }
}

/// Wakes the runner early (after a commit that enqueued jobs).
#[derive(Clone, Default)]
pub struct JobQueue {
    notify: Arc<Notify>,
}

impl JobQueue {
    pub fn wake(&self) {
        self.notify.notify_one();
    }
}

const MAX_ATTEMPTS: i32 = 12;
const CONCURRENCY: usize = 8;
const LEASE_SECS: i64 = 120;

/// Runs until `stop` flips to true. Finished jobs are deleted once they are `retention_secs`
/// old (checked every `retention_secs`, at least every 10 minutes).
pub async fn run(
    db: Db,
    registry: JobRegistry,
    queue: JobQueue,
    mut stop: watch::Receiver<bool>,
    retention_secs: i64,
) {
    let kinds = registry.kinds();
    if kinds.is_empty() {
        return;
    }
    let sweep_every = Duration::from_secs(retention_secs.clamp(1, 600) as u64);
    let mut last_sweep: Option<tokio::time::Instant> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        if last_sweep.is_none_or(|t| t.elapsed() >= sweep_every) {
            last_sweep = Some(tokio::time::Instant::now());
            match db
                .run_as::<_, DbError, _>(move |c| {
                    Ok(oasis_db::jobs::sweep_done(c, retention_secs)?)
                })
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::debug!(deleted = n, "swept finished jobs"),
                Err(e) => tracing::warn!(error = %e, "could not sweep finished jobs"),
            }
        }
        let k = kinds.clone();
        let batch = db
            .run_as::<_, DbError, _>(move |c| {
                let refs: Vec<&str> = k.to_vec();
                Ok(oasis_db::jobs::take_due(c, &refs, 32, LEASE_SECS)?)
            })
            .await;
        let jobs = match batch {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(error = %e, "job queue unavailable");
                Vec::new()
            }
        };
        let busy = !jobs.is_empty();
        // A batch runs with bounded concurrency: handlers are idempotent and independent
        // (webhook processing converges whatever the order), so one slow job does not hold
        // the queue.
        futures_util::stream::iter(jobs)
            .for_each_concurrent(CONCURRENCY, |job| run_one(&db, &registry, job))
            .await;
        if busy {
            continue;
        }
        tokio::select! {
            _ = queue.notify.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(1000)) => {}
            _ = stop.changed() => {}
        }
    }
}

async fn run_one(db: &Db, registry: &JobRegistry, job: oasis_db::jobs::Job) {
    let Some(handler) = registry.handlers.get(job.kind.as_str()).cloned() else {
        return;
    };
    let span = tracing::info_span!("job", id = job.id, kind = %job.kind, attempt = job.attempts);
    let result = handler.run(job.payload).instrument(span).await;
    let (id, attempts) = (job.id, job.attempts);
    let outcome = db
        .run_as::<_, DbError, _>(move |c| {
            match &result {
                Ok(()) => oasis_db::jobs::complete(c, id)?,
                Err(e) => oasis_db::jobs::fail(c, id, attempts, &e.to_string(), MAX_ATTEMPTS)?,
            }
            Ok(result)
        })
        .await;
    match outcome {
        Ok(Err(e)) => {
            tracing::warn!(job = id, kind = %job.kind, attempt = attempts, error = %e, "job failed; will retry")
        }
        Err(e) => tracing::warn!(job = id, error = %e, "could not record job outcome"),
        Ok(Ok(())) => {}
    }
}
