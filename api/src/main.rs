//! The `cnscd` binary: parse the command line, start telemetry, dispatch.
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = cnscd_api::cli::Cli::parse();
    cnscd_api::telemetry::init(&cli.log, cli.log_format);
    cnscd_api::cli::run(cli).await
}
