//! Prepared-statement caching for the hand-written SQL of the hot reads.
//!
//! Diesel's query builder keeps every statement it runs as a prepared statement per connection,
//! but `diesel::sql_query` marks itself unsafe to cache (its text could be built from anything),
//! so each call is parsed, analysed and planned again. For the feed, the profile, post rendering
//! and the gate aggregates that planning cost more than the execution (docs/benchmarks.md).
//!
//! [`Cached`] wraps such a query whose SQL text is *fixed* — built only from constants, never
//! from values (values always go through `.bind`) — and lets Diesel cache it like a query-builder
//! statement, keyed by its text and bind types. Because the set of texts is fixed, the cache
//! stays bounded (a dozen statements per connection).
//!
//! Connection poolers: a cached statement is a named, protocol-level prepared statement, which
//! only survives on the same server session. Through pgbouncer in `session` pool mode that holds;
//! in `transaction` mode (pgbouncer < 1.21) it does not, and the query builder's statements break
//! the same way. `OASIS_DB_STATEMENT_CACHE=false` turns Diesel's cache off per connection (see
//! [`crate::pool::build_pool`]) so Oasis also runs there, at the cost of planning every statement
//! (docs/scaling.md).
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::{QueryResult, RunQueryDsl};

/// A `sql_query` with fixed SQL text, cached as a prepared statement (see the module docs).
#[derive(Debug, Clone)]
#[must_use = "queries are only executed when calling `load`, `get_result` or similar."]
pub struct Cached<Q>(Q);

/// `.cached()` on a `sql_query(..)` (after or before its `.bind`s).
pub trait CachedExt: Sized {
    /// Caches this statement; only for SQL text built from constants (see [`Cached`]).
    fn cached(self) -> Cached<Self> {
        Cached(self)
    }
}

impl<Q: QueryFragment<Pg>> CachedExt for Q {}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Cached<Q> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(out)
    }

    /// The wrapped `sql_query` says "unsafe" because its text is arbitrary; ours is fixed.
    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

/// No static id: Diesel then keys the cache by the SQL text and bind types.
impl<Q> QueryId for Cached<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Cached<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, Conn> RunQueryDsl<Conn> for Cached<Q> {}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::sql_types::BigInt;

    #[test]
    fn wrapped_sql_query_is_cacheable_and_unchanged() {
        let q = diesel::sql_query("SELECT $1::bigint AS n").bind::<BigInt, _>(7_i64);
        assert!(!q.is_safe_to_cache_prepared(&Pg).unwrap());
        let sql = diesel::debug_query::<Pg, _>(&q).to_string();
        let c = q.cached();
        assert!(c.is_safe_to_cache_prepared(&Pg).unwrap());
        assert_eq!(diesel::debug_query::<Pg, _>(&c).to_string(), sql);
    }
}
