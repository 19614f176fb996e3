//! Social login: Google through OpenID Connect (ID token checked against the provider's
//! discovery document and JWKS, or an authorization code exchanged first) and Facebook through
//! the Graph API (`debug_token`, then `/me`).
use super::IdentityState;
use crate::context::AppContext;
use crate::error::ApiError;
use crate::web;
use actix_web::HttpResponse;
use chrono::Utc;
use oasis_db::identity::PgIdentity;
use oasis_identity::model::{LoginType, SocialProfile};
use oasis_identity::service;
use oasis_identity::IdentityError;
use openidconnect::core::{CoreClient, CoreIdToken, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, IssuerUrl, Nonce, RedirectUrl, TokenResponse,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/authenticate/rest-auth/google").route(web::post().to(google)))
        .service(web::resource("/authenticate/rest-auth/facebook").route(web::post().to(facebook)));
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct GoogleBody {
    /// An ID token obtained by the client (Google Sign-In).
    id_token: Option<String>,
    /// Or an authorization code with the redirect URI it was issued for.
    code: Option<String>,
    redirect_uri: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct FacebookBody {
    access_token: Option<String>,
}

/// Like login, plus a JWT pair.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SocialLoginResponse {
    key: String,
    user_id: i64,
    is_creator: bool,
    access: String,
    refresh: String,
}

/// Resolves the profile to an account and opens a session (API key + JWT pair), in one
/// transaction. A provider-verified email that matches an account whose email was never
/// verified claims that account for the provider's user alone (see
/// `oasis_identity::service::claim_unverified`).
async fn finish(
    ctx: &AppContext,
    st: &IdentityState,
    profile: SocialProfile,
) -> Result<HttpResponse, ApiError> {
    let keys = st.jwt.clone();
    let body: SocialLoginResponse = ctx
        .db
        .tx(move |c| {
            let mut repo = PgIdentity(c);
            let now = Utc::now();
            let (user, created) = service::social_login(&mut repo, &profile, now)?;
            if created {
                tracing::info!(
                    user_id = user.id,
                    provider = profile.provider.as_str(),
                    "account created by social login"
                );
            }
            let key = service::issue_api_key(&mut repo, user.id)?;
            let pair = service::issue_jwt_pair(&mut repo, &keys, &user, None, now)?;
            Ok(SocialLoginResponse {
                key,
                user_id: user.id,
                is_creator: user.is_creator,
                access: pair.access,
                refresh: pair.refresh,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(body))
}

fn social(msg: impl Into<String>) -> ApiError {
    IdentityError::Social(msg.into()).into()
}

fn not_configured(provider: &str) -> ApiError {
    ApiError::bad_request(
        "not_configured",
        format!("{provider} login is not configured on this server."),
    )
}

// ---------------------------------------------------------------------------------------------
// Google (OpenID Connect)

type Metadata = Arc<CoreProviderMetadata>;

/// Discovery documents (with their JWKS) by issuer, shared by every worker; refreshed after
/// ten minutes, or early when a token names a key the cached JWKS lacks.
fn metadata_cache() -> &'static Mutex<HashMap<String, (Instant, Metadata)>> {
    static CACHE: std::sync::OnceLock<Mutex<HashMap<String, (Instant, Metadata)>>> =
        std::sync::OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

const METADATA_TTL: Duration = Duration::from_secs(600);

fn oidc_http() -> Result<openidconnect::reqwest::Client, ApiError> {
    openidconnect::reqwest::Client::builder()
        // Following redirects here would allow SSRF via a malicious discovery document.
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(ApiError::internal)
}

async fn provider_metadata(
    issuer: &str,
    http: &openidconnect::reqwest::Client,
    fresh: bool,
) -> Result<Metadata, ApiError> {
    if !fresh {
        let cache = metadata_cache().lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, m)) = cache.get(issuer) {
            if at.elapsed() < METADATA_TTL {
                return Ok(m.clone());
            }
        }
    }
    let issuer_url = IssuerUrl::new(issuer.to_owned())
        .map_err(|e| ApiError::internal(format!("GOOGLE_ISSUER_URL: {e}")))?;
    let m = CoreProviderMetadata::discover_async(issuer_url, http)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, issuer, "OpenID discovery failed");
            ApiError::bad_gateway(
                "Could not reach the Google sign-in service (discovery failed). Try again later.",
            )
        })?;
    let m = Arc::new(m);
    metadata_cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(issuer.to_owned(), (Instant::now(), m.clone()));
    Ok(m)
}

