//! A database node's `tls:` block: the mode, and the files it names read and
//! checked as PEM when the config is loaded.
//!
//! A CA, certificate or key file that cannot be read, or holds no PEM of the right
//! kind, is a [`ConfigError`] naming the field, the file and the problem:
//! `check-config` and a reload refuse it, instead of every connect failing later.
//! The files' contents are kept in the [`Tls`] value, so connects do no file I/O.
//! Whether the material fits the engine (a key of another certificate, trust
//! anchors webpki refuses, a mode the engine lacks) the engine checks, when the
//! config is loaded (the `load` module). Keeps no state.

use super::raw::RawTls;
use super::{ConfigError, Ctx};
use crate::endpoint::{Pem, Tls, TlsMode, ValueError};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;

/// Validates a node's `tls:` block (`path` is its field path, e.g.
/// `clusters[0].nodes[1].tls`).
pub(super) fn validate(ctx: &Ctx, path: &str, rt: RawTls) -> Result<Tls, ConfigError> {
    let mode: TlsMode = rt.mode.parse().map_err(|e: ValueError| ctx.err(format!("{path}.mode"), e))?;
    let client = match (rt.cert_file, rt.key_file) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err(ctx.err(path, "set cert_file and key_file together")),
    };
    let field = |name: &str| format!("{path}.{name}");
    let mut ca_pem = None;
    if let Some(ca) = &rt.ca_file {
        let bytes = read(ctx, &field("ca_file"), ca)?;
        certificates(ctx, &field("ca_file"), ca, &bytes)?;
        ca_pem = Some(Pem::from(bytes));
    }
    let mut client_pem = None;
    if let Some((cert, key)) = &client {
        let cert_bytes = read(ctx, &field("cert_file"), cert)?;
        certificates(ctx, &field("cert_file"), cert, &cert_bytes)?;
        let key_bytes = read(ctx, &field("key_file"), key)?;
        private_key(ctx, &field("key_file"), key, &key_bytes)?;
        client_pem = Some((Pem::from(cert_bytes), Pem::from(key_bytes)));
    }
    Ok(Tls { mode, ca_file: rt.ca_file, client, ca_pem, client_pem })
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

fn certificates(ctx: &Ctx, field: &str, file: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ctx.err(field, format!("{} is not valid PEM: {}", file.display(), pem_problem(&e))))?;
    if certs.is_empty() {
        return Err(ctx.err(
            field,
            format!("{} holds no certificate: expected PEM (-----BEGIN CERTIFICATE-----)", file.display()),
        ));
    }
    Ok(())
}

fn private_key(ctx: &Ctx, field: &str, file: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
    PrivateKeyDer::from_pem_slice(bytes).map(drop).map_err(|e| match e {
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
