use clap::{Parser, Subcommand};
use oasis_server::{config::Settings, startup, telemetry, Application};
use std::process::ExitCode;

/// Oasis: creator memberships on Razorpay.
#[derive(Parser)]
#[command(name = "oasis", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API (default).
    Serve,
    /// Create the database if missing and apply pending migrations, then exit.
    Migrate,
    /// Billing operations (Razorpay reconciliation, webhook replay).
    Billing {
        #[command(subcommand)]
        command: BillingCommand,
    },
    /// Creators' payouts that Route does not make (non-INR balances).
    Payouts {
        #[command(subcommand)]
        command: PayoutsCommand,
    },
    /// The background job queue: dead letters and periodic jobs.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
}

#[derive(Subcommand)]
enum PayoutsCommand {
    /// List non-INR balances awaiting a manual payout (creator id, currency, minor units).
    Pending,
    /// List the most recent Route transfer attempts (every creator's, or one's), newest first.
    Transfers {
        /// Only this creator's.
        #[arg(long)]
        creator: Option<i64>,
        /// How many (default 100).
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Record that a manual payout was made (idempotent per reference).
    MarkPaid {
        /// The creator's user id.
        creator_id: i64,
        /// ISO currency code, e.g. USD.
        currency: String,
        /// Amount paid, in minor units (cents).
        amount: i64,
        /// The bank's or the operator's reference of the payment.
        #[arg(long)]
        reference: String,
    },
}

#[derive(Subcommand)]
enum JobsCommand {
    /// List the dead letters: jobs parked after OASIS_JOB_MAX_ATTEMPTS failures.
    Dead,
    /// Re-run one dead letter now, in this process.
    Retry {
        /// The job id (from `oasis jobs dead`).
        id: i64,
    },
    /// Run a periodic job now (without a name: list them).
    Run {
        /// e.g. `billing.reconcile`.
        name: Option<String>,
    },
}

#[derive(Subcommand)]
enum BillingCommand {
    /// Fetch from Razorpay the subscriptions and orders still waiting locally and apply their
    /// true state (also runs every 5 minutes inside `serve`).
    Reconcile,
    /// Reprocess a stored webhook event (by X-Razorpay-Event-Id, or inbox row id).
    Replay {
        /// The event id.
        event_id: String,
    },
    /// List payments flagged for an operator: they did not match the amount or currency their
    /// order or plan asked (nothing was granted for them).
    Flags,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(settings.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(settings).await,
            Command::Migrate => migrate(settings).await,
            Command::Billing { command } => billing(settings, command).await,
            Command::Payouts { command } => payouts(settings, command).await,
            Command::Jobs { command } => jobs(settings, command).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, msg)) => {
            eprintln!("{msg}");
            ExitCode::from(code)
        }
    }
}

fn exit_code(e: &startup::StartupError) -> u8 {
    match e {
        startup::StartupError::Config(_) | startup::StartupError::Cluster(_) => 2,
        _ => 1,
    }
}

async fn serve(settings: Settings) -> Result<(), (u8, String)> {
    let app = Application::build(settings)
        .await
        .map_err(|e| (exit_code(&e), format!("oasis: {e}")))?;
    tracing::info!(port = app.port(), "oasis is listening");
    app.run_until_stopped()
        .await
        .map_err(|e| (1, format!("oasis: {e}")))
}

async fn migrate(settings: Settings) -> Result<(), (u8, String)> {
    let db = tokio::task::spawn_blocking(move || startup::prepare_database(&settings))
        .await
        .map_err(|e| (1, e.to_string()))?
        .map_err(|e| (exit_code(&e), format!("oasis: {e}")))?;
    if let Some(cluster) = db.cluster {
        if cluster.started_here() {
            let _ = tokio::task::spawn_blocking(move || cluster.stop()).await;
        }
    }
    println!("migrations are up to date");
    Ok(())
}

async fn billing(settings: Settings, command: BillingCommand) -> Result<(), (u8, String)> {
    use oasis_server::workflows::cli;
    let result = match command {
        BillingCommand::Reconcile => cli::cli_reconcile(settings).await,
        BillingCommand::Replay { event_id } => cli::cli_replay(settings, &event_id).await,
        BillingCommand::Flags => cli::cli_flags(settings).await,
    };
    match result {
        Ok(report) => {
            println!("{report}");
            Ok(())
        }
        Err(e) => Err((1, format!("oasis billing: {e}"))),
    }
}

async fn payouts(settings: Settings, command: PayoutsCommand) -> Result<(), (u8, String)> {
    use oasis_server::workflows::payouts;
    let result = match command {
        PayoutsCommand::Pending => payouts::cli_pending(settings).await,
        PayoutsCommand::Transfers { creator, limit } => {
            payouts::cli_transfers(settings, creator, limit).await
        }
        PayoutsCommand::MarkPaid {
            creator_id,
            currency,
            amount,
            reference,
        } => payouts::cli_mark_paid(settings, creator_id, &currency, amount, &reference).await,
    };
    match result {
        Ok(report) => {
            println!("{report}");
            Ok(())
        }
        Err(e) => Err((1, format!("oasis payouts: {e}"))),
    }
}

async fn jobs(settings: Settings, command: JobsCommand) -> Result<(), (u8, String)> {
    use oasis_server::workflows::cli;
    let result = match command {
        JobsCommand::Dead => cli::cli_jobs_dead(settings).await,
        JobsCommand::Retry { id } => cli::cli_jobs_retry(settings, id).await,
        JobsCommand::Run { name } => cli::cli_jobs_run(settings, name.as_deref()).await,
    };
    match result {
        Ok(report) => {
            println!("{report}");
            Ok(())
        }
        Err(e) => Err((1, format!("oasis jobs: {e}"))),
    }
}
