//! Bad input through the real server: always a clear 4xx JSON error in Django REST framework's
//! shapes, never a 500, and nothing half-written. Found by fuzzing the binary (schemathesis and
//! hand-made inputs); each test pins one defect that was fixed.
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use oasis_tests::{json, spawn_app, spawn_app_with, Resp, TestApp};
use serde_json::Value;

const NUL: &str = "Null characters are not allowed.";

fn count(app: &TestApp, sql: &str, arg: &str) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    diesel::sql_query(sql)
        .bind::<Text, _>(arg)
        .get_result::<N>(&mut app.conn())
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}

/// A 4xx whose body is JSON in one of the two DRF shapes.
fn assert_client_error(r: &Resp, what: &str) {
    assert!(
        (400..500).contains(&r.status),
        "{what}: {} {}",
        r.status,
        r.text
    );
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{what}: not JSON: {:?}",
        r.headers
    );
    let obj = r
        .body
        .as_object()
        .unwrap_or_else(|| panic!("{what}: {}", r.text));
    let detail_shape = obj.get("detail").is_some_and(Value::is_string);
    let field_shape = !obj.is_empty()
        && obj
            .values()
            .all(|v| v.as_array().is_some_and(|a| a.iter().all(Value::is_string)));
    assert!(detail_shape || field_shape, "{what}: {}", r.text);
}

fn field_error(r: &Resp, field: &str, message: &str) {
    assert_eq!(r.status, 400, "{field}: {}", r.text);
    assert_eq!(r.body[field], json!([message]), "{}", r.text);
}

#[tokio::test]
async fn null_characters_in_identity_fields_are_field_errors_and_nothing_is_written() {
    let app = spawn_app().await;
    // Registration: PostgreSQL cannot store NUL; this was a 500.
    for field in ["first_name", "last_name"] {
        let mut body = json!({
            "email": "nul@example.com", "username": "nul_user", "first_name": "A",
            "last_name": "B", "password": "s3cret-Passphrase", "password2": "s3cret-Passphrase",
            "login_type": "manual"
        });
        body[field] = json!("x\u{0}y");
        let r = app
            .post("/authenticate/rest-auth/registration/", &body, None)
            .await;
        field_error(&r, field, NUL);
    }
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM users WHERE username = $1",
            "nul_user"
        ),
        0
    );

    // Profile update: each text field answers for itself; the stored profile is unchanged.
    let fan = app.create_user("nul_fan", false);
    for field in ["bio", "first_name", "last_name"] {
        let r = app
            .patch(
                "/authenticate/rest-auth/user/",
                &json!({ field: "a\u{0}b", "is_creator": true }),
                Some(&fan.token),
            )
            .await;
        field_error(&r, field, NUL);
    }
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM users WHERE username = $1 AND bio = '' AND NOT is_creator",
            "nul_fan"
        ),
        1
    );

    // Login and JWT login: the identifier is looked up in the database; this was a 500.
    for path in ["/authenticate/rest-auth/login/", "/authenticate/api/token/"] {
        for field in ["username", "email"] {
            let r = app
                .post(
                    path,
                    &json!({ field: "nul\u{0}fan@example.com", "password": "whatever-pass" }),
                    None,
                )
                .await;
            field_error(&r, field, NUL);
        }
    }
    // Other identity inputs that reach a query.
    let r = app
        .post(
            "/authenticate/rest-auth/registration/verify-email/",
            &json!({ "key": "k\u{0}" }),
            None,
        )
        .await;
    field_error(&r, "key", NUL);
}

