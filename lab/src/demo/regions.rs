//! `rpo-lab demo --regions`: the global layout of docs/scaling.md on the local lab.
//!
//! - The same databases as the plain demo, each with a **sidecar** rpo-exporter whose
//!   config lists only its node (`sources: any`, the default for one node), on a free
//!   127.0.0.1 port, logging to `rpo-exporter-NODE.log` in the lab directory. The
//!   PostgreSQL sidecar of each region (the first node of the region) also runs the
//!   region health probes — TCP probes of every region's database ports, as the plain
//!   demo's exporter does — so each region is a vantage point on all three.
//! - One Prometheus per region, with `external_labels: {region: …}`, scraping its
//!   region's sidecars as job `rpo-exporter` and evaluating the repository's
//!   `alerts/regional/*.yml`.
//! - A global Prometheus federating the three as job `rpo-federate` (each target labelled
//!   with its region; `match[]` for the exporter's series and the regional recordings),
//!   evaluating `alerts/global/*.yml`.
//! - Two Alertmanagers, clustered on loopback, that every Prometheus notifies, with
//!   `deploy/alertmanager/alertmanager.yml`'s routes and inhibit rules as they are; its
//!   receivers that send somewhere (`pager`, `ticket`) post to a webhook of `rpo-lab`,
//!   which prints each notification and appends it to `notifications.log`; `"null"`
//!   stays quiet. So the demo works offline and shows what would page, once, although
//!   two Alertmanagers hold every alert.
//!
//! The rule files and alertmanager.yml are read from the repository `rpo-lab` was built
//! from, by absolute path.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rpo_lab::{free_port, Alertmanager, Prometheus, PrometheusOptions};

use super::webhook::Webhook;
use super::{stop_all, wait_for_stop, Databases, DemoNode, Exporter, NODES, REGIONS};

