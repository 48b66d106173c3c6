//! Build facts for `--version` and `rpo_exporter_build_info`: the git revision, the
//! build date and the rustc version, handed to the crate as compile-time environment
//! variables (`RPO_BUILD_REVISION`, `RPO_BUILD_DATE`, `RPO_BUILD_RUSTC`).
//!
//! - Revision: `RPO_BUILD_REVISION` if set (a packager building from a tarball that
//!   knows it), else `git rev-parse --short HEAD`, else "unknown" (no git, no .git).
//! - Date: `SOURCE_DATE_EPOCH` if set, so that packagers get reproducible builds; else
//!   the time this script last ran. It reruns only when HEAD moves or those variables
//!   change, so an edit-compile loop does not rebuild the crate for a new date.
//! - rustc: the version of the compiler cargo uses (`$RUSTC --version`).
//!
//! And one link flag for the binary on Linux with glibc: `-z pack-relative-relocs`
//! (RELR), which shrinks the position-independent binary's relocation table from
//! about 0.5 MB to a few kB. The dynamic loader reads that table whole at every
//! start, so it was resident for the process's life (docs/benchmarks.md, "Memory:
//! where it goes"). It needs glibc 2.36 (Debian 12) at run time and binutils 2.38 or
//! lld 15 to link; `RPO_BUILD_PACKED_RELOCS=0` leaves it out for an older glibc.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-env-changed=RPO_BUILD_REVISION");
    let revision = std::env::var("RPO_BUILD_REVISION")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .or_else(git_revision)
        .unwrap_or_else(|| "unknown".to_owned());
    let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) => s.trim().parse::<i64>().unwrap_or_else(|_| panic!("SOURCE_DATE_EPOCH={s:?} is no integer")),
        Err(_) => SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0),
    };
    println!("cargo:rustc-env=RPO_BUILD_REVISION={revision}");
    println!("cargo:rustc-env=RPO_BUILD_DATE={}", rfc3339(epoch));
    println!("cargo:rustc-env=RPO_BUILD_RUSTC={}", rustc_version());

    println!("cargo:rerun-if-env-changed=RPO_BUILD_PACKED_RELOCS");
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if linux_gnu && std::env::var("RPO_BUILD_PACKED_RELOCS").as_deref() != Ok("0") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// The short hash of HEAD, and the files whose change means HEAD moved.
fn git_revision() -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").args(args).output().ok()?;
        let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
        (out.status.success() && !text.is_empty()).then_some(text)
    };
    // A source tarball unpacked inside some other checkout must not take its revision.
    let top = git(&["rev-parse", "--show-toplevel"])?;
    let here = std::env::var("CARGO_MANIFEST_DIR").ok()?;
    if std::fs::canonicalize(top).ok()? != std::fs::canonicalize(here).ok()? {
        return None;
    }
    let revision = git(&["rev-parse", "--short", "HEAD"])?;
    // HEAD itself (a checkout of another branch), the branch's ref (a commit) and
    // packed-refs (a gc); in a worktree these live under the common git directory.
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(&["rev-parse", "--symbolic-full-name", "HEAD"]).filter(|b| b != "HEAD") {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    Some(revision)
}

/// "1.89.0" from "rustc 1.89.0 (29483883e 2025-08-04)".
fn rustc_version() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (UTC), without a date crate:
/// Howard Hinnant's days-to-civil algorithm.
fn rfc3339(epoch: i64) -> String {
    let (days, secs) = (epoch.div_euclid(86_400), epoch.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}
