//! The OpenAPI 3 document (`GET /api/openapi.json`) and an offline docs page (`/api/docs`).
use crate::routes;
use actix_web::{web, HttpResponse};
use std::sync::Arc;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Oasis API",
        description = "Creator memberships on Razorpay. Errors use Django REST framework's shapes; see docs/API.md."
    ),
    modifiers(&Security)
)]
struct Root;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`Token <key>` from /authenticate/rest-auth/login/",
            ))),
        );
        components.add_security_scheme(
            "jwt",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The merged document of every route module.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = Root::openapi();
    doc.merge(routes::health::ApiDoc::openapi());
    doc.merge(routes::identity::ApiDoc::openapi());
    doc.merge(routes::catalog::ApiDoc::openapi());
    doc.merge(routes::billing::ApiDoc::openapi());
    doc.merge(routes::social::ApiDoc::openapi());
    doc.merge(routes::commissions::ApiDoc::openapi());
    doc.merge(routes::notify::ApiDoc::openapi());
    doc
}

pub fn config(cfg: &mut web::ServiceConfig) {
    let json = Arc::new(document().to_json().unwrap_or_else(|_| "{}".into()));
    let swagger = Arc::new(utoipa_swagger_ui::Config::from("/api/openapi.json"));
    cfg.service(
        web::resource("/api/openapi.json").route(web::get().to(move || {
            let json = json.clone();
            async move {
                HttpResponse::Ok()
                    .content_type("application/json")
                    .body(json.as_str().to_owned())
            }
        })),
    )
    .service(web::resource("/api/docs").route(web::get().to({
        let swagger = swagger.clone();
        move || docs_file(String::new(), swagger.clone())
    })))
    .service(web::resource("/api/docs/{tail:.*}").route(
        web::get().to(move |tail: web::Path<String>| docs_file(tail.into_inner(), swagger.clone())),
    ));
}

/// Serves Swagger UI's files, vendored into the binary (nothing is fetched from another host).
async fn docs_file(tail: String, config: Arc<utoipa_swagger_ui::Config<'static>>) -> HttpResponse {
    let name = if tail.is_empty() {
        "index.html".to_owned()
    } else {
        tail
    };
    match utoipa_swagger_ui::serve(&name, config) {
        Ok(Some(file)) => {
            let body = if name == "index.html" {
                // The page may be requested as /api/docs (no slash): make asset links absolute.
                String::from_utf8_lossy(&file.bytes)
                    .replace("\"./", "\"/api/docs/")
                    .into_bytes()
            } else {
                file.bytes.to_vec()
            };
            HttpResponse::Ok()
                .content_type(file.content_type)
                .body(body)
        }
        Ok(None) => crate::error::ApiError::not_found().into(),
        Err(e) => crate::error::ApiError::internal(e).into(),
    }
}

impl From<crate::error::ApiError> for HttpResponse {
    fn from(e: crate::error::ApiError) -> Self {
        actix_web::ResponseError::error_response(&e)
    }
}