/// Checks an ID token's signature (JWKS), issuer, audience and expiry and reads the profile.
fn verify_id_token(
    client: &openidconnect::core::CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    >,
    id_token: &CoreIdToken,
) -> Result<SocialProfile, openidconnect::ClaimsVerificationError> {
    let verifier = client.id_token_verifier();
    // The client obtained the token itself; we did not issue a nonce to compare.
    let claims = id_token.claims(&verifier, |_: Option<&Nonce>| Ok(()))?;
    let localized = |c: Option<&openidconnect::LocalizedClaim<openidconnect::EndUserGivenName>>| {
        c.and_then(|n| n.get(None)).map(|n| n.to_string())
    };
    Ok(SocialProfile {
        provider: LoginType::Google,
        subject: claims.subject().to_string(),
        email: claims.email().map(|e| e.to_string()),
        email_verified: claims.email_verified().unwrap_or(false),
        first_name: localized(claims.given_name()).unwrap_or_default(),
        last_name: claims
            .family_name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string())
            .unwrap_or_default(),
        picture: claims
            .picture()
            .and_then(|p| p.get(None))
            .map(|p| p.to_string()),
    })
}

/// Signs in with Google: `{id_token}` or `{code, redirect_uri}`.
#[utoipa::path(post, path = "/authenticate/rest-auth/google/", tag = "identity",
    request_body = GoogleBody,
    responses((status = 200, body = SocialLoginResponse),
              (status = 400, description = "invalid token or code, unverified email of an existing account, not configured"),
              (status = 502, description = "Google unreachable")))]
pub async fn google(
    ctx: web::Data<AppContext>,
    st: web::Data<IdentityState>,
    body: web::Json<GoogleBody>,
) -> Result<HttpResponse, ApiError> {
    let g = &ctx.settings.google;
    let Some(client_id) = g.client_id.clone() else {
        return Err(not_configured("Google"));
    };
    let b = body.into_inner();
    let id_token = b.id_token.filter(|t| !t.trim().is_empty());
    let code = b.code.filter(|t| !t.trim().is_empty());
    if id_token.is_none() && code.is_none() {
        return Err(ApiError::field(
            "non_field_errors",
            "Provide either \"id_token\" or \"code\" and \"redirect_uri\".",
        ));
    }
    // Input errors before any network call.
    let parsed: Option<CoreIdToken> = match &id_token {
        Some(t) => Some(
            CoreIdToken::from_str(t.trim())
                .map_err(|_| social("The Google ID token is malformed."))?,
        ),
        None => None,
    };
    let redirect: Option<RedirectUrl> = match &code {
        Some(_) if parsed.is_none() => {
            if g.client_secret.is_none() {
                return Err(not_configured(
                    "Google code exchange (GOOGLE_CLIENT_SECRET)",
                ));
            }
            let r = b
                .redirect_uri
                .clone()
                .filter(|r| !r.trim().is_empty())
                .ok_or_else(|| ApiError::field("redirect_uri", "This field is required."))?;
            Some(
                RedirectUrl::new(r.trim().to_owned())
                    .map_err(|_| ApiError::field("redirect_uri", "Enter a valid URL."))?,
            )
        }
        _ => None,
    };
    let http = oidc_http()?;
    let mut fresh = false;
    loop {
        let metadata = provider_metadata(&g.issuer_url, &http, fresh).await?;
        let client = CoreClient::from_provider_metadata(
            (*metadata).clone(),
            ClientId::new(client_id.clone()),
            g.client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose_secret().to_owned())),
        );
        let token: CoreIdToken = match (&parsed, &code, &redirect) {
            (Some(t), _, _) => t.clone(),
            (None, Some(code), Some(redirect)) => {
                let req = client
                    .exchange_code(AuthorizationCode::new(code.trim().to_owned()))
                    .map_err(|_| {
                        ApiError::bad_gateway(
                            "The Google discovery document has no token endpoint.",
                        )
                    })?
                    .set_redirect_uri(std::borrow::Cow::Borrowed(redirect));
                let resp = req.request_async(&http).await.map_err(|e| match e {
                    openidconnect::RequestTokenError::ServerResponse(r) => social(format!(
                        "Google refused the authorization code ({}).",
                        r.error()
                    )),
                    other => {
                        tracing::warn!(error = %other, "Google token exchange failed");
                        ApiError::bad_gateway(
                            "Could not exchange the code with Google. Try again later.",
                        )
                    }
                })?;
                resp.id_token()
                    .cloned()
                    .ok_or_else(|| ApiError::bad_gateway("Google answered without an ID token."))?
            }
            _ => unreachable_both_missing()?,
        };
        match verify_id_token(&client, &token) {
            Ok(profile) => {
                if !profile.email_verified && profile.email.is_some() {
                    tracing::info!("Google ID token carries an unverified e-mail");
                }
                return finish(&ctx, &st, profile).await;
            }
            // A key we do not know yet: the provider may have rotated its keys.
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(_)) if !fresh => {
                fresh = true;
                continue;
            }
            Err(e) => {
                tracing::info!(error = %e, "Google ID token refused");
                return Err(social(format!("Invalid Google ID token: {e}.")));
            }
        }
    }
}

fn unreachable_both_missing<T>() -> Result<T, ApiError> {
    Err(ApiError::field(
        "non_field_errors",
        "Provide either \"id_token\" or \"code\" and \"redirect_uri\".",
    ))
}

