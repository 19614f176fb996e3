//! The operator CLI: `oasis billing reconcile|replay|flags` and `oasis jobs dead|retry|run`, each
//! a thin wrapper that sets up the database and the payment peer, runs one workflow and prints
//! its report.
use super::billing::{reconcile, replay_event, ProcessError};
use crate::config::{ConfigError, Settings};
use crate::context::AppContext;
use crate::db::{Db, DbError};
use crate::jobs::{JobQueue, JobRegistry};
use crate::payments::{Payments, PaymentsError};
use crate::startup::StartupError;
use oasis_db::cluster::EmbeddedCluster;

/// Why a CLI command failed (printed; the process exits non-zero).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("database pool: {0}")]
    Pool(String),
    #[error(transparent)]
    Payments(#[from] PaymentsError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Replay(#[from] ProcessError),
    /// The command ran but some of its work failed (the report says which).
    #[error("{0}")]
    Incomplete(String),
    #[error("the blocking pool is gone")]
    Blocking,
}

impl From<oasis_kernel::RepoError> for CliError {
    fn from(e: oasis_kernel::RepoError) -> Self {
        Self::Db(e.into())
    }
}

pub(crate) async fn cli_context(
    mut settings: Settings,
) -> Result<(Db, Payments, Option<EmbeddedCluster>), CliError> {
    settings.resolve_secret_key()?;
    let s = settings.clone();
    let database = tokio::task::spawn_blocking(move || crate::startup::prepare_database(&s))
        .await
        .map_err(|_| CliError::Blocking)??;
    let pool = oasis_db::build_pool(
        &database.url,
        &oasis_db::PoolOptions {
            max_size: 2,
            // The CLI keeps no read cache.
            listen_own_touches: false,
            ..settings.pool_options()
        },
    )
    .map_err(|e| CliError::Pool(e.to_string()))?;
    let payments = Payments::from_settings(&settings, None)?;
    Ok((Db::new(pool), payments, database.cluster))
}

pub(crate) async fn stop_cluster(cluster: Option<EmbeddedCluster>) {
    if let Some(cluster) = cluster {
        if cluster.started_here() {
            let _ = tokio::task::spawn_blocking(move || cluster.stop()).await;
        }
    }
}

/// `oasis billing reconcile`.
pub async fn cli_reconcile(settings: Settings) -> Result<String, CliError> {
    let (db, payments, cluster) = cli_context(settings).await?;
    let report = reconcile(&db, &payments).await;
    stop_cluster(cluster).await;
    if report.errors.is_empty() {
        Ok(report.to_string())
    } else {
        Err(CliError::Incomplete(report.to_string()))
    }
}

/// `oasis billing replay <event-id>`.
pub async fn cli_replay(settings: Settings, event_id: &str) -> Result<String, CliError> {
    let (db, payments, cluster) = cli_context(settings).await?;
    let r = replay_event(&db, &payments, event_id).await;
    stop_cluster(cluster).await;
    Ok(r?)
}

/// `oasis billing flags`: payments that did not match what was asked, newest first, one line
/// each (tab-separated).
pub async fn cli_flags(settings: Settings) -> Result<String, CliError> {
    let (db, _payments, cluster) = cli_context(settings).await?;
    let rows = db
        .run_as::<_, CliError, _>(|c| Ok(oasis_db::billing::payment_flags(c, 1000)?))
        .await;
    stop_cluster(cluster).await;
    let rows = rows?;
    if rows.is_empty() {
        return Ok("no flagged payments".into());
    }
    let mut out = format!("{} flagged payment(s)", rows.len());
    for f in rows {
        let what = f
            .razorpay_order_id
            .or(f.razorpay_subscription_id)
            .unwrap_or_default();
        out.push_str(&format!(
            "\n{}\t{}\t{}\texpected {} {}\tpaid {} {}\tuser {}\t{}",
            f.created_at.to_rfc3339(),
            f.razorpay_payment_id,
            f.reason,
            f.expected_amount,
            f.expected_currency,
            f.actual_amount,
            f.actual_currency,
            f.user_id
                .map(|u| u.to_string())
                .unwrap_or_else(|| "-".into()),
            what,
        ));
    }
    Ok(out)
}

