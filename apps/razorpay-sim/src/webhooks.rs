//! Webhook events: building envelopes, chaos encodings, and the delivery worker.

use crate::state::{alnum, now, EventRec};
use crate::Shared;
use razorpay::{
    Dispute, LinkedAccount, Order, Payment, ProductConfiguration, Refund, Settlement, Subscription,
    Transfer, WebhookEvent, WebhookPayload,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Total delivery attempts per event (first included).
pub const MAX_ATTEMPTS: u32 = 8;
/// Delay before the second attempt; doubles each time, capped at 5 s.
pub const BASE_DELAY: Duration = Duration::from_millis(100);
pub const MAX_DELAY: Duration = Duration::from_secs(5);
/// No answer within this is a failed attempt (Razorpay uses 5 s).
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Injected failure on `/v1` routes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FailRoute {
    /// HTTP method to match (`GET`, `POST`, ...); any when absent or `*`.
    #[serde(default)]
    pub method: Option<String>,
    /// Path prefix relative to the mount point, e.g. `/v1/orders`.
    pub path_prefix: String,
    /// Status to answer: 500 (SERVER_ERROR), 502/504 (GATEWAY_ERROR), 429, 409...
    pub status: u16,
    /// How many matching requests fail (default 1).
    #[serde(default = "one")]
    pub times: u32,
    /// `before` (default): fail without processing. `after`: process the
    /// request, then answer the error anyway (the "lost response" case).
    #[serde(default)]
    pub when: Option<String>,
}

fn one() -> u32 {
    1
}

/// Chaos knobs, set with `POST /_sim/chaos`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Chaos {
    /// Deliver every event twice (same id, same bytes).
    pub duplicate_deliveries: bool,
    /// Deliver the events of one action in random order.
    pub shuffle: bool,
    /// Encode bodies with escaped slashes, `\uXXXX` for non-ASCII and odd spacing.
    pub noncanonical_json: bool,
    /// Failures injected on `/v1` routes.
    pub fail_routes: Vec<FailRoute>,
    /// Events still to drop (never delivered unless redelivered).
    pub drop_next: u32,
    /// Route transfers still to fail (`/_sim/transfers/fail_next`).
    pub fail_transfers: u32,
    /// Transfer creations still to answer 504 after making them (`/_sim/transfers/drop_next_answer`).
    pub drop_transfer_answers: u32,
}