// ---------------------------------------------------------------------------------------------
// Facebook (Graph API)

#[derive(Deserialize)]
struct DebugToken {
    data: DebugData,
}

#[derive(Deserialize)]
struct DebugData {
    #[serde(default, deserialize_with = "string_or_number")]
    app_id: Option<String>,
    #[serde(default)]
    is_valid: bool,
    #[serde(default, deserialize_with = "string_or_number")]
    user_id: Option<String>,
}

#[derive(Deserialize)]
struct FbMe {
    #[serde(deserialize_with = "string_or_number")]
    id: Option<String>,
    email: Option<String>,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    picture: Option<FbPicture>,
}

#[derive(Deserialize)]
struct FbPicture {
    data: Option<FbPictureData>,
}

#[derive(Deserialize)]
struct FbPictureData {
    url: Option<String>,
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

async fn graph_get(
    http: &reqwest::Client,
    url: String,
    query: &[(&str, &str)],
) -> Result<Result<serde_json::Value, serde_json::Value>, ApiError> {
    let resp = http.get(url).query(query).send().await.map_err(|e| {
        // The URL carries the app access token (`app_id|app_secret`): never log it.
        tracing::warn!(error = %e.without_url(), "Facebook Graph API unreachable");
        ApiError::bad_gateway("Could not reach Facebook. Try again later.")
    })?;
    let status = resp.status();
    let body: serde_json::Value = resp
        .json()
        .await
        .map_err(|_| ApiError::bad_gateway("Facebook answered with something that is not JSON."))?;
    if status.is_success() {
        Ok(Ok(body))
    } else if status.is_client_error() {
        Ok(Err(body))
    } else {
        Err(ApiError::bad_gateway(format!(
            "Facebook answered with status {status}."
        )))
    }
}

/// Signs in with a Facebook user access token.
#[utoipa::path(post, path = "/authenticate/rest-auth/facebook/", tag = "identity",
    request_body = FacebookBody,
    responses((status = 200, body = SocialLoginResponse),
              (status = 400, description = "invalid token, token of another app, no email, not configured"),
              (status = 502, description = "Facebook unreachable")))]
pub async fn facebook(
    ctx: web::Data<AppContext>,
    st: web::Data<IdentityState>,
    body: web::Json<FacebookBody>,
) -> Result<HttpResponse, ApiError> {
    let fb = &ctx.settings.facebook;
    let (Some(app_id), Some(secret)) = (fb.app_id.clone(), fb.app_secret.clone()) else {
        return Err(not_configured("Facebook"));
    };
    let token = super::accounts::required("access_token", body.into_inner().access_token)?;
    let token = token.trim();
    let base = fb.graph_url.trim_end_matches('/');
    let app_token = format!("{app_id}|{}", secret.expose_secret());
    let debug = graph_get(
        &st.http,
        format!("{base}/debug_token"),
        &[("input_token", token), ("access_token", &app_token)],
    )
    .await?
    .map_err(|_| social("Facebook rejected the access token."))?;
    let debug: DebugToken = serde_json::from_value(debug)
        .map_err(|_| ApiError::bad_gateway("Facebook's debug_token answer is malformed."))?;
    if !debug.data.is_valid {
        return Err(social("The Facebook access token is invalid or expired."));
    }
    if debug.data.app_id.as_deref() != Some(app_id.as_str()) {
        return Err(social(
            "The Facebook access token was issued to another app.",
        ));
    }
    // appsecret_proof: HMAC-SHA256(app secret, token), as Facebook recommends for server calls.
    let proof = hex::encode(
        ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.expose_secret().as_bytes()),
            token.as_bytes(),
        )
        .as_ref(),
    );
    let me = graph_get(
        &st.http,
        format!("{base}/me"),
        &[
            ("fields", "id,email,first_name,last_name,picture"),
            ("access_token", token),
            ("appsecret_proof", &proof),
        ],
    )
    .await?
    .map_err(|_| social("Facebook rejected the access token."))?;
    let me: FbMe = serde_json::from_value(me)
        .map_err(|_| ApiError::bad_gateway("Facebook's profile answer is malformed."))?;
    let Some(id) = me.id.filter(|i| !i.is_empty()) else {
        return Err(ApiError::bad_gateway(
            "Facebook's profile answer has no id.",
        ));
    };
    if debug.data.user_id.as_deref().is_some_and(|u| u != id) {
        return Err(social(
            "The Facebook token does not belong to this profile.",
        ));
    }
    let profile = SocialProfile {
        provider: LoginType::Facebook,
        subject: id,
        email: me.email,
        // The Graph API does not say whether the address was verified: never trust it to
        // take over an existing account.
        email_verified: false,
        first_name: me.first_name,
        last_name: me.last_name,
        picture: me.picture.and_then(|p| p.data).and_then(|d| d.url),
    };
    finish(&ctx, &st, profile).await
}
