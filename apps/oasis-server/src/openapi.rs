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
    doc.merge(routes::billing::memberships::ApiDoc::openapi());
    doc.merge(routes::social::ApiDoc::openapi());
    doc.merge(routes::commissions::ApiDoc::openapi());
    doc.merge(routes::notify::ApiDoc::openapi());
    utoipa::Modify::modify(&CommonErrors, &mut doc);
    doc
}

/// Documents, on every operation, the answers the shared mechanisms (error.rs, auth.rs) give
/// whatever the route: presented-but-bad credentials (401), a body that is malformed, too large or
/// of the wrong type (400/413/415), an invalid query string (400) or page (404), an unknown or
/// malformed path id (404), a replayed `Idempotency-Key` (409/422). A route's own description of
/// a status wins; this only fills gaps, so the document matches what clients really receive.
struct CommonErrors;

const ERROR_SCHEMA: &str = "ErrorBody";

impl utoipa::Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
        use utoipa::openapi::{Content, Ref, ResponseBuilder};

        let components = openapi.components.get_or_insert_with(Default::default);
        components.schemas.insert(
            ERROR_SCHEMA.to_owned(),
            ObjectBuilder::new()
                .description(Some(
                    "`{\"detail\": \"...\", \"code\": \"...\"}`, or field errors \
                     `{\"field\": [\"message\"]}` (Django REST framework's shapes).",
                ))
                .property("detail", ObjectBuilder::new().schema_type(Type::String))
                .property("code", ObjectBuilder::new().schema_type(Type::String))
                .additional_properties(Some(AdditionalProperties::FreeForm(true)))
                .into(),
        );
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    Content::new(Some(Ref::from_schema_name(ERROR_SCHEMA))),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                let params = op.parameters.as_deref().unwrap_or_default();
                let has = |place: ParameterIn| {
                    params.iter().any(|p| {
                        std::mem::discriminant(&p.parameter_in) == std::mem::discriminant(&place)
                    })
                };
                let named = |name: &str| params.iter().any(|p| p.name.eq_ignore_ascii_case(name));
                let mut add: Vec<(&str, &str)> = vec![(
                    "401",
                    "credentials were presented but are invalid, expired or revoked",
                )];
                if op.request_body.is_some() {
                    add.push(("400", "malformed body or invalid fields"));
                    add.push(("413", "body too large"));
                    add.push(("415", "unsupported Content-Type"));
                }
                if has(ParameterIn::Query) {
                    add.push(("400", "invalid query string"));
                }
                if named("page") {
                    add.push(("404", "Invalid page."));
                }
                if has(ParameterIn::Path) {
                    add.push(("404", "no such object (or a malformed id)"));
                }
                if named("Idempotency-Key") {
                    add.push(("409", "the same Idempotency-Key is still being processed"));
                    add.push((
                        "422",
                        "the Idempotency-Key was used with a different request",
                    ));
                }
                for (status, description) in add {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error(description).into());
                }
            }
        }
    }
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
