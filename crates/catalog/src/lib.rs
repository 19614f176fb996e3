#![doc = include_str!("../README.md")]

#[doc(hidden)]
pub mod contract;
mod error;
pub mod media;
mod model;
mod ports;
mod services;
mod validate;
mod visibility;

pub use error::CatalogError;
pub use media::MediaKind;
pub use model::*;
pub use ports::*;
pub use services::*;
pub use validate::*;
pub use visibility::{can_view, PostView};

#[cfg(test)]
mod tests;
