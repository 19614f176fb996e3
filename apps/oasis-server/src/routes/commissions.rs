//! `commissions` routes.
use crate::context::AppContext;
use crate::web::ServiceConfig;

#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct ApiDoc;

pub fn config(_cfg: &mut ServiceConfig, _ctx: &AppContext) {}
