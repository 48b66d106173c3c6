//! Where the exporter listens: `:PORT` on IPv6 and IPv4 at once (as the Go
//! exporters' default `:10087` does), several `--web.listen-address` flags, and
//! the sockets systemd passes with socket activation (`--web.systemd-socket`).
//! Only loopback addresses: 127.0.0.0/8 and ::1.

mod support;

use rpo_lab::free_port;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;

/// A config whose one node is a closed port: the exporter serves regardless.
fn config(dir: &Path) -> PathBuf {
    let path = dir.join("config.yml");
    let text = format!(
        "clusters:\n  - name: c\n    rpo: 1m\n    rto: 1h\n    nodes:\n      - {{ name: n, region: r, engine: postgres, dsn: \"host=127.0.0.1 port={} user=u dbname=d\" }}\n",
        free_port()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Panics, saying why, when this machine has no IPv6 loopback: a test of IPv6
/// that cannot reach `::1` must fail, not pass without having tested anything.
fn require_ipv6_loopback() {
    if let Err(e) = std::net::TcpListener::bind("[::1]:0") {
        panic!(
            "IPv6 is unavailable on this machine (cannot bind [::1]: {e}); \
             this test needs ::1 on the loopback interface (`ip -6 addr show lo`)"
        );
    }
}

async fn status(url: &str) -> Result<u16, String> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().unwrap();
    client.get(url).send().await.map(|r| r.status().as_u16()).map_err(|e| format!("{url}: {e}"))
}

#[test]
fn the_default_listen_address_is_every_interface_on_port_10087() {
    let out = Command::new(env!("CARGO_BIN_EXE_rpo-exporter")).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("[default: :10087]"), "{help}");
}

#[tokio::test(flavor = "multi_thread")]
async fn port_only_listens_on_ipv6_and_ipv4() {
    require_ipv6_loopback();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_rpo-exporter"));
    command.args(Exporter::args(&config(dir.path()))).args(["--web.listen-address", &format!(":{port}")]);
    let exporter = Exporter::spawn(dir, command, format!("[::1]:{port}")).await;
    assert_eq!(status(&format!("http://[::1]:{port}/metrics")).await, Ok(200));
    assert_eq!(status(&format!("http://127.0.0.1:{port}/metrics")).await, Ok(200));
    assert!(exporter.log().contains(&format!("address=[::]:{port}")), "{}", exporter.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn every_listen_address_serves() {
    require_ipv6_loopback();
    let dir = tempfile::tempdir().unwrap();
    let addrs = [
        format!("127.0.0.1:{}", free_port()),
        format!("[::1]:{}", free_port()),
        format!("127.0.0.2:{}", free_port()),
    ];
    let mut command = Command::new(env!("CARGO_BIN_EXE_rpo-exporter"));
    command.args(Exporter::args(&config(dir.path())));
    for addr in &addrs {
        command.args(["--web.listen-address", addr]);
    }
    let exporter = Exporter::spawn(dir, command, addrs[0].clone()).await;
    for addr in &addrs {
        assert_eq!(status(&format!("http://{addr}/metrics")).await, Ok(200), "{addr}");
        assert_eq!(status(&format!("http://{addr}/-/healthy")).await, Ok(200), "{addr}");
        assert!(exporter.log().contains(&format!("address={addr}")), "{addr}: {}", exporter.log());
    }
}

#[test]
fn an_address_that_cannot_be_bound_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let out = Command::new(env!("CARGO_BIN_EXE_rpo-exporter"))
        .args(Exporter::args(&config(dir.path())))
        .args(["--web.listen-address", &addr, "--web.listen-address", &addr])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
}

/// Starts the exporter as systemd starts a socket-activated service: `listener`
/// as file descriptor 3, `LISTEN_FDS=1` and `LISTEN_PID` its own process id (a
/// shell sets it to `$$`, then execs the exporter in the same process).
fn socket_activated(listener: &std::net::TcpListener, config: &Path, listen_pid: Option<&str>) -> Command {
    let pid = listen_pid.unwrap_or("$$");
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("LISTEN_PID={pid} LISTEN_FDS=1 exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_rpo-exporter"))
        .args(Exporter::args(config))
        // Ignored with --web.systemd-socket: nothing listens there.
        .args(["--web.listen-address", "127.0.0.1:1", "--web.systemd-socket"]);
    let fd = listener.as_raw_fd();
    // SAFETY: dup2 is async-signal-safe; it only sets up the child's fd 3
    // (without close-on-exec) before exec.
    unsafe {
        command.pre_exec(move || nix::unistd::dup2(fd, 3).map(|_| ()).map_err(std::io::Error::from));
    }
    command
}

#[tokio::test(flavor = "multi_thread")]
async fn systemd_socket_activation() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let command = socket_activated(&listener, &config, None);
    let exporter = Exporter::spawn(dir, command, addr.clone()).await;
    drop(listener);
    assert_eq!(status(&format!("http://{addr}/metrics")).await, Ok(200));
    let log = exporter.log();
    assert!(log.contains(&format!("address={addr}")) && log.contains("systemd_socket=true"), "{log}");
    assert!(status("http://127.0.0.1:1/-/ready").await.is_err());
}

#[test]
fn systemd_socket_without_sockets_or_for_another_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_rpo-exporter"))
        .args(Exporter::args(&config))
        .arg("--web.systemd-socket")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("systemd passed no sockets (LISTEN_PID and LISTEN_FDS are not set)"), "{err}");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let out = socket_activated(&listener, &config, Some("1")).stderr(Stdio::piped()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("LISTEN_PID=1 is not this process"), "{err}");
}

/// The same with systemd's own tool: `systemd-socket-activate` binds two
/// sockets (as a .socket unit with two ListenStream= lines would) and execs the
/// exporter on the first connection, with LISTEN_FDS=2.
#[tokio::test(flavor = "multi_thread")]
async fn systemd_socket_activate_with_two_sockets() {
    require_ipv6_loopback();
    let tool = rpo_lab::find_program("systemd-socket-activate").unwrap_or_else(|e| panic!("{e:#}"));
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let addrs = [format!("127.0.0.1:{}", free_port()), format!("[::1]:{}", free_port())];
    let mut command = Command::new(tool);
    command
        .args(["-l", &addrs[0], "-l", &addrs[1]])
        .arg(env!("CARGO_BIN_EXE_rpo-exporter"))
        .args(Exporter::args(&config))
        .arg("--web.systemd-socket");
    let exporter = Exporter::spawn(dir, command, addrs[0].clone()).await;
    for addr in &addrs {
        assert_eq!(status(&format!("http://{addr}/metrics")).await, Ok(200), "{addr}");
        assert!(exporter.log().contains(&format!("address={addr}")), "{addr}: {}", exporter.log());
    }
}