#[tokio::test]
async fn signed_webhook_with_a_nul_event_name_is_stored_not_a_500() {
    const SECRET: &str = "robustness_webhook_secret";
    let app = spawn_app_with(|s| {
        s.razorpay.key_id = Some("rzp_test_robustness".into());
        s.razorpay.key_secret = Some(secrecy::SecretString::from("robustness_key_secret"));
        s.razorpay.webhook_secret = Some(secrecy::SecretString::from(SECRET));
        s.razorpay.api_base = "http://127.0.0.1:9".into();
    })
    .await;
    let body = r#"{"event":"pay\u0000ment.captured","payload":{}}"#;
    let req = app
        .client
        .post(app.url("/razorpay/webhooks/"))
        .header("Content-Type", "application/json")
        .header(
            "X-Razorpay-Signature",
            razorpay::sign_webhook(body.as_bytes(), SECRET),
        )
        .header("X-Razorpay-Event-Id", "evt_nul")
        .body(body);
    let r = app.send(req).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM billing_webhook_events WHERE event_id = $1 AND event = 'payment.captured'",
            "evt_nul"
        ),
        1
    );
    // ... and processed (not retried forever because its outcome quotes the NUL).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let done = count(
            &app,
            "SELECT count(*) AS n FROM billing_webhook_events WHERE event_id = $1 AND processed_at IS NOT NULL",
            "evt_nul",
        );
        if done == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "webhook never processed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn malformed_ids_queries_and_bodies_are_json_client_errors() {
    let app = spawn_app().await;
    let creator = app.create_user("robust_creator", true);
    let t = Some(creator.token.as_str());
    let ids = [
        "0",
        "-1",
        "99999999999999999999",
        "9223372036854775808",
        "1e3",
        "abc",
        "%00",
        "%FF",
    ];
    let paths = [
        "/content/api/tiers/{}/",
        "/content/api/content/{}/",
        "/content/api/comment/{}/",
        "/content/api/likes/{}/",
        "/content/api/media/{}/",
        "/content/api/media/{}/file",
        "/feed/api/user-profile/{}",
        "/subscriptions/list_tips/{}",
        "/authenticate/api/users/{}/",
    ];
    for p in paths {
        for id in ids {
            let path = p.replace("{}", id);
            assert_client_error(&app.get(&path, t).await, &path);
        }
    }
    let queries = [
        "page=-1",
        "page=0",
        "page_size=0",
        "page=abc",
        "page=99999999999999999999",
        "page=9223372036854775807&page_size=100",
        "page=1&page=2",
        "q=%00",
        "search=%00",
        "creator=99999999999999999999",
    ];
    for list in [
        "/content/api/tiers/",
        "/content/api/content/",
        "/feed/api/feed",
        "/feed/api/search",
        "/subscriptions/list",
    ] {
        for q in queries {
            let path = format!("{list}?{q}");
            let r = app.get(&path, t).await;
            assert!(r.status < 500, "{path}: {} {}", r.status, r.text);
            if r.status >= 400 {
                assert_client_error(&r, &path);
            }
        }
    }
    for body in [
        "",
        "[]",
        "null",
        "{",
        "{\"name\": 1e999}",
        "{\"price\": 99999999999999999999}",
    ] {
        let req = app
            .client
            .post(app.url("/content/api/tiers/"))
            .header("Authorization", format!("Token {}", creator.token))
            .header("Content-Type", "application/json")
            .body(body);
        assert_client_error(&app.send(req).await, body);
    }
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM users WHERE username = $1",
            "robust_creator"
        ),
        1
    );
}

#[tokio::test]
async fn openapi_documents_the_shared_error_answers() {
    let app = spawn_app().await;
    let doc = app.get("/api/openapi.json", None).await.body;
    let responses = |path: &str, method: &str| -> Vec<String> {
        doc["paths"][path][method]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path} undocumented"))
            .keys()
            .cloned()
            .collect()
    };
    let has = |path: &str, method: &str, statuses: &[&str]| {
        let got = responses(path, method);
        for s in statuses {
            assert!(
                got.iter().any(|g| g == s),
                "{method} {path}: {s} in {got:?}"
            );
        }
    };
    // A JSON body can be malformed, too large or of the wrong type.
    has("/content/api/tiers/", "post", &["400", "401", "413", "415"]);
    has("/authenticate/rest-auth/login/", "post", &["400", "415"]);
    // A list's query string can be invalid and its page out of range.
    has("/content/api/tiers/", "get", &["400", "404"]);
    // A path id can be unknown or malformed.
    has("/content/api/tiers/{id}/", "get", &["404"]);
    // An Idempotency-Key can be in flight or reused with another body.
    has("/subscriptions/create", "post", &["409", "422"]);
    let schema = &doc["components"]["schemas"]["ErrorBody"];
    assert!(schema.is_object(), "ErrorBody schema: {schema}");
}

