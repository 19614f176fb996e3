//! One integration-test binary (link time on 2 cores): a module per capability.
mod architecture;
mod billing;
mod catalog;
mod faults;
mod foundation;
mod identity;
mod jobs;
mod notify;
mod notify_stream;
mod read_cache;
mod robustness;
mod security;
mod social;
