//! `identity` routes.
use crate::context::AppContext;
use actix_web::web::ServiceConfig;

#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct ApiDoc;

pub fn config(_cfg: &mut ServiceConfig, _ctx: &AppContext) {}

pub fn jobs(_registry: &mut crate::jobs::JobRegistry, _ctx: &AppContext) {}

/// The authenticator behind `AuthUser` (Token keys and Bearer JWTs).
pub fn authenticator(_ctx: &AppContext) -> crate::auth::DynAuthenticator {
    struct NoAccounts;
    impl crate::auth::Authenticator for NoAccounts {
        fn authenticate(
            &self,
            _c: crate::auth::Credentials,
        ) -> futures_util::future::BoxFuture<
            'static,
            Result<crate::auth::Principal, crate::error::ApiError>,
        > {
            Box::pin(async {
                Err(crate::error::ApiError::authentication_failed(
                    "Invalid token.",
                ))
            })
        }
    }
    std::sync::Arc::new(NoAccounts)
}
