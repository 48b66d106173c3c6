//! The HTTP side: `/metrics` (or the configured telemetry path), `/-/healthy`,
//! `/-/ready`, `/-/reload` and a landing page at `/`.
//!
//! The only module that knows HTTP. A scrape renders the latest measurements from
//! memory (see [`crate::metrics`]) and never waits on a database; the server keeps
//! no state of its own beyond the registry it encodes.
//!
//! With `--web.config.file` (see [`crate::webconfig`]) it serves through its own
//! accept loop instead of `axum::serve`: TLS with rustls, optional client
//! certificates, bcrypt basic auth, the file re-read when it changes. Then it also
//! keeps the last good web config and a small cache of bcrypt outcomes.

use crate::exporter::ReloadRequest;
use crate::metrics::{self, Exposition};
use crate::webconfig::WebConfig;
use axum::extract::{Request, State as AxumState};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as AutoBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
struct AppState {
    exposition: Arc<Exposition>,
    telemetry_path: Arc<str>,
    reload: mpsc::Sender<ReloadRequest>,
}

/// Resolves a Prometheus-style listen address: `:10087` means every interface.
pub async fn bind(listen: &str) -> anyhow::Result<TcpListener> {
    let addr = if listen.starts_with(':') { format!("0.0.0.0{listen}") } else { listen.to_owned() };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&addr)
        .await
        .map_err(|e| anyhow::anyhow!("invalid --web.listen-address {listen:?}: {e}"))?
        .collect();
    let first = addrs
        .first()
        .ok_or_else(|| anyhow::anyhow!("--web.listen-address {listen:?} resolves to nothing"))?;
    TcpListener::bind(first).await.map_err(|e| anyhow::anyhow!("cannot listen on {first}: {e}"))
}

/// Serves until `shutdown` is cancelled, then finishes in-flight requests. Without
/// a web config: plain HTTP through `axum::serve`; with one: TLS and/or basic auth.
pub async fn serve(
    listener: TcpListener,
    exposition: Exposition,
    telemetry_path: &str,
    reload: mpsc::Sender<ReloadRequest>,
    web: Option<WebConfigWatch>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let state = AppState { exposition: Arc::new(exposition), telemetry_path: telemetry_path.into(), reload };
    let app = router(state);
    match web {
        None => serve_plain(listener, app, shutdown).await,
        Some(web) => serve_with_web_config(listener, app, Arc::new(web), shutdown).await,
    }
}

/// Every route the exporter serves, in one place.
fn router(state: AppState) -> Router {
    let telemetry_path = state.telemetry_path.clone();
    Router::new()
        .route("/", get(landing))
        .route(&telemetry_path, get(scrape))
        .route("/-/healthy", get(|| async { "Healthy\n" }))
        .route("/-/ready", get(|| async { "Ready\n" }))
        .route("/-/reload", post(reload_config).put(reload_config))
        .with_state(state)
}

async fn scrape(AxumState(state): AxumState<AppState>) -> Response {
    match state.exposition.render() {
        Ok(body) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "Encoding metrics failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "encoding metrics failed\n").into_response()
        }
    }
}

