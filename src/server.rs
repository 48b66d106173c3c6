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

use crate::config::ConfigError;
use crate::exposition::{self, Exposition};
use crate::webconfig::WebConfig;
use axum::body::Bytes;
use axum::extract::{Request, State as AxumState};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
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
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// A request to reload the config, sent by `/-/reload` (and by the exporter's own
/// SIGHUP handler) to whoever owns the running configuration; the answer says
/// whether it took effect. Defined here so that the server imports nothing above it.
pub type ReloadRequest = oneshot::Sender<Result<(), ConfigError>>;

#[derive(Clone)]
struct AppState {
    exposition: Arc<Exposition>,
    /// One render in flight per format and encoding, shared by the scrapes
    /// that arrive while it runs.
    renders: Arc<SharedRenders>,
    telemetry_path: Arc<str>,
    reload: mpsc::Sender<ReloadRequest>,
    /// `--web.enable-lifecycle`: whether `/-/reload` may reload at all.
    lifecycle: bool,
    reload_limit: Arc<ReloadLimit>,
}

/// Paths the exporter serves itself; `--web.telemetry-path` may not take one.
const OWN_PATHS: &[&str] = &["/", "/-/healthy", "/-/ready", "/-/reload"];

/// Checks `--web.telemetry-path` before anything binds a port: an absolute path
/// of URL-safe characters that is not one of the exporter's own endpoints nor
/// under `/-/` (the Prometheus convention's lifecycle prefix). axum would panic
/// on a clash or a path without a leading `/`, and treats `{` and `*` as
/// captures.
pub fn check_telemetry_path(path: &str) -> Result<(), TelemetryPathError> {
    let owned = || path.to_owned();
    Err(if !path.starts_with('/') {
        TelemetryPathError::NotAbsolute(owned())
    } else if OWN_PATHS.contains(&path) {
        TelemetryPathError::OwnEndpoint(owned())
    } else if path.starts_with("/-/") {
        TelemetryPathError::Reserved(owned())
    } else if path.contains("//") {
        TelemetryPathError::EmptySegment(owned())
    } else if let Some(c) =
        path.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '~')))
    {
        TelemetryPathError::Character { path: owned(), c }
    } else {
        return Ok(());
    })
}

/// A `--web.telemetry-path` the server cannot serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TelemetryPathError {
    #[error("--web.telemetry-path {0:?} must start with /")]
    NotAbsolute(String),
    #[error("--web.telemetry-path {0:?} is one of the exporter's own endpoints (/, /-/healthy, /-/ready, /-/reload); use e.g. /metrics")]
    OwnEndpoint(String),
    #[error("--web.telemetry-path {0:?} must not be under /-/, which is reserved for the exporter's own endpoints")]
    Reserved(String),
    #[error("--web.telemetry-path {0:?} must not contain an empty segment (//)")]
    EmptySegment(String),
    #[error("--web.telemetry-path {path:?}: {c:?} is not allowed; use letters, digits and / - _ . ~")]
    Character { path: String, c: char },
}

/// Resolves a Prometheus-style listen address and binds it. `:PORT` means every
/// interface, IPv6 and IPv4 alike: one `[::]:PORT` socket with `IPV6_V6ONLY` off
/// (IPv4 clients arrive as `::ffff:a.b.c.d`), as the Go exporters listen; on a
/// host without IPv6 it falls back to `0.0.0.0:PORT`.
pub async fn bind(listen: &str) -> anyhow::Result<TcpListener> {
    if let Some(port) = listen.strip_prefix(':') {
        let port: u16 =
            port.parse().map_err(|_| anyhow::anyhow!("invalid --web.listen-address {listen:?}: bad port"))?;
        return match dual_stack(port) {
            Ok(listener) => Ok(listener),
            // Taken or forbidden is the same answer on IPv4; anything else means
            // this host has no usable IPv6.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::AddrInUse | std::io::ErrorKind::PermissionDenied
                ) =>
            {
                Err(anyhow::anyhow!("cannot listen on [::]:{port}: {e}"))
            }
            Err(e) => {
                tracing::info!(error = %e, port, "No IPv6 on this host; listening on IPv4 only");
                let addr = SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, port));
                TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))
            }
        };
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(listen)
        .await
        .map_err(|e| anyhow::anyhow!("invalid --web.listen-address {listen:?}: {e}"))?
        .collect();
    let first = addrs
        .first()
        .ok_or_else(|| anyhow::anyhow!("--web.listen-address {listen:?} resolves to nothing"))?;
    TcpListener::bind(first).await.map_err(|e| anyhow::anyhow!("cannot listen on {first}: {e}"))
}

