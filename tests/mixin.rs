//! The monitoring mixin (mixin/): one jsonnet source for the rule files, the Prometheus
//! Operator PrometheusRules and the Grafana dashboards.
//!
//! - The committed generated files are what scripts/gen-mixin.sh renders now: it renders
//!   into a temporary directory and every file must be equal (and no generated-looking
//!   file may be left over from an older rendering).
//! - The YAML writer of mixin/lib/yaml.libsonnet is right: every rule file read back is
//!   the data jsonnet meant.
//! - `_config` really drives the output: rendered with another job selector, metric
//!   selector, region label and environment label, no default name is left in a rule or
//!   dashboard query, and promtool accepts the rule files.
//!
//! jsonnet and promtool come from Debian (scripts/install-deps.sh). A missing tool fails
//! the test; it never skips.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn tool(name: &str) -> PathBuf {
    rpo_lab::find_program(name).unwrap_or_else(|e| {
        panic!("{e:#} (run scripts/install-deps.sh: jsonnet and promtool are Debian packages)")
    })
}

/// Runs a command in the repository; panics with its output unless it succeeds. Returns stdout.
fn run(cmd: &mut Command) -> String {
    let out = cmd.current_dir(root()).output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Every file under `dir`, relative to it, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Renders the mixin with its defaults into a temporary directory, as the script does.
fn render_defaults() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    // The script finds jsonnet on PATH; make sure the test's lookup agrees.
    tool("jsonnet");
    run(Command::new("bash").arg(root().join("scripts/gen-mixin.sh")).arg(dir.path()));
    dir
}

#[test]
fn committed_files_are_what_the_mixin_renders() {
    let dir = render_defaults();
    let generated = files_under(dir.path());
    assert!(generated.len() >= 11, "rendered only {generated:?}");
    let mut stale = Vec::new();
    for f in &generated {
        let fresh = std::fs::read_to_string(dir.path().join(f)).unwrap();
        match std::fs::read_to_string(root().join(f)) {
            Ok(committed) if committed == fresh => {}
            Ok(committed) => {
                let line = committed
                    .lines()
                    .zip(fresh.lines())
                    .position(|(a, b)| a != b)
                    .map_or_else(|| committed.lines().count().min(fresh.lines().count()) + 1, |i| i + 1);
                stale.push(format!("{f} differs from what mixin/ renders (first at line {line})"));
            }
            Err(e) => stale.push(format!("{f} is rendered but not committed ({e})")),
        }
    }
    // Files in the generated places that the mixin no longer renders.
    let generated: BTreeSet<&String> = generated.iter().collect();
    for (dir, ext) in [("alerts/regional", "yml"), ("alerts/global", "yml"), ("dashboards", "json")] {
        for f in files_under(&root().join(dir)) {
            let path = format!("{dir}/{f}");
            if path.ends_with(ext) && !generated.contains(&path) {
                stale.push(format!("{path} is not rendered by mixin/: remove it or add it to the mixin"));
            }
        }
    }
    for f in files_under(&root().join("deploy/kubernetes")) {
        let path = format!("deploy/kubernetes/{f}");
        if f.starts_with("prometheusrule") && !generated.contains(&path) {
            stale.push(format!("{path} is not rendered by mixin/"));
        }
    }
    assert!(
        stale.is_empty(),
        "the generated files are out of date with mixin/: run scripts/gen-mixin.sh and commit the result\n  {}",
        stale.join("\n  ")
    );
    println!("{} generated files are current", generated.len());
}

#[test]
fn rule_files_read_back_as_the_mixin_data() {
    let data: Value =
        serde_json::from_str(&run(Command::new(tool("jsonnet")).arg("mixin/rule-data.jsonnet")))
            .expect("rule-data.jsonnet is JSON");
    let files = data.as_object().unwrap();
    assert!(files.len() >= 6, "{:?}", files.keys());
    for (path, want) in files {
        let text = std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        let got: Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: not YAML: {e}"));
        assert_eq!(&got, want, "{path}: the written YAML reads back differently from the mixin's data");
    }
}

