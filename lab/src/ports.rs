//! Free loopback TCP ports for the lab's servers.
//!
//! Owns [`free_port`]: it hands out ports on 127.0.0.1 that are free now and that no other
//! caller of `free_port` — in this process or in any other process on the machine — has
//! been given. Ports are picked at random from 20000..32000, below the kernel's ephemeral
//! range (32768..60999 on Linux), so outgoing connections do not steal them either.
//!
//! Cross-process uniqueness comes from an abstract Unix socket named after the port: binding
//! it reserves the port machine-wide for as long as this process lives, and the kernel
//! releases it when the process exits, however it exits (no files to clean up).

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, TcpListener};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

const FIRST: u16 = 20000;
const LAST: u16 = 32000;

/// Ports handed out by this process, and the abstract sockets that reserve them.
static HANDED_OUT: Mutex<Option<(HashSet<u16>, Vec<UnixListener>)>> = Mutex::new(None);

/// A TCP port on 127.0.0.1 that is free now and that no other `free_port` caller (in this
/// process or another) has been given. Panics only if the whole range seems taken.
pub fn free_port() -> u16 {
    let mut guard = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let (seen, reservations) = guard.get_or_insert_with(Default::default);
    for attempt in 0..10_000u32 {
        let port = FIRST + (random_u64(attempt) % u64::from(LAST - FIRST)) as u16;
        if seen.contains(&port) {
            continue;
        }
        // Reserve it against other processes first, then check it is really free.
        let Ok(name) = SocketAddr::from_abstract_name(format!("rpo-lab-port-{port}")) else {
            continue;
        };
        let Ok(reservation) = UnixListener::bind_addr(&name) else {
            continue; // another process holds it
        };
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_err() {
            continue; // something else listens there; dropping `reservation` frees the name
        }
        seen.insert(port);
        reservations.push(reservation);
        return port;
    }
    panic!("free_port: no free TCP port on 127.0.0.1 in {FIRST}..{LAST}");
}

fn random_u64(salt: u32) -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u32(salt);
    h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_bindable() {
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let unique: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), ports.len());
        for p in ports {
            assert!((FIRST..LAST).contains(&p));
            TcpListener::bind((Ipv4Addr::LOCALHOST, p)).expect("handed-out port is bindable");
        }
    }
}
