#![doc = include_str!("../README.md")]

mod error;
pub mod model;
pub mod ports;
pub mod rules;
pub mod services;

pub use error::CommissionError;
pub use model::{
    Actor, Changed, Offering, OfferingInput, RefundDue, Request, RequestInput, RequestStatus,
    StatusChange,
};
pub use ports::CommissionStore;
