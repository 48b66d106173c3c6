//! The text of the Patroni lab's files: each node's Patroni configuration (JSON, which
//! is YAML too, so no quoting rules to get wrong) and the small Python reaper that runs
//! Patroni (see [`REAPER`]).

use std::path::Path;

use serde_json::{json, Value};

use super::PatroniOptions;

/// Where one node's Patroni listens and what it reaches, for [`patroni_yaml`].
pub(super) struct NodeAddrs<'a> {
    pub name: &'a str,
    pub node_dir: &'a Path,
    pub bindir: &'a Path,
    pub pg_port: u16,
    pub rest_port: u16,
    /// The proxy in front of this node's REST API: what the other nodes use.
    pub rest_proxy: u16,
    /// The proxy in front of this node's PostgreSQL: what replicas replicate from.
    pub repl_proxy: u16,
    /// The proxy this node's Patroni reaches etcd through.
    pub dcs_proxy: u16,
}

/// The superuser's password (the lab's `pg_hba` trusts `postgres` on loopback anyway).
pub(super) const SUPERUSER_PASSWORD: &str = "lab-superuser";
/// The replication account Patroni creates at bootstrap, and its password.
pub(super) const REPLICATION_USER: &str = "replicator";
pub(super) const REPLICATION_PASSWORD: &str = "lab-replicator";

/// One node's Patroni configuration.
pub(super) fn patroni_yaml(scope: &str, opts: &PatroniOptions, n: &NodeAddrs) -> String {
    let dir = |file: &str| n.node_dir.join(file).display().to_string();
    let config = json!({
        "scope": scope,
        "name": n.name,
        "log": {
            "level": "INFO",
            // Patroni runs with TZ=UTC: these are UTC wall-clock times, to the millisecond.
            "format": "%(asctime)s.%(msecs)03dZ %(levelname)s: %(message)s",
            "dateformat": "%Y-%m-%dT%H:%M:%S",
        },
        "restapi": {
            "listen": format!("127.0.0.1:{}", n.rest_port),
            "connect_address": format!("127.0.0.1:{}", n.rest_proxy),
        },
        "etcd3": {
            "hosts": [format!("127.0.0.1:{}", n.dcs_proxy)],
            "protocol": "http",
            // The host is a proxy: no topology discovery (it would bypass the proxy).
            "use_proxies": true,
        },
        "bootstrap": {
            "dcs": {
                "ttl": opts.ttl,
                "loop_wait": opts.loop_wait,
                "retry_timeout": opts.retry_timeout,
                "maximum_lag_on_failover": opts.maximum_lag_on_failover,
                "synchronous_mode": opts.synchronous_mode,
                "postgresql": {
                    "use_pg_rewind": true,
                    "use_slots": true,
                    "parameters": shared_parameters(),
                },
            },
            "initdb": [{"encoding": "UTF8"}, {"locale": "C"}, "no-sync"],
        },
        "postgresql": {
            "listen": format!("127.0.0.1:{}", n.pg_port),
            "connect_address": format!("127.0.0.1:{}", n.repl_proxy),
            "data_dir": dir("data"),
            "bin_dir": n.bindir.display().to_string(),
            // By default Patroni wants ~/.pgpass, outside what the account may write.
            "pgpass": dir("pgpass"),
            "authentication": {
                "superuser": {"username": "postgres", "password": SUPERUSER_PASSWORD},
                "replication": {"username": REPLICATION_USER, "password": REPLICATION_PASSWORD},
                "rewind": {"username": "postgres", "password": SUPERUSER_PASSWORD},
            },
            "pg_hba": [
                "local all all trust",
                "local replication all trust",
                "host replication all 127.0.0.1/32 trust",
                "host all postgres 127.0.0.1/32 trust",
                "host all all 127.0.0.1/32 scram-sha-256",
            ],
            "parameters": {
                "unix_socket_directories": n.node_dir.display().to_string(),
                // DSM segments as files in the data directory (not /dev/shm), so nothing
                // outlives the lab.
                "dynamic_shared_memory_type": "mmap",
            },
            "basebackup": [{"checkpoint": "fast"}],
            // A node that cannot rewind after a failover starts over from a base backup.
            "remove_data_directory_on_rewind_failure": true,
            "remove_data_directory_on_diverged_timelines": true,
        },
    });
    serde_json::to_string_pretty(&config).expect("a JSON value serializes")
}

/// PostgreSQL settings every node shares (Patroni keeps them in the DCS).
fn shared_parameters() -> Value {
    json!({
        "max_connections": 40,
        "shared_buffers": "32MB",
        "password_encryption": "scram-sha-256",
        "wal_level": "replica",
        "hot_standby": "on",
        "max_wal_senders": 10,
        "max_replication_slots": 10,
        "wal_keep_size": "128MB",
        // pg_rewind needs it (the lab's clusters have no data checksums).
        "wal_log_hints": "on",
        // A leader that demotes itself waits for its walsenders, which wait up to this
        // long for a replica behind a black hole (default 60s); the replica notices a dead
        // upstream as fast.
        "wal_sender_timeout": "10s",
        "wal_receiver_timeout": "10s",
        // A replica whose upstream went away retries this often (default 5s).
        "wal_retrieve_retry_interval": "1s",
        // TEST LAB ONLY: durability traded for speed (see the PostgreSQL lab's settings).
        "fsync": "off",
        "logging_collector": "off",
        "log_line_prefix": "%m [%p] %q%a@%d ",
    })
}

/// A Python reaper that runs Patroni (`python3 REAPER PID_FILE patroni CONFIG`).
///
/// Patroni starts PostgreSQL the way `pg_ctl` does: through an intermediate process that
/// exits, leaving the postmaster an orphan for PID 1 to reap. PID 1 on these machines does
/// not reap orphans, so a postmaster Patroni stopped would stay a zombie, which Patroni
/// (through psutil) sees as still running. The reaper makes itself a child subreaper, so
/// the orphans become its children and it reaps them; it writes Patroni's pid to
/// `PID_FILE`, passes SIGTERM and SIGINT on to Patroni, and exits with Patroni's status
/// once no child is left.
pub(super) const REAPER: &str = r#"# rpo-lab: runs Patroni and reaps the postmasters it orphans (see lab/src/patroni/config.rs)
import ctypes, os, signal, sys
PR_SET_CHILD_SUBREAPER = 36
if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.exit("rpo-lab reaper: prctl(PR_SET_CHILD_SUBREAPER) failed: errno %d" % ctypes.get_errno())
pid_file, argv = sys.argv[1], sys.argv[2:]
child = os.fork()
if child == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
with open(pid_file + ".tmp", "w") as f:
    f.write("%d\n" % child)
os.rename(pid_file + ".tmp", pid_file)
def forward(signum, _frame):
    try:
        os.kill(child, signum)
    except ProcessLookupError:
        pass
signal.signal(signal.SIGTERM, forward)
signal.signal(signal.SIGINT, forward)
status = 1
while True:
    try:
        pid, raw = os.waitpid(-1, 0)
    except ChildProcessError:
        break
    if pid == child:
        status = os.waitstatus_to_exitcode(raw)
sys.exit(status if status >= 0 else 128 - status)
"#;