/// Binds every `--web.listen-address`, in order; any that fails stops the start.
pub async fn bind_all(listen: &[String]) -> anyhow::Result<Vec<TcpListener>> {
    if listen.is_empty() {
        anyhow::bail!("no --web.listen-address given");
    }
    let mut listeners = Vec::with_capacity(listen.len());
    for address in listen {
        listeners.push(bind(address).await?);
    }
    Ok(listeners)
}

/// `[::]:port` accepting IPv4 too, set up as tokio's own `bind` does (address
/// reuse, a backlog of 1024).
fn dual_stack(port: u16) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::STREAM.cloexec(), Some(Protocol::TCP))?;
    socket.set_only_v6(false)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port)).into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// `--web.systemd-socket`: the listening TCP sockets systemd passed by socket
/// activation (`LISTEN_PID` naming this process, `LISTEN_FDS` sockets from fd 3,
/// as `sd_listen_fds(3)` reads them). Each must be a listening TCP socket; a
/// file descriptor that is not is left alone and refused.
pub fn systemd_listeners() -> anyhow::Result<Vec<TcpListener>> {
    use std::os::fd::{BorrowedFd, FromRawFd, RawFd};
    const SD_LISTEN_FDS_START: RawFd = 3;
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (Some(pid), Some(fds)) = (var("LISTEN_PID"), var("LISTEN_FDS")) else {
        anyhow::bail!(
            "--web.systemd-socket: systemd passed no sockets (LISTEN_PID and LISTEN_FDS are not set); \
             start rpo-exporter from a .socket unit, or drop the flag and use --web.listen-address"
        );
    };
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        anyhow::bail!(
            "--web.systemd-socket: LISTEN_PID={pid} is not this process ({}); the sockets were meant for another one",
            std::process::id()
        );
    }
    let count: RawFd = match fds.trim().parse() {
        Ok(n) if n > 0 => n,
        _ => anyhow::bail!("--web.systemd-socket: LISTEN_FDS={fds:?} passes no sockets"),
    };
    let mut listeners = Vec::new();
    for fd in SD_LISTEN_FDS_START..SD_LISTEN_FDS_START + count {
        // SAFETY: borrowed only for the checks below; ownership is taken only once
        // they show a listening TCP socket, which systemd handed to this process.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let check = socket2::SockRef::from(&borrowed);
        let tcp = check.r#type().is_ok_and(|t| t == socket2::Type::STREAM)
            && check.is_listener().unwrap_or(false)
            && check.local_addr().is_ok_and(|a| a.as_socket().is_some());
        if !tcp {
            anyhow::bail!("--web.systemd-socket: file descriptor {fd} is not a listening TCP socket");
        }
        // SAFETY: as above; nothing else in the process uses these descriptors.
        let socket = unsafe { socket2::Socket::from_raw_fd(fd) };
        socket.set_cloexec(true)?;
        socket.set_nonblocking(true)?;
        listeners.push(TcpListener::from_std(socket.into())?);
    }
    Ok(listeners)
}

