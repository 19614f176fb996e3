//! The periodic notification jobs (each server runs them every interval; `oasis jobs run
//! <name>` runs one at once). Both are idempotent across runs and processes:
//! - `notify.digest`: plans today's (UTC) new-post digest of every user whose `new_posts` email
//!   is on and who has new posts since their last digest — a `notification_digests` row per user
//!   and day (its primary key: never twice a day) and a `notify.digest_mail` job in the same
//!   transaction; the mail is rendered when it is sent (gated posts by title only, with the
//!   unsubscribe link);
//! - `notify.access_ending`: warns fans whose access ends within
//!   `OASIS_NOTIFY_ACCESS_ENDING_DAYS` without renewing (cancelled at cycle end, one-time
//!   purchases) — an `access_ending` notification per membership and end of access (unique:
//!   never twice a period), in-app and mailed like every membership warning.
use super::notify_mail::{self, DigestJob};
use crate::context::AppContext;
use crate::jobs::{JobError, JobRegistry};
use oasis_db::notify::{self as repo, PgNotify};
use oasis_notify::NotifyRepo;
use std::time::Duration;

pub const JOB_DIGEST_PLAN: &str = "notify.digest";
pub const JOB_ACCESS_ENDING: &str = "notify.access_ending";

/// New posts older than this never enter a digest (a user's first digest does not dig up
/// history).
const DIGEST_LOOKBACK_SECS: i64 = 2 * 24 * 3600;

pub fn register(registry: &mut JobRegistry, ctx: &AppContext) {
    let (db, jobs) = (ctx.db.clone(), ctx.jobs.clone());
    registry.periodic(
        JOB_DIGEST_PLAN,
        Duration::from_secs(ctx.settings.notify_digest_secs),
        move |_: serde_json::Value| {
            let (db, jobs) = (db.clone(), jobs.clone());
            async move {
                let n = db
                    .tx_as::<_, JobError, _>(|c| {
                        let day = chrono::Utc::now().date_naive();
                        let users = repo::plan_digests(c, DIGEST_LOOKBACK_SECS)?;
                        for user_id in &users {
                            notify_mail::enqueue_digest(
                                c,
                                DigestJob {
                                    user_id: *user_id,
                                    day,
                                },
                            )?;
                        }
                        Ok(users.len())
                    })
                    .await?;
                if n > 0 {
                    jobs.wake();
                }
                tracing::info!(digests = n, "new-post digests planned");
                Ok(())
            }
        },
    );
    let (db, jobs) = (ctx.db.clone(), ctx.jobs.clone());
    let within_secs = ctx.settings.notify_access_ending_days * 24 * 3600;
    registry.periodic(
        JOB_ACCESS_ENDING,
        Duration::from_secs(ctx.settings.notify_access_ending_secs),
        move |_: serde_json::Value| {
            let (db, jobs) = (db.clone(), jobs.clone());
            async move {
                let n = db
                    .tx_as::<_, JobError, _>(move |c| {
                        let mut stored = 0;
                        for facts in repo::access_ending_soon(c, within_secs)? {
                            let (note, audience) = oasis_notify::access_ending(&facts);
                            for d in PgNotify(c).insert(&note, audience)? {
                                notify_mail::enqueue(c, d.id)?;
                                stored += 1;
                            }
                        }
                        Ok(stored)
                    })
                    .await?;
                if n > 0 {
                    jobs.wake();
                }
                tracing::info!(warnings = n, "access-ends warnings raised");
                Ok(())
            }
        },
    );
}
