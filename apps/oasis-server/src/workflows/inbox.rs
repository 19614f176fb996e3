//! The webhook inbox's writer: verified deliveries that arrive together are stored together.
//!
//! A handler hands its delivery to [`WebhookInbox::store`] and waits for the answer. Up to
//! `OASIS_WEBHOOK_WRITERS` writers each take what is waiting — up to `OASIS_WEBHOOK_BATCH_MAX`
//! deliveries — and store it with one statement
//! ([`oasis_db::billing::receive_webhook_events`]: the events and their processing jobs, one
//! commit), then answer every delivery of it; whatever arrived meanwhile is the next statement.
//! A delivery is answered only after its commit, so a 200 still means "durably stored"; a
//! failed statement fails each of its deliveries (Razorpay delivers them again). Under a trickle
//! each statement holds one delivery; under a burst the commits, not the deliveries, are what
//! PostgreSQL pays for (docs/scaling.md, "Webhook intake").
use crate::db::Db;
use crate::error::ApiError;
use crate::jobs::JobQueue;
use oasis_db::billing::WebhookDelivery;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};

type Reply = oneshot::Sender<Result<bool, ApiError>>;

/// Where handlers hand verified deliveries (cheap to clone).
#[derive(Clone)]
pub struct WebhookInbox {
    tx: mpsc::UnboundedSender<(WebhookDelivery, Reply)>,
}

impl WebhookInbox {
    /// Starts `writers` writers on the current runtime, each storing up to `batch_max`
    /// deliveries per statement as `job_kind` jobs, waking `jobs` when one was new.
    pub fn start(
        db: Db,
        jobs: JobQueue,
        job_kind: &'static str,
        batch_max: usize,
        writers: usize,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..writers.max(1) {
            let (db, jobs, rx) = (db.clone(), jobs.clone(), rx.clone());
            tokio::spawn(async move {
                while let Some(batch) = next_batch(&rx, batch_max.max(1)).await {
                    write(&db, &jobs, job_kind, batch).await;
                }
            });
        }
        Self { tx }
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

/// The first waiting delivery (waiting for one) and whatever else is waiting, up to `max`.
async fn next_batch(
    rx: &Mutex<mpsc::UnboundedReceiver<(WebhookDelivery, Reply)>>,
    max: usize,
) -> Option<Vec<(WebhookDelivery, Reply)>> {
    let mut rx = rx.lock().await;
    let first = rx.recv().await?;
    let mut batch = vec![first];
    while batch.len() < max {
        match rx.try_recv() {
            Ok(d) => batch.push(d),
            Err(_) => break,
        }
    }
    Some(batch)
}

async fn write(
    db: &Db,
    jobs: &JobQueue,
    job_kind: &'static str,
    batch: Vec<(WebhookDelivery, Reply)>,
) {
    let (deliveries, replies): (Vec<WebhookDelivery>, Vec<Reply>) = batch.into_iter().unzip();
    let stored = db
        .run(move |c| {
            Ok(oasis_db::billing::receive_webhook_events(
                c,
                &deliveries,
                job_kind,
            )?)
        })
        .await;
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
