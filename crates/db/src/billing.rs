//! Postgres adapter for the billing domain.
