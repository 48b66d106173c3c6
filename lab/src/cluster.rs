//! A lab of one engine's servers ([`PgLab`](crate::PgLab) = [`Lab`]`<Postgres>`,
//! [`MariaLab`](crate::MariaLab) = [`Lab`]`<Mariadb>`): the temporary directory it owns,
//! its nodes and their lookup by name, and its teardown — every server stopped at once on
//! drop, then the directory removed; a watchdog does the same if the process dies without
//! unwinding. What differs per engine (creating the nodes, replication, accounts) lives in
//! its folder, in `impl Lab<Engine>` blocks and the engine's [`Engine::LabState`].

use std::path::Path;

use anyhow::{anyhow, bail, Result};

use crate::process::{scratch_tempdir, sh_quote, Watchdog};
use crate::server::{Engine, Node};

/// A running lab. Dropping it stops every server and removes its directory.
pub struct Lab<E: Engine> {
    pub(crate) nodes: Vec<Node<E>>,
    pub(crate) state: E::LabState,
    watchdog: Option<Watchdog>,
    dir: tempfile::TempDir,
}

impl<E: Engine> std::fmt::Debug for Lab<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab").field("dir", &self.dir.path()).field("nodes", &self.nodes).finish()
    }
}

impl<E: Engine> Lab<E> {
    /// A lab without nodes yet in a new directory `PREFIX.XXXXXX` under the scratch
    /// directory. `state` is made from the directory; the watchdog runs
    /// `watchdog_script(dir)` if this process dies before the lab is dropped.
    pub(crate) fn create_in(
        prefix: &str,
        state: impl FnOnce(&Path) -> Result<E::LabState>,
        watchdog_script: impl FnOnce(&Path) -> String,
    ) -> Result<Lab<E>> {
        let dir = scratch_tempdir(prefix, "the lab directory")?;
        let state = state(dir.path())?;
        let watchdog = Some(Watchdog::spawn(&watchdog_script(dir.path()))?);
        Ok(Lab { nodes: Vec::new(), state, watchdog, dir })
    }

    /// The node called `name`. Panics if there is none (a bug in the test).
    pub fn node(&self, name: &str) -> &Node<E> {
        self.try_node(name).unwrap_or_else(|| {
            let names: Vec<&str> = self.nodes.iter().map(|n| n.name()).collect();
            panic!("no {} named {name:?} in this lab (nodes: {names:?})", E::BEHAVIOUR.label)
        })
    }

    /// The node called `name`, if any.
    pub fn try_node(&self, name: &str) -> Option<&Node<E>> {
        self.nodes.iter().find(|n| n.name() == name)
    }

    /// All nodes, in spec order.
    pub fn nodes(&self) -> &[Node<E>] {
        &self.nodes
    }

    /// The lab's directory: one subdirectory per node (see [`Node::node_dir`]).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Keeps the lab directory (logs, data) after the lab stops, for inspection.
    pub fn keep_dir(&mut self) -> Result<()> {
        std::fs::write(self.dir.path().join(".keep"), b"")?;
        self.dir.disable_cleanup(true);
        Ok(())
    }

    /// Stops every server and removes the directory (what `Drop` does), off the runtime.
    pub async fn shutdown(self) {
        let _ = tokio::task::spawn_blocking(move || drop(self)).await;
    }

    /// Runs `create` (which adds the nodes, blocking) on a blocking thread.
    pub(crate) async fn build(create: impl FnOnce() -> Result<Lab<E>> + Send + 'static) -> Result<Lab<E>> {
        tokio::task::spawn_blocking(create)
            .await
            .map_err(|e| anyhow!("{} lab creation panicked: {e}", E::BEHAVIOUR.program))?
    }
}

impl<E: Engine> Drop for Lab<E> {
    fn drop(&mut self) {
        // All servers at once: SIGCONT (a test may have frozen them), then the engine's
        // fast shutdown.
        for node in &self.nodes {
            node.begin_shutdown();
        }
        for node in &self.nodes {
            node.finish_shutdown();
        }
        self.watchdog.take(); // servers are down: disarm (the directory goes with `dir`)
    }
}

/// A node name as both engines' specs take it: 1-32 ASCII letters, digits, '-' or '_' (it
/// names the node's directory, and PostgreSQL's slot or MariaDB's replication connection).
pub(crate) fn check_node_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        bail!("node name {name:?}: use 1-32 ASCII letters, digits, '-' or '_'");
    }
    Ok(())
}

/// The script a lab's watchdog runs if this process dies without dropping the lab: for
/// each node `NAME` of `nodes` whose server's pid, read from `dir/NAME/PID_FILE`, is alive,
/// runs `stop` (sh: the pid is `$p`; `continue` passes over it; it may use `alive PID` and
/// `tree SIGNAL PID`, which signals a process and its children) to ask it to stop; then
/// waits up to 10 s, SIGKILLs the trees of those still alive, and removes `dir` unless
/// `.keep` exists.
pub(crate) fn watchdog_script<'a>(
    dir: &Path,
    nodes: impl Iterator<Item = &'a str>,
    pid_file: &str,
    stop: &str,
) -> String {
    let pid_files: Vec<String> =
        nodes.map(|name| sh_quote(&dir.join(name).join(pid_file).display().to_string())).collect();
    let pid_files = pid_files.join(" ");
    let dir = sh_quote(&dir.display().to_string());
    format!(
        r#"
alive() {{ l=; read -r l < /proc/$1/stat 2>/dev/null || return 1; r=${{l##*) }}; set -- $r; [ "$1" != Z ]; }}
tree() {{ sig=$1; p=$2; kill -$sig "$p" 2>/dev/null
  for s in /proc/[0-9]*/stat; do l=; read -r l < "$s" 2>/dev/null || continue
    r=${{l##*) }}; set -- $r; if [ "$2" = "$p" ]; then c=${{s#/proc/}}; kill -$sig "${{c%/stat}}" 2>/dev/null; fi
  done; }}
pids=
for f in {pid_files}; do
  p=; read -r p < "$f" 2>/dev/null || continue
  alive "$p" || continue
  {stop}; pids="$pids $p"
done
i=0
while [ $i -lt 100 ]; do
  any=; for p in $pids; do alive "$p" && any=1; done
  [ -z "$any" ] && break
  sleep 0.1; i=$((i+1))
done
for p in $pids; do alive "$p" && tree KILL "$p"; done
[ -e {dir}/.keep ] || rm -rf {dir}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_are_checked() {
        assert!(check_node_name("pg-use1_2").is_ok());
        for bad in ["", "a b", "a/b", "é", &"x".repeat(33)] {
            let error = check_node_name(bad).unwrap_err().to_string();
            assert!(error.contains("use 1-32 ASCII letters"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn watchdog_script_reads_every_pid_file_and_is_valid_sh() {
        let script =
            watchdog_script(Path::new("/x/lab dir"), ["a", "b"].into_iter(), "data/x.pid", "kill \"$p\"");
        assert!(
            script.contains("for f in '/x/lab dir/a/data/x.pid' '/x/lab dir/b/data/x.pid'; do"),
            "{script}"
        );
        assert!(script.contains("  kill \"$p\"; pids=\"$pids $p\"\n"), "{script}");
        assert!(script.contains("[ -e '/x/lab dir'/.keep ] || rm -rf '/x/lab dir'"), "{script}");
        let syntax = std::process::Command::new("/bin/sh").args(["-n", "-c", &script]).status().unwrap();
        assert!(syntax.success(), "{script}");
    }
}