/// The context and job handlers a `oasis jobs …` command runs with (the same handlers as the
/// server's runner, in this process).
async fn jobs_context(
    settings: Settings,
) -> Result<(AppContext, JobRegistry, Option<EmbeddedCluster>), CliError> {
    let mut settings = settings;
    settings.resolve_secret_key()?;
    let (db, payments, cluster) = cli_context(settings.clone()).await?;
    let ctx = AppContext {
        streams: crate::stream::StreamHub::new(settings.sse),
        // The CLI keeps no read cache: every read goes to the database.
        reads: std::sync::Arc::new(crate::read_cache::ReadCache::new(
            &crate::config::ReadCacheSettings {
                enabled: false,
                ..settings.read_cache
            },
        )),
        settings: std::sync::Arc::new(settings),
        db,
        jobs: JobQueue::default(),
        payments,
    };
    let mut registry = JobRegistry::default();
    super::register_all(&mut registry, &ctx);
    Ok((ctx, registry, cluster))
}

/// `oasis jobs dead`: the dead letters, most recently parked first, one line each
/// (tab-separated: id, kind, attempts, parked at, last error).
pub async fn cli_jobs_dead(settings: Settings) -> Result<String, CliError> {
    let (db, _payments, cluster) = cli_context(settings).await?;
    let rows = db
        .run_as::<_, CliError, _>(|c| Ok(oasis_db::jobs::dead(c, 1000)?))
        .await;
    stop_cluster(cluster).await;
    let rows = rows?;
    if rows.is_empty() {
        return Ok("no dead letters".into());
    }
    let mut out = format!("{} dead letter(s)", rows.len());
    for j in rows {
        out.push_str(&format!(
            "\n{}\t{}\t{} attempt(s)\t{}\t{}",
            j.id,
            j.kind,
            j.attempts,
            j.dead_at.to_rfc3339(),
            j.last_error.unwrap_or_default().replace('\n', " "),
        ));
    }
    Ok(out)
}

/// `oasis jobs retry <id>`: re-runs one dead letter now, in this process.
pub async fn cli_jobs_retry(settings: Settings, id: i64) -> Result<String, CliError> {
    let (ctx, registry, cluster) = jobs_context(settings).await?;
    let outcome = crate::jobs::retry_dead(
        &ctx.db,
        &registry,
        id,
        crate::jobs::RunnerSettings::from_settings(&ctx.settings),
    )
    .await;
    drop(registry);
    drop(ctx);
    stop_cluster(cluster).await;
    match outcome? {
        None => Err(CliError::Incomplete(format!(
            "job {id} is not a dead letter"
        ))),
        Some(Ok(())) => Ok(format!("job {id} ran and is done")),
        Some(Err(e)) => Err(CliError::Incomplete(format!(
            "job {id} failed again: {e} (it is retried with back-off, or parked again)"
        ))),
    }
}

/// `oasis jobs run <name>`: runs one periodic job now (`oasis jobs run` alone lists them).
pub async fn cli_jobs_run(settings: Settings, name: Option<&str>) -> Result<String, CliError> {
    let (ctx, registry, cluster) = jobs_context(settings).await?;
    let names = registry.periodic_names().join(", ");
    let outcome = match name {
        Some(name) => registry.run_periodic(name).await,
        None => None,
    };
    drop(registry);
    drop(ctx);
    stop_cluster(cluster).await;
    match (name, outcome) {
        (None, _) => Ok(format!("periodic jobs: {names}")),
        (Some(name), None) => Err(CliError::Incomplete(format!(
            "no periodic job {name:?}; periodic jobs: {names}"
        ))),
        (Some(name), Some(Ok(()))) => Ok(format!("{name}: done")),
        (Some(name), Some(Err(e))) => Err(CliError::Incomplete(format!("{name}: {e}"))),
    }
}