/// Serves until `shutdown` is cancelled, then finishes in-flight requests. Without
/// a web config: plain HTTP through `axum::serve`; with one: TLS and/or basic auth.
pub async fn serve(
    listeners: Vec<TcpListener>,
    exposition: Exposition,
    telemetry_path: &str,
    reload: mpsc::Sender<ReloadRequest>,
    lifecycle: bool,
    web: Option<WebConfigWatch>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    check_telemetry_path(telemetry_path).map_err(anyhow::Error::msg)?;
    let state = AppState {
        exposition: Arc::new(exposition),
        renders: Arc::default(),
        telemetry_path: telemetry_path.into(),
        reload,
        lifecycle,
        reload_limit: Arc::default(),
    };
    let app = router(state);
    match web {
        None => accept_loop(listeners, app, None, shutdown).await,
        Some(web) => serve_with_web_config(listeners, app, Arc::new(web), shutdown).await,
    }
}

/// Serves `render`'s text (the Prometheus text format 0.0.4) on `/metrics` and
/// nothing else, until `shutdown` is cancelled: the small listener of a process
/// that is no exporter, `rpo-exporter drill`.
pub async fn serve_metrics(
    listener: TcpListener,
    render: Arc<dyn Fn() -> String + Send + Sync>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let render = render.clone();
            async move {
                ([(header::CONTENT_TYPE, exposition::Format::Text.content_type())], render()).into_response()
            }
        }),
    );
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await?;
    Ok(())
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

/// `GET /metrics`: the format the Accept header asks for (see
/// [`exposition::Format::negotiate`]), gzipped when Accept-Encoding allows it.
/// Scrapes that arrive while a render of the same format and encoding runs get
/// its bytes ([`SharedRenders`]).
async fn scrape(AxumState(state): AxumState<AppState>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = exposition::Format::negotiate(accept);
    let gzipped = accepts_gzip(&headers);
    let exposition = &state.exposition;
    let rendered = state.renders.flight(format, gzipped).get(|| render(exposition, format, gzipped)).await;
    let body = match rendered {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "Encoding metrics failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "encoding metrics failed\n").into_response();
        }
    };
    let content_type = (header::CONTENT_TYPE, format.content_type());
    let vary = (header::VARY, "Accept, Accept-Encoding");
    match body {
        Rendered::Plain(body) => ([content_type, vary], body).into_response(),
        Rendered::Gzip(gz) => ([content_type, vary, (header::CONTENT_ENCODING, "gzip")], gz).into_response(),
    }
}

/// A scrape's body: the exposition as it is, or gzipped.
#[derive(Debug, Clone)]
enum Rendered {
    Plain(Bytes),
    Gzip(Bytes),
}

/// Renders the exposition in `format`, gzipped when `gzipped` (as it is when
/// compressing fails: the scrape is still answered). The time each step took
/// goes to the debug log.
fn render(
    exposition: &Exposition,
    format: exposition::Format,
    gzipped: bool,
) -> Result<Rendered, std::fmt::Error> {
    let start = std::time::Instant::now();
    let body = exposition.render_as(format)?;
    let rendered = start.elapsed();
    let bytes = body.len();
    let out = if gzipped {
        match gzip(body.as_bytes()) {
            Ok(gz) => Rendered::Gzip(gz.into()),
            Err(e) => {
                tracing::error!(error = %e, "Compressing metrics failed");
                Rendered::Plain(body.into())
            }
        }
    } else {
        Rendered::Plain(body.into())
    };
    tracing::debug!(
        ?format,
        bytes,
        gzip = gzipped,
        render_ms = rendered.as_secs_f64() * 1e3,
        total_ms = start.elapsed().as_secs_f64() * 1e3,
        "Scrape rendered"
    );
    Ok(out)
}

/// The single flights of the scrape: one per format and whether gzipped.
#[derive(Default)]
struct SharedRenders {
    flights: [SingleFlight<Rendered>; 4],
}

impl SharedRenders {
    fn flight(&self, format: exposition::Format, gzipped: bool) -> &SingleFlight<Rendered> {
        let format = match format {
            exposition::Format::Text => 0,
            exposition::Format::OpenMetrics => 1,
        };
        &self.flights[format * 2 + usize::from(gzipped)]
    }
}

