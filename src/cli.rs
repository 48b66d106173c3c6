//! Command line: serve (the default), `check-config FILE`, `schema ENGINE`, and `drill`
//! (hands over to [`crate::drill`]).
//!
//! Flags follow the Prometheus exporters' names (`--config.file`,
//! `--web.listen-address`, `--web.telemetry-path`, `--log.level`); each can also be
//! set by an environment variable, `RPO_EXPORTER_` and the flag's name in capitals with
//! `.` and `-` as `_` (`RPO_EXPORTER_WEB_LISTEN_ADDRESS`), a flag on the command line
//! winning. This module parses, sets up logging (logfmt in [`logfmt`], or JSON) and
//! hands over to [`crate::exporter`]; it keeps no state.

mod logfmt;

use crate::endpoint::{TableName, ValueError};
use crate::engine::{self, CheckError};
use crate::exporter::{self, ServeOptions};
use crate::metrics::{Switch, Switches};
use clap::builder::BoolishValueParser;
use clap::{Arg, ArgAction, ArgMatches, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "rpo-exporter",
    version = VERSION,
    about = "Prometheus exporter for cross-region replication lag and data-loss exposure, in RPO terms",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

/// `--version`: the version, the git revision and the build date (see build.rs).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision: ",
    env!("RPO_BUILD_REVISION"),
    ", build date: ",
    env!("RPO_BUILD_DATE"),
    ", rustc: ",
    env!("RPO_BUILD_RUSTC"),
    ")"
);

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// The configuration file.
    #[arg(
        long = "config.file",
        env = "RPO_EXPORTER_CONFIG_FILE",
        value_name = "FILE",
        default_value = "rpo-exporter.yml"
    )]
    config_file: PathBuf,
    /// How often to look at the config file for a change, which reloads it as SIGHUP does
    /// (a Kubernetes ConfigMap update included); 0 turns the watch off.
    #[arg(long = "config.watch-interval", env = "RPO_EXPORTER_CONFIG_WATCH_INTERVAL", value_name = "DURATION",
          default_value = "1s", value_parser = parse_watch_interval)]
    watch_interval: WatchInterval,
    /// Address to listen on for the web interface and telemetry; repeat it to listen on several
    /// (in the environment variable: separated by commas). `:PORT` means every interface, IPv6
    /// and IPv4.
    #[arg(long = "web.listen-address", env = "RPO_EXPORTER_WEB_LISTEN_ADDRESS", value_name = "ADDRESS",
          default_value = ":10087", action = clap::ArgAction::Append, value_delimiter = ',')]
    listen_address: Vec<String>,
    /// Listen on the sockets passed by systemd socket activation (a .socket unit) instead of
    /// --web.listen-address. The environment variable takes true or false.
    #[arg(long = "web.systemd-socket", env = "RPO_EXPORTER_WEB_SYSTEMD_SOCKET",
          value_parser = clap::builder::BoolishValueParser::new())]
    systemd_socket: bool,
    /// Path under which to expose metrics.
    #[arg(
        long = "web.telemetry-path",
        env = "RPO_EXPORTER_WEB_TELEMETRY_PATH",
        value_name = "PATH",
        default_value = "/metrics"
    )]
    telemetry_path: String,
    /// Web config file (exporter-toolkit format) enabling TLS and/or basic auth; re-read when it changes.
    #[arg(long = "web.config.file", env = "RPO_EXPORTER_WEB_CONFIG_FILE", value_name = "FILE")]
    web_config_file: Option<PathBuf>,
    /// Enable reloading the config with POST or PUT /-/reload (otherwise 403; SIGHUP always reloads).
    /// The environment variable takes true or false (also 1/0, yes/no, on/off).
    #[arg(long = "web.enable-lifecycle", env = "RPO_EXPORTER_WEB_ENABLE_LIFECYCLE",
          value_parser = clap::builder::BoolishValueParser::new())]
    enable_lifecycle: bool,
    #[command(flatten)]
    collectors: CollectorArgs,
    #[command(flatten)]
    log: LogArgs,
}

