//! The deployment examples in deploy/, checked offline with the tools operators use:
//! kubernetes-validate (strict OpenAPI validation of the core kinds), `promtool check
//! rules` on the generated PrometheusRule, `promtool check config` on the Prometheus
//! configs, `systemd-analyze verify` on the unit, `rpo-exporter check-config` on every
//! exporter config. Then what the tools cannot see: the PrometheusRules (one per rule
//! set, generated from mixin/ with the rule files) carry exactly the groups of
//! alerts/regional/ and alerts/global/, the PodMonitor selects the sidecars
//! and their port, the init scripts grant what `rpo-exporter schema` prints, the
//! compose file mounts files that exist; every Kubernetes layout (the sidecar of
//! deploy/kubernetes/, per-cluster/, cloudnativepg/, zalando/) wires its Services,
//! monitors, PodDisruptionBudgets, NetworkPolicies, ConfigMaps and Secrets to the pods
//! and ports that exist, and the operators' custom resources (which kubernetes-validate
//! has no schema for) name what the exporter's DSNs and mounts expect; the Grafana
//! dashboard ConfigMaps are what scripts/gen-k8s-dashboards.sh makes of dashboards/.
//!
//! No container engine or Kubernetes runs here: nothing in deploy/ is started by these
//! tests. A missing tool fails its test with what to install; it never skips.
//! kubernetes-validate is installed from PyPI into target/venv by
//! scripts/install-kubernetes-validate.sh (run by the test when missing).

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

/// Every YAML document of a file (empty documents dropped).
fn docs(rel: &str) -> Vec<Value> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&read(rel)).unwrap_or_else(|e| panic!("{rel}: not YAML: {e}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

fn yaml(rel: &str) -> Value {
    let mut d = docs(rel);
    assert_eq!(d.len(), 1, "{rel}: expected one YAML document");
    d.remove(0)
}

/// The `*.yaml`/`*.yml` files directly in `dir`, relative to the repository, sorted.
fn yaml_files(dir: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("reading {dir}/: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .map(|p| p.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML in {dir}/");
    files
}

/// A tool from the system ([`rpo_lab::find_program`]); fails the test when missing.
fn tool(name: &str) -> PathBuf {
    rpo_lab::find_program(name).unwrap_or_else(|e| panic!("{e:#}"))
}

fn output(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

/// Runs a command; panics with its whole output unless it exits 0. Returns stdout+stderr.
fn run(cmd: &mut Command) -> String {
    let out = output(cmd);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed ({}):\n{text}", out.status);
    text
}

fn exporter_bin() -> &'static str {
    env!("CARGO_BIN_EXE_rpo-exporter")
}

/// The `*.yaml` files under `dir`, at any depth, relative to the repository, sorted.
fn yaml_files_under(dir: &str) -> Vec<String> {
    let mut files = Vec::new();
    let mut dirs = vec![root().join(dir)];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("reading {}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                files.push(p.strip_prefix(root()).unwrap().display().to_string());
            }
        }
    }
    files.sort();
    files
}

/// The manifest documents of deploy/kubernetes/ and its layouts' folders, with their file.
fn manifests() -> Vec<(String, Value)> {
    yaml_files_under("deploy/kubernetes")
        .into_iter()
        .flat_map(|f| docs(&f).into_iter().map(move |d| (f.clone(), d)))
        .collect()
}

/// Kinds from CRDs: the Prometheus Operator's, CloudNativePG's Cluster, Zalando's postgresql.
fn is_custom_resource(doc: &Value) -> bool {
    doc["apiVersion"].as_str().is_some_and(|v| {
        ["monitoring.coreos.com/", "postgresql.cnpg.io/", "acid.zalan.do/"].iter().any(|g| v.starts_with(g))
    })
}

/// The one `kind` named `name` in `file`.
fn find_in<'a>(docs: &'a [(String, Value)], file: &str, kind: &str, name: &str) -> &'a Value {
    &docs
        .iter()
        .find(|(f, d)| f == file && d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {file}"))
        .1
}

fn find<'a>(docs: &'a [(String, Value)], kind: &str, name: &str) -> &'a Value {
    &docs
        .iter()
        .find(|(_, d)| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in deploy/kubernetes/"))
        .1
}

#[test]
fn kubernetes_core_manifests_are_valid() {
    let mut core = BTreeSet::new();
    let mut custom = BTreeSet::new();
    for (file, doc) in manifests() {
        if is_custom_resource(&doc) {
            custom.insert(file);
        } else {
            core.insert(file);
        }
    }
    // kubernetes-validate has no schema for CRDs: they live in files of their own and
    // are checked by the tests below.
    let mixed: Vec<_> = core.intersection(&custom).collect();
    assert!(mixed.is_empty(), "keep custom resources in files of their own: {mixed:?}");
    assert_eq!(
        custom.iter().map(String::as_str).collect::<Vec<_>>(),
        [
            "deploy/kubernetes/cloudnativepg/cluster.yaml",
            "deploy/kubernetes/cloudnativepg/servicemonitor.yaml",
            "deploy/kubernetes/per-cluster/servicemonitor.yaml",
            "deploy/kubernetes/podmonitor.yaml",
            "deploy/kubernetes/prometheusrule-global.yaml",
            "deploy/kubernetes/prometheusrule-regional.yaml",
            "deploy/kubernetes/zalando/podmonitor.yaml",
            "deploy/kubernetes/zalando/postgresql.yaml",
            "deploy/kubernetes/zalando/servicemonitor.yaml",
        ]
    );

    run(Command::new("bash").arg(root().join("scripts/install-kubernetes-validate.sh")).current_dir(root()));
    let validate = root().join("target/venv/bin/kubernetes-validate");
    let out = run(Command::new(&validate).arg("--strict").args(&core).current_dir(root()));
    println!("{out}");
    // It prints one INFO line per valid document; a warning (e.g. a schema it lacks)
    // counts as a problem too.
    let bad: Vec<&str> = out
        .lines()
        .filter(|l| !(l.trim().is_empty() || l.starts_with("INFO ") && l.contains(" passed for resource ")))
        .collect();
    assert!(bad.is_empty(), "kubernetes-validate reported:\n{}", bad.join("\n"));
    let kinds: BTreeSet<String> = manifests()
        .iter()
        .filter(|(_, d)| !is_custom_resource(d))
        .map(|(_, d)| d["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "Deployment",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Secret",
            "Service",
            "StatefulSet"
        ]
        .map(String::from)
        .into()
    );
}