/// The mixin rendered with a `_config` that changes every name the defaults use.
fn render_custom(dir: &Path) -> Vec<String> {
    let code = r#"
      local mixin = (import 'mixin/mixin.libsonnet') + {
        _config+:: {
          jobSelector: 'job="db-sidecars"',
          metricSelector: 'tier="db"',
          regionLabel: 'dc',
          environmentLabels: ['tenant', 'stage'],
          federationSelector: 'job="fed"',
          regionalMemory: '2h',
          runbookURLBase: 'https://wiki.example.com/rpo/',
          severities+: { RPOBreached: 'warning' },
        },
      };
      (import 'mixin/files.libsonnet')(mixin)
    "#;
    let listed = run(Command::new(tool("jsonnet"))
        .args(["-e", &format!("local f = {code}; std.objectFields(f.text) + std.objectFields(f.json)")]));
    let files: Vec<String> = serde_json::from_str(&listed).unwrap();
    for f in &files {
        std::fs::create_dir_all(dir.join(f).parent().unwrap()).unwrap();
    }
    run(Command::new(tool("jsonnet")).args(["-S", "-m"]).arg(dir).args(["-e", &format!("({code}).text")]));
    run(Command::new(tool("jsonnet")).args(["-m"]).arg(dir).args(["-e", &format!("({code}).json")]));
    files
}

#[test]
fn config_drives_every_selector_and_label() {
    let dir = tempfile::tempdir().unwrap();
    let files = render_custom(dir.path());
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    let rule_files: Vec<&String> = files.iter().filter(|f| f.starts_with("alerts/")).collect();
    assert!(rule_files.len() >= 6, "{files:?}");

    // promtool accepts what the other config renders.
    let paths: Vec<PathBuf> = rule_files.iter().map(|f| dir.path().join(f)).collect();
    println!("{}", run(Command::new(tool("promtool")).args(["check", "rules"]).args(&paths)));

    let mut problems = Vec::new();
    let mut exprs = Vec::new();
    for f in &rule_files {
        let doc: Value = serde_saphyr::from_str(&read(f)).unwrap();
        for g in doc["groups"].as_array().unwrap() {
            for r in g["rules"].as_array().unwrap() {
                let what = format!("{f} {}", r["alert"].as_str().or(r["record"].as_str()).unwrap());
                let expr = r["expr"].as_str().unwrap().to_owned();
                if let Some(url) = r["annotations"]["runbook_url"].as_str() {
                    if !url.starts_with("https://wiki.example.com/rpo/") {
                        problems.push(format!("{what}: runbook_url {url}"));
                    }
                }
                if r["alert"] == "RPOBreached" && r["labels"]["severity"] != "warning" {
                    problems.push(format!("{what}: severity mapping ignored"));
                }
                exprs.push((what, expr));
            }
        }
    }
    let dashboards: Vec<&String> = files.iter().filter(|f| f.starts_with("dashboards/")).collect();
    assert_eq!(dashboards.len(), 3, "{files:?}");
    for f in &dashboards {
        let d: Value = serde_json::from_str(&read(f)).unwrap_or_else(|e| panic!("{f}: not JSON: {e}"));
        collect_queries(&d, f, &mut exprs);
    }
    let all_rules = exprs.iter().filter(|(w, _)| w.starts_with("alerts/")).count();
    assert!(all_rules >= 40 && exprs.len() > all_rules + 80, "{} queries", exprs.len());

    for (what, expr) in &exprs {
        // No default name survives.
        for default in ["rpo-exporter", "rpo-federate", "region", "env", "[6h]"] {
            let hit = match default {
                // As a label name: `region` and `env` in a grouping or a matcher.
                "region" | "env" => label_names(expr).contains(default),
                _ => expr.contains(default),
            };
            // RPOExporterDown's second branch keeps its own 6 h look-back.
            if hit && !(default == "[6h]" && expr.contains("rpo_exporter_build_info")) {
                problems.push(format!("{what}: `{default}` is hard-coded:\n    {expr}"));
            }
        }
        // Every rpo_* selector carries the metric selector.
        for sel in rpo_selectors(expr) {
            if !sel.contains(r#"tier="db""#) {
                problems.push(format!("{what}: selector `{sel}` lacks the metricSelector"));
            }
        }
    }
    // The configured labels are where the defaults were.
    let joined: String = exprs.iter().map(|(_, e)| e.as_str()).collect::<Vec<_>>().join("\n");
    for needle in [
        "by (dc, tenant, stage, db_cluster",
        "by (tenant, stage, db_cluster",
        r#"up{job="db-sidecars"}"#,
        r#"up{job="fed"}"#,
        "[2h]",
    ] {
        if !joined.contains(needle) {
            problems.push(format!("no query contains `{needle}`"));
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

/// Every `expr` and variable query of a dashboard.
fn collect_queries(v: &Value, file: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match (k.as_str(), child) {
                    ("expr" | "definition", Value::String(s)) => out.push((file.to_owned(), s.clone())),
                    ("query", Value::String(s)) if s.contains("rpo_") => {
                        out.push((file.to_owned(), s.clone()))
                    }
                    _ => collect_queries(child, file, out),
                }
            }
        }
        Value::Array(list) => list.iter().for_each(|c| collect_queries(c, file, out)),
        _ => {}
    }
}

