//! The database the server runs on (embedded cluster or `DATABASE_URL`, created if missing,
//! migrated), prepared before anything else is built: used by start-up and by the CLI.
use crate::config::{Settings, StatementTimeoutScope};
use oasis_db::cluster::{ClusterOptions, EmbeddedCluster};

/// Start-up failures; each prints as one line.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Cluster(#[from] oasis_db::cluster::ClusterError),
    #[error("database: {0}")]
    Database(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// A database ready to use: URL plus the embedded cluster if we run one.
pub struct Database {
    pub url: String,
    pub cluster: Option<EmbeddedCluster>,
}

/// Resolves the database (starting the embedded cluster when `DATABASE_URL` is unset), creates it
/// if missing and applies pending migrations. Blocking.
pub fn prepare_database(settings: &Settings) -> Result<Database, StartupError> {
    let (url, cluster) = match &settings.database_url {
        Some(url) => (url.clone(), None),
        None => {
            let root = settings.data_dir.join("postgres");
            let cluster = EmbeddedCluster::start(&root, &ClusterOptions::default())?;
            tracing::info!(
                data = %cluster.data_dir().display(),
                "DATABASE_URL is not set: using the embedded PostgreSQL cluster"
            );
            (cluster.url("oasis"), Some(cluster))
        }
    };
    let created = oasis_db::admin::ensure_database(&url)
        .map_err(|e| StartupError::Database(e.to_string()))?;
    if created {
        tracing::info!("created database");
    }
    let mut conn = <diesel::PgConnection as diesel::Connection>::establish(&url)
        .map_err(|e| StartupError::Database(format!("cannot connect: {e}")))?;
    if !settings.db_statement_cache {
        // Behind a transaction-mode pooler a named prepared statement meets another client's
        // server connection (docs/scaling.md): the migrations connection plans every statement.
        diesel::Connection::set_prepared_statement_cache_size(
            &mut conn,
            diesel::connection::CacheSize::Disabled,
        );
    }
    let applied = oasis_db::migrations::run_pending(&mut conn)
        .map_err(|e| StartupError::Database(format!("migrations failed: {e}")))?;
    if !applied.is_empty() {
        tracing::info!(count = applied.len(), "applied migrations");
    }
    if settings.db_statement_timeout_scope == StatementTimeoutScope::Role {
        oasis_db::admin::set_role_statement_timeout(&mut conn, settings.db_statement_timeout_ms)
            .map_err(|e| {
                StartupError::Database(format!("cannot set the statement timeout: {e}"))
            })?;
    }
    Ok(Database { url, cluster })
}