/// Concurrent callers of [`SingleFlight::get`] share one result: a caller waits
/// for the one running and takes its result when it finished after the caller
/// arrived (so it shows the state at most one render older than the caller's own
/// render would), else makes its own. The result is kept only while callers
/// wait for it, so an idle exporter holds no copy of its last scrape.
struct SingleFlight<T> {
    /// Arrivals and finished renders, in order: each takes the next number.
    clock: AtomicU64,
    /// Callers arrived and not yet served.
    waiting: AtomicUsize,
    /// The last result and the number its render took when it finished.
    last: tokio::sync::Mutex<Option<(u64, T)>>,
}

impl<T> Default for SingleFlight<T> {
    fn default() -> Self {
        SingleFlight { clock: AtomicU64::new(0), waiting: AtomicUsize::new(0), last: Default::default() }
    }
}

impl<T: Clone> SingleFlight<T> {
    /// The result of a `render` that finished after this call began: one
    /// already running (another caller's), or this caller's own. `render` runs
    /// while the others wait, without awaiting anything.
    async fn get<E>(&self, render: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        /// Counts a caller out when it is served or gives up (its client left).
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let arrived = self.clock.fetch_add(1, Ordering::SeqCst);
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let waiting = Waiting(&self.waiting);
        let mut last = self.last.lock().await;
        let result = match &*last {
            Some((finished, shared)) if *finished > arrived => Ok(shared.clone()),
            _ => render().inspect(|fresh| {
                *last = Some((self.clock.fetch_add(1, Ordering::SeqCst), fresh.clone()));
            }),
        };
        drop(waiting);
        // Nobody else waits: let the bytes go. One who arrives now renders anew.
        if self.waiting.load(Ordering::SeqCst) == 0 {
            *last = None;
        }
        result
    }
}

/// Whether Accept-Encoding allows gzip: `gzip` (or `x-gzip`) with a q above 0,
/// or else `*` with a q above 0.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let (mut gzip, mut any) = (None, None);
    for value in headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()) {
        for coding in value.split(',') {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, v)| v.trim().parse().unwrap_or(0.0));
            if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
                gzip = Some(q > 0.0);
            } else if name == "*" {
                any = Some(q > 0.0);
            }
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// gzip at the fastest level: most of the size gain on repetitive metric text
/// for a fraction of the default level's CPU time.
fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut encoder =
        flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 8), flate2::Compression::fast());
    encoder.write_all(body)?;
    encoder.finish()
}

/// `POST /-/reload`: 200 once the new config runs, 500 with the problem (file,
/// field path) when it was refused and the old one keeps running. 403 without
/// `--web.enable-lifecycle` (as Prometheus answers), 429 beyond the rate limit.
/// With a web config, the authentication layer has already let the caller in.
async fn reload_config(AxumState(state): AxumState<AppState>) -> Response {
    if !state.lifecycle {
        return (
            StatusCode::FORBIDDEN,
            "Lifecycle API is not enabled. Start rpo-exporter with --web.enable-lifecycle to reload \
             over HTTP, or send it SIGHUP.\n",
        )
            .into_response();
    }
    if let Err(wait) = state.reload_limit.take() {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        tracing::warn!(retry_after_seconds = secs, "Reload request refused: too many reloads");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, secs.to_string())],
            format!(
                "Too many reload requests: at most {RELOAD_BURST} at once, then one per second. \
                 Retry in {secs}s.\n"
            ),
        )
            .into_response();
    }
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

/// Reloads a burst may ask for before the one-per-second pace applies.
const RELOAD_BURST: f64 = 3.0;

/// A token bucket for `/-/reload`: [`RELOAD_BURST`] tokens, one back per second.
/// A reload re-reads and re-validates the config and may restart workers, so a
/// client looping on it must not keep the exporter busy doing only that.
struct ReloadLimit(Mutex<(f64, std::time::Instant)>);