/// Webhooks collected during one state change.
#[derive(Default)]
pub(crate) struct Emitter {
    pub items: Vec<(String, Vec<&'static str>, WebhookPayload)>,
}

impl Emitter {
    pub fn sub(&mut self, name: &str, s: &Subscription) {
        self.items.push((
            name.to_owned(),
            vec!["subscription"],
            WebhookPayload {
                subscription: Some(s.clone()),
                ..Default::default()
            },
        ));
    }
    pub fn sub_pay(&mut self, name: &str, s: &Subscription, p: &Payment) {
        self.items.push((
            name.to_owned(),
            vec!["subscription", "payment"],
            WebhookPayload {
                subscription: Some(s.clone()),
                payment: Some(p.clone()),
                ..Default::default()
            },
        ));
    }
    pub fn pay(&mut self, name: &str, p: &Payment) {
        self.items.push((
            name.to_owned(),
            vec!["payment"],
            WebhookPayload {
                payment: Some(p.clone()),
                ..Default::default()
            },
        ));
    }
    pub fn order_paid(&mut self, p: &Payment, o: &Order) {
        self.items.push((
            "order.paid".to_owned(),
            vec!["payment", "order"],
            WebhookPayload {
                payment: Some(p.clone()),
                order: Some(o.clone()),
                ..Default::default()
            },
        ));
    }
    pub fn transfer(&mut self, name: &str, t: &Transfer) {
        self.items.push((
            name.to_owned(),
            vec!["transfer"],
            WebhookPayload {
                transfer: Some(t.clone()),
                ..Default::default()
            },
        ));
    }
    pub fn settlement(&mut self, s: &Settlement) {
        self.items.push((
            "settlement.processed".to_owned(),
            vec!["settlement"],
            WebhookPayload {
                settlement: Some(s.clone()),
                ..Default::default()
            },
        ));
    }
    pub fn product(&mut self, name: &str, p: &ProductConfiguration, account_id: &str) {
        self.items.push((
            name.to_owned(),
            vec!["merchant_product"],
            WebhookPayload {
                merchant_product: Some(crate::route::merchant_product(p, account_id)),
                ..Default::default()
            },
        ));
    }
    pub fn account(&mut self, name: &str, a: &LinkedAccount) {
        self.items.push((
            name.to_owned(),
            vec!["account"],
            WebhookPayload {
                account: Some(a.clone()),
                ..Default::default()
            },
        ));
    }
    pub fn dispute(&mut self, name: &str, p: &Payment, d: &Dispute) {
        self.items.push((
            name.to_owned(),
            vec!["payment", "dispute"],
            WebhookPayload {
                payment: Some(p.clone()),
                dispute: Some(d.clone()),
                ..Default::default()
            },
        ));
    }
    pub fn refund(&mut self, name: &str, r: &Refund, p: &Payment) {
        self.items.push((
            name.to_owned(),
            vec!["refund", "payment"],
            WebhookPayload {
                refund: Some(r.clone()),
                payment: Some(p.clone()),
                ..Default::default()
            },
        ));
    }
}

/// Builds the event record (envelope bytes fixed once: retries and duplicates
/// send the same bytes with the same event id).
pub(crate) fn make_event(
    account_id: &str,
    name: String,
    contains: Vec<&'static str>,
    payload: WebhookPayload,
    noncanonical: bool,
) -> EventRec {
    let created_at = now();
    let env = WebhookEvent {
        entity: "event".into(),
        account_id: Some(account_id.to_owned()),
        event: name.clone(),
        contains: contains.into_iter().map(str::to_owned).collect(),
        payload,
        created_at,
    };
    let body = if noncanonical {
        serde_json::to_value(&env)
            .map(|v| noncanonical_json(&v))
            .unwrap_or_default()
    } else {
        serde_json::to_string(&env).unwrap_or_default()
    };
    EventRec {
        id: alnum(14),
        event: name,
        created_at,
        body,
        noncanonical,
        attempts: 0,
        deliveries: 0,
        last_status: None,
        last_error: None,
        delivered: false,
        dropped: false,
    }
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || !c.is_ascii() => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_value(out: &mut String, v: &Value, depth: usize) {
    match v {
        Value::Object(m) => {
            out.push_str("{ ");
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(if depth & 1 == 0 { " ,\n  " } else { ", " });
                }
                write_str(out, k);
                out.push_str(" :");
                if depth & 1 == 1 {
                    out.push(' ');
                }
                write_value(out, v, depth + 1);
            }
            out.push_str(" }");
        }
        Value::Array(a) => {
            out.push_str("[ ");
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(" , ");
                }
                write_value(out, v, depth + 1);
            }
            out.push(']');
        }
        Value::String(s) => write_str(out, s),
        other => out.push_str(&other.to_string()),
    }
}

/// Valid JSON that differs byte-wise from serde's: `\/`, `\u20b9`, odd spacing.
pub(crate) fn noncanonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v, 0);
    out.push('\n');
    out
}

