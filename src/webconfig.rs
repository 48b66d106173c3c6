//! The web config file (`--web.config.file`): TLS and basic auth for the HTTP
//! endpoints, in the Prometheus exporter-toolkit format so that one file works for
//! node_exporter, Prometheus and this exporter alike.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt          # relative paths are relative to this file
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert   # or VerifyClientCertIfGiven, NoClientCert
//!   client_ca_file: clients-ca.crt
//!   min_version: TLS12             # TLS12 | TLS13
//! http_server_config:
//!   http2: true
//!   headers: { Strict-Transport-Security: max-age=31536000 }
//! basic_auth_users:
//!   prometheus: $2y$10$…           # bcrypt hash
//! ```
//!
//! Parsing goes raw → validated as in [`crate::config`]: serde structs that reject
//! unknown fields, then [`WebConfig::load`] reads every file the config names
//! (certificate, key, client CA) and builds the rustls server config, so a file that
//! loads is a file that serves. Errors are [`ConfigError`]s naming the file, the
//! field and the problem. Settings the toolkit has and rustls cannot honour
//! (cipher suites, curves, TLS 1.0/1.1, unverified client certificates) are refused
//! with a reason rather than silently ignored: they are security settings.
//!
//! This module keeps no state; noticing a changed file and swapping the config is
//! the server's job (it lists [`WebConfig::files`] to watch).

use crate::config::ConfigError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Response headers the toolkit lets a web config set, with their allowed values
/// (empty: any value). Kept identical so that one file works everywhere.
const ALLOWED_HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    #[serde(default)]
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    http_server_config: Option<RawHttp>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
    #[serde(default)]
    rate_limit: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    #[serde(default)]
    cert_file: Option<String>,
    #[serde(default)]
    key_file: Option<String>,
    #[serde(default)]
    client_auth_type: Option<String>,
    #[serde(default)]
    client_ca_file: Option<String>,
    #[serde(default)]
    min_version: Option<String>,
    #[serde(default)]
    max_version: Option<String>,
    // Known to the toolkit; refused below with a reason.
    #[serde(default)]
    cert: Option<IgnoredAny>,
    #[serde(default)]
    key: Option<IgnoredAny>,
    #[serde(default)]
    client_ca: Option<IgnoredAny>,
    #[serde(default)]
    cipher_suites: Option<IgnoredAny>,
    #[serde(default)]
    curve_preferences: Option<IgnoredAny>,
    #[serde(default)]
    client_allowed_sans: Option<IgnoredAny>,
    /// A no-op in Go since 1.17 and meaningless with rustls: accepted and ignored.
    #[serde(default)]
    #[allow(dead_code)]
    prefer_server_cipher_suites: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default)]
    http2: Option<bool>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
}

/// A validated web config, ready to serve with.
#[derive(Clone)]
pub struct WebConfig {
    /// The rustls server config; `None` serves plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// What the TLS config asks of clients, for logs.
    pub client_auth: ClientAuth,
    /// User name → bcrypt hash. Empty: no authentication.
    pub users: BTreeMap<String, String>,
    /// Extra response headers (name, value), from the allowed set.
    pub headers: Vec<(String, String)>,
    /// Whether HTTP/2 is offered (ALPN `h2`) beside HTTP/1.1.
    pub http2: bool,
    /// Every file this config was built from (itself first): a change to any of
    /// them means the config must be read again.
    pub files: Vec<PathBuf>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Hashes are not secrets in the strict sense, but they need not travel either.
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("client_auth", &self.client_auth)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("headers", &self.headers)
            .field("http2", &self.http2)
            .field("files", &self.files)
            .finish()
    }
}

/// The toolkit's `client_auth_type` values that rustls can honour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    NoClientCert,
    /// A client certificate is optional, but verified against `client_ca_file` when sent.
    VerifyClientCertIfGiven,
    /// Every client must present a certificate signed by `client_ca_file`.
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::NoClientCert => "NoClientCert",
            ClientAuth::VerifyClientCertIfGiven => "VerifyClientCertIfGiven",
            ClientAuth::RequireAndVerifyClientCert => "RequireAndVerifyClientCert",
        }
    }
}

impl WebConfig {
    /// Reads and validates a web config file and every file it names.
    pub fn load(file: &Path) -> Result<WebConfig, ConfigError> {
        WebConfig::parse(file, &crate::config::read_file(file)?)
    }

