//! The receiving end of the demo's Alertmanagers: an HTTP webhook on 127.0.0.1 that
//! prints one line per notification (to stdout, below the banner) and appends the line
//! and the notification's JSON to a log file. Each receiver posts to `/NAME`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The largest notification accepted.
const MAX_BODY: usize = 16 << 20;

pub(crate) struct Webhook {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Webhook {
    /// Serves on a free 127.0.0.1 port until dropped, logging to `log`.
    pub(crate) async fn start(log: PathBuf) -> Result<Webhook> {
        let listener = TcpListener::bind("127.0.0.1:0").await.context("binding the webhook")?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let log = log.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), receive(stream, &log)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => eprintln!("rpo-lab: webhook: {e:#}"),
                        Err(_) => eprintln!("rpo-lab: webhook: a request took over 10 s"),
                    }
                });
            }
        });
        Ok(Webhook { addr, task })
    }

    /// The URL receiver `name` posts to.
    pub(crate) fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request, answers 200, prints and logs the notification.
async fn receive(mut stream: TcpStream, log: &Path) -> Result<()> {
    let (path, body) = read_request(&mut stream).await?;
    stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await?;
    let notification: Value = serde_json::from_slice(&body).context("the notification is not JSON")?;
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let line = summary(&path, &notification, secs);
    println!("{line}");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    writeln!(file, "{line}\n{notification}").with_context(|| format!("writing {}", log.display()))
}

/// The request's path and body (HTTP/1.1 with a Content-Length, as Alertmanager sends).
async fn read_request(stream: &mut TcpStream) -> Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 << 10 {
            bail!("request head over 64 KiB");
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed before the request head ended");
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
        })
        .context("a request without Content-Length")?;
    if length > MAX_BODY {
        bail!("a notification of {length} bytes");
    }
    let mut body = buf.split_off(head_end);
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed after {} of {length} bytes", body.len());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok((path, body))
}

/// One line for a notification posted to `path` at `unix_secs`: time (UTC), receiver,
/// status, the group's labels, the alerts (their node and region) and which Alertmanager
/// sent it.
fn summary(path: &str, n: &Value, unix_secs: u64) -> String {
    let str_of = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    let receiver =
        n["receiver"].as_str().map_or_else(|| path.trim_start_matches('/').to_owned(), str::to_owned);
    let group: Vec<String> = n["groupLabels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", str_of(v))).collect())
        .unwrap_or_default();
    let alerts = n["alerts"].as_array().cloned().unwrap_or_default();
    let items: Vec<String> = alerts
        .iter()
        .map(|a| {
            let l = &a["labels"];
            // The node it is about, and its region label: the region whose Prometheus
            // raised it, or (RPORegionalPrometheusDown) the silent region.
            let node = ["replica_node", "node", "instance"].iter().find_map(|k| l[*k].as_str());
            let mut item = node.unwrap_or_default().to_owned();
            if let Some(region) = l["region"].as_str() {
                item += &format!("{{region={region}}}");
            }
            if item.is_empty() {
                item = l["db_cluster"].as_str().unwrap_or("-").to_owned();
            }
            if a["status"] != n["status"] {
                item += &format!(" {}", str_of(&a["status"]));
            }
            item
        })
        .collect();
    let s = unix_secs % 86_400;
    format!(
        "rpo-lab: {:02}:{:02}:{:02} UTC notification to {receiver}: {} {} — {} alert{}: {} [sent by {}]",
        s / 3600,
        s / 60 % 60,
        s % 60,
        str_of(&n["status"]).to_uppercase(),
        group.join(" "),
        alerts.len(),
        if alerts.len() == 1 { "" } else { "s" },
        items.join(", "),
        str_of(&n["externalURL"]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_is_one_line() {
        let n = serde_json::json!({
            "receiver": "pager", "status": "firing", "externalURL": "http://host:9093",
            "groupLabels": {"alertname": "RPOBreached", "db_cluster": "demo"},
            "alerts": [
                {"status": "firing", "labels": {"alertname": "RPOBreached", "replica_node": "pg-euw1"}},
                {"status": "resolved", "labels": {"replica_node": "pg-apse1", "region": "ap-southeast-1"}},
            ],
        });
        assert_eq!(
            summary("/pager", &n, 86_400 + 3600 + 62),
            "rpo-lab: 01:01:02 UTC notification to pager: FIRING alertname=RPOBreached db_cluster=demo — \
             2 alerts: pg-euw1, pg-apse1{region=ap-southeast-1} resolved [sent by http://host:9093]"
        );
    }

    #[tokio::test]
    async fn it_receives_a_post() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("notifications.log");
        let hook = Webhook::start(log.clone()).await.unwrap();
        let body = r#"{"receiver":"ticket","status":"resolved","alerts":[]}"#;
        let resp = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(hook.url("ticket"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
        // The log is written after the answer.
        for _ in 0..100 {
            if std::fs::read_to_string(&log).is_ok_and(|t| t.contains("\"receiver\":\"ticket\"")) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains("notification to ticket: RESOLVED") && text.contains("\"receiver\":\"ticket\""),
            "{text}"
        );
    }
}
