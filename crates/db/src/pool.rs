use diesel::connection::{CacheSize, Connection};
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use std::time::Duration;

pub type PgPool = Pool<ConnectionManager<PgConnection>>;
pub type PooledConn = PooledConnection<ConnectionManager<PgConnection>>;

/// Turns Diesel's prepared-statement cache off on each new connection (for a transaction-mode
/// pooler that cannot carry protocol-level prepared statements; docs/scaling.md).
#[derive(Debug, Clone, Copy)]
struct NoStatementCache;

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for NoStatementCache {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        conn.set_prepared_statement_cache_size(CacheSize::Disabled);
        Ok(())
    }
}

/// Builds a pool without connecting eagerly beyond `min_idle` (so start-up errors surface once,
/// from the migration step, with a clear message). `statement_cache` = Diesel keeps each
/// connection's statements prepared (query builder and [`crate::cached`]); `false` plans every
/// statement anew but works through pgbouncer < 1.21 in transaction mode.
pub fn build_pool(
    url: &str,
    max_size: u32,
    statement_cache: bool,
) -> Result<PgPool, diesel::r2d2::PoolError> {
    let builder = Pool::builder()
        .max_size(max_size)
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(10))
        .test_on_check_out(false);
    let builder = if statement_cache {
        builder
    } else {
        builder.connection_customizer(Box::new(NoStatementCache))
    };
    builder.build(ConnectionManager::<PgConnection>::new(url))
}