#[test]
fn prometheusrules_carry_each_rule_set_and_promtool_accepts_them() {
    // Generated from mixin/ with the rule files (tests/mixin.rs checks both are current):
    // here, that each PrometheusRule is its set, as the operator hands it to Prometheus.
    for set in ["regional", "global"] {
        let file = format!("deploy/kubernetes/prometheusrule-{set}.yaml");
        let rule = yaml(&file);
        assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
        assert_eq!(rule["kind"], "PrometheusRule");
        assert_eq!(rule["metadata"]["name"], format!("rpo-exporter-{set}").as_str());
        let mut want: Vec<Value> = yaml_files(&format!("alerts/{set}"))
            .iter()
            .flat_map(|f| yaml(f)["groups"].as_array().unwrap_or_else(|| panic!("{f}: no groups")).clone())
            .collect();
        let mut got = rule["spec"]["groups"].as_array().unwrap().clone();
        let by_name = |g: &Value| g["name"].as_str().unwrap_or_default().to_owned();
        want.sort_by_key(by_name);
        got.sort_by_key(by_name);
        assert_eq!(got, want, "{file}: spec.groups differ from alerts/{set}/*.yml");
        assert!(want.len() >= 2, "expected the recording and alerting groups, got {}", want.len());

        // What the operator hands Prometheus is spec: check it as a rule file (JSON is YAML).
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join("spec.yml");
        std::fs::write(&spec, serde_json::to_string_pretty(&rule["spec"]).unwrap()).unwrap();
        let out = run(Command::new(tool("promtool")).args(["check", "rules"]).arg(&spec));
        println!("{file}: {out}");
        assert!(out.contains("SUCCESS"), "{out}");
    }
}