/// Each optional collector's pair of flags, as the Go exporters spell them: the
/// switch ([`Switch`]), `--collector.NAME` (also `=false`, and its environment
/// variable) and `--no-collector.NAME` (the command line's last word wins).
const COLLECTOR_FLAGS: [(Switch, &str, &str); 4] = [
    (Switch::Replication, "collector.replication", "no-collector.replication"),
    (Switch::Gtid, "collector.gtid", "no-collector.gtid"),
    (Switch::CollectorStats, "collector.collector_stats", "no-collector.collector_stats"),
    (Switch::RowStatus, "collector.row_status", "no-collector.row_status"),
];

const DISABLE_DEFAULTS: &str = "collector.disable-defaults";

/// `--collector.disable-defaults` and the flags of [`COLLECTOR_FLAGS`], read into
/// the [`Switches`] the exporter gets.
#[derive(Debug, Clone, Copy)]
struct CollectorArgs {
    switches: Switches,
}

impl clap::Args for CollectorArgs {
    fn augment_args(mut cmd: clap::Command) -> clap::Command {
        cmd = cmd.arg(
            Arg::new(DISABLE_DEFAULTS)
                .long(DISABLE_DEFAULTS)
                .env("RPO_EXPORTER_COLLECTOR_DISABLE_DEFAULTS")
                .value_name("BOOL")
                .value_parser(BoolishValueParser::new())
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true")
                .help_heading("Collectors")
                .help("Turn every optional collector off; only those named with --collector.NAME run. The environment variable takes true or false."),
        );
        for (switch, on, off) in COLLECTOR_FLAGS {
            cmd = cmd
                .arg(
                    Arg::new(on)
                        .long(on)
                        .env(switch.env())
                        .value_name("BOOL")
                        .value_parser(BoolishValueParser::new())
                        .num_args(0..=1)
                        .require_equals(true)
                        .default_missing_value("true")
                        .overrides_with(off)
                        .help_heading("Collectors")
                        .help(format!("[default: on] {}", switch.help())),
                )
                .arg(
                    Arg::new(off)
                        .long(off)
                        .action(ArgAction::SetTrue)
                        .overrides_with(on)
                        .help_heading("Collectors")
                        .help(format!("Turn the {} collector off.", switch.name())),
                );
        }
        cmd
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl clap::FromArgMatches for CollectorArgs {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut switches = match m.get_one::<bool>(DISABLE_DEFAULTS) {
            Some(true) => Switches::none(),
            _ => Switches::default(),
        };
        for (switch, on, off) in COLLECTOR_FLAGS {
            if m.get_flag(off) {
                switches = switches.with(switch, false);
            } else if let Some(value) = m.get_one::<bool>(on) {
                switches = switches.with(switch, *value);
            }
        }
        Ok(CollectorArgs { switches })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

#[derive(Debug, clap::Args)]
struct LogArgs {
    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", env = "RPO_EXPORTER_LOG_LEVEL", value_name = "LEVEL", default_value = "info",
          value_parser = ["error", "warn", "info", "debug", "trace"])]
    level: String,
    /// Output format of log messages: logfmt (`ts=… level=… caller=… msg="…" key=value`)
    /// or json (one object per line, fields at the top level).
    #[arg(long = "log.format", env = "RPO_EXPORTER_LOG_FORMAT", value_name = "FORMAT", default_value = "logfmt", value_parser = ["logfmt", "json"])]
    format: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a configuration file: exit 0 if it is valid, else print the problem and exit 1.
    CheckConfig {
        /// The configuration file to check.
        file: PathBuf,
    },
    /// Print the heartbeat table DDL and the least-privilege GRANTs for an engine.
    Schema {
        /// The database engine.
        #[arg(value_parser = parse_engine)]
        engine: String,
        /// The heartbeat table, as in `heartbeat.table`.
        #[arg(long, default_value = "rpo.heartbeat", value_parser = parse_table)]
        table: TableName,
        /// The exporter's login role to grant privileges to.
        #[arg(long, default_value = "rpo_exporter", value_parser = parse_role)]
        role: String,
        /// For mysql: the server flavour and version whose privileges to grant,
        /// e.g. mariadb-10.11, mariadb-10.4, mysql-8.0 (default mariadb-10.11).
        #[arg(long, value_name = "FLAVOUR-VERSION")]
        server: Option<String>,
        /// For mysql: the account's host part (default %).
        #[arg(long, value_name = "HOST")]
        host: Option<String>,
        /// Also print the grants the residency checks of this config file need on
        /// the engine's nodes (the rules' tables), and nothing more.
        #[arg(long = "config.file", value_name = "FILE")]
        config_file: Option<PathBuf>,

        /// Print the drill table's statements (for `rpo-exporter drill`) instead of the
        /// heartbeat table's, e.g. --drill-table rpo.drill.
        #[arg(long = "drill-table", value_name = "TABLE", value_parser = parse_table)]
        drill_table: Option<TableName>,
    },
    /// Time a failover drill (a game day) of one cluster: write numbered drill heartbeats,
    /// watch every node, DNS and the health probes, and write a Markdown and a JSON report
    /// of the data lost and the time each recovery step took, against the cluster's rpo and rto.
    Drill(DrillArgs),
}

#[derive(Debug, clap::Args)]
struct DrillArgs {
    /// The configuration file (the exporter's).
    #[arg(
        long = "config.file",
        env = "RPO_EXPORTER_CONFIG_FILE",
        value_name = "FILE",
        default_value = "rpo-exporter.yml"
    )]
    config_file: PathBuf,
    /// The cluster to drill (its `name:` in the config).
    #[arg(long = "cluster", env = "RPO_EXPORTER_CLUSTER", value_name = "NAME")]
    cluster: String,
    /// Between two drill writes, and two looks at every node's role.
    #[arg(long = "drill.interval", env = "RPO_EXPORTER_DRILL_INTERVAL", value_name = "DURATION",
          default_value = "100ms", value_parser = parse_positive_duration)]
    interval: std::time::Duration,
    /// Deadline for one drill statement (a write, a role probe); a write without an
    /// acknowledgement by then counts as failed.
    #[arg(long = "drill.timeout", env = "RPO_EXPORTER_DRILL_TIMEOUT", value_name = "DURATION",
          default_value = "1s", value_parser = parse_positive_duration)]
    timeout: std::time::Duration,
    /// The drill table (`rpo-exporter schema ENGINE --drill-table TABLE` prints its DDL).
    #[arg(long = "drill.table", env = "RPO_EXPORTER_DRILL_TABLE", value_name = "TABLE",
          default_value = "rpo.drill", value_parser = parse_table)]
    table: TableName,
    /// An application table of the same shape as the drill table that a second, independent
    /// writer writes over its own connections; its data loss is reported too.
    #[arg(long = "drill.probe-table", env = "RPO_EXPORTER_DRILL_PROBE_TABLE", value_name = "TABLE",
          value_parser = parse_table)]
    probe_table: Option<TableName>,
    /// Where to write the reports (drill-RUN.md and drill-RUN.json).
    #[arg(
        long = "drill.report-dir",
        env = "RPO_EXPORTER_DRILL_REPORT_DIR",
        value_name = "DIR",
        default_value = "."
    )]
    report_dir: PathBuf,
    /// The drill ends at the latest after this long (with a partial report).
    #[arg(long = "drill.duration", env = "RPO_EXPORTER_DRILL_DURATION", value_name = "DURATION",
          default_value = "1h", value_parser = parse_positive_duration)]
    duration: std::time::Duration,
    /// Once every figure is measured, the drill ends after this long.
    #[arg(long = "drill.settle", env = "RPO_EXPORTER_DRILL_SETTLE", value_name = "DURATION",
          default_value = "10s", value_parser = humantime::parse_duration)]
    settle: std::time::Duration,
    /// Where to serve the rpo_drill_* metrics on /metrics; empty for none.
    #[arg(
        long = "drill.listen-address",
        env = "RPO_EXPORTER_DRILL_LISTEN_ADDRESS",
        value_name = "ADDRESS",
        default_value = ":10088"
    )]
    listen_address: String,
    #[command(flatten)]
    log: LogArgs,
}