impl Default for ReloadLimit {
    fn default() -> ReloadLimit {
        ReloadLimit(Mutex::new((RELOAD_BURST, std::time::Instant::now())))
    }
}

impl ReloadLimit {
    /// Takes a token, or says how long until one is back.
    fn take(&self) -> Result<(), Duration> {
        let mut bucket = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        let tokens = (bucket.0 + now.duration_since(bucket.1).as_secs_f64()).min(RELOAD_BURST);
        *bucket = (tokens, now);
        if tokens >= 1.0 {
            bucket.0 -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(1.0 - tokens))
        }
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
/// Cached bcrypt outcomes of each kind (right, wrong); beyond it the least
/// recently used one goes.
const AUTH_CACHE_ENTRIES: usize = 1024;
/// Requests that may wait for bcrypt at once (the one being checked included).
/// At cost 10 (about 50 ms) the last in line waits about 200 ms.
const BCRYPT_QUEUE: usize = 4;
/// What a plain-HTTP client reads from a TLS port, as Go's servers answer it.
const PLAIN_HTTP_ON_TLS_PORT: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
Connection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// The web config file and the last good config read from it.
pub struct WebConfigWatch {
    path: PathBuf,
    inner: Mutex<Watched>,
    /// Told the outcome of every load (`rpo_exporter_web_config_last_reload_*`).
    report: Option<Box<dyn Fn(bool) + Send + Sync>>,
}

struct Watched {
    config: Arc<WebConfig>,
    /// The files whose change means the web config must be read again: the good
    /// config's, and after a failed load also every file the failed one names
    /// (a certificate that does not exist yet is retried when it appears).
    watch: Vec<PathBuf>,
    /// Stamps of `watch` when last looked at (after a failed reload too, so a
    /// broken file is reported once, not on every connection).
    seen: Vec<Option<FileStamp>>,
}

/// What tells a changed file from an unchanged one without reading it: an edit in
/// place changes mtime/ctime, an atomic rename (Kubernetes Secret volumes, cert
/// managers) changes the inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// Each file's stamp (through symlinks), `None` for one that cannot be read.
/// Also what the exporter watches `--config.file` with.
pub(crate) fn stamps(files: &[PathBuf]) -> Vec<Option<FileStamp>> {
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
    /// Loads the web config; an error here stops the exporter before it serves
    /// (as the exporter-toolkit does): without its certificates or users it has
    /// nothing safe to serve with.
    pub fn load(path: &Path) -> Result<WebConfigWatch, crate::config::ConfigError> {
        let config = WebConfig::load(path)?;
        let watch = config.files.clone();
        let seen = stamps(&watch);
        Ok(WebConfigWatch {
            path: path.to_owned(),
            inner: Mutex::new(Watched { config: Arc::new(config), watch, seen }),
            report: None,
        })
    }

    /// Reports every load's outcome to `report`, starting with the one at start.
    pub fn report_to(mut self, report: impl Fn(bool) + Send + Sync + 'static) -> WebConfigWatch {
        report(true);
        self.report = Some(Box::new(report));
        self
    }

    /// The web config to use now, read again first if any of its files changed.
    pub fn current(&self) -> Arc<WebConfig> {
        let mut w = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let now = stamps(&w.watch);
        if now == w.seen {
            return w.config.clone();
        }
        w.seen = now;
        let ok = match WebConfig::load(&self.path) {
            // Turning TLS off by editing a file would silently downgrade every
            // scrape to plaintext; turning it on would break every scraper at once.
            Ok(new) if new.tls.is_some() != w.config.tls.is_some() => {
                tracing::error!(file = %self.path.display(),
                    "Web config not reloaded: switching TLS on or off needs a restart; the previous web config stays in use");
                false
            }
            Ok(new) => {
                w.watch = new.files.clone();
                w.seen = stamps(&w.watch);
                tracing::info!(file = %self.path.display(), tls = new.tls.is_some(),
                    client_auth = new.client_auth.as_str(), users = new.users.len(), "Web config reloaded");
                w.config = Arc::new(new);
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "Web config reload failed; the previous web config stays in use");
                false
            }
        };
        if !ok {
            // Watch what the refused file names too: a certificate or CA that
            // appears later (a cert manager writing it after the config) is then
            // picked up when it does.
            let mut watch = w.config.files.clone();
            for f in crate::webconfig::named_files(&self.path) {
                if !watch.contains(&f) {
                    watch.push(f);
                }
            }
            w.seen = stamps(&watch);
            w.watch = watch;
        }
        if let Some(report) = &self.report {
            report(ok);
        }
        w.config.clone()
    }
}

