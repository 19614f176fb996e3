//! Liveness and readiness.
use crate::context::AppContext;
use crate::db::Db;
use crate::error::ApiError;
use crate::web;
use actix_web::HttpResponse;
use diesel::RunQueryDsl;
use serde::Serialize;

#[derive(utoipa::OpenApi)]
#[openapi(paths(health, ready), components(schemas(HealthBody)))]
pub struct ApiDoc;

pub fn config(cfg: &mut web::ServiceConfig, _ctx: &AppContext) {
    // Always `web::resource(path).route(...)`: a resource answers 405 for other methods,
    // while `cfg.route` would fall through to the 404 default service.
    cfg.service(web::resource("/health").route(web::get().to(health)))
        .service(web::resource("/ready").route(web::get().to(ready)));
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct HealthBody {
    /// `ok` when healthy.
    status: &'static str,
    version: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, body = HealthBody)))]
async fn health() -> HttpResponse {
    HttpResponse::Ok().json(HealthBody {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// The database answers.
#[utoipa::path(get, path = "/ready", tag = "health", responses(
    (status = 200, body = HealthBody),
    (status = 503, description = "database unavailable")))]
async fn ready(db: web::Data<Db>) -> Result<HttpResponse, ApiError> {
    db.run(|c| {
        diesel::sql_query("SELECT 1")
            .execute(c)
            .map_err(|_| ApiError::unavailable("Database unavailable."))
    })
    .await?;
    Ok(HttpResponse::Ok().json(HealthBody {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    }))
}
