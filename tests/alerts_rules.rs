//! The shipped alert rules and Alertmanager example, checked the way operators check
//! theirs: `promtool check rules`, `promtool test rules` on the unit tests in
//! alerts/tests/, `amtool check-config` and its routing tree. Then what the tools do not
//! check: every alert has a severity, a summary, a templated description and a runbook
//! that exists (and every runbook page belongs to an alert), every alert is unit-tested
//! both firing and quiet, the rules use only metrics docs/metrics.md documents, and the
//! split by where rules can run holds: the regional set (alerts/regional/) names no
//! alert of the global set (alerts/global/) and needs none of its recordings, and every
//! `by (…)`/`on (…)` keeps the region label (regional) or the environment label.
//!
//! The rule files are generated from mixin/ (tests/mixin.rs checks they are current).
//!
//! promtool and amtool come from Debian's prometheus and prometheus-alertmanager
//! packages (scripts/install-deps.sh). A missing tool fails the test; it never skips.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const RUNBOOK_BASE: &str = "https://github.com/rpo-exporter/rpo-exporter/blob/main/docs/runbooks/";
const SEVERITIES: &[&str] = &["critical", "warning", "info"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `*.yml` files directly in `dir` (relative to the repository), sorted.
fn yml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("reading {dir}/: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.yml in {dir}/");
    files
}

/// The rule sets, by where they run.
const SETS: &[&str] = &["alerts/regional", "alerts/global"];

/// The rule files of both sets.
fn rule_files() -> Vec<PathBuf> {
    SETS.iter().flat_map(|set| yml_files(set)).collect()
}

/// The unit test files: alerts/tests/<layout>/*.yml.
fn test_files() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("alerts/tests"))
        .expect("alerts/tests/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.iter().flat_map(|d| yml_files(&rel(d))).collect()
}