/// Successful and failed bcrypt outcomes, kept apart: a flood of wrong
/// passwords can only evict other wrong passwords, never the credentials
/// Prometheus sends every scrape. Each side evicts its least recently used
/// entry when full.
#[derive(Default)]
struct AuthCache {
    good: Lru,
    bad: Lru,
}

/// At most [`AUTH_CACHE_ENTRIES`] keys, evicting the least recently used one.
#[derive(Default)]
struct Lru {
    used: HashMap<[u8; 32], u64>,
    clock: u64,
}

impl Lru {
    fn touch(&mut self, key: &[u8; 32]) -> bool {
        self.clock += 1;
        match self.used.get_mut(key) {
            Some(at) => {
                *at = self.clock;
                true
            }
            None => false,
        }
    }

    fn insert(&mut self, key: [u8; 32]) {
        if self.used.len() >= AUTH_CACHE_ENTRIES && !self.used.contains_key(&key) {
            // A scan of 1,024 entries costs microseconds; it runs only after a
            // bcrypt, which costs milliseconds.
            if let Some(oldest) = self.used.iter().min_by_key(|(_, at)| **at).map(|(k, _)| *k) {
                self.used.remove(&oldest);
            }
        }
        self.clock += 1;
        self.used.insert(key, self.clock);
    }
}

impl AuthCache {
    fn get(&mut self, key: &[u8; 32]) -> Option<bool> {
        if self.good.touch(key) {
            Some(true)
        } else if self.bad.touch(key) {
            Some(false)
        } else {
            None
        }
    }

    fn insert(&mut self, key: [u8; 32], ok: bool) {
        if ok {
            self.good.insert(key);
        } else {
            self.bad.insert(key);
        }
    }
}

/// What basic authentication decided about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Allowed,
    Denied,
    /// Not checked: too many checks already wait for bcrypt.
    Busy,
}

/// Basic-auth checking with bcrypt, shared by every connection.
#[derive(Clone)]
struct Auth {
    web: Arc<WebConfigWatch>,
    /// SHA-256(user, hash, password) → outcome. bcrypt costs tens of
    /// milliseconds by design; Prometheus sends the same credentials every scrape.
    cache: Arc<Mutex<AuthCache>>,
    /// One bcrypt at a time, so a flood of wrong passwords takes one core at most.
    bcrypt: Arc<Semaphore>,
    /// Places in line for bcrypt (the running one included); a request that
    /// finds none is answered 429 at once instead of waiting behind a flood.
    queue: Arc<Semaphore>,
}

impl Auth {
    fn new(web: Arc<WebConfigWatch>) -> Auth {
        Auth {
            web,
            cache: Arc::default(),
            bcrypt: Arc::new(Semaphore::new(1)),
            queue: Arc::new(Semaphore::new(BCRYPT_QUEUE)),
        }
    }

