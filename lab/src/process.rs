//! Process plumbing shared by the server runners: finding a process's children through
//! `/proc`, signalling a process tree, tailing log files, the [`Watchdog`] that cleans up
//! after a test process that died without running its destructors, the scratch directory
//! and the [`DirServer`] (a server run as our child in a temporary directory of its own).
//!
//! PID 1 on these machines does not reap orphans, so a process that is not our own child
//! stays a zombie after it dies: liveness checks here treat zombies as dead.

use std::fs::File;
use std::future::Future;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// State letter and parent pid of a process, from `/proc/PID/stat`.
fn stat(pid: i32) -> Option<(char, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ppid ...": comm may contain spaces and parentheses.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Whether `pid` exists and is not a zombie.
pub(crate) fn is_alive(pid: i32) -> bool {
    matches!(stat(pid), Some((state, _)) if state != 'Z' && state != 'X')
}

/// Live direct children of `pid`.
pub(crate) fn children_of(pid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| matches!(stat(p), Some((s, ppid)) if ppid == pid && s != 'Z' && s != 'X'))
        .collect()
}

/// Sends `sig` to `pid` and to all its direct children (errors ignored: processes may be
/// exiting). Children are listed before the parent is signalled.
pub(crate) fn signal_tree(pid: i32, sig: Signal) {
    let children = children_of(pid);
    let _ = kill(Pid::from_raw(pid), sig);
    for c in children {
        let _ = kill(Pid::from_raw(c), sig);
    }
}

/// Waits for our own child to exit, up to `timeout`. True if it exited (and was reaped).
pub(crate) fn wait_child(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) if Instant::now() >= deadline => return false,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// The last `lines` lines of a log file, for error messages.
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// A `sh` process that runs a cleanup script when this process dies.
///
/// It blocks reading a pipe whose only writer is this process (Rust opens it close-on-exec,
/// so no server inherits it). If this process exits for any reason — even SIGKILL — the
/// pipe reaches EOF and the script runs. Dropping the `Watchdog` (after the owner cleaned up
/// normally) kills the shell without running the script. It runs in its own process group
/// and ignores SIGINT/SIGTERM/SIGHUP so a Ctrl-C in the terminal does not kill it first.
pub struct Watchdog {
    child: Child,
    _pipe: ChildStdin,
}

impl Watchdog {
    /// Guards a just-spawned server: if this process dies, the watchdog SIGKILLs
    /// `child` and removes `dir`. If the watchdog cannot start, the child is killed
    /// and reaped here and the error returned.
    pub fn guard(child: &mut Child, dir: &Path) -> Result<Watchdog> {
        let script =
            format!("kill -KILL {} 2>/dev/null; rm -rf {}", child.id(), sh_quote(&dir.display().to_string()));
        Watchdog::spawn(&script).inspect_err(|_| {
            let _ = child.kill();
            let _ = child.wait();
        })
    }

    /// Arms a watchdog that runs `cleanup_script` (sh) if this process dies first.
    pub fn spawn(cleanup_script: &str) -> Result<Watchdog> {
        let script = format!(
            "# rpo-lab watchdog: cleans up if its parent dies\n\
             trap '' INT TERM HUP\nwhile read -r _; do :; done\n{cleanup_script}\n"
        );
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("spawning the cleanup watchdog (/bin/sh)")?;
        let pipe = child.stdin.take().context("watchdog stdin")?;
        Ok(Watchdog { child, _pipe: pipe })
    }

