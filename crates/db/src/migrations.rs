use diesel::pg::PgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// Every migration under `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Applies pending migrations; returns the versions applied (empty on a second start).
pub fn run_pending(conn: &mut PgConnection) -> Result<Vec<String>, BoxError> {
    let applied = conn.run_pending_migrations(MIGRATIONS)?;
    Ok(applied.into_iter().map(|v| v.to_string()).collect())
}

/// Reverts every applied migration, newest first (used by the up/down/up test).
pub fn revert_all(conn: &mut PgConnection) -> Result<Vec<String>, BoxError> {
    let reverted = conn.revert_all_migrations(MIGRATIONS)?;
    Ok(reverted.into_iter().map(|v| v.to_string()).collect())
}

/// Versions applied so far.
pub fn applied(conn: &mut PgConnection) -> Result<Vec<String>, BoxError> {
    Ok(conn
        .applied_migrations()?
        .into_iter()
        .map(|v| v.to_string())
        .collect())
}
