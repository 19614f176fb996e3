//! Background job runner over the `jobs` table (see `oasis_db::jobs`).
//!
//! Domains register a handler per job kind; the runner takes due jobs with
//! `FOR UPDATE SKIP LOCKED` (several server processes can share one database), runs them off the
//! request path and retries failures with back-off. Enqueue inside the transaction that makes a
//! job necessary, then call [`JobQueue::wake`] after commit for low latency. A job that fails
//! `OASIS_JOB_MAX_ATTEMPTS` times is parked as a dead letter (`oasis jobs dead`, `oasis jobs
//! retry <id>`). Periodic work (reconciliation, digests, warnings) registers with
//! [`JobRegistry::periodic`]: it runs every interval in each server and at once with
//! `oasis jobs run <name>`, so it must be idempotent across processes.
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

/// Handlers by job kind, and the periodic jobs.
#[derive(Default, Clone)]
pub struct JobRegistry {
    handlers: HashMap<&'static str, Arc<dyn JobHandler>>,
    periodic: Vec<Periodic>,
}

/// A job run every `every` (and on demand by name).
#[derive(Clone)]
struct Periodic {
    name: &'static str,
    every: Duration,
    handler: Arc<dyn JobHandler>,
}

impl JobRegistry {
    pub fn register(&mut self, kind: &'static str, handler: impl JobHandler) {
        self.handlers.insert(kind, Arc::new(handler));
    }
    pub fn kinds(&self) -> Vec<&'static str> {
        self.handlers.keys().copied().collect()
    }
    /// Registers periodic work named `name` (e.g. `billing.reconcile`), run every `every` by
    /// each server and at once by `oasis jobs run <name>`. The handler gets `null`.
    pub fn periodic(&mut self, name: &'static str, every: Duration, handler: impl JobHandler) {
        self.periodic.push(Periodic {
            name,
            every,
            handler: Arc::new(handler),
        });
    }
    /// The periodic jobs' names, sorted.
    pub fn periodic_names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.periodic.iter().map(|p| p.name).collect();
        names.sort_unstable();
        names
    }
    /// Runs the periodic job `name` once now; `None` when there is no such job.
    pub async fn run_periodic(&self, name: &str) -> Option<JobResult> {
        let p = self.periodic.iter().find(|p| p.name == name)?;
        Some(p.handler.run(serde_json::Value::Null).await)
    }
    /// Starts one ticker per periodic job; each ends when `stop` flips to true.
    fn start_periodic(&self, stop: &watch::Receiver<bool>) -> Vec<tokio::task::JoinHandle<()>> {
        self.periodic
            .iter()
            .cloned()
            .map(|p| {
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            _ = tokio::time::sleep(p.every) => {}
                            _ = stop.changed() => {}
                        }
                        if *stop.borrow() {
                            return;
                        }
                        let span = tracing::info_span!("periodic", name = p.name);
                        if let Err(e) = p
                            .handler
                            .run(serde_json::Value::Null)
                            .instrument(span)
                            .await
                        {
                            tracing::warn!(name = p.name, error = %e, "periodic job failed");
                        }
                    }
                })
            })
            .collect()
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

const CONCURRENCY: usize = 8;
const LEASE_SECS: i64 = 120;

/// How the runner treats jobs (from `Settings`).
#[derive(Debug, Clone, Copy)]
pub struct RunnerSettings {
    /// Finished jobs are deleted once they are this old (checked every `retention_secs`, at
    /// least every 10 minutes).
    pub retention_secs: i64,
    /// Failures after which a job is parked as a dead letter.
    pub max_attempts: i32,
}

/// Runs until `stop` flips to true (the periodic jobs' tickers with it).
pub async fn run(
    db: Db,
    registry: JobRegistry,
    queue: JobQueue,
    mut stop: watch::Receiver<bool>,
    settings: RunnerSettings,
) {
    let tickers = registry.start_periodic(&stop);
    let _tickers = AbortOnDrop(tickers);
    let RunnerSettings {
        retention_secs,
        max_attempts,
    } = settings;
    let kinds = registry.kinds();
    if kinds.is_empty() {
        let _ = stop.wait_for(|s| *s).await;
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
            .for_each_concurrent(CONCURRENCY, |job| async {
                let _ = run_one(&db, &registry, job, max_attempts).await;
            })
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

/// Aborts the periodic tickers when the runner ends.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Re-runs dead letter `id` now, in this process (`oasis jobs retry <id>`): it is revived,
/// leased, run once and its outcome recorded like any attempt (failing again parks it again
/// after `max_attempts`). `Ok(None)` when `id` is not a dead letter.
pub async fn retry_dead(
    db: &Db,
    registry: &JobRegistry,
    id: i64,
    max_attempts: i32,
) -> Result<Option<JobResult>, DbError> {
    let job = db
        .run_as::<_, DbError, _>(move |c| Ok(oasis_db::jobs::revive(c, id, LEASE_SECS)?))
        .await?;
    let Some(job) = job else { return Ok(None) };
    if !registry.handlers.contains_key(job.kind.as_str()) {
        return Ok(Some(Err(JobError::NotYet(format!(
            "no handler for job kind {:?} in this build",
            job.kind
        )))));
    }
    Ok(Some(run_one(db, registry, job, max_attempts).await))
}

/// Runs one taken job and records its outcome; returns what the handler returned.
async fn run_one(
    db: &Db,
    registry: &JobRegistry,
    job: oasis_db::jobs::Job,
    max_attempts: i32,
) -> JobResult {
    let Some(handler) = registry.handlers.get(job.kind.as_str()).cloned() else {
        return Ok(());
    };
    let span = tracing::info_span!("job", id = job.id, kind = %job.kind, attempt = job.attempts);
    let result = handler.run(job.payload).instrument(span).await;
    let (id, attempts) = (job.id, job.attempts);
    let error = result.as_ref().err().map(|e| e.to_string());
    let outcome = db
        .run_as::<_, DbError, _>(move |c| match error {
            None => {
                oasis_db::jobs::complete(c, id)?;
                Ok(false)
            }
            Some(e) => Ok(oasis_db::jobs::fail(c, id, attempts, &e, max_attempts)?),
        })
        .await;
    match (&result, outcome) {
        (Err(e), Ok(true)) => tracing::error!(
            job = id, kind = %job.kind, attempt = attempts, error = %e,
            "job failed for the last time; parked as a dead letter (oasis jobs dead)"
        ),
        (Err(e), Ok(false)) => {
            tracing::warn!(job = id, kind = %job.kind, attempt = attempts, error = %e, "job failed; will retry")
        }
        (_, Err(e)) => tracing::warn!(job = id, error = %e, "could not record job outcome"),
        (Ok(()), Ok(_)) => {}
    }
    result
}
