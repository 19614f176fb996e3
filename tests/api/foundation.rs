use oasis_tests::{json, spawn_app};

#[tokio::test]
async fn health_and_ready_answer_json() {
    let app = spawn_app().await;
    let r = app.get("/health", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "ok");
    let r = app.get("/ready/", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "ok");
}

#[tokio::test]
async fn trailing_slash_is_served_directly_without_redirect() {
    let app = spawn_app().await;
    for path in ["/health", "/health/"] {
        let r = app.get(path, None).await;
        assert_eq!(r.status, 200, "{path}");
    }
}

#[tokio::test]
async fn unknown_route_is_json_404_with_code() {
    let app = spawn_app().await;
    let r = app.get("/no/such/route/", None).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["detail"], "Not found.");
    assert_eq!(r.body["code"], "not_found");
}

#[tokio::test]
async fn wrong_method_is_json_405() {
    let app = spawn_app().await;
    let r = app.post("/health", &json!({}), None).await;
    assert_eq!(r.status, 405, "{}", r.text);
    assert_eq!(r.body["code"], "method_not_allowed");
}

#[tokio::test]
async fn request_id_is_echoed_or_generated() {
    let app = spawn_app().await;
    let r = app
        .send(
            app.client
                .get(app.url("/health"))
                .header("X-Request-Id", "abc-123"),
        )
        .await;
    assert_eq!(r.header("x-request-id"), Some("abc-123"));
    let r = app.get("/health", None).await;
    let generated = r.header("x-request-id").expect("generated id");
    assert!(generated.len() >= 16);
    // A hostile id is replaced, not echoed.
    let r = app
        .send(
            app.client
                .get(app.url("/health"))
                .header("X-Request-Id", "bad id\twith spaces"),
        )
        .await;
    assert_ne!(r.header("x-request-id"), Some("bad id\twith spaces"));
}

#[tokio::test]
async fn openapi_document_and_offline_docs_page() {
    let app = spawn_app().await;
    let r = app.get("/api/openapi.json", None).await;
    assert_eq!(r.status, 200);
    assert!(r.body["openapi"].as_str().unwrap().starts_with("3."));
    assert!(r.body["paths"]["/health"].is_object());
    for path in ["/api/docs", "/api/docs/"] {
        let r = app.get(path, None).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.text.contains("swagger"), "docs page is Swagger UI");
        // Works offline: no script or stylesheet from another host.
        assert!(!r.text.contains("src=\"http"), "no external scripts");
        assert!(!r.text.contains("href=\"http"), "no external stylesheets");
    }
    let r = app.get("/api/docs/swagger-ui.css", None).await;
    assert_eq!(r.status, 200);
    let r = app.get("/api/docs/swagger-initializer.js", None).await;
    assert_eq!(r.status, 200);
    assert!(r.text.contains("/api/openapi.json"));
}

#[tokio::test]
async fn api_keys_are_stored_only_as_hashes() {
    let app = spawn_app().await;
    let user = app.create_user("tokenholder", false);
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct H {
        #[diesel(sql_type = diesel::sql_types::Bytea)]
        key_hash: Vec<u8>,
    }
    let h: H = diesel::sql_query("SELECT key_hash FROM auth_tokens LIMIT 1")
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(h.key_hash.len(), 32, "sha-256");
    assert!(!String::from_utf8_lossy(&h.key_hash).contains(&user.token));
    assert_eq!(h.key_hash, oasis_db::identity::token_hash(&user.token));
}
