//! Outgoing email. `SMTP_URL` set: sent over SMTP with lettre — `smtps://` is implicit TLS,
//! `smtp://…?tls=required` insists on STARTTLS, plain `smtp://` uses STARTTLS whenever the server
//! offers it (`?tls=opportunistic` is added when no `tls` parameter is given). Unset: each message is
//! written as an `.eml` file into the outbox folder — and, in development only, its links are
//! logged, so a fresh checkout can register and verify with nothing configured. (Links carry
//! confirmation keys and reset tokens: never logged with `OASIS_ENV=production`.)
//!
//! Mail is never sent from a request or inside a transaction: handlers enqueue an
//! [`EMAIL_JOB`] row with [`enqueue`] in their transaction, and the job runner renders and sends
//! it afterwards; a failed send returns `Err` and the runner retries it. The job carries only a
//! reference ([`MailJob`]: what to send about which row); the secret in a link is minted when the
//! message is rendered, so it never sits in `jobs.payload`.
use crate::config::MailSettings;
use futures_util::future::BoxFuture;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The job kind carrying a [`MailJob`].
pub const EMAIL_JOB: &str = "mail.send";

/// One message, rendered at send time: plain text, optionally with an HTML alternative;
/// `links` are logged when writing to the outbox in development.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub body: String,
    #[serde(default)]
    pub links: Vec<String>,
    /// The HTML alternative of `body`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// A one-click unsubscribe URL: sent as `List-Unsubscribe` with `List-Unsubscribe-Post:
    /// List-Unsubscribe=One-Click` (RFC 8058).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_unsubscribe: Option<String>,
}

/// What an [`EMAIL_JOB`] says: which email, about which row. Never a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "template", rename_all = "snake_case")]
pub enum MailJob {
    /// The link confirming the address of an `email_confirmations` row (registration, resend,
    /// email change); its key is minted when sending.
    ConfirmEmail { confirmation_id: i64 },
    /// A password-reset link for the account; its token is made when sending.
    PasswordReset { user_id: i64 },
    /// The link confirming a change of an account without a password (`pending_changes` row),
    /// sent to its current address; `what` says in words what would change (no secret). Its
    /// token is minted when sending.
    ConfirmChange {
        pending_change_id: i64,
        what: String,
    },
}

/// A job's payload: a [`MailJob`], or a whole message queued by an earlier version (still sent).
#[derive(Deserialize)]
#[serde(untagged)]
enum Payload {
    Job(MailJob),
    Rendered(Email),
}

/// Why an email could not be sent (now).
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// A mail setting (named) does not parse.
    #[error("{setting}: {message}")]
    Config {
        setting: &'static str,
        message: String,
    },
    #[error("bad recipient {to:?}: {message}")]
    Recipient { to: String, message: String },
    #[error("cannot build message: {0}")]
    Build(String),
    #[error("SMTP send failed: {0}")]
    Smtp(String),
    #[error("cannot {action} outbox {dir}: {message}")]
    Outbox {
        action: &'static str,
        dir: String,
        message: String,
    },
    /// The email's content could not be rendered (retried).
    #[error("cannot render email: {0}")]
    Render(String),
    #[error("bad email job: {0}")]
    Payload(#[from] serde_json::Error),
}

/// Turns a [`MailJob`] into the message to send now; `Ok(None)` when there is nothing to send
/// any more (confirmation used or expired, account gone). `Err` is retried.
pub type Renderer = std::sync::Arc<
    dyn Fn(MailJob) -> BoxFuture<'static, Result<Option<Email>, MailError>> + Send + Sync,
>;

/// Queues `job` in the caller's transaction.
pub fn enqueue(
    conn: &mut diesel::PgConnection,
    job: &MailJob,
) -> Result<i64, oasis_kernel::RepoError> {
    let payload = serde_json::to_value(job)
        .map_err(|e| oasis_kernel::RepoError::Unavailable(e.to_string()))?;
    oasis_db::jobs::enqueue(conn, EMAIL_JOB, &payload)
}

/// `smtp://` without a `tls` parameter: opportunistic STARTTLS rather than plain text.
fn smtp_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.scheme() == "smtp" && !u.query_pairs().any(|(k, _)| k == "tls") => {
            u.query_pairs_mut().append_pair("tls", "opportunistic");
            u.to_string()
        }
        _ => raw.to_owned(),
    }
}

/// ASCII text with lines under 998 octets is valid 7bit (RFC 5322) and stays readable — links
/// are not broken by quoted-printable soft line breaks. Anything else: lettre's choice.
fn body(text: &str) -> Body {
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    if crlf.is_ascii() && crlf.split("\r\n").all(|l| l.len() < 998) {
        Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::SevenBit)
    } else {
        Body::new(text.to_owned())
    }
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

/// Sends emails over SMTP or into the outbox folder.
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
    log_links: bool,
}

