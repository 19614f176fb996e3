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

mod schema {
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Text};
    use oasis_testdb::TestDb;

    #[derive(QueryableByName, Debug)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }

    fn user_tables(conn: &mut PgConnection) -> Vec<String> {
        diesel::sql_query(
            "SELECT table_name::text AS name FROM information_schema.tables
             WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'
             ORDER BY 1",
        )
        .load::<Name>(conn)
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect()
    }

    /// Every migration applies to an empty database, every down inverts its up, and applying
    /// again after a full revert works; a second run is a no-op.
    #[test]
    fn migrations_apply_revert_and_reapply() {
        let db = TestDb::empty();
        let mut conn = db.conn();
        let applied = oasis_db::migrations::run_pending(&mut conn).unwrap();
        assert!(applied.len() >= 2);
        let tables = user_tables(&mut conn);
        assert!(tables.contains(&"users".to_owned()), "{tables:?}");
        assert!(oasis_db::migrations::run_pending(&mut conn)
            .unwrap()
            .is_empty());
        let reverted = oasis_db::migrations::revert_all(&mut conn).unwrap();
        assert_eq!(reverted.len(), applied.len());
        assert!(
            user_tables(&mut conn).is_empty(),
            "down migrations leave nothing behind"
        );
        let again = oasis_db::migrations::run_pending(&mut conn).unwrap();
        assert_eq!(again, applied);
        assert_eq!(user_tables(&mut conn), tables);
    }

    /// `crates/db/src/schema.rs` is what `diesel print-schema` makes of the migrations: every
    /// table, column, type and nullability agrees with the migrated database. When this fails,
    /// run `scripts/print-schema.sh` (a renamed column then fails to compile where it is used).
    #[test]
    fn schema_rs_matches_migrations() {
        #[derive(QueryableByName, Debug)]
        struct Column {
            #[diesel(sql_type = Text)]
            table_name: String,
            #[diesel(sql_type = Text)]
            column_name: String,
            #[diesel(sql_type = Text)]
            udt_name: String,
            #[diesel(sql_type = Text)]
            is_nullable: String,
        }
        fn diesel_type(udt: &str) -> String {
            match udt {
                "int8" => "Int8",
                "int4" => "Int4",
                "int2" => "Int2",
                "text" => "Text",
                "varchar" => "Varchar",
                "bool" => "Bool",
                "bytea" => "Bytea",
                "jsonb" => "Jsonb",
                "json" => "Json",
                "timestamptz" => "Timestamptz",
                "timestamp" => "Timestamp",
                "date" => "Date",
                "uuid" => "Uuid",
                "inet" => "Inet",
                "numeric" => "Numeric",
                other => other,
            }
            .to_owned()
        }
        let db = TestDb::new();
        let mut conn = db.conn();
        let columns: Vec<Column> = diesel::sql_query(
            "SELECT c.table_name::text, c.column_name::text, c.udt_name::text, c.is_nullable::text
             FROM information_schema.columns c
             JOIN information_schema.tables t USING (table_schema, table_name)
             WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
               AND c.table_name <> '__diesel_schema_migrations'
             ORDER BY 1, 2",
        )
        .load(&mut conn)
        .unwrap();
        let mut want: Vec<String> = columns
            .iter()
            .map(|c| {
                let ty = diesel_type(&c.udt_name);
                let ty = if c.is_nullable == "YES" {
                    format!("Nullable<{ty}>")
                } else {
                    ty
                };
                format!("{}.{} -> {ty}", c.table_name, c.column_name)
            })
            .collect();
        want.sort();
        let source = include_str!("../../crates/db/src/schema.rs");
        let mut have = Vec::new();
        let mut table = None;
        for line in source.lines() {
            let t = line.trim();
            if line.starts_with("    ") && !line.starts_with("        ") && t.ends_with('{') {
                table = t.split_whitespace().next().map(str::to_owned);
            } else if let (Some(tab), Some((col, ty))) = (&table, t.split_once(" -> ")) {
                have.push(format!("{tab}.{col} -> {}", ty.trim_end_matches(',')));
            } else if t == "}" && line.starts_with("    ") {
                table = None;
            }
        }
        have.sort();
        assert!(have.len() > 50, "schema.rs parsed: {} columns", have.len());
        let missing: Vec<_> = want.iter().filter(|w| !have.contains(w)).collect();
        let stale: Vec<_> = have.iter().filter(|h| !want.contains(h)).collect();
        assert!(
            missing.is_empty() && stale.is_empty(),
            "crates/db/src/schema.rs is out of date (run scripts/print-schema.sh):\n\
             in the database but not in schema.rs: {missing:?}\n\
             in schema.rs but not in the database: {stale:?}"
        );
    }

    /// Schema rules: every foreign key is indexed; money columns are BIGINT minor units.
    #[test]
    fn foreign_keys_are_indexed_and_money_is_bigint() {
        let db = TestDb::new();
        let mut conn = db.conn();
        let unindexed: Vec<Name> = diesel::sql_query(
            "SELECT c.conrelid::regclass::text || '.' || c.conname AS name
             FROM pg_constraint c
             WHERE c.contype = 'f' AND NOT EXISTS (
               SELECT 1 FROM pg_index i
               WHERE i.indrelid = c.conrelid
                 AND (i.indkey::int2[])[0:array_length(c.conkey, 1) - 1] @> c.conkey
                 AND (i.indkey::int2[])[0:array_length(c.conkey, 1) - 1] <@ c.conkey)",
        )
        .load(&mut conn)
        .unwrap();
        assert!(
            unindexed.is_empty(),
            "foreign keys without an index: {unindexed:?}"
        );
        let money: Vec<Name> = diesel::sql_query(
            "SELECT table_name || '.' || column_name || ':' || data_type AS name
             FROM information_schema.columns
             WHERE table_schema = 'public'
               AND (column_name IN ('amount', 'price', 'amount_paid', 'amount_due', 'amount_refunded')
                    OR column_name LIKE '%\\_amount')
               AND data_type <> 'bigint'",
        )
        .load(&mut conn)
        .unwrap();
        assert!(
            money.is_empty(),
            "money columns must be BIGINT minor units: {money:?}"
        );
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let c: Count =
            diesel::sql_query("SELECT count(*) AS n FROM pg_extension WHERE extname = 'pg_trgm'")
                .get_result(&mut conn)
                .unwrap();
        assert_eq!(c.n, 1);
    }
}

