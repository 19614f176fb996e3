//! The webhook inbox's writers: verified deliveries that arrive together are stored together.
//!
//! A handler hands its delivery to [`WebhookInbox::store`] and waits for the answer.
//! `OASIS_WEBHOOK_WRITERS` writer threads each take what is waiting — up to
//! `OASIS_WEBHOOK_BATCH_MAX` deliveries — and store it with one statement
//! ([`oasis_db::billing::receive_webhook_events`]: the events and their processing jobs, one
//! commit), then answer every delivery of it; whatever arrived meanwhile is the next statement.
//! A delivery is answered only after its commit, so a 200 still means "durably stored"; a
//! failed statement fails each of its deliveries (Razorpay delivers them again). Under a trickle
//! each statement holds one delivery; under a burst the commits, not the deliveries, are what
//! PostgreSQL pays for (docs/scaling.md, "Webhook intake").
//!
//! The writers are threads of their own that block on the queue and on the database: a
//! delivery goes from the handler's worker to a writer and back, two wake-ups, where a task
//! handing its statement to the blocking pool took four (intake is bound by that latency, not
//! by CPU).
use crate::db::Db;
use crate::error::ApiError;
use crate::jobs::JobQueue;
use oasis_db::billing::WebhookDelivery;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

type Reply = oneshot::Sender<Result<bool, ApiError>>;
type Queue = Mutex<mpsc::UnboundedReceiver<(WebhookDelivery, Reply)>>;

/// Where handlers hand verified deliveries (cheap to clone). The writers stop once every
/// clone is dropped and the queue is empty.
#[derive(Clone)]
pub struct WebhookInbox {
    tx: mpsc::UnboundedSender<(WebhookDelivery, Reply)>,
}

impl WebhookInbox {
    /// Starts `writers` writer threads, each storing up to `batch_max` deliveries per statement
    /// as `job_kind` jobs, waking `jobs` when one was new.
    pub fn start(
        db: Db,
        jobs: JobQueue,
        job_kind: &'static str,
        batch_max: usize,
        writers: usize,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let rx: Arc<Queue> = Arc::new(Mutex::new(rx));
        for n in 0..writers.max(1) {
            let (db, jobs, rx) = (db.clone(), jobs.clone(), rx.clone());
            std::thread::Builder::new()
                .name(format!("webhook-writer-{n}"))
                .spawn(move || {
                    while let Some(batch) = next_batch(&rx, batch_max.max(1)) {
                        write(&db, &jobs, job_kind, batch);
                    }
                })?;
        }
        Ok(Self { tx })
    }

    /// Stores `delivery` (with its processing job) and answers once it is committed: whether
    /// it was new (`false`: this event id was stored before).
    pub async fn store(&self, delivery: WebhookDelivery) -> Result<bool, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((delivery, reply))
            .map_err(|_| ApiError::unavailable("The webhook inbox is shutting down."))?;
        answer
            .await
            .map_err(|_| ApiError::unavailable("The webhook inbox is shutting down."))?
    }
}

/// The first waiting delivery (blocking until one arrives) and whatever else is waiting, up to
/// `max`; `None` once the inbox is dropped and drained.
fn next_batch(rx: &Queue, max: usize) -> Option<Vec<(WebhookDelivery, Reply)>> {
    // A writer that panicked holding the lock left the queue itself intact.
    let mut rx = rx.lock().unwrap_or_else(|p| p.into_inner());
    let first = rx.blocking_recv()?;
    let mut batch = vec![first];
    while batch.len() < max {
        match rx.try_recv() {
            Ok(d) => batch.push(d),
            Err(_) => break,
        }
    }
    Some(batch)
}

fn write(db: &Db, jobs: &JobQueue, job_kind: &'static str, batch: Vec<(WebhookDelivery, Reply)>) {
    let (deliveries, replies): (Vec<WebhookDelivery>, Vec<Reply>) = batch.into_iter().unzip();
    let stored = db.run_here(|c| -> Result<_, ApiError> {
        Ok(oasis_db::billing::receive_webhook_events(
            c,
            &deliveries,
            job_kind,
        )?)
    });
    match stored {
        Ok(new) => {
            if new.iter().any(|n| *n) {
                jobs.wake();
            }
            for (reply, new) in replies.into_iter().zip(new) {
                let _ = reply.send(Ok(new));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, deliveries = replies.len(), "webhook deliveries not stored");
            for reply in replies {
                let _ = reply.send(Err(ApiError::unavailable(
                    "The webhook could not be stored; deliver it again.",
                )));
            }
        }
    }
}
