//! Running Diesel work off the async workers.
use crate::error::ApiError;
use diesel::{Connection, PgConnection};
use oasis_db::PgPool;
use oasis_kernel::RepoError;

/// Why database work could not run (or what it failed with). Every layer's error converts from
/// it: [`ApiError`] for the handlers, the jobs' and the CLI's own errors below them.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No pooled connection could be had.
    #[error("Database unavailable: {0}")]
    Unavailable(String),
    /// The blocking pool is gone (shutting down).
    #[error("blocking pool closed")]
    BlockingPoolClosed,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl From<diesel::result::Error> for DbError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Repo(oasis_db::repo_error(e))
    }
}

/// The connection pool, with helpers that run blocking database work on actix's blocking pool.
/// The pool itself is not handed out: every piece of work goes through [`Db::run_here`] (on a
/// thread that may block; [`Db::run_as`] takes one from the blocking pool), which reports what it
/// wrote to the read cache before the caller goes on.
#[derive(Clone)]
pub struct Db {
    pool: PgPool,
    /// Where this process's own writes are reported right after they ran (the read cache;
    /// `None` without one).
    touches: Option<std::sync::Arc<crate::read_cache::Versions>>,
}

/// A transaction's failure: the caller's, or the database's own (commit, rollback).
enum TxError<E> {
    Caller(E),
    Db(diesel::result::Error),
}

impl<E> From<diesel::result::Error> for TxError<E> {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e)
    }
}

impl Db {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            touches: None,
        }
    }

    /// A pool whose connections LISTEN on their own channel (`PoolOptions::listen_own_touches`):
    /// after each piece of work, what it touched is reported to `versions` before the caller
    /// goes on, so a read right after a write of this process never sees the cache's old answer.
    pub fn with_touches(
        pool: PgPool,
        versions: std::sync::Arc<crate::read_cache::Versions>,
    ) -> Self {
        Self {
            pool,
            touches: Some(versions),
        }
    }

    /// Runs `f` with a pooled connection on the blocking pool (reads, or writes that are a single
    /// statement), failing with the caller's error type.
    pub async fn run_as<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut PgConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let db = self.clone();
        actix_web::web::block(move || db.run_here(f))
            .await
            .map_err(|_| E::from(DbError::BlockingPoolClosed))?
    }

    /// Runs `f` with a pooled connection on the calling thread, which must be one that may block
    /// (a blocking-pool thread, or a thread of its own such as the webhook inbox's writers).
    pub fn run_here<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut PgConnection) -> Result<T, E>,
        E: From<DbError>,
    {
        let mut conn = self
            .pool
            .get()
            .map_err(|e| E::from(DbError::Unavailable(e.to_string())))?;
        let out = f(&mut conn);
        if let Some(v) = &self.touches {
            // Already received with the replies to the work's statements: no round trip.
            match oasis_db::touch::drain_own(&mut conn) {
                Ok(heard) => heard.iter().for_each(|t| v.apply(t)),
                Err(_) => v.apply(&oasis_db::touch::Touched::Everything),
            }
        }
        out
    }

    /// Runs `f` inside one transaction (everything it writes commits together or not at all),
    /// failing with the caller's error type.
    pub async fn tx_as<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut PgConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.run_as(move |conn| {
            conn.transaction::<T, TxError<E>, _>(|c| f(c).map_err(TxError::Caller))
                .map_err(|e| match e {
                    TxError::Caller(e) => e,
                    TxError::Db(d) => E::from(DbError::from(d)),
                })
        })
        .await
    }

    /// [`Db::run_as`] for handlers (their closures fail with [`ApiError`]).
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut PgConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        self.run_as(f).await
    }

    /// [`Db::tx_as`] for handlers (their closures fail with [`ApiError`]).
    pub async fn tx<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut PgConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        self.tx_as(f).await
    }
}