#[tokio::test]
async fn extractor_failures_come_out_as_json() {
    let app = spawn_app().await;
    let login = app.url("/authenticate/rest-auth/login/");
    // Malformed JSON.
    let r = app
        .send(
            app.client
                .post(&login)
                .header("Content-Type", "application/json")
                .body("{\"email\": "),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["code"], "parse_error", "{}", r.text);
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .contains("JSON parse error"));
    // Wrong content type.
    let r = app
        .send(
            app.client
                .post(&login)
                .header("Content-Type", "text/plain")
                .body("x"),
        )
        .await;
    assert_eq!(r.status, 415, "{}", r.text);
    assert_eq!(r.body["code"], "unsupported_media_type");
    // Oversized JSON body.
    let big = format!("{{\"email\": \"{}\"}}", "a".repeat(2 * 1024 * 1024));
    let r = app
        .send(
            app.client
                .post(&login)
                .header("Content-Type", "application/json")
                .body(big),
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.body["code"], "payload_too_large");
    // A malformed id in the path is a JSON 404.
    let r = app.get("/authenticate/api/users/not-a-number/", None).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.body["detail"], "Not found.");
}

#[tokio::test]
async fn invalid_credentials_are_401_even_where_anonymous_is_allowed() {
    let app = spawn_app().await;
    let user = app.create_user("someone", false);
    let r = app
        .get(&format!("/authenticate/api/users/{}/", user.id), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .send(
            app.client
                .get(app.url(&format!("/authenticate/api/users/{}/", user.id)))
                .header(
                    "Authorization",
                    "Token 0000000000000000000000000000000000000000",
                ),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.body["code"], "authentication_failed");
}

#[tokio::test]
async fn pagination_links_and_invalid_page() {
    let app = spawn_app().await;
    let creator = app.create_user("pager", true);
    for i in 0..3 {
        let r = app
            .post(
                "/content/api/content/",
                &json!({"title": format!("post {i}"), "body": "b", "tiers": []}),
                Some(&creator.token),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let path = format!("/content/api/content/?creator={}&page_size=2", creator.id);
    let r = app.get(&path, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["count"], 3);
    assert_eq!(r.body["results"].as_array().unwrap().len(), 2);
    assert!(r.body["previous"].is_null());
    let next = r.body["next"].as_str().unwrap().to_owned();
    assert!(next.starts_with(&app.address), "absolute link: {next}");
    assert!(next.contains("page=2") && next.contains(&format!("creator={}", creator.id)));
    let r2 = app.send(app.client.get(&next)).await;
    assert_eq!(r2.body["results"].as_array().unwrap().len(), 1);
    assert!(r2.body["next"].is_null());
    assert!(
        !r2.body["previous"].as_str().unwrap().contains("page="),
        "page 1 link drops page"
    );
    let r3 = app.get(&format!("{path}&page=9"), None).await;
    assert_eq!(r3.status, 404, "{}", r3.text);
    assert_eq!(r3.body["detail"], "Invalid page.");
    let r4 = app.get(&format!("{path}&page=0"), None).await;
    assert_eq!(r4.status, 400, "{}", r4.text);
    assert!(r4.body["page"].is_array());
}

/// Every documented route and method answers with and without a trailing slash, identically,
/// with a JSON (or documented non-JSON) body, and never a 405 (documented but not served) or 500
/// — even for an empty body.
#[tokio::test]
async fn every_documented_route_answers_both_slash_forms() {
    let app = spawn_app().await;
    let doc = app.get("/api/openapi.json", None).await.body;
    let mut n = 0;
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() > 40, "{} documented paths", paths.len());
    let mut checked = 0;
    for (path, item) in paths {
        if path.starts_with("/_razorpay") {
            continue;
        }
        let concrete = path
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    "1".to_owned()
                } else {
                    seg.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let bare = concrete.trim_end_matches('/').to_owned();
        for method in item.as_object().unwrap().keys() {
            let m = match method.as_str() {
                "get" => reqwest::Method::GET,
                "post" => reqwest::Method::POST,
                "patch" => reqwest::Method::PATCH,
                "put" => reqwest::Method::PUT,
                "delete" => reqwest::Method::DELETE,
                _ => continue,
            };
            let mut statuses = Vec::new();
            for p in [bare.clone(), format!("{bare}/")] {
                // A fresh creator per request: both forms start from the same state (logout,
                // password change and the like change the caller).
                n += 1;
                let creator = app.create_user(&format!("slash{n}"), true);
                let mut req = app
                    .client
                    .request(m.clone(), app.url(&p))
                    .header("Authorization", format!("Token {}", creator.token));
                if m != reqwest::Method::GET && m != reqwest::Method::DELETE {
                    req = req.json(&serde_json::json!({}));
                }
                // An event stream never ends: its status and type are the answer.
                let res = req.send().await.expect("request sent");
                let status = res.status().as_u16();
                let streaming = res
                    .headers()
                    .get("content-type")
                    .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
                let text = if streaming {
                    String::new()
                } else {
                    res.text().await.unwrap_or_default()
                };
                assert_ne!(status, 405, "{method} {p} is documented but not served");
                assert!(status < 500, "{method} {p}: {status} {text}");
                statuses.push(status);
            }
            assert_eq!(
                statuses[0], statuses[1],
                "{method} {bare} vs trailing slash"
            );
            checked += 1;
        }
    }
    assert!(checked > 50, "checked {checked} route/method pairs");
}