    /// Parses and validates web config text; relative paths are resolved against
    /// `file`'s directory, as the toolkit does.
    pub fn parse(file: &Path, text: &str) -> Result<WebConfig, ConfigError> {
        let raw = parse_raw(file, text)?;
        validate(file, raw)
    }

    /// Checks a password against a user's bcrypt hash (`None`: unknown user).
    /// CPU-heavy by design (tens of milliseconds at cost 10): callers run it off
    /// the async threads and cache results. An unknown user is checked against a
    /// decoy hash of the configured users' highest cost, so that the time taken
    /// does not tell which user names exist.
    pub fn check_password(&self, hash: Option<&str>, password: &str) -> bool {
        static DECOYS: std::sync::Mutex<BTreeMap<u32, String>> = std::sync::Mutex::new(BTreeMap::new());
        match hash {
            Some(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            None => {
                let cost = self
                    .users
                    .values()
                    .filter_map(|h| h.parse::<bcrypt::HashParts>().ok())
                    .map(|p| p.get_cost())
                    .max()
                    .unwrap_or(10);
                let decoy = DECOYS
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(cost)
                    .or_insert_with(|| bcrypt::hash("rpo-exporter decoy", cost).unwrap_or_default())
                    .clone();
                let _ = bcrypt::verify(password, &decoy);
                false
            }
        }
    }
}

/// Every file a web config file names (itself first), read as far as it can be:
/// what to watch after a load failed, so that a certificate or CA that appears
/// later gets the config read again.
pub fn named_files(file: &Path) -> Vec<PathBuf> {
    let mut files = vec![file.to_owned()];
    let Ok(text) = std::fs::read_to_string(file) else { return files };
    let Ok(raw) = parse_raw(file, &text) else { return files };
    let dir = file.parent().unwrap_or(Path::new("."));
    if let Some(t) = raw.tls_server_config {
        for p in [t.cert_file, t.key_file, t.client_ca_file].into_iter().flatten() {
            let p = p.trim();
            if !p.is_empty() {
                files.push(if Path::new(p).is_absolute() { PathBuf::from(p) } else { dir.join(p) });
            }
        }
    }
    files
}

fn parse_raw(file: &Path, text: &str) -> Result<RawWebConfig, ConfigError> {
    // An empty file (or one holding only comments) is valid and changes nothing,
    // as with the toolkit.
    if text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        return Ok(RawWebConfig::default());
    }
    crate::config::parse_yaml(file, text)
}

fn validate(file: &Path, raw: RawWebConfig) -> Result<WebConfig, ConfigError> {
    let err =
        |path: &str, problem: String| ConfigError { file: file.to_owned(), path: path.to_owned(), problem };
    if raw.rate_limit.is_some() {
        return Err(err(
            "rate_limit",
            "is not supported by rpo-exporter; rate-limit in front of it if you need to".into(),
        ));
    }
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut files = vec![file.to_owned()];

    let mut users = BTreeMap::new();
    for (user, hash) in raw.basic_auth_users.unwrap_or_default() {
        let path = format!("basic_auth_users.{user}");
        if user.is_empty() || user.contains(':') {
            return Err(err(&path, "a user name must be non-empty and must not contain ':'".into()));
        }
        let hash = hash.trim().to_owned();
        if hash.parse::<bcrypt::HashParts>().is_err() {
            return Err(err(
                &path,
                "is not a bcrypt hash (expected $2a$, $2b$ or $2y$ followed by the cost, e.g. \
                 `htpasswd -nbBC 10 '' PASSWORD | tr -d ':'`)"
                    .into(),
            ));
        }
        users.insert(user, hash);
    }

    let http = raw.http_server_config.unwrap_or_default();
    let http2 = http.http2.unwrap_or(true);
    let mut headers = Vec::new();
    for (name, value) in http.headers.unwrap_or_default() {
        let path = format!("http_server_config.headers.{name}");
        let Some((canonical, allowed)) = ALLOWED_HEADERS.iter().find(|(h, _)| h.eq_ignore_ascii_case(&name))
        else {
            let names: Vec<&str> = ALLOWED_HEADERS.iter().map(|(h, _)| *h).collect();
            return Err(err(
                &path,
                format!("this header cannot be configured; allowed: {}", names.join(", ")),
            ));
        };
        if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
            return Err(err(&path, format!("{value:?} is not allowed; use one of {allowed:?}")));
        }
        if value.is_empty() || value.chars().any(|c| c.is_control()) {
            return Err(err(&path, "the value must be non-empty printable text".into()));
        }
        headers.push(((*canonical).to_owned(), value));
    }

    let (tls, client_auth) = match raw.tls_server_config {
        None => (None, ClientAuth::NoClientCert),
        Some(t) => {
            let (config, auth) = validate_tls(file, dir, t, &mut files, http2)?;
            (config, auth)
        }
    };
    Ok(WebConfig { tls, client_auth, users, headers, http2, files })
}

