//! The text of the lab's MariaDB option files: the settings every server shares (also used
//! to bootstrap the template data directory, so that InnoDB's files match), and the
//! per-node file each `mariadbd --defaults-file=…` reads.

use std::path::Path;

/// Settings every server of every lab shares, including the template's bootstrap.
const SHARED_SETTINGS: &str = "\
bind-address = 127.0.0.1
skip-name-resolve
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
performance_schema = OFF
max_connections = 100
table_open_cache = 200
open_files_limit = 1024
# Tests abort many connections mid-handshake (client timeouts against frozen servers):
# keep 127.0.0.1 from being blocked as a host with too many connection errors.
max_connect_errors = 1000000

# TEST LAB ONLY: durability and memory traded for speed. Commits are not flushed to disk
# (a kill -9 of mariadbd still loses nothing: the OS keeps the page cache), small buffers.
innodb_flush_log_at_trx_commit = 2
sync_binlog = 0
innodb_doublewrite = 0
innodb_buffer_pool_size = 16M
innodb_log_file_size = 8M
innodb_log_buffer_size = 2M
key_buffer_size = 1M
";

/// The options file of the template bootstrap (`mariadb-install-db --defaults-file`):
/// no binary log, so the copied data directories start with an empty GTID history.
pub(crate) fn template_config(data_dir: &Path, tmp_dir: &Path) -> String {
    format!(
        "# rpo-lab: template data directory, copied for every MariaDB server of the labs\n\
         [mariadbd]\n\
         datadir = {}\n\
         tmpdir = {}\n\
         {SHARED_SETTINGS}",
        data_dir.display(),
        tmp_dir.display()
    )
}

/// What differs between the servers of a lab.
pub(crate) struct NodeSettings<'a> {
    pub name: &'a str,
    pub data_dir: &'a Path,
    pub socket: &'a Path,
    pub pid_file: &'a Path,
    pub tmp_dir: &'a Path,
    pub port: u16,
    pub server_id: u32,
    pub domain_id: u32,
    pub read_only: bool,
}

/// One server's options file.
pub(crate) fn node_config(s: &NodeSettings<'_>) -> String {
    format!(
        "# rpo-lab: MariaDB server {name:?} (mariadbd --defaults-file=THIS)\n\
         [mariadbd]\n\
         datadir = {data}\n\
         socket = {socket}\n\
         pid-file = {pid}\n\
         tmpdir = {tmp}\n\
         port = {port}\n\
         {SHARED_SETTINGS}\n\
         # Replication: GTIDs in a domain of this server's own, so that several writers and\n\
         # multi-source replicas never mix their sequences.\n\
         server_id = {server_id}\n\
         gtid_domain_id = {domain_id}\n\
         gtid_strict_mode = 1\n\
         # Binary and relay logs in the data directory, not named after the host.\n\
         log_bin = mariadb-bin\n\
         relay_log = relay-bin\n\
         binlog_format = ROW\n\
         log_slave_updates = 1\n\
         report_host = 127.0.0.1\n\
         report_port = {port}\n\
         read_only = {read_only}\n",
        name = s.name,
        data = s.data_dir.display(),
        socket = s.socket.display(),
        pid = s.pid_file.display(),
        tmp = s.tmp_dir.display(),
        port = s.port,
        server_id = s.server_id,
        domain_id = s.domain_id,
        read_only = if s.read_only { "ON" } else { "OFF" },
    )
}