fn parse_positive_duration(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (e.g. 100ms, 1s, 30m)"))?;
    if d.is_zero() {
        return Err("must be more than 0".to_owned());
    }
    Ok(d)
}

/// `--config.watch-interval`: `None` when 0 (the watch is off).
#[derive(Debug, Clone, Copy)]
struct WatchInterval(Option<std::time::Duration>);

fn parse_watch_interval(s: &str) -> Result<WatchInterval, String> {
    if s.trim() == "0" {
        return Ok(WatchInterval(None));
    }
    let every = humantime::parse_duration(s).map_err(|e| format!("{e} (e.g. 1s, 500ms, 0 for off)"))?;
    if every.is_zero() {
        Ok(WatchInterval(None))
    } else if every < std::time::Duration::from_millis(100) {
        Err("at least 100ms, or 0 for off".to_owned())
    } else {
        Ok(WatchInterval(Some(every)))
    }
}

fn parse_engine(s: &str) -> Result<String, CheckError> {
    Ok(engine::find(s)?.name().to_owned())
}

fn parse_table(s: &str) -> Result<TableName, ValueError> {
    s.parse()
}

/// A `--role` that is no plain identifier.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} must be a lower-case identifier ([a-z_][a-z0-9_]*)")]
struct NotIdentifier(String);

