//! A userspace TCP proxy that simulates WAN distance and network faults.
//!
//! Owns [`Proxy`]: it forwards 127.0.0.1:[`port`](Proxy::port) to
//! 127.0.0.1:[`target`](Proxy::target) and lets a test, at any time,
//!
//! - add a one-way latency ([`set_delay`](Proxy::set_delay)): every chunk read at instant `t`
//!   from one side is written to the other side at `t + delay` (the delay in force when it
//!   was read), in order. Chunks do not add up their delays: a burst of ten chunks arrives
//!   about one delay later, not ten. A round trip through the proxy gains 2 × delay;
//! - black-hole the network ([`set_blackhole`](Proxy::set_blackhole)): nothing is forwarded
//!   in either direction (data, end of stream or errors), yet every socket stays open, as
//!   when a network silently breaks. Bytes that arrive meanwhile are held (one chunk per
//!   direction in the proxy, the rest in the kernel's buffers, so senders feel TCP
//!   backpressure) and are delivered in order once the hole ends, as TCP retransmission
//!   would. New connections are still accepted while the hole is on; they get nothing
//!   forwarded;
//! - reset every open connection ([`reset`](Proxy::reset)): both sockets of each proxied
//!   connection are closed at once with `SO_LINGER` 0, so both peers see a TCP reset; later
//!   connections work normally.
//!
//! Connection setup models a TCP handshake: after accepting a client, the proxy waits
//! 2 × delay before connecting to the target, and only then starts reading from either side.
//! So a server that speaks first (MySQL/MariaDB) greets the client about 3 × delay after
//! it connected, and a client that speaks first (PostgreSQL) gets its first answer about
//! 4 × delay after connecting, as over a real WAN link. During a black hole the proxy does
//! not connect to the target at all (the SYN would be lost) until the hole ends. If the
//! target refuses the connection the client's socket is closed.
//!
//! When one side ends its stream (EOF), the proxy half-closes the other side's write
//! direction after the delay and keeps forwarding the opposite direction; when a read or a
//! write fails, it half-closes and then closes both sockets, so drivers see an EOF or a reset
//! as they would on a real network. I/O errors never panic.
//!
//! The kernel's netem would do all of this below TCP; this proxy exists because the test
//! machines have no netem. Differences worth knowing: the kernel completes the client's
//! TCP handshake with the proxy at once (so `connect` returns immediately, even during a
//! black hole), and the delay applies to chunks as the proxy reads them, not to packets.
//!
//! Everything listens on 127.0.0.1 only and runs as tasks on the caller's tokio runtime.
//! Dropping the [`Proxy`] stops accepting (the port closes) and resets every proxied
//! connection, as [`reset`](Proxy::reset) does.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Bytes read from one side in one `read`, at most this many.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight per direction (read, not yet written) before the reader waits: with
/// 64 KiB chunks up to 64 MiB, enough for any bandwidth × delay the lab needs, bounded so a
/// fast sender cannot grow the proxy's memory without limit.
const IN_FLIGHT: usize = 1024;

