//! The PostgreSQL connection pool (r2d2): bounded checkout wait, a statement timeout on every
//! connection, and recovery from a restarted database (its dead connections are weeded out).
use diesel::connection::{CacheSize, Connection, SimpleConnection};
use diesel::pg::PgConnection;
use diesel::r2d2::{
    ConnectionManager, CustomizeConnection, ManageConnection, Pool, PooledConnection,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub type PgPool = Pool<Manager>;
pub type PooledConn = PooledConnection<Manager>;

/// How the pool behaves (from the server's settings).
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    /// Connections at most.
    pub max_size: u32,
    /// Diesel keeps each connection's statements prepared (query builder and
    /// [`crate::cached`]); `false` plans every statement anew but works through pgbouncer < 1.21
    /// in transaction mode (docs/scaling.md).
    pub statement_cache: bool,
    /// Longest wait for a connection (the database is down, or every connection is busy): then
    /// the caller gets an error it answers with 503, never a hang.
    pub checkout_timeout: Duration,
    /// PostgreSQL's `statement_timeout` on each connection, milliseconds (0 = none).
    pub statement_timeout_ms: u64,
    /// Each connection LISTENs on its own channel, so that the server reads what its writes
    /// touched right after them ([`crate::touch`]; the read cache).
    pub listen_own_touches: bool,
}

/// Until when (Unix milliseconds) checkouts ping their connection first: set for a while after a
/// connection failed. PostgreSQL that restarted leaves every idle pooled connection dead, and
/// Diesel's `is_broken` does not notice a dead connection outside a transaction, so without the
/// ping each one would fail one request. One value per process (every pool of the process talks
/// to the same servers; a ping too many in another pool costs one round trip).
static SUSPECT_UNTIL_MS: AtomicU64 = AtomicU64::new(0);

/// How long checkouts ping after a connection failure.
const SUSPECT_FOR: Duration = Duration::from_secs(60);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Records that a connection to the database failed (lost, refused, shut down): checkouts ping
/// their connection for a while, so dead ones are replaced instead of failing requests.
pub fn mark_connections_suspect() {
    SUSPECT_UNTIL_MS.fetch_max(now_ms() + SUSPECT_FOR.as_millis() as u64, Ordering::Relaxed);
}

fn connections_suspect() -> bool {
    SUSPECT_UNTIL_MS.load(Ordering::Relaxed) > now_ms()
}

/// Diesel's connection manager, pinging a connection at checkout only while connections are
/// suspect ([`mark_connections_suspect`]): no extra round trip in normal operation.
#[derive(Debug)]
pub struct Manager(ConnectionManager<PgConnection>);

impl ManageConnection for Manager {
    type Connection = PgConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PgConnection, Self::Error> {
        self.0.connect().inspect_err(|_| mark_connections_suspect())
    }

    fn is_valid(&self, conn: &mut PgConnection) -> Result<(), Self::Error> {
        if connections_suspect() {
            self.0.is_valid(conn)
        } else {
            Ok(())
        }
    }

    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        self.0.has_broken(conn)
    }
}

/// Sets up each new connection: the statement timeout, and the statement cache off when asked.
#[derive(Debug, Clone, Copy)]
struct Setup {
    statement_cache: bool,
    statement_timeout_ms: u64,
    listen_own_touches: bool,
}

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for Setup {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        if !self.statement_cache {
            conn.set_prepared_statement_cache_size(CacheSize::Disabled);
        }
        conn.batch_execute(&format!(
            "SET statement_timeout = {}",
            self.statement_timeout_ms
        ))
        .map_err(diesel::r2d2::Error::QueryError)?;
        if self.listen_own_touches {
            crate::touch::listen_own(conn).map_err(|e| {
                diesel::r2d2::Error::QueryError(diesel::result::Error::QueryBuilderError(
                    e.to_string().into(),
                ))
            })?;
        }
        Ok(())
    }
}

/// Builds a pool without connecting eagerly beyond `min_idle` (so start-up errors surface once,
/// from the migration step, with a clear message).
pub fn build_pool(url: &str, opts: &PoolOptions) -> Result<PgPool, diesel::r2d2::PoolError> {
    // r2d2 pings at checkout only when asked to; `Manager::is_valid` keeps that free unless
    // connections are suspect.
    Pool::builder()
        .max_size(opts.max_size)
        .min_idle(Some(1))
        .connection_timeout(opts.checkout_timeout)
        .test_on_check_out(true)
        .connection_customizer(Box::new(Setup {
            statement_cache: opts.statement_cache,
            statement_timeout_ms: opts.statement_timeout_ms,
            listen_own_touches: opts.listen_own_touches,
        }))
        .build(Manager(ConnectionManager::<PgConnection>::new(url)))
}
