//! A database node's `tls:` block, validated: the mode, and the files it names
//! read and checked as PEM when the config is loaded.
//!
//! A CA, certificate or key file that cannot be read, holds no PEM of the right
//! kind, or does not fit (a key of another certificate) is a [`ConfigError`]
//! naming the field, the file and the problem: `check-config` and a reload refuse
//! it, instead of every connect failing later. The files' contents are kept, and
//! for PostgreSQL the rustls client configuration built from them, so connects do
//! no file I/O; a rotated certificate takes effect at the next reload (which sees
//! the new contents and restarts that node's session). Keeps no state.

use super::raw::RawTls;
use super::{ConfigError, Ctx, TlsMode};
use crate::engine::tls::{self, BuildError, Material};
use crate::engine::EngineKind;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// TLS to a database, with libpq's modes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub mode: TlsMode,
    /// Trust anchors (PEM); without it the system's (PostgreSQL) or Mozilla's
    /// (MySQL) roots are used.
    pub ca_file: Option<PathBuf>,
    /// A client certificate and its key (PEM), both or neither.
    pub client: Option<(PathBuf, PathBuf)>,
    /// What those files held when the config was loaded.
    pub loaded: Loaded,
}

/// A file's contents as read, PEM text.
pub type Pem = Arc<[u8]>;

/// The contents of a `tls:` block's files, checked at load. Two are equal when
/// the files held the same bytes, so a reload after a certificate rotation is a
/// change.
#[derive(Clone, Default)]
pub struct Loaded {
    /// `ca_file`, PEM.
    pub ca_pem: Option<Pem>,
    /// `cert_file` and `key_file`, PEM. The key is never printed.
    pub client_pem: Option<(Pem, Pem)>,
    /// PostgreSQL: the client configuration every connect of the node uses.
    pub rustls: Option<Arc<rustls::ClientConfig>>,
}

impl PartialEq for Loaded {
    // The rustls configuration is derived from the files and the mode.
    fn eq(&self, other: &Self) -> bool {
        self.ca_pem == other.ca_pem && self.client_pem == other.client_pem
    }
}

impl Eq for Loaded {}

impl fmt::Debug for Loaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loaded")
            .field("ca_pem_bytes", &self.ca_pem.as_ref().map(|b| b.len()))
            .field("client_cert_pem_bytes", &self.client_pem.as_ref().map(|(c, _)| c.len()))
            .field("client_key", &self.client_pem.as_ref().map(|_| "(redacted)"))
            .finish()
    }
}

/// Validates a node's `tls:` block (`path` is its field path, e.g.
/// `clusters[0].nodes[1].tls`).
pub(super) fn validate(
    ctx: &Ctx,
    path: &str,
    rt: RawTls,
    engine: EngineKind,
    dsn: &str,
    node_path: &str,
) -> Result<Tls, ConfigError> {
    let mode: TlsMode = rt.mode.parse().map_err(|e: String| ctx.err(format!("{path}.mode"), e))?;
    if mode == TlsMode::Prefer && engine == EngineKind::Mysql {
        return Err(ctx.err(
            format!("{path}.mode"),
            "prefer is not available for mysql: use disable, require, verify-ca or verify-full",
        ));
    }
    if engine.dsn_sets_tls(dsn) {
        return Err(ctx.err(format!("{node_path}.dsn"), "sets TLS options too; configure TLS in tls: only"));
    }
    let client = match (rt.cert_file, rt.key_file) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err(ctx.err(path, "set cert_file and key_file together")),
    };
    let field = |name: &str| format!("{path}.{name}");
    let mut loaded = Loaded::default();
    let mut roots = None;
    if let Some(ca) = &rt.ca_file {
        let bytes = read(ctx, &field("ca_file"), ca)?;
        let certs = certificates(ctx, &field("ca_file"), ca, &bytes)?;
        tls::check_roots(&certs).map_err(|e| ctx.err(field("ca_file"), format!("{}: {e}", ca.display())))?;
        roots = Some(certs);
        loaded.ca_pem = Some(bytes.into());
    }
    let mut identity = None;
    if let Some((cert, key)) = &client {
        let cert_bytes = read(ctx, &field("cert_file"), cert)?;
        let chain = certificates(ctx, &field("cert_file"), cert, &cert_bytes)?;
        let key_bytes = read(ctx, &field("key_file"), key)?;
        let der = private_key(ctx, &field("key_file"), key, &key_bytes)?;
        identity = Some((chain, der));
        loaded.client_pem = Some((cert_bytes.into(), key_bytes.into()));
    }
    let material = Material {
        roots: roots.as_deref(),
        identity: identity.as_ref().map(|(chain, key)| (chain.as_slice(), key)),
    };
    let problem = |e: BuildError| match e {
        BuildError::Roots(p) => match &rt.ca_file {
            Some(ca) => ctx.err(field("ca_file"), format!("{}: {p}", ca.display())),
            None => ctx.err(field("mode"), format!("{} needs trust anchors: {p}", mode.as_str())),
        },
        BuildError::Identity(p) => match &client {
            Some((cert, key)) => {
                ctx.err(field("key_file"), format!("{} (cert_file {}): {p}", key.display(), cert.display()))
            }
            None => ctx.err(path, p),
        },
        BuildError::Setup(p) => ctx.err(path, p),
    };
    match (engine, mode) {
        (_, TlsMode::Disable) => {}
        // Built now and shared by every connect of the node.
        (EngineKind::Postgres, _) => {
            loaded.rustls = Some(Arc::new(tls::client_config(mode, &material).map_err(problem)?));
        }
        // mysql_async builds its own from the PEM kept here; check what it will
        // be given (the roots above; the key against its certificate).
        (EngineKind::Mysql, _) => {
            let identity_only = Material { roots: None, identity: material.identity };
            tls::client_config(TlsMode::Require, &identity_only).map_err(problem)?;
        }
    }
    Ok(Tls { mode, ca_file: rt.ca_file, client, loaded })
}

fn read(ctx: &Ctx, field: &str, file: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(file).map_err(|e| ctx.err(field, format!("cannot read {}: {e}", file.display())))
}

/// What a PEM parse error means, in words; never the file's bytes.
fn pem_problem(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line".into(),
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed".into(),
        pem::Error::Base64Decode(_) => "a PEM section is not valid base64".into(),
        pem::Error::SectionTooLarge => "a PEM section is larger than 256 MB".into(),
        other => format!("not readable as PEM ({other})"),
    }
}

fn certificates(
    ctx: &Ctx,
    field: &str,
    file: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ctx.err(field, format!("{} is not valid PEM: {}", file.display(), pem_problem(&e))))?;
    if certs.is_empty() {
        return Err(ctx.err(
            field,
            format!("{} holds no certificate: expected PEM (-----BEGIN CERTIFICATE-----)", file.display()),
        ));
    }
    Ok(certs)
}

fn private_key(
    ctx: &Ctx,
    field: &str,
    file: &Path,
    bytes: &[u8],
) -> Result<PrivateKeyDer<'static>, ConfigError> {
    PrivateKeyDer::from_pem_slice(bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => ctx.err(
            field,
            format!(
                "{} holds no private key: expected PEM (-----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)",
                file.display()
            ),
        ),
        e => ctx.err(field, format!("{} is not valid PEM: {}", file.display(), pem_problem(&e))),
    })
}
