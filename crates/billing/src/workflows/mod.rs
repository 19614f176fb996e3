//! The billing workflows: async services over the unit of work ([`crate::ports::BillingDb`])
//! and the payment gateway ([`crate::gateway::PaymentGateway`]), with time passed in.
pub mod refunds;
pub mod sync;
