//! `rpo-lab demo`: one exporter watching every node of both clusters, with TCP health
//! probes per region, on `--listen` (127.0.0.1:10087 by default).

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Result};

use super::{stop_all, wait_for_stop, Databases, Exporter};

pub(crate) async fn run(exporter: &Path, listen: SocketAddr, keep: bool) -> Result<ExitCode> {
    if !listen.ip().is_loopback() {
        bail!("--listen {listen}: only loopback addresses are allowed");
    }
    let dbs = Databases::start(exporter).await?;
    let config_file = dbs.write_config("rpo-exporter.yaml", |_| true, true)?;
    let mut exporters = [Exporter::start(exporter, &config_file, listen, None, "of the demo").await?];
    print_banner(&dbs, listen, &config_file);

    let code = match wait_for_stop(&mut exporters).await? {
        Some((_, status)) => {
            eprintln!("rpo-lab: the exporter exited by itself ({status}); stopping the lab");
            ExitCode::FAILURE
        }
        None => {
            eprintln!("rpo-lab: stopping the exporter and the lab");
            ExitCode::SUCCESS
        }
    };
    stop_all(&mut exporters).await;
    dbs.stop(keep).await;
    Ok(code)
}

fn print_banner(dbs: &Databases, listen: SocketAddr, config_file: &Path) {
    let nodes = dbs.node_lines(|_, _| String::new());
    let my_euw1 = dbs.client_command("my-euw1");
    let euw1 = dbs.client_command("pg-euw1");
    println!(
        "\n\
         rpo-lab demo is running\n\
         \x20 metrics:  http://{listen}/metrics\n\
         \x20 config:   {}\n\
         \x20 lab dirs: {} (server logs under each node's directory)\n\
         \x20 nodes:\n{nodes}\n\
         Things to try:\n\
         \x20 # pause replay on pg-euw1: its lag grows; pg-apse1 keeps up (pg-euw1 relays WAL it received, replayed or not):\n\
         \x20 {euw1} -c 'SELECT pg_wal_replay_pause()'\n\
         \x20 # resume it:\n\
         \x20 {euw1} -c 'SELECT pg_wal_replay_resume()'\n\
         \x20 # stop the MariaDB replica's SQL thread: its lag grows, Seconds_Behind_Master turns NULL:\n\
         \x20 {my_euw1} -e 'STOP SLAVE SQL_THREAD'   # START SLAVE SQL_THREAD to resume\n\
         \x20 # watch the metrics:\n\
         \x20 curl -s http://{listen}/metrics | grep -v '^#'\n\
         \n\
         Another layout: scripts/demo.sh --regions (a sidecar exporter per database, a Prometheus per region,\n\
         a global Prometheus federating them, two clustered Alertmanagers).\n\
         Ctrl-C stops the exporter and the lab.\n",
        config_file.display(),
        dbs.dirs(),
    );
}
