//! Postgres adapter for the notify domain.
