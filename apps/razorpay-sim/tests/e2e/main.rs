//! End-to-end tests: the project's `razorpay` client against the simulator,
//! webhook delivery to a receiver that verifies with the crate's verifier,
//! and the official Python SDK driving the `razorpay-sim` binary.
//! One test binary (link time on 2 cores).

mod client;
mod python_sdk;
mod webhooks;

use actix_web::dev::ServerHandle;
use razorpay::{Client, ClientConfig, RetryPolicy, SecretString};
use razorpay_sim::{SimConfig, Simulator};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;

pub const KEY_ID: &str = "rzp_test_e2eKey0000001";
pub const KEY_SECRET: &str = "e2e_key_secret";
pub const WEBHOOK_SECRET: &str = "e2e_webhook_secret";

pub struct Sim {
    pub sim: Simulator,
    pub addr: SocketAddr,
    handle: ServerHandle,
}

impl Sim {
    pub async fn start() -> Sim {
        let (sim, addr, handle) = razorpay_sim::spawn(
            SimConfig {
                key_id: KEY_ID.into(),
                key_secret: KEY_SECRET.into(),
                webhook_secret: WEBHOOK_SECRET.into(),
                webhook_url: None,
                state_file: None,
            },
            "127.0.0.1:0",
        )
        .await
        .expect("simulator starts");
        Sim { sim, addr, handle }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The crate's client with fast back-off (3 attempts, 10 ms, 20 ms).
    pub fn client(&self) -> Client {
        self.client_with(KEY_SECRET)
    }

    pub fn client_with(&self, secret: &str) -> Client {
        Client::new(ClientConfig {
            base_url: self.base(),
            key_id: KEY_ID.into(),
            key_secret: SecretString::from(secret.to_owned()),
            timeout: Duration::from_secs(10),
        })
        .expect("client builds")
        .with_retry_policy(RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        })
    }

    /// POSTs JSON to the control API and returns the JSON answer.
    pub async fn control(&self, path: &str, body: Value) -> Value {
        let resp = reqwest::Client::new()
            .post(format!("{}/_sim/{path}", self.base()))
            .json(&body)
            .send()
            .await
            .expect("control call");
        let status = resp.status();
        let v: Value = resp.json().await.expect("control JSON");
        assert!(status.is_success(), "control {path} failed: {status} {v}");
        v
    }

    pub async fn control_get(&self, path: &str) -> Value {
        reqwest::Client::new()
            .get(format!("{}/_sim/{path}", self.base()))
            .send()
            .await
            .expect("control call")
            .json()
            .await
            .expect("control JSON")
    }

    /// The delivery log entries.
    pub async fn log(&self) -> Vec<Value> {
        self.control_get("webhooks").await["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// Polls `f` until it returns `Some` (generous deadline; no timing is asserted).
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..600 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("gave up waiting for {what}");
}
