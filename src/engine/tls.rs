//! TLS client configuration for database connections, with libpq's modes:
//! `require` encrypts without authenticating the server, `verify-ca` checks the
//! chain against the trust anchors, `verify-full` the chain and the host name.
//!
//! Built from a node's [`Tls`] (the PEM its files held when the config was
//! loaded, so a connect does no file I/O); [`check`] builds it once at load, so a
//! key of another certificate or an unusable CA is refused by `check-config` and
//! by a reload, never found at a connect. Keeps no state but [`unverified`]'s one
//! configuration. Trust anchors come from the node's `tls.ca_file`, else from the
//! system store.

use crate::endpoint::{Tls, TlsMode};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Why a TLS client configuration cannot be built, by the file at fault.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// The trust anchors (`tls.ca_file`, or the system store without one).
    #[error("{0}")]
    Roots(String),
    /// The client certificate and key (`tls.cert_file`, `tls.key_file`).
    #[error("{0}")]
    Identity(String),
    /// Anything else (the crypto provider).
    #[error("{0}")]
    Setup(String),
}

/// A node's TLS material, parsed from the PEM its files held.
#[derive(Default)]
struct Material {
    roots: Option<Vec<CertificateDer<'static>>>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
}

impl Material {
    /// The config read these files and found them PEM of the right kind; a
    /// failure here is still an error, never a panic.
    fn of(tls: &Tls) -> Result<Material, TlsError> {
        let certs = |pem: &[u8]| CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>();
        let roots = match &tls.ca_pem {
            Some(pem) => Some(certs(pem).map_err(|e| TlsError::Roots(format!("not valid PEM: {e}")))?),
            None => None,
        };
        let identity = match &tls.client_pem {
            Some((cert, key)) => Some((
                certs(cert).map_err(|e| TlsError::Identity(format!("not valid PEM: {e}")))?,
                PrivateKeyDer::from_pem_slice(key)
                    .map_err(|e| TlsError::Identity(format!("not valid PEM: {e}")))?,
            )),
            None => None,
        };
        Ok(Material { roots, identity })
    }
}

/// The rustls client configuration of a node's `tls:` block (not called for
/// `disable`).
pub fn client_config(tls: &Tls) -> Result<ClientConfig, TlsError> {
    build(tls.mode, &Material::of(tls)?)
}

/// Checks a `tls:` block's material the way a connect would use it. An engine
/// whose driver builds its own configuration (`verify == false`) still has its
/// trust anchors and its key checked against the certificate.
pub fn check(tls: &Tls, verify: bool) -> Result<(), TlsError> {
    let material = Material::of(tls)?;
    if let Some(certs) = &material.roots {
        roots(Some(certs))?;
    }
    match (tls.mode, verify) {
        (TlsMode::Disable, _) => Ok(()),
        (mode, true) => build(mode, &material).map(drop),
        (_, false) => build(TlsMode::Require, &Material { roots: None, ..material }).map(drop),
    }
}

fn build(mode: TlsMode, material: &Material) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(format!("TLS setup: {e}")))?;
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => Arc::new(NoVerification(provider.clone())),
        TlsMode::VerifyCa | TlsMode::VerifyFull => {
            let webpki = WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots(material.roots.as_deref())?),
                provider.clone(),
            )
            .build()
            .map_err(|e| TlsError::Roots(format!("unusable trust anchors: {e}")))?;
            if mode == TlsMode::VerifyCa {
                Arc::new(ChainOnly(webpki))
            } else {
                webpki
            }
        }
    };
    let builder = builder.dangerous().with_custom_certificate_verifier(verifier);
    match &material.identity {
        None => Ok(builder.with_no_client_auth()),
        Some((chain, key)) => builder
            .with_client_auth_cert(chain.clone(), key.clone_key())
            .map_err(|e| TlsError::Identity(identity_problem(&e))),
    }
}

/// Encryption without authentication, no client certificate: libpq's `prefer`
/// and `require` when only the DSN asks for TLS. Built once per process.
pub fn unverified() -> Result<Arc<ClientConfig>, TlsError> {
    static CONFIG: std::sync::OnceLock<Arc<ClientConfig>> = std::sync::OnceLock::new();
    if let Some(config) = CONFIG.get() {
        return Ok(config.clone());
    }
    // No files and no trust anchors: only the crypto provider's setup can fail.
    let config = Arc::new(build(TlsMode::Require, &Material::default())?);
    Ok(CONFIG.get_or_init(|| config).clone())
}

fn identity_problem(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InconsistentKeys(_) => {
            "the key does not belong to the certificate of cert_file".into()
        }
        other => format!("the key or certificate is not usable: {other}"),
    }
}

fn roots(certs: Option<&[CertificateDer<'static>]>) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    match certs {
        Some(certs) => {
            for cert in certs {
                store
                    .add(cert.clone())
                    .map_err(|e| TlsError::Roots(format!("not a usable CA certificate: {e}")))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
        }
    }
    if store.is_empty() {
        return Err(TlsError::Roots("no trust anchors: the system store is empty; set tls.ca_file".into()));
    }
    Ok(store)
}

/// `require`: any certificate, but the handshake's signatures are still checked.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trust anchor; the name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Whether an error chain comes from a TLS failure.
pub fn is_tls_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
                return true;
            }
        }
        source = s.source();
    }
    false
}
