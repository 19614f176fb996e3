//! `razorpay-sim --bind 127.0.0.1:PORT --key-id ID --key-secret SECRET --webhook-secret SECRET [--webhook-url URL] [--state-file PATH]`

use clap::Parser;
use razorpay_sim::SimConfig;
use std::path::PathBuf;

/// A stateful simulator of the Razorpay API (see apps/razorpay-sim/README.md).
#[derive(Parser, Debug)]
#[command(name = "razorpay-sim", version, about)]
struct Cli {
    /// Address to listen on, e.g. 127.0.0.1:9090 (port 0 picks a free one).
    #[arg(long)]
    bind: String,
    /// Accepted API key id (HTTP Basic user).
    #[arg(long)]
    key_id: String,
    /// Accepted API key secret; also signs Checkout responses.
    #[arg(long)]
    key_secret: String,
    /// Secret that signs webhooks (X-Razorpay-Signature).
    #[arg(long)]
    webhook_secret: String,
    /// Where to POST webhooks.
    #[arg(long)]
    webhook_url: Option<String>,
    /// Persist state to this JSON file (loaded at start if it exists).
    #[arg(long)]
    state_file: Option<PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    let config = SimConfig {
        key_id: cli.key_id,
        key_secret: cli.key_secret,
        webhook_secret: cli.webhook_secret,
        webhook_url: cli.webhook_url,
        state_file: cli.state_file,
    };
    let (_sim, addr, handle) = razorpay_sim::spawn(config, &cli.bind).await?;
    println!("razorpay-sim listening on http://{addr}");
    tokio::signal::ctrl_c().await?;
    handle.stop(true).await;
    Ok(())
}
