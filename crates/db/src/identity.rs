//! Postgres adapter for the identity domain.
