//! A Facebook Graph API stand-in on 127.0.0.1:0: `GET /debug_token` (checks the app access
//! token `<app_id>|<app_secret>`) and `GET /me` (checks `appsecret_proof`) for the user tokens
//! registered with [`GraphApi::add_user`].
use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct FbUser {
    pub id: String,
    /// The app the token was issued to.
    pub app_id: String,
    pub email: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub valid: bool,
}

#[derive(Default)]
struct State {
    users: HashMap<String, FbUser>,
    requests: Vec<String>,
}

pub struct GraphApi {
    pub url: String,
    pub app_id: String,
    pub app_secret: String,
    state: Arc<Mutex<State>>,
    handle: actix_web::dev::ServerHandle,
}

type Cfg = web::Data<(String, String, Arc<Mutex<State>>)>;

impl GraphApi {
    pub async fn start(app_id: &str, app_secret: &str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind graph");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(State::default()));
        let cfg: Cfg = web::Data::new((app_id.to_owned(), app_secret.to_owned(), state.clone()));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(cfg.clone())
                .route("/v19.0/debug_token", web::get().to(debug_token))
                .route("/v19.0/me", web::get().to(me))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}/v19.0"),
            app_id: app_id.to_owned(),
            app_secret: app_secret.to_owned(),
            state,
            handle,
        }
    }

    /// Registers a user access token.
    pub fn add_user(&self, token: &str, user: FbUser) {
        self.state
            .lock()
            .unwrap()
            .users
            .insert(token.to_owned(), user);
    }

    /// A valid token of this app for a user.
    pub fn user(&self, id: &str, email: Option<&str>) -> FbUser {
        FbUser {
            id: id.to_owned(),
            app_id: self.app_id.clone(),
            email: email.map(str::to_owned),
            first_name: "Mark".into(),
            last_name: "Zed".into(),
            valid: true,
        }
    }

    /// Paths requested so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

fn oauth_error(message: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({
        "error": {"message": message, "type": "OAuthException", "code": 190}
    }))
}

async fn debug_token(cfg: Cfg, q: web::Query<HashMap<String, String>>) -> HttpResponse {
    let (app_id, secret, state) = &**cfg;
    let mut st = state.lock().unwrap();
    st.requests.push("debug_token".into());
    if q.get("access_token") != Some(&format!("{app_id}|{secret}")) {
        return oauth_error("Invalid OAuth access token signature.");
    }
    let input = q.get("input_token").cloned().unwrap_or_default();
    let body: Value = match st.users.get(&input) {
        Some(u) => json!({"data": {
            "app_id": u.app_id, "type": "USER", "application": "Oasis",
            "expires_at": 4102444800u64, "is_valid": u.valid,
            "scopes": ["email", "public_profile"], "user_id": u.id
        }}),
        None => json!({"data": {
            "is_valid": false,
            "error": {"code": 190, "message": "Invalid OAuth access token."}
        }}),
    };
    HttpResponse::Ok().json(body)
}

async fn me(cfg: Cfg, q: web::Query<HashMap<String, String>>) -> HttpResponse {
    let (_, secret, state) = &**cfg;
    let mut st = state.lock().unwrap();
    st.requests.push("me".into());
    let token = q.get("access_token").cloned().unwrap_or_default();
    let Some(u) = st.users.get(&token).cloned() else {
        return oauth_error("Invalid OAuth access token.");
    };
    let expected = hex::encode(
        ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes()),
            token.as_bytes(),
        )
        .as_ref(),
    );
    if q.get("appsecret_proof") != Some(&expected) {
        return oauth_error("Invalid appsecret_proof provided in the API argument");
    }
    let mut body = json!({
        "id": u.id,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "picture": {"data": {"height": 50, "is_silhouette": false,
                              "url": format!("https://graph.example/{}/picture", u.id), "width": 50}},
    });
    if let Some(e) = u.email {
        body["email"] = json!(e);
    }
    HttpResponse::Ok().json(body)
}
