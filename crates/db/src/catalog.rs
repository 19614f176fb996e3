//! Postgres adapter for the catalog domain.