/// The scrape job of the exporters (the mixin's jobSelector: RPOExporterDown matches it).
const EXPORTER_JOB: &str = "rpo-exporter";
/// The global Prometheus's federation job (the mixin's federationSelector).
const FEDERATION_JOB: &str = "rpo-federate";
/// The regional external label, also on each federation target.
const REGION_LABEL: &str = "region";
/// What the global Prometheus federates: the exporter's series and the regional
/// recordings (among them the regional Prometheus's heartbeat).
const FEDERATE_MATCH: [&str; 2] = [r#"{__name__=~"rpo_.+"}"#, r#"{__name__=~"region[a-z_]*:rpo_.+"}"#];
/// Scrape, federation and rule evaluation interval of every Prometheus.
const INTERVAL: Duration = Duration::from_secs(5);
/// Alertmanager's own default: how long the second member waits for the first's
/// notification before sending it itself.
const PEER_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the layout may take to show every region on the global Prometheus.
const SETTLE: Duration = Duration::from_secs(90);

pub(crate) async fn run(exporter: &Path, keep: bool) -> Result<ExitCode> {
    let repo = repo_dir()?;
    let regional_rules = rule_files(&repo.join("alerts/regional"))?;
    let global_rules = rule_files(&repo.join("alerts/global"))?;
    let am_file = repo.join("deploy/alertmanager/alertmanager.yml");
    let am_source =
        std::fs::read_to_string(&am_file).with_context(|| format!("reading {}", am_file.display()))?;

    let dbs = Databases::start(exporter).await?;
    let mut sidecars = start_sidecars(&dbs, exporter).await?;

    eprintln!("rpo-lab: starting two clustered Alertmanagers…");
    let webhook = Webhook::start(dbs.dir().join("notifications.log")).await?;
    let am_config = alertmanager_config(&am_source, |receiver| webhook.url(receiver))?;
    let am_copy = dbs.dir().join("alertmanager.yml");
    std::fs::write(&am_copy, &am_config).with_context(|| format!("writing {}", am_copy.display()))?;
    let alertmanagers = Alertmanager::start_cluster(2, &am_config, PEER_TIMEOUT).await?;

    eprintln!("rpo-lab: starting a Prometheus per region and the global one…");
    let notify = |mut options: PrometheusOptions, rules: &[PathBuf]| {
        options = options.scrape_interval(INTERVAL);
        for rule_file in rules {
            options = options.rule_file(rule_file);
        }
        for am in &alertmanagers {
            options = options.alertmanager(&am.host_port());
        }
        options
    };
    let mut regionals = Vec::with_capacity(REGIONS.len());
    for region in REGIONS {
        let targets: Vec<String> = in_region(region).map(|(i, _)| sidecars[i].host_port()).collect();
        let options =
            PrometheusOptions::new(&targets).job_name(EXPORTER_JOB).external_label(REGION_LABEL, region);
        regionals.push(Prometheus::start_with(&notify(options, &regional_rules)).await?);
    }
    let sources: Vec<(String, String)> = REGIONS
        .iter()
        .zip(&regionals)
        .map(|(r, p)| (format!("127.0.0.1:{}", p.port()), r.to_string()))
        .collect();
    let federation =
        PrometheusOptions::new(&[]).federate(FEDERATION_JOB, &sources, REGION_LABEL, &FEDERATE_MATCH);
    let global = Prometheus::start_with(&notify(federation, &global_rules)).await?;

    if let Err(e) = settle(&regionals, &global).await {
        eprintln!("rpo-lab: warning: {e:#}");
    }
    print!("{}", banner(&view(&dbs, &sidecars, &regionals, &global, &alertmanagers)));

    while let Some((i, status)) = wait_for_stop(&mut sidecars).await? {
        eprintln!(
            "rpo-lab: the exporter beside {} exited ({status}) without rpo-lab stopping it: {}'s \
             Prometheus raises RPOExporterDown after 3 minutes. The rest keeps running; Ctrl-C stops \
             everything.",
            sidecars[i].what(),
            NODES[i].region
        );
    }
    eprintln!("rpo-lab: stopping the Prometheus servers, the Alertmanagers, the exporters and the databases");
    let mut servers = (global, regionals, alertmanagers);
    if keep {
        let dirs: Vec<String> = std::iter::once(&mut servers.0)
            .chain(&mut servers.1)
            .map(|p| {
                p.keep_dir();
                p.dir().display().to_string()
            })
            .chain(servers.2.iter_mut().map(|am| {
                am.keep_dir();
                am.dir().display().to_string()
            }))
            .collect();
        eprintln!("rpo-lab: kept {}", dirs.join(", "));
    }
    // Dropping them stops them (and waits for that: off the runtime's threads).
    let _ = tokio::task::spawn_blocking(move || drop(servers)).await;
    drop(webhook);
    stop_all(&mut sidecars).await;
    dbs.stop(keep).await;
    Ok(ExitCode::SUCCESS)
}

/// A sidecar exporter beside each node of [`NODES`] (in that order), each with a config
/// listing only its node, on a free loopback port, logging to the lab directory.
async fn start_sidecars(dbs: &Databases, exporter: &Path) -> Result<Vec<Exporter>> {
    eprintln!("rpo-lab: starting a sidecar exporter beside each database…");
    let mut sidecars = Vec::with_capacity(NODES.len());
    for node in &NODES {
        let file_name = format!("rpo-exporter-{}.yaml", node.name);
        let config = dbs.write_config(&file_name, |n| n.name == node.name, probes(node))?;
        let log = dbs.dir().join(format!("rpo-exporter-{}.log", node.name));
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
        sidecars.push(Exporter::start(exporter, &config, listen, Some(&log), node.name).await?);
    }
    Ok(sidecars)
}

/// Whether `node`'s sidecar runs the region health probes: the first node of its region.
fn probes(node: &DemoNode) -> bool {
    NODES.iter().find(|n| n.region == node.region).is_some_and(|n| n.name == node.name)
}

/// The nodes of `region`, with their index in [`NODES`].
fn in_region(region: &str) -> impl Iterator<Item = (usize, &'static DemoNode)> + '_ {
    NODES.iter().enumerate().filter(move |(_, n)| n.region == region)
}

/// The repository `rpo-lab` was built from.
fn repo_dir() -> Result<PathBuf> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::canonicalize(&repo).ok().filter(|r| r.join("alerts/regional").is_dir()).with_context(|| {
        format!(
            "rpo-lab demo --regions reads alerts/ and deploy/ of the repository it was built from ({}), \
                 which is not there any more: rebuild it in a checkout (scripts/demo.sh --regions)",
            repo.display()
        )
    })
}

/// The `*.yml` files of `dir`, sorted.
fn rule_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no rule files (*.yml) in {}", dir.display());
    }
    Ok(files)
}