/// Label names used in groupings (`by (…)`, `on (…)`) and matchers (`name=`, `name!=`,
/// `name=~`) of a query, and label_replace's target and source labels.
fn label_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for keyword in ["by (", "on (", "ignoring (", "without (", "group_left (", "group_right ("] {
        for (at, _) in expr.match_indices(keyword) {
            let rest = &expr[at + keyword.len()..];
            for l in rest[..rest.find(')').unwrap_or(0)].split(',') {
                out.insert(l.trim().to_owned());
            }
        }
    }
    let chars: Vec<char> = expr.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if (*c == '=' || *c == '!') && i > 0 {
            let mut j = i;
            while j > 0 && (chars[j - 1].is_ascii_alphanumeric() || chars[j - 1] == '_') {
                j -= 1;
            }
            if j < i && (j == 0 || matches!(chars[j - 1], '{' | ',' | ' ')) {
                out.insert(chars[j..i].iter().collect());
            }
        }
    }
    for (at, _) in expr.match_indices("label_replace(") {
        // label_replace(v, "dst", "repl", "src", "regex"): the quoted dst and src.
        let quoted: Vec<&str> = expr[at..].split('"').skip(1).step_by(2).take(3).collect();
        if quoted.len() == 3 {
            out.insert(quoted[0].to_owned());
            out.insert(quoted[2].to_owned());
        }
    }
    out
}

/// The `rpo_*` selectors of a query: a metric name and its `{…}`, if any.
fn rpo_selectors(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find("rpo_").map(|a| a + i) {
        let starts_word = at == 0
            || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_' || bytes[at - 1] == b':');
        let mut end = at;
        while end < bytes.len()
            && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_' || bytes[end] == b':')
        {
            end += 1;
        }
        let name = &expr[at..end];
        // Skip names inside strings (annotation-like text) and recorded names (level:…).
        let in_string = expr[..at].matches('"').count() % 2 == 1;
        if starts_word && !in_string && !name.contains(':') {
            let sel = if expr[end..].starts_with('{') {
                let close = expr[end..].find('}').map_or(expr.len(), |c| end + c + 1);
                &expr[at..close]
            } else {
                name
            };
            out.push(sel.to_owned());
        }
        i = end.max(at + 4);
    }
    out
}
