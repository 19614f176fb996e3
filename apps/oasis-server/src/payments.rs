//! The Razorpay peer of this server: a real Razorpay account when `RAZORPAY_KEY_ID` is set, or —
//! "embedded mode", for development — a `razorpay_sim::Simulator` mounted in-process under
//! `/_razorpay`, with test keys derived from `OASIS_SECRET_KEY` and webhooks delivered to this
//! server's `/razorpay/webhooks/`. With keys set the simulator is never mounted.
use crate::config::Settings;
use razorpay::{Client, ClientConfig, ExposeSecret, SecretString};
use std::sync::Arc;
use std::time::Duration;

/// Mount point of the embedded simulator.
pub const SIM_PREFIX: &str = "/_razorpay";

/// The Razorpay client, keys and (in embedded mode) the simulator. Cheap to clone.
#[derive(Clone)]
pub struct Payments(Arc<Inner>);

struct Inner {
    client: Client,
    key_id: String,
    key_secret: SecretString,
    webhook_secret: SecretString,
    base_url: String,
    simulator: Option<razorpay_sim::Simulator>,
    /// How the money Razorpay collects is split and held (the earnings ledger's settings).
    ledger: oasis_billing::ledger::Policy,
    /// Fingerprints the card or UPI ID of each payment Razorpay tells of (one trial each).
    instruments: oasis_billing::trials::InstrumentKey,
}

/// Embedded-mode credentials, derived from the server's secret so that the CLI
/// (`oasis billing reconcile`) reaches a running server's simulator with the same keys.
fn derived(secret: &str, purpose: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    hex::encode(ring::hmac::sign(
        &key,
        format!("oasis/razorpay-sim/{purpose}").as_bytes(),
    ))
}

/// The host to reach this server on from itself.
fn local_host(bind: &str) -> String {
    let host = bind.rsplit_once(':').map(|(h, _)| h).unwrap_or("127.0.0.1");
    match host {
        "0.0.0.0" | "" | "[::]" | "::" | "localhost" => "127.0.0.1".to_owned(),
        h => h.to_owned(),
    }
}

/// Why the payment peer could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PaymentsError {
    /// A Razorpay setting is missing or not allowed here.
    #[error("{0}")]
    Config(&'static str),
    #[error("razorpay client: {0}")]
    Client(String),
}

impl Payments {
    /// Builds the peer. `port` is the bound port of this server (it mounts the embedded
    /// simulator); `None` (the CLI) points at the running server's simulator via
    /// `OASIS_PUBLIC_URL` instead of starting one.
    pub fn from_settings(settings: &Settings, port: Option<u16>) -> Result<Self, PaymentsError> {
        let secret = settings
            .secret_key
            .as_ref()
            .ok_or(PaymentsError::Config("OASIS_SECRET_KEY is not resolved"))?
            .expose_secret()
            .to_owned();
        let instruments = oasis_billing::trials::InstrumentKey::new(secret.as_bytes());
        let rzp = &settings.razorpay;
        if let Some(key_id) = &rzp.key_id {
            let key_secret = rzp.key_secret.clone().ok_or(PaymentsError::Config(
                "RAZORPAY_KEY_SECRET must be set when RAZORPAY_KEY_ID is set",
            ))?;
            let webhook_secret = rzp.webhook_secret.clone().ok_or(PaymentsError::Config(
                "RAZORPAY_WEBHOOK_SECRET must be set when RAZORPAY_KEY_ID is set",
            ))?;
            return Self::build(
                rzp.api_base.trim_end_matches('/').to_owned(),
                key_id.clone(),
                key_secret,
                webhook_secret,
                None,
                settings.ledger,
                instruments,
            );
        }
        if settings.env == crate::config::Environment::Production {
            return Err(PaymentsError::Config(
                "RAZORPAY_KEY_ID must be set when OASIS_ENV=production \
                 (the embedded Razorpay simulator is for development only)",
            ));
        }
        let key_id = format!("rzp_test_{}", &derived(&secret, "key_id")[..14]);
        let key_secret = derived(&secret, "key_secret")[..24].to_owned();
        let webhook_secret = derived(&secret, "webhook_secret")[..32].to_owned();
        let (base_url, simulator) = match port {
            Some(port) => {
                let origin = format!("http://{}:{port}", local_host(&settings.bind));
                let sim = razorpay_sim::Simulator::new(razorpay_sim::SimConfig {
                    key_id: key_id.clone(),
                    key_secret: key_secret.clone(),
                    webhook_secret: webhook_secret.clone(),
                    webhook_url: Some(format!("{origin}/razorpay/webhooks/")),
                    state_file: Some(settings.data_dir.join("razorpay-sim.json")),
                });
                tracing::warn!(
                    simulator = %format!("{origin}{SIM_PREFIX}"),
                    "RAZORPAY_KEY_ID is not set: payments go to the EMBEDDED RAZORPAY SIMULATOR \
                     (no real money moves; pay with POST {SIM_PREFIX}/_sim/checkout). \
                     Set RAZORPAY_KEY_ID, RAZORPAY_KEY_SECRET and RAZORPAY_WEBHOOK_SECRET in production."
                );
                (format!("{origin}{SIM_PREFIX}"), Some(sim))
            }
            None => (format!("{}{SIM_PREFIX}", settings.public_url), None),
        };
        Self::build(
            base_url,
            key_id,
            SecretString::from(key_secret),
            SecretString::from(webhook_secret),
            simulator,
            settings.ledger,
            instruments,
        )
    }