    /// Arms a watchdog that SIGKILLs `pid` (e.g. an exporter a test spawned) if this
    /// process dies first. Drop it once the process has been stopped and reaped.
    pub fn kill_on_exit(pid: u32) -> Result<Watchdog> {
        if pid <= 1 {
            anyhow::bail!("Watchdog::kill_on_exit: refusing pid {pid}");
        }
        Watchdog::spawn(&format!("kill -KILL {pid} 2>/dev/null"))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Single-quotes `s` for `sh`.
pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Appends `text` to a file, creating it.
pub(crate) fn append(path: &Path, text: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// Where labs create their temporary directories: `$RPO_LAB_TMPDIR` if set, else
/// `/dev/shm` (tmpfs: initdb and base backups take half the time they take on this
/// machine's disk, where creating a file costs about 1 ms), else the system temp dir.
/// The directory and its ancestors must be searchable by everyone, as the servers run as
/// the `postgres` account; `/tmp` is the fallback when they are not.
pub(crate) fn scratch_dir() -> PathBuf {
    let searchable = |dir: &Path| {
        dir.ancestors()
            .all(|d| std::fs::metadata(d).map(|m| m.is_dir() && m.mode() & 0o001 != 0).unwrap_or(false))
    };
    if let Some(dir) = std::env::var_os("RPO_LAB_TMPDIR") {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    let writable = |d: &Path| std::fs::metadata(d).is_ok_and(|m| m.is_dir() && m.mode() & 0o1777 == 0o1777);
    if writable(shm) {
        return shm.to_path_buf();
    }
    let tmp = std::env::temp_dir();
    if searchable(&tmp) {
        tmp
    } else {
        PathBuf::from("/tmp")
    }
}

/// A new directory `PREFIX.XXXXXX` under the scratch directory; `what` names it in the
/// error (`creating {what}`).
pub(crate) fn scratch_tempdir(prefix: &str, what: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(scratch_dir())
        .with_context(|| format!("creating {what}"))
}

/// A server program run as a direct child of this process in a temporary directory it
/// owns (config, data, log): Prometheus, Alertmanager, Knot, Unbound. Spawned in its own
/// process group with its stdout and stderr in a file of that directory, guarded by a
/// watchdog that kills it and removes the directory if this process dies, waited for
/// until it is ready, stopped on drop (the directory goes with it).
pub(crate) struct DirServer {
    what: &'static str,
    child: Option<Child>,
    /// Where its stdout and stderr go.
    output: PathBuf,
    /// Its log: `output`, or a file it writes itself.
    log: PathBuf,
    /// How long SIGTERM has before SIGKILL when it stops; `None`: SIGKILL at once.
    term_grace: Option<Duration>,
    _watchdog: Watchdog,
    dir: tempfile::TempDir,
}

impl DirServer {
    /// Spawns `command` in `dir`, its stdout and stderr in `dir/OUTPUT`; `log` is the file
    /// in `dir` it logs to (`output` again when it logs to stderr).
    pub(crate) fn spawn(
        what: &'static str,
        dir: tempfile::TempDir,
        output: &str,
        log: &str,
        term_grace: Option<Duration>,
        command: &mut Command,
    ) -> Result<DirServer> {
        let (output, log) = (dir.path().join(output), dir.path().join(log));
        let out = File::create(&output)?;
        let mut child = command
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            // Own process group: a Ctrl-C in the terminal must not reach it.
            .process_group(0)
            .spawn()
            .with_context(|| format!("spawning {}", Path::new(command.get_program()).display()))?;
        let watchdog = Watchdog::guard(&mut child, dir.path())?;
        Ok(DirServer { what, child: Some(child), output, log, term_grace, _watchdog: watchdog, dir })
    }

    /// The program, in messages: `prometheus`, `knotd`.
    pub(crate) fn what(&self) -> &'static str {
        self.what
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Its process id, while it is our child (it may have died meanwhile).
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Keeps its directory after it stops, for inspection.
    pub(crate) fn keep_dir(&mut self) {
        self.dir.disable_cleanup(true);
    }

    /// The last `lines` lines of its log, then of its output when that is another file.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        if self.log == self.output {
            tail(&self.log, lines)
        } else {
            format!("{}\n{}", tail(&self.log, lines), tail(&self.output, lines))
        }
    }

    /// Waits, checking every `every` for up to `timeout`, until it runs and `ready` (given
    /// its log's text) holds. Fails when it exits meanwhile or time is up, with the last
    /// `tail_lines` lines of its log.
    pub(crate) async fn wait_ready<Fut: Future<Output = bool>>(
        &mut self,
        timeout: Duration,
        every: Duration,
        tail_lines: usize,
        mut ready: impl FnMut(String) -> Fut,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let running = self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)));
            if running && ready(log).await {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                bail!(
                    "{} exited during startup ({status})\n--- log tail ---\n{}",
                    self.what,
                    self.log_tail(tail_lines)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} not ready after {timeout:?}\n--- log tail ---\n{}",
                    self.what,
                    self.log_tail(tail_lines)
                );
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Stops it: SIGTERM and its grace when it has one, then SIGKILL. No-op when stopped.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(grace) = self.term_grace {
                let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
                if wait_child(&mut child, grace) {
                    return;
                }
            }
            let _ = child.kill();
            wait_child(&mut child, Duration::from_secs(10));
        }
    }
}

