//! A small OpenID Connect provider on 127.0.0.1:0 standing in for Google: discovery document,
//! JWKS (RS256, a fixed test key in `oidc_key.pem`), and a token endpoint that exchanges the
//! codes issued with [`OidcProvider::issue_code`] (client authentication: HTTP Basic).
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const KEY_PEM: &str = include_str!("oidc_key.pem");
/// Another key, unknown to the JWKS (for forged tokens).
const ROGUE_PEM: &str = include_str!("oidc_rogue_key.pem");
const KEY_N: &str = "sPCRFRkLYUxpGkiHxg-z5Gl1UVPF0KJWKsZ5mltJwFWgiyYUeIEtVmUzQumXfHUggNGUmiYIVpHJX6m1kW8boOwgf7PpDPWMHoTY6fLYODRecMsb76znO_Qc0op93nWLIaX5JsdC0o3RTZZxzvsnkwoQeKv_ttepg38kqE_glp2QNMY1JAz1lAEaLJlvmmMEzby6YYkOSd98L_q1Kh63NSd_OZ149WeWC610yM3Hk3gQcZkLXe7N_G5KM4e21exLNOKwvnVoU9-GR-bt-K8UzEOHg_AEE5A49Qo3_dJ633bBT2nZMy-pAR193cBABgAFEiF9685oMzrPl1hL8QiPXQ";
pub const KID: &str = "oasis-test-key-1";

#[derive(Default)]
struct State {
    /// code -> (redirect_uri, id-token claims)
    codes: HashMap<String, (String, Value)>,
    token_requests: u32,
    discovery_requests: u32,
}

pub struct OidcProvider {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    state: Arc<Mutex<State>>,
    handle: actix_web::dev::ServerHandle,
}

impl OidcProvider {
    pub async fn start(client_id: &str, client_secret: &str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind oidc");
        let port = listener.local_addr().expect("addr").port();
        // A path of its own per provider: the server caches discovery per issuer URL, and ports
        // get recycled between tests.
        let prefix = format!("/idp-{}", rand_suffix());
        let issuer = format!("http://127.0.0.1:{port}{prefix}");
        let state = Arc::new(Mutex::new(State::default()));
        let cfg = web::Data::new((
            issuer.clone(),
            client_id.to_owned(),
            client_secret.to_owned(),
            state.clone(),
        ));
        let server = HttpServer::new(move || {
            App::new().app_data(cfg.clone()).service(
                web::scope(&prefix)
                    .route(
                        "/.well-known/openid-configuration",
                        web::get().to(discovery),
                    )
                    .route("/jwks", web::get().to(jwks))
                    .route("/token", web::post().to(token)),
            )
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            issuer,
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            state,
            handle,
        }
    }

    /// Standard claims of a Google-like ID token for this provider's client, valid for an hour.
    pub fn claims(&self, sub: &str, email: &str, email_verified: bool) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": sub,
            "iat": now,
            "exp": now + 3600,
            "email": email,
            "email_verified": email_verified,
            "given_name": "Grace",
            "family_name": "Hopper",
            "picture": "https://example.com/grace.png",
        })
    }

    /// Signs claims with the provider's key (RS256, kid in the header).
    pub fn sign(&self, claims: &Value) -> String {
        sign_with(KEY_PEM, claims)
    }

    /// Signs with a key the JWKS does not hold (same kid): a forgery.
    pub fn sign_forged(&self, claims: &Value) -> String {
        sign_with(ROGUE_PEM, claims)
    }

    /// A one-time authorization code that the token endpoint exchanges for an ID token.
    pub fn issue_code(&self, claims: Value, redirect_uri: &str) -> String {
        let code = format!("code-{}", rand_suffix());
        self.state
            .lock()
            .unwrap()
            .codes
            .insert(code.clone(), (redirect_uri.to_owned(), claims));
        code
    }

    pub fn token_requests(&self) -> u32 {
        self.state.lock().unwrap().token_requests
    }

    pub fn discovery_requests(&self) -> u32 {
        self.state.lock().unwrap().discovery_requests
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn sign_with(pem: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KID.to_owned());
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("test RSA key");
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

type Cfg = web::Data<(String, String, String, Arc<Mutex<State>>)>;

async fn discovery(cfg: Cfg) -> HttpResponse {
    let issuer = &cfg.0;
    cfg.3.lock().unwrap().discovery_requests += 1;
    HttpResponse::Ok().json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code", "id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "claims_supported": ["sub", "email", "email_verified", "given_name", "family_name", "picture"],
    }))
}

async fn jwks() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "keys": [{"kty": "RSA", "kid": KID, "use": "sig", "alg": "RS256", "n": KEY_N, "e": "AQAB"}]
    }))
}

fn basic_auth(req: &HttpRequest) -> Option<(String, String)> {
    use base64::Engine;
    let v = req.headers().get("authorization")?.to_str().ok()?;
    let b64 = v.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    let dec = |x: &str| {
        url::form_urlencoded::parse(format!("a={x}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((dec(u)?, dec(p)?))
}

async fn token(
    req: HttpRequest,
    cfg: Cfg,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let (_, client_id, client_secret, state) = &**cfg;
    let mut st = state.lock().unwrap();
    st.token_requests += 1;
    let creds = basic_auth(&req).or_else(|| {
        Some((
            form.get("client_id")?.clone(),
            form.get("client_secret")?.clone(),
        ))
    });
    if creds.as_ref() != Some(&(client_id.clone(), client_secret.clone())) {
        return HttpResponse::Unauthorized().json(json!({"error": "invalid_client"}));
    }
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return HttpResponse::BadRequest().json(json!({"error": "unsupported_grant_type"}));
    }
    let code = form.get("code").cloned().unwrap_or_default();
    let Some((redirect, claims)) = st.codes.remove(&code) else {
        return HttpResponse::BadRequest().json(json!({"error": "invalid_grant"}));
    };
    if form.get("redirect_uri") != Some(&redirect) {
        return HttpResponse::BadRequest().json(json!({"error": "invalid_grant"}));
    }
    drop(st);
    HttpResponse::Ok().json(json!({
        "access_token": format!("at-{}", rand_suffix()),
        "token_type": "Bearer",
        "expires_in": 3600,
        "id_token": sign_with(KEY_PEM, &claims),
    }))
}
