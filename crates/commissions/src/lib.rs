//! Oasis commissions domain — reserved.
//!
//! Creators will offer commissions and fans order and pay for them (Razorpay orders whose
//! `notes.type` is `commission`). That capability has not landed yet: today billing records
//! commission payments generically (`billing_orders.kind = 'commission'`) so that nothing paid
//! is lost, and the dashboards count them. This crate will hold the commission rules when the
//! capability is built; it deliberately has no code until then.