/// Starts the delivery thread (its own single-threaded runtime, so delivery
/// never blocks, and does not depend on, the HTTP workers). It stops when the
/// last sender (i.e. the last `Simulator` clone) is dropped.
pub(crate) fn start_worker(shared: Arc<Shared>) -> mpsc::UnboundedSender<Vec<String>> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<String>>();
    let spawned = std::thread::Builder::new()
        .name("razorpay-sim-webhooks".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "razorpay-sim: webhook runtime failed to start");
                    return;
                }
            };
            rt.block_on(async move {
                let http = match reqwest::Client::builder()
                    .timeout(ATTEMPT_TIMEOUT)
                    .user_agent("Razorpay-Webhook/v1")
                    .build()
                {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(error = %e, "razorpay-sim: webhook client failed");
                        return;
                    }
                };
                while let Some(batch) = rx.recv().await {
                    tokio::spawn(deliver_batch(shared.clone(), http.clone(), batch));
                }
            });
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "razorpay-sim: could not start the webhook thread");
    }
    tx
}

enum Outcome {
    Delivered,
    Failed,
    /// No URL configured or unknown event: retrying will not help.
    GiveUp,
}

async fn deliver_batch(shared: Arc<Shared>, http: reqwest::Client, batch: Vec<String>) {
    // First attempts in order (the order of one action's events is kept unless
    // chaos shuffles it); failures are retried independently with back-off.
    for id in batch {
        if let Outcome::Failed = attempt(&shared, &http, &id).await {
            tokio::spawn(retry(shared.clone(), http.clone(), id));
        }
    }
}

async fn retry(shared: Arc<Shared>, http: reqwest::Client, id: String) {
    let mut delay = BASE_DELAY;
    for _ in 2..=MAX_ATTEMPTS {
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_DELAY);
        match attempt(&shared, &http, &id).await {
            Outcome::Failed => continue,
            Outcome::Delivered | Outcome::GiveUp => return,
        }
    }
    tracing::warn!(event_id = %id, "razorpay-sim: webhook not delivered after {MAX_ATTEMPTS} attempts");
}

async fn attempt(shared: &Shared, http: &reqwest::Client, id: &str) -> Outcome {
    let url = shared.webhook_url();
    let body = {
        let mut st = shared.lock_state();
        let Some(ev) = st.events.iter_mut().find(|e| e.id == id) else {
            return Outcome::GiveUp;
        };
        if url.is_none() {
            ev.last_error = Some("no webhook_url configured".into());
            return Outcome::GiveUp;
        }
        ev.body.clone()
    };
    let Some(url) = url else {
        return Outcome::GiveUp;
    };
    let signature = razorpay::sign_webhook(body.as_bytes(), &shared.cfg.webhook_secret);
    let res = http
        .post(&url)
        .header("Content-Type", "application/json")
        .header("X-Razorpay-Signature", signature)
        .header("X-Razorpay-Event-Id", id)
        .body(body)
        .send()
        .await;
    let (status, error) = match res {
        Ok(r) => (Some(r.status().as_u16()), None),
        Err(e) if e.is_timeout() => (None, Some("timed out".to_owned())),
        Err(e) => (None, Some(e.to_string())),
    };
    let ok = status.is_some_and(|s| (200..300).contains(&s));
    {
        let mut st = shared.lock_state();
        if let Some(ev) = st.events.iter_mut().find(|e| e.id == id) {
            ev.attempts += 1;
            ev.last_status = status;
            ev.last_error = error;
            if ok {
                ev.delivered = true;
                ev.deliveries += 1;
            }
        }
        shared.save(&st);
    }
    if ok {
        Outcome::Delivered
    } else {
        Outcome::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noncanonical_is_same_json_other_bytes() {
        let v = serde_json::json!({"url":"https://rzp.io/i/x","note":"₹500 tip","n":[1,2],"o":{"a":null}});
        let s = noncanonical_json(&v);
        assert!(s.contains(r"https:\/\/rzp.io\/i\/x"), "{s}");
        assert!(s.contains(r"\u20b9500"), "{s}");
        assert_ne!(s, serde_json::to_string(&v).unwrap());
        let back: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
        // Astral characters become surrogate pairs.
        let s = noncanonical_json(&serde_json::json!("😀"));
        assert_eq!(s.trim(), r#""\ud83d\ude00""#);
    }
}
