//! Local targets for region health probes: an HTTP server, an HTTPS server with a
//! certificate from a CA made on the spot, and a server that accepts connections but
//! never answers. Each listens on a free 127.0.0.1 port and lives as long as the
//! test's tokio runtime. Test fixtures, not web servers: every response closes its
//! connection.

use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Answers one HTTP/1.1 request on `stream` with 200 for `/healthz` and 503 for any
/// other path, then closes.
pub async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut stream: S) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let ok = buf.starts_with(b"GET /healthz ");
    let status = if ok { "200 OK" } else { "503 Service Unavailable" };
    let _ = stream
        .write_all(
            format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").as_bytes(),
        )
        .await;
    let _ = stream.shutdown().await;
}

/// An HTTP server answering as [`answer`] does; returns its port.
pub async fn http_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(answer(s));
        }
    });
    port
}

/// An HTTPS server on 127.0.0.1 whose certificate, signed by a CA made for it,
/// expires in `days` days.
pub struct Https {
    pub port: u16,
    /// The CA's certificate (PEM), for a probe's `ca_file`.
    pub ca_pem: String,
    /// The leaf certificate's notAfter, Unix seconds.
    pub expiry: i64,
}

/// Starts an [`Https`] server answering as [`answer`] does.
pub async fn https_server(days: i64) -> Https {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let mut leaf_params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let expiry = time::OffsetDateTime::now_utc() + time::Duration::days(days);
    let expiry = expiry.replace_nanosecond(0).unwrap();
    leaf_params.not_after = expiry;
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)
            .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(s).await {
                    answer(tls).await;
                }
            });
        }
    });
    Https { port, ca_pem: ca.pem(), expiry: expiry.unix_timestamp() }
}

/// Accepts connections and holds them without ever answering; returns its port.
pub async fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    port
}