fn validate_tls(
    file: &Path,
    dir: &Path,
    t: RawTls,
    files: &mut Vec<PathBuf>,
    http2: bool,
) -> Result<(Option<Arc<rustls::ServerConfig>>, ClientAuth), ConfigError> {
    let err = |field: &str, problem: String| ConfigError {
        file: file.to_owned(),
        path: format!("tls_server_config.{field}"),
        problem,
    };
    for (field, set, why) in [
        ("cert", t.cert.is_some(), "inline certificates are not supported; use cert_file"),
        ("key", t.key.is_some(), "inline keys are not supported; use key_file"),
        ("client_ca", t.client_ca.is_some(), "inline CAs are not supported; use client_ca_file"),
        (
            "cipher_suites",
            t.cipher_suites.is_some(),
            "is not supported: rustls offers only its own modern suites; remove the field",
        ),
        (
            "curve_preferences",
            t.curve_preferences.is_some(),
            "is not supported: rustls chooses among its own safe groups; remove the field",
        ),
        (
            "client_allowed_sans",
            t.client_allowed_sans.is_some(),
            "is not supported yet; issue client certificates from a dedicated client_ca_file instead",
        ),
    ] {
        if set {
            return Err(err(field, why.to_owned()));
        }
    }
    let nothing_set = t.cert_file.is_none()
        && t.key_file.is_none()
        && t.client_auth_type.is_none()
        && t.client_ca_file.is_none()
        && t.min_version.is_none()
        && t.max_version.is_none();
    if nothing_set {
        // An empty `tls_server_config:` means plain HTTP, as with the toolkit.
        return Ok((None, ClientAuth::NoClientCert));
    }
    let resolve = |p: &str| if Path::new(p).is_absolute() { PathBuf::from(p) } else { dir.join(p) };
    let cert_file = match t.cert_file.as_deref().map(str::trim) {
        Some(p) if !p.is_empty() => resolve(p),
        _ => return Err(err("cert_file", "is required when TLS is configured".into())),
    };
    let key_file = match t.key_file.as_deref().map(str::trim) {
        Some(p) if !p.is_empty() => resolve(p),
        _ => return Err(err("key_file", "is required when TLS is configured".into())),
    };
    let read = |field: &str, path: &Path| {
        std::fs::read(path).map_err(|e| err(field, format!("cannot read {}: {e}", path.display())))
    };
    let cert_pem = read("cert_file", &cert_file)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| err("cert_file", format!("{}: not a PEM certificate: {e}", cert_file.display())))?;
    if chain.is_empty() {
        return Err(err("cert_file", format!("{}: no certificate found", cert_file.display())));
    }
    let key_pem = read("key_file", &key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| err("key_file", format!("{}: no usable PEM private key: {e}", key_file.display())))?;
    files.push(cert_file.clone());
    files.push(key_file.clone());

    let client_auth = match t.client_auth_type.as_deref().map(str::trim) {
        None | Some("") | Some("NoClientCert") => ClientAuth::NoClientCert,
        Some("VerifyClientCertIfGiven") => ClientAuth::VerifyClientCertIfGiven,
        Some("RequireAndVerifyClientCert") => ClientAuth::RequireAndVerifyClientCert,
        Some(other @ ("RequestClientCert" | "RequireAnyClientCert" | "RequireClientCert")) => {
            return Err(err(
                "client_auth_type",
                format!(
                    "{other} (a client certificate that is never verified) is not supported; \
                     use VerifyClientCertIfGiven or RequireAndVerifyClientCert with a client_ca_file"
                ),
            ))
        }
        Some(other) => {
            return Err(err(
                "client_auth_type",
                format!(
                    "unknown value {other:?}; use NoClientCert, VerifyClientCertIfGiven or \
                     RequireAndVerifyClientCert"
                ),
            ))
        }
    };
    let client_ca = match t.client_ca_file.as_deref().map(str::trim) {
        Some(p) if !p.is_empty() => Some(resolve(p)),
        _ => None,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = match (client_auth, &client_ca) {
        (ClientAuth::NoClientCert, Some(_)) => {
            return Err(err(
                "client_ca_file",
                "is set but client_auth_type is NoClientCert: set client_auth_type to \
                 RequireAndVerifyClientCert or VerifyClientCertIfGiven, or remove client_ca_file"
                    .into(),
            ))
        }
        (ClientAuth::NoClientCert, None) => None,
        (_, None) => {
            return Err(err(
                "client_ca_file",
                format!("is required with client_auth_type {}", client_auth.as_str()),
            ))
        }
        (_, Some(ca_file)) => {
            let pem = read("client_ca_file", ca_file)?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| {
                    err("client_ca_file", format!("{}: not a PEM certificate: {e}", ca_file.display()))
                })?;
                roots.add(cert).map_err(|e| {
                    err("client_ca_file", format!("{}: unusable CA certificate: {e}", ca_file.display()))
                })?;
            }
            if roots.is_empty() {
                return Err(err("client_ca_file", format!("{}: no certificate found", ca_file.display())));
            }
            files.push(ca_file.clone());
            let builder = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            );
            let builder = if client_auth == ClientAuth::VerifyClientCertIfGiven {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            Some(builder.build().map_err(|e| err("client_ca_file", format!("{e}")))?)
        }
    };

    let version = |field: &str, value: Option<&str>, default: u8| -> Result<u8, ConfigError> {
        match value.map(str::trim) {
            None | Some("") => Ok(default),
            Some("TLS12") => Ok(12),
            Some("TLS13") => Ok(13),
            Some(v @ ("TLS10" | "TLS11")) => Err(err(
                field,
                format!("{v} is not supported (rustls speaks TLS 1.2 and 1.3 only); use TLS12 or TLS13"),
            )),
            Some(v) => Err(err(field, format!("unknown TLS version {v:?}; use TLS12 or TLS13"))),
        }
    };
    let min = version("min_version", t.min_version.as_deref(), 12)?;
    let max = version("max_version", t.max_version.as_deref(), 13)?;
    if min > max {
        return Err(err("max_version", "must not be lower than min_version".into()));
    }
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| (min..=max).contains(v))
            .map(|(_, p)| p)
            .collect();
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| err("min_version", format!("{e}")))?;
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| err("key_file", format!("the certificate and key cannot be used together: {e}")))?;
    config.alpn_protocols =
        if http2 { vec![b"h2".to_vec(), b"http/1.1".to_vec()] } else { vec![b"http/1.1".to_vec()] };
    Ok((Some(Arc::new(config)), client_auth))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate and key in `dir`, as `server.crt`/`server.key`.
    fn cert_files(dir: &Path) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert =
            rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap().self_signed(&key).unwrap();
        std::fs::write(dir.join("server.crt"), cert.pem()).unwrap();
        std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
        std::fs::write(dir.join("ca.crt"), cert.pem()).unwrap();
    }

    /// Parses `text` as web.yml in a directory with server.crt, server.key and ca.crt.
    fn check(text: &str) -> Result<WebConfig, String> {
        let dir = tempfile::tempdir().unwrap();
        cert_files(dir.path());
        let file = dir.path().join("web.yml");
        WebConfig::parse(&file, text)
            .map_err(|e| e.to_string().replace(&dir.path().display().to_string(), "DIR"))
    }

    /// A well-formed bcrypt hash (of "s3cret", cost 4).
    fn hash() -> String {
        bcrypt::hash("s3cret", 4).unwrap()
    }

    #[test]
    fn valid_configs() {
        let c = check("").unwrap();
        assert!(c.tls.is_none() && c.users.is_empty() && c.http2);
        let c = check("# only a comment\n").unwrap();
        assert!(c.tls.is_none());
        let c = check("tls_server_config: {}\n").unwrap();
        assert!(c.tls.is_none());
        let c = check(&format!("basic_auth_users:\n  prometheus: {}\n", hash())).unwrap();
        assert!(c.tls.is_none());
        assert_eq!(c.users.len(), 1);
        let c = check("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n").unwrap();
        assert!(c.tls.is_some());
        assert_eq!(c.client_auth, ClientAuth::NoClientCert);
        assert_eq!(c.files.len(), 3, "{:?}", c.files);
        let c = check(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: \
             RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS13\n  \
             prefer_server_cipher_suites: true\nhttp_server_config:\n  http2: false\n  headers:\n    \
             X-Frame-Options: deny\n",
        )
        .unwrap();
        assert_eq!(c.client_auth, ClientAuth::RequireAndVerifyClientCert);
        assert_eq!(c.files.len(), 4);
        assert_eq!(c.headers, vec![("X-Frame-Options".to_owned(), "deny".to_owned())]);
        assert_eq!(c.tls.unwrap().alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn each_mistake_has_its_message() {
        let tls = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
        let cases: &[(&str, &str)] = &[
            ("tls_server_config:\n  certfile: x\n", "DIR/web.yml: tls_server_config.certfile: unknown field `certfile`, expected one of cert_file, key_file"),
            ("basic_auth_users:\n  admin: secret\n", "DIR/web.yml: basic_auth_users.admin: is not a bcrypt hash"),
            ("tls_server_config:\n  cert_file: server.crt\n", "DIR/web.yml: tls_server_config.key_file: is required when TLS is configured"),
            ("tls_server_config:\n  cert_file: nope.crt\n  key_file: server.key\n", "DIR/web.yml: tls_server_config.cert_file: cannot read DIR/nope.crt"),
            ("tls_server_config:\n  cert_file: server.key\n  key_file: server.key\n", "DIR/web.yml: tls_server_config.cert_file: DIR/server.key: no certificate found"),
            ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.crt\n", "DIR/web.yml: tls_server_config.key_file: DIR/server.crt: no usable PEM private key"),
            (&format!("{tls}  client_auth_type: RequireAndVerifyClientCert\n"), "DIR/web.yml: tls_server_config.client_ca_file: is required with client_auth_type RequireAndVerifyClientCert"),
            (&format!("{tls}  client_ca_file: ca.crt\n"), "DIR/web.yml: tls_server_config.client_ca_file: is set but client_auth_type is NoClientCert"),
            (&format!("{tls}  client_auth_type: RequireAnyClientCert\n"), "DIR/web.yml: tls_server_config.client_auth_type: RequireAnyClientCert (a client certificate that is never verified) is not supported"),
            (&format!("{tls}  client_auth_type: Sometimes\n"), "DIR/web.yml: tls_server_config.client_auth_type: unknown value \"Sometimes\""),
            (&format!("{tls}  min_version: TLS10\n"), "DIR/web.yml: tls_server_config.min_version: TLS10 is not supported"),
            (&format!("{tls}  min_version: TLS13\n  max_version: TLS12\n"), "DIR/web.yml: tls_server_config.max_version: must not be lower than min_version"),
            (&format!("{tls}  cipher_suites: [TLS_AES_128_GCM_SHA256]\n"), "DIR/web.yml: tls_server_config.cipher_suites: is not supported"),
            ("http_server_config:\n  headers:\n    Server: me\n", "DIR/web.yml: http_server_config.headers.Server: this header cannot be configured"),
            ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n", "DIR/web.yml: http_server_config.headers.X-Frame-Options: \"allow\" is not allowed"),
            ("rate_limit:\n  burst: 1\n", "DIR/web.yml: rate_limit: is not supported"),
        ];
        let mut wrong = Vec::new();
        for (text, want) in cases {
            let got = check(text).map(|_| "valid".to_owned()).unwrap_or_else(|e| e);
            if !got.starts_with(want) {
                wrong.push(format!("for\n{text}want: {want}\n got: {got}\n"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn passwords_check_against_bcrypt_hashes() {
        let c = check(&format!("basic_auth_users:\n  prometheus: {}\n", hash())).unwrap();
        let hash = c.users["prometheus"].clone();
        assert!(c.check_password(Some(&hash), "s3cret"));
        assert!(!c.check_password(Some(&hash), "wrong"));
        assert!(!c.check_password(None, "s3cret"));
    }
}
