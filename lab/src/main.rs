//! The `rpo-lab` command: `rpo-lab demo --exporter PATH` starts a three-region PostgreSQL
//! lab (primary, replica, cascading replica) and a two-region MariaDB lab (primary,
//! replica), sets up the exporter's accounts and heartbeat schema as `rpo-exporter
//! schema` prints it, writes a config (both clusters, and TCP health probes per region)
//! and runs the exporter against it until Ctrl-C/SIGTERM.

use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use rpo_lab::{Engine, Lab, MariaLab, MariaLabSpec, Node, PgLab, PgLabSpec, Watchdog};
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

/// A demo node: name, region, upstream.
type DemoNode = (&'static str, &'static str, Option<&'static str>);

/// The PostgreSQL demo nodes.
const NODES: [DemoNode; 3] = [
    ("pg-use1", "us-east-1", None),
    ("pg-euw1", "eu-west-1", Some("pg-use1")),
    ("pg-apse1", "ap-southeast-1", Some("pg-euw1")),
];
/// The MariaDB demo nodes.
const MARIA_NODES: [DemoNode; 2] =
    [("my-use1", "us-east-1", None), ("my-euw1", "eu-west-1", Some("my-use1"))];
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

    let sql = schema_sql(exporter, &["postgres"])?;
    lab.run_sql_script(NODES[0].0, &sql).await.context("running the exporter's schema SQL on the primary")?;
    lab.wait_replayed(Duration::from_secs(30)).await?;

    eprintln!("rpo-lab: starting MariaDB primary and replica…");
    let mut maria_spec = MariaLabSpec::new();
    for (name, _, upstream) in MARIA_NODES {
        maria_spec = match upstream {
            None => maria_spec.primary(name),
            Some(up) => maria_spec.replica(name, &[up]),
        };
    }
    let mut maria = MariaLab::start(maria_spec).await?;
    let maria_sql = schema_sql(exporter, &["mysql", "--server", "mariadb-10.11", "--host", "127.0.0.1"])?;
    maria
        .create_user(ROLE, &password, &maria_sql)
        .await
        .context("setting up the MariaDB account and schema")?;

    let config_file = lab.dir().join("rpo-exporter.yaml");
    std::fs::write(&config_file, exporter_config(&lab, &maria, &password_file))
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
    print_banner(&lab, &maria, listen, &config_file);

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
        maria.keep_dir()?;
        eprintln!("rpo-lab: kept {} and {}", lab.dir().display(), maria.dir().display());
    }
    lab.shutdown().await;
    maria.shutdown().await;
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

/// Runs `EXPORTER schema ARGS… --table TABLE --role ROLE` and returns the SQL it prints.
fn schema_sql(exporter: &Path, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(exporter)
        .arg("schema")
        .args(args)
        .args(["--table", TABLE, "--role", ROLE])
        .output()
        .with_context(|| format!("running {} schema {}", exporter.display(), args.join(" ")))?;
    if !out.status.success() {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        bail!(
            "`{} schema {} --table {TABLE} --role {ROLE}` failed ({})",
            exporter.display(),
            args.join(" "),
            out.status
        );
    }
    String::from_utf8(out.stdout).context("schema SQL is not UTF-8")
}

fn exporter_config(lab: &PgLab, maria: &MariaLab, password_file: &Path) -> String {
    let heartbeat =
        format!("    heartbeat:\n      interval: 1s\n      table: {TABLE}\n      create_table: false\n");
    let mut yaml = format!(
        "clusters:\n  - name: demo\n    rpo: 30s\n    rto: 5m\n    write_mode: single-writer\n{heartbeat}    nodes:\n"
    );
    yaml += &node_entries(lab, &NODES, "postgres", |n| n.dsn(ROLE), password_file);
    yaml += &format!("  - name: demo-maria\n    rpo: 30s\n    rto: 5m\n{heartbeat}    nodes:\n");
    yaml += &node_entries(maria, &MARIA_NODES, "mysql", |n| n.dsn(ROLE), password_file);
    // Region health: each region's database ports must accept connections.
    yaml += "health:\n  interval: 5s\n  regions:\n";
    for (_, region, _) in NODES {
        yaml += &format!("    {region}:\n      probes:\n");
        yaml += &region_probes(lab, &NODES, region);
        yaml += &region_probes(maria, &MARIA_NODES, region);
    }
    yaml
}

/// The config's entries of `nodes` (of `lab`, whose engine the config calls `engine`),
/// each with its `dsn` for the exporter's role and the password file.
fn node_entries<E: Engine>(
    lab: &Lab<E>,
    nodes: &[DemoNode],
    engine: &str,
    dsn: impl Fn(&Node<E>) -> String,
    password_file: &Path,
) -> String {
    let mut yaml = String::new();
    for (name, region, _) in nodes {
        yaml += &format!(
            "      - name: {name}\n        region: {region}\n        engine: {engine}\n\
             \x20       dsn: \"{}\"\n        password_file: \"{}\"\n",
            dsn(lab.node(name)),
            password_file.display()
        );
    }
    yaml
}

/// The TCP probes of the `nodes` (of `lab`) in `region`.
fn region_probes<E: Engine>(lab: &Lab<E>, nodes: &[DemoNode], region: &str) -> String {
    let mut yaml = String::new();
    for (name, _, _) in nodes.iter().filter(|(_, r, _)| *r == region) {
        yaml += &format!(
            "        - {{ name: {name}, tcp: \"127.0.0.1:{}\", timeout: 1s }}\n",
            lab.node(name).port()
        );
    }
    yaml
}

/// The banner's lines for `nodes` (of `lab`, running `engine`).
fn banner_lines<E: Engine>(lab: &Lab<E>, nodes: &[DemoNode], engine: &str) -> String {
    let mut lines = String::new();
    for (name, region, upstream) in nodes {
        let role = upstream.map_or("primary".to_string(), |up| format!("replica of {up}"));
        lines +=
            &format!("    {name:<9} {region:<15} 127.0.0.1:{:<6} {engine} {role}\n", lab.node(name).port());
    }
    lines
}

fn print_banner(lab: &PgLab, maria: &MariaLab, listen: SocketAddr, config_file: &Path) {
    let nodes = banner_lines(lab, &NODES, "PostgreSQL") + &banner_lines(maria, &MARIA_NODES, "MariaDB");
    let my_euw1 = maria.node("my-euw1").mariadb_command();
    let euw1 = lab.node("pg-euw1").psql_command();
    println!(
        "\n\
         rpo-lab demo is running\n\
         \x20 metrics:  http://{listen}/metrics\n\
         \x20 config:   {}\n\
         \x20 lab dirs: {} and {} (server logs under each node's directory)\n\
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
         Ctrl-C stops the exporter and the lab.\n",
        config_file.display(),
        lab.dir().display(),
        maria.dir().display(),
    );
}
