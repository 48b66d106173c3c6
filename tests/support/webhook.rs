//! An Alertmanager webhook receiver run by a test on 127.0.0.1: it keeps every
//! notification it is sent, with when it arrived.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Notifications the webhook received, with when they arrived.
pub type Received = Arc<Mutex<Vec<(Instant, Value)>>>;

/// An Alertmanager webhook receiver on 127.0.0.1: keeps every notification it is sent.
pub struct Webhook {
    pub url: String,
    pub received: Received,
    server: tokio::task::JoinHandle<()>,
}

impl Webhook {
    pub async fn start() -> Webhook {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the webhook");
        let url = format!("http://{}/alerts", listener.local_addr().unwrap());
        let received = Received::default();
        let app = Router::new().route("/alerts", post(receive)).with_state(received.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("webhook server");
        });
        Webhook { url, received, server }
    }

    /// Waits until a notification carries an alert `alertname` with status `status`
    /// (firing or resolved); returns when it arrived and the alert.
    pub async fn wait_for(
        &self,
        alertname: &str,
        status: &str,
        timeout: Duration,
    ) -> Option<(Instant, Value)> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self.received.lock().unwrap().iter().find_map(|(at, n)| {
                n["alerts"]
                    .as_array()?
                    .iter()
                    .find(|a| a["labels"]["alertname"] == alertname && a["status"] == status)
                    .map(|a| (*at, a.clone()))
            });
            if found.is_some() || Instant::now() >= deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Alert names in every notification so far, with their status.
    pub fn seen(&self) -> Vec<String> {
        let received = self.received.lock().unwrap();
        received
            .iter()
            .flat_map(|(_, n)| n["alerts"].as_array().cloned().unwrap_or_default())
            .map(|a| {
                format!(
                    "{}={}",
                    a["labels"]["alertname"].as_str().unwrap_or("?"),
                    a["status"].as_str().unwrap_or("?")
                )
            })
            .collect()
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(State(received): State<Received>, body: String) -> StatusCode {
    match serde_json::from_str::<Value>(&body) {
        Ok(notification) => {
            received.lock().unwrap().push((Instant::now(), notification));
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}
