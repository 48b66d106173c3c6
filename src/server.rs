//! The HTTP side: `/metrics` (or the configured telemetry path), `/-/healthy`,
//! `/-/ready` and a landing page at `/`.
//!
//! The only module that knows HTTP. A scrape renders the latest measurements from
//! memory (see [`crate::metrics`]) and never waits on a database; the server keeps
//! no state of its own beyond the registry it encodes.

use crate::metrics;
use axum::extract::State as AxumState;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
struct AppState {
    registry: Arc<Registry>,
    telemetry_path: Arc<str>,
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

/// Serves until `shutdown` is cancelled, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    registry: Registry,
    telemetry_path: &str,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let state = AppState { registry: Arc::new(registry), telemetry_path: telemetry_path.into() };
    let app = Router::new()
        .route("/", get(landing))
        .route(telemetry_path, get(scrape))
        .route("/-/healthy", get(|| async { "Healthy\n" }))
        .route("/-/ready", get(|| async { "Ready\n" }))
        .with_state(state);
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await?;
    Ok(())
}

async fn scrape(AxumState(state): AxumState<AppState>) -> Response {
    match metrics::render(&state.registry) {
        Ok(body) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "Encoding metrics failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "encoding metrics failed\n").into_response()
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
