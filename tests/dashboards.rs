//! The Grafana dashboards in dashboards/ and the provisioning files in deploy/grafana/.
//!
//! - The JSON itself: unique uids, current schema, every panel, target and annotation on
//!   the `datasource` variable (no datasource uid written anywhere), the required
//!   variables, links between the dashboards that keep the time range and variables,
//!   rates over `$__rate_interval`, and every metric a query names documented in
//!   docs/metrics.md (or recorded by the rule files of alerts/regional/ or alerts/global/)
//!   with the labels it filters on. The JSON is generated from mixin/ (tests/mixin.rs
//!   checks it is current).
//! - The provisioning files: a Prometheus datasource and a file provider whose path is
//!   where deploy/grafana/README.md mounts dashboards/.
//! - Every query against live data, in both layouts the dashboards are for. The lab: a
//!   PostgreSQL primary and replica, a multi-writer MariaDB cluster (two writers and a
//!   multi-source replica, so the lag matrix has rows and columns), nodes in three regions,
//!   HTTP, HTTPS and TCP probe targets in those regions, and an authoritative Knot and two
//!   caching Unbound resolvers serving the failover records.
//!   - One Prometheus: one exporter watching every node, and a real Prometheus scraping
//!     it with both rule sets loaded.
//!   - One Prometheus per region and a global one, as deploy/prometheus/regional.yml and
//!     global.yml set them up: per region, an exporter watching only that region's nodes
//!     (as sidecars do; each also probes region health and DNS from its vantage point)
//!     and a Prometheus with regional.yml's external labels (its `region`, and `env`)
//!     scraping it as job `rpo-exporter` with the regional rules; a global Prometheus
//!     federating them (job `rpo-federate`, each target labelled with its region,
//!     `honor_labels`, the `match[]` of global.yml) with the global rules. The dashboards
//!     run against the global one.
//!
//!   In each, the test evaluates each dashboard's variables through Prometheus as
//!   Grafana would, substitutes their real values, runs every panel's (and row's nested
//!   panels') targets and every annotation through /api/v1/query, and fails on any query
//!   that does not parse or returns no series, except the few listed in [`EXCEPTIONS`].
//!   It also checks that the overview's "Regions side by side" has one row per region of
//!   the lab with the right node counts, keyed on the global Prometheus by the `region`
//!   external label (every federated series carries it).
//!
//! `RPO_DASHBOARDS_VERBOSE=1` prints what every query returned.
//!
//! Grafana itself is not installable on the test machines: the dashboards' rendering is
//! not tested here, only what they ask Prometheus and how they are wired.

mod support;

use rpo_lab::{Knot, MariaLabSpec, PgLabSpec, Prometheus, PrometheusOptions, Unbound, Zone};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::dns::{servers, EUW1, USE1, ZONE};
use support::maria::MyLab;
use support::*;

/// What every `datasource` field must say: the dashboard's `datasource` variable.
fn datasource_ref() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

/// Variables every dashboard must have.
const REQUIRED_VARIABLES: &[&str] = &["datasource", "job", "db_cluster", "region"];

/// Tag every bundled dashboard carries; the dashboards' links list dashboards by it.
const TAG: &str = "rpo-exporter";

/// Labels a query may match on beyond the exporter's own: target labels and the
/// mixin's region external label (mixin/config.libsonnet's regionLabel), which the
/// overview's "Regions side by side" reads where a series carries it.
const OTHER_LABELS: &[&str] = &["job", "instance", "region"];

/// Queries allowed to return no series in the lab, as (dashboard uid, panel title,
/// refId, why). Each must be a query that legitimately returns nothing while the lab is
/// healthy; a panel whose series exists but reads 0 needs no exception.
///
/// In both layouts the lab makes every other panel's data happen (a refused probe, a
/// resolver nobody runs, a published DNS change, a `read_only` toggle, paused replay),
/// and the panels that count rare events (collector errors) fall back to 0 per collector
/// rather than showing nothing. The exceptions: the last game day's panels, which read
/// `rpo-exporter drill`'s own series (tests/drill_*.rs run drills; this lab runs none).
const EXCEPTIONS: &[(&str, &str, &str, &str)] = &[
    ("rpo-cluster-detail", "Last drill against the objectives", "A", NO_DRILL),
    ("rpo-cluster-detail", "Last drill against the objectives", "B", NO_DRILL),
    ("rpo-cluster-detail", "Last drill: each step, seconds from the first failed write", "A", NO_DRILL),
    ("rpo-cluster-detail", "Last drill: each step, seconds from the first failed write", "B", NO_DRILL),
];

const NO_DRILL: &str =
    "rpo_drill_* exist only while `rpo-exporter drill` runs; the dashboards' lab runs none";

/// What Grafana substitutes for its built-in interval variables in the test's queries.
const BUILTINS: &[(&str, &str)] = &[("__rate_interval", "1m"), ("__interval", "1m"), ("__range", "5m")];

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The dashboards in dashboards/, by file name.
fn dashboards() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo("dashboards"))
        .expect("dashboards/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "dashboards in dashboards/: {files:?}");
    files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            (f.file_name().unwrap().to_string_lossy().into_owned(), json)
        })
        .collect()
}

fn uid(d: &Value) -> &str {
    d["uid"].as_str().unwrap_or_default()
}

/// Every panel that is not a row, with rows' nested panels (collapsed rows keep theirs
/// in `panels`), in dashboard order.
fn panels(d: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().into_iter().flatten() {
            if p["type"] == "row" {
                walk(&p["panels"], out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&d["panels"], &mut out);
    out
}

fn rows(d: &Value) -> usize {
    d["panels"].as_array().into_iter().flatten().filter(|p| p["type"] == "row").count()
}

/// One PromQL query of a dashboard: a panel target or an annotation.
struct Query<'a> {
    panel: String,
    ref_id: String,
    expr: &'a str,
    /// The variable the panel repeats over: one query per value of it.
    repeat: Option<&'a str>,
}

fn queries(d: &Value) -> Vec<Query<'_>> {
    let mut out = Vec::new();
    for p in panels(d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(Query {
                panel: p["title"].as_str().unwrap_or_default().to_owned(),
                ref_id: t["refId"].as_str().unwrap_or_default().to_owned(),
                expr: t["expr"].as_str().unwrap_or_default(),
                repeat: p["repeat"].as_str().filter(|r| !r.is_empty()),
            });
        }
    }
    for a in d["annotations"]["list"].as_array().into_iter().flatten() {
        out.push(Query {
            panel: format!("annotation {}", a["name"].as_str().unwrap_or_default()),
            ref_id: "-".into(),
            expr: a["expr"].as_str().unwrap_or_default(),
            repeat: None,
        });
    }
    out
}