/// `POST /-/reload`: 200 once the new config runs, 500 with the problem (file,
/// field path) when it was refused and the old one keeps running.
async fn reload_config(AxumState(state): AxumState<AppState>) -> Response {
    let (tx, rx) = oneshot::channel();
    if state.reload.send(tx).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match rx.await {
        Ok(Ok(())) => (StatusCode::OK, "Configuration reloaded\n").into_response(),
        Ok(Err(problem)) => {
            (StatusCode::INTERNAL_SERVER_ERROR, format!("failed to reload config: {problem}\n"))
                .into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    }
}

async fn landing(AxumState(state): AxumState<AppState>) -> Html<String> {
    let path = &state.telemetry_path;
    Html(format!(
        "<!doctype html><html><head><title>rpo-exporter</title></head><body>\
         <h1>rpo-exporter {}</h1>\
         <p>Cross-region replication lag and data-loss exposure, in RPO terms.</p>\
         <ul><li><a href=\"{path}\">Metrics</a></li>\
         <li><a href=\"/-/healthy\">Health</a></li><li><a href=\"/-/ready\">Readiness</a></li></ul>\
         </body></html>",
        env!("CARGO_PKG_VERSION")
    ))
}

// ---------------------------------------------------------------------------------
// --web.config.file: TLS and basic auth (the exporter-toolkit web config format).
//
// axum::serve speaks plain HTTP only, so with a web config the server runs its own
// accept loop: each connection gets the web config current at accept time (TLS
// settings, certificates), each request the one current when it arrives (users,
// headers). The file and every file it names are checked for changes on each new
// connection and each request (a few stat calls), so a new password, a renewed
// certificate or a new client CA takes effect without a restart; a file that does
// not load keeps the last good config and logs why.

/// Bound on a TLS handshake, so a client that connects and says nothing (or
/// speaks slowly on purpose) cannot hold a task forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on reading a request's headers (slowloris), from the first byte of a new
/// connection or the end of the previous answer on a kept-alive one, so it also
/// closes idle keep-alive connections. A scrape's head arrives in one packet.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for in-flight requests on open connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Cached bcrypt outcomes before the cache is emptied and starts again.
const AUTH_CACHE_ENTRIES: usize = 1024;
/// What a plain-HTTP client reads from a TLS port, as Go's servers answer it.
const PLAIN_HTTP_ON_TLS_PORT: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
Connection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// The web config file and the last good config read from it.
pub struct WebConfigWatch {
    path: PathBuf,
    inner: Mutex<Watched>,
}

struct Watched {
    config: Arc<WebConfig>,
    /// Stamps of `config.files` when last looked at (after a failed reload too, so
    /// a broken file is reported once, not on every connection).
    seen: Vec<Option<FileStamp>>,
}

/// What tells a changed file from an unchanged one without reading it: an edit in
/// place changes mtime/ctime, an atomic rename (Kubernetes Secret volumes, cert
/// managers) changes the inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

fn stamps(files: &[PathBuf]) -> Vec<Option<FileStamp>> {
    use std::os::unix::fs::MetadataExt;
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f).ok().map(|m| FileStamp {
                dev: m.dev(),
                ino: m.ino(),
                len: m.len(),
                mtime: (m.mtime(), m.mtime_nsec()),
                ctime: (m.ctime(), m.ctime_nsec()),
            })
        })
        .collect()
}

impl WebConfigWatch {
    /// Loads the web config; an error here stops the exporter before it serves.
    pub fn load(path: &Path) -> Result<WebConfigWatch, crate::config::ConfigError> {
        let config = WebConfig::load(path)?;
        let seen = stamps(&config.files);
        Ok(WebConfigWatch {
            path: path.to_owned(),
            inner: Mutex::new(Watched { config: Arc::new(config), seen }),
        })
    }

    /// The web config to use now, read again first if any of its files changed.
    pub fn current(&self) -> Arc<WebConfig> {
        let mut w = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let now = stamps(&w.config.files);
        if now == w.seen {
            return w.config.clone();
        }
        w.seen = now;
        match WebConfig::load(&self.path) {
            // Turning TLS off by editing a file would silently downgrade every
            // scrape to plaintext; turning it on would break every scraper at once.
            Ok(new) if new.tls.is_some() != w.config.tls.is_some() => {
                tracing::error!(file = %self.path.display(),
                    "Web config not reloaded: switching TLS on or off needs a restart; the previous web config stays in use");
            }
            Ok(new) => {
                w.seen = stamps(&new.files);
                tracing::info!(file = %self.path.display(), tls = new.tls.is_some(),
                    client_auth = new.client_auth.as_str(), users = new.users.len(), "Web config reloaded");
                w.config = Arc::new(new);
            }
            Err(e) => {
                tracing::error!(error = %e, "Web config reload failed; the previous web config stays in use");
            }
        }
        w.config.clone()
    }
}

/// Basic-auth checking with bcrypt, shared by every connection.
#[derive(Clone)]
struct Auth {
    web: Arc<WebConfigWatch>,
    /// SHA-256(user, hash, password) → outcome. bcrypt costs tens of
    /// milliseconds by design; Prometheus sends the same credentials every scrape.
    cache: Arc<Mutex<HashMap<[u8; 32], bool>>>,
    /// One bcrypt at a time: a flood of wrong passwords queues up instead of
    /// taking every core.
    bcrypt: Arc<Semaphore>,
}

impl Auth {
    async fn verify(&self, config: &Arc<WebConfig>, user: &str, password: &str) -> bool {
        let hash = config.users.get(user).cloned();
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for part in [user, hash.as_deref().unwrap_or(""), password] {
            ctx.update(&(part.len() as u64).to_le_bytes());
            ctx.update(part.as_bytes());
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(ctx.finish().as_ref());
        if let Some(ok) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return *ok;
        }
        let Ok(_permit) = self.bcrypt.acquire().await else { return false };
        let password = password.to_owned();
        let config = config.clone();
        let ok = tokio::task::spawn_blocking(move || config.check_password(hash.as_deref(), &password))
            .await
            .unwrap_or(false);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= AUTH_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, ok);
        ok
    }
}