impl Drop for DirServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A server process run as a direct child of this process (PostgreSQL's postmaster,
/// mariadbd): the one place that reaps, stops, kills, freezes and thaws it, always
/// signalling the whole process tree.
#[derive(Debug, Default)]
pub(crate) struct ServerChild {
    child: Mutex<Option<Child>>,
}

impl ServerChild {
    /// The slot, for starting a server into it.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The running child's pid.
    pub(crate) fn pid(&self) -> Option<u32> {
        running(&mut self.lock()).map(|c| c.id())
    }

    /// Stops the server: SIGCONT, then `request`, waiting `grace`; then `fallback` (if
    /// any) for 10 s; then SIGKILL to the tree. No-op if it is not running.
    pub(crate) fn stop(&self, request: Signal, grace: Duration, fallback: Option<Signal>) {
        let mut guard = self.lock();
        let Some(child) = running(&mut guard) else { return };
        let pid = child.id() as i32;
        signal_tree(pid, Signal::SIGCONT);
        let _ = kill(Pid::from_raw(pid), request);
        let mut stopped = wait_child(child, grace);
        if let (false, Some(sig)) = (stopped, fallback) {
            signal_tree(pid, Signal::SIGCONT);
            let _ = kill(Pid::from_raw(pid), sig);
            stopped = wait_child(child, Duration::from_secs(10));
        }
        if !stopped {
            signal_tree(pid, Signal::SIGKILL);
            wait_child(child, Duration::from_secs(10));
        }
        *guard = None;
    }

    /// SIGKILLs the whole tree (a crash). `Err(pid)` if it survived 10 s; Ok if it
    /// died or was not running.
    pub(crate) fn kill(&self) -> Result<(), i32> {
        let mut guard = self.lock();
        let Some(child) = running(&mut guard) else { return Ok(()) };
        let pid = child.id() as i32;
        signal_tree(pid, Signal::SIGKILL);
        if !wait_child(child, Duration::from_secs(10)) {
            return Err(pid);
        }
        *guard = None;
        Ok(())
    }

    /// Sends `sig` to the whole tree (SIGSTOP/SIGCONT). False if not running.
    pub(crate) fn signal(&self, sig: Signal) -> bool {
        let mut guard = self.lock();
        let Some(child) = running(&mut guard) else { return false };
        signal_tree(child.id() as i32, sig);
        true
    }

    /// First half of a lab's teardown (all servers at once): thaw, then `request`.
    pub(crate) fn begin_shutdown(&self, request: Signal) {
        let mut guard = self.lock();
        if let Some(child) = running(&mut guard) {
            let pid = child.id() as i32;
            signal_tree(pid, Signal::SIGCONT);
            let _ = kill(Pid::from_raw(pid), request);
        }
    }

    /// Second half: wait for the server, SIGKILL the tree if it takes over 10 s.
    pub(crate) fn finish_shutdown(&self) {
        let mut guard = self.lock();
        if let Some(child) = guard.as_mut() {
            let pid = child.id() as i32;
            if !wait_child(child, Duration::from_secs(10)) {
                signal_tree(pid, Signal::SIGKILL);
                wait_child(child, Duration::from_secs(5));
            }
        }
        *guard = None;
    }
}

/// The child if it is still running; clears a child that has exited.
pub(crate) fn running<'a>(guard: &'a mut MutexGuard<'_, Option<Child>>) -> Option<&'a mut Child> {
    let exited = match guard.as_mut() {
        None => return None,
        Some(child) => !matches!(child.try_wait(), Ok(None)),
    };
    if exited {
        **guard = None;
        return None;
    }
    guard.as_mut()
}