fn parse_role(s: &str) -> Result<String, NotIdentifier> {
    if crate::endpoint::is_identifier(s) {
        Ok(s.to_owned())
    } else {
        Err(NotIdentifier(s.to_owned()))
    }
}

/// Runs the command line; the caller turns an error into a message and exit code 1.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig { file }) => match crate::load::file(&file) {
            Ok(config) => {
                for w in config.warnings() {
                    eprintln!("warning: {}: {}: {}", file.display(), w.path, w.problem);
                }
                let nodes: usize = config.clusters.iter().map(|c| c.nodes.len()).sum();
                println!("{}: valid ({} clusters, {nodes} nodes)", file.display(), config.clusters.len());
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::FAILURE)
            }
        },
        Some(Command::Schema { engine, table, role, server, host, config_file, drill_table }) => {
            let residency = match &config_file {
                None => Ok(String::new()),
                Some(file) => match crate::load::file(file) {
                    Ok(config) => residency_grants(&config, &engine, &role, host.as_deref()),
                    Err(e) => {
                        eprintln!("rpo-exporter schema: {e}");
                        return Ok(ExitCode::from(2));
                    }
                },
            };
            let sql = match &drill_table {
                Some(_) if server.is_some() => Err(engine::SchemaError::NotApplicable {
                    option: "server",
                    engines: "the heartbeat table",
                }),
                Some(drill) => engine::drill_schema_sql(&engine, drill, &role, host.as_deref()),
                None => engine::schema_sql(&engine, &table, &role, server.as_deref(), host.as_deref()),
            };
            match sql.and_then(|sql| Ok(sql + &residency?)) {
                Ok(sql) => {
                    print!("{sql}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("rpo-exporter schema: {e}");
                    Ok(ExitCode::from(2))
                }
            }
        }
        Some(Command::Drill(args)) => drill(args),
        None => serve(cli.serve),
    }
}

/// The grants the config's residency checks need on the nodes of `engine_name`:
/// for every rule, on the nodes outside its regions; empty without rules there.
fn residency_grants(
    config: &crate::config::Config,
    engine_name: &str,
    role: &str,
    host: Option<&str>,
) -> Result<String, engine::SchemaError> {
    let mut targets = Vec::new();
    let mut modes = Vec::new();
    for cluster in &config.clusters {
        let Some(residency) = &cluster.residency else { continue };
        for rule in &residency.rules {
            for node in &cluster.nodes {
                if node.endpoint.engine == engine_name && !rule.allows(&node.region) {
                    if !targets.contains(&rule.tables) {
                        targets.push(rule.tables.clone());
                    }
                    modes.push(node.replication);
                }
            }
        }
    }
    if targets.is_empty() {
        return Ok(String::new());
    }
    engine::residency_grants(engine_name, &targets, &modes, role, host)
}

