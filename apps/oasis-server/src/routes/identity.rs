//! `identity` routes.
use crate::context::AppContext;
use actix_web::web::ServiceConfig;

#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct ApiDoc;

pub fn config(_cfg: &mut ServiceConfig, _ctx: &AppContext) {}

pub fn jobs(_registry: &mut crate::jobs::JobRegistry, _ctx: &AppContext) {}

/// The authenticator behind `AuthUser`: `Token <key>` API keys (hashed lookup).
pub fn authenticator(ctx: &AppContext) -> crate::auth::DynAuthenticator {
    std::sync::Arc::new(DbAuthenticator { db: ctx.db.clone() })
}

struct DbAuthenticator {
    db: crate::db::Db,
}

impl crate::auth::Authenticator for DbAuthenticator {
    fn authenticate(
        &self,
        creds: crate::auth::Credentials,
    ) -> futures_util::future::BoxFuture<
        'static,
        Result<crate::auth::Principal, crate::error::ApiError>,
    > {
        use crate::auth::{Credentials, Principal};
        use crate::error::ApiError;
        let db = self.db.clone();
        Box::pin(async move {
            match &creds {
                Credentials::Token(key) => {
                    let key = key.clone();
                    let owner = db
                        .run(move |c| Ok(oasis_db::identity::user_for_token(c, &key)?))
                        .await?
                        .ok_or_else(|| ApiError::authentication_failed("Invalid token."))?;
                    Ok(Principal {
                        user_id: owner.user_id,
                        username: owner.username,
                        is_creator: owner.is_creator,
                        credentials: creds,
                    })
                }
                Credentials::Bearer(_) => Err(ApiError::authentication_failed(
                    "Given token not valid for any token type",
                )),
            }
        })
    }
}
