//! The HTTP client: [`ClientConfig`], [`Client`], [`RetryPolicy`].

use crate::error::{snippet, Error};
use crate::route::*;
use crate::types::*;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

/// The header that makes a refund request idempotent.
pub const REFUND_IDEMPOTENCY_HEADER: &str = "X-Refund-Idempotency";

/// Razorpay's production base URL (resources live under `/v1`).
pub const DEFAULT_BASE_URL: &str = "https://api.razorpay.com";

/// Connection settings.
#[derive(Clone)]
pub struct ClientConfig {
    /// Base URL without `/v1`, e.g. `https://api.razorpay.com` or
    /// `http://127.0.0.1:8080/_razorpay` for an embedded simulator.
    pub base_url: String,
    /// `rzp_test_…` / `rzp_live_…`.
    pub key_id: String,
    /// The key secret (also signs Checkout responses).
    pub key_secret: SecretString,
    /// Per-attempt timeout (whole request, connect included).
    pub timeout: Duration,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url)
            .field("key_id", &self.key_id)
            .field("key_secret", &"[redacted]")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ClientConfig {
    /// Config for the production API with a 30 s timeout.
    pub fn new(key_id: impl Into<String>, key_secret: impl Into<String>) -> Self {
        ClientConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            key_id: key_id.into(),
            key_secret: SecretString::from(key_secret.into()),
            timeout: Duration::from_secs(30),
        }
    }

    /// Reads `RAZORPAY_KEY_ID`, `RAZORPAY_KEY_SECRET` and `RAZORPAY_API_BASE`
    /// (default [`DEFAULT_BASE_URL`]). `None` when `RAZORPAY_KEY_ID` is unset or
    /// empty (the caller then typically runs the simulator).
    pub fn from_env() -> Option<Self> {
        let key_id = std::env::var("RAZORPAY_KEY_ID")
            .ok()
            .filter(|s| !s.is_empty())?;
        let secret = std::env::var("RAZORPAY_KEY_SECRET").unwrap_or_default();
        let mut cfg = ClientConfig::new(key_id, secret);
        if let Ok(base) = std::env::var("RAZORPAY_API_BASE") {
            if !base.is_empty() {
                cfg.base_url = base;
            }
        }
        Some(cfg)
    }
}

/// What repeating a request could do; decides which failures are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// A GET: repeating it changes nothing.
    Read,
    /// A state transition whose repetition cannot move money twice (cancel,
    /// pause, resume, update, capture): a repeat at worst gets a 400 such as
    /// "already captured" / "not cancellable", which the caller reconciles
    /// by fetching.
    IdempotentWrite,
    /// A POST that creates something (plan, subscription, order, refund).
    /// Razorpay has no idempotency key on these endpoints, so after a timeout
    /// or a 5xx we cannot know whether the first attempt created the entity:
    /// repeating it could create a second order, a second subscription (a
    /// second mandate, i.e. a second charge every cycle) or a second refund.
    /// It is only repeated when the connection could not even be opened,
    /// i.e. when nothing was sent.
    Create,
}

/// Exponential back-off for transient failures.
///
/// Which failures are retried depends on [`RequestKind`]:
///
/// | failure | Read | IdempotentWrite | Create |
/// |---|---|---|---|
/// | connect error (nothing sent) | yes | yes | yes |
/// | timeout, other transport error | yes | yes | **no** |
/// | 429, 500, 502, 503, 504 | yes | yes | **no** |
/// | any other status, decode error | no | no | no |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, the first included (1 disables retries).
    pub max_attempts: u32,
    /// Delay before the second attempt; doubles each time.
    pub base_delay: Duration,
    /// Cap on one delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, 200 ms then 400 ms.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        }
    }

    /// Whether `attempt` (1-based, just failed with `err`) should be followed by another.
    pub fn should_retry(&self, kind: RequestKind, err: &Error, attempt: u32) -> bool {
        if attempt >= self.max_attempts {
            return false;
        }
        match (kind, err) {
            (_, Error::Transport { connect: true, .. }) => true,
            (RequestKind::Create, _) => false,
            (RequestKind::Read | RequestKind::IdempotentWrite, e) => e.is_retryable(),
        }
    }

    /// Delay after failed attempt number `attempt` (1-based): `base * 2^(attempt-1)`, capped.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

