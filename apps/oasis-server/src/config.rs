//! Settings: built-in defaults < optional `oasis.toml` (or the file named by `OASIS_CONFIG`) <
//! environment variables. Every public variable is listed in [`VARS`]; the README's configuration
//! table mirrors it. A missing or malformed value is a [`ConfigError`] naming the variable.
use secrecy::{ExposeSecret, SecretString};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// (environment variable, default, description). The file key is the variable's name in lower
/// case without the `OASIS_` prefix (`OASIS_BIND` → `bind`, `DATABASE_URL` → `database_url`).
pub const VARS: &[(&str, Option<&str>, &str)] = &[
    ("OASIS_ENV", Some("development"), "`development` or `production`"),
    ("OASIS_BIND", Some("127.0.0.1:8000"), "host:port the API listens on"),
    ("OASIS_DATA_DIR", Some("./.oasis"), "data folder: embedded PostgreSQL, media, outbox, generated secret"),
    ("DATABASE_URL", None, "PostgreSQL URL; unset = private cluster in `$OASIS_DATA_DIR/postgres`"),
    ("OASIS_LISTEN_DATABASE_URL", None, "URL of the live-notification listener's own connection (LISTEN needs a session: behind a transaction-mode pooler, PostgreSQL itself or a session-mode pool); unset = the database URL"),
    ("OASIS_PUBLIC_URL", Some("http://127.0.0.1:8000"), "origin of every absolute link (emails, pagination, media URLs)"),
    ("OASIS_SECRET_KEY", None, "signing/encryption root (≥ 32 chars); generated into the data dir in development, required in production"),
    ("OASIS_LOG_FORMAT", Some("text"), "`text` or `json`"),
    ("OASIS_WORKERS", Some("0"), "HTTP worker threads (0 = one per core)"),
    ("OASIS_DB_POOL_SIZE", Some("16"), "PostgreSQL connections in the pool"),
    ("OASIS_BLOCKING_THREADS", Some("0"), "threads per HTTP worker for blocking work (database, bcrypt; 0 = the pool size: more would only wait for a connection, each with its own stack and allocator arena)"),
    ("OASIS_DB_STATEMENT_CACHE", Some("true"), "keep prepared statements per connection (`false` only behind a transaction-mode pooler without prepared-statement support, e.g. pgbouncer < 1.21; see docs/scaling.md)"),
    ("OASIS_JSON_LIMIT", Some("1048576"), "largest JSON request body, bytes"),
    ("OASIS_JWT_ACCESS_TTL", Some("300"), "JWT access token lifetime, seconds"),
    ("OASIS_JWT_REFRESH_TTL", Some("86400"), "JWT refresh token lifetime, seconds"),
    ("OASIS_BCRYPT_COST", Some("12"), "bcrypt cost factor (4–31)"),
    ("OASIS_LOGIN_MAX_FAILURES", Some("10"), "failed logins allowed per account and per client address in the window"),
    ("OASIS_TRUSTED_PROXIES", None, "comma-separated IP addresses of reverse proxies whose X-Forwarded-For (throttling per client address) and X-Forwarded-Proto/-Host (origin of links) are believed"),
    ("OASIS_LOGIN_WINDOW", Some("900"), "failed-login throttle window, seconds"),
    ("OASIS_REGISTRATIONS_PER_HOUR", Some("20"), "new accounts one client address may create per hour (registration and guest checkout; 0 = no limit)"),
    ("OASIS_IDENTITY_MAILS_PER_HOUR", Some("5"), "account emails (verification, password reset, email and bank changes) one account may be sent per hour; more requests answer the same but send nothing"),
    ("OASIS_MAX_PAGE_SIZE", Some("100"), "largest `page_size` of a list (at least 10); more is a 400"),
    ("SMTP_URL", None, "SMTP server, e.g. `smtp://user:pass@host:587`; unset = write `.eml` files to the outbox"),
    ("OASIS_MAIL_FROM", Some("Oasis <no-reply@oasis.local>"), "sender of emails"),
    ("OASIS_MAIL_OUTBOX", None, "folder for `.eml` files when SMTP_URL is unset (default `$OASIS_DATA_DIR/outbox`)"),
    ("GOOGLE_CLIENT_ID", None, "Google OAuth client id (audience of ID tokens)"),
    ("GOOGLE_CLIENT_SECRET", None, "Google OAuth client secret (code exchange)"),
    ("GOOGLE_ISSUER_URL", Some("https://accounts.google.com"), "OpenID Connect issuer"),
    ("FACEBOOK_APP_ID", None, "Facebook app id"),
    ("FACEBOOK_APP_SECRET", None, "Facebook app secret (for debug_token)"),
    ("FACEBOOK_GRAPH_URL", Some("https://graph.facebook.com"), "Graph API base URL"),
    ("RAZORPAY_KEY_ID", None, "Razorpay key id; unset = embedded simulator under /_razorpay"),
    ("RAZORPAY_KEY_SECRET", None, "Razorpay key secret"),
    ("RAZORPAY_WEBHOOK_SECRET", None, "secret of Razorpay webhook signatures"),
    ("RAZORPAY_API_BASE", Some("https://api.razorpay.com"), "Razorpay API base URL"),
    ("OASIS_BILLING_RECONCILE_SECS", Some("300"), "how often each server reconciles waiting payments with Razorpay, seconds"),
    ("OASIS_PLATFORM_FEE_BPS", Some("0"), "platform fee kept from each captured payment, basis points of the gross (0–10000), rounded down to the minor unit"),
    ("OASIS_PAYOUT_HOLD_DAYS", Some("0"), "days a membership charge's net stays on hold before it becomes transferable"),
    ("OASIS_PAYOUT_SWEEP_SECS", Some("60"), "how often each server looks for creators' money to transfer through Razorpay Route, seconds"),
    ("OASIS_PAYOUT_RETRY_SECS", Some("60"), "first delay before a failed Route transfer is tried again (doubles per attempt, at most a day), seconds"),
    ("OASIS_PAYOUT_MAX_ATTEMPTS", Some("5"), "Route transfer attempts per payment before an operator must look"),
    ("OASIS_STATEMENT_CSV_MAX_ROWS", Some("10000"), "most lines one earnings statement CSV export holds (a longer period is refused: narrow it)"),
    ("OASIS_BILLING_PAUSE_LEAD_SECS", Some("60"), "a fan's pause is made at Razorpay this long before the paid period ends (before the renewal charge), seconds"),
    ("OASIS_BILLING_HIATUS_RATE", Some("5"), "a creator's hiatus pauses and resumes its members' subscriptions at Razorpay at most this many calls a second"),
    ("OASIS_BILLING_HIATUS_BATCH", Some("50"), "members one run of the billing.hiatus job works through before it queues itself again (so a crash loses at most one batch's progress)"),
    ("OASIS_BILLING_CHANGE_SKEW_SECS", Some("300"), "a change of tier: Razorpay's prorated charge is accepted if it prorates up to this long after the preview; a change whose answer was lost is resolved from the subscription this long after it was asked, seconds"),
    ("OASIS_BILLING_REPLACE_GRACE_SECS", Some("86400"), "a change of tier by replacement (UPI/eMandate): the new tier's access starts when the old subscription's period ends and lasts this long while the new subscription's first charge is awaited (a late or retried charge leaves no gap; once it is judged, the usual rules apply), seconds"),
    ("OASIS_IDEMPOTENCY_TTL", Some("86400"), "how long a reply stored under an Idempotency-Key is replayed before it expires and is swept, seconds"),
    ("OASIS_MAX_IMAGE_BYTES", Some("10485760"), "largest image upload, bytes"),
    ("OASIS_MAX_ATTACHMENT_BYTES", Some("104857600"), "largest attachment upload, bytes"),
    ("OASIS_JOB_RETENTION_SECS", Some("604800"), "finished background jobs (sent emails, processed webhooks) are deleted after this many seconds"),
    ("OASIS_NOTIFY_EMAILS_PER_HOUR", Some("10"), "notification emails one recipient gets per hour at most (receipts and security mails are never capped; the rest over the cap stay in-app only)"),
    ("OASIS_COMMISSION_PAYMENT_HOLD_SECS", Some("1800"), "how long an unpaid commission request holds its slot before it expires, seconds"),
    ("OASIS_COMMISSION_AUTOCOMPLETE_DAYS", Some("7"), "a delivered commission request completes by itself after this many days"),
    ("OASIS_COMMISSION_SWEEP_SECS", Some("60"), "how often each server expires unpaid commission requests and completes old deliveries, seconds"),
    ("OASIS_JOB_LEASE_SECS", Some("10"), "how long a background job taken by a process stays leased to it without a heartbeat, seconds (running jobs are extended every third of it; a crashed process's jobs are taken over by another within about this long)"),
    ("OASIS_JOB_CONCURRENCY", Some("8"), "background jobs one process runs (and leases) at the same time"),
    ("OASIS_BACKGROUND_JOBS", Some("true"), "run the job queue's workers and the periodic jobs in this process (`false`: a web-only process; another process must run them)"),
    ("OASIS_DB_CHECKOUT_TIMEOUT_MS", Some("5000"), "longest wait for a pooled PostgreSQL connection, milliseconds; then the request answers 503 (database down or pool exhausted)"),
    ("OASIS_DB_STATEMENT_TIMEOUT_MS", Some("15000"), "PostgreSQL `statement_timeout` of the pool's connections, milliseconds (0 = none); a statement running longer is cancelled and its request answers 503"),
    ("OASIS_DB_STATEMENT_TIMEOUT_SCOPE", Some("connection"), "where `OASIS_DB_STATEMENT_TIMEOUT_MS` is set: `connection` (`SET` on each pooled connection) or `role` (also stored at start-up as the role's default in this database, so that every server connection a transaction-mode pooler opens has it; see docs/scaling.md)"),
    ("OASIS_WEBHOOK_BATCH_MAX", Some("64"), "most webhook deliveries one intake statement stores together (deliveries arriving while a statement runs are stored by the next, one commit for all; each is answered after its commit)"),
    ("OASIS_WEBHOOK_WRITERS", Some("2"), "webhook intake writer threads per server process (each runs one intake statement at a time, storing whatever deliveries have arrived)"),
    ("OASIS_JOB_MAX_ATTEMPTS", Some("12"), "failed attempts (retried with exponential back-off, at most an hour apart) after which a background job is parked as a dead letter (`oasis jobs dead`, `oasis jobs retry <id>`)"),
    ("OASIS_SSE_MAX_PER_USER", Some("5"), "live notification streams one user may hold open on one server process (one more: JSON 429)"),
    ("OASIS_SSE_MAX", Some("10000"), "live notification streams one server process holds open in all (one more: JSON 429)"),
    ("OASIS_SSE_HEARTBEAT_SECS", Some("25"), "a live stream sends a heartbeat comment this often, seconds"),
    ("OASIS_SSE_TICKET_SECS", Some("60"), "a stream ticket (`POST /feed/api/notifications/stream-ticket`, for `EventSource`) is valid this long, once, seconds"),
    ("OASIS_SSE_BUFFER", Some("64"), "signals one live stream may have waiting; a client that falls this far behind is disconnected (it resumes with `Last-Event-ID`)"),
    ("OASIS_SSE_LISTEN_POLL_MS", Some("20"), "how often each process's LISTEN connection is checked for new notifications, milliseconds (the live stream's added latency at most, and how long another process's write can take to reach this process's read cache)"),
    ("OASIS_READ_CACHE", Some("true"), "keep the hot reads (feed, profiles, posts, tier lists, who a token is) in memory, each result dropped the moment a write touches what it was read from (docs/scaling.md, \"The read cache\"); `false` behind a transaction-mode pooler, where a pooled connection cannot LISTEN on its own channel"),
    ("OASIS_READ_CACHE_MB", Some("32"), "memory the read cache may use, megabytes (estimated from what it holds; least useful results are dropped first)"),
    ("OASIS_READ_CACHE_MAX_AGE_MS", Some("300000"), "longest a tier list with its paying member counts is kept without a write, milliseconds: a safety net (writes to memberships retire the list at once, and the clock alone changes the counts only at the first period start or end among the memberships they count, until which the list is kept); from between half and three quarters of its time on (spread), the first reader has the list read again in the background while the others are still answered from memory; everything else is kept until a write touches it, and access is decided at each request"),
    ("OASIS_READ_CACHE_TIMELINE_POSTS", Some("50"), "newest posts of each creator the read cache keeps for feeds (a feed page reaching deeper into a creator's posts is read from the database)"),
    ("OASIS_READ_CACHE_FAN_LIKES", Some("500"), "a fan's likes the read cache keeps whole (a fan who liked more has their likes asked post by post)"),
    ("OASIS_NOTIFY_DIGEST_SECS", Some("3600"), "how often each server checks for new-post digests to send (each user gets at most one a UTC day), seconds"),
    ("OASIS_NOTIFY_ACCESS_ENDING_SECS", Some("3600"), "how often each server looks for memberships whose access ends soon, seconds"),
    ("OASIS_NOTIFY_ACCESS_ENDING_DAYS", Some("3"), "a fan is warned this many days before a cancelled-at-cycle-end or one-time membership's access ends"),
];