fn variables(d: &Value) -> Vec<&Value> {
    d["templating"]["list"].as_array().map(|l| l.iter().collect()).unwrap_or_default()
}

/// The query text of a query variable (string, or the editor's `{query, refId}` object).
fn variable_query(v: &Value) -> &str {
    v["query"].as_str().or_else(|| v["query"]["query"].as_str()).unwrap_or_default()
}

// ---------------------------------------------------------------------------- PromQL

/// Metric selectors of a PromQL expression: (metric name, label names it matches on).
/// Only names that are ours count as metrics: `rpo_*` families and recording rules
/// (`level:metric:operation`); everything in quotes or brackets is skipped.
fn selectors(expr: &str) -> Vec<(String, Vec<String>)> {
    let chars: Vec<char> = expr.chars().collect();
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            i = skip_string(&chars, i);
        } else if c == '[' {
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            i += 1;
        } else if ident(c) && !c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && ident(chars[i]) {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            if !(name.starts_with("rpo_") || name.contains(':')) {
                continue;
            }
            let mut labels = Vec::new();
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            if j < chars.len() && chars[j] == '{' {
                j += 1;
                loop {
                    while j < chars.len() && (chars[j].is_whitespace() || chars[j] == ',') {
                        j += 1;
                    }
                    if j >= chars.len() || chars[j] == '}' {
                        break;
                    }
                    let s = j;
                    while j < chars.len() && ident(chars[j]) {
                        j += 1;
                    }
                    labels.push(chars[s..j].iter().collect());
                    while j < chars.len() && chars[j] != '"' {
                        j += 1;
                    }
                    j = skip_string(&chars, j);
                }
                i = j + 1;
            }
            out.push((name, labels));
        } else {
            i += 1;
        }
    }
    out
}

/// Index after the string literal starting at `i` (a `"`).
fn skip_string(chars: &[char], mut i: usize) -> usize {
    i += 1;
    while i < chars.len() && chars[i] != '"' {
        if chars[i] == '\\' {
            i += 1;
        }
        i += 1;
    }
    i + 1
}

/// The ranges (`[...]`) an expression selects over.
fn ranges(expr: &str) -> Vec<&str> {
    expr.split('[').skip(1).filter_map(|s| s.split_once(']').map(|(r, _)| r)).collect()
}

/// Documented families (sample names, counters with `_total`) and their labels.
fn documented() -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(repo("docs/metrics.md")).unwrap();
    text.lines()
        .filter(|l| l.starts_with("| `rpo_"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
            let labels = cells[2]
                .split(", ")
                .filter(|l| !l.is_empty())
                .map(|l| l.trim_matches('`').to_owned())
                .collect();
            (cells[0].trim_matches('`').to_owned(), labels)
        })
        .collect()
}

/// The shipped rule files of one set (`regional` or `global`), sorted.
fn rule_set(set: &str) -> Vec<PathBuf> {
    let dir = format!("alerts/{set}");
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo(&dir))
        .unwrap_or_else(|e| panic!("{dir}/: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    files
}

/// The shipped rule files of both sets.
fn rule_files() -> Vec<PathBuf> {
    let mut files = rule_set("regional");
    files.extend(rule_set("global"));
    files
}

/// Names recorded by the rule files.
fn recorded() -> BTreeSet<String> {
    rule_files()
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let rules: Value =
                serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            rules["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                .filter_map(|r| r["record"].as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect()
}

// ---------------------------------------------------------------------------- the JSON

/// Checks that every `datasource` field in `v` is the variable and that no other `uid`
/// than the dashboard's own appears anywhere.
fn check_no_hardcoded_datasource(v: &Value, path: &str, problems: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let here = format!("{path}.{k}");
                if k == "datasource" && *child != datasource_ref() {
                    problems.push(format!("{here} is {child}, not the datasource variable"));
                } else if k == "uid" && !path.is_empty() && child != "${datasource}" {
                    problems.push(format!("{here} is {child}: a hard-coded uid"));
                }
                check_no_hardcoded_datasource(child, &here, problems);
            }
        }
        Value::Array(list) => {
            for (i, child) in list.iter().enumerate() {
                check_no_hardcoded_datasource(child, &format!("{path}[{i}]"), problems);
            }
        }
        _ => {}
    }
}

