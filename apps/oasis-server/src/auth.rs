//! Who is calling: the `AuthUser` / `MaybeAuthUser` extractors.
//!
//! `Authorization: Token <key>` (DRF) and `Authorization: Bearer <jwt>` are parsed here and
//! resolved by the [`Authenticator`] installed in the app (the identity routes provide it).
use crate::error::ApiError;
use actix_web::dev::Payload;
use actix_web::{http::header, web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::{BoxFuture, LocalBoxFuture};
use std::sync::Arc;

/// Presented credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Token(String),
    Bearer(String),
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: i64,
    pub username: String,
    pub is_creator: bool,
    /// The presented credential (so logout can revoke exactly it).
    pub credentials: Credentials,
}

/// Resolves credentials to a principal; `Err` is a 401 (or 503 when storage is down).
pub trait Authenticator: Send + Sync + 'static {
    fn authenticate(
        &self,
        credentials: Credentials,
    ) -> BoxFuture<'static, Result<Principal, ApiError>>;
}

pub type DynAuthenticator = Arc<dyn Authenticator>;

fn parse_header(req: &HttpRequest) -> Result<Option<Credentials>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::authentication_failed("Invalid authorization header."))?;
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    let cred = rest.trim();
    if cred.is_empty() || cred.contains(' ') {
        return Err(ApiError::authentication_failed(
            "Invalid token header. Credentials string should not contain spaces or be empty.",
        ));
    }
    match scheme.to_ascii_lowercase().as_str() {
        "token" => Ok(Some(Credentials::Token(cred.to_owned()))),
        "bearer" => Ok(Some(Credentials::Bearer(cred.to_owned()))),
        // Unknown schemes are ignored, as DRF does: the request is anonymous.
        _ => Ok(None),
    }
}

async fn resolve(req: HttpRequest) -> Result<Option<Principal>, ApiError> {
    if let Some(p) = req.extensions().get::<Principal>() {
        return Ok(Some(p.clone()));
    }
    let Some(creds) = parse_header(&req)? else {
        return Ok(None);
    };
    let auth = req
        .app_data::<web::Data<DynAuthenticator>>()
        .ok_or_else(|| ApiError::internal("no authenticator installed"))?
        .get_ref()
        .clone();
    let principal = auth.authenticate(creds).await?;
    req.extensions_mut().insert(principal.clone());
    Ok(Some(principal))
}

/// A signed-in caller; 401 otherwise.
#[derive(Debug, Clone)]
pub struct AuthUser(pub Principal);

impl std::ops::Deref for AuthUser {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            resolve(req)
                .await?
                .map(AuthUser)
                .ok_or_else(ApiError::not_authenticated)
        })
    }
}

/// A caller who may be anonymous; bad credentials are still a 401 (DRF behaviour).
#[derive(Debug, Clone)]
pub struct MaybeAuthUser(pub Option<Principal>);

impl MaybeAuthUser {
    pub fn user_id(&self) -> Option<i64> {
        self.0.as_ref().map(|p| p.user_id)
    }
}

impl FromRequest for MaybeAuthUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Ok(MaybeAuthUser(resolve(req).await?)) })
    }
}

/// A signed-in creator; 401 when anonymous, 403 when not a creator.
#[derive(Debug, Clone)]
pub struct CreatorUser(pub Principal);

impl std::ops::Deref for CreatorUser {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl FromRequest for CreatorUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let p = resolve(req)
                .await?
                .ok_or_else(ApiError::not_authenticated)?;
            if !p.is_creator {
                return Err(ApiError::forbidden("Only creators can do this."));
            }
            Ok(CreatorUser(p))
        })
    }
}

/// Middleware (`from_fn`): a request that presents credentials is authenticated up front, as DRF
/// does, so an invalid or revoked credential is a 401 on every route — including those that
/// allow anonymous access — instead of being silently ignored. The principal is cached in the
/// request extensions for the extractors above.
pub async fn authenticate_presented(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    if req.headers().contains_key(header::AUTHORIZATION) {
        if let Err(e) = resolve(req.request().clone()).await {
            let res = actix_web::ResponseError::error_response(&e);
            return Ok(req.into_response(res));
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}