    async fn verify(&self, config: &Arc<WebConfig>, user: &str, password: &str) -> Verdict {
        let hash = config.users.get(user).cloned();
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for part in [user, hash.as_deref().unwrap_or(""), password] {
            ctx.update(&(part.len() as u64).to_le_bytes());
            ctx.update(part.as_bytes());
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(ctx.finish().as_ref());
        let verdict = |ok| if ok { Verdict::Allowed } else { Verdict::Denied };
        if let Some(ok) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return verdict(ok);
        }
        let Ok(_place) = self.queue.clone().try_acquire_owned() else { return Verdict::Busy };
        let Ok(_permit) = self.bcrypt.acquire().await else { return Verdict::Denied };
        let password = password.to_owned();
        let config = config.clone();
        let ok = tokio::task::spawn_blocking(move || config.check_password(hash.as_deref(), &password))
            .await
            .unwrap_or(false);
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(key, ok);
        verdict(ok)
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
    let verdict = if config.users.is_empty() {
        Verdict::Allowed
    } else {
        match basic_credentials(request.headers()) {
            Some((user, password)) => {
                let verdict = auth.verify(&config, &user, &password).await;
                if verdict != Verdict::Allowed {
                    tracing::debug!(user = %user, path = %request.uri().path(), ?verdict, "Basic authentication failed");
                }
                verdict
            }
            None => Verdict::Denied,
        }
    };
    let mut response = match verdict {
        Verdict::Allowed => next.run(request).await,
        Verdict::Denied => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"rpo-exporter\", charset=\"UTF-8\"")],
            "Unauthorized\n",
        )
            .into_response(),
        Verdict::Busy => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            "Too many authentication attempts are being checked; retry in a second\n",
        )
            .into_response(),
    };
    for (name, value) in &config.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value))
        {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// Serves with a web config: logs what it asks for, puts authentication in front
/// of every route, then runs the one accept loop.
async fn serve_with_web_config(
    listeners: Vec<TcpListener>,
    app: Router,
    web: Arc<WebConfigWatch>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let config = web.current();
    tracing::info!(file = %web.path.display(), tls = config.tls.is_some(), client_auth = config.client_auth.as_str(),
        users = config.users.len(), http2 = config.http2, "Serving with the web config");
    let app = app.layer(axum::middleware::from_fn_with_state(Auth::new(web.clone()), authenticate));
    accept_loop(listeners, app, Some(web), shutdown).await
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

/// The next connection on any of `listeners`, looking at them from `*next` on
/// and moving `*next` past the one that had it, so a busy socket cannot starve
/// the others.
async fn accept_any(listeners: &[TcpListener], next: &mut usize) -> std::io::Result<(TcpStream, SocketAddr)> {
    std::future::poll_fn(|cx| {
        for i in 0..listeners.len() {
            let at = (*next + i) % listeners.len();
            if let std::task::Poll::Ready(accepted) = listeners[at].poll_accept(cx) {
                *next = at + 1;
                return std::task::Poll::Ready(accepted);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// The one accept loop, over every listening socket (each `--web.listen-address`
/// or systemd socket), with or without a web config: the connection limits for
/// every connection, shared by all sockets; per connection, the web config's TLS when it sets one (read
/// again when its files changed), else plain HTTP/1.1 (and HTTP/2 with prior
/// knowledge). On shutdown, in-flight requests finish.
async fn accept_loop(
    listeners: Vec<TcpListener>,
    app: Router,
    web: Option<Arc<WebConfigWatch>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let builder = connection_builder();
    let limit = ConnectionLimit::new(MAX_CONNECTIONS);
    let graceful = GracefulShutdown::new();
    let mut next = 0;
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = accept_any(&listeners, &mut next) => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "Accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let tls = web.as_ref().and_then(|w| w.current().tls.clone());
        let Some(slot) = limit.admit(&stream, peer, tls.is_none()) else { continue };
        let service = TowerToHyperService::new(app.clone());
        let watcher = graceful.watcher();
        let builder = builder.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let result = match tls {
                None => {
                    if !protocol_sniffed(&stream, peer).await {
                        return;
                    }
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
                Some(tls) => {
                    let Some(stream) = tls_accept(stream, tls, peer).await else { return };
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(e) = result {
                connection_error(peer, &*e);
            }
        });
    }
    drop(listeners);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("Open connections did not finish within {DRAIN_TIMEOUT:?}; closing them");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Callers that arrive while a render runs wait for it and get its result;
    /// one that arrives after it finished renders anew; nothing is kept once
    /// every caller is served.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_scrapes_share_one_render() {
        const CALLERS: usize = 8;
        let flight = Arc::new(SingleFlight::<u32>::default());
        let renders = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        let mut callers = Vec::new();
        for _ in 0..CALLERS {
            let (flight, renders, hold) = (flight.clone(), renders.clone(), hold.clone());
            callers.push(tokio::spawn(async move {
                flight
                    .get(|| {
                        // The first render holds its worker thread until every
                        // caller has arrived and waits.
                        let n = renders.fetch_add(1, Ordering::SeqCst) + 1;
                        hold.lock().unwrap().recv_timeout(Duration::from_secs(30)).expect("released");
                        Ok::<u32, ()>(n)
                    })
                    .await
            }));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while flight.waiting.load(Ordering::SeqCst) < CALLERS {
            assert!(std::time::Instant::now() < deadline, "the callers never all arrived");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        release.send(()).unwrap();
        for caller in callers {
            assert_eq!(caller.await.unwrap(), Ok(1), "every caller gets the one render");
        }
        assert_eq!(renders.load(Ordering::SeqCst), 1);
        assert!(flight.last.lock().await.is_none(), "nothing kept once all are served");

        // A caller arriving after that render finished gets a render of its own.
        let later = flight.get(|| Ok::<u32, ()>(renders.fetch_add(1, Ordering::SeqCst) + 1)).await;
        assert_eq!(later, Ok(2));
    }

    #[test]
    fn gzip_only_when_accept_encoding_allows_it() {
        for (values, want) in [
            (&[][..], false),
            (&["gzip"][..], true),
            (&["gzip, deflate, br"][..], true),
            (&["deflate", "GZIP;q=0.5"][..], true),
            (&["identity"][..], false),
            (&["gzip;q=0"][..], false),
            (&["*"][..], true),
            (&["*;q=0.1, gzip;q=0"][..], false),
            (&["br;q=1.0, *;q=0"][..], false),
        ] {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(header::ACCEPT_ENCODING, HeaderValue::from_static(v));
            }
            assert_eq!(accepts_gzip(&headers), want, "{values:?}");
        }
    }

    fn key(i: u32) -> [u8; 32] {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&i.to_le_bytes());
        k
    }

    #[test]
    fn the_auth_cache_evicts_one_least_recently_used_entry_at_a_time() {
        let mut cache = AuthCache::default();
        cache.insert(key(0), true);
        for i in 1..=AUTH_CACHE_ENTRIES as u32 {
            cache.insert(key(i), false);
        }
        // Wrong passwords fill their own side; the right one is untouched.
        assert_eq!(cache.get(&key(0)), Some(true));
        assert_eq!(cache.bad.used.len(), AUTH_CACHE_ENTRIES);
        // Full: one more evicts only the least recently used (key 2, since key 1
        // was just used), not everything.
        assert_eq!(cache.get(&key(1)), Some(false));
        cache.insert(key(5000), false);
        assert_eq!(cache.bad.used.len(), AUTH_CACHE_ENTRIES);
        assert_eq!(cache.get(&key(2)), None);
        assert_eq!(cache.get(&key(1)), Some(false));
        assert_eq!(cache.get(&key(3)), Some(false));
        assert_eq!(cache.get(&key(5000)), Some(false));
    }

    #[test]
    fn telemetry_paths() {
        for good in ["/metrics", "/a/b-c_d.e~f", "/metrics/"] {
            assert_eq!(check_telemetry_path(good), Ok(()), "{good}");
        }
        for bad in ["", "metrics", "/", "/-/reload", "/-/x", "//m", "/m/{x}", "/m/*x", "/m/:x", "/m x"] {
            assert!(check_telemetry_path(bad).is_err(), "{bad}");
        }
    }
}
