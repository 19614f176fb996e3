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

/// How the runner treats jobs (from `Settings`).
#[derive(Debug, Clone, Copy)]
pub struct RunnerSettings {
    /// Finished jobs are deleted once they are this old (checked every `retention_secs`, at
    /// least every 10 minutes).
    pub retention_secs: i64,
    /// Failures after which a job is parked as a dead letter.
    pub max_attempts: i32,
    /// How long a taken job stays leased to this process without a heartbeat, seconds; the
    /// heartbeat extends it every third of that while the job runs, so a crashed process's
    /// jobs are taken over by another one within about one lease.
    pub lease_secs: i64,
    /// Jobs run at the same time (and so leased at most) by this process.
    pub concurrency: usize,
}

impl RunnerSettings {
    /// From the server's settings.
    pub fn from_settings(s: &crate::config::Settings) -> Self {
        Self {
            retention_secs: s.job_retention_secs,
            max_attempts: s.job_max_attempts,
            lease_secs: s.job_lease_secs,
            concurrency: s.job_concurrency,
        }
    }

    fn heartbeat_every(&self) -> Duration {
        Duration::from_millis((self.lease_secs.max(1) as u64 * 1000 / 3).max(200))
    }
}

/// The leases this process holds: job id → the `attempts` value its lease was taken with.
type Held = Arc<std::sync::Mutex<HashMap<i64, i32>>>;

/// Runs until `stop` flips to true (the periodic jobs' tickers with it); jobs already running
/// finish first.
///
/// At most `concurrency` jobs run at once, and only running jobs are leased: the runner takes
/// as many due jobs as it has free slots, each leased for `lease_secs`, and a heartbeat extends
/// the leases of the running ones. A process that dies (SIGKILL, power loss) stops its
/// heartbeat, so its jobs become due again within one lease and another process takes them.
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
        lease_secs,
        concurrency,
    } = settings;
    let concurrency = concurrency.max(1);
    let kinds = registry.kinds();
    if kinds.is_empty() {
        let _ = stop.wait_for(|s| *s).await;
        return;
    }
    let registry = Arc::new(registry);
    let held: Held = Arc::default();
    let _heartbeat = AbortOnDrop(vec![tokio::spawn(heartbeat(
        db.clone(),
        held.clone(),
        lease_secs,
        settings.heartbeat_every(),
    ))]);
    let mut running: tokio::task::JoinSet<()> = tokio::task::JoinSet::new();
    let sweep_every = Duration::from_secs(retention_secs.clamp(1, 600) as u64);
    let mut last_sweep: Option<tokio::time::Instant> = None;
    loop {
        if *stop.borrow() {
            while running.join_next().await.is_some() {}
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
        let free = concurrency.saturating_sub(running.len());
        let mut queue_failed = false;
        let mut filled = false;
        if free > 0 {
            let k = kinds.clone();
            let batch = db
                .run_as::<_, DbError, _>(move |c| {
                    let refs: Vec<&str> = k.to_vec();
                    Ok(oasis_db::jobs::take_due(c, &refs, free as i64, lease_secs)?)
                })
                .await;
            match batch {
                Ok(jobs) => {
                    filled = jobs.len() == free;
                    for job in jobs {
                        lock(&held).insert(job.id, job.attempts);
                        let (db, registry, held) = (db.clone(), registry.clone(), held.clone());
                        // Each job is its own task: the runner keeps taking work (and the
                        // heartbeat keeps beating) while handlers wait on the network.
                        running.spawn(async move {
                            let id = job.id;
                            let _ = run_one(&db, &registry, job, max_attempts).await;
                            lock(&held).remove(&id);
                        });
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "job queue unavailable");
                    queue_failed = true;
                }
            }
        }
        // Slots left and more due: take them at once.
        if filled && running.len() < concurrency {
            continue;
        }
        // Idle, or the queue is unreachable: look again within a second (this also bounds how
        // long a crashed process's expired leases wait for a taker).
        tokio::select! {
            // A slot freed up: look for more work (a full batch may have more behind it).
            Some(_) = running.join_next(), if !running.is_empty() => {}
            _ = queue.notify.notified(), if running.len() < concurrency && !queue_failed => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => {}
        }
    }
}

fn lock(held: &Held) -> std::sync::MutexGuard<'_, HashMap<i64, i32>> {
    held.lock().unwrap_or_else(|e| e.into_inner())
}

/// Extends the leases of the running jobs every `every` (a third of the lease).
async fn heartbeat(db: Db, held: Held, lease_secs: i64, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let leases: Vec<(i64, i32)> = lock(&held).iter().map(|(k, v)| (*k, *v)).collect();
        if leases.is_empty() {
            continue;
        }
        if let Err(e) = db
            .run_as::<_, DbError, _>(move |c| {
                Ok(oasis_db::jobs::extend_leases(c, &leases, lease_secs)?)
            })
            .await
        {
            tracing::warn!(error = %e, "could not extend the leases of running jobs");
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
    settings: RunnerSettings,
) -> Result<Option<JobResult>, DbError> {
    let lease_secs = settings.lease_secs;
    let job = db
        .run_as::<_, DbError, _>(move |c| Ok(oasis_db::jobs::revive(c, id, lease_secs)?))
        .await?;
    let Some(job) = job else { return Ok(None) };
    if !registry.handlers.contains_key(job.kind.as_str()) {
        return Ok(Some(Err(JobError::NotYet(format!(
            "no handler for job kind {:?} in this build",
            job.kind
        )))));
    }
    // The re-run is leased like any job: a heartbeat keeps it while it runs.
    let held: Held = Arc::new(std::sync::Mutex::new(HashMap::from([(
        job.id,
        job.attempts,
    )])));
    let _heartbeat = AbortOnDrop(vec![tokio::spawn(heartbeat(
        db.clone(),
        held,
        lease_secs,
        settings.heartbeat_every(),
    ))]);
    Ok(Some(
        run_one(db, registry, job, settings.max_attempts).await,
    ))
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
