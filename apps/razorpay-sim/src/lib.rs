#![doc = include_str!("../README.md")]

mod api;
mod control;
mod input;
mod route;
mod state;
mod webhooks;

use actix_web::{web, App, HttpRequest, HttpServer};
use rand::seq::SliceRandom;
use state::State;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use tokio::sync::mpsc;
use webhooks::{Chaos, Emitter};

/// Webhook delivery: total attempts per event and the first back-off delay (doubling, capped at 5 s).
pub use webhooks::{BASE_DELAY as WEBHOOK_BASE_DELAY, MAX_ATTEMPTS as WEBHOOK_MAX_ATTEMPTS};

/// The delivery log keeps the most recent events only.
const MAX_EVENTS: usize = 1000;

/// Simulator settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Accepted key id (HTTP Basic user).
    pub key_id: String,
    /// Accepted key secret (HTTP Basic password); also signs Checkout responses.
    pub key_secret: String,
    /// Signs webhooks (`X-Razorpay-Signature`).
    pub webhook_secret: String,
    /// Where webhooks are POSTed; none are sent (only logged) while unset.
    pub webhook_url: Option<String>,
    /// State persisted here after every change and loaded at start, when set.
    pub state_file: Option<PathBuf>,
}

/// State shared by the HTTP handlers and the webhook worker.
pub(crate) struct Shared {
    pub cfg: SimConfig,
    state: Mutex<State>,
    webhook_url: RwLock<Option<String>>,
    chaos: Mutex<Chaos>,
}

impl Shared {
    pub fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn lock_chaos(&self) -> MutexGuard<'_, Chaos> {
        self.chaos.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn webhook_url(&self) -> Option<String> {
        self.webhook_url
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    /// Persists `st` when a state file is configured.
    pub fn save(&self, st: &State) {
        if let Some(path) = &self.cfg.state_file {
            st.save(path);
        }
    }
}

/// A stateful Razorpay simulator: the `/v1` API subset, the `/_sim` control
/// API and webhook delivery. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct Simulator {
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<Vec<String>>,
}

impl Simulator {
    /// Creates a simulator (loading `state_file` if present) and starts its
    /// webhook delivery thread. Does not need a running async runtime.
    pub fn new(config: SimConfig) -> Simulator {
        let state = State::load(config.state_file.as_deref());
        let shared = Arc::new(Shared {
            webhook_url: RwLock::new(config.webhook_url.clone()),
            cfg: config,
            state: Mutex::new(state),
            chaos: Mutex::new(Chaos::default()),
        });
        let tx = webhooks::start_worker(shared.clone());
        Simulator { shared, tx }
    }

    /// Sets (or changes) where webhooks are delivered.
    pub fn set_webhook_url(&self, url: String) {
        *self
            .shared
            .webhook_url
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(url);
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &SimConfig {
        &self.shared.cfg
    }

    /// Registers `/v1/...` (the Razorpay API) and `/_sim/...` (control API)
    /// relative to wherever it is mounted, e.g.
    /// `web::scope("/_razorpay").configure(|c| sim.configure(c))`.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let v1 = self.clone();
        let v2 = self.clone();
        let ctl = self.clone();
        cfg.service(web::scope("/v1").default_service(web::to(
            move |req: HttpRequest, body: web::Bytes| {
                let sim = v1.clone();
                async move { api::handle(&sim, &req, &body, "v1") }
            },
        )))
        .service(web::scope("/v2").default_service(web::to(
            move |req: HttpRequest, body: web::Bytes| {
                let sim = v2.clone();
                async move { api::handle(&sim, &req, &body, "v2") }
            },
        )))
        .service(web::scope("/_sim").default_service(web::to(
            move |req: HttpRequest, body: web::Bytes| {
                let sim = ctl.clone();
                async move { control::handle(&sim, &req, &body) }
            },
        )));
    }

    pub(crate) fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.shared.lock_state())
    }

    /// Runs a state change; on success persists the state and queues the
    /// webhooks it emitted (after the lock is released).
    pub(crate) fn mutate<R>(
        &self,
        f: impl FnOnce(&mut State, &mut Emitter) -> Result<R, input::ApiError>,
    ) -> Result<R, input::ApiError> {
        let mut batch = Vec::new();
        let (noncanonical, duplicate, shuffle) = {
            let c = self.shared.lock_chaos();
            (c.noncanonical_json, c.duplicate_deliveries, c.shuffle)
        };
        let out = {
            let mut st = self.shared.lock_state();
            let mut em = Emitter::default();
            let out = f(&mut st, &mut em)?;
            for (name, contains, payload) in em.items {
                let mut ev =
                    webhooks::make_event(&st.account_id, name, contains, payload, noncanonical);
                let drop = {
                    let mut c = self.shared.lock_chaos();
                    if c.drop_next > 0 {
                        c.drop_next -= 1;
                        true
                    } else {
                        false
                    }
                };
                if drop {
                    ev.dropped = true;
                } else {
                    batch.push(ev.id.clone());
                }
                st.events.push(ev);
            }
            if st.events.len() > MAX_EVENTS {
                // The oldest settled events go; one still being delivered stays until it is
                // delivered or given up (its retries look it up here).
                let mut excess = st.events.len() - MAX_EVENTS;
                st.events.retain(|e| {
                    let settled = e.delivered || e.dropped || e.attempts >= webhooks::MAX_ATTEMPTS;
                    if excess > 0 && settled {
                        excess -= 1;
                        false
                    } else {
                        true
                    }
                });
            }
            self.shared.save(&st);
            out
        };
        if !batch.is_empty() {
            if duplicate {
                let again = batch.clone();
                batch.extend(again);
            }
            if shuffle {
                batch.shuffle(&mut rand::thread_rng());
            }
            self.enqueue(batch);
        }
        Ok(out)
    }

    pub(crate) fn enqueue(&self, batch: Vec<String>) {
        if self.tx.send(batch).is_err() {
            tracing::warn!("razorpay-sim: webhook worker is gone; event not queued");
        }
    }
}

/// Runs a simulator on its own HTTP server (one worker) bound to `bind`
/// (`"127.0.0.1:0"` picks a free port). Must be called inside a tokio runtime;
/// the server runs as a spawned task until `handle.stop(..)`.
pub async fn spawn(
    config: SimConfig,
    bind: &str,
) -> std::io::Result<(Simulator, SocketAddr, actix_web::dev::ServerHandle)> {
    let sim = Simulator::new(config);
    let app_sim = sim.clone();
    let server = HttpServer::new(move || {
        let s = app_sim.clone();
        App::new().configure(move |c| s.configure(c))
    })
    .workers(1)
    .shutdown_timeout(1)
    .disable_signals()
    .bind(bind)?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| std::io::Error::other("bound to no address"))?;
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok((sim, addr, handle))
}
