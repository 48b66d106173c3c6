//! The exporter's face to a platform team: its log formats read by independent parsers
//! (logfmt by the `logfmt` Python package, JSON by serde_json), every flag settable from
//! an `RPO_EXPORTER_…` environment variable and shown so in `--help`, and `--version`
//! agreeing with `rpo_exporter_build_info`.
//!
//! The Python package is installed into target/venv by
//! scripts/install-kubernetes-validate.sh, which the test runs (it does nothing when the
//! pinned versions are there).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rpo-exporter");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A running exporter whose node's database port is closed, so it logs at every level
/// without any database: listening, measurement failures, shutdown.
struct Exporter {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Exporter {
    fn start(flags: &[&str], env: &[(&str, String)]) -> Exporter {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "clusters:\n  - name: c\n    rpo: 1m\n    rto: 1h\n    nodes:\n      - {{ name: n, region: r, engine: postgres, dsn: \"host=127.0.0.1 port={} user=u dbname=d\" }}\n",
            rpo_lab::free_port()
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let port = rpo_lab::free_port();
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .arg("--config.file")
            .arg(dir.path().join("config.yml"))
            .args(flags)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("exporter.log")).unwrap());
        if !env.iter().any(|(k, _)| *k == "RPO_EXPORTER_WEB_LISTEN_ADDRESS") {
            cmd.args(["--web.listen-address", &format!("127.0.0.1:{port}")]);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn rpo-exporter");
        Exporter { child, port, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("exporter.log")).unwrap_or_default()
    }