/// `original` (alertmanager.yml) with its routes, inhibit rules and everything else as
/// they are, and its top-level `receivers:` replaced: a receiver that sends somewhere
/// posts to `webhook(its name)` instead (resolved notices too); one with no integration
/// (`"null"`) stays as it is.
fn alertmanager_config(original: &str, webhook: impl Fn(&str) -> String) -> Result<String> {
    let lines: Vec<&str> = original.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim_end() == "receivers:")
        .context("the Alertmanager config has no top-level `receivers:`")?;
    let top_level = |l: &&str| !l.is_empty() && !l.starts_with([' ', '#', '-']);
    let end = lines[start + 1..].iter().position(top_level).map_or(lines.len(), |i| start + 1 + i);
    // Each receiver: its name and whether it has an integration (`…_configs:`).
    let mut receivers: Vec<(String, bool)> = Vec::new();
    for line in &lines[start + 1..end] {
        if let Some(name) = line.strip_prefix("  - name:") {
            receivers.push((name.trim().trim_matches(['"', '\'']).to_owned(), false));
        } else if line.trim_start().starts_with(|c: char| c.is_ascii_alphanumeric())
            && line.trim_end().ends_with("_configs:")
        {
            receivers.last_mut().context("an integration before the first receiver's name")?.1 = true;
        }
    }
    if receivers.is_empty() {
        bail!("the Alertmanager config's `receivers:` names no receiver");
    }
    let mut text = "# rpo-lab demo --regions: deploy/alertmanager/alertmanager.yml with its routes and inhibit\n\
                    # rules as they are; the receivers that send somewhere post to rpo-lab's webhook instead.\n"
        .to_owned();
    for line in &lines[..start] {
        text += line;
        text.push('\n');
    }
    text += "receivers:\n";
    for (name, sends) in &receivers {
        let quoted = format!("\"{}\"", name.replace('"', ""));
        if *sends {
            text += &format!(
                "  - name: {quoted}\n    webhook_configs:\n      - url: '{}'\n        send_resolved: true\n",
                webhook(name)
            );
        } else {
            text += &format!("  - name: {quoted}\n");
        }
    }
    for line in &lines[end..] {
        text += line;
        text.push('\n');
    }
    Ok(text)
}