/// A configuration problem, printed as one line; the process exits with status 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration error: {var}: {message}")]
    Invalid { var: String, message: String },
    #[error("configuration error: {0}")]
    Source(String),
}

impl ConfigError {
    fn invalid(var: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            var: var.to_owned(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

/// Where the statement timeout is set (`OASIS_DB_STATEMENT_TIMEOUT_SCOPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementTimeoutScope {
    /// `SET statement_timeout` on each pooled connection when it opens.
    Connection,
    /// As `Connection`, and stored as the role's default in the database at start-up
    /// (`ALTER ROLE … IN DATABASE … SET`): a transaction-mode pooler lends any server connection,
    /// so a session `SET` does not follow the client there.
    Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct MailSettings {
    pub smtp_url: Option<SecretString>,
    pub from: String,
    pub outbox: PathBuf,
    /// Log the links of emails written to the outbox (development only: links carry secrets).
    pub log_links: bool,
}

#[derive(Debug, Clone)]
pub struct GoogleSettings {
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub issuer_url: String,
}

#[derive(Debug, Clone)]
pub struct FacebookSettings {
    pub app_id: Option<String>,
    pub app_secret: Option<SecretString>,
    pub graph_url: String,
}

#[derive(Debug, Clone)]
pub struct RazorpaySettings {
    /// `None`: run the embedded simulator.
    pub key_id: Option<String>,
    pub key_secret: Option<SecretString>,
    pub webhook_secret: Option<SecretString>,
    pub api_base: String,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub env: Environment,
    pub bind: String,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    /// The notification listener's connection (`None` = the database's URL).
    pub listen_database_url: Option<String>,
    pub public_url: String,
    /// `None` until [`Settings::resolve_secret_key`] ran (development without a key).
    pub secret_key: Option<SecretString>,
    pub log_format: LogFormat,
    pub workers: usize,
    pub db_pool_size: u32,
    /// Blocking threads per HTTP worker (`0` = `db_pool_size`).
    pub blocking_threads: usize,
    /// Prepared statements cached per pooled connection (docs/scaling.md: pgbouncer modes).
    pub db_statement_cache: bool,
    pub json_limit: usize,
    /// Webhook intake (`workflows::inbox`): deliveries per statement, statements at once.
    pub webhook_batch_max: usize,
    pub webhook_writers: usize,
    pub jwt_access_ttl: i64,
    pub jwt_refresh_ttl: i64,
    pub bcrypt_cost: u32,
    pub login_max_failures: u32,
    pub login_window_secs: i64,
    /// New accounts per client address and hour (registration and guest checkout); 0 = no limit.
    pub registrations_per_hour: u32,
    /// Account emails (verification, reset, changes) one account may be sent per hour.
    pub identity_mails_per_hour: u32,
    /// Largest `page_size` of a list.
    pub max_page_size: i64,
    /// Peers whose `X-Forwarded-For` names the real client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub mail: MailSettings,
    pub google: GoogleSettings,
    pub facebook: FacebookSettings,
    pub razorpay: RazorpaySettings,
    pub billing_reconcile_secs: u64,
    /// The earnings ledger's platform fee and membership hold.
    pub ledger: oasis_billing::ledger::Policy,
    /// How often the payout sweep looks for money to transfer (`OASIS_PAYOUT_SWEEP_SECS`).
    pub payout_sweep_secs: u64,
    /// Most lines of one statement CSV export.
    pub statement_csv_max_rows: i64,
    /// A fan's pause is made at Razorpay this long before the paid period ends, seconds.
    pub billing_pause_lead_secs: i64,
    /// `OASIS_BILLING_HIATUS_RATE`: Razorpay calls a second.
    pub billing_hiatus_rate: i64,
    /// `OASIS_BILLING_HIATUS_BATCH`.
    pub billing_hiatus_batch: i64,
    /// `OASIS_BILLING_CHANGE_SKEW_SECS`.
    pub billing_change_skew_secs: i64,
    /// `OASIS_BILLING_REPLACE_GRACE_SECS`.
    pub billing_replace_grace_secs: i64,
    /// How long a reply stored under an `Idempotency-Key` is replayed (then swept), seconds.
    pub idempotency_ttl_secs: i64,
    pub max_image_bytes: usize,
    pub max_attachment_bytes: usize,
    /// Finished jobs older than this are deleted.
    pub job_retention_secs: i64,
    /// See `OASIS_COMMISSION_PAYMENT_HOLD_SECS`.
    pub commission_payment_hold_secs: i64,
    /// See `OASIS_COMMISSION_AUTOCOMPLETE_DAYS`.
    pub commission_autocomplete_days: i64,
    /// See `OASIS_COMMISSION_SWEEP_SECS`.
    pub commission_sweep_secs: u64,
    /// Failed attempts after which a job becomes a dead letter.
    pub job_max_attempts: i32,
    /// See `OASIS_JOB_LEASE_SECS`.
    pub job_lease_secs: i64,
    /// See `OASIS_JOB_CONCURRENCY`.
    pub job_concurrency: usize,
    /// See `OASIS_DB_CHECKOUT_TIMEOUT_MS`.
    pub db_checkout_timeout_ms: u64,
    /// See `OASIS_DB_STATEMENT_TIMEOUT_MS` (0 = none).
    pub db_statement_timeout_ms: u64,
    /// See `OASIS_DB_STATEMENT_TIMEOUT_SCOPE`.
    pub db_statement_timeout_scope: StatementTimeoutScope,
    /// Per-recipient cap of optional notification emails per hour.
    pub notify_emails_per_hour: i64,
    /// The live notification stream's limits.
    pub sse: SseSettings,
    /// How often the new-post digest and the access-ends warnings are looked for, seconds.
    pub notify_digest_secs: u64,
    pub notify_access_ending_secs: u64,
    /// Warn this many days before access ends.
    pub notify_access_ending_days: i64,
    /// Run background workers (job queue, reconciliation). Tests may turn them off.
    pub background_jobs: bool,
    pub read_cache: ReadCacheSettings,
}

/// `OASIS_READ_CACHE*`: the hot reads' in-memory cache (`crate::read_cache`).
#[derive(Debug, Clone, Copy)]
pub struct ReadCacheSettings {
    pub enabled: bool,
    pub bytes: u64,
    pub max_age_ms: u64,
    pub timeline_posts: i64,
    pub fan_likes: i64,
}

/// `OASIS_SSE_*`: the live notification stream, per server process.
#[derive(Debug, Clone, Copy)]
pub struct SseSettings {
    pub max_per_user: usize,
    pub max_total: usize,
    pub heartbeat_secs: u64,
    pub ticket_secs: i64,
    pub buffer: usize,
    pub listen_poll_ms: u64,
}

fn file_key(var: &str) -> String {
    var.strip_prefix("OASIS_")
        .unwrap_or(var)
        .to_ascii_lowercase()
}

/// Raw layered values, looked up by variable name.
struct Raw(config::Config);

impl Raw {
    fn get(&self, var: &str) -> Option<String> {
        match self.0.get::<config::Value>(&file_key(var)) {
            Ok(v) => {
                let s = v.into_string().ok()?;
                let s = s.trim().to_owned();
                (!s.is_empty()).then_some(s)
            }
            Err(_) => None,
        }
    }
    fn req(&self, var: &str) -> Result<String, ConfigError> {
        self.get(var)
            .ok_or_else(|| ConfigError::invalid(var, "must be set"))
    }
    fn parse<T: FromStr>(&self, var: &str, what: &str) -> Result<T, ConfigError> {
        let s = self.req(var)?;
        s.parse()
            .map_err(|_| ConfigError::invalid(var, format!("expected {what}, got {s:?}")))
    }
    fn secret(&self, var: &str) -> Option<SecretString> {
        self.get(var).map(SecretString::from)
    }
}

impl Settings {
    /// Loads settings from defaults, the optional file and the process environment.
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_from(|k| std::env::var(k).ok())
    }

    /// Loads settings with `env` standing in for the environment (tests).
    pub fn load_from(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut b = config::Config::builder();
        for (var, default, _) in VARS {
            if let Some(d) = default {
                b = b
                    .set_default(file_key(var), *d)
                    .map_err(|e| ConfigError::Source(e.to_string()))?;
            }
        }
        let file = env("OASIS_CONFIG").unwrap_or_else(|| "oasis.toml".to_owned());
        b = b.add_source(
            config::File::new(&file, config::FileFormat::Toml)
                .required(env("OASIS_CONFIG").is_some()),
        );
        for (var, _, _) in VARS {
            if let Some(v) = env(var) {
                b = b
                    .set_override(file_key(var), v)
                    .map_err(|e| ConfigError::Source(e.to_string()))?;
            }
        }
        let raw = Raw(b
            .build()
            .map_err(|e| ConfigError::Source(format!("{file}: {e}")))?);
        Self::from_raw(&raw)
    }

    fn from_raw(raw: &Raw) -> Result<Self, ConfigError> {
        let env = match raw.req("OASIS_ENV")?.as_str() {
            "development" | "dev" => Environment::Development,
            "production" | "prod" => Environment::Production,
            other => {
                return Err(ConfigError::invalid(
                    "OASIS_ENV",
                    format!("expected development or production, got {other:?}"),
                ))
            }
        };
        let bind = raw.req("OASIS_BIND")?;
        match bind.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
            _ => {
                return Err(ConfigError::invalid(
                    "OASIS_BIND",
                    format!("expected host:port, got {bind:?}"),
                ))
            }
        }
        let public_url = raw.req("OASIS_PUBLIC_URL")?;
        match url::Url::parse(&public_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => {
                return Err(ConfigError::invalid(
                    "OASIS_PUBLIC_URL",
                    format!("expected an http(s) URL, got {public_url:?}"),
                ))
            }
        }
        let database_url = raw.get("DATABASE_URL");
        if let Some(url) = &database_url {
            oasis_db::admin::database_name(url)
                .map_err(|e| ConfigError::invalid("DATABASE_URL", e.to_string()))?;
        }
        let listen_database_url = raw.get("OASIS_LISTEN_DATABASE_URL");
        if let Some(url) = &listen_database_url {
            oasis_db::admin::database_name(url)
                .map_err(|e| ConfigError::invalid("OASIS_LISTEN_DATABASE_URL", e.to_string()))?;
        }
        let secret_key = raw.secret("OASIS_SECRET_KEY");
        if let Some(k) = &secret_key {
            if k.expose_secret().len() < 32 {
                return Err(ConfigError::invalid(
                    "OASIS_SECRET_KEY",
                    "must be at least 32 characters",
                ));
            }
        } else if env == Environment::Production {
            return Err(ConfigError::invalid(
                "OASIS_SECRET_KEY",
                "must be set when OASIS_ENV=production",
            ));
        }
        let log_format = match raw.req("OASIS_LOG_FORMAT")?.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::invalid(
                    "OASIS_LOG_FORMAT",
                    format!("expected text or json, got {other:?}"),
                ))
            }
        };
        let db_statement_timeout_scope = match raw.req("OASIS_DB_STATEMENT_TIMEOUT_SCOPE")?.as_str()
        {
            "connection" => StatementTimeoutScope::Connection,
            "role" => StatementTimeoutScope::Role,
            other => {
                return Err(ConfigError::invalid(
                    "OASIS_DB_STATEMENT_TIMEOUT_SCOPE",
                    format!("expected connection or role, got {other:?}"),
                ))
            }
        };
        let positive_as = |var: &str, what: &str| -> Result<i64, ConfigError> {
            let v: i64 = raw.parse(var, what)?;
            if v <= 0 {
                return Err(ConfigError::invalid(var, "must be greater than 0"));
            }
            Ok(v)
        };
        let positive = |var: &str| -> Result<i64, ConfigError> {
            let v: i64 = raw.parse(var, "a whole number of seconds")?;
            if v <= 0 {
                return Err(ConfigError::invalid(var, "must be greater than 0"));
            }
            Ok(v)
        };
        let bcrypt_cost: u32 = raw.parse("OASIS_BCRYPT_COST", "a number from 4 to 31")?;
        if !(4..=31).contains(&bcrypt_cost) {
            return Err(ConfigError::invalid(
                "OASIS_BCRYPT_COST",
                format!("expected a number from 4 to 31, got {bcrypt_cost}"),
            ));
        }
        let db_pool_size: u32 = raw.parse("OASIS_DB_POOL_SIZE", "a positive number")?;
        if db_pool_size == 0 {
            return Err(ConfigError::invalid(
                "OASIS_DB_POOL_SIZE",
                "must be at least 1",
            ));
        }
        let db_statement_cache: bool = raw.parse("OASIS_DB_STATEMENT_CACHE", "true or false")?;
        let data_dir = PathBuf::from(raw.req("OASIS_DATA_DIR")?);
        let razorpay_key_id = raw.get("RAZORPAY_KEY_ID");
        let razorpay_key_secret = raw.secret("RAZORPAY_KEY_SECRET");
        if razorpay_key_id.is_some() && razorpay_key_secret.is_none() {
            return Err(ConfigError::invalid(
                "RAZORPAY_KEY_SECRET",
                "must be set when RAZORPAY_KEY_ID is set",
            ));
        }
        let razorpay_webhook_secret = raw.secret("RAZORPAY_WEBHOOK_SECRET");
        if razorpay_key_id.is_some() && razorpay_webhook_secret.is_none() {
            return Err(ConfigError::invalid(
                "RAZORPAY_WEBHOOK_SECRET",
                "must be set when RAZORPAY_KEY_ID is set",
            ));
        }
        let smtp_url = raw.secret("SMTP_URL");
        if let Some(u) = &smtp_url {
            if url::Url::parse(u.expose_secret())
                .map(|u| !matches!(u.scheme(), "smtp" | "smtps"))
                .unwrap_or(true)
            {
                return Err(ConfigError::invalid(
                    "SMTP_URL",
                    "expected smtp://[user:pass@]host[:port] or smtps://…",
                ));
            }
        }
        let outbox = raw
            .get("OASIS_MAIL_OUTBOX")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("outbox"));
        Ok(Self {
            env,
            bind,
            database_url,
            listen_database_url,
            public_url: public_url.trim_end_matches('/').to_owned(),
            secret_key,
            log_format,
            workers: raw.parse("OASIS_WORKERS", "a number of threads")?,
            db_pool_size,
            blocking_threads: raw.parse("OASIS_BLOCKING_THREADS", "a number of threads")?,
            db_statement_cache,
            json_limit: raw.parse("OASIS_JSON_LIMIT", "a number of bytes")?,
            webhook_batch_max: positive_as("OASIS_WEBHOOK_BATCH_MAX", "a whole number")? as usize,
            webhook_writers: positive_as("OASIS_WEBHOOK_WRITERS", "a whole number")? as usize,
            jwt_access_ttl: positive("OASIS_JWT_ACCESS_TTL")?,
            jwt_refresh_ttl: positive("OASIS_JWT_REFRESH_TTL")?,
            bcrypt_cost,
            login_max_failures: raw.parse("OASIS_LOGIN_MAX_FAILURES", "a number")?,
            login_window_secs: positive("OASIS_LOGIN_WINDOW")?,
            registrations_per_hour: raw.parse("OASIS_REGISTRATIONS_PER_HOUR", "a number")?,
            identity_mails_per_hour: raw.parse("OASIS_IDENTITY_MAILS_PER_HOUR", "a number")?,
            max_page_size: match raw.parse::<i64>("OASIS_MAX_PAGE_SIZE", "a number of items")? {
                n if n >= oasis_kernel::DEFAULT_PAGE_SIZE => n,
                _ => {
                    return Err(ConfigError::invalid(
                        "OASIS_MAX_PAGE_SIZE",
                        format!(
                            "must be at least {} (the default page size)",
                            oasis_kernel::DEFAULT_PAGE_SIZE
                        ),
                    ))
                }
            },
            trusted_proxies: raw
                .get("OASIS_TRUSTED_PROXIES")
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|a| !a.is_empty())
                        .map(|a| {
                            a.parse().map_err(|_| {
                                ConfigError::invalid(
                                    "OASIS_TRUSTED_PROXIES",
                                    format!("expected comma-separated IP addresses, got {a:?}"),
                                )
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?
                .unwrap_or_default(),
            mail: MailSettings {
                smtp_url,
                from: raw.req("OASIS_MAIL_FROM")?,
                outbox,
                log_links: env == Environment::Development,
            },
            google: GoogleSettings {
                client_id: raw.get("GOOGLE_CLIENT_ID"),
                client_secret: raw.secret("GOOGLE_CLIENT_SECRET"),
                issuer_url: raw.req("GOOGLE_ISSUER_URL")?,
            },
            facebook: FacebookSettings {
                app_id: raw.get("FACEBOOK_APP_ID"),
                app_secret: raw.secret("FACEBOOK_APP_SECRET"),
                graph_url: raw.req("FACEBOOK_GRAPH_URL")?,
            },
            razorpay: RazorpaySettings {
                key_id: razorpay_key_id,
                key_secret: razorpay_key_secret,
                webhook_secret: razorpay_webhook_secret,
                api_base: raw.req("RAZORPAY_API_BASE")?,
            },
            billing_reconcile_secs: positive("OASIS_BILLING_RECONCILE_SECS")? as u64,
            ledger: oasis_billing::ledger::Policy {
                platform_fee_bps: {
                    let bps: u32 = raw.parse("OASIS_PLATFORM_FEE_BPS", "basis points")?;
                    if bps > 10_000 {
                        return Err(ConfigError::invalid(
                            "OASIS_PLATFORM_FEE_BPS",
                            format!("expected 0..=10000 basis points, got {bps}"),
                        ));
                    }
                    bps
                },
                hold_days: raw.parse("OASIS_PAYOUT_HOLD_DAYS", "a number of days")?,
                payouts: oasis_billing::workflows::payouts::PayoutPolicy {
                    retry_base_secs: positive("OASIS_PAYOUT_RETRY_SECS")? as u64,
                    max_attempts: i32::try_from(positive("OASIS_PAYOUT_MAX_ATTEMPTS")?)
                        .unwrap_or(i32::MAX),
                },
            },
            payout_sweep_secs: positive("OASIS_PAYOUT_SWEEP_SECS")? as u64,
            statement_csv_max_rows: positive("OASIS_STATEMENT_CSV_MAX_ROWS")?,
            billing_pause_lead_secs: positive("OASIS_BILLING_PAUSE_LEAD_SECS")?,
            billing_change_skew_secs: positive("OASIS_BILLING_CHANGE_SKEW_SECS")?,
            billing_replace_grace_secs: positive("OASIS_BILLING_REPLACE_GRACE_SECS")?,
            billing_hiatus_rate: positive("OASIS_BILLING_HIATUS_RATE")?,
            billing_hiatus_batch: positive("OASIS_BILLING_HIATUS_BATCH")?,
            idempotency_ttl_secs: positive("OASIS_IDEMPOTENCY_TTL")?,
            max_image_bytes: raw.parse("OASIS_MAX_IMAGE_BYTES", "a number of bytes")?,
            max_attachment_bytes: raw.parse("OASIS_MAX_ATTACHMENT_BYTES", "a number of bytes")?,
            job_retention_secs: positive("OASIS_JOB_RETENTION_SECS")?,
            notify_emails_per_hour: positive("OASIS_NOTIFY_EMAILS_PER_HOUR")?,
            commission_payment_hold_secs: positive("OASIS_COMMISSION_PAYMENT_HOLD_SECS")?,
            commission_autocomplete_days: positive("OASIS_COMMISSION_AUTOCOMPLETE_DAYS")?,
            commission_sweep_secs: positive("OASIS_COMMISSION_SWEEP_SECS")? as u64,
            job_max_attempts: match raw.parse::<i32>("OASIS_JOB_MAX_ATTEMPTS", "a whole number")? {
                n if n >= 1 => n,
                _ => {
                    return Err(ConfigError::invalid(
                        "OASIS_JOB_MAX_ATTEMPTS",
                        "must be at least 1",
                    ))
                }
            },
            sse: SseSettings {
                max_per_user: positive("OASIS_SSE_MAX_PER_USER")? as usize,
                max_total: positive("OASIS_SSE_MAX")? as usize,
                heartbeat_secs: positive("OASIS_SSE_HEARTBEAT_SECS")? as u64,
                ticket_secs: positive("OASIS_SSE_TICKET_SECS")?,
                buffer: positive("OASIS_SSE_BUFFER")? as usize,
                listen_poll_ms: positive("OASIS_SSE_LISTEN_POLL_MS")? as u64,
            },
            notify_digest_secs: positive("OASIS_NOTIFY_DIGEST_SECS")? as u64,
            notify_access_ending_secs: positive("OASIS_NOTIFY_ACCESS_ENDING_SECS")? as u64,
            notify_access_ending_days: positive("OASIS_NOTIFY_ACCESS_ENDING_DAYS")?,
            job_lease_secs: positive("OASIS_JOB_LEASE_SECS")?,
            job_concurrency: match raw
                .parse::<usize>("OASIS_JOB_CONCURRENCY", "a number of jobs")?
            {
                n if n >= 1 => n,
                _ => {
                    return Err(ConfigError::invalid(
                        "OASIS_JOB_CONCURRENCY",
                        "must be at least 1",
                    ))
                }
            },
            db_checkout_timeout_ms: match raw
                .parse::<u64>("OASIS_DB_CHECKOUT_TIMEOUT_MS", "a number of milliseconds")?
            {
                n if n >= 1 => n,
                _ => {
                    return Err(ConfigError::invalid(
                        "OASIS_DB_CHECKOUT_TIMEOUT_MS",
                        "must be at least 1",
                    ))
                }
            },
            db_statement_timeout_ms: raw
                .parse("OASIS_DB_STATEMENT_TIMEOUT_MS", "a number of milliseconds")?,
            db_statement_timeout_scope,
            background_jobs: raw.parse("OASIS_BACKGROUND_JOBS", "true or false")?,
            read_cache: ReadCacheSettings {
                enabled: raw.parse("OASIS_READ_CACHE", "true or false")?,
                bytes: positive_as("OASIS_READ_CACHE_MB", "a whole number of megabytes")? as u64
                    * 1024
                    * 1024,
                max_age_ms: positive_as(
                    "OASIS_READ_CACHE_MAX_AGE_MS",
                    "a whole number of milliseconds",
                )? as u64,
                timeline_posts: positive_as("OASIS_READ_CACHE_TIMELINE_POSTS", "a whole number")?,
                fan_likes: positive_as("OASIS_READ_CACHE_FAN_LIKES", "a whole number")?,
            },
            data_dir,
        })
    }

    /// In development without `OASIS_SECRET_KEY`, reads or generates `$OASIS_DATA_DIR/secret_key`
    /// (warning loudly). Returns the key.
    pub fn resolve_secret_key(&mut self) -> Result<SecretString, ConfigError> {
        if let Some(k) = &self.secret_key {
            return Ok(k.clone());
        }
        let path = self.data_dir.join("secret_key");
        let key = read_or_create_secret(&path).map_err(|e| {
            ConfigError::invalid(
                "OASIS_SECRET_KEY",
                format!("unset, and {} cannot be created: {e}", path.display()),
            )
        })?;
        tracing::warn!(
            path = %path.display(),
            "OASIS_SECRET_KEY is not set: using a development key stored in the data dir (set OASIS_SECRET_KEY in production)"
        );
        let key = SecretString::from(key);
        self.secret_key = Some(key.clone());
        Ok(key)
    }

    /// The secret root key; panics only if called before [`Settings::resolve_secret_key`].
    pub fn secret(&self) -> &SecretString {
        self.secret_key
            .as_ref()
            .expect("secret key resolved at start-up")
    }

    /// The connection pool's settings.
    pub fn pool_options(&self) -> oasis_db::PoolOptions {
        oasis_db::PoolOptions {
            max_size: self.db_pool_size,
            statement_cache: self.db_statement_cache,
            checkout_timeout: std::time::Duration::from_millis(self.db_checkout_timeout_ms),
            statement_timeout_ms: self.db_statement_timeout_ms,
            listen_own_touches: self.read_cache.enabled,
        }
    }

    pub fn embedded_razorpay(&self) -> bool {
        self.razorpay.key_id.is_none()
    }
}

fn read_or_create_secret(path: &Path) -> std::io::Result<String> {
    if let Ok(s) = std::fs::read_to_string(path) {
        let s = s.trim().to_owned();
        if s.len() >= 32 {
            return Ok(s);
        }
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let bytes: [u8; 32] = rand::random();
    let key = hex::encode(bytes);
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(key.as_bytes())?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .chain([("OASIS_CONFIG_UNUSED".to_owned(), String::new())])
            .collect();
        Settings::load_from(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_need_no_configuration() {
        let s = load(&[]).unwrap();
        assert_eq!(s.bind, "127.0.0.1:8000");
        assert_eq!(s.public_url, "http://127.0.0.1:8000");
        assert_eq!(s.jwt_access_ttl, 300);
        assert_eq!(s.idempotency_ttl_secs, 24 * 3600);
        assert!(s.embedded_razorpay());
        assert_eq!(s.mail.outbox, PathBuf::from("./.oasis/outbox"));
        assert_eq!(s.registrations_per_hour, 20);
        let s = load(&[("OASIS_REGISTRATIONS_PER_HOUR", "500")]).unwrap();
        assert_eq!(s.registrations_per_hour, 500);
    }

    #[test]
    fn malformed_values_name_the_variable() {
        for (var, val) in [
            ("OASIS_BIND", "nonsense"),
            ("OASIS_JWT_ACCESS_TTL", "five"),
            ("OASIS_BCRYPT_COST", "99"),
            ("OASIS_IDEMPOTENCY_TTL", "0"),
            ("OASIS_LOG_FORMAT", "xml"),
            ("DATABASE_URL", "mysql://x/y"),
            ("OASIS_SECRET_KEY", "short"),
            ("OASIS_TRUSTED_PROXIES", "10.0.0.1,proxy"),
            ("OASIS_REGISTRATIONS_PER_HOUR", "-1"),
            ("OASIS_JOB_LEASE_SECS", "0"),
            ("OASIS_JOB_CONCURRENCY", "0"),
            ("OASIS_DB_CHECKOUT_TIMEOUT_MS", "0"),
            ("OASIS_DB_STATEMENT_TIMEOUT_MS", "soon"),
        ] {
            let err = load(&[(var, val)]).unwrap_err().to_string();
            assert!(err.contains(var), "{err} should name {var}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn readme_configuration_table_lists_every_variable() {
        let readme = include_str!("../../../README.md");
        for (var, default, _) in VARS {
            let row = readme
                .lines()
                .find(|l| l.starts_with(&format!("| `{var}` |")))
                .unwrap_or_else(|| panic!("README's configuration table lacks {var}"));
            if let Some(d) = default {
                assert!(
                    row.contains(&format!("`{d}`")),
                    "README default of {var}: {row}"
                );
            }
        }
    }

    #[test]
    fn production_requires_a_secret_key() {
        let err = load(&[("OASIS_ENV", "production")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("OASIS_SECRET_KEY"));
    }
}