    fn build(
        base_url: String,
        key_id: String,
        key_secret: SecretString,
        webhook_secret: SecretString,
        simulator: Option<razorpay_sim::Simulator>,
        ledger: oasis_billing::ledger::Policy,
        instruments: oasis_billing::trials::InstrumentKey,
    ) -> Result<Self, PaymentsError> {
        let client = Client::new(ClientConfig {
            base_url: base_url.clone(),
            key_id: key_id.clone(),
            key_secret: key_secret.clone(),
            timeout: Duration::from_secs(20),
        })
        .map_err(|e| PaymentsError::Client(e.to_string()))?;
        Ok(Self(Arc::new(Inner {
            client,
            key_id,
            key_secret,
            webhook_secret,
            base_url,
            simulator,
            ledger,
            instruments,
        })))
    }

    /// The earnings ledger's platform fee and hold ([`Settings::ledger`]).
    pub fn ledger_policy(&self) -> oasis_billing::ledger::Policy {
        self.0.ledger
    }

    /// What makes a payment's card or UPI ID into an [`oasis_billing::trials::Instrument`].
    pub fn instrument_key(&self) -> &oasis_billing::trials::InstrumentKey {
        &self.0.instruments
    }

    pub fn client(&self) -> &Client {
        &self.0.client
    }
    /// The public key id handed to Checkout (`public_key`).
    pub fn key_id(&self) -> &str {
        &self.0.key_id
    }
    /// Verifies Checkout signatures.
    pub fn key_secret(&self) -> &str {
        self.0.key_secret.expose_secret()
    }
    /// Verifies `X-Razorpay-Signature`.
    pub fn webhook_secret(&self) -> &str {
        self.0.webhook_secret.expose_secret()
    }
    /// Where the client sends requests.
    pub fn base_url(&self) -> &str {
        &self.0.base_url
    }
    /// The embedded simulator, in embedded mode.
    pub fn simulator(&self) -> Option<&razorpay_sim::Simulator> {
        self.0.simulator.as_ref()
    }
}

/// A handle that does not keep the peer alive (background tasks stop with the server).
#[derive(Clone)]
pub struct WeakPayments(std::sync::Weak<Inner>);

impl Payments {
    pub fn downgrade(&self) -> WeakPayments {
        WeakPayments(Arc::downgrade(&self.0))
    }
    pub fn upgrade(w: &WeakPayments) -> Option<Payments> {
        w.0.upgrade().map(Payments)
    }
}
