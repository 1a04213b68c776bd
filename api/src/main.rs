//! The `cnscd` binary: parse the command line, start telemetry, dispatch.
/// mimalloc rather than the system allocator: a GraphQL response is built from many small
/// short-lived values, and glibc's malloc spent about a third of the nested-list benchmark's
/// time in its slow paths (consolidation under concurrent requests).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = cnscd_api::cli::Cli::parse_args();
    let _telemetry = cnscd_api::telemetry::init(&cli.log, cli.log_format);
    cnscd_api::cli::run(cli).await
}
