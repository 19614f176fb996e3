//! Postgres adapter for the social domain.
