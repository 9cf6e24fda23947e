//! TLS for the mock servers.
//!
//! The F5 AI Gateway is a Go program, so it verifies client certificates the way
//! Go's crypto/tls does. One difference from rustls matters for tutorial 002: the
//! tutorial's `openssl x509 -req` (no `-extfile`) makes an X.509 **v1** client
//! certificate. Go accepts a v1 leaf; webpki refuses it (`UnsupportedCertVersion`).
//! [`GoClientVerifier`] verifies v3 chains with webpki and a v1 leaf directly
//! against a trusted CA, as Go would.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, Error as TlsError, RootCertStore, SignatureScheme,
};
use x509_parser::prelude::FromDer;

use crate::tls::{load_certs, load_key, provider};

/// Client verification as Go's `tls.RequireAndVerifyClientCert`.
#[derive(Debug)]
pub(crate) struct GoClientVerifier {
    webpki: Arc<dyn ClientCertVerifier>,
    /// (subject DER, subject public key bits, key algorithm OID) of each trusted CA.
    roots: Vec<(Vec<u8>, Vec<u8>, String)>,
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl GoClientVerifier {
    pub(crate) fn new(ca_certs: &[CertificateDer<'static>]) -> Result<Arc<Self>, String> {
        let provider = provider();
        let mut store = RootCertStore::empty();
        let mut roots = Vec::new();
        for cert in ca_certs {
            store
                .add(cert.clone())
                .map_err(|e| format!("CA certificate: {e}"))?;
            let (_, parsed) = x509_parser::certificate::X509Certificate::from_der(cert)
                .map_err(|e| format!("CA certificate: {e}"))?;
            roots.push((
                parsed.subject().as_raw().to_vec(),
                parsed.public_key().subject_public_key.data.to_vec(),
                parsed.public_key().algorithm.algorithm.to_id_string(),
            ));
        }
        let hints = roots
            .iter()
            .map(|(subject, _, _)| DistinguishedName::from(subject.clone()))
            .collect();
        let webpki = WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider.clone())
            .build()
            .map_err(|e| format!("client verifier: {e}"))?;
        Ok(Arc::new(GoClientVerifier {
            webpki,
            roots,
            hints,
            algorithms: provider.signature_verification_algorithms,
        }))
    }

    /// Verify a v1 leaf signed directly by one of the roots.
    fn verify_v1(&self, leaf: &CertificateDer<'_>, now: UnixTime) -> Result<(), TlsError> {
        use rustls::CertificateError;
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(leaf)
            .map_err(|_| TlsError::InvalidCertificate(CertificateError::BadEncoding))?;
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let validity = cert.validity();
        if now < validity.not_before.timestamp() {
            return Err(TlsError::InvalidCertificate(CertificateError::NotValidYet));
        }
        if now > validity.not_after.timestamp() {
            return Err(TlsError::InvalidCertificate(CertificateError::Expired));
        }
        let issuer = cert.issuer().as_raw();
        let signature_oid = cert.signature_algorithm.algorithm.to_id_string();
        for (subject, key, key_oid) in &self.roots {
            if subject.as_slice() != issuer {
                continue;
            }
            let Some(algorithm) = signature_algorithm(&signature_oid, key_oid, key.len()) else {
                return Err(TlsError::InvalidCertificate(CertificateError::BadSignature));
            };
            let public_key = aws_lc_rs::signature::UnparsedPublicKey::new(algorithm, key);
            return public_key
                .verify(cert.tbs_certificate.as_ref(), &cert.signature_value.data)
                .map_err(|_| TlsError::InvalidCertificate(CertificateError::BadSignature));
        }
        Err(TlsError::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ))
    }
}

fn signature_algorithm(
    signature_oid: &str,
    key_oid: &str,
    key_len: usize,
) -> Option<&'static dyn aws_lc_rs::signature::VerificationAlgorithm> {
    use aws_lc_rs::signature as s;
    Some(match (signature_oid, key_oid) {
        ("1.2.840.113549.1.1.11", _) => &s::RSA_PKCS1_2048_8192_SHA256,
        ("1.2.840.113549.1.1.12", _) => &s::RSA_PKCS1_2048_8192_SHA384,
        ("1.2.840.113549.1.1.13", _) => &s::RSA_PKCS1_2048_8192_SHA512,
        ("1.2.840.10045.4.3.2", _) if key_len == 65 => &s::ECDSA_P256_SHA256_ASN1,
        ("1.2.840.10045.4.3.2", _) => &s::ECDSA_P384_SHA256_ASN1,
        ("1.2.840.10045.4.3.3", _) if key_len == 65 => &s::ECDSA_P256_SHA384_ASN1,
        ("1.2.840.10045.4.3.3", _) => &s::ECDSA_P384_SHA384_ASN1,
        ("1.3.101.112", _) => &s::ED25519,
        _ => return None,
    })
}

fn is_v1(cert: &CertificateDer<'_>) -> bool {
    x509_parser::certificate::X509Certificate::from_der(cert).is_ok_and(|(_, c)| c.version().0 == 0)
}

impl ClientCertVerifier for GoClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, TlsError> {
        // A v1 leaf is checked against the trusted CAs directly; clients such as
        // openssl s_client also send the CA itself, which Go ignores here too.
        if is_v1(end_entity) {
            self.verify_v1(end_entity, now)?;
            return Ok(ClientCertVerified::assertion());
        }
        self.webpki
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        // Checked against the key itself, so a v1 certificate works too.
        let spki = crate::pki::inspect::spki_der(cert)
            .map_err(|_| TlsError::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &SubjectPublicKeyInfoDer::from(spki),
            dss,
            &self.algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A TLS 1.3 server config: `cert_pem`/`key_pem` for the server, and when
/// `client_ca_pem` is given, client certificates required and verified like Go.
pub(crate) fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_ca_pem: Option<&[u8]>,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let chain = load_certs(cert_pem)?;
    let key = load_key(key_pem)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?;
    let builder = match client_ca_pem {
        Some(ca) => builder.with_client_cert_verifier(GoClientVerifier::new(&load_certs(ca)?)?),
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("server certificate: {e}"))?;
    Ok(Arc::new(config))
}