/// A tool from the Debian packages ([`rpo_lab::find_program`]). Panics (fails the test)
/// when it is missing.
fn tool(name: &str) -> PathBuf {
    rpo_lab::find_program(name).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Runs `tool args…` in the repository; panics with its whole output unless it succeeds.
/// Returns stdout.
fn run(name: &str, args: &[&str]) -> String {
    let out = Command::new(tool(name))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("running {name}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "`{name} {}` failed ({}):\n{stdout}\n{stderr}", args.join(" "), out.status);
    stdout
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: not YAML: {e}", rel(path)))
}

/// Every rule of `files` (alerting and recording).
fn rules_of(files: &[PathBuf]) -> Vec<Value> {
    files
        .iter()
        .flat_map(|f| {
            let doc = yaml(f);
            let groups = doc["groups"].as_array().cloned().unwrap_or_default();
            groups.into_iter().flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        })
        .collect()
}

/// Every rule of both sets.
fn rules() -> Vec<Value> {
    rules_of(&rule_files())
}

fn alerts() -> BTreeMap<String, Value> {
    let alerts: BTreeMap<String, Value> =
        rules().into_iter().filter_map(|r| Some((r["alert"].as_str()?.to_owned(), r))).collect();
    assert!(alerts.len() >= 10, "expected the shipped alerts, found {:?}", alerts.keys());
    alerts
}

#[test]
fn promtool_checks_the_rule_files() {
    let files: Vec<String> = rule_files().iter().map(|f| rel(f)).collect();
    let args: Vec<&str> = ["check", "rules"].into_iter().chain(files.iter().map(String::as_str)).collect();
    let out = run("promtool", &args);
    println!("{out}");
}

#[test]
fn promtool_unit_tests_pass() {
    let files: Vec<String> = test_files().iter().map(|f| rel(f)).collect();
    assert!(
        files.iter().any(|f| f.starts_with("alerts/tests/regional/"))
            && files.iter().any(|f| f.starts_with("alerts/tests/global/")),
        "unit tests must cover both sets: {files:?}"
    );
    let args: Vec<&str> = ["test", "rules"].into_iter().chain(files.iter().map(String::as_str)).collect();
    let out = run("promtool", &args);
    println!("{out}");
}

#[test]
fn alertmanager_example_is_valid_and_routes_by_severity() {
    const CONFIG: &str = "deploy/alertmanager/alertmanager.yml";
    println!("{}", run("amtool", &["check-config", CONFIG]));
    for (severity, receiver) in [("critical", "pager"), ("warning", "ticket"), ("info", "null")] {
        let matched = run(
            "amtool",
            &[
                "config",
                "routes",
                "test",
                &format!("--config.file={CONFIG}"),
                "alertname=RPOBreached",
                "db_cluster=orders",
                &format!("severity={severity}"),
            ],
        );
        assert_eq!(matched.trim(), receiver, "severity={severity} routes to {matched:?}, want {receiver}");
    }
    // Every severity the rules use has a route (checked above); every inhibition names
    // alerts that exist.
    let names = alerts();
    let config = yaml(&root().join(CONFIG));
    for rule in config["inhibit_rules"].as_array().expect("inhibit_rules") {
        for side in ["source_matchers", "target_matchers"] {
            for m in rule[side].as_array().unwrap() {
                let m = m.as_str().unwrap();
                let Some(value) = m.strip_prefix("alertname=~").or_else(|| m.strip_prefix("alertname="))
                else {
                    continue;
                };
                for name in value.trim_matches('"').split('|') {
                    assert!(names.contains_key(name), "{CONFIG}: inhibit rule names unknown alert {name}");
                }
            }
        }
    }
}

#[test]
fn every_alert_has_severity_summary_description_and_runbook() {
    let pages_dir = root().join("docs/runbooks");
    let mut linked = BTreeSet::new();
    for (name, rule) in alerts() {
        let severity = rule["labels"]["severity"].as_str().unwrap_or("");
        assert!(SEVERITIES.contains(&severity), "{name}: severity {severity:?} is not one of {SEVERITIES:?}");
        let ann = &rule["annotations"];
        let summary = ann["summary"].as_str().unwrap_or("");
        assert!(!summary.is_empty() && !summary.contains("{{"), "{name}: summary must be static text");
        let description = ann["description"].as_str().unwrap_or("");
        assert!(
            description.contains("{{") && description.contains("$labels."),
            "{name}: description must be templated: name the cluster (or record, exporter), regions and values"
        );
        let url = ann["runbook_url"].as_str().unwrap_or("");
        let page = url
            .strip_prefix(RUNBOOK_BASE)
            .unwrap_or_else(|| panic!("{name}: runbook_url {url:?} must start with {RUNBOOK_BASE}"));
        let path = pages_dir.join(page);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{name}: runbook {} missing: {e}", rel(&path)));
        assert!(text.contains(&name), "{}: the runbook does not name its alert {name}", rel(&path));
        linked.insert(page.to_owned());
    }
    let index = std::fs::read_to_string(pages_dir.join("README.md")).expect("docs/runbooks/README.md");
    for entry in std::fs::read_dir(&pages_dir).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        if file == "README.md" {
            continue;
        }
        assert!(
            linked.contains(&file),
            "docs/runbooks/{file} belongs to no alert (no runbook_url points at it)"
        );
        assert!(index.contains(&format!("({file})")), "docs/runbooks/README.md does not link {file}");
    }
}

#[test]
fn every_alert_is_unit_tested_firing_and_quiet() {
    let (mut firing, mut quiet) = (BTreeSet::new(), BTreeSet::new());
    for file in test_files() {
        let doc = yaml(&file);
        for test in doc["tests"].as_array().unwrap_or(&Vec::new()) {
            for case in test["alert_rule_test"].as_array().unwrap_or(&Vec::new()) {
                let name = case["alertname"].as_str().unwrap().to_owned();
                match case["exp_alerts"].as_array() {
                    Some(list) if !list.is_empty() => firing.insert(name),
                    _ => quiet.insert(name),
                };
            }
        }
    }
    for name in alerts().keys() {
        assert!(firing.contains(name), "{name}: no unit test in alerts/tests/ where it fires");
        assert!(quiet.contains(name), "{name}: no unit test in alerts/tests/ where it stays quiet");
    }
}

#[test]
fn rules_use_only_documented_metrics_and_defined_recordings() {
    let docs = std::fs::read_to_string(root().join("docs/metrics.md")).unwrap();
    let documented: BTreeSet<String> = metric_names(&docs).filter(|n| n.starts_with("rpo_")).collect();
    let all = rules();
    let recorded: BTreeSet<String> =
        all.iter().filter_map(|r| r["record"].as_str().map(str::to_owned)).collect();
    for rule in &all {
        let what = rule["alert"].as_str().or(rule["record"].as_str()).unwrap_or("?").to_owned();
        // Metric names in the expression and in the annotations' queries.
        let mut text = rule["expr"].as_str().unwrap_or("").to_owned();
        if let Some(ann) = rule["annotations"].as_object() {
            for value in ann.values().filter_map(Value::as_str) {
                text.push('\n');
                text.push_str(value);
            }
        }
        for name in metric_names(&text) {
            if name.contains(':') {
                assert!(recorded.contains(&name), "{what}: uses {name}, which no rule records");
            } else if name.starts_with("rpo_") {
                // Counters are documented with their _total name already.
                assert!(
                    documented.contains(&name),
                    "{what}: uses {name}, which docs/metrics.md does not list"
                );
            }
        }
    }
}

/// Alert names and recorded names of one set.
fn names(set: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let rules = rules_of(&yml_files(set));
    let alerts = rules.iter().filter_map(|r| r["alert"].as_str().map(str::to_owned)).collect();
    let records = rules.iter().filter_map(|r| r["record"].as_str().map(str::to_owned)).collect();
    (alerts, records)
}

#[test]
fn regional_set_stands_alone() {
    let (regional_alerts, regional_records) = names("alerts/regional");
    let (global_alerts, global_records) = names("alerts/global");
    assert!(regional_alerts.len() >= 10 && global_alerts.len() >= 4, "{regional_alerts:?} {global_alerts:?}");
    let both: Vec<_> = regional_alerts.intersection(&global_alerts).collect();
    assert!(both.is_empty(), "alerts in both sets: {both:?}");
    let both: Vec<_> = regional_records.intersection(&global_records).collect();
    assert!(both.is_empty(), "recording rules in both sets (one Prometheus may load both): {both:?}");
    // Not even a mention: a regional file that names a global alert (in a comment, a
    // description) would send the reader to an alert that is not evaluated there.
    for file in yml_files("alerts/regional") {
        let text = std::fs::read_to_string(&file).unwrap();
        let words: BTreeSet<&str> =
            text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).collect();
        for name in global_alerts.iter().chain(&global_records) {
            assert!(!words.contains(name.as_str()), "{} names {name} of the global set", rel(&file));
        }
    }
    // What the regional rules read is recorded in the regional set itself.
    for rule in rules_of(&yml_files("alerts/regional")) {
        let what = rule["alert"].as_str().or(rule["record"].as_str()).unwrap_or("?").to_owned();
        for name in metric_names(rule["expr"].as_str().unwrap_or("")).filter(|n| n.contains(':')) {
            assert!(
                regional_records.contains(&name),
                "regional {what} reads {name}, not recorded regionally"
            );
        }
    }
}

