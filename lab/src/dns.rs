//! Real DNS servers for tests: [`Knot`] (authoritative, serving one [`Zone`]) and
//! [`Unbound`] (a caching resolver forwarding zones to given servers).
//!
//! Each server owns a temporary directory (config, zone file, databases, log), a
//! loopback port free for both UDP and TCP, and its process, spawned as our direct
//! child in the foreground (PID 1 here does not reap orphans, so a daemonized server
//! would linger as a zombie). Dropping a server stops it; a watchdog kills it and
//! removes the directory if the test process dies without unwinding.
//!
//! Knot runs as the current user with `zonefile-sync: -1` (it never writes the zone
//! file back) and `zonefile-load: whole`, so [`Knot::load`] can rewrite the zone file
//! and reload it with `knotc zone-reload`. Unbound keeps its cache (that is the point:
//! a changed answer reaches its clients only when the cached copy expires), answers
//! `.test` zones (`local-zone: "test." nodefault`) and asks its upstreams over TCP
//! (`tcp-upstream: yes`): a dead upstream then refuses the connection and Unbound
//! answers SERVFAIL within milliseconds, where over UDP it retries for about 18 s.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::ports::free_port;
use crate::process::{scratch_tempdir, DirServer};
use crate::programs::find_program;

/// How long a server may take to say it is ready.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a server has to exit on SIGTERM before SIGKILL.
const STOP_GRACE: Option<Duration> = Some(Duration::from_secs(5));

/// A port on 127.0.0.1 free for both TCP (checked by [`free_port`]) and UDP.
pub fn free_dns_port() -> u16 {
    loop {
        let port = free_port();
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
            && TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
        {
            return port;
        }
    }
}

/// A zone as a test wants it served: SOA and NS (`ns1`, 127.0.0.1) written for it, plus
/// the test's records. Every record has the zone's TTL.
#[derive(Debug, Clone)]
pub struct Zone {
    origin: String,
    serial: u32,
    ttl: u32,
    /// (owner relative to the origin or `@`, type, value), in order.
    records: Vec<(String, String, String)>,
}

impl Zone {
    /// An empty zone `origin` (e.g. `lab.test.`), serial 1, TTL 3 s.
    pub fn new(origin: &str) -> Zone {
        let origin = if origin.ends_with('.') { origin.to_owned() } else { format!("{origin}.") };
        Zone { origin, serial: 1, ttl: 3, records: Vec::new() }
    }

    /// Sets the TTL of every record (and the negative-caching TTL).
    pub fn ttl(mut self, ttl: u32) -> Zone {
        self.ttl = ttl;
        self
    }

    /// Adds a record: `owner` relative to the origin (or `@`), e.g. `("www", "A", "192.0.2.10")`.
    pub fn record(mut self, owner: &str, rtype: &str, value: &str) -> Zone {
        self.records.push((owner.to_owned(), rtype.to_owned(), value.to_owned()));
        self
    }

    /// Replaces the records of `owner`/`rtype` with one holding `value`, and bumps the serial.
    pub fn set(&mut self, owner: &str, rtype: &str, value: &str) -> &mut Zone {
        self.records.retain(|(o, t, _)| !(o == owner && t.eq_ignore_ascii_case(rtype)));
        self.records.push((owner.to_owned(), rtype.to_owned(), value.to_owned()));
        self.serial += 1;
        self
    }

    /// The zone's name with the trailing dot.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The zone file.
    pub fn text(&self) -> String {
        let (o, ttl, serial) = (&self.origin, self.ttl, self.serial);
        let mut text = format!(
            "$ORIGIN {o}\n$TTL {ttl}\n@ IN SOA ns1.{o} hostmaster.{o} {serial} 60 60 600 {ttl}\n@ IN NS ns1.{o}\nns1 IN A 127.0.0.1\n"
        );
        for (owner, rtype, value) in &self.records {
            text.push_str(&format!("{owner} IN {rtype} {value}\n"));
        }
        text
    }
}

/// Waits until the server's log holds every one of `lines`.
async fn wait_logged(server: &mut DirServer, lines: &[&str]) -> Result<()> {
    let logged = |log: String| std::future::ready(lines.iter().all(|l| log.contains(l)));
    server.wait_ready(START_TIMEOUT, Duration::from_millis(20), 20, logged).await
}

/// A Knot DNS authoritative server serving one zone on 127.0.0.1.
pub struct Knot {
    server: DirServer,
    port: u16,
    config: PathBuf,
    zone_file: PathBuf,
    origin: String,
}

impl std::fmt::Debug for Knot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Knot").field("addr", &self.addr()).field("zone", &self.origin).finish()
    }
}

