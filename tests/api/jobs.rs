//! The job queue's operator side: a job that keeps failing is parked as a dead letter after
//! `OASIS_JOB_MAX_ATTEMPTS`, `oasis jobs dead` lists it, `oasis jobs retry <id>` re-runs it, and
//! `oasis jobs run <name>` runs a periodic job at once.
use oasis_server::workflows::cli;
use oasis_tests::smtp::SmtpServer;
use oasis_tests::{json, spawn_app_with};
use std::time::{Duration, Instant};

#[tokio::test]
async fn failing_mail_is_dead_lettered_listed_and_retried_by_the_cli() {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let app = spawn_app_with(|s| {
        s.mail.smtp_url = Some(url.into());
        s.job_max_attempts = 2;
    })
    .await;
    // Both allowed attempts fail (451 after DATA).
    smtp.fail_next(2);
    let r = app
        .post(
            "/authenticate/rest-auth/registration/",
            &json!({
                "email": "dora@example.com", "first_name": "Dora", "last_name": "D",
                "username": "dora", "password": "Corr3ct-Horse!", "password2": "Corr3ct-Horse!",
                "login_type": "manual"
            }),
            None,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let dead_sql =
        "SELECT count(*) AS n FROM jobs WHERE kind = 'mail.send' AND dead_at IS NOT NULL";
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.query_i64(dead_sql) == 0 {
        assert!(Instant::now() < deadline, "the mail job was never parked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let id = app.query_i64("SELECT id AS n FROM jobs WHERE dead_at IS NOT NULL");
    assert_eq!(
        app.query_i64(&format!(
            "SELECT attempts::bigint AS n FROM jobs WHERE id = {id}"
        )),
        2
    );
    // Parked means parked: no worker takes it again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(smtp.messages().is_empty(), "nothing was delivered");
    assert_eq!(
        app.query_i64(&format!(
            "SELECT attempts::bigint AS n FROM jobs WHERE id = {id}"
        )),
        2
    );

    let listed = cli::cli_jobs_dead(app.settings.clone()).await.unwrap();
    assert!(listed.starts_with("1 dead letter(s)"), "{listed}");
    let line = listed.lines().nth(1).unwrap();
    assert!(
        line.starts_with(&format!("{id}\tmail.send\t2 attempt(s)\t")),
        "{line}"
    );
    assert!(line.contains("451"), "the last error is shown: {line}");

    let e = cli::cli_jobs_retry(app.settings.clone(), id + 1000)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("is not a dead letter"), "{e}");

    let done = cli::cli_jobs_retry(app.settings.clone(), id).await.unwrap();
    assert_eq!(done, format!("job {id} ran and is done"));
    let got = smtp.messages();
    assert_eq!(got.len(), 1, "the re-run delivered the mail once");
    assert_eq!(got[0].to, vec!["dora@example.com".to_owned()]);
    assert_eq!(app.query_i64(dead_sql), 0);
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) AS n FROM jobs WHERE id = {id} AND done_at IS NOT NULL"
        )),
        1
    );
    assert_eq!(
        cli::cli_jobs_dead(app.settings.clone()).await.unwrap(),
        "no dead letters"
    );
    app.stop().await;
}

#[tokio::test]
async fn periodic_jobs_run_at_once_by_name() {
    let app = spawn_app_with(|_| {}).await;
    let list = cli::cli_jobs_run(app.settings.clone(), None).await.unwrap();
    assert!(list.contains("billing.reconcile"), "{list}");
    let done = cli::cli_jobs_run(app.settings.clone(), Some("billing.reconcile"))
        .await
        .unwrap();
    assert_eq!(done, "billing.reconcile: done");
    let e = cli::cli_jobs_run(app.settings.clone(), Some("no.such"))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("billing.reconcile"),
        "names the real ones: {e}"
    );
    app.stop().await;
}
