//! One integration-test binary (link time on 2 cores): a module per capability.
mod architecture;
mod foundation;
mod catalog;