#[tokio::test]
async fn a_body_full_of_ids_is_refused_promptly() {
    // ~1 MB of distinct ids: the de-duplication before the length check was quadratic and held a
    // worker for tens of seconds (debug build); it must answer the field error at once.
    let app = spawn_app().await;
    let creator = app.create_user("ids_creator", true);
    let ids: Vec<i64> = (1..=130_000).collect();
    for field in ["tiers", "attachments"] {
        let req = app
            .client
            .post(app.url("/content/api/content/"))
            .header("Authorization", format!("Token {}", creator.token))
            .timeout(std::time::Duration::from_secs(15))
            .json(&json!({ "title": "many", field: ids }));
        let r = app.send(req).await;
        assert_eq!(r.status, 400, "{field}: {}", r.text);
        assert!(r.body[field].is_array(), "{}", r.text);
    }
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM posts WHERE title = $1",
            "many"
        ),
        0
    );
}

/// What only a Rust deserializer would say; never in an answer.
const RUSTISMS: [&str; 13] = [
    "i64",
    "u32",
    "u64",
    "i32",
    "f64",
    "expected",
    "at line",
    "column",
    "invalid type",
    "struct ",
    "Option<",
    "sequence",
    "variant",
];

fn assert_no_rustisms(r: &Resp, what: &str) {
    for word in RUSTISMS {
        assert!(!r.text.contains(word), "{what}: {word:?} in {}", r.text);
    }
}

#[tokio::test]
async fn wrong_types_answer_drf_field_errors() {
    let app = spawn_app().await;
    let creator = app.create_user("types_creator", true);
    let t = Some(creator.token.as_str());
    let cases = [
        (
            "/content/api/tiers/",
            json!({"name": "Gold", "price": 12.5, "currency": "INR"}),
            json!({"price": ["A valid integer is required."]}),
        ),
        (
            "/content/api/tiers/",
            json!({"name": "Gold", "price": "abc", "benefits": "all", "is_active": "maybe"}),
            json!({
                "price": ["A valid integer is required."],
                "benefits": ["Expected a list of items but got type \"str\"."],
                "is_active": ["Must be a valid boolean."],
            }),
        ),
        (
            "/content/api/tiers/",
            json!({"name": "Gold", "price": 50000, "currency": "XYZ"}),
            json!({"currency": ["\"XYZ\" is not a valid choice."]}),
        ),
        (
            "/content/api/content/",
            json!({"title": "t", "tiers": [1, "x"]}),
            json!({"tiers": {"1": ["A valid integer is required."]}}),
        ),
        (
            "/authenticate/rest-auth/login/",
            json!({"username": ["a"], "password": {"x": 1}}),
            json!({"username": ["Not a valid string."], "password": ["Not a valid string."]}),
        ),
        (
            "/authenticate/rest-auth/login/",
            json!(["a", "b"]),
            json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
        ),
    ];
    for (path, body, want) in cases {
        let r = app.post(path, &body, t).await;
        assert_eq!((r.status, &r.body), (400, &want), "{path} {body}");
    }
    let r = app
        .patch(
            "/authenticate/rest-auth/user/",
            &json!({"is_creator": "maybe", "bio": 5}),
            t,
        )
        .await;
    assert_eq!(
        (r.status, r.body),
        (400, json!({"is_creator": ["Must be a valid boolean."]})),
        "a number is a valid string, as in DRF"
    );
    let r = app
        .send(
            app.client
                .post(app.url("/content/api/tiers/"))
                .header("Authorization", format!("Token {}", creator.token))
                .header("Content-Type", "application/json")
                .body(r#"{"name": "Gold", "price": 99999999999999999999}"#),
        )
        .await;
    assert_eq!(
        (r.status, r.body),
        (
            400,
            json!({"price": ["Ensure this value is less than or equal to 9223372036854775807."]})
        )
    );
    // DRF's coercions: numeric strings for integers, "true" for booleans, numbers for strings.
    let r = app
        .post(
            "/content/api/tiers/",
            &json!({"name": 7, "price": "50000", "currency": "INR", "is_active": "true"}),
            t,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        (&r.body["name"], &r.body["price"], &r.body["is_active"]),
        (&json!("7"), &json!(50000), &json!(true))
    );
    // Only a body that is not JSON at all is a parse error.
    let r = app
        .send(
            app.client
                .post(app.url("/content/api/tiers/"))
                .header("Authorization", format!("Token {}", creator.token))
                .header("Content-Type", "application/json")
                .body("{\"price\": 1,"),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("JSON parse error - "),
        "{}",
        r.text
    );
    // The hand-parsed logout body goes through the same mechanism.
    let r = app
        .post(
            "/authenticate/rest-auth/logout/",
            &json!({"refresh": 5.5}),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "a number is a valid string: {}", r.text);
    let r = app
        .post(
            "/authenticate/rest-auth/logout/",
            &json!({"refresh": [1]}),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.body),
        (400, json!({"refresh": ["Not a valid string."]}))
    );
}

