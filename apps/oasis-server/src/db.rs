//! Running Diesel work off the async workers.
use crate::error::ApiError;
use diesel::{Connection, PgConnection};
use oasis_db::PgPool;

/// The connection pool, with helpers that run blocking database work on actix's blocking pool.
#[derive(Clone)]
pub struct Db {
    pool: PgPool,
}

impl Db {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs `f` with a pooled connection on the blocking pool (reads, or writes that are a single
    /// statement).
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut PgConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        actix_web::web::block(move || {
            let mut conn = pool
                .get()
                .map_err(|e| ApiError::unavailable(format!("Database unavailable: {e}")))?;
            f(&mut conn)
        })
        .await?
    }

    /// Runs `f` inside one transaction: everything it writes commits together or not at all.
    pub async fn tx<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut PgConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        self.run(move |conn| conn.transaction(f)).await
    }
}
