//! Workflows of the app that are not HTTP: the adapters the domain workflows run on (billing's
//! unit of work over PostgreSQL), jobs, reconciliation and the operator CLI.
pub mod billing;
pub mod billing_db;
pub mod checkout;
pub mod cli;
pub mod guest;
pub mod refunds;