    /// Waits until the log holds `text`; panics with the log after 15 s.
    fn wait_for_log(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.log().contains(text) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("exporter exited with {status}; log:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "no {text:?} in the log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, wait for the exit, and return the whole log.
    fn stop(mut self) -> String {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = self.child.wait().unwrap();
        let log = self.log();
        assert!(status.success(), "exporter exited with {status}; log:\n{log}");
        assert!(!log.contains("panicked at"), "the exporter panicked:\n{log}");
        log
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> PathBuf {
    let status = Command::new("bash")
        .arg(Path::new(ROOT).join("scripts/install-kubernetes-validate.sh"))
        .current_dir(ROOT)
        .status()
        .expect("run scripts/install-kubernetes-validate.sh");
    assert!(status.success(), "scripts/install-kubernetes-validate.sh failed: {status}");
    Path::new(ROOT).join("target/venv/bin/python")
}

/// Each line parsed by the `logfmt` Python package, as JSON objects.
fn parse_with_python_logfmt(log: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let script = "import json, sys, logfmt\n\
                  for line in sys.stdin.read().splitlines():\n\
                  \x20   print(json.dumps(logfmt.parse_line(line)))\n";
    let mut child = Command::new(python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), log.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the logfmt parser failed on:\n{log}");
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn logfmt_lines_parse_with_the_python_logfmt_package() {
    let mut exporter = Exporter::start(&["--log.format=logfmt", "--log.level", "debug"], &[]);
    exporter.wait_for_log("Measurement failed");
    let port = exporter.port;
    let log = exporter.stop();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() >= 4, "too few lines:\n{log}");
    let parsed = parse_with_python_logfmt(&log);
    assert_eq!(parsed.len(), lines.len());
    for (line, fields) in lines.iter().zip(&parsed) {
        println!("{line}");
        let get =
            |k: &str| fields.get(k).and_then(|v| v.as_str()).unwrap_or_else(|| panic!("no {k} in {line}"));
        let ts = get("ts");
        assert!(ts.len() >= 20 && ts.as_bytes()[10] == b'T' && ts.ends_with('Z'), "ts {ts:?} in {line}");
        assert!(["error", "warn", "info", "debug", "trace"].contains(&get("level")), "{line}");
        let caller = get("caller");
        let (file, number) = caller.rsplit_once(':').unwrap_or_else(|| panic!("caller {caller:?}"));
        assert!(file.ends_with(".rs") && number.parse::<u32>().is_ok(), "caller {caller:?} in {line}");
        assert!(!get("msg").is_empty(), "{line}");
        assert!(line.starts_with("ts="), "ts first: {line}");
    }
    // Quoted messages and values with spaces come back whole, the other fields beside them.
    let failed = parsed
        .iter()
        .find(|f| f["msg"] == "Measurement failed")
        .unwrap_or_else(|| panic!("no measurement failure in:\n{log}"));
    assert_eq!(failed["level"], "warn");
    assert_eq!(failed["cluster"], "c");
    assert_eq!(failed["node"], "n");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains(' ') && error.contains("onnection refused"), "error {error:?}");
    let listening = parsed.iter().find(|f| f["msg"] == "Listening").expect("a Listening line");
    assert_eq!(listening["address"], format!("127.0.0.1:{port}"));
    assert!(parsed.iter().any(|f| f["level"] == "debug"), "--log.level debug shows debug lines");
}

#[test]
fn json_lines_have_their_fields_at_the_top_level_and_env_vars_set_flags() {
    // Format and level from the environment: the flags' env vars take effect.
    let port = rpo_lab::free_port();
    let mut exporter = Exporter::start(
        &[],
        &[
            ("RPO_EXPORTER_LOG_FORMAT", "json".to_owned()),
            ("RPO_EXPORTER_LOG_LEVEL", "debug".to_owned()),
            ("RPO_EXPORTER_WEB_LISTEN_ADDRESS", format!("127.0.0.1:{port}")),
        ],
    );
    exporter.wait_for_log("Measurement failed again");
    let metrics = http_get(port, "/metrics");
    let log = exporter.stop();
    assert!(metrics.contains("rpo_exporter_build_info{"), "{metrics}");
    let objects: Vec<serde_json::Map<String, serde_json::Value>> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON object ({e}): {l}")))
        .collect();
    for o in &objects {
        for key in ["timestamp", "level", "message", "target", "filename", "line_number"] {
            assert!(o.contains_key(key), "no {key} in {o:?}");
        }
        assert!(!o.contains_key("fields"), "fields nested, not at the top level: {o:?}");
    }
    let listening = objects.iter().find(|o| o["message"] == "Listening").expect("a Listening line");
    println!("{}", serde_json::to_string(listening).unwrap());
    assert_eq!(listening["address"], format!("127.0.0.1:{port}"));
    assert_eq!(listening["clusters"], 1);
    let failed = objects.iter().find(|o| o["message"] == "Measurement failed").unwrap();
    assert_eq!(
        (&failed["cluster"], &failed["node"], &failed["level"]),
        (&"c".into(), &"n".into(), &"WARN".into())
    );
    assert!(objects.iter().any(|o| o["level"] == "DEBUG"), "RPO_EXPORTER_LOG_LEVEL=debug took effect");
}

#[test]
fn a_flag_on_the_command_line_wins_over_its_env_var() {
    let mut exporter =
        Exporter::start(&["--log.level", "info"], &[("RPO_EXPORTER_LOG_LEVEL", "debug".to_owned())]);
    exporter.wait_for_log("Measurement failed");
    std::thread::sleep(Duration::from_millis(2500));
    let log = exporter.stop();
    assert!(!log.contains("level=debug"), "--log.level info should win over the env var:\n{log}");
}

#[test]
fn a_bad_env_value_is_refused_like_a_bad_flag() {
    let out = Command::new(BIN).env("RPO_EXPORTER_LOG_FORMAT", "xml").arg("--version").output().unwrap();
    // --version answers before values are checked; serving does not.
    assert!(out.status.success());
    let out = Command::new(BIN)
        .env("RPO_EXPORTER_LOG_FORMAT", "xml")
        .args(["--config.file", "/nonexistent.yml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("invalid value 'xml' for '--log.format <FORMAT>'"), "{stderr}");
}

#[test]
fn help_shows_the_env_var_of_every_flag() {
    let out = Command::new(BIN).env_clear().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    // Each flag's entry: its line and the description clap may put on the lines below it.
    let mut entries: Vec<String> = Vec::new();
    for line in help.lines().map(str::trim_start) {
        if line.starts_with('-') {
            entries.push(line.to_owned());
        } else if let Some(entry) = entries.last_mut() {
            entry.push(' ');
            entry.push_str(line);
        }
    }
    let mut flags = 0;
    for entry in entries.iter().filter(|e| e.starts_with("--")) {
        // `--flag VALUE`, `--flag=VALUE` or an optional value, `--flag[=<BOOL>]`.
        let flag = entry.split([' ', '=', '[']).next().unwrap();
        // A negation, `--no-X`, is `--X`'s variable set to false.
        if let Some(twin) = flag.strip_prefix("--no-") {
            let twin = format!("--{twin}");
            assert!(
                entries.iter().any(|e| e.split([' ', '=', '[']).next() == Some(&twin)),
                "{flag} without {twin}"
            );
            continue;
        }
        let var = format!("RPO_EXPORTER_{}", flag[2..].to_uppercase().replace(['.', '-'], "_"));
        assert!(entry.contains(&format!("[env: {var}=]")), "{flag} does not show [env: {var}=]:\n{help}");
        flags += 1;
    }
    // -h/--help and -V/--version start with the short flag; every other option is long only.
    assert!(flags >= 7, "{help}");
}

#[test]
fn version_shows_revision_and_build_date_as_build_info_does() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    let version = String::from_utf8(out.stdout).unwrap();
    println!("{version}");
    // rpo-exporter 0.1.0 (revision: abc1234, build date: 2026-11-30T09:50:00Z, rustc: 1.89.0)
    let rest = version
        .trim()
        .strip_prefix(concat!("rpo-exporter ", env!("CARGO_PKG_VERSION"), " (revision: "))
        .unwrap_or_else(|| panic!("{version}"));
    let (revision, rest) = rest.split_once(", build date: ").unwrap();
    let (date, rest) = rest.split_once(", rustc: ").unwrap();
    let rustc = rest.strip_suffix(')').unwrap();
    assert!(revision == "unknown" || revision.chars().all(|c| c.is_ascii_hexdigit()), "{revision}");
    if let Ok(git) = Command::new("git").args(["rev-parse", "--short", "HEAD"]).current_dir(ROOT).output() {
        if git.status.success() && std::env::var_os("RPO_BUILD_REVISION").is_none() {
            // HEAD moves with every commit; the build script reruns when it does.
            assert_eq!(revision, String::from_utf8(git.stdout).unwrap().trim());
        }
    }
    assert!(date.len() == 20 && date.ends_with('Z') && date.as_bytes()[10] == b'T', "{date}");
    assert!(rustc.split('.').count() == 3, "{rustc}");

    let mut exporter = Exporter::start(&[], &[]);
    let port = exporter.port;
    exporter.wait_for_log("Listening");
    let metrics = http_get(port, "/metrics");
    exporter.stop();
    let expected = format!(
        "rpo_exporter_build_info{{version=\"{}\",revision=\"{revision}\",rustc=\"{rustc}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    let value = metrics.lines().find_map(|l| l.strip_prefix(&expected)).map(|v| v.trim().parse::<f64>());
    assert!(matches!(value, Some(Ok(1.0))), "no {expected:?} of 1 in:\n{metrics}");
}

/// A plain HTTP/1.0 GET, so the test needs no async runtime.
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"), "{response}");
    response.split_once("\r\n\r\n").unwrap().1.to_owned()
}
