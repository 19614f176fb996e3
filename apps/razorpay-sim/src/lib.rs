//! Razorpay simulator.
