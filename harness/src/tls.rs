//! The TLS vocabulary the mocks and the probes share: one crypto provider,
//! PEM loading, and protocol and cipher names as `openssl s_client` prints them.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

pub(crate) fn load_certs(pem_bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem_bytes).collect();
    let certs = certs.map_err(|e| format!("invalid certificate PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in the PEM data".into());
    }
    Ok(certs)
}

pub(crate) fn load_key(pem_bytes: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem_bytes).map_err(|e| format!("invalid private key PEM: {e}"))
}

pub(crate) fn protocol_name(version: rustls::ProtocolVersion) -> String {
    match version {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        rustls::ProtocolVersion::TLSv1_1 => "TLSv1.1".into(),
        rustls::ProtocolVersion::TLSv1_0 => "TLSv1".into(),
        other => format!("{other:?}"),
    }
}

/// IANA names, as `s_client` prints TLS 1.3 suites (`TLS_AES_256_GCM_SHA384`).
pub(crate) fn cipher_name(suite: rustls::CipherSuite) -> String {
    let name = format!("{suite:?}");
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}

/// Whether a client chain (leaf first, PEM) verifies against a CA bundle
/// (PEM) for client authentication, now: what a server trusting that bundle
/// decides, in rustls' words when it does not.
pub(crate) fn client_chain_verifies(chain_pem: &str, ca_pem: &str) -> Result<(), String> {
    let chain = load_certs(chain_pem.as_bytes())?;
    let (leaf, intermediates) = chain.split_first().ok_or("no certificate")?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in load_certs(ca_pem.as_bytes())? {
        roots.add(ca).map_err(|e| e.to_string())?;
    }
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| e.to_string())?;
    verifier
        .verify_client_cert(leaf, intermediates, rustls::pki_types::UnixTime::now())
        .map(|_| ())
        .map_err(|e| e.to_string())
}