/// Async Razorpay client. Cheap to clone (shares the connection pool).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: url::Url,
    key_id: String,
    key_secret: SecretString,
    retry: RetryPolicy,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("key_id", &self.key_id)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds a client (rustls, per-attempt timeout from the config, default [`RetryPolicy`]).
    pub fn new(config: ClientConfig) -> Result<Client, Error> {
        let base = url::Url::parse(&config.base_url)
            .map_err(|e| Error::Config(format!("base_url {:?}: {e}", config.base_url)))?;
        if base.cannot_be_a_base() {
            return Err(Error::Config(format!(
                "base_url {:?} cannot be a base",
                config.base_url
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("oasis-razorpay/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(Client {
            http,
            base,
            key_id: config.key_id,
            key_secret: config.key_secret,
            retry: RetryPolicy::default(),
        })
    }

    /// Replaces the retry policy.
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Client {
        self.retry = retry;
        self
    }

    /// The key id (public; Checkout needs it).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The key secret, for verifying Checkout signatures.
    pub fn key_secret(&self) -> &SecretString {
        &self.key_secret
    }

    /// Verifies what Checkout handed the frontend for an order payment
    /// (`razorpay_order_id`, `razorpay_payment_id`, `razorpay_signature`) with this client's key secret.
    pub fn verify_order_checkout(&self, order_id: &str, payment_id: &str, signature: &str) -> bool {
        crate::signature::verify_order_signature(
            order_id,
            payment_id,
            signature,
            self.key_secret.expose_secret(),
        )
    }

    /// Verifies what Checkout handed the frontend for a subscription
    /// (`razorpay_payment_id`, `razorpay_subscription_id`, `razorpay_signature`) with this client's key secret.
    pub fn verify_subscription_checkout(
        &self,
        payment_id: &str,
        subscription_id: &str,
        signature: &str,
    ) -> bool {
        crate::signature::verify_subscription_signature(
            payment_id,
            subscription_id,
            signature,
            self.key_secret.expose_secret(),
        )
    }

    /// Builds `<base>/v1/<segments...>`, percent-encoding each segment (ids
    /// cannot inject path components).
    fn url(&self, segments: &[&str]) -> url::Url {
        self.url_in("v1", segments)
    }

    /// `<base>/<version>/<segments...>` (Route's linked accounts live under `v2`).
    fn url_in(&self, version: &str, segments: &[&str]) -> url::Url {
        let mut u = self.base.clone();
        {
            // cannot_be_a_base was rejected in `new`, so this cannot fail.
            let mut p = u
                .path_segments_mut()
                .expect("base URL checked in Client::new");
            p.pop_if_empty().push(version);
            p.extend(segments);
        }
        u
    }

    async fn once<T: DeserializeOwned>(
        &self,
        method: &Method,
        url: &url::Url,
        body: Option<&serde_json::Value>,
        header: Option<(&str, &str)>,
    ) -> Result<T, Error> {
        let mut rb = self
            .http
            .request(method.clone(), url.clone())
            .basic_auth(&self.key_id, Some(self.key_secret.expose_secret()));
        if let Some((name, value)) = header {
            rb = rb.header(name, value);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let resp = rb.send().await.map_err(Error::from_reqwest)?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(Error::from_reqwest)?;
        if !(200..300).contains(&status) {
            return Err(Error::from_response(status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
            status,
            message: e.to_string(),
            body_snippet: snippet(&bytes, 512),
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        kind: RequestKind,
        method: Method,
        segments: &[&str],
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, Error> {
        self.call_url(kind, method, self.url(segments), body).await
    }

    async fn call_url<T: DeserializeOwned>(
        &self,
        kind: RequestKind,
        method: Method,
        url: url::Url,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, Error> {
        self.call_with_header(kind, method, url, body, None).await
    }

    /// [`Self::call_url`] with one extra request header (an idempotency key).
    async fn call_with_header<T: DeserializeOwned>(
        &self,
        kind: RequestKind,
        method: Method,
        url: url::Url,
        body: Option<&(impl Serialize + ?Sized)>,
        header: Option<(&str, &str)>,
    ) -> Result<T, Error> {
        let body = match body {
            Some(b) => Some(serde_json::to_value(b).map_err(|e| Error::Decode {
                status: 0,
                message: format!("request body: {e}"),
                body_snippet: String::new(),
            })?),
            None => None,
        };
        let mut attempt = 1u32;
        loop {
            match self.once(&method, &url, body.as_ref(), header).await {
                Ok(v) => return Ok(v),
                Err(e) if self.retry.should_retry(kind, &e, attempt) => {
                    let delay = self.retry.delay(attempt);
                    tracing::warn!(
                        %method, path = url.path(), attempt, ?delay, error = %e,
                        "razorpay call failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T, Error> {
        self.call(RequestKind::Read, Method::GET, segments, None::<&()>)
            .await
    }

    // ---- plans ----

    /// `POST /v1/plans` (never retried after it may have been sent).
    pub async fn create_plan(&self, req: &CreatePlan) -> Result<Plan, Error> {
        self.call(RequestKind::Create, Method::POST, &["plans"], Some(req))
            .await
    }

    /// `GET /v1/plans/:id`.
    pub async fn fetch_plan(&self, plan_id: &str) -> Result<Plan, Error> {
        self.get(&["plans", plan_id]).await
    }

    // ---- subscriptions ----

    /// `POST /v1/subscriptions` (never retried after it may have been sent).
    pub async fn create_subscription(
        &self,
        req: &CreateSubscription,
    ) -> Result<Subscription, Error> {
        self.call(
            RequestKind::Create,
            Method::POST,
            &["subscriptions"],
            Some(req),
        )
        .await
    }

    /// `GET /v1/subscriptions?plan_id=…&from=…&count=&skip=`: one page of the plan's
    /// subscriptions created at or after `from` (Unix seconds; newest first, `count` 1..=100).
    pub async fn list_subscriptions(
        &self,
        plan_id: &str,
        from: i64,
        count: u32,
        skip: u64,
    ) -> Result<Collection<Subscription>, Error> {
        let mut url = self.url(&["subscriptions"]);
        url.query_pairs_mut()
            .append_pair("plan_id", plan_id)
            .append_pair("from", &from.to_string())
            .append_pair("count", &count.clamp(1, 100).to_string())
            .append_pair("skip", &skip.to_string());
        self.call_url(RequestKind::Read, Method::GET, url, None::<&()>)
            .await
    }

    /// `GET /v1/subscriptions/:id`.
    pub async fn fetch_subscription(&self, subscription_id: &str) -> Result<Subscription, Error> {
        self.get(&["subscriptions", subscription_id]).await
    }

    /// `POST /v1/subscriptions/:id/cancel` now or at the end of the current cycle.
    pub async fn cancel_subscription(
        &self,
        subscription_id: &str,
        at: CancelAt,
    ) -> Result<Subscription, Error> {
        let body = serde_json::json!({ "cancel_at_cycle_end": at == CancelAt::CycleEnd });
        self.call(
            RequestKind::IdempotentWrite,
            Method::POST,
            &["subscriptions", subscription_id, "cancel"],
            Some(&body),
        )
        .await
    }

    /// `POST /v1/subscriptions/:id/pause` with `pause_at: "now"` (active only).
    pub async fn pause_subscription(&self, subscription_id: &str) -> Result<Subscription, Error> {
        let body = serde_json::json!({ "pause_at": "now" });
        self.call(
            RequestKind::IdempotentWrite,
            Method::POST,
            &["subscriptions", subscription_id, "pause"],
            Some(&body),
        )
        .await
    }

    /// `POST /v1/subscriptions/:id/resume` with `resume_at: "now"` (paused only).
    pub async fn resume_subscription(&self, subscription_id: &str) -> Result<Subscription, Error> {
        let body = serde_json::json!({ "resume_at": "now" });
        self.call(
            RequestKind::IdempotentWrite,
            Method::POST,
            &["subscriptions", subscription_id, "resume"],
            Some(&body),
        )
        .await
    }

    /// `PATCH /v1/subscriptions/:id`.
    pub async fn update_subscription(
        &self,
        subscription_id: &str,
        req: &UpdateSubscription,
    ) -> Result<Subscription, Error> {
        self.call(
            RequestKind::IdempotentWrite,
            Method::PATCH,
            &["subscriptions", subscription_id],
            Some(req),
        )
        .await
    }

    // ---- orders ----

    /// `POST /v1/orders` (never retried after it may have been sent).
    pub async fn create_order(&self, req: &CreateOrder) -> Result<Order, Error> {
        self.call(RequestKind::Create, Method::POST, &["orders"], Some(req))
            .await
    }

    /// `GET /v1/orders/:id`.
    pub async fn fetch_order(&self, order_id: &str) -> Result<Order, Error> {
        self.get(&["orders", order_id]).await
    }

    /// `GET /v1/orders/:id/payments`: every payment attempted on the order.
    pub async fn fetch_order_payments(&self, order_id: &str) -> Result<Collection<Payment>, Error> {
        self.get(&["orders", order_id, "payments"]).await
    }

    // ---- invoices ----

    /// `GET /v1/invoices/:id`.
    pub async fn fetch_invoice(&self, invoice_id: &str) -> Result<Invoice, Error> {
        self.get(&["invoices", invoice_id]).await
    }

    /// `GET /v1/invoices?subscription_id=…&count=&skip=`: one page of a subscription's invoices
    /// (one per billed cycle, newest first; `count` 1..=100).
    pub async fn list_subscription_invoices(
        &self,
        subscription_id: &str,
        count: u32,
        skip: u64,
    ) -> Result<Collection<Invoice>, Error> {
        let mut url = self.url(&["invoices"]);
        url.query_pairs_mut()
            .append_pair("subscription_id", subscription_id)
            .append_pair("count", &count.clamp(1, 100).to_string())
            .append_pair("skip", &skip.to_string());
        self.call_url(RequestKind::Read, Method::GET, url, None::<&()>)
            .await
    }

    /// Every invoice of a subscription (all pages of 100), newest first. A read: retried.
    pub async fn fetch_subscription_invoices(
        &self,
        subscription_id: &str,
    ) -> Result<Vec<Invoice>, Error> {
        const PAGE: u32 = 100;
        // A subscription has at most `total_count` (<= 10 000 here) cycle invoices; the bound
        // only stops a misbehaving server from paging us forever.
        const MAX_PAGES: u64 = 200;
        let mut out: Vec<Invoice> = Vec::new();
        for page in 0..MAX_PAGES {
            let c = self
                .list_subscription_invoices(subscription_id, PAGE, page * u64::from(PAGE))
                .await?;
            let n = c.items.len();
            out.extend(c.items);
            if n < PAGE as usize {
                break;
            }
        }
        Ok(out)
    }

    // ---- payments and refunds ----

    /// `GET /v1/payments/:id`.
    pub async fn fetch_payment(&self, payment_id: &str) -> Result<Payment, Error> {
        self.get(&["payments", payment_id]).await
    }

    /// `POST /v1/payments/:id/capture` (an `authorized` payment, full amount).
    pub async fn capture_payment(
        &self,
        payment_id: &str,
        req: &CapturePayment,
    ) -> Result<Payment, Error> {
        self.call(
            RequestKind::IdempotentWrite,
            Method::POST,
            &["payments", payment_id, "capture"],
            Some(req),
        )
        .await
    }

    /// `POST /v1/payments/:id/refund` (never retried after it may have been
    /// sent: a second refund would pay the customer twice).
    pub async fn refund_payment(
        &self,
        payment_id: &str,
        req: &CreateRefund,
    ) -> Result<Refund, Error> {
        self.call(
            RequestKind::Create,
            Method::POST,
            &["payments", payment_id, "refund"],
            Some(req),
        )
        .await
    }

    /// `POST /v1/payments/:id/refund` with `X-Refund-Idempotency: key` (at least 10 characters
    /// of `[A-Za-z0-9_-]`). Razorpay answers a repeat of the same key and body with the refund
    /// it already made (a different body with the same key is a 400), so this call is retried
    /// like an idempotent write: a lost answer can never refund twice.
    pub async fn refund_payment_idempotent(
        &self,
        payment_id: &str,
        req: &CreateRefund,
        idempotency_key: &str,
    ) -> Result<Refund, Error> {
        self.call_with_header(
            RequestKind::IdempotentWrite,
            Method::POST,
            self.url(&["payments", payment_id, "refund"]),
            Some(req),
            Some((REFUND_IDEMPOTENCY_HEADER, idempotency_key)),
        )
        .await
    }

    /// `GET /v1/payments/:id/refunds` (up to 100, newest first).
    pub async fn fetch_payment_refunds(
        &self,
        payment_id: &str,
    ) -> Result<Collection<Refund>, Error> {
        let mut url = self.url(&["payments", payment_id, "refunds"]);
        url.query_pairs_mut().append_pair("count", "100");
        self.call_url(RequestKind::Read, Method::GET, url, None::<&()>)
            .await
    }

    /// `GET /v1/refunds/:id`.
    pub async fn fetch_refund(&self, refund_id: &str) -> Result<Refund, Error> {
        self.get(&["refunds", refund_id]).await
    }

    // ---- Route: linked accounts (v2) ----

    /// `POST /v2/accounts` (type `route`; never retried after it may have been sent).
    pub async fn create_linked_account(
        &self,
        req: &CreateLinkedAccount,
    ) -> Result<LinkedAccount, Error> {
        self.call_url(
            RequestKind::Create,
            Method::POST,
            self.url_in("v2", &["accounts"]),
            Some(req),
        )
        .await
    }

    /// `PATCH /v2/accounts/:id`.
    pub async fn update_linked_account(
        &self,
        account_id: &str,
        req: &UpdateLinkedAccount,
    ) -> Result<LinkedAccount, Error> {
        self.call_url(
            RequestKind::IdempotentWrite,
            Method::PATCH,
            self.url_in("v2", &["accounts", account_id]),
            Some(req),
        )
        .await
    }

    /// `GET /v2/accounts/:id`.
    pub async fn fetch_linked_account(&self, account_id: &str) -> Result<LinkedAccount, Error> {
        self.call_url(
            RequestKind::Read,
            Method::GET,
            self.url_in("v2", &["accounts", account_id]),
            None::<&()>,
        )
        .await
    }

    /// `POST /v2/accounts/:id/stakeholders` (never retried after it may have been sent).
    pub async fn create_stakeholder(
        &self,
        account_id: &str,
        req: &CreateStakeholder,
    ) -> Result<Stakeholder, Error> {
        self.call_url(
            RequestKind::Create,
            Method::POST,
            self.url_in("v2", &["accounts", account_id, "stakeholders"]),
            Some(req),
        )
        .await
    }

    /// `PATCH /v2/accounts/:id/stakeholders/:sid`.
    pub async fn update_stakeholder(
        &self,
        account_id: &str,
        stakeholder_id: &str,
        req: &CreateStakeholder,
    ) -> Result<Stakeholder, Error> {
        self.call_url(
            RequestKind::IdempotentWrite,
            Method::PATCH,
            self.url_in(
                "v2",
                &["accounts", account_id, "stakeholders", stakeholder_id],
            ),
            Some(req),
        )
        .await
    }

    /// `POST /v2/accounts/:id/products` (`route`; never retried after it may have been sent).
    pub async fn request_product(
        &self,
        account_id: &str,
        req: &RequestProduct,
    ) -> Result<ProductConfiguration, Error> {
        self.call_url(
            RequestKind::Create,
            Method::POST,
            self.url_in("v2", &["accounts", account_id, "products"]),
            Some(req),
        )
        .await
    }

    /// `PATCH /v2/accounts/:id/products/:pid` (the settlement bank account).
    pub async fn update_product(
        &self,
        account_id: &str,
        product_id: &str,
        req: &UpdateProduct,
    ) -> Result<ProductConfiguration, Error> {
        self.call_url(
            RequestKind::IdempotentWrite,
            Method::PATCH,
            self.url_in("v2", &["accounts", account_id, "products", product_id]),
            Some(req),
        )
        .await
    }

    /// `GET /v2/accounts/:id/products/:pid`.
    pub async fn fetch_product(
        &self,
        account_id: &str,
        product_id: &str,
    ) -> Result<ProductConfiguration, Error> {
        self.call_url(
            RequestKind::Read,
            Method::GET,
            self.url_in("v2", &["accounts", account_id, "products", product_id]),
            None::<&()>,
        )
        .await
    }

    // ---- Route: transfers, reversals, settlements ----

    /// `POST /v1/payments/:id/transfers` (never retried after it may have been sent: a lost
    /// answer is resolved by [`Self::fetch_payment_transfers`]).
    pub async fn create_payment_transfers(
        &self,
        payment_id: &str,
        req: &CreateTransfers,
    ) -> Result<Collection<Transfer>, Error> {
        self.call(
            RequestKind::Create,
            Method::POST,
            &["payments", payment_id, "transfers"],
            Some(req),
        )
        .await
    }

    /// `GET /v1/payments/:id/transfers`.
    pub async fn fetch_payment_transfers(
        &self,
        payment_id: &str,
    ) -> Result<Collection<Transfer>, Error> {
        self.get(&["payments", payment_id, "transfers"]).await
    }

    /// `GET /v1/transfers/:id`.
    pub async fn fetch_transfer(&self, transfer_id: &str) -> Result<Transfer, Error> {
        self.get(&["transfers", transfer_id]).await
    }

    /// `PATCH /v1/transfers/:id` (`on_hold`).
    pub async fn update_transfer(
        &self,
        transfer_id: &str,
        req: &UpdateTransfer,
    ) -> Result<Transfer, Error> {
        self.call(
            RequestKind::IdempotentWrite,
            Method::PATCH,
            &["transfers", transfer_id],
            Some(req),
        )
        .await
    }

    /// `POST /v1/transfers/:id/reversals` (never retried after it may have been sent: a lost
    /// answer is resolved by [`Self::fetch_transfer_reversals`]).
    pub async fn reverse_transfer(
        &self,
        transfer_id: &str,
        req: &CreateReversal,
    ) -> Result<Reversal, Error> {
        self.call(
            RequestKind::Create,
            Method::POST,
            &["transfers", transfer_id, "reversals"],
            Some(req),
        )
        .await
    }

    /// `GET /v1/transfers/:id/reversals`.
    pub async fn fetch_transfer_reversals(
        &self,
        transfer_id: &str,
    ) -> Result<Collection<Reversal>, Error> {
        self.get(&["transfers", transfer_id, "reversals"]).await
    }

    /// `GET /v1/transfers?recipient_settlement_id=…&count=100`: the transfers a settlement paid.
    pub async fn fetch_settlement_transfers(
        &self,
        settlement_id: &str,
    ) -> Result<Collection<Transfer>, Error> {
        let mut url = self.url(&["transfers"]);
        url.query_pairs_mut()
            .append_pair("recipient_settlement_id", settlement_id)
            .append_pair("count", "100");
        self.call_url(RequestKind::Read, Method::GET, url, None::<&()>)
            .await
    }

    /// `GET /v1/settlements/:id`.
    pub async fn fetch_settlement(&self, settlement_id: &str) -> Result<Settlement, Error> {
        self.get(&["settlements", settlement_id]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> Error {
        Error::from_response(status, b"{}")
    }

    #[test]
    fn policy_by_kind() {
        let p = RetryPolicy::default();
        for s in [500, 502, 503, 504, 429] {
            assert!(p.should_retry(RequestKind::Read, &api(s), 1), "{s}");
            assert!(
                p.should_retry(RequestKind::IdempotentWrite, &api(s), 1),
                "{s}"
            );
            assert!(!p.should_retry(RequestKind::Create, &api(s), 1), "{s}");
        }
        for s in [400, 401, 404, 409] {
            assert!(!p.should_retry(RequestKind::Read, &api(s), 1), "{s}");
        }
        assert!(p.should_retry(RequestKind::Read, &Error::Timeout, 1));
        assert!(!p.should_retry(RequestKind::Create, &Error::Timeout, 1));
        // Attempts are capped.
        assert!(p.should_retry(RequestKind::Read, &api(502), 2));
        assert!(!p.should_retry(RequestKind::Read, &api(502), 3));
        assert!(!RetryPolicy::none().should_retry(RequestKind::Read, &api(502), 1));
    }

    #[tokio::test]
    async fn connect_errors_are_retried_even_for_creates() {
        // Nothing listens on port 1: a connect error, so nothing was sent.
        let http = reqwest::Client::new();
        let err = http.get("http://127.0.0.1:1/").send().await.unwrap_err();
        let e = Error::from_reqwest(err);
        assert!(matches!(e, Error::Transport { connect: true, .. }));
        assert!(RetryPolicy::default().should_retry(RequestKind::Create, &e, 1));
    }

    /// A server that accepts connections and never answers: counts attempts.
    fn silent_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let count = std::sync::Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming().flatten() {
                c.fetch_add(1, Ordering::SeqCst);
                held.push(conn);
            }
        });
        (format!("http://{addr}"), count)
    }

    /// Reads the accept counter once the accept thread has caught up.
    async fn settled(count: &std::sync::atomic::AtomicUsize, at_least: usize) -> usize {
        use std::sync::atomic::Ordering;
        for _ in 0..200 {
            if count.load(Ordering::SeqCst) >= at_least {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        count.load(Ordering::SeqCst)
    }

    fn fast_client(base_url: String) -> Client {
        Client::new(ClientConfig {
            base_url,
            timeout: Duration::from_millis(300),
            ..ClientConfig::new("rzp_test_x", "s")
        })
        .unwrap()
        .with_retry_policy(RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        })
    }

    #[tokio::test]
    async fn timeouts_retry_reads_but_never_creates() {
        let (base, count) = silent_server();
        let c = fast_client(base);
        let e = c.fetch_order("order_AAAAAAAAAAAAAA").await.unwrap_err();
        assert!(matches!(e, Error::Timeout), "{e:?}");
        assert_eq!(settled(&count, 3).await, 3, "a GET is tried 3 times");

        let (base, count) = silent_server();
        let c = fast_client(base);
        let e = c
            .create_order(&CreateOrder {
                amount: 100,
                currency: "INR".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Timeout), "{e:?}");
        assert_eq!(
            settled(&count, 1).await,
            1,
            "a create that may have been received is not repeated"
        );
    }

    #[test]
    fn invoices_parse_razorpay_docs_shape() {
        // Abridged from Razorpay's "Fetch All Invoices of a Subscription" example.
        let body = r#"{"entity":"collection","count":1,"items":[{"id":"inv_00000000000003",
            "entity":"invoice","receipt":null,"invoice_number":null,"customer_id":"cust_00000000000001",
            "customer_details":{"id":"cust_00000000000001","email":"gaurav.kumar@example.com"},
            "order_id":"order_00000000000002","subscription_id":"sub_00000000000001",
            "line_items":[{"id":"li_00000000000003","name":"Monthly Plan","amount":99900,"type":"plan"}],
            "payment_id":"pay_00000000000002","status":"paid","expire_by":null,"issued_at":1593344888,
            "paid_at":1593344889,"cancelled_at":null,"expired_at":null,"sms_status":null,
            "email_status":null,"date":1593344888,"terms":null,"partial_payment":false,
            "gross_amount":99900,"tax_amount":0,"taxable_amount":99900,"amount":99900,
            "amount_paid":99900,"amount_due":0,"currency":"INR","currency_symbol":"\u20b9",
            "description":null,"notes":[],"comment":null,"short_url":"https://rzp.io/i/Ys4feGqEp",
            "view_less":true,"billing_start":1593344888,"billing_end":1595937600,"type":"invoice",
            "group_taxes_discounts":false,"created_at":1593344888,"idempotency_key":null}]}"#;
        let c: Collection<Invoice> = serde_json::from_str(body).unwrap();
        let i = &c.items[0];
        assert_eq!(i.status, InvoiceStatus::Paid);
        assert_eq!(i.payment_id.as_deref(), Some("pay_00000000000002"));
        assert_eq!(i.subscription_id.as_deref(), Some("sub_00000000000001"));
        assert_eq!((i.amount, i.amount_paid, i.amount_due), (99900, 99900, 0));
        assert_eq!(i.currency_symbol.as_deref(), Some("\u{20b9}"));
        assert_eq!(i.billing_end, Some(1595937600));
        assert!(i.notes.is_empty());
        assert_eq!(i.invoice_type.as_deref(), Some("invoice"));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        };
        assert_eq!(p.delay(1), Duration::from_millis(100));
        assert_eq!(p.delay(2), Duration::from_millis(200));
        assert_eq!(p.delay(3), Duration::from_millis(400));
        assert_eq!(p.delay(4), Duration::from_millis(500));
        assert_eq!(p.delay(40), Duration::from_millis(500));
    }

    #[test]
    fn urls_keep_base_path_and_encode_ids() {
        let c = Client::new(ClientConfig {
            base_url: "http://127.0.0.1:9/_razorpay/".into(),
            ..ClientConfig::new("k", "s")
        })
        .unwrap();
        assert_eq!(
            c.url(&["subscriptions", "sub_1", "cancel"]).as_str(),
            "http://127.0.0.1:9/_razorpay/v1/subscriptions/sub_1/cancel"
        );
        assert_eq!(
            c.url(&["orders", "../x?y"]).as_str(),
            "http://127.0.0.1:9/_razorpay/v1/orders/..%2Fx%3Fy"
        );
        let c = Client::new(ClientConfig::new("k", "s")).unwrap();
        assert_eq!(
            c.url(&["plans", "plan_1"]).as_str(),
            "https://api.razorpay.com/v1/plans/plan_1"
        );
        let c = Client::new(ClientConfig::new("k", "key_secret")).unwrap();
        let sig = "b2335e3b0801106b84a7faff035df56ecffde06918c9ddd1f0fafbb37a51cc89";
        assert!(c.verify_order_checkout("fake_order_id", "fake_payment_id", sig));
        assert!(!c.verify_subscription_checkout("fake_order_id", "fake_payment_id", "00"));
        let dbg = format!("{:?}", ClientConfig::new("k", "supersecret"));
        assert!(!dbg.contains("supersecret"));
    }
}
