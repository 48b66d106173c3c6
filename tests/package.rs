//! The Debian package as a team installs it: built by cargo-deb from Cargo.toml's
//! `[package.metadata.deb]` (around the debug binary the other tests use: no release
//! build here), installed with `dpkg -i` on this machine, its files, conffile, system
//! user and units checked (`systemd-analyze verify` on the installed units), the
//! packaged `/usr/bin/rpo-exporter` run as the packaged user against a real
//! PostgreSQL primary and replica until it reports their lag, then `dpkg --purge`d:
//! files, user and dpkg's records gone.
//!
//! Needs root (dpkg), cargo-deb (scripts/install-cargo-deb.sh, run here when missing),
//! dpkg-shlibdeps and xz (scripts/install-deps.sh). It refuses to run when an
//! `rpo-exporter` package is already installed rather than replace someone's. A guard
//! purges the package if the test fails midway. No other test touches /usr/bin,
//! /etc/rpo-exporter or the `rpo-exporter` user.

mod support;

use rpo_lab::free_port;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;
use support::*;

const PACKAGE: &str = "rpo-exporter";
const USER: &str = "rpo-exporter";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn output(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Runs a command; panics with its whole output unless it exits 0. Returns stdout.
fn run(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(out.status.success(), "{cmd:?} failed ({}):\n{}", out.status, text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn is_installed() -> bool {
    let out = output(Command::new("dpkg-query").args(["-W", "-f=${db:Status-Status}", PACKAGE]));
    out.status.success() && String::from_utf8_lossy(&out.stdout) != "not-installed"
}

fn user_exists() -> bool {
    output(Command::new("getent").args(["passwd", USER])).status.success()
}

/// Purges the package when dropped, unless [`Installed::purge`] already did: a test
/// that fails midway leaves nothing installed.
struct Installed {
    purged: bool,
}

impl Installed {
    fn install(deb: &Path) -> Installed {
        let guard = Installed { purged: false };
        let out = run(Command::new("dpkg").arg("-i").arg(deb).env("DEBIAN_FRONTEND", "noninteractive"));
        println!("dpkg -i:\n{out}");
        guard
    }

    fn purge(&mut self) -> String {
        self.purged = true;
        run(Command::new("dpkg").args(["--purge", PACKAGE]))
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        if !self.purged {
            let out = output(Command::new("dpkg").args(["--purge", PACKAGE]));
            eprintln!("package guard: dpkg --purge {PACKAGE} ({}):\n{}", out.status, text(&out));
        }
    }
}

/// Builds the .deb around the test binary into `out_dir` and returns its path.
fn build_deb(out_dir: &Path) -> PathBuf {
    run(Command::new("bash").arg(root().join("scripts/install-cargo-deb.sh")).current_dir(root()));
    let cargo_deb = root().join("target/tools/bin/cargo-deb");
    // The binary the other tests run: target/<profile dir>/rpo-exporter.
    let exe = Path::new(env!("CARGO_BIN_EXE_rpo-exporter"));
    let profile_dir = exe.parent().unwrap();
    let profile = match profile_dir.file_name().unwrap().to_str().unwrap() {
        "debug" => "dev",
        other => other,
    };
    let started = Instant::now();
    // --no-build: package what is built. --strip: the debug binary's debug info would
    // make a package several times larger. --compress-system --fast: xz -1 from
    // xz-utils (cargo-deb is built without its own liblzma).
    let out = output(
        Command::new(&cargo_deb)
            .args(["--no-build", "--profile", profile, "--strip", "--compress-system", "--fast"])
            .arg("--output")
            .arg(out_dir)
            .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap())
            .current_dir(root()),
    );
    assert!(out.status.success(), "cargo deb failed ({}):\n{}", out.status, text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The one warning expected: cargo-deb 3.8 frowns on the dev profile (a release build
    // here would take minutes).
    let unexpected: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning:") && !l.contains("dev profile is not supported"))
        .collect();
    assert!(unexpected.is_empty(), "cargo deb warned:\n{stderr}");
    let deb = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(deb.is_file(), "cargo deb printed {deb:?}, not a file:\n{}", text(&out));
    println!("built {} in {:.1?}", deb.display(), started.elapsed());
    deb
}

/// `systemd-analyze verify` of installed units; any message is a problem.
fn verify_units(units: &[&str]) {
    let out =
        output(Command::new(rpo_lab::find_program("systemd-analyze").unwrap()).arg("verify").args(units));
    assert!(
        out.status.success() && text(&out).trim().is_empty(),
        "systemd-analyze verify {units:?} reported problems ({}):\n{}",
        out.status,
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deb_installs_runs_against_the_lab_and_purges_cleanly() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "this test installs a package with dpkg: run it as root"
    );
    assert!(
        !is_installed(),
        "a {PACKAGE} package is already installed here; this test installs and purges its own. \
         Remove it first: dpkg --purge {PACKAGE}"
    );
    assert!(!user_exists(), "a user {USER} exists already; this test checks that the package makes it");

    let work = tempfile::tempdir().unwrap();
    let deb = build_deb(work.path());
    let mut installed = Installed::install(&deb);
    assert!(is_installed());

    // The files, as dpkg recorded them.
    let listed = run(Command::new("dpkg").args(["-L", PACKAGE]));
    println!("dpkg -L {PACKAGE}:\n{listed}");
    let files: Vec<&str> = listed.lines().collect();
    for want in [
        "/usr/bin/rpo-exporter",
        "/usr/lib/systemd/system/rpo-exporter.service",
        "/usr/lib/systemd/system/rpo-exporter.socket",
        "/usr/lib/sysusers.d/rpo-exporter.conf",
        "/etc/rpo-exporter/rpo-exporter.yml",
        "/usr/share/doc/rpo-exporter/copyright",
        "/usr/share/doc/rpo-exporter/examples/web-config.yml",
        "/usr/share/doc/rpo-exporter/examples/socket-activation.conf",
        "/usr/share/rpo-exporter/alerts/regional/alerts.yml",
        "/usr/share/rpo-exporter/alerts/global/alerts.yml",
        "/usr/share/rpo-exporter/dashboards/rpo-overview.json",
    ] {
        assert!(files.contains(&want), "dpkg -L lacks {want}");
        assert!(Path::new(want).exists(), "{want} is listed but missing");
    }
    // Installed as shipped: the units and the example config are the files of deploy/systemd/.
    for (installed, shipped) in [
        ("/usr/lib/systemd/system/rpo-exporter.service", "deploy/systemd/rpo-exporter.service"),
        ("/usr/lib/systemd/system/rpo-exporter.socket", "deploy/systemd/rpo-exporter.socket"),
        ("/etc/rpo-exporter/rpo-exporter.yml", "deploy/systemd/rpo-exporter.yml"),
    ] {
        assert_eq!(
            std::fs::read_to_string(installed).unwrap(),
            std::fs::read_to_string(root().join(shipped)).unwrap(),
            "{installed} differs from {shipped}"
        );
    }
    let conffiles = run(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", PACKAGE]));
    assert!(conffiles.contains("/etc/rpo-exporter/rpo-exporter.yml "), "conffiles: {conffiles}");
    let mode = std::fs::metadata("/usr/bin/rpo-exporter").unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
    let credentials =
        std::fs::metadata("/etc/rpo-exporter/credentials").expect("postinst makes credentials/");
    assert_eq!(credentials.permissions().mode() & 0o777, 0o700, "credentials/ is root-only");
    // The packaged binary is the one the tests built.
    let version = |bin: &str| run(Command::new(bin).arg("--version"));
    assert_eq!(version("/usr/bin/rpo-exporter"), version(env!("CARGO_BIN_EXE_rpo-exporter")));

    // The system user: no login, no home.
    let passwd = run(Command::new("getent").args(["passwd", USER]));
    println!("getent passwd {USER}: {passwd}");
    let fields: Vec<&str> = passwd.trim().split(':').collect();
    let uid: u32 = fields[2].parse().unwrap();
    assert!((1..1000).contains(&uid), "{USER} is not a system user: {passwd}");
    assert_eq!(fields[5], "/nonexistent", "{passwd}");
    assert_eq!(fields[6], "/usr/sbin/nologin", "{passwd}");

    // The units as installed verify, and the package enabled and started neither.
    verify_units(&["/usr/lib/systemd/system/rpo-exporter.service"]);
    verify_units(&["/usr/lib/systemd/system/rpo-exporter.socket"]);
    for wants in [
        "/etc/systemd/system/multi-user.target.wants/rpo-exporter.service",
        "/etc/systemd/system/sockets.target.wants/rpo-exporter.socket",
    ] {
        assert!(std::fs::symlink_metadata(wants).is_err(), "{wants}: the package must not enable units");
    }

    // The packaged binary, as the packaged user, against a real primary and replica.
    let lab = Lab::start(spec_primary_replica()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // Its password readable by rpo-exporter only, as LoadCredential= would give it.
    let password = dir.path().join("db-password");
    std::fs::copy(&lab.password_file, &password).unwrap();
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&password, Some(uid), None).unwrap();
    let config =
        lab.config("1s", "").replace(lab.password_file.to_str().unwrap(), password.to_str().unwrap());
    let config_path = dir.path().join("config.yml");
    std::fs::write(&config_path, config).unwrap();
    std::fs::set_permissions(&config_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid", USER, "--regid", USER, "--clear-groups", "--", "/usr/bin/rpo-exporter"])
        .args(Exporter::args(&config_path))
        .args(["--web.listen-address", &addr]);
    let exporter = Exporter::spawn(dir, command, addr).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", exporter.pid())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(uid_line.split_whitespace().skip(1).all(|u| u == uid.to_string()), "runs as {uid_line}");
    let pair = lab.pair("p", "r1");
    wait_for_pair(&exporter, &pair).await;
    let metrics = exporter.scrape().await;
    let lag = metrics.get("rpo_replication_lag_seconds", &pair).unwrap();
    assert!(lag.is_finite() && (0.0..60.0).contains(&lag), "lag {lag}");
    let up = metrics.get("rpo_node_up", &lab.node_labels("p"));
    assert_eq!(up, Some(1.0), "rpo_node_up of the primary");
    println!("packaged exporter, as uid {uid}: rpo_replication_lag_seconds{{p → r1}} = {lag}");
    drop(exporter);

    // Purged: files, user, group and dpkg's unit records gone.
    let out = installed.purge();
    println!("dpkg --purge:\n{out}");
    assert!(!is_installed(), "still installed after purge");
    assert!(!user_exists(), "user {USER} left after purge");
    assert!(!output(Command::new("getent").args(["group", USER])).status.success(), "group {USER} left");
    // Every file and directory of the package's own (shared directories such as /usr/bin stay).
    for f in files.iter().filter(|f| f.contains("rpo-exporter")) {
        assert!(std::fs::symlink_metadata(f).is_err(), "{f} left after purge");
    }
    assert!(!Path::new("/etc/rpo-exporter").exists(), "/etc/rpo-exporter left after purge");
    for state in ["/var/lib/systemd/deb-systemd-helper-enabled", "/var/lib/systemd/deb-systemd-helper-masked"]
    {
        let left = Command::new("grep").args(["-rl", "rpo-exporter", state]).output().unwrap();
        assert!(
            left.stdout.is_empty(),
            "deb-systemd-helper state left: {}",
            String::from_utf8_lossy(&left.stdout)
        );
    }
}