/// `Authorization: Basic base64(user:password)` → (user, password).
fn basic_credentials(headers: &axum::http::HeaderMap) -> Option<(String, String)> {
    use base64::Engine as _;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let (user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Middleware: basic auth when the web config lists users, and its extra headers.
async fn authenticate(AxumState(auth): AxumState<Auth>, request: Request, next: Next) -> Response {
    let config = auth.web.current();
    let allowed = config.users.is_empty()
        || match basic_credentials(request.headers()) {
            Some((user, password)) => {
                let ok = auth.verify(&config, &user, &password).await;
                if !ok {
                    tracing::debug!(user = %user, path = %request.uri().path(), "Basic authentication failed");
                }
                ok
            }
            None => false,
        };
    let mut response = if allowed {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"rpo-exporter\", charset=\"UTF-8\"")],
            "Unauthorized\n",
        )
            .into_response()
    };
    for (name, value) in &config.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value))
        {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// The accept loop used with a web config: TLS (when configured) per connection,
/// hyper-util's auto builder (HTTP/1.1, and HTTP/2 when offered) per connection.
async fn serve_with_web_config(
    listener: TcpListener,
    app: Router,
    web: Arc<WebConfigWatch>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let config = web.current();
    tracing::info!(file = %web.path.display(), tls = config.tls.is_some(), client_auth = config.client_auth.as_str(),
        users = config.users.len(), http2 = config.http2, "Serving with the web config");
    let app = app.layer(axum::middleware::from_fn_with_state(
        Auth { web: web.clone(), cache: Arc::default(), bcrypt: Arc::new(Semaphore::new(1)) },
        authenticate,
    ));
    let builder = connection_builder();
    let limit = ConnectionLimit::new(MAX_CONNECTIONS);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "Accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(slot) = limit.admit(&stream, peer, false) else { continue };
        let service = TowerToHyperService::new(app.clone());
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let web = web.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let config = web.current();
            let result = match &config.tls {
                None => {
                    if !protocol_sniffed(&stream, peer).await {
                        return;
                    }
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
                Some(tls) => {
                    let Some(stream) = tls_accept(stream, tls.clone(), peer).await else { return };
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(peer = %peer, error = %e, "Connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("Open connections did not finish within {DRAIN_TIMEOUT:?}; closing them");
    }
    Ok(())
}

/// Completes a TLS handshake, or answers a plain-HTTP client with a 400 that says
/// what went wrong. Failures are logged at debug level: port scanners and
/// load-balancer health checks make plenty of them.
async fn tls_accept(
    mut stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
    peer: SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let handshake = async {
        // A TLS connection opens with a handshake record (content type 22).
        let mut first = [0u8; 1];
        match stream.peek(&mut first).await {
            Ok(1) if first[0] == 0x16 => {}
            Ok(1) if first[0].is_ascii_alphabetic() => {
                tracing::debug!(peer = %peer, "Plain HTTP request on the TLS port; answered 400");
                let _ = stream.write_all(PLAIN_HTTP_ON_TLS_PORT).await;
                let _ = stream.shutdown().await;
                return None;
            }
            _ => {
                tracing::debug!(peer = %peer, "Connection closed or not TLS; dropped");
                return None;
            }
        }
        match tokio_rustls::TlsAcceptor::from(config).accept(stream).await {
            Ok(tls) => Some(tls),
            Err(e) => {
                tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
                None
            }
        }
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(tls) => tls,
        Err(_) => {
            tracing::debug!(peer = %peer, "TLS handshake timed out");
            None
        }
    }
}

// ---------------------------------------------------------------------------------
// Connection-level limits, the same with or without a web config: a bounded number
// of connections, a bounded time and size for a request's head, bounded HTTP/2
// streams. What a hostile or broken client can hold is a connection slot for at
// most HEADER_READ_TIMEOUT, and never the scrape of a well-behaved Prometheus.

/// Connections served at once. Far above what scrapers need, and well below the
/// usual 1,024 open files limit, so databases and DNS keep their sockets. The
/// next connection is answered 503 and closed at once.
const MAX_CONNECTIONS: usize = 768;
/// Largest request head (request line and headers) read: a longer one is answered
/// 431 and the connection closed. Scrapes send a few hundred bytes.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most headers in one request.
const MAX_HEADERS: usize = 64;
/// Concurrent requests on one HTTP/2 connection.
const MAX_H2_STREAMS: u32 = 16;
/// HTTP/2 pings on an otherwise quiet connection, and how long an answer may take:
/// a peer that vanished without closing is let go.
const H2_KEEP_ALIVE: Duration = Duration::from_secs(10);
/// How often "too many connections" is logged while it lasts.
const OVERLOAD_LOG_EVERY: Duration = Duration::from_secs(10);
/// What a connection over the limit reads before it is closed.
const OVERLOADED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Length: 27\r\nConnection: close\r\n\r\ntoo many open connections\r\n";
/// The first bytes of every HTTP/2 connection (RFC 9113, 3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// hyper-util's HTTP/1.1 + HTTP/2 connection builder with the limits above.
fn connection_builder() -> AutoBuilder<TokioExecutor> {
    let mut builder = AutoBuilder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_H2_STREAMS)
        .max_header_list_size(MAX_HEAD_BYTES as u32)
        .keep_alive_interval(H2_KEEP_ALIVE)
        .keep_alive_timeout(H2_KEEP_ALIVE);
    builder
}

/// At most `max` connections served at once; each holds a slot until it ends.
struct ConnectionLimit {
    slots: Arc<Semaphore>,
    max: usize,
    last_warning: Mutex<Option<std::time::Instant>>,
}

impl ConnectionLimit {
    fn new(max: usize) -> ConnectionLimit {
        ConnectionLimit { slots: Arc::new(Semaphore::new(max)), max, last_warning: Mutex::new(None) }
    }

    /// A slot for a new connection, or `None` when all are taken: the connection is
    /// then closed (a plain-HTTP one after a 503, written without waiting).
    fn admit(
        &self,
        stream: &TcpStream,
        peer: SocketAddr,
        plain: bool,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return Some(slot);
        }
        if plain {
            let _ = stream.try_write(OVERLOADED);
        }
        let mut last = self.last_warning.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|at| at.elapsed() >= OVERLOAD_LOG_EVERY) {
            *last = Some(std::time::Instant::now());
            tracing::warn!(peer = %peer, max = self.max,
                "Too many open HTTP connections; new ones are refused until some close");
        }
        None
    }
}

/// Waits until a new connection has said which HTTP it speaks (its first byte, or
/// the whole HTTP/2 preface when it starts like one), within HEADER_READ_TIMEOUT:
/// hyper's own header timeout starts only after that. False when the peer closed,
/// stayed silent or dribbled; it is logged and dropped.
async fn protocol_sniffed(stream: &TcpStream, peer: SocketAddr) -> bool {
    let sniff = async {
        let mut head = [0u8; 24];
        loop {
            let n = stream.peek(&mut head).await.ok()?;
            if n == 0 {
                return None;
            }
            if n == head.len() || head[..n] != H2_PREFACE[..n] {
                return Some(());
            }
            // Part of an HTTP/2 preface: peek returns at once while those bytes
            // wait, so look again a little later.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    match tokio::time::timeout(HEADER_READ_TIMEOUT, sniff).await {
        Ok(Some(())) => true,
        Ok(None) => false,
        Err(_) => {
            tracing::debug!(peer = %peer, timeout = ?HEADER_READ_TIMEOUT,
                "HTTP connection closed: no request within the header read timeout");
            false
        }
    }
}

/// Why a connection ended, for the debug log: the limits above by name.
fn connection_error(peer: SocketAddr, e: &(dyn std::error::Error + 'static)) {
    let timed_out = e.downcast_ref::<hyper::Error>().is_some_and(|e| e.is_timeout());
    if timed_out {
        tracing::debug!(peer = %peer, timeout = ?HEADER_READ_TIMEOUT,
            "HTTP connection closed: request headers not received within the header read timeout");
    } else {
        tracing::debug!(peer = %peer, error = %crate::error_chain(e), "HTTP connection ended with an error");
    }
}

/// The accept loop without a web config: plain HTTP/1.1 (and HTTP/2 with prior
/// knowledge) with the connection limits; on shutdown, in-flight requests finish.
async fn serve_plain(listener: TcpListener, app: Router, shutdown: CancellationToken) -> anyhow::Result<()> {
    let builder = connection_builder();
    let limit = ConnectionLimit::new(MAX_CONNECTIONS);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "Accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(slot) = limit.admit(&stream, peer, true) else { continue };
        let service = TowerToHyperService::new(app.clone());
        let watcher = graceful.watcher();
        let builder = builder.clone();
        tokio::spawn(async move {
            let _slot = slot;
            if !protocol_sniffed(&stream, peer).await {
                return;
            }
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                connection_error(peer, &*e);
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("Open connections did not finish within {DRAIN_TIMEOUT:?}; closing them");
    }
    Ok(())
}
