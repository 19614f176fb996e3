//! The billing workflows: async services over the unit of work ([`crate::ports::BillingDb`])
//! and the payment gateway ([`crate::gateway::PaymentGateway`]), with time passed in (`now`).
//! The shell parses requests, calls one of these and maps the result.
pub mod checkout;
pub mod ledger;
pub mod payouts;
pub mod refunds;
pub mod sync;
