//! `actix_web::web` as the route modules use it, with one substitution: [`Json`] is
//! [`crate::json::Json`], so every JSON request body answers DRF's field errors
//! (`{"price": ["A valid integer is required."]}`) without a change to the handlers. Route modules
//! import `crate::web`, never `actix_web::web` (tests/api/architecture.rs checks).
pub use crate::json::Json;
pub use actix_web::web::*;