/// `{"detail": "…"}`, or DRF's field errors: lists of messages, nested by field.
fn drf_shape(body: &Value) -> bool {
    fn fields(v: &Value) -> bool {
        match v {
            Value::Array(a) => !a.is_empty() && a.iter().all(Value::is_string),
            Value::Object(m) => !m.is_empty() && m.values().all(fields),
            _ => false,
        }
    }
    body["detail"].is_string() || (body.is_object() && fields(body))
}

/// The JSON type a schema names (`"string"`, or `["string", "null"]`), if any.
fn schema_type(schema: &Value) -> Option<String> {
    match &schema["type"] {
        Value::String(t) => Some(t.clone()),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .map(str::to_owned),
        _ => None,
    }
}

/// Values of the wrong JSON type for a property (none of which DRF would coerce).
fn wrong_values(prop: &Value) -> Vec<Value> {
    match schema_type(prop).as_deref() {
        Some("string") => vec![json!(["x"]), json!({"k": 1}), json!(true)],
        Some("integer") => vec![json!("abc"), json!(12.5), json!(true), json!([1])],
        Some("number") => vec![json!("abc"), json!(true), json!({"k": 1})],
        Some("boolean") => vec![json!("maybe"), json!([1]), json!({"k": 1})],
        Some("array") => {
            let mut v = vec![json!("x"), json!({"k": 1}), json!(5)];
            match schema_type(&prop["items"]).as_deref() {
                Some("integer") => v.push(json!([1, "x"])),
                Some("string") => v.push(json!([["x"]])),
                _ => {}
            }
            v
        }
        Some("object") => vec![json!("x"), json!(5)],
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn every_json_body_in_the_openapi_document_answers_wrong_types_with_field_errors() {
    let app = spawn_app().await;
    let creator = app.create_user("openapi_creator", true);
    let doc = app.get("/api/openapi.json", None).await.body;
    let resolve = |s: &Value| -> Value {
        match s["$ref"].as_str() {
            Some(r) => {
                let name = r.rsplit('/').next().unwrap();
                doc["components"]["schemas"][name].clone()
            }
            None => s.clone(),
        }
    };
    let (mut operations, mut probes, mut keyed) = (0, 0, 0);
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(schema) = op["requestBody"]["content"]["application/json"].get("schema")
            else {
                continue;
            };
            let mut schema = resolve(schema);
            if schema["properties"].is_null() {
                // `Option<Body>`: oneOf [null, $ref].
                if let Some(s) = schema["oneOf"]
                    .as_array()
                    .and_then(|a| a.iter().find(|s| s["$ref"].is_string()))
                {
                    schema = resolve(s);
                }
            }
            let Some(props) = schema["properties"].as_object() else {
                continue;
            };
            operations += 1;
            let url = path
                .split('/')
                .map(|seg| if seg.starts_with('{') { "1" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            for (name, prop) in props {
                for wrong in wrong_values(&resolve(prop)) {
                    probes += 1;
                    let body = json!({ name: wrong });
                    let what = format!("{method} {path} {body}");
                    let r = app
                        .send(
                            app.client
                                .request(m.clone(), app.url(&url))
                                .header("Authorization", format!("Token {}", creator.token))
                                .json(&body),
                        )
                        .await;
                    assert!(
                        (400..500).contains(&r.status),
                        "{what}: {} {}",
                        r.status,
                        r.text
                    );
                    assert!(r.body.is_object(), "{what}: {}", r.text);
                    assert_no_rustisms(&r, &what);
                    assert!(drf_shape(&r.body), "{what}: {}", r.text);
                    if r.status == 400 && r.body.get(name).is_some() {
                        keyed += 1;
                    } else {
                        // Only a handler that stops at a missing required field first may
                        // leave the wrong property unnamed.
                        assert!(
                            r.status == 400 && r.text.contains("This field is required."),
                            "{what}: {} {}",
                            r.status,
                            r.text
                        );
                    }
                }
            }
        }
    }
    assert!(operations >= 25, "{operations} operations with a JSON body");
    assert!(
        keyed * 10 >= probes * 9,
        "{keyed} of {probes} answers name the wrong property"
    );
}