/// The label lists of every `by (…)` and `on (…)` in `expr`.
fn grouping_lists(expr: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for keyword in ["by (", "on ("] {
        for (at, _) in expr.match_indices(keyword) {
            // `on (` inside `group_left ()`-less words such as "ignoring (" is not ours.
            let before = expr[..at].chars().last();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let rest = &expr[at + keyword.len()..];
            let list = &rest[..rest.find(')').unwrap()];
            out.push(list.split(',').map(|l| l.trim().to_owned()).filter(|l| !l.is_empty()).collect());
        }
    }
    out
}

#[test]
fn every_grouping_keeps_the_region_or_environment_label() {
    // The defaults of mixin/config.libsonnet.
    let (region, env) = ("region", "env");
    for (set, needs) in [("alerts/regional", &[region, env][..]), ("alerts/global", &[env][..])] {
        for rule in rules_of(&yml_files(set)) {
            let what = rule["alert"].as_str().or(rule["record"].as_str()).unwrap_or("?").to_owned();
            for list in grouping_lists(rule["expr"].as_str().unwrap_or("")) {
                // The global layer's per-region series group by the region label alone.
                let ok = needs.iter().all(|l| list.iter().any(|x| x == l))
                    || (set == "alerts/global" && list.iter().any(|x| x == region));
                assert!(ok, "{set} {what}: `({})` lacks {needs:?}", list.join(", "));
            }
        }
    }
}

/// Words that look like metric names: `rpo_…` and recording names (`level:metric:op`).
fn metric_names(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .map(|w| w.trim_matches(':'))
        .filter(|w| w.starts_with("rpo_") || (w.contains(':') && w.contains("rpo_")))
        .map(str::to_owned)
}