/// A TCP proxy from 127.0.0.1:[`port`](Proxy::port) to 127.0.0.1:[`target`](Proxy::target)
/// adding, on demand, a one-way latency (no accumulation across chunks; a new connection
/// first pays a handshake round trip), black holes (nothing forwarded, sockets kept open,
/// held bytes delivered in order afterwards) and resets of every open connection.
/// End of stream is forwarded as a half-close; a failed read or write closes both sides.
/// Dropping it stops accepting and resets every connection.
pub struct Proxy {
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

/// State shared by the handle, the accept loop and every connection task.
struct Shared {
    port: u16,
    target: u16,
    /// One-way delay in nanoseconds.
    delay_nanos: AtomicU64,
    /// Black hole on (`true`) or off; connections wait on it rather than polling.
    blackhole: watch::Sender<bool>,
    /// Bumped by [`Proxy::reset`] and by drop: every connection open at that moment ends.
    generation: watch::Sender<u64>,
    /// Set by drop (before bumping `generation`): connections accepted later end at once.
    closed: AtomicBool,
    accepted: AtomicU64,
    open: AtomicUsize,
}

impl Shared {
    fn delay(&self) -> Duration {
        Duration::from_nanos(self.delay_nanos.load(Ordering::SeqCst))
    }
}

impl Proxy {
    /// Forwards 127.0.0.1:`<free port>` (from [`crate::free_port`]) to 127.0.0.1:`target`,
    /// with no delay and no black hole. The target need not be listening yet: each client
    /// connection connects to it anew.
    pub async fn start(target: u16) -> Result<Proxy> {
        let port = crate::free_port();
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("proxy: cannot listen on 127.0.0.1:{port}"))?;
        let shared = Arc::new(Shared {
            port,
            target,
            delay_nanos: AtomicU64::new(0),
            blackhole: watch::Sender::new(false),
            generation: watch::Sender::new(0),
            closed: AtomicBool::new(false),
            accepted: AtomicU64::new(0),
            open: AtomicUsize::new(0),
        });
        let accept_task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Proxy { shared, accept_task })
    }

    /// The port the proxy listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// The port it forwards to (127.0.0.1).
    pub fn target(&self) -> u16 {
        self.shared.target
    }

    /// One-way delay added in each direction, so a round trip gains 2 × `one_way`.
    /// Applies to bytes read after the call (and to connections accepted after it); may be
    /// changed at any time (`Duration::ZERO` = none).
    pub fn set_delay(&self, one_way: Duration) {
        let nanos = u64::try_from(one_way.as_nanos()).unwrap_or(u64::MAX);
        self.shared.delay_nanos.store(nanos, Ordering::SeqCst);
    }

    /// The one-way delay in force.
    pub fn delay(&self) -> Duration {
        self.shared.delay()
    }

    /// Black hole on or off: stop forwarding in both directions but keep every socket open
    /// (as a silently broken network does); bytes that arrive meanwhile are held and
    /// delivered in order once the hole ends (as TCP retransmission would). New connections
    /// are still accepted while it is on, and get nothing forwarded.
    pub fn set_blackhole(&self, on: bool) {
        self.shared.blackhole.send_replace(on);
    }

    /// Whether the black hole is on.
    pub fn blackhole(&self) -> bool {
        *self.shared.blackhole.borrow()
    }

    /// Closes every open proxied connection now, both sides, with a TCP reset (also during
    /// a black hole); later connections work normally.
    pub fn reset(&self) {
        self.shared.generation.send_modify(|g| *g += 1);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections currently open (accepted and not yet closed on both sides).
    pub fn open(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    /// Stops accepting (the listening socket closes) and resets every proxied connection.
    fn drop(&mut self) {
        self.accept_task.abort();
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.generation.send_modify(|g| *g += 1);
    }
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("port", &self.port())
            .field("target", &self.target())
            .field("delay", &self.delay())
            .field("blackhole", &self.blackhole())
            .field("accepted", &self.accepted())
            .field("open", &self.open())
            .finish()
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            // Out of file descriptors and the like: wait rather than spin or give up.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        // Subscribe before checking `closed`: drop sets `closed` then bumps the generation,
        // so either we see `closed` or the connection sees the bump.
        let cancel = shared.generation.subscribe();
        if shared.closed.load(Ordering::SeqCst) {
            return;
        }
        let guard = OpenGuard::new(shared.clone());
        tokio::spawn(async move {
            connection(client, &guard.0, cancel).await;
            drop(guard);
        });
    }
}

/// Counts a connection in [`Proxy::open`] for as long as it lives.
struct OpenGuard(Arc<Shared>);