#[test]
fn podmonitor_selects_the_sidecars_and_their_port() {
    let docs = manifests();
    let sts = find(&docs, "StatefulSet", "orders-use1");
    let pod = &sts["spec"]["template"];
    let monitor = find(&docs, "PodMonitor", "rpo-exporter");
    let labels = pod["metadata"]["labels"].as_object().unwrap();
    for (k, v) in monitor["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(labels.get(k), Some(v), "PodMonitor selects {k}={v}, the pod template has {labels:?}");
    }
    let containers = pod["spec"]["containers"].as_array().unwrap();
    let exporter = containers.iter().find(|c| c["name"] == "rpo-exporter").expect("rpo-exporter container");
    let ports: Vec<&Value> = exporter["ports"].as_array().unwrap().iter().map(|p| &p["name"]).collect();
    let endpoints = monitor["spec"]["podMetricsEndpoints"].as_array().unwrap();
    for e in endpoints {
        assert!(ports.contains(&&e["port"]), "PodMonitor port {} not among {ports:?}", e["port"]);
        assert_eq!(e["path"], "/metrics");
        let relabel = e["relabelings"].as_array().unwrap();
        // RPOExporterDown matches job="rpo-exporter".
        assert!(relabel.iter().any(|r| r["targetLabel"] == "job" && r["replacement"] == "rpo-exporter"));
        // `region` comes from a pod label that exists.
        let region = relabel.iter().find(|r| r["targetLabel"] == "region").expect("region relabeling");
        let source = region["sourceLabels"][0].as_str().unwrap();
        assert!(
            labels.keys().any(|k| format!("__meta_kubernetes_pod_label_{}", sanitize(k)) == source),
            "{source} matches no pod label"
        );
    }

    // The sidecar as the issue asks: probes, non-root, read-only, nothing to escalate.
    assert_eq!(exporter["livenessProbe"]["httpGet"]["path"], "/-/healthy");
    assert_eq!(exporter["readinessProbe"]["httpGet"]["path"], "/-/ready");
    let sc = &exporter["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert!(exporter["resources"]["requests"]["cpu"].is_string());
    assert!(exporter["resources"]["requests"]["memory"].is_string());
    assert!(exporter["resources"]["limits"]["memory"].is_string());
    assert!(
        read("deploy/kubernetes/statefulset.yaml").contains("Measured"),
        "the sidecar's resource requests must say what they were sized from"
    );
}

/// Prometheus's label-name sanitising of Kubernetes labels.
fn sanitize(label: &str) -> String {
    label.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

/// Writes `config` to a temp dir with every `password_file:` pointing at a file that
/// exists there (and every `ca_file:` at a real PEM certificate), and runs
/// `rpo-exporter check-config` on it.
fn check_config(origin: &str, config: &str) {
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "pw\n").unwrap();
    let ca = dir.path().join("ca.crt");
    std::fs::write(&ca, cert("ca.example").0).unwrap();
    let mut replaced = 0;
    let text: String = config
        .lines()
        .map(|l| {
            if let Some((indent, _)) = l.split_once("password_file:") {
                replaced += 1;
                format!("{indent}password_file: {}\n", password.display())
            } else if let Some((indent, _)) = l.split_once("ca_file:") {
                format!("{indent}ca_file: {}\n", ca.display())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert!(replaced > 0, "{origin}: no password_file (passwords come from files in deploy/)");
    let file = dir.path().join("config.yml");
    std::fs::write(&file, text).unwrap();
    let out = run(Command::new(exporter_bin()).arg("check-config").arg(&file));
    println!("{origin}: {out}");
}

#[test]
fn every_exporter_config_passes_check_config() {
    let docs = manifests();
    let sts = find(&docs, "StatefulSet", "orders-use1");
    let replicas = sts["spec"]["replicas"].as_u64().unwrap();
    let exporter = sts["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "rpo-exporter")
        .unwrap();
    assert!(exporter["args"]
        .as_array()
        .unwrap()
        .contains(&"--config.file=/etc/rpo-exporter/$(POD_NAME).yml".into()));
    let cm = find(&docs, "ConfigMap", "orders-use1-rpo-exporter");
    let data = cm["data"].as_object().unwrap();
    // One key per pod, named after it: the sidecar reads $(POD_NAME).yml.
    let keys: BTreeSet<String> = data.keys().cloned().collect();
    let pods: BTreeSet<String> = (0..replicas).map(|i| format!("orders-use1-{i}.yml")).collect();
    assert_eq!(keys, pods, "ConfigMap keys vs StatefulSet pods");
    for (key, text) in data {
        let config = text.as_str().unwrap();
        let node = key.trim_end_matches(".yml");
        assert!(config.contains(&format!("- name: {node}\n")), "{key} must configure node {node}");
        check_config(&format!("deploy/kubernetes/configmap.yaml {key}"), config);
    }
    for file in ["deploy/systemd/rpo-exporter.yml", "deploy/docker/rpo-exporter.yml"] {
        check_config(file, &read(file));
    }
    // Every other exporter config of every layout: the ConfigMaps of rpo-exporter that
    // are not dashboards.
    let mut checked = 0;
    for (file, doc) in &docs {
        let labels = &doc["metadata"]["labels"];
        if file == "deploy/kubernetes/configmap.yaml"
            || doc["kind"] != "ConfigMap"
            || labels["app.kubernetes.io/name"] != "rpo-exporter"
            || labels["grafana_dashboard"].is_string()
        {
            continue;
        }
        for (key, text) in doc["data"].as_object().unwrap() {
            assert!(key.ends_with(".yml"), "{file}: key {key} is no exporter config");
            check_config(&format!("{file} {key}"), text.as_str().unwrap());
            checked += 1;
        }
    }
    // per-cluster, cloudnativepg, zalando's two sidecars and its per-cluster exporter.
    assert_eq!(checked, 5, "exporter configs found in the layouts' ConfigMaps");
}

#[test]
fn init_scripts_grant_what_the_schema_command_prints() {
    let docs = manifests();
    let k8s = find(&docs, "ConfigMap", "orders-use1-initdb")["data"]["10-rpo-exporter.sh"]
        .as_str()
        .unwrap()
        .to_owned();
    for (origin, script) in [
        ("deploy/kubernetes/configmap.yaml", k8s),
        ("deploy/docker/initdb/10-primary.sh", read("deploy/docker/initdb/10-primary.sh")),
    ] {
        assert_schema_in(origin, &script);
        assert!(
            script.contains("CREATE ROLE rpo_exporter LOGIN PASSWORD :'"),
            "{origin}: the role's password comes from a file"
        );
        let out = run(Command::new("bash").arg("-n").arg("-c").arg(&script));
        assert!(out.is_empty(), "{origin}: {out}");
    }
}

#[test]
fn systemd_unit_verifies_and_is_hardened() {
    let unit = read("deploy/systemd/rpo-exporter.service");
    for directive in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "LoadCredential=db-password:",
    ] {
        assert!(unit.contains(directive), "the unit lacks {directive:?}");
    }
    // verify checks that ExecStart= exists: point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rpo-exporter.service");
    std::fs::write(&file, unit.replace("/usr/bin/rpo-exporter", exporter_bin())).unwrap();
    let out = output(Command::new(tool("systemd-analyze")).arg("verify").arg(&file));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // Unknown or unparsable directives are reported but exit 0: any message is a problem.
    assert!(
        out.status.success() && text.trim().is_empty(),
        "systemd-analyze verify deploy/systemd/rpo-exporter.service reported problems ({}):\n{text}",
        out.status
    );
}

#[test]
fn systemd_socket_unit_and_drop_in_verify() {
    let socket = read("deploy/systemd/rpo-exporter.socket");
    for directive in ["ListenStream=10087\n", "BindIPv6Only=both", "WantedBy=sockets.target"] {
        assert!(socket.contains(directive), "the socket unit lacks {directive:?}");
    }
    let drop_in = read("deploy/systemd/rpo-exporter.service.d/socket-activation.conf");
    for directive in ["Requires=rpo-exporter.socket", "ExecStart=\n", "--web.systemd-socket"] {
        assert!(drop_in.contains(directive), "the socket-activation drop-in lacks {directive:?}");
    }
    let help = run(Command::new(exporter_bin()).arg("--help"));
    assert!(help.contains("--web.systemd-socket"), "{help}");
    // The socket, the service and its drop-in together, as installed.
    let dir = tempfile::tempdir().unwrap();
    let bin = |text: String| text.replace("/usr/bin/rpo-exporter", exporter_bin());
    std::fs::write(dir.path().join("rpo-exporter.socket"), &socket).unwrap();
    std::fs::write(dir.path().join("rpo-exporter.service"), bin(read("deploy/systemd/rpo-exporter.service")))
        .unwrap();
    std::fs::create_dir(dir.path().join("rpo-exporter.service.d")).unwrap();
    std::fs::write(dir.path().join("rpo-exporter.service.d/socket-activation.conf"), bin(drop_in)).unwrap();
    let out = output(
        Command::new(tool("systemd-analyze"))
            .arg("verify")
            .arg(dir.path().join("rpo-exporter.socket"))
            .arg(dir.path().join("rpo-exporter.service")),
    );
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && text.trim().is_empty(),
        "systemd-analyze verify of the socket unit reported problems ({}):\n{text}",
        out.status
    );
}

/// A CA-signed certificate and key for `name`, as PEM.
fn cert(name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap().self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

#[test]
fn web_config_example_loads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let text = read("deploy/systemd/web-config.yml")
        .replace("/run/credentials/rpo-exporter.service/", &format!("{d}/"))
        .replace("/etc/rpo-exporter/", &format!("{d}/"));
    let (crt, key) = cert("db.example.com");
    std::fs::write(dir.path().join("server.crt"), &crt).unwrap();
    std::fs::write(dir.path().join("server.key"), key).unwrap();
    std::fs::write(dir.path().join("clients-ca.crt"), crt).unwrap();
    let file = dir.path().join("web-config.yml");
    let config = rpo_exporter::webconfig::WebConfig::parse(&file, &text).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.tls.is_some());
    assert_eq!(config.client_auth, rpo_exporter::webconfig::ClientAuth::RequireAndVerifyClientCert);
    assert!(config.users.contains_key("prometheus"));
}

#[test]
fn prometheus_configs_pass_promtool() {
    let exporter_labels: BTreeSet<&str> =
        rpo_exporter::exposition::all().flat_map(|d| d.labels.iter().copied()).collect();
    // (config, the rule sets it loads, the job it must have, whether its static targets
    // carry a `region` target label)
    for (file, sets, job, needs_region) in [
        ("deploy/prometheus/sidecar.yml", &["regional", "global"][..], "rpo-exporter", true),
        ("deploy/prometheus/per-cluster.yml", &["regional", "global"][..], "rpo-exporter", false),
        ("deploy/prometheus/regional.yml", &["regional"][..], "rpo-exporter", false),
        ("deploy/prometheus/global.yml", &["global"][..], "rpo-federate", true),
        ("deploy/docker/prometheus.yml", &["regional", "global"][..], "rpo-exporter", false),
    ] {
        // The layout the configs describe, relative to prometheus.yml: the rule files
        // (rules/<set>/ for compose, which mounts alerts/ at rules/, and
        // rules/rpo-exporter/<set>/), TLS files and the basic-auth password.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::copy(root().join(file), d.join("prometheus.yml")).unwrap();
        for base in ["rules", "rules/rpo-exporter"] {
            for set in ["regional", "global"] {
                let to = d.join(base).join(set);
                std::fs::create_dir_all(&to).unwrap();
                for f in yaml_files(&format!("alerts/{set}")) {
                    std::fs::copy(root().join(&f), to.join(Path::new(&f).file_name().unwrap())).unwrap();
                }
            }
        }
        std::fs::create_dir_all(d.join("tls")).unwrap();
        std::fs::create_dir_all(d.join("secrets")).unwrap();
        let (crt, key) = cert("prometheus");
        std::fs::write(d.join("tls/rpo-exporter-ca.crt"), &crt).unwrap();
        std::fs::write(d.join("tls/prometheus.crt"), &crt).unwrap();
        std::fs::write(d.join("tls/prometheus.key"), key).unwrap();
        std::fs::write(d.join("secrets/rpo-exporter-password"), "pw\n").unwrap();
        let out =
            run(Command::new(tool("promtool")).args(["check", "config", "prometheus.yml"]).current_dir(d));
        println!("{file}: {out}");
        let count: usize = sets.iter().map(|s| yaml_files(&format!("alerts/{s}")).len()).sum();
        let want = format!("SUCCESS: {count} rule files found");
        assert!(out.contains(&want), "{file}: the rules of {sets:?} were not all loaded ({want}):\n{out}");

        let config = yaml(file);
        let jobs = config["scrape_configs"].as_array().unwrap();
        assert!(jobs.iter().any(|j| j["job_name"] == job), "{file}: the rules need job {job}");
        for job in jobs {
            for sc in job["static_configs"].as_array().unwrap() {
                let labels = sc["labels"].as_object().cloned().unwrap_or_default();
                for l in labels.keys() {
                    assert!(
                        !exporter_labels.contains(l.as_str()),
                        "{file}: target label {l} clashes with the exporter's"
                    );
                }
                assert_eq!(
                    labels.contains_key("region"),
                    needs_region,
                    "{file}: region target label on {sc}"
                );
            }
        }
        // A regional Prometheus names its region, the global one does not pose as one.
        let external = &config["global"]["external_labels"];
        match *sets {
            ["regional"] => assert!(external["region"].is_string(), "{file}: no region external label"),
            ["global"] => assert!(external["region"].is_null(), "{file}: the global layer is no region"),
            _ => {}
        }
    }
}

#[test]
fn compose_file_references_what_exists() {
    let base = root().join("deploy/docker");
    let compose = yaml("deploy/docker/compose.yaml");
    let services = compose["services"].as_object().unwrap();
    let secrets = compose["secrets"].as_object().unwrap();
    for name in ["pg-primary", "pg-replica", "rpo-exporter", "prometheus", "alertmanager"] {
        assert!(services.contains_key(name), "compose.yaml lacks service {name}");
    }
    for secret in secrets.values() {
        let file = secret["file"].as_str().unwrap();
        assert!(base.join(file).is_file(), "compose.yaml: secret file {file} missing");
    }
    for (name, service) in services {
        for v in service["volumes"].as_array().into_iter().flatten() {
            let source = v.as_str().unwrap().split(':').next().unwrap();
            if source.starts_with('.') {
                assert!(
                    base.join(source).exists(),
                    "compose.yaml: {name} mounts {source}, which does not exist"
                );
            }
        }
        for s in service["secrets"].as_array().into_iter().flatten() {
            assert!(
                secrets.contains_key(s.as_str().unwrap()),
                "compose.yaml: {name} uses undefined secret {s}"
            );
        }
        let deps: Vec<String> = match &service["depends_on"] {
            Value::Array(a) => a.iter().map(|d| d.as_str().unwrap().to_owned()).collect(),
            Value::Object(o) => o.keys().cloned().collect(),
            _ => vec![],
        };
        for d in deps {
            assert!(services.contains_key(&d), "compose.yaml: {name} depends on unknown service {d}");
        }
        if let Some(build) = service.get("build") {
            let context = base.join(build["context"].as_str().unwrap());
            let dockerfile = context.join(build["dockerfile"].as_str().unwrap());
            assert!(
                dockerfile.is_file(),
                "compose.yaml: {name} builds from {}, missing",
                dockerfile.display()
            );
        }
    }
    let exporter = &services["rpo-exporter"];
    assert_eq!(exporter["read_only"], true);
    assert_eq!(exporter["cap_drop"], serde_json::json!(["ALL"]));

    // The Dockerfile: a build stage and a final non-root stage.
    let dockerfile = read("deploy/docker/Dockerfile");
    let froms: Vec<&str> = dockerfile.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert!(froms.len() >= 2 && froms[0].contains(" AS build"), "multi-stage build expected: {froms:?}");
    let last_stage = dockerfile.rsplit("\nFROM ").next().unwrap();
    assert!(last_stage.contains("\nUSER nonroot"), "the final stage must run as nonroot");
    assert!(read("deploy/docker/Dockerfile.dockerignore").lines().any(|l| l.trim() == "target/"));
    for (f, never) in
        [("deploy/docker/Dockerfile", "NOT BUILT HERE"), ("deploy/docker/compose.yaml", "NOT RUN HERE")]
    {
        assert!(read(f).contains(never), "{f}: say that it was never built or run ({never})");
    }
}

/// Whether `selector` (matchLabels, or a Service's plain map) picks `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let m = selector.get("matchLabels").unwrap_or(selector).as_object().expect("a label selector");
    !m.is_empty() && m.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The pod template of a workload (Deployment, StatefulSet).
fn pod_template(workload: &Value) -> &Value {
    &workload["spec"]["template"]
}

/// Container port names of a pod spec.
fn port_names(pod_spec: &Value) -> BTreeSet<String> {
    pod_spec["containers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .filter_map(|p| p["name"].as_str().map(String::from))
        .collect()
}

/// Secrets the operators make themselves: not in deploy/, named in their docs.
const OPERATOR_SECRETS: &[&str] =
    &["orders-ca", "rpo-exporter.acid-orders.credentials.postgresql.acid.zalan.do"];

#[test]
fn every_workload_is_wired_to_what_exists() {
    let docs = manifests();
    let mut workloads = 0;
    for (file, w) in docs.iter().filter(|(_, d)| d["kind"] == "Deployment" || d["kind"] == "StatefulSet") {
        workloads += 1;
        let dir = Path::new(file).parent().unwrap().to_str().unwrap();
        let same_dir = |kind: &'static str| {
            docs.iter()
                .filter(move |(f, d)| {
                    Path::new(f).parent().unwrap().to_str() == Some(dir) && d["kind"] == kind
                })
                .map(|(_, d)| d)
        };
        let name = w["metadata"]["name"].as_str().unwrap();
        let pod = pod_template(w);
        let labels = &pod["metadata"]["labels"];
        let spec = &pod["spec"];
        assert!(selects(&w["spec"]["selector"], labels), "{file}: {name} does not select its own pods");
        let ports = port_names(spec);

        // Services, PodDisruptionBudgets and NetworkPolicies of its folder that select it.
        let services: Vec<&Value> =
            same_dir("Service").filter(|s| selects(&s["spec"]["selector"], labels)).collect();
        assert!(!services.is_empty(), "{file}: no Service selects {name}");
        for s in &services {
            for p in s["spec"]["ports"].as_array().unwrap() {
                let target =
                    p["targetPort"].as_str().unwrap_or_else(|| panic!("{file}: name targetPort {p}"));
                assert!(ports.contains(target), "{file}: Service port {target} not among {ports:?}");
            }
        }
        let pdbs: Vec<&Value> =
            same_dir("PodDisruptionBudget").filter(|p| selects(&p["spec"]["selector"], labels)).collect();
        assert_eq!(pdbs.len(), 1, "{file}: {name} needs one PodDisruptionBudget");
        let replicas = w["spec"]["replicas"].as_u64().unwrap_or(1);
        if let Some(min) = pdbs[0]["spec"]["minAvailable"].as_u64() {
            assert!(min < replicas, "{file}: minAvailable {min} of {replicas} replicas blocks every drain");
        }
        let policies: Vec<&Value> =
            same_dir("NetworkPolicy").filter(|p| selects(&p["spec"]["podSelector"], labels)).collect();
        assert_eq!(policies.len(), 1, "{file}: {name} needs one NetworkPolicy");
        let ingress = policies[0]["spec"]["ingress"].as_array().unwrap();
        let named: Vec<&str> = ingress
            .iter()
            .flat_map(|r| r["ports"].as_array().into_iter().flatten())
            .filter_map(|p| p["port"].as_str())
            .collect();
        assert!(named.contains(&"metrics"), "{file}: the NetworkPolicy must let Prometheus reach `metrics`");
        for n in named {
            assert!(ports.contains(n), "{file}: NetworkPolicy port {n} not among {ports:?}");
        }

        // Prometheus finds it: a PodMonitor on the pods or a ServiceMonitor on a Service.
        let pod_monitor = same_dir("PodMonitor").any(|m| {
            selects(&m["spec"]["selector"], labels)
                && m["spec"]["podMetricsEndpoints"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|e| ports.contains(e["port"].as_str().unwrap()))
        });
        let service_monitor = same_dir("ServiceMonitor").any(|m| {
            services.iter().any(|s| {
                let names: Vec<&Value> =
                    s["spec"]["ports"].as_array().unwrap().iter().map(|p| &p["name"]).collect();
                selects(&m["spec"]["selector"], &s["metadata"]["labels"])
                    && m["spec"]["endpoints"].as_array().unwrap().iter().all(|e| names.contains(&&e["port"]))
            })
        });
        assert!(pod_monitor || service_monitor, "{file}: no PodMonitor or ServiceMonitor scrapes {name}");

        // Volumes: every mount has its volume; ConfigMaps and Secrets exist (or are the
        // operators'); the config is a directory mount, which the kubelet updates.
        let volumes = spec["volumes"].as_array().unwrap();
        let exporter =
            spec["containers"].as_array().unwrap().iter().find(|c| c["name"] == "rpo-exporter").unwrap();
        for m in exporter["volumeMounts"].as_array().unwrap() {
            let v = volumes
                .iter()
                .find(|v| v["name"] == m["name"])
                .unwrap_or_else(|| panic!("{file}: no volume {}", m["name"]));
            assert!(m.get("subPath").is_none(), "{file}: subPath mounts are never updated by the kubelet");
            if let Some(cm) = v["configMap"]["name"].as_str() {
                assert!(
                    same_dir("ConfigMap").any(|d| d["metadata"]["name"] == cm),
                    "{file}: ConfigMap {cm} not in {dir}/"
                );
            }
            if let Some(secret) = v["secret"]["secretName"].as_str() {
                assert!(
                    same_dir("Secret").any(|d| d["metadata"]["name"] == secret)
                        || OPERATOR_SECRETS.contains(&secret),
                    "{file}: Secret {secret} not in {dir}/"
                );
            }
        }
        // The config file it reads is in a mounted ConfigMap, and its password files in
        // mounted Secrets.
        let mount_of = |path: &str| {
            exporter["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| path.starts_with(&format!("{}/", m["mountPath"].as_str().unwrap())))
                .map(|m| volumes.iter().find(|v| v["name"] == m["name"]).unwrap())
        };
        let config_arg = exporter["args"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a.as_str())
            .find_map(|a| a.strip_prefix("--config.file="))
            .unwrap();
        let config_volume =
            mount_of(config_arg).unwrap_or_else(|| panic!("{file}: {config_arg} is not mounted"));
        let cm_name = config_volume["configMap"]["name"].as_str().unwrap();
        let cm = same_dir("ConfigMap").find(|d| d["metadata"]["name"] == cm_name).unwrap();
        for (key, text) in cm["data"].as_object().unwrap() {
            if w["kind"] == "Deployment" {
                assert_eq!(Path::new(config_arg).file_name().unwrap().to_str(), Some(key.as_str()), "{file}");
            }
            for line in text.as_str().unwrap().lines() {
                if let Some(path) =
                    line.trim().strip_prefix("password_file: ").or(line.trim().strip_prefix("ca_file: "))
                {
                    let v = mount_of(path).unwrap_or_else(|| panic!("{file} {key}: {path} is not mounted"));
                    assert!(v["secret"].is_object(), "{file} {key}: {path} must come from a Secret");
                }
            }
        }
    }
    // The sidecar StatefulSet, per-cluster/, cloudnativepg/, zalando/exporter-per-cluster.yaml.
    assert_eq!(workloads, 4);
}

#[test]
fn cloudnativepg_example_names_what_the_operator_makes() {
    let docs = manifests();
    let dir = "deploy/kubernetes/cloudnativepg";
    let cluster = find_in(&docs, &format!("{dir}/cluster.yaml"), "Cluster", "orders");
    assert_eq!(cluster["apiVersion"], "postgresql.cnpg.io/v1");
    let name = cluster["metadata"]["name"].as_str().unwrap();
    assert!(cluster["spec"]["instances"].as_u64().unwrap() >= 2, "a primary and a standby");
    let exporter = find_in(&docs, &format!("{dir}/exporter.yaml"), "ConfigMap", "rpo-exporter-orders");
    let config = exporter["data"]["rpo-exporter.yml"].as_str().unwrap();
    // The operator's services (CloudNativePG: <cluster>-rw, -ro, -r) and no others.
    let hosts: Vec<&str> = config
        .lines()
        .filter_map(|l| l.split("host=").nth(1))
        .map(|h| h.split(' ').next().unwrap())
        .collect();
    assert_eq!(hosts, [format!("{name}-rw"), format!("{name}-ro")]);
    // The managed role is the DSNs' user, its password Secret is the one the exporter mounts.
    let role = &cluster["spec"]["managed"]["roles"][0];
    // Fields of CloudNativePG's RoleConfiguration (its API reference).
    let known = ["name", "comment", "ensure", "inRoles", "inherit", "disablePassword", "passwordSecret"];
    let known = [&known[..], &["connectionLimit", "validUntil", "login", "superuser", "createdb"]].concat();
    let known = [&known[..], &["createrole", "replication", "bypassrls"]].concat();
    for k in role.as_object().unwrap().keys() {
        assert!(known.contains(&k.as_str()), "managed.roles[0].{k} is no CloudNativePG role field");
    }
    assert_eq!(role["name"], "rpo_exporter");
    assert!(config.lines().filter(|l| l.contains("dsn:")).all(|l| l.contains("user=rpo_exporter ")));
    assert_eq!(role["login"], true);
    assert_eq!(role["inRoles"], serde_json::json!(["pg_monitor"]));
    let secret_name = role["passwordSecret"]["name"].as_str().unwrap();
    let secret = find_in(&docs, &format!("{dir}/secret.yaml"), "Secret", secret_name);
    assert_eq!(secret["type"], "kubernetes.io/basic-auth");
    assert_eq!(secret["stringData"]["username"], "rpo_exporter");
    let deployment = find_in(&docs, &format!("{dir}/exporter.yaml"), "Deployment", "rpo-exporter-orders");
    let volumes = deployment["spec"]["template"]["spec"]["volumes"].as_array().unwrap();
    let secrets: BTreeSet<&str> = volumes.iter().filter_map(|v| v["secret"]["secretName"].as_str()).collect();
    assert_eq!(
        secrets,
        [secret_name, &format!("{name}-ca")].into(),
        "the role's password and the operator's CA"
    );
    // Bootstrap runs exactly what `rpo-exporter schema postgres` prints, after making the role.
    let sql: Vec<String> = cluster["spec"]["bootstrap"]["initdb"]["postInitApplicationSQL"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sql[0], "CREATE ROLE rpo_exporter NOLOGIN;");
    assert_schema_in("cloudnativepg/cluster.yaml postInitApplicationSQL", &sql.join("\n"));
    // Its NetworkPolicy lets the exporter reach the operator's pods.
    let policy = find_in(&docs, &format!("{dir}/exporter.yaml"), "NetworkPolicy", "rpo-exporter-orders");
    let to = &policy["spec"]["egress"][1]["to"][0]["podSelector"]["matchLabels"];
    assert_eq!(to["cnpg.io/cluster"], name);
}

#[test]
fn zalando_example_names_what_the_operator_makes() {
    let docs = manifests();
    let dir = "deploy/kubernetes/zalando";
    let pg = find_in(&docs, &format!("{dir}/postgresql.yaml"), "postgresql", "acid-orders");
    assert_eq!(pg["apiVersion"], "acid.zalan.do/v1");
    let name = pg["metadata"]["name"].as_str().unwrap();
    let spec = &pg["spec"];
    assert!(
        name.starts_with(&format!("{}-", spec["teamId"].as_str().unwrap())),
        "the name starts with teamId-"
    );
    assert!(spec["users"].get("rpo_exporter").is_some());
    // The operator's Secret for users.rpo_exporter: {username}.{cluster}.credentials.postgresql.acid.zalan.do,
    // `_` written as `-`.
    let secret = format!("rpo-exporter.{name}.credentials.postgresql.acid.zalan.do");
    assert!(OPERATOR_SECRETS.contains(&secret.as_str()));

    let sidecar = spec["sidecars"].as_array().unwrap().iter().find(|s| s["name"] == "rpo-exporter").unwrap();
    // The operator's Sidecar type has these fields only (no args, no command, no
    // volumeMounts: flags come from RPO_EXPORTER_* variables, volumes from
    // additionalVolumes).
    for k in sidecar.as_object().unwrap().keys() {
        assert!(["name", "image", "ports", "env", "resources"].contains(&k.as_str()), "sidecars[].{k}");
    }
    let env = sidecar["env"].as_array().unwrap();
    let help = run(Command::new(exporter_bin()).arg("--help"));
    let mut defined = BTreeSet::new();
    for e in env {
        let var = e["name"].as_str().unwrap();
        if let Some(value) = e["value"].as_str() {
            for (i, _) in value.match_indices("$(") {
                let used = &value[i + 2..i + value[i..].find(')').unwrap()];
                assert!(defined.contains(used), "{dir}: {var} uses $({used}) before it is defined");
            }
        }
        if var.starts_with("RPO_EXPORTER_") {
            assert!(help.contains(&format!("[env: {var}=")), "{dir}: {var} is no flag's variable");
        }
        defined.insert(var);
    }
    let pod_name = env.iter().find(|e| e["name"] == "RPO_POD_NAME").unwrap();
    assert_eq!(pod_name["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name");
    let config_file =
        env.iter().find(|e| e["name"] == "RPO_EXPORTER_CONFIG_FILE").unwrap()["value"].as_str().unwrap();
    assert_eq!(config_file, "/etc/rpo-exporter/$(RPO_POD_NAME).yml");

    // additionalVolumes: the per-pod configs and the operator's Secret, in the sidecar only.
    let volumes = spec["additionalVolumes"].as_array().unwrap();
    for v in volumes {
        assert_eq!(v["targetContainers"], serde_json::json!(["rpo-exporter"]));
        for k in v.as_object().unwrap().keys() {
            let fields = ["name", "mountPath", "subPath", "targetContainers", "volumeSource"];
            assert!(fields.contains(&k.as_str()) && k != "subPath", "additionalVolumes[].{k}");
        }
    }
    let config = volumes.iter().find(|v| v["mountPath"] == "/etc/rpo-exporter").unwrap();
    let cm_name = config["volumeSource"]["configMap"]["name"].as_str().unwrap();
    let cm = find_in(&docs, &format!("{dir}/configmap.yaml"), "ConfigMap", cm_name);
    let password = volumes.iter().find(|v| v["volumeSource"]["secret"].is_object()).unwrap();
    assert_eq!(password["volumeSource"]["secret"]["secretName"], secret.as_str());
    let password_path = format!("{}/password", password["mountPath"].as_str().unwrap());
    // One config per pod (<cluster>-0 … -N), each naming its own node and reading the mounted password.
    let instances = spec["numberOfInstances"].as_u64().unwrap();
    let keys: BTreeSet<String> = cm["data"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, (0..instances).map(|i| format!("{name}-{i}.yml")).collect());
    for (key, text) in cm["data"].as_object().unwrap() {
        let text = text.as_str().unwrap();
        assert!(text.contains(&format!("- name: {}\n", key.trim_end_matches(".yml"))), "{key}");
        assert!(text.contains(&format!("password_file: {password_path}\n")), "{key}");
        assert!(text.contains("host=127.0.0.1 "), "{key}: the sidecar reaches its own database");
    }
    // Prometheus and the NetworkPolicy find the operator's pods and the sidecar's port.
    let pod_labels = serde_json::json!({"application": "spilo", "cluster-name": name});
    let monitor = find_in(&docs, &format!("{dir}/podmonitor.yaml"), "PodMonitor", "rpo-exporter-acid-orders");
    assert!(selects(&monitor["spec"]["selector"], &pod_labels));
    let ports: Vec<&Value> = sidecar["ports"].as_array().unwrap().iter().map(|p| &p["name"]).collect();
    assert!(ports.contains(&&monitor["spec"]["podMetricsEndpoints"][0]["port"]));
    let policy =
        find_in(&docs, &format!("{dir}/networkpolicy.yaml"), "NetworkPolicy", "acid-orders-rpo-exporter");
    assert!(selects(&policy["spec"]["podSelector"], &pod_labels));
    assert_eq!(policy["spec"]["ingress"][0]["ports"][0]["port"], "metrics");

    // The per-cluster alternative reaches the operator's services: <cluster> and <cluster>-repl.
    let per_cluster =
        find_in(&docs, &format!("{dir}/exporter-per-cluster.yaml"), "ConfigMap", "rpo-exporter-acid-orders");
    let config = per_cluster["data"]["rpo-exporter.yml"].as_str().unwrap();
    let hosts: Vec<&str> = config
        .lines()
        .filter_map(|l| l.split("host=").nth(1))
        .map(|h| h.split(' ').next().unwrap())
        .collect();
    assert_eq!(hosts, [name.to_owned(), format!("{name}-repl")]);
    let deployment =
        find_in(&docs, &format!("{dir}/exporter-per-cluster.yaml"), "Deployment", "rpo-exporter-acid-orders");
    let volumes = deployment["spec"]["template"]["spec"]["volumes"].as_array().unwrap();
    assert!(volumes.iter().any(|v| v["secret"]["secretName"] == secret.as_str()));
    let policy = find_in(
        &docs,
        &format!("{dir}/exporter-per-cluster.yaml"),
        "NetworkPolicy",
        "rpo-exporter-acid-orders",
    );
    assert!(selects(&policy["spec"]["egress"][1]["to"][0]["podSelector"], &pod_labels));
}

/// `script` runs the statements of `rpo-exporter schema postgres`, in order.
fn assert_schema_in(origin: &str, script: &str) {
    let schema = rpo_exporter::engine::schema_sql(
        "postgres",
        &"rpo.heartbeat".parse().unwrap(),
        "rpo_exporter",
        None,
        None,
    )
    .unwrap();
    let lines: Vec<&str> = script.lines().map(str::trim).collect();
    let mut at = 0;
    for s in schema.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("--")) {
        match lines[at..].iter().position(|l| *l == s) {
            Some(i) => at += i + 1,
            None => {
                panic!("{origin} lacks (or misorders) `{s}` from `rpo-exporter schema postgres`:\n{schema}")
            }
        }
    }
}

#[test]
fn grafana_dashboard_configmaps_are_generated_from_dashboards() {
    let committed = "deploy/kubernetes/dashboards/grafana-dashboards.yaml";
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("grafana-dashboards.yaml");
    run(Command::new("bash")
        .arg(root().join("scripts/gen-k8s-dashboards.sh"))
        .arg(&fresh)
        .current_dir(root()));
    assert!(
        std::fs::read_to_string(&fresh).unwrap() == read(committed),
        "{committed} is out of date: run scripts/gen-k8s-dashboards.sh"
    );
    let mut keys = BTreeSet::new();
    for cm in docs(committed) {
        assert_eq!(cm["kind"], "ConfigMap");
        assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1", "the Grafana sidecar's label");
        for (key, text) in cm["data"].as_object().unwrap() {
            let shipped: Value = serde_json::from_str(&read(&format!("dashboards/{key}"))).unwrap();
            let wrapped: Value = serde_json::from_str(text.as_str().unwrap()).unwrap();
            assert_eq!(wrapped, shipped, "{committed}: {key} differs from dashboards/{key}");
            keys.insert(key.clone());
        }
    }
    let dashboards: BTreeSet<String> = std::fs::read_dir(root().join("dashboards"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".json"))
        .collect();
    assert_eq!(keys, dashboards, "one ConfigMap per dashboard");
}
