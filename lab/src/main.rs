//! The `rpo-lab` command: `rpo-lab demo --exporter PATH` starts a three-region PostgreSQL
//! lab (primary, replica, cascading replica), sets up the exporter's role and heartbeat
//! schema, writes its config and runs the exporter against it until Ctrl-C/SIGTERM.

use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use rpo_lab::{PgLab, PgLabSpec, Watchdog};
use tokio::signal::unix::{signal, SignalKind};

#[derive(Parser)]
#[command(version, about = "Real local servers for rpo-exporter's tests and demo")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the exporter against a live three-region PostgreSQL lab.
    Demo {
        /// The rpo-exporter binary.
        #[arg(long)]
        exporter: PathBuf,
        /// Where the exporter serves /metrics (loopback only).
        #[arg(long, default_value = "127.0.0.1:10087")]
        listen: SocketAddr,
        /// Keep the lab directory (data, logs, config) after exit.
        #[arg(long)]
        keep: bool,
    },
}

/// The demo's nodes: name, region, upstream.
const NODES: [(&str, &str, Option<&str>); 3] = [
    ("pg-use1", "us-east-1", None),
    ("pg-euw1", "eu-west-1", Some("pg-use1")),
    ("pg-apse1", "ap-southeast-1", Some("pg-euw1")),
];
const ROLE: &str = "rpo_exporter";
const TABLE: &str = "rpo.heartbeat";

#[tokio::main]
async fn main() -> ExitCode {
    let Cmd::Demo { exporter, listen, keep } = Cli::parse().command;
    match demo(&exporter, listen, keep).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rpo-lab demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn demo(exporter: &Path, listen: SocketAddr, keep: bool) -> Result<ExitCode> {
    if !listen.ip().is_loopback() {
        bail!("--listen {listen}: only loopback addresses are allowed");
    }
    let mut spec = PgLabSpec::new();
    for (name, _, upstream) in NODES {
        spec = match upstream {
            None => spec.primary(name),
            Some(up) => spec.replica(name, up),
        };
    }
    eprintln!("rpo-lab: starting PostgreSQL primary, replica and cascading replica…");
    let mut lab = PgLab::start(spec).await?;

    let password = random_password()?;
    let password_file = lab.dir().join("password");
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&password_file)
        .and_then(|mut f| std::io::Write::write_all(&mut f, password.as_bytes()))
        .with_context(|| format!("writing {}", password_file.display()))?;
    lab.create_role(ROLE, &password, "").await?;

    let schema = std::process::Command::new(exporter)
        .args(["schema", "postgres", "--table", TABLE, "--role", ROLE])
        .output()
        .with_context(|| format!("running {} schema postgres", exporter.display()))?;
    if !schema.status.success() {
        eprint!("{}", String::from_utf8_lossy(&schema.stderr));
        bail!(
            "`{} schema postgres --table {TABLE} --role {ROLE}` failed ({})",
            exporter.display(),
            schema.status
        );
    }
    let sql = String::from_utf8(schema.stdout).context("schema SQL is not UTF-8")?;
    lab.run_sql_script(NODES[0].0, &sql).await.context("running the exporter's schema SQL on the primary")?;
    lab.wait_replayed(Duration::from_secs(30)).await?;

    let config_file = lab.dir().join("rpo-exporter.yaml");
    std::fs::write(&config_file, exporter_config(&lab, &password_file))
        .with_context(|| format!("writing {}", config_file.display()))?;

    let mut child = tokio::process::Command::new(exporter)
        .arg("--config.file")
        .arg(&config_file)
        .arg("--web.listen-address")
        .arg(listen.to_string())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", exporter.display()))?;
    // kill_on_drop covers errors and panics; this covers `rpo-lab` being killed.
    let _watchdog = Watchdog::kill_on_exit(child.id().context("the exporter exited at once")?)?;
    print_banner(&lab, listen, &config_file);

    let mut sigterm = signal(SignalKind::terminate())?;
    let exited = tokio::select! {
        _ = tokio::signal::ctrl_c() => None,
        _ = sigterm.recv() => None,
        status = child.wait() => Some(status),
    };
    let code = match exited {
        Some(status) => {
            eprintln!("rpo-lab: the exporter exited by itself ({status:?}); stopping the lab");
            ExitCode::FAILURE
        }
        None => {
            eprintln!("rpo-lab: stopping the exporter and the lab");
            if let Some(pid) = child.id() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
                let _ = child.kill().await;
            }
            ExitCode::SUCCESS
        }
    };
    if keep {
        lab.keep_dir()?;
        eprintln!("rpo-lab: kept {}", lab.dir().display());
    }
    lab.shutdown().await;
    Ok(code)
}

/// 32 random letters and digits.
fn random_password() -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect())
}

fn exporter_config(lab: &PgLab, password_file: &Path) -> String {
    let mut yaml = format!(
        "clusters:\n  - name: demo\n    rpo: 30s\n    rto: 5m\n    write_mode: single-writer\n\
         \x20   heartbeat:\n      interval: 1s\n      table: {TABLE}\n      create_table: false\n\
         \x20   nodes:\n"
    );
    for (name, region, _) in NODES {
        yaml += &format!(
            "      - name: {name}\n        region: {region}\n        engine: postgres\n\
             \x20       dsn: \"{}\"\n        password_file: \"{}\"\n",
            lab.node(name).dsn(ROLE),
            password_file.display()
        );
    }
    yaml
}

fn print_banner(lab: &PgLab, listen: SocketAddr, config_file: &Path) {
    let mut nodes = String::new();
    for (name, region, upstream) in NODES {
        let role = match upstream {
            None => "primary".to_string(),
            Some(up) => format!("replica of {up}"),
        };
        nodes += &format!("    {name:<9} {region:<15} 127.0.0.1:{:<6} {role}\n", lab.node(name).port());
    }
    let euw1 = lab.node("pg-euw1").psql_command();
    println!(
        "\n\
         rpo-lab demo is running\n\
         \x20 metrics:  http://{listen}/metrics\n\
         \x20 config:   {}\n\
         \x20 lab dir:  {} (server logs: NODE/postgres.log)\n\
         \x20 nodes:\n{nodes}\n\
         Things to try:\n\
         \x20 # pause replay on pg-euw1: its lag grows; pg-apse1 keeps up (pg-euw1 relays WAL it received, replayed or not):\n\
         \x20 {euw1} -c 'SELECT pg_wal_replay_pause()'\n\
         \x20 # resume it:\n\
         \x20 {euw1} -c 'SELECT pg_wal_replay_resume()'\n\
         \x20 # watch the metrics:\n\
         \x20 curl -s http://{listen}/metrics | grep -v '^#'\n\
         \n\
         Ctrl-C stops the exporter and the lab.\n",
        config_file.display(),
        lab.dir().display(),
    );
}