impl Mailer {
    pub fn new(settings: &MailSettings) -> Result<Self, MailError> {
        let from: Mailbox = settings.from.parse().map_err(|e| MailError::Config {
            setting: "OASIS_MAIL_FROM",
            message: format!("{e}"),
        })?;
        let transport = match &settings.smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(&smtp_url(url.expose_secret()))
                    .map_err(|e| MailError::Config {
                        setting: "SMTP_URL",
                        message: e.to_string(),
                    })?
                    .build(),
            ),
            None => Transport::Outbox(settings.outbox.clone()),
        };
        Ok(Self {
            from,
            transport,
            log_links: settings.log_links,
        })
    }

    pub fn is_smtp(&self) -> bool {
        matches!(self.transport, Transport::Smtp(_))
    }

    fn message(&self, email: &Email) -> Result<Message, MailError> {
        let to: Mailbox = email.to.parse().map_err(|e| MailError::Recipient {
            to: email.to.clone(),
            message: format!("{e}"),
        })?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone());
        if let Some(url) = &email.list_unsubscribe {
            builder = builder
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe"),
                    format!("<{url}>"),
                ))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".to_owned(),
                ));
        }
        // 7bit keeps links readable in the raw message; lettre picks an encoding otherwise.
        let built = match &email.html {
            None => builder
                .header(ContentType::TEXT_PLAIN)
                .body(body(&email.body)),
            Some(html) => builder.multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(body(&email.body)),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(body(html)),
                    ),
            ),
        };
        built.map_err(|e| MailError::Build(e.to_string()))
    }

    /// Sends one message; `Err` describes a failure worth retrying.
    pub async fn send(&self, email: &Email) -> Result<(), MailError> {
        let msg = self.message(email)?;
        match &self.transport {
            Transport::Smtp(t) => {
                t.send(msg)
                    .await
                    .map_err(|e| MailError::Smtp(e.to_string()))?;
                tracing::info!(to = %email.to, subject = %email.subject, "email sent over SMTP");
            }
            Transport::Outbox(dir) => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| MailError::Outbox {
                        action: "create",
                        dir: dir.display().to_string(),
                        message: e.to_string(),
                    })?;
                let id = AsyncFileTransport::<Tokio1Executor>::new(dir)
                    .send(msg)
                    .await
                    .map_err(|e| MailError::Outbox {
                        action: "write to",
                        dir: dir.display().to_string(),
                        message: e.to_string(),
                    })?;
                let file = dir.join(format!("{id}.eml"));
                if self.log_links {
                    tracing::info!(
                        to = %email.to,
                        subject = %email.subject,
                        file = %file.display(),
                        links = ?email.links,
                        "email written to the outbox (SMTP_URL is not set)"
                    );
                } else {
                    tracing::info!(
                        to = %email.to,
                        subject = %email.subject,
                        file = %file.display(),
                        "email written to the outbox (SMTP_URL is not set)"
                    );
                }
            }
        }
        Ok(())
    }
}

/// Registers the email job handler: renders each job with `render`, then sends it.
pub fn jobs(registry: &mut crate::jobs::JobRegistry, settings: &MailSettings, render: Renderer) {
    let mailer = match Mailer::new(settings) {
        Ok(m) => std::sync::Arc::new(m),
        Err(e) => {
            tracing::error!(error = %e, "mail is misconfigured; emails stay queued");
            return;
        }
    };
    registry.register(EMAIL_JOB, move |payload: serde_json::Value| {
        let (mailer, render) = (mailer.clone(), render.clone());
        async move {
            let email = match serde_json::from_value(payload).map_err(MailError::Payload)? {
                Payload::Job(job) => match render(job.clone()).await? {
                    Some(email) => email,
                    None => {
                        tracing::info!(?job, "email no longer needed; not sent");
                        return Ok(());
                    }
                },
                Payload::Rendered(email) => email,
            };
            Ok(mailer.send(&email).await?)
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_smtp_gets_opportunistic_tls() {
        assert_eq!(
            smtp_url("smtp://u:p@host:587"),
            "smtp://u:p@host:587?tls=opportunistic"
        );
        assert_eq!(
            smtp_url("smtp://host:587?tls=required"),
            "smtp://host:587?tls=required"
        );
        assert_eq!(smtp_url("smtps://host"), "smtps://host");
    }

    #[tokio::test]
    async fn outbox_gets_a_readable_eml() {
        let dir = std::env::temp_dir().join(format!("oasis-mail-{}", std::process::id()));
        let mailer = Mailer::new(&MailSettings {
            smtp_url: None,
            from: "Oasis <no-reply@oasis.local>".into(),
            outbox: dir.clone(),
            log_links: false,
        })
        .unwrap();
        assert!(!mailer.is_smtp());
        let link = format!("http://127.0.0.1:8000/a/{}/", "x".repeat(100));
        mailer
            .send(&Email {
                to: "fan@example.com".into(),
                subject: "Hi".into(),
                body: format!("Open {link}\n"),
                links: vec![link.clone()],
                ..Email::default()
            })
            .await
            .unwrap();
        let file = std::fs::read_dir(&dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains(&link), "{text}");
        assert!(text.contains("To: fan@example.com"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
