//! Probes: what a client sees. A native probe (TLS + HTTP in one connection,
//! recording the handshake as `openssl s_client` would report it) and the real
//! `openssl s_client`, run and parsed.

pub mod native;
pub mod openssl;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Serialize;

pub use crate::tls::{cipher_name, protocol_name};
pub use native::{HttpRequest, TlsOptions, http};

/// A client identity: a certificate chain and its key, in memory and on disk
/// (openssl wants files).
#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    pub chain_pem: String,
    pub key_pem: String,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

/// A CA bundle the probe verifies the server against.
#[derive(Debug, Clone)]
pub struct Trust {
    pub name: String,
    pub pem: String,
    pub path: PathBuf,
}

/// What the TLS handshake showed.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TlsFacts {
    pub protocol: Option<String>,
    pub cipher: Option<String>,
    /// The server sent a CertificateRequest.
    pub client_cert_requested: bool,
    /// Its CA names, in openssl's one-line form.
    pub acceptable_ca_names: Vec<String>,
    /// Subjects of the chain the server sent, leaf first.
    pub peer_chain: Vec<String>,
    /// Subjects of the verified chain (openssl `depth=` lines), leaf first.
    pub verified_chain: Vec<String>,
    /// `OK` or the verification error, as s_client's `Verification:` line.
    pub verification: String,
    /// Subject of the client certificate we sent, if any.
    pub client_cert_sent: Option<String>,
}

/// The HTTP response a probe got.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct HttpFacts {
    pub status: u16,
    pub headers: std::collections::BTreeMap<String, String>,
    pub body: String,
}

/// Everything a probe observed: the evidence a check is judged on.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Observation {
    /// What was probed, e.g. `GET https://h/ via 127.0.0.1:4443`.
    pub target: String,
    pub tls: Option<TlsFacts>,
    pub response: Option<HttpFacts>,
    /// The server refused us at the TLS layer (alert or reset).
    pub rejected: bool,
    pub alert: Option<String>,
    /// A failure that is not an answer (connect refused, timeout, ...).
    pub error: Option<String>,
    /// The openssl command line, when the probe was openssl.
    pub command: Option<String>,
    /// openssl's output, trimmed, for reports.
    pub transcript: Option<String>,
    pub elapsed_ms: u64,
}

/// A fatal alert named in an error text (`received fatal alert: CertificateRequired`,
/// or openssl's `tlsv13 alert certificate required`), in openssl's words.
pub fn alert_in(text: &str) -> Option<String> {
    if let Some(i) = text.find("received fatal alert: ") {
        let name: String = text[i + 22..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        return Some(openssl_alert_name(&name));
    }
    for marker in ["tlsv13 alert ", "tlsv1 alert ", "sslv3 alert "] {
        if let Some(i) = text.find(marker) {
            let rest = &text[i + marker.len()..];
            let end = rest.find([':', '\n']).unwrap_or(rest.len());
            return Some(rest[..end].trim().to_string());
        }
    }
    None
}

/// rustls' alert names in OpenSSL's words (`SSL_alert_desc_string_long`), so
/// both probes report an alert the same way.
fn openssl_alert_name(rustls_name: &str) -> String {
    match rustls_name {
        "UnknownCA" => "unknown ca".into(),
        "UnrecognisedName" => "unrecognized name".into(),
        "BadCertificateStatusResponse" => "bad certificate status response".into(),
        other => spaced_lowercase(other),
    }
}

fn spaced_lowercase(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// A TCP reset or close at the TLS layer also means "refused".
pub fn is_reset(text: &str) -> bool {
    let t = text.to_lowercase();
    t.contains("connection reset") || t.contains("broken pipe") || t.contains("unexpected eof")
}

pub fn describe_target(method: &str, url: &str, addr: SocketAddr) -> String {
    format!("{method} {url} via {addr}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_in_both_dialects() {
        assert_eq!(
            alert_in("x <- received fatal alert: CertificateRequired").as_deref(),
            Some("certificate required")
        );
        assert_eq!(
            alert_in("40F7:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:../ssl/record/rec_layer_s3.c:1586:SSL alert number 116")
                .as_deref(),
            Some("certificate required")
        );
        assert_eq!(
            alert_in("received fatal alert: UnrecognisedName").as_deref(),
            Some("unrecognized name")
        );
        assert_eq!(
            alert_in("received fatal alert: UnknownCA").as_deref(),
            Some("unknown ca")
        );
        assert_eq!(alert_in("all good"), None);
    }
}
