//! The Oasis HTTP API: an actix-web shell over the domain crates.
//!
//! `startup::Application` builds the real server (tests bind port 0 with `OASIS_BIND=127.0.0.1:0`).

pub mod auth;
pub mod config;
pub mod context;
pub mod database;
pub mod db;
pub mod error;
pub mod gateway;
pub mod idempotency;
pub mod jobs;
pub mod json;
pub mod links;
pub mod mail;
pub mod openapi;
pub mod pagination;
pub mod payments;
pub mod read_cache;
pub mod routes;
pub mod startup;
pub mod stream;
pub mod telemetry;
pub mod web;
pub mod workflows;

pub use config::Settings;
pub use startup::Application;