impl OpenGuard {
    fn new(shared: Arc<Shared>) -> OpenGuard {
        shared.open.fetch_add(1, Ordering::SeqCst);
        OpenGuard(shared)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves one client connection until both directions have ended, a side fails, or the
/// connection is cancelled (reset or proxy dropped). Both sockets close when it returns.
async fn connection(mut client: TcpStream, shared: &Shared, mut cancel: watch::Receiver<u64>) {
    let _ = client.set_nodelay(true);
    // The handshake's round trip before the server sees the client.
    let handshake = 2 * shared.delay();
    let upstream = tokio::select! {
        _ = cancel.changed() => {
            let _ = client.set_zero_linger();
            return;
        }
        upstream = async {
            tokio::time::sleep(handshake).await;
            // A black hole would lose the SYN: the target sees the client once it ends.
            let _ = shared.blackhole.subscribe().wait_for(|on| !*on).await;
            TcpStream::connect(("127.0.0.1", shared.target)).await
        } => upstream,
    };
    let Ok(mut upstream) = upstream else {
        // Refused: close the client side (dropping `client`).
        return;
    };
    let _ = upstream.set_nodelay(true);

    let cancelled = {
        let (client_r, client_w) = client.split();
        let (upstream_r, upstream_w) = upstream.split();
        let both = async {
            // Ends early (dropping the other direction) as soon as one direction fails.
            let _ = tokio::try_join!(
                direction(client_r, upstream_w, shared),
                direction(upstream_r, client_w, shared),
            );
        };
        tokio::select! {
            _ = cancel.changed() => true,
            () = both => false,
        }
    };
    if cancelled {
        // A reset: RST to both peers rather than an orderly FIN.
        let _ = client.set_zero_linger();
        let _ = upstream.set_zero_linger();
    } else {
        // A failure: the failed direction half-closed already; say FIN on the other one
        // too, then close both sockets.
        let _ = client.shutdown().await;
        let _ = upstream.shutdown().await;
    }
}

/// What the reader saw, stamped with when the writer may pass it on.
enum Event {
    Data(Vec<u8>),
    Eof,
    Error,
}

/// Forwards one direction: a reader that stamps each chunk with `read instant + delay` and
/// a writer that passes it on at that instant, so delays do not accumulate. `Ok` once end
/// of stream was forwarded (half-close); `Err` when a read or write failed, which ends the
/// whole connection.
async fn direction<R, W>(mut from: R, mut to: W, shared: &Shared) -> Result<(), ()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (tx, mut rx) = mpsc::channel::<(Instant, Event)>(IN_FLIGHT);
    let reader = async move {
        let mut hole = shared.blackhole.subscribe();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let event = match from.read(&mut buf).await {
                Ok(0) => Event::Eof,
                Ok(n) => Event::Data(buf[..n].to_vec()),
                Err(_) => Event::Error,
            };
            let last = !matches!(event, Event::Data(_));
            // In a black hole nothing gets through: hold what was read until it ends.
            let at = if *hole.borrow_and_update() {
                let _ = hole.wait_for(|on| !*on).await;
                Instant::now()
            } else {
                Instant::now() + shared.delay()
            };
            if tx.send((at, event)).await.is_err() || last {
                return Ok::<(), ()>(());
            }
        }
    };
    let writer = async move {
        let mut hole = shared.blackhole.subscribe();
        while let Some((at, event)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            // Chunks in flight when a black hole starts are lost and, like TCP, resent
            // once it ends.
            if *hole.borrow_and_update() {
                let _ = hole.wait_for(|on| !*on).await;
            }
            match event {
                Event::Data(chunk) => {
                    if to.write_all(&chunk).await.is_err() {
                        return Err(());
                    }
                }
                Event::Eof => {
                    let _ = to.shutdown().await;
                    return Ok(());
                }
                Event::Error => {
                    let _ = to.shutdown().await;
                    return Err(());
                }
            }
        }
        // The reader stopped without an end event: cannot happen, treat as a failure.
        Err(())
    };
    tokio::try_join!(reader, writer).map(|_| ())
}