impl Knot {
    /// Starts Knot serving `zone` and waits until the zone is loaded.
    pub async fn start(zone: &Zone) -> Result<Knot> {
        let dir = scratch_tempdir("rpo-lab-knot.", "Knot's directory")?;
        let port = free_dns_port();
        let d = dir.path().to_str().context("non-UTF-8 lab path")?.to_owned();
        let origin = zone.origin().to_owned();
        let zone_file = dir.path().join("zone");
        std::fs::write(&zone_file, zone.text()).context("writing the zone file")?;
        let config = dir.path().join("knot.conf");
        std::fs::write(
            &config,
            format!(
                "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\n    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n\
                 log:\n  - target: stderr\n    any: info\n\
                 database:\n    storage: \"{d}\"\n\
                 control:\n    listen: \"{d}/knot.sock\"\n\
                 template:\n  - id: default\n    storage: \"{d}\"\n    zonefile-sync: -1\n    zonefile-load: whole\n    journal-content: none\n\
                 zone:\n  - domain: {origin}\n    file: \"{}\"\n",
                zone_file.display()
            ),
        )?;
        let mut command = Command::new(find_program("knotd")?);
        let mut server = DirServer::spawn(
            "knotd",
            dir,
            "knotd.out",
            "knotd.out",
            STOP_GRACE,
            command.arg("-c").arg(&config),
        )?;
        wait_logged(&mut server, &["server started", &format!("[{origin}] loaded")]).await?;
        Ok(Knot { server, port, config, zone_file, origin })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, as the exporter's config writes a server.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Serves `zone` from now on: rewrites the zone file and reloads it (waiting until
    /// Knot has loaded it). Give it a higher serial than the last one.
    pub async fn load(&self, zone: &Zone) -> Result<()> {
        if zone.origin() != self.origin {
            bail!("this Knot serves {}, not {}", self.origin, zone.origin());
        }
        std::fs::write(&self.zone_file, zone.text()).context("rewriting the zone file")?;
        self.knotc(&["-b", "zone-reload", &self.origin]).await?;
        // Blocking mode returns once the event ran; make sure it took the new serial.
        let want = format!("serial: {}", zone.serial());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let status = self.knotc(&["zone-status", &self.origin]).await?;
            if status.contains(&want) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "Knot did not load serial {}: {status}\n--- log tail ---\n{}",
                    zone.serial(),
                    self.log_tail(10)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn knotc(&self, args: &[&str]) -> Result<String> {
        let out = tokio::process::Command::new(find_program("knotc")?)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .output()
            .await
            .context("running knotc")?;
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            bail!("knotc {args:?} failed ({}): {text}", out.status);
        }
        Ok(text)
    }

    /// Stops Knot (its port then refuses queries). Dropping it does the same.
    pub fn stop(&mut self) {
        self.server.stop();
    }

    pub fn log_tail(&self, lines: usize) -> String {
        self.server.log_tail(lines)
    }

    pub fn dir(&self) -> &Path {
        self.server.dir()
    }
}

/// An Unbound caching resolver on 127.0.0.1 forwarding zones to given servers.
pub struct Unbound {
    server: DirServer,
    port: u16,
}

impl std::fmt::Debug for Unbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unbound").field("addr", &self.addr()).finish()
    }
}

impl Unbound {
    /// Starts Unbound forwarding each `(zone, port)` to `127.0.0.1@port`. With
    /// `cache_max_ttl`, it keeps answers at most that many seconds whatever their TTL.
    pub async fn start(forwards: &[(&str, u16)], cache_max_ttl: Option<u32>) -> Result<Unbound> {
        let dir = scratch_tempdir("rpo-lab-unbound.", "Unbound's directory")?;
        let port = free_dns_port();
        let d = dir.path().to_str().context("non-UTF-8 lab path")?.to_owned();
        let mut config = format!(
            "server:\n    interface: 127.0.0.1@{port}\n    port: {port}\n    access-control: 127.0.0.0/8 allow\n\
             \x20   do-not-query-localhost: no\n    chroot: \"\"\n    username: \"\"\n    directory: \"{d}\"\n\
             \x20   pidfile: \"{d}/unbound.pid\"\n    logfile: \"{d}/unbound.log\"\n    use-syslog: no\n\
             \x20   do-daemonize: no\n    num-threads: 1\n    so-reuseport: no\n    do-ip6: no\n\
             \x20   outgoing-port-permit: 32768-60999\n    outgoing-port-avoid: 0-32767\n\
             \x20   module-config: \"iterator\"\n    local-zone: \"test.\" nodefault\n\
             \x20   tcp-upstream: yes\n    verbosity: 1\n"
        );
        if let Some(ttl) = cache_max_ttl {
            config.push_str(&format!("    cache-max-ttl: {ttl}\n"));
        }
        for (zone, fport) in forwards {
            config.push_str(&format!(
                "forward-zone:\n    name: \"{zone}\"\n    forward-addr: 127.0.0.1@{fport}\n"
            ));
        }
        let file = dir.path().join("unbound.conf");
        std::fs::write(&file, config)?;
        let mut command = Command::new(find_program("unbound")?);
        let command = command.arg("-d").arg("-c").arg(&file);
        let mut server = DirServer::spawn("unbound", dir, "unbound.out", "unbound.log", STOP_GRACE, command)?;
        wait_logged(&mut server, &["start of service"]).await?;
        Ok(Unbound { server, port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops Unbound (its port then refuses queries). Dropping it does the same.
    pub fn stop(&mut self) {
        self.server.stop();
    }

    pub fn log_tail(&self, lines: usize) -> String {
        self.server.log_tail(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_text() {
        let mut z = Zone::new("lab.test").record("www", "A", "192.0.2.10");
        assert!(z.text().contains("@ IN SOA ns1.lab.test. hostmaster.lab.test. 1 60 60 600 3\n"));
        z.set("www", "A", "198.51.100.20");
        let text = z.text();
        assert!(text.contains(" 2 60 60 600 3\n"), "{text}");
        assert!(text.contains("www IN A 198.51.100.20\n") && !text.contains("192.0.2.10"), "{text}");
    }
}
