//! Finding a program the lab or a test runs: the one place that searches `PATH` (and the
//! system's `sbin` folders, which an unprivileged account's `PATH` often lacks), and that
//! knows which Debian package brings each program, so a missing one fails with what to
//! install. Keeps no state.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

/// Folders searched after `PATH`: Debian installs servers (`mariadbd`, `unbound`) in
/// `sbin`, which is on root's `PATH` only.
const SYSTEM_DIRS: [&str; 6] =
    ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/// The full path of program `name`: the first executable file called `name` in a `PATH`
/// folder, else in the system folders (`/usr/local/sbin` … `/bin`). The error names the
/// Debian package that brings it and `scripts/install-deps.sh`, which installs them all.
pub fn find_program(name: &str) -> Result<PathBuf> {
    let path_dirs: Vec<PathBuf> = std::env::var_os("PATH").iter().flat_map(std::env::split_paths).collect();
    let found = path_dirs
        .iter()
        .map(PathBuf::as_path)
        .chain(SYSTEM_DIRS.iter().map(Path::new))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p));
    match (found, debian_package(name)) {
        (Some(path), _) => Ok(path),
        (None, Some(package)) => bail!(
            "{name} not found on PATH nor in {}: install the Debian package {package} \
             (scripts/install-deps.sh installs everything the lab needs)",
            SYSTEM_DIRS.join(", ")
        ),
        (None, None) => bail!("{name} not found on PATH nor in {}", SYSTEM_DIRS.join(", ")),
    }
}

/// The Debian package that installs `program`, for the programs the lab and tests use.
fn debian_package(program: &str) -> Option<&'static str> {
    Some(match program {
        "pg_config" => "postgresql-common",
        "mariadbd" | "mariadb-install-db" => "mariadb-server",
        "mariadb" => "mariadb-client",
        "prometheus" | "promtool" => "prometheus",
        "prometheus-alertmanager" | "alertmanager" | "amtool" => "prometheus-alertmanager",
        "knotd" | "knotc" => "knot",
        "unbound" => "unbound",
        "systemd-analyze" => "systemd",
        "prometheus-postgres-exporter" => "prometheus-postgres-exporter",
        "prometheus-mysqld-exporter" => "prometheus-mysqld-exporter",
        "pt-heartbeat" => "percona-toolkit",
        "patroni" | "patronictl" => "patroni",
        "etcd" => "etcd-server",
        _ => return None,
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_system_program_and_names_the_package_of_a_missing_one() {
        assert_eq!(find_program("sh").unwrap().file_name().unwrap(), "sh");
        let error = format!("{:#}", find_program("rpo-lab-no-such-program").unwrap_err());
        assert!(error.starts_with("rpo-lab-no-such-program not found on PATH"), "{error}");
        assert!(debian_package("knotc") == Some("knot"));
    }
}