/// Waits until every regional Prometheus scrapes all its sidecars and the global one has
/// their series from every region.
async fn settle(regionals: &[Prometheus], global: &Prometheus) -> Result<()> {
    eprintln!("rpo-lab: waiting until the global Prometheus has series from every region…");
    let started = Instant::now();
    for (region, prometheus) in REGIONS.iter().zip(regionals) {
        prometheus.wait_targets_up(SETTLE).await.with_context(|| format!("the Prometheus of {region}"))?;
    }
    let by_region = format!("count by ({REGION_LABEL}) (rpo_node_up)");
    global
        .wait_for(&by_region, SETTLE.saturating_sub(started.elapsed()), |v| {
            v.as_array().is_some_and(|a| a.len() == REGIONS.len())
        })
        .await?;
    eprintln!(
        "rpo-lab: every region is on the global Prometheus after {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A server in the banner.
#[derive(Debug, Clone, Default)]
struct Server {
    url: String,
    pid: String,
    dir: String,
}

impl Server {
    fn of(url: &str, pid: Option<u32>, dir: &Path) -> Server {
        let pid = pid.map_or("?".to_owned(), |p| p.to_string());
        Server { url: url.to_owned(), pid, dir: dir.display().to_string() }
    }
}

/// What the banner shows.
#[derive(Debug, Default)]
struct View {
    /// The table of nodes and their sidecars.
    nodes: String,
    /// The regional Prometheus servers, in [`REGIONS`] order.
    regionals: Vec<Server>,
    global: Server,
    alertmanagers: Vec<Server>,
    lab_dir: String,
    db_dirs: String,
    psql_euw1: String,
    psql_apse1: String,
    mariadb_euw1: String,
}

fn view(
    dbs: &Databases,
    sidecars: &[Exporter],
    regionals: &[Prometheus],
    global: &Prometheus,
    alertmanagers: &[Alertmanager],
) -> View {
    let nodes = dbs.node_lines(|i, node| {
        let pid = sidecars[i].pid().map_or("?".to_owned(), |p| p.to_string());
        let probes = if probes(node) { "  +health probes" } else { "" };
        format!("{}  pid {pid}{probes}", sidecars[i].metrics_url())
    });
    View {
        nodes,
        regionals: regionals.iter().map(|p| Server::of(p.url(), p.pid(), p.dir())).collect(),
        global: Server::of(global.url(), global.pid(), global.dir()),
        alertmanagers: alertmanagers.iter().map(|a| Server::of(a.url(), a.pid(), a.dir())).collect(),
        lab_dir: dbs.dir().display().to_string(),
        db_dirs: dbs.dirs(),
        psql_euw1: dbs.client_command("pg-euw1"),
        psql_apse1: dbs.client_command("pg-apse1"),
        mariadb_euw1: dbs.client_command("my-euw1"),
    }
}

/// Example queries for the global Prometheus: a title and PromQL.
const QUERIES: [(&str, &str); 4] = [
    ("Alerts pending and firing here (the same on a regional Prometheus shows its own)", "ALERTS"),
    ("Nodes up per region (the region each series came through)", "count by (region) (rpo_node_up)"),
    (
        "The overview dashboard's \"Regions side by side\": worst replica exposure per region",
        "max by (region) (rpo_data_loss_exposure_seconds)",
    ),
    (
        "... and RPO budget used (worst exposure ÷ the cluster's RPO; 1 is the RPO)",
        "max by (region) (rpo_data_loss_exposure_seconds / on (db_cluster) group_left () \
         max by (db_cluster) (rpo_objective_seconds))",
    ),
];

/// A link to Prometheus's graph page at `base` showing `expr` as a table.
fn query_link(base: &str, expr: &str) -> String {
    let encoded: String = expr
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("{base}/graph?g0.expr={encoded}&g0.tab=1")
}

fn banner(v: &View) -> String {
    let mut regionals = String::new();
    for (region, p) in REGIONS.iter().zip(&v.regionals) {
        let scrapes: Vec<&str> = in_region(region).map(|(_, n)| n.name).collect();
        regionals +=
            &format!("    {region:<15} {}  pid {:<8} scrapes {}\n", p.url, p.pid, scrapes.join(", "));
    }
    let mut queries = String::new();
    for (title, expr) in QUERIES {
        queries += &format!("    # {title}:\n    {expr}\n      {}\n", query_link(&v.global.url, expr));
    }
    let ams: Vec<String> =
        v.alertmanagers.iter().map(|a| format!("    {}  pid {}\n", a.url, a.pid)).collect();
    let prometheus_dirs: Vec<String> = REGIONS
        .iter()
        .chain(&["global"])
        .zip(v.regionals.iter().chain([&v.global]))
        .map(|(name, p)| format!("      {name:<15} {}\n", p.dir))
        .collect();
    let am_dirs: Vec<String> = v.alertmanagers.iter().map(|a| format!("      {}\n", a.dir)).collect();
    let euw1 = v.regionals.get(1).map_or("?", |p| p.pid.as_str());
    let (psql_euw1, psql_apse1, mariadb_euw1) = (&v.psql_euw1, &v.psql_apse1, &v.mariadb_euw1);
    format!(
        "\n\
rpo-lab demo --regions is running: the global layout, on 127.0.0.1 only.
  A sidecar rpo-exporter beside each database; a Prometheus per region scraping its region's
  sidecars (job {EXPORTER_JOB}, external label region, rules alerts/regional/*.yml); a global
  Prometheus federating the three (job {FEDERATION_JOB}, rules alerts/global/*.yml); every
  Prometheus notifies both Alertmanagers, which are clustered.

  Databases and their sidecar exporters (/metrics and pid; \"+health probes\": that sidecar
  also probes every region's database ports, so each region watches all three):
{nodes}
  Regional Prometheus servers (each: /alerts, /targets, /graph):
{regionals}
  Global Prometheus: {global}  pid {global_pid}  (alerts: {global}/alerts, federation: {global}/targets)
{queries}
  Alertmanagers, clustered: their UIs. Routes and inhibit rules are deploy/alertmanager/alertmanager.yml's;
  its receivers pager and ticket post to rpo-lab instead, which prints each notification below and
  appends it to {lab}/notifications.log; \"null\" (info) stays quiet.
{ams}
  Files:
    {lab}: exporter configs and logs (rpo-exporter-NODE.yaml, .log),
      alertmanager.yml, notifications.log
    Databases (a directory per node: data/ and its log): {db_dirs}
    Prometheus (prometheus.yml, data/, prometheus.log):
{prometheus_dirs}    Alertmanager (alertmanager.yml, data/, alertmanager.log):
{am_dirs}
Things to try:
  # 1. Pause replay on pg-euw1 (eu-west-1): its exposure grows. After about 40 s
  #    RPOReplicaBeyondObjective is pending on eu-west-1's Prometheus (beyond the 30 s RPO),
  #    firing a minute later; 30 s after that a \"ticket\" notification appears here. The global
  #    Prometheus stays quiet: pg-apse1, the best failover candidate, keeps up (pg-euw1 relays
  #    the WAL it receives, replayed or not).
  {psql_euw1} -c 'SELECT pg_wal_replay_pause()'
  # 2. Pause pg-apse1 too: no replica of pg-use1 is within the RPO any more. About 75 s later
  #    the global Prometheus fires RPOBreached (critical), and 10 s after that one page for both
  #    replicas appears here, sent once although both Alertmanagers hold it; it inhibits the
  #    regional RPOReplicaBeyondObjective warnings of the same writer.
  {psql_apse1} -c 'SELECT pg_wal_replay_pause()'
  # Resume both: the alerts resolve, and the resolved notices follow within 5 minutes (the
  # routes' group_interval). Should a resume answer \"canceling statement due to conflict with
  # recovery\", replay did resume (and cancelled the very query that resumed it).
  {psql_euw1} -c 'SELECT pg_wal_replay_resume()'
  {psql_apse1} -c 'SELECT pg_wal_replay_resume()'
  # 3. MariaDB: stop my-euw1's SQL thread. It is my-use1's only replica, so eu-west-1's
  #    RPOReplicaBeyondObjective comes with the global RPOBreached for demo-maria (one page),
  #    and RPOReplicationStreamDown (a ticket) after 2 minutes:
  {mariadb_euw1} -e 'STOP SLAVE SQL_THREAD'   # START SLAVE SQL_THREAD to resume
  # 4. A regional Prometheus goes silent. rpo-lab cannot stop one for you while it runs, but
  #    you can freeze eu-west-1's (pid {euw1}): within 20 s RPORegionalPrometheusDown{{region=\"eu-west-1\"}}
  #    is pending on the global Prometheus, firing after 2 minutes (one page), and the
  #    cluster-wide verdicts of the clusters that region fed hold back meanwhile.
  kill -STOP {euw1}   # kill -CONT {euw1} brings it back; kill {euw1} stops it for the rest of the demo
  # 5. Kill a sidecar exporter (its pid above): its region's Prometheus fires RPOExporterDown
  #    (critical) after 3 minutes; everything else keeps running.

Ctrl-C stops everything and removes the lab directories (--keep keeps them).
",
        nodes = v.nodes,
        global = v.global.url,
        global_pid = v.global.pid,
        lab = v.lab_dir,
        db_dirs = v.db_dirs,
        ams = ams.concat(),
        prometheus_dirs = prometheus_dirs.concat(),
        am_dirs = am_dirs.concat(),
    )
}

#[cfg(test)]
mod tests {
    use super::super::exporter_config;
    use super::super::tests::fake_endpoint;
    use super::*;

    /// The repository's alertmanager.yml, as the demo reads it.
    fn deploy_alertmanager() -> String {
        std::fs::read_to_string(repo_dir().unwrap().join("deploy/alertmanager/alertmanager.yml")).unwrap()
    }

    #[test]
    fn alertmanager_config_keeps_routes_and_inhibitions_and_replaces_the_receivers() {
        let original = deploy_alertmanager();
        let config = alertmanager_config(&original, |r| format!("http://127.0.0.1:1/{r}")).unwrap();
        let from = |text: &str, key: &str| text[text.find(key).unwrap()..].to_owned();
        let until_receivers = |text: &str| {
            from(text, "route:")[..from(text, "route:").find("\nreceivers:").unwrap()].to_owned()
        };
        assert_eq!(
            until_receivers(&config),
            until_receivers(&original),
            "routes and inhibit rules unchanged"
        );
        let receivers = from(&config, "\nreceivers:");
        assert_eq!(
            receivers,
            "\nreceivers:\n  - name: \"pager\"\n    webhook_configs:\n      - url: 'http://127.0.0.1:1/pager'\n        \
             send_resolved: true\n  - name: \"ticket\"\n    webhook_configs:\n      - url: \
             'http://127.0.0.1:1/ticket'\n        send_resolved: true\n  - name: \"null\"\n"
        );
        // Alertmanager itself accepts it, where amtool is installed.
        if let Ok(amtool) = rpo_lab::find_program("amtool") {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("alertmanager.yml");
            std::fs::write(&file, &config).unwrap();
            let out = std::process::Command::new(amtool).arg("check-config").arg(&file).output().unwrap();
            assert!(
                out.status.success(),
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn alertmanager_config_needs_receivers() {
        assert!(alertmanager_config("route:\n  receiver: x\n", |r| r.to_owned()).is_err());
        let later = alertmanager_config(
            "receivers:\n  - name: a\n    email_configs:\n      - to: x\ntemplates: []\n",
            |r| format!("u/{r}"),
        )
        .unwrap();
        assert!(later.ends_with("  - name: \"a\"\n    webhook_configs:\n      - url: 'u/a'\n        send_resolved: true\ntemplates: []\n"), "{later}");
    }

    #[test]
    fn one_sidecar_per_node_and_probes_once_per_region() {
        let probing: Vec<&str> = NODES.iter().filter(|n| probes(n)).map(|n| n.name).collect();
        assert_eq!(probing, ["pg-use1", "pg-euw1", "pg-apse1"]);
        for node in &NODES {
            let c = exporter_config(|n| n.name == node.name, probes(node), fake_endpoint, Path::new("/p"));
            assert_eq!(c.matches("      - name: ").count(), 1, "{c}");
            assert!(
                c.contains(&format!("      - name: {}\n        region: {}\n", node.name, node.region)),
                "{c}"
            );
            assert_eq!(c.contains("health:"), probes(node), "{c}");
        }
        let regions: Vec<usize> = REGIONS.iter().map(|r| in_region(r).count()).collect();
        assert_eq!(regions, [2, 2, 1]);
    }

    #[test]
    fn the_rule_sets_are_there() {
        let repo = repo_dir().unwrap();
        for set in ["regional", "global"] {
            let files = rule_files(&repo.join("alerts").join(set)).unwrap();
            assert!(files.iter().any(|f| f.ends_with("alerts.yml")), "{files:?}");
        }
    }

    #[test]
    fn the_banner_names_every_server_and_links_queries() {
        let server = |port: u16| Server {
            url: format!("http://127.0.0.1:{port}"),
            pid: format!("{}", port + 1),
            dir: format!("/d/{port}"),
        };
        let v = View {
            nodes: "    NODE TABLE\n".into(),
            regionals: vec![server(100), server(200), server(300)],
            global: server(400),
            alertmanagers: vec![server(500), server(600)],
            lab_dir: "/lab".into(),
            db_dirs: "/lab and /maria".into(),
            psql_euw1: "PSQL-EUW1".into(),
            psql_apse1: "PSQL-APSE1".into(),
            mariadb_euw1: "MARIADB-EUW1".into(),
        };
        let b = banner(&v);
        for port in [100, 200, 300, 400, 500, 600] {
            assert!(b.contains(&format!("http://127.0.0.1:{port} ")), "{port} in\n{b}");
            assert!(b.contains(&format!("/d/{port}\n")), "{port} in\n{b}");
        }
        assert!(
            b.contains("    eu-west-1       http://127.0.0.1:200  pid 201      scrapes pg-euw1, my-euw1\n"),
            "{b}"
        );
        assert!(b.contains("kill -STOP 201 "), "eu-west-1's pid: {b}");
        assert!(b.contains("      global          /d/400\n"), "{b}");
        assert!(b.contains("    ALERTS\n      http://127.0.0.1:400/graph?g0.expr=ALERTS&g0.tab=1\n"), "{b}");
        assert!(b.contains("g0.expr=count%20by%20%28region%29%20%28rpo_node_up%29&"), "{b}");
        assert!(
            b.contains("PSQL-EUW1 -c 'SELECT pg_wal_replay_pause()'") && b.contains("MARIADB-EUW1 -e"),
            "{b}"
        );
        assert!(b.contains("/lab/notifications.log") && b.contains("NODE TABLE"), "{b}");
    }
}