#[test]
fn dashboards_are_wired_to_the_datasource_variable_and_to_each_other() {
    let all = dashboards();
    let docs = documented();
    let rules = recorded();
    let mut problems = Vec::new();
    let mut uids = BTreeSet::new();
    let mut titles = BTreeSet::new();
    for (file, d) in &all {
        let mut problem = |p: String| problems.push(format!("{file}: {p}"));
        if uid(d).is_empty() || !uids.insert(uid(d).to_owned()) {
            problem(format!("uid {:?} missing or not unique", d["uid"]));
        }
        if !titles.insert(d["title"].as_str().unwrap_or_default().to_owned()) {
            problem("title not unique".into());
        }
        if d["schemaVersion"].as_u64().unwrap_or(0) < 39 {
            problem(format!("schemaVersion {} < 39", d["schemaVersion"]));
        }
        if !d["id"].is_null() {
            problem("id must be null so that provisioning and imports assign their own".into());
        }
        if !d["tags"].as_array().is_some_and(|t| t.contains(&json!(TAG))) {
            problem(format!("not tagged {TAG}"));
        }
        let mut hardcoded = Vec::new();
        check_no_hardcoded_datasource(d, "", &mut hardcoded);
        hardcoded.into_iter().for_each(&mut problem);

        // Variables.
        let vars = variables(d);
        for name in REQUIRED_VARIABLES {
            if !vars.iter().any(|v| v["name"] == *name) {
                problem(format!("no variable {name}"));
            }
        }
        for v in &vars {
            let name = v["name"].as_str().unwrap_or_default();
            match v["type"].as_str() {
                Some("datasource") => {
                    if name != "datasource" || v["query"] != "prometheus" {
                        problem(format!("datasource variable {name} must be `datasource`, type prometheus"));
                    }
                }
                Some("query") => {
                    if v["datasource"] != datasource_ref() {
                        problem(format!("variable {name} is not on the datasource variable"));
                    }
                    if name != "job" && !variable_query(v).contains("$job") {
                        problem(format!("variable {name} ignores $job"));
                    }
                }
                other => problem(format!("variable {name}: unexpected type {other:?}")),
            }
        }

        // Panels and their queries.
        let mut ids = BTreeSet::new();
        let top_rows = d["panels"].as_array().into_iter().flatten().filter(|p| p["type"] == "row");
        for p in top_rows.chain(panels(d)) {
            if !ids.insert(p["id"].as_u64().unwrap_or(0)) {
                problem(format!("panel id {} repeated", p["id"]));
            }
            let g = &p["gridPos"];
            if g["w"].as_u64().unwrap_or(0) == 0
                || g["x"].as_u64().unwrap_or(99) + g["w"].as_u64().unwrap_or(0) > 24
            {
                problem(format!("panel {:?}: bad gridPos {g}", p["title"]));
            }
        }
        for p in panels(d) {
            let title = p["title"].as_str().unwrap_or_default();
            if p["datasource"] != datasource_ref() {
                problem(format!("panel {title:?} is not on the datasource variable"));
            }
            if p["description"].as_str().unwrap_or_default().len() < 20 {
                problem(format!("panel {title:?} has no description"));
            }
            let targets = p["targets"].as_array().cloned().unwrap_or_default();
            if targets.is_empty() {
                problem(format!("panel {title:?} has no query"));
            }
            for t in &targets {
                if t["datasource"] != datasource_ref() {
                    problem(format!(
                        "panel {title:?} target {} is not on the datasource variable",
                        t["refId"]
                    ));
                }
            }
            if let Some(r) = p["repeat"].as_str() {
                if !vars.iter().any(|v| v["name"] == r && v["multi"] == true) {
                    problem(format!("panel {title:?} repeats over {r}, which is no multi-value variable"));
                }
            }
        }
        for a in d["annotations"]["list"].as_array().into_iter().flatten() {
            if a["datasource"] != datasource_ref() {
                problem(format!("annotation {} is not on the datasource variable", a["name"]));
            }
        }
        for q in queries(d) {
            let what = format!("{:?} {}", q.panel, q.ref_id);
            if q.expr.trim().is_empty() {
                problem(format!("{what}: empty expr"));
            }
            for r in ranges(q.expr) {
                let r = r.trim_end_matches(':');
                if !BUILTINS.iter().any(|(name, _)| r == format!("${name}")) {
                    problem(format!("{what}: range [{r}] is not a Grafana interval variable"));
                }
            }
            for f in ["rate(", "irate("] {
                if q.expr.contains(f) && !q.expr.contains("[$__rate_interval]") {
                    problem(format!("{what}: {f} without [$__rate_interval]"));
                }
            }
            for (name, matchers) in selectors(q.expr) {
                if name.contains(':') {
                    if !rules.contains(&name) {
                        problem(format!("{what}: {name} is not recorded by the rule files"));
                    }
                    continue;
                }
                let Some(labels) = docs.get(&name) else {
                    problem(format!("{what}: {name} is not in docs/metrics.md"));
                    continue;
                };
                for m in &matchers {
                    if !labels.contains(m) && !OTHER_LABELS.contains(&m.as_str()) {
                        problem(format!("{what}: {name} has no label {m}"));
                    }
                }
                if !matchers.iter().any(|m| m == "job") {
                    problem(format!("{what}: {name} is not filtered by $job"));
                }
                if labels.iter().any(|l| l == "db_cluster") && !matchers.iter().any(|m| m == "db_cluster") {
                    problem(format!("{what}: {name} is not filtered by $db_cluster"));
                }
            }
        }
    }

    // Links: each dashboard links the others, keeping time range and variables.
    for (file, d) in &all {
        let links = d["links"].as_array().cloned().unwrap_or_default();
        let reaches = |other: &Value| {
            links.iter().any(|l| {
                let by_tag = l["type"] == "dashboards"
                    && l["tags"].as_array().is_some_and(|tags| {
                        !tags.is_empty()
                            && tags.iter().all(|t| other["tags"].as_array().is_some_and(|ot| ot.contains(t)))
                    });
                let by_url = l["type"] == "link"
                    && l["url"].as_str().is_some_and(|u| u.contains(&format!("/d/{}", uid(other))));
                (by_tag || by_url) && l["keepTime"] == true && l["includeVars"] == true
            })
        };
        for (_, other) in all.iter().filter(|(f, _)| f != file) {
            if !reaches(other) {
                problems.push(format!("{file}: no link to {} keeping time and variables", uid(other)));
            }
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn grafana_provisioning_loads_the_dashboards_folder() {
    let read = |p: &str| -> Value {
        let text = std::fs::read_to_string(repo(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{p}: {e}"))
    };
    let ds = read("deploy/grafana/datasources/prometheus.yml");
    assert_eq!(ds["apiVersion"], 1);
    let list = ds["datasources"].as_array().expect("datasources list");
    assert_eq!(list.len(), 1, "one datasource: {list:?}");
    let prom = &list[0];
    assert_eq!(prom["type"], "prometheus");
    assert_eq!(prom["access"], "proxy");
    assert!(prom["url"].as_str().is_some_and(|u| u.starts_with("http")), "url: {}", prom["url"]);
    assert!(
        prom["jsonData"]["timeInterval"].as_str().is_some(),
        "timeInterval (the scrape interval) makes $__rate_interval right"
    );

    let provider = read("deploy/grafana/dashboards/rpo-exporter.yml");
    assert_eq!(provider["apiVersion"], 1);
    let p = &provider["providers"][0];
    assert_eq!(p["type"], "file");
    let path = p["options"]["path"].as_str().expect("providers[0].options.path");
    // The README's command mounts dashboards/ exactly where the provider looks.
    let readme = std::fs::read_to_string(repo("deploy/grafana/README.md")).unwrap();
    assert!(readme.contains(&format!("/dashboards:{path}")), "README must mount dashboards/ at {path}");
    for dir in ["datasources", "dashboards"] {
        assert!(
            readme.contains(&format!("deploy/grafana/{dir}:/etc/grafana/provisioning/{dir}")),
            "README must mount deploy/grafana/{dir}"
        );
    }
    assert!(dashboards().iter().all(|(f, _)| f.ends_with(".json")));
}

// ---------------------------------------------------------------------------- live data

/// Grafana's formatting of a multi-value variable in a Prometheus query: regex-escaped
/// values joined by `|`, in parentheses when there is more than one.
fn format_values(values: &[String]) -> String {
    let escaped: Vec<String> = values
        .iter()
        .map(|v| {
            v.chars()
                .map(|c| if "$^*{}[]'+?.()|\\".contains(c) { format!("\\\\{c}") } else { c.to_string() })
                .collect()
        })
        .collect();
    match escaped.len() {
        1 => escaped[0].clone(),
        _ => format!("({})", escaped.join("|")),
    }
}

/// Replaces `$name` and `${name}` for the known variables; leaves others (`$1`) alone.
fn substitute(expr: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, len) = match after.strip_prefix('{') {
            Some(b) => match b.find('}') {
                Some(end) => (&b[..end], end + 2),
                None => ("", 0),
            },
            None => {
                let end =
                    after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        match values.get(name) {
            Some(v) => out.push_str(v),
            None => out.push_str(&rest[at..at + 1 + len]),
        }
        rest = &rest[at + 1 + len..];
    }
    out.push_str(rest);
    out
}

/// Values of a query variable, as Grafana computes them from Prometheus:
/// `label_values(selector, label)` through the series API, `query_result(expr)` with a
/// `/label="([^"]+)"/` regex through an instant query.
async fn variable_values(prom: &Prometheus, v: &Value, known: &BTreeMap<String, String>) -> Vec<String> {
    let query = substitute(variable_query(v), known);
    let name = v["name"].as_str().unwrap();
    let mut values = BTreeSet::new();
    if let Some(args) = query.strip_prefix("label_values(").and_then(|q| q.strip_suffix(')')) {
        let (selector, label) = args.rsplit_once(',').expect("label_values(selector, label)");
        let url = format!("{}/api/v1/series", prom.url());
        let body: Value = reqwest::Client::new()
            .get(url)
            .query(&[("match[]", selector.trim())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["status"], "success", "variable {name}: {query}: {body}");
        for s in body["data"].as_array().into_iter().flatten() {
            if let Some(value) = s[label.trim()].as_str() {
                values.insert(value.to_owned());
            }
        }
    } else if let Some(expr) = query.strip_prefix("query_result(").and_then(|q| q.strip_suffix(')')) {
        let regex = v["regex"].as_str().unwrap_or_default();
        let label = regex
            .strip_prefix('/')
            .and_then(|r| r.strip_suffix("=\"([^\"]+)\"/"))
            .unwrap_or_else(|| panic!("variable {name}: regex {regex:?} is not /label=\"([^\"]+)\"/"));
        let result = prom.query(expr).await.unwrap_or_else(|e| panic!("variable {name}: {e:#}"));
        for s in result.as_array().into_iter().flatten() {
            if let Some(value) = s["metric"][label].as_str() {
                values.insert(value.to_owned());
            }
        }
    } else {
        panic!("variable {name}: unsupported query {query:?}");
    }
    values.into_iter().collect()
}

/// One cluster's block of the exporter config: `settings` (indented lines after `rto`)
/// and `nodes` (node entries).
fn cluster_yaml(name: &str, settings: &str, nodes: &str) -> String {
    format!("  - name: {name}\n    rpo: 30s\n    rto: 5m\n{settings}    nodes:\n{nodes}")
}

/// The PostgreSQL cluster (`orders`) of the lab.
const PG_SETTINGS: &str = "    heartbeat: { interval: 1s, table: rpo.heartbeat, create_table: false }\n";
/// The multi-writer MariaDB cluster (`accounts`) of the lab. Its heartbeat table is
/// also a residency rule's, allowed where the writers are: the replica m in
/// ap-southeast-1 (`replication: filtered`, without a filter) breaks it, for the
/// "Data residency" row to show.
const MY_SETTINGS: &str = "    write_mode: multi-writer\n    heartbeat: { interval: 1s, create_table: false }\n    residency:\n      interval: 1s\n      rules:\n        - { name: heartbeats-us-eu, table: rpo.heartbeat, allowed_regions: [us-east-1, eu-west-1] }\n";

/// The lab's nodes that accept writes: the PostgreSQL primary and both MariaDB writers.
const WRITERS: &[&str] = &["p", "a", "a2"];
/// The lab's replicas.
const REPLICAS: &[&str] = &["r1", "m"];

/// How long the test waits for Prometheus to see something happen (seconds late under
/// load on a 2-core machine; the global layout adds a regional scrape and a federation).
const WAIT: Duration = Duration::from_secs(30);

fn pg_pair(lab: &Lab, source: &str, replica: &str) -> Vec<(&'static str, String)> {
    let mut pair = lab.pair(source, replica);
    pair[0].1 = "orders".into();
    pair
}

/// What both layouts watch: a PostgreSQL primary and replica (cluster `orders`: p in
/// us-east-1, r1 in eu-west-1), a multi-writer MariaDB cluster (`accounts`: writers a in
/// us-east-1 and a2 in eu-west-1, a multi-source replica m in ap-southeast-1), probe
/// targets for three regions, and DNS: an authoritative Knot and two caching Unbound
/// resolvers.
struct Live {
    started: Instant,
    pg: Lab,
    my: MyLab,
    zone: Zone,
    knot: Knot,
    resolvers: Vec<Unbound>,
    dead_resolver: String,
    http: u16,
    https_port: u16,
    closed: u16,
    ca_file: PathBuf,
}

impl Live {
    async fn start() -> Live {
        let started = Instant::now();
        // Probe targets: every region has a passing quorum; ap-southeast-1 also has a
        // probe that fails (refused), so failures are counted.
        let http = support::probes::http_server().await;
        let https = support::probes::https_server(30).await;
        let closed = rpo_lab::free_port();
        let (pg, my) = tokio::join!(
            Lab::start(PgLabSpec::new().primary("p").replica("r1", "p")),
            MyLab::start(MariaLabSpec::new().primary("a").primary("a2").replica("m", &["a", "a2"])),
        );
        // DNS: Knot serves lab.test. (TTL 3 s) to two caching Unbound resolvers. `www`
        // points at the PostgreSQL cluster's primary region, us-east-1, but the zone
        // still serves eu-west-1's answer: the test publishes the right one later and
        // the resolvers pick it up as their caches expire (a propagation to measure).
        // `api` is fixed on eu-west-1 and also asks a resolver nobody runs (failures to
        // show).
        let zone = Zone::new(ZONE).ttl(3).record("www", "A", EUW1).record("api", "A", EUW1);
        let knot = Knot::start(&zone).await.expect("start Knot (run scripts/install-deps.sh?)");
        let mut resolvers = Vec::new();
        for _ in 0..2 {
            resolvers.push(Unbound::start(&[(ZONE, knot.port())], None).await.expect("start Unbound"));
        }
        let dead_resolver = format!("127.0.0.1:{}", rpo_lab::free_dns_port());
        let ca_file = pg.dir.path().join("ca.pem");
        std::fs::write(&ca_file, &https.ca_pem).unwrap();
        Live {
            started,
            pg,
            my,
            zone,
            knot,
            resolvers,
            dead_resolver,
            http,
            https_port: https.port,
            closed,
            ca_file,
        }
    }

    /// Every node of the lab: (name, region).
    fn nodes(&self) -> impl Iterator<Item = &(String, String)> {
        self.pg.nodes.iter().chain(&self.my.nodes)
    }

    /// The lab's regions, where its nodes run (also the regions it probes), in lab order.
    fn regions(&self) -> Vec<String> {
        let mut regions: Vec<String> = Vec::new();
        for (_, region) in self.nodes() {
            if !regions.contains(region) {
                regions.push(region.clone());
            }
        }
        regions
    }

    /// The `clusters:` section with the nodes `keep` says yes to (by region); clusters
    /// left without a node are left out.
    fn clusters_yaml(&self, keep: impl Fn(&str) -> bool) -> String {
        let pg: String =
            self.pg.nodes.iter().filter(|(_, r)| keep(r)).map(|(n, _)| self.pg.node_yaml(n)).collect();
        // m replicates everything (no filter), which the residency rule shows.
        let my: String = self
            .my
            .nodes
            .iter()
            .filter(|(_, r)| keep(r))
            .map(|(n, _)| {
                let entry = self.my.node_yaml(n);
                if n == "m" {
                    entry + "        replication: filtered\n"
                } else {
                    entry
                }
            })
            .collect();
        let mut text = "clusters:\n".to_owned();
        if !pg.is_empty() {
            text.push_str(&cluster_yaml("orders", PG_SETTINGS, &pg));
        }
        if !my.is_empty() {
            text.push_str(&cluster_yaml("accounts", MY_SETTINGS, &my));
        }
        text
    }

    /// The `health:` and `dns:` sections; `www` says what `www`'s expected answer follows
    /// (`follow_cluster: orders`, or a fixed `active_region: us-east-1`).
    fn health_and_dns_yaml(&self, www: &str) -> String {
        let addrs: Vec<String> = self.resolvers.iter().map(Unbound::addr).collect();
        format!(
            "health:
  interval: 1s
  regions:
    us-east-1:
      probes:
        - {{ name: api, http: \"https://127.0.0.1:{https}/healthz\", ca_file: {ca}, timeout: 800ms }}
        - {{ name: lb, tcp: \"127.0.0.1:{http}\", timeout: 800ms }}
    eu-west-1:
      probes:
        - {{ name: api, http: \"http://127.0.0.1:{http}/healthz\", timeout: 800ms }}
        - {{ name: lb, tcp: \"127.0.0.1:{http}\", timeout: 800ms }}
    ap-southeast-1:
      quorum: 1
      probes:
        - {{ name: api, http: \"http://127.0.0.1:{closed}/healthz\", timeout: 800ms }}
        - {{ name: lb, tcp: \"127.0.0.1:{http}\", timeout: 800ms }}
dns:
  interval: 500ms
  timeout: 300ms
  records:
    - name: www.{ZONE}
      type: A
      {www}
      answers: {{ us-east-1: {USE1}, eu-west-1: {EUW1} }}
      resolvers: {resolvers}
      authoritative: [ \"{knot}\" ]
    - name: api.{ZONE}
      type: A
      active_region: eu-west-1
      answers: {{ us-east-1: {USE1}, eu-west-1: {EUW1} }}
      resolvers: {api_resolvers}
      authoritative: [ \"{knot}\" ]
",
            https = self.https_port,
            ca = self.ca_file.display(),
            http = self.http,
            closed = self.closed,
            resolvers = servers(&addrs),
            api_resolvers = servers(&[addrs[0].clone(), self.dead_resolver.clone()]),
            knot = self.knot.addr(),
        )
    }

    /// Makes the data the panels show happen, waiting until `prom` has seen each step
    /// (`exporters` are for the failure message): a failover event, a published DNS
    /// change, and an incident in progress.
    async fn make_events(&mut self, prom: &Prometheus, exporters: &[&Exporter]) {
        // A failover event: a2 stops and resumes accepting writes (read_only), seen by
        // Prometheus both ways, so role changes, their annotation and the state timeline
        // have something to show.
        let a2 = self.my.db.node("a2");
        a2.exec("SET GLOBAL read_only = ON").await.unwrap();
        wait_series(prom, "rpo_node_writable{db_cluster=\"accounts\",node=\"a2\"} == 0", "a2 read-only")
            .await;
        a2.exec("SET GLOBAL read_only = OFF").await.unwrap();
        let q = "rpo_node_role_changes_total{db_cluster=\"accounts\",node=\"a2\"} == 2";
        wait_series(prom, q, "a2 writable again").await;

        // The zone now serves what `www`'s expected region (us-east-1) answers.
        self.zone.set("www", "A", USE1);
        self.knot.load(&self.zone).await.unwrap();

        // An incident in progress: replay paused on the PostgreSQL replica. Its exposure
        // grows (budget, time to breach), pg_stat_replication's replay lag and the
        // unreplayed bytes grow, and the replay-paused signal is up.
        self.pg.pg.node("r1").execute("SELECT pg_wal_replay_pause()").await.unwrap();
        let q = "region_pair:rpo_data_loss_exposure_seconds:seconds_to_objective{db_cluster=\"orders\"}";
        wait_series(prom, q, "orders exposure growing").await;
        wait_series(prom, "rpo_pg_replay_paused{node=\"r1\"} == 1", "replay paused seen").await;
        let propagated = prom
            .wait_for("rpo_dns_propagation_seconds{record=\"www.lab.test.\"}", WAIT, |r| {
                r.as_array().is_some_and(|a| !a.is_empty())
            })
            .await;
        if let Err(e) = propagated {
            let mut seen = String::new();
            for exporter in exporters {
                let text = exporter.scrape_text().await;
                let dns: Vec<&str> = text.lines().filter(|l| l.starts_with("rpo_dns_")).collect();
                seen.push_str(&format!(
                    "--- {}:\n{}\nlog:\n{}\n",
                    exporter.addr,
                    dns.join("\n"),
                    exporter.log()
                ));
            }
            panic!("www never propagated: {e:#}\n{seen}");
        }
    }

    async fn resume_replay(&self) {
        self.pg.pg.node("r1").execute("SELECT pg_wal_replay_resume()").await.unwrap();
    }

    /// What the overview's "Regions side by side" must show per region in its node
    /// columns, whatever the layout: nodes up (all of them), down (none), writable.
    fn expected_regions(&self) -> [(&'static str, BTreeMap<String, f64>); 3] {
        let mut up = BTreeMap::new();
        let mut writable = BTreeMap::new();
        for (node, region) in self.nodes() {
            *up.entry(region.clone()).or_insert(0.0) += 1.0;
            let writer = WRITERS.contains(&node.as_str());
            *writable.entry(region.clone()).or_insert(0.0) += if writer { 1.0 } else { 0.0 };
        }
        let down = up.keys().map(|r| (r.clone(), 0.0)).collect();
        [("A", up), ("B", down), ("C", writable)]
    }

    /// The regions of the lab's replicas: the rows of the exposure columns.
    fn replica_regions(&self) -> BTreeSet<String> {
        self.nodes().filter(|(n, _)| REPLICAS.contains(&n.as_str())).map(|(_, r)| r.clone()).collect()
    }
}

/// Waits up to [`WAIT`] until `q` returns a series on `prom`; panics with `what` and its
/// log.
async fn wait_series(prom: &Prometheus, q: &str, what: &str) {
    prom.wait_for(q, WAIT, |r| r.as_array().is_some_and(|a| !a.is_empty()))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e:#}\n{}", prom.log_tail(20)));
}

/// What running every dashboard query against one Prometheus found.
#[derive(Default)]
struct Checked {
    /// One line per dashboard.
    report: Vec<String>,
    failures: Vec<String>,
    used_exceptions: BTreeSet<String>,
    panels: usize,
    queries: usize,
    variable_queries: usize,
    /// The result of each (dashboard uid, panel title, refId) with every variable at
    /// "All" (a repeated panel: its first value).
    results: BTreeMap<(String, String, String), Value>,
}

impl Checked {
    /// The report and the totals, for the test's output.
    fn summary(&self, layout: &str, times: &str) -> String {
        format!(
            "dashboards against live data, {layout} ({times}):\n{}\n  total: {} panels, \
             {} panel and annotation queries, {} variable queries; {} exceptions used",
            self.report.join("\n"),
            self.panels,
            self.queries,
            self.variable_queries,
            self.used_exceptions.len()
        )
    }

    /// The rows of the overview's "Regions side by side" target `ref_id`: region_name →
    /// value.
    fn side_by_side(&self, ref_id: &str) -> BTreeMap<String, f64> {
        let key = ("rpo-overview".to_owned(), "Regions side by side".to_owned(), ref_id.to_owned());
        let result = self.results.get(&key).unwrap_or_else(|| panic!("no query {key:?}"));
        let mut rows = BTreeMap::new();
        for s in result.as_array().into_iter().flatten() {
            let region = s["metric"]["region_name"].as_str().unwrap_or_else(|| panic!("no region_name: {s}"));
            let value: f64 = s["value"][1].as_str().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
            assert!(rows.insert(region.to_owned(), value).is_none(), "region {region} twice in {result}");
        }
        rows
    }
}

/// Evaluates every dashboard's variables through `prom` as Grafana would, substitutes
/// their real values and runs every panel and annotation query.
async fn check_every_query(prom: &Prometheus) -> Checked {
    let exceptions: BTreeMap<(&str, &str, &str), &str> =
        EXCEPTIONS.iter().map(|(d, p, r, why)| ((*d, *p, *r), *why)).collect();
    let mut checked = Checked::default();
    for (file, d) in dashboards() {
        let mut known: BTreeMap<String, String> =
            BUILTINS.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for v in variables(&d).into_iter().filter(|v| v["type"] == "query") {
            let name = v["name"].as_str().unwrap().to_owned();
            let found = variable_values(prom, v, &known).await;
            checked.variable_queries += 1;
            if found.is_empty() {
                checked
                    .failures
                    .push(format!("{file}: variable {name} has no values ({})", variable_query(v)));
                continue;
            }
            known.insert(name.clone(), format_values(&found));
            values.insert(name, found);
        }
        let mut ran = 0;
        for q in queries(&d) {
            // A repeated panel runs once per value of its variable, the others at "All".
            let runs: Vec<BTreeMap<String, String>> =
                match q.repeat.and_then(|r| values.get(r).map(|v| (r, v))) {
                    Some((r, vals)) => vals
                        .iter()
                        .map(|one| {
                            let mut k = known.clone();
                            k.insert(r.to_owned(), format_values(std::slice::from_ref(one)));
                            k
                        })
                        .collect(),
                    None => vec![known.clone()],
                };
            for vars in runs {
                let expr = substitute(q.expr, &vars);
                ran += 1;
                let key = (uid(&d), q.panel.as_str(), q.ref_id.as_str());
                match prom.query(&expr).await {
                    Err(e) => checked.failures.push(format!("{file} {:?} {}: {e:#}", q.panel, q.ref_id)),
                    Ok(r) => {
                        let found = r.as_array().map_or(0, Vec::len);
                        if found > 0 && std::env::var_os("RPO_DASHBOARDS_VERBOSE").is_some() {
                            eprintln!(
                                "{} {:?} {}: {found} series: {}",
                                uid(&d),
                                q.panel,
                                q.ref_id,
                                r.to_string().chars().take(400).collect::<String>()
                            );
                        }
                        if found == 0 {
                            if exceptions.contains_key(&key) {
                                checked.used_exceptions.insert(format!("{} {:?} {}", key.0, key.1, key.2));
                            } else {
                                checked.failures.push(format!(
                                    "{file} {:?} {}: no series ({r})\n    {expr}",
                                    q.panel, q.ref_id
                                ));
                            }
                        }
                        let key = (key.0.to_owned(), key.1.to_owned(), key.2.to_owned());
                        checked.results.entry(key).or_insert(r);
                    }
                }
            }
        }
        let n_panels = panels(&d).len();
        checked.panels += n_panels;
        checked.queries += ran;
        checked.report.push(format!(
            "  {:<20} {:<42} {:>2} panels in {} rows, {:>3} queries",
            uid(&d),
            d["title"].as_str().unwrap_or_default(),
            n_panels,
            rows(&d),
            ran
        ));
    }
    checked
}

/// The overview's "Regions side by side" shows one row per region of the lab in its node
/// columns (nodes up, down, writable), with the lab's counts.
fn check_regions_side_by_side(live: &Live, checked: &Checked) -> Vec<String> {
    let mut problems = Vec::new();
    for (ref_id, expected) in live.expected_regions() {
        let rows = checked.side_by_side(ref_id);
        if rows != expected {
            problems.push(format!("\"Regions side by side\" {ref_id}: rows {rows:?}, expected {expected:?}"));
        }
    }
    problems
}

/// The single-Prometheus layout: one exporter watching every node of both clusters, with
/// health probes and DNS, and one Prometheus scraping it with both rule sets loaded.
#[tokio::test(flavor = "multi_thread")]
async fn every_dashboard_query_returns_data_from_a_live_lab() {
    let mut live = Live::start().await;
    let config =
        format!("{}{}", live.clusters_yaml(|_| true), live.health_and_dns_yaml("follow_cluster: orders"));
    let exporter = Exporter::start(&config).await;
    wait_for_pair(&exporter, &pg_pair(&live.pg, "p", "r1")).await;
    wait_for_pair(&exporter, &live.my.pair_in("accounts", "a", "m")).await;
    wait_for_pair(&exporter, &live.my.pair_in("accounts", "a2", "m")).await;
    let lab_ready = live.started.elapsed().as_secs_f64();

    let mut options =
        PrometheusOptions::new(std::slice::from_ref(&exporter.addr)).scrape_interval(Duration::from_secs(1));
    for file in rule_files() {
        options = options.rule_file(file);
    }
    let prom = Prometheus::start_with(&options).await.expect("start Prometheus");
    wait_series(&prom, "up{job=\"rpo\"} == 1", "first scrape").await;
    live.make_events(&prom, &[&exporter]).await;
    let data_ready = live.started.elapsed().as_secs_f64();

    let checked = check_every_query(&prom).await;
    let mut failures = checked.failures.clone();
    failures.extend(check_regions_side_by_side(&live, &checked));
    println!(
        "{}",
        checked.summary(
            "one Prometheus",
            &format!(
                "lab ready {lab_ready:.1} s, data ready {data_ready:.1} s, done {:.1} s",
                live.started.elapsed().as_secs_f64()
            )
        )
    );
    assert!(failures.is_empty(), "{} failing queries:\n{}", failures.len(), failures.join("\n"));
    live.resume_replay().await;
}

/// What the shipped multi-region Prometheus configs say, for the lab to do the same.
struct Layout {
    /// deploy/prometheus/regional.yml: the exporters' scrape job, and the external labels
    /// (the region's own replaced per region).
    regional_job: String,
    regional_labels: Vec<(String, String)>,
    /// deploy/prometheus/global.yml: the federation job, its `match[]` selectors, the
    /// target label naming each source's region, and the global external labels.
    federation_job: String,
    matchers: Vec<String>,
    region_label: String,
    global_labels: Vec<(String, String)>,
}

impl Layout {
    fn read() -> Layout {
        let read = |p: &str| -> Value {
            let text = std::fs::read_to_string(repo(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{p}: {e}"))
        };
        let labels = |v: &Value| -> Vec<(String, String)> {
            let map = v.as_object().expect("external_labels");
            map.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect()
        };
        let regional = read("deploy/prometheus/regional.yml");
        let global = read("deploy/prometheus/global.yml");
        let federation = &global["scrape_configs"][0];
        assert_eq!(federation["honor_labels"], true, "global.yml: honor_labels");
        assert_eq!(federation["metrics_path"], "/federate", "global.yml: metrics_path");
        let target_labels: BTreeSet<&String> = federation["static_configs"]
            .as_array()
            .expect("global.yml: static_configs")
            .iter()
            .flat_map(|s| s["labels"].as_object().expect("global.yml: each target's labels").keys())
            .collect();
        assert_eq!(target_labels.len(), 1, "global.yml: one label names each source's region");
        let region_label = target_labels.into_iter().next().unwrap().clone();
        let regional_labels = labels(&regional["global"]["external_labels"]);
        assert!(
            regional_labels.iter().any(|(n, _)| *n == region_label),
            "regional.yml sets no {region_label} external label, which global.yml labels each source with"
        );
        Layout {
            regional_job: regional["scrape_configs"][0]["job_name"].as_str().unwrap().to_owned(),
            regional_labels,
            federation_job: federation["job_name"].as_str().unwrap().to_owned(),
            matchers: federation["params"]["match[]"]
                .as_array()
                .expect("global.yml: match[]")
                .iter()
                .map(|m| m.as_str().unwrap().to_owned())
                .collect(),
            region_label,
            global_labels: labels(&global["global"]["external_labels"]),
        }
    }
}

/// The multi-region layout: one exporter per region watching only that region's nodes
/// (as sidecars do), one regional Prometheus per region with the regional rules, and a
/// global Prometheus federating them with the global rules, as deploy/prometheus/
/// regional.yml and global.yml configure them. The dashboards run against the global one.
#[tokio::test(flavor = "multi_thread")]
async fn every_dashboard_query_returns_data_on_a_global_prometheus() {
    let layout = Layout::read();
    let mut live = Live::start().await;
    let regions = live.regions();
    assert!(regions.len() >= 3, "lab regions: {regions:?}");
    // Each region's exporter lists its region's nodes only. Region health and DNS are
    // per vantage point: every region's exporter probes them. `www` expects a fixed
    // region here: following a cluster needs a node of it in every answer's region.
    let mut exporters = Vec::new();
    for region in &regions {
        let config = format!(
            "{}{}",
            live.clusters_yaml(|r| r == region),
            live.health_and_dns_yaml("active_region: us-east-1")
        );
        exporters.push((region.clone(), Exporter::start(&config).await));
    }
    let exporter_of = |node: &str| {
        let region = live.nodes().find(|(n, _)| n == node).map(|(_, r)| r).unwrap();
        &exporters.iter().find(|(r, _)| r == region).unwrap().1
    };
    wait_for_pair(exporter_of("r1"), &pg_pair(&live.pg, "p", "r1")).await;
    wait_for_pair(exporter_of("m"), &live.my.pair_in("accounts", "a", "m")).await;
    wait_for_pair(exporter_of("m"), &live.my.pair_in("accounts", "a2", "m")).await;
    let lab_ready = live.started.elapsed().as_secs_f64();

    // The regional Prometheus servers, started together.
    let mut starting = tokio::task::JoinSet::new();
    for (region, exporter) in &exporters {
        let mut options = PrometheusOptions::new(std::slice::from_ref(&exporter.addr))
            .scrape_interval(Duration::from_secs(1))
            .job_name(&layout.regional_job);
        for (name, value) in &layout.regional_labels {
            let value = if *name == layout.region_label { region } else { value };
            options = options.external_label(name, value);
        }
        for file in rule_set("regional") {
            options = options.rule_file(file);
        }
        let region = region.clone();
        starting.spawn(async move { (region, Prometheus::start_with(&options).await) });
    }
    let mut regional = Vec::new();
    while let Some(started) = starting.join_next().await {
        let (region, prom) = started.unwrap();
        regional.push((region, prom.expect("start a regional Prometheus")));
    }
    regional.sort_by_key(|(r, _)| regions.iter().position(|x| x == r));
    // The global Prometheus: it scrapes no exporter, it federates the regional ones.
    let sources: Vec<(String, String)> =
        regional.iter().map(|(r, p)| (p.url().trim_start_matches("http://").to_owned(), r.clone())).collect();
    let matchers: Vec<&str> = layout.matchers.iter().map(String::as_str).collect();
    let mut options = PrometheusOptions::new(&[]).scrape_interval(Duration::from_secs(1)).federate(
        &layout.federation_job,
        &sources,
        &layout.region_label,
        &matchers,
    );
    for (name, value) in &layout.global_labels {
        options = options.external_label(name, value);
    }
    for file in rule_set("global") {
        options = options.rule_file(file);
    }
    let global = Prometheus::start_with(&options).await.expect("start the global Prometheus");
    let every_region = |r: &Value| r.as_array().is_some_and(|a| a.len() == regions.len());
    let q = format!("up{{job=\"{}\"}} == 1", layout.federation_job);
    global
        .wait_for(&q, WAIT, every_region)
        .await
        .unwrap_or_else(|e| panic!("federation: {e:#}\n{}", global.log_tail(20)));
    let q = format!("count by ({}) (rpo_node_up)", layout.region_label);
    global
        .wait_for(&q, WAIT, every_region)
        .await
        .unwrap_or_else(|e| panic!("every region's nodes federated: {e:#}\n{}", global.log_tail(20)));
    let all: Vec<&Exporter> = exporters.iter().map(|(_, e)| e).collect();
    live.make_events(&global, &all).await;
    let data_ready = live.started.elapsed().as_secs_f64();

    let checked = check_every_query(&global).await;
    let mut failures = checked.failures.clone();
    failures.extend(check_regions_side_by_side(&live, &checked));
    // Its exposure columns have a row per replica region. (A per-cluster exporter also
    // reports `missing` pairs between the two MariaDB writers, which do not replicate each
    // other; sidecars, each writing only its own node, do not.)
    for ref_id in ["D", "E"] {
        let rows: BTreeSet<String> = checked.side_by_side(ref_id).into_keys().collect();
        if rows != live.replica_regions() {
            failures.push(format!(
                "\"Regions side by side\" {ref_id}: rows {rows:?}, expected the replicas' regions {:?}",
                live.replica_regions()
            ));
        }
    }
    // Those rows are keyed by the external label: every database series on the global
    // Prometheus carries it (none reaches the panel's fallback to node_region).
    let unlabelled = format!("count by (__name__) ({{__name__=~\"rpo_.+\", {}=\"\"}})", layout.region_label);
    let found = global.query(&unlabelled).await.unwrap();
    if found.as_array().is_some_and(|a| !a.is_empty()) {
        failures.push(format!("series without the {} external label: {found}", layout.region_label));
    }
    println!(
        "{}",
        checked.summary(
            &format!("global Prometheus federating {} regional ones", regional.len()),
            &format!(
                "lab ready {lab_ready:.1} s, data ready {data_ready:.1} s, done {:.1} s",
                live.started.elapsed().as_secs_f64()
            )
        )
    );
    assert!(failures.is_empty(), "{} failing queries:\n{}", failures.len(), failures.join("\n"));
    live.resume_replay().await;
}
