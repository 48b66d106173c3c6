//! The text of the lab's PostgreSQL configuration files: the settings every node shares
//! (written into the primary's `postgresql.conf`, which replicas inherit through
//! `pg_basebackup`), the per-node block appended to each node's own copy, and
//! `pg_hba.conf`.

use std::path::Path;

/// Settings shared by every node of a lab, appended to the primary's `postgresql.conf`.
pub(crate) const SHARED_SETTINGS: &str = "
# ---- rpo-lab: settings shared by every node (replicas inherit them via pg_basebackup) ----
listen_addresses = '127.0.0.1'
max_connections = 40
shared_buffers = '32MB'
# DSM segments as files in the data directory (not /dev/shm), so nothing outlives the lab.
dynamic_shared_memory_type = mmap
password_encryption = 'scram-sha-256'

wal_level = replica
max_wal_senders = 16
max_replication_slots = 16
hot_standby = on
# Commit times on the primary (pg_last_committed_xact()): rpo-exporter samples them
# between heartbeats to place a replica's lag below one interval.
track_commit_timestamp = on
# Default: 5s. A replica whose upstream went away retries this often; keep reconnects fast.
wal_retrieve_retry_interval = '1s'
# wal_sender_timeout and wal_receiver_timeout keep their defaults (60s).

# TEST LAB ONLY: durability traded for speed. fsync=off makes commits cheap.
# synchronous_commit stays on: with it off, commits would sit unflushed for up to
# wal_writer_delay (200ms) before the walsenders ship them, adding artificial replication
# lag. full_page_writes stays on: base backups taken from a standby require it.
fsync = off

logging_collector = off
log_destination = 'stderr'
log_line_prefix = '%m [%p] %q%a@%d '
";

/// The block appended to one node's `postgresql.conf` (later lines override earlier ones).
pub(crate) fn node_settings(name: &str, port: u16, socket_dir: &Path) -> String {
    format!(
        "\n# ---- rpo-lab: this node ----\n\
         cluster_name = '{name}'\n\
         port = {port}\n\
         unix_socket_directories = '{}'\n",
        socket_dir.display()
    )
}

/// Appended when the node must move to another port (its first one was taken).
pub(crate) fn port_override(port: u16) -> String {
    format!("port = {port}\n")
}

/// `pg_hba.conf`: replication and the `postgres` superuser are trusted on loopback, every
/// other account must authenticate with SCRAM.
pub(crate) const PG_HBA: &str = "\
# rpo-lab: loopback only
# TYPE  DATABASE     USER      ADDRESS         METHOD
local   replication  all                       trust
local   all          postgres                  trust
local   all          all                       scram-sha-256
host    replication  all       127.0.0.1/32    trust
host    all          postgres  127.0.0.1/32    trust
host    all          all       127.0.0.1/32    scram-sha-256
";
