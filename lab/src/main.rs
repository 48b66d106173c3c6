//! The `rpo-lab` command: `rpo-lab demo --exporter PATH` starts a three-region PostgreSQL
//! lab (primary, replica, cascading replica) and a two-region MariaDB lab (primary,
//! replica), sets up the exporter's accounts and heartbeat schema as `rpo-exporter
//! schema` prints it, and runs the exporter against it until Ctrl-C/SIGTERM: one exporter
//! watching both clusters (with TCP health probes per region), or with `--regions` the
//! global layout — a sidecar exporter beside each database, a Prometheus per region, a
//! global Prometheus federating them and two clustered Alertmanagers (see
//! [`demo::regions`]).

mod demo;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "Real local servers for rpo-exporter's tests and demo")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the exporter against a live three-region PostgreSQL and two-region MariaDB lab.
    Demo {
        /// The rpo-exporter binary.
        #[arg(long)]
        exporter: PathBuf,
        /// Where the exporter serves /metrics (loopback only). Not with --regions, whose
        /// exporters take free ports.
        #[arg(long, default_value = "127.0.0.1:10087", conflicts_with = "regions")]
        listen: SocketAddr,
        /// The global layout: a sidecar exporter beside each database, a Prometheus per
        /// region with the regional rules, a global Prometheus federating them with the
        /// global rules, and two clustered Alertmanagers.
        #[arg(long)]
        regions: bool,
        /// Keep the lab directories (data, logs, configs) after exit.
        #[arg(long)]
        keep: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let Cmd::Demo { exporter, listen, regions, keep } = Cli::parse().command;
    let result = if regions {
        demo::regions::run(&exporter, keep).await
    } else {
        demo::plain::run(&exporter, listen, keep).await
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rpo-lab demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}
