//! Probes: what a client sees. A native probe (TLS + HTTP in one connection,
//! recording the handshake as `openssl s_client` would report it) and the real
//! `openssl s_client`, run and parsed.

pub mod native;
pub(crate) mod openssl;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Serialize;

pub(crate) use crate::tls::{cipher_name, protocol_name};
pub(crate) use native::{HttpRequest, TlsOptions, http};

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
    /// The server sent a `CertificateRequest`.
    pub client_cert_requested: bool,
    /// Its CA names, in openssl's one-line form.
    pub acceptable_ca_names: Vec<String>,
    /// Subjects of the chain the server sent, leaf first.
    pub peer_chain: Vec<String>,
    /// Subjects of the verified chain (openssl `depth=` lines), leaf first.
    pub verified_chain: Vec<String>,
    /// `OK` or the verification error, as `s_client`'s `Verification:` line.
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

/// Milliseconds (for reports; a run never lasts 584 million years).
pub(crate) fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
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
    /// No answer at the connection level (refused, reset, closed before any
    /// response): the only outcome a check on a cluster tries again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<crate::net::ConnectionFailure>,
    /// The openssl command line, when the probe was openssl.
    pub command: Option<String>,
    /// openssl's output, trimmed, for reports.
    pub transcript: Option<String>,
    pub elapsed_ms: u64,
    /// The address the probe connected from, when it chose one (local
    /// substrate): the server's log lines of this request name it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

/// What the server did, the first question every check asks of an observation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Answer<'a> {
    /// Refused at the TLS layer: an alert (named when known), or a reset.
    Refused { alert: Option<&'a str> },
    /// An HTTP response.
    Http(&'a HttpFacts),
    /// Nothing a server said: connect refused, a timeout, a broken exchange,
    /// or a handshake with no request after it (`error` says which, if known).
    Nothing { error: Option<&'a str> },
}

impl Observation {
    pub(crate) fn answer(&self) -> Answer<'_> {
        if self.rejected {
            Answer::Refused {
                alert: self.alert.as_deref(),
            }
        } else if let Some(r) = &self.response {
            Answer::Http(r)
        } else {
            Answer::Nothing {
                error: self.error.as_deref(),
            }
        }
    }

    /// The refusal in words: the alert, else whatever error came with it.
    pub(crate) fn refusal(&self) -> Option<&str> {
        match self.answer() {
            Answer::Refused { alert } => alert.or(self.error.as_deref()),
            _ => None,
        }
    }
}

/// A fatal alert named in openssl's output (`tlsv13 alert certificate
/// required`); openssl is another program, so its words are all there is.
pub(crate) fn alert_in(text: &str) -> Option<String> {
    for marker in ["tlsv13 alert ", "tlsv1 alert ", "sslv3 alert "] {
        if let Some(i) = text.find(marker) {
            let rest = &text[i + marker.len()..];
            let end = rest.find([':', '\n']).unwrap_or(rest.len());
            return Some(rest[..end].trim().to_string());
        }
    }
    None
}

/// A rustls alert in OpenSSL's words (`SSL_alert_desc_string_long`), so both
/// probes report an alert the same way.
pub(crate) fn alert_name(alert: rustls::AlertDescription) -> String {
    use rustls::AlertDescription as A;
    match alert {
        A::UnknownCA => "unknown ca".into(),
        A::UnrecognisedName => "unrecognized name".into(),
        A::BadCertificateStatusResponse => "bad certificate status response".into(),
        A::Unknown(n) => format!("unknown alert {n}"),
        other => spaced_lowercase(&format!("{other:?}")),
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

pub(crate) fn describe_target(method: &str, url: &str, addr: SocketAddr) -> String {
    format!("{method} {url} via {addr}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_in_both_dialects() {
        use rustls::AlertDescription as A;
        assert_eq!(alert_name(A::CertificateRequired), "certificate required");
        assert_eq!(
            alert_in("40F7:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:../ssl/record/rec_layer_s3.c:1586:SSL alert number 116")
                .as_deref(),
            Some("certificate required")
        );
        assert_eq!(alert_name(A::UnrecognisedName), "unrecognized name");
        assert_eq!(alert_name(A::UnknownCA), "unknown ca");
        assert_eq!(alert_name(A::Unknown(200)), "unknown alert 200");
        assert_eq!(alert_in("all good"), None);
        // rustls' text is no longer read: the alert comes typed.
        assert_eq!(alert_in("received fatal alert: CertificateRequired"), None);
    }

    /// A refusal is a refusal even when some bytes looked like a response, and
    /// a bare error is "nothing", never an answer.
    #[test]
    fn the_answer_is_one_of_three() {
        let refused = Observation {
            rejected: true,
            alert: Some("certificate required".into()),
            response: Some(HttpFacts::default()),
            ..Observation::default()
        };
        assert_eq!(
            refused.answer(),
            Answer::Refused {
                alert: Some("certificate required")
            }
        );
        let reset = Observation {
            rejected: true,
            error: Some("connection reset".into()),
            ..Observation::default()
        };
        assert_eq!(reset.refusal(), Some("connection reset"));
        let http = Observation {
            response: Some(HttpFacts {
                status: 400,
                ..HttpFacts::default()
            }),
            ..Observation::default()
        };
        assert!(matches!(http.answer(), Answer::Http(r) if r.status == 400));
        let nothing = Observation {
            error: Some("connect refused".into()),
            ..Observation::default()
        };
        assert_eq!(
            nothing.answer(),
            Answer::Nothing {
                error: Some("connect refused")
            }
        );
        assert_eq!(nothing.refusal(), None);
    }
}
