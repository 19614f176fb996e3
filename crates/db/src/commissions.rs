//! Postgres adapter for the commissions domain.