fn drill(args: DrillArgs) -> anyhow::Result<ExitCode> {
    init_logging(&args.log);
    let config = match crate::load::file(&args.config_file) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "Invalid configuration");
            return Ok(ExitCode::FAILURE);
        }
    };
    let options = crate::drill::Options {
        cluster: args.cluster,
        interval: args.interval,
        timeout: args.timeout,
        table: args.table,
        probe_table: args.probe_table,
        report_dir: args.report_dir,
        duration: args.duration,
        settle: args.settle,
        listen: Some(args.listen_address).filter(|a| !a.is_empty()),
    };
    let runtime = runtime()?;
    let result = runtime.block_on(async {
        let shutdown = tokio_util::sync::CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        crate::drill::run(config, options, shutdown).await
    });
    match result {
        Ok(written) => {
            print!("{}", written.report.markdown());
            tracing::info!(markdown = %written.markdown.display(), json = %written.json.display(),
                rpo = written.report.rpo.as_str(), rto = written.report.rto.as_str(), "Drill report written");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            tracing::error!(error = %e, "Drill failed");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Cancels `shutdown` on SIGINT (Ctrl-C) or SIGTERM: the drill ends with a partial report.
async fn stop_on_signal(shutdown: tokio_util::sync::CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("Cannot install signal handlers");
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(signal = name, "Ending the drill; writing a partial report");
    shutdown.cancel();
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging(&args.log);
    // Flags first, before a config is read or a port bound.
    if let Err(e) = crate::server::check_telemetry_path(&args.telemetry_path) {
        tracing::error!(error = %e, "Invalid flag");
        return Ok(ExitCode::FAILURE);
    }
    let config = match crate::load::file(&args.config_file) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "Invalid configuration");
            return Ok(ExitCode::FAILURE);
        }
    };
    let web_config =
        match args.web_config_file.as_deref().map(crate::server::WebConfigWatch::load).transpose() {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "Invalid web configuration");
                return Ok(ExitCode::FAILURE);
            }
        };
    let runtime = runtime()?;
    runtime.block_on(exporter::run(
        config,
        ServeOptions {
            config_file: args.config_file,
            listen: args.listen_address,
            systemd_socket: args.systemd_socket,
            watch_interval: args.watch_interval.0,
            telemetry_path: args.telemetry_path,
            lifecycle: args.enable_lifecycle,
            web_config,
            collectors: args.collectors.switches,
        },
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// The runtime that serves the exporter and runs the drill: tokio's multi-thread
/// runtime, a worker per core. A current-thread runtime saved 0.5–0.9 MiB of
/// resident memory in the bench (two threads, and libm, which only the multi-thread
/// scheduler needs), not enough for issue #19's goal, and with one thread a large
/// scrape's render would run where the heartbeats tick: not adopted
/// (docs/benchmarks.md, "The current-thread runtime in the bench").
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()
}

fn init_logging(args: &LogArgs) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    // Our own crate at the chosen level; drivers stay at warn so their debug
    // output (which may echo connection parameters) never reaches the log. A fixed
    // target filter rather than `EnvFilter`: two directives known here need no
    // directive parser or regex engine in the binary (docs/benchmarks.md, "Memory").
    let level: LevelFilter = args.level.parse().unwrap_or(LevelFilter::INFO);
    let filter = Targets::new().with_default(LevelFilter::WARN).with_target("rpo_exporter", level);
    let registry = tracing_subscriber::registry().with(filter);
    if args.format == "json" {
        // Fields at the top level beside timestamp, level, target and the caller's
        // file and line, as log pipelines expect; no ANSI colour inside JSON strings.
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_file(true)
            .with_line_number(true)
            .with_ansi(false)
            .with_writer(std::io::stderr);
        registry.with(layer).init();
    } else {
        // logfmt is parsed by machines: no colour either, even on a terminal.
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .event_format(logfmt::Logfmt)
            .fmt_fields(logfmt::LogfmtFields)
            .with_writer(std::io::stderr);
        registry.with(layer).init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every flag of serving, present and future, has its environment variable, named
    /// after the flag: `--web.listen-address` → `RPO_EXPORTER_WEB_LISTEN_ADDRESS`. A
    /// negation, `--no-X`, is the environment variable of `--X` set to false: it
    /// needs that twin, not a variable of its own.
    #[test]
    fn every_flag_has_its_env_var() {
        let cli = Cli::command();
        let mut checked = 0;
        for arg in cli.get_arguments().filter(|a| !matches!(a.get_id().as_str(), "help" | "version")) {
            let long = arg.get_long().unwrap_or_else(|| panic!("{} has no long name", arg.get_id()));
            if let Some(twin) = long.strip_prefix("no-") {
                assert!(arg.get_env().is_none(), "--{long} has its own environment variable");
                assert!(cli.get_arguments().any(|a| a.get_long() == Some(twin)), "--{long} without --{twin}");
                continue;
            }
            let expected = format!("RPO_EXPORTER_{}", long.to_uppercase().replace(['.', '-'], "_"));
            assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some(expected.as_str()), "--{long}");
            checked += 1;
        }
        assert!(checked >= 7, "only {checked} flags");
        // The drill's flags too.
        let drill = cli.find_subcommand("drill").expect("a drill subcommand");
        for arg in drill.get_arguments().filter(|a| !matches!(a.get_id().as_str(), "help" | "version")) {
            let long = arg.get_long().unwrap_or_else(|| panic!("{} has no long name", arg.get_id()));
            let expected = format!("RPO_EXPORTER_{}", long.to_uppercase().replace(['.', '-'], "_"));
            assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some(expected.as_str()), "drill --{long}");
        }
    }

    fn switches(args: &[&str]) -> Result<Switches, clap::Error> {
        let argv = std::iter::once("rpo-exporter").chain(args.iter().copied());
        Cli::try_parse_from(argv).map(|cli| cli.serve.collectors.switches)
    }

    #[test]
    fn collector_flags_follow_the_go_exporters() {
        let all = Switches::default();
        let without = |s: Switch| all.with(s, false);
        for (args, want) in [
            (&[][..], all),
            (&["--no-collector.replication"][..], without(Switch::Replication)),
            (&["--collector.replication=false"][..], without(Switch::Replication)),
            (&["--no-collector.row_status", "--collector.row_status"][..], all),
            (&["--collector.row_status", "--no-collector.row_status"][..], without(Switch::RowStatus)),
            (
                &["--no-collector.gtid", "--no-collector.collector_stats"][..],
                without(Switch::Gtid).with(Switch::CollectorStats, false),
            ),
            (&["--collector.disable-defaults"][..], Switches::none()),
            (
                &["--collector.disable-defaults", "--collector.gtid", "--collector.replication"][..],
                Switches::none().with(Switch::Gtid, true).with(Switch::Replication, true),
            ),
        ] {
            assert_eq!(switches(args).unwrap(), want, "{args:?}");
        }
        assert!(switches(&["--collector.nonsense"]).is_err());
        assert!(switches(&["--collector.gtid=maybe"]).is_err());
        // GTID positions come with the native query: off with it.
        let gtid_only = Switches::none().with(Switch::Gtid, true);
        assert!(!gtid_only.enabled(Switch::Gtid));
        assert!(!without(Switch::Replication).enabled(Switch::Gtid));
    }

    /// One row per switch, named after it: the table and the switches cannot drift.
    #[test]
    fn every_switch_has_its_flags() {
        assert_eq!(COLLECTOR_FLAGS.len(), Switch::ALL.len());
        for ((switch, on, off), want) in COLLECTOR_FLAGS.iter().zip(Switch::ALL) {
            assert_eq!(*switch, want);
            assert_eq!(*on, format!("collector.{}", switch.name()));
            assert_eq!(*off, format!("no-collector.{}", switch.name()));
            assert_eq!(switch.env(), format!("RPO_EXPORTER_COLLECTOR_{}", switch.name().to_uppercase()));
        }
    }

    #[test]
    fn version_names_revision_date_and_rustc() {
        assert!(VERSION.starts_with(concat!(env!("CARGO_PKG_VERSION"), " (revision: ")), "{VERSION}");
        assert!(VERSION.contains(", build date: ") && VERSION.contains(", rustc: "), "{VERSION}");
    }
}
