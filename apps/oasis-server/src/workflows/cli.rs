//! The operator CLI: `oasis billing reconcile|replay|flags`, each a thin wrapper that sets up
//! the database and the payment peer, runs one workflow and prints its report.
use super::billing::{reconcile, replay_event, ProcessError};
use crate::config::{ConfigError, Settings};
use crate::db::{Db, DbError};
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
    let pool = oasis_db::build_pool(&database.url, 2).map_err(|e| CliError::Pool(e.to_string()))?;
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
