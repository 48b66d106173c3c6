//! The exporter's own `process_*` readings, as client_golang's process collector
//! takes them: CPU time, memory, file descriptors and start time, read from
//! `/proc/self` at scrape time. A few small file reads, never a database; a file
//! that cannot be read or parsed leaves its families out of that scrape. Imports
//! only the metric vocabulary.

use crate::metrics::{
    Samples, PROCESS_CPU, PROCESS_MAX_FDS, PROCESS_OPEN_FDS, PROCESS_RSS, PROCESS_START, PROCESS_VMS,
};

/// Clock ticks per second of `/proc/*/stat`'s times: USER_HZ, 100 on every Linux
/// architecture Prometheus's procfs library supports (it hardcodes it too).
const USER_HZ: f64 = 100.0;

/// Adds this process's readings to a scrape's samples.
pub fn sample(samples: &mut Samples) {
    if let Some(stat) = read("/proc/self/stat").as_deref().and_then(Stat::parse) {
        samples.push(&PROCESS_CPU, &[], (stat.utime + stat.stime) as f64 / USER_HZ);
        samples.push(&PROCESS_VMS, &[], stat.vsize as f64);
        // Fixed for the life of the process: read /proc/stat's boot time once.
        static START: std::sync::OnceLock<Option<f64>> = std::sync::OnceLock::new();
        let start = *START.get_or_init(|| {
            let btime = read("/proc/stat").as_deref().and_then(boot_time)?;
            Some(btime as f64 + stat.starttime as f64 / USER_HZ)
        });
        if let Some(start) = start {
            samples.push(&PROCESS_START, &[], start);
        }
    }
    if let Some(rss) = read("/proc/self/status").as_deref().and_then(resident_bytes) {
        samples.push(&PROCESS_RSS, &[], rss as f64);
    }
    if let Some(open) = open_fds() {
        samples.push(&PROCESS_OPEN_FDS, &[], open as f64);
    }
    if let Some(max) = read("/proc/self/limits").as_deref().and_then(max_open_files) {
        samples.push(&PROCESS_MAX_FDS, &[], max);
    }
}

/// The open file descriptors. Linux 6.2 and later report their number as the size
/// of `/proc/self/fd`: one stat, however many connections are open (a scrape flood
/// holds hundreds). Older kernels report 0 there; then the entries are counted,
/// as client_golang does (the directory handle itself among them).
fn open_fds() -> Option<u64> {
    match std::fs::metadata("/proc/self/fd") {
        Ok(m) if m.len() > 0 => Some(m.len()),
        _ => std::fs::read_dir("/proc/self/fd").ok().map(|dir| dir.count() as u64),
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The fields of `/proc/self/stat` we use (proc(5) numbering).
#[derive(Debug, PartialEq)]
struct Stat {
    /// (14), (15): clock ticks in user and kernel mode.
    utime: u64,
    stime: u64,
    /// (22): clock ticks after boot when the process started.
    starttime: u64,
    /// (23): virtual memory size in bytes.
    vsize: u64,
}

impl Stat {
    fn parse(text: &str) -> Option<Stat> {
        // The command name (2) is in parentheses and may hold spaces and ')':
        // the fields start after the last ')'. There, field 3 is index 0.
        let rest = &text[text.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        Some(Stat { utime: field(14)?, stime: field(15)?, starttime: field(22)?, vsize: field(23)? })
    }
}

/// `btime` of `/proc/stat`: the boot time, in seconds since the epoch.
fn boot_time(text: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()
}

/// `VmRSS` of `/proc/self/status` (in kB there), in bytes.
fn resident_bytes(text: &str) -> Option<u64> {
    let kb = text.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().strip_suffix("kB")?;
    Some(kb.trim().parse::<u64>().ok()? * 1024)
}

/// The soft limit on open files from `/proc/self/limits` (`+Inf` if unlimited).
fn max_open_files(text: &str) -> Option<f64> {
    let soft = text.lines().find_map(|l| l.strip_prefix("Max open files"))?.split_whitespace().next()?;
    match soft {
        "unlimited" => Some(f64::INFINITY),
        n => n.parse::<u64>().ok().map(|n| n as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 2000 0 0 0 150 27 0 0 20 0 9 0 \
                    123456 987654321 2048 18446744073709551615 1 1 0 0 0 0 0 4096 17922 0 0 0 17 1";
        assert_eq!(
            Stat::parse(stat),
            Some(Stat { utime: 150, stime: 27, starttime: 123456, vsize: 987654321 })
        );
        assert_eq!(Stat::parse("1 (x) S 1 2"), None);
        assert_eq!(boot_time("cpu 1 2 3\nbtime 1700000000\nprocesses 9\n"), Some(1700000000));
        assert_eq!(resident_bytes("Name:\tx\nVmRSS:\t   20480 kB\nVmSwap: 0 kB\n"), Some(20480 * 1024));
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(max_open_files(limits), Some(1024.0));
        assert_eq!(
            max_open_files("Max open files            unlimited            unlimited            files"),
            Some(f64::INFINITY)
        );
    }

    #[test]
    fn reads_this_process() {
        let mut samples = Samples::default();
        sample(&mut samples);
        let one = |samples: &mut Samples, desc| {
            let family = samples.take(desc).expect("family present");
            let values: Vec<f64> = family.samples().map(|(_, v)| v).collect();
            assert_eq!(values.len(), 1);
            values[0]
        };
        let rss = one(&mut samples, &PROCESS_RSS);
        assert!(rss > 0.0);
        assert!(one(&mut samples, &PROCESS_VMS) >= rss);
        let open = one(&mut samples, &PROCESS_OPEN_FDS);
        assert!(open >= 3.0, "{open}");
        assert!(one(&mut samples, &PROCESS_MAX_FDS) >= open);
        assert!(one(&mut samples, &PROCESS_CPU) >= 0.0);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        let start = one(&mut samples, &PROCESS_START);
        assert!(start <= now + 1.0 && start > now - 3600.0, "start {start}, now {now}");
    }
}
