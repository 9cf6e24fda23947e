//! The native probe: one TCP connection, an optional TLS handshake that records
//! what the server showed (and never gives up on a bad server certificate: like
//! `s_client`, it notes the verification result and goes on), then one HTTP
//! request. Reading the response is what reveals a TLS 1.3 client-certificate
//! refusal, which arrives only after the client's handshake has completed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use rustls::client::ResolvesClientCert;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, DigitallySignedStruct, Error as TlsError, RootCertStore, SignatureScheme,
};

use super::{
    HttpFacts, Identity, Observation, TlsFacts, Trust, alert_name, cipher_name, protocol_name,
};
use crate::net;
use crate::pki::CertInfo;
use crate::pki::inspect::oneline_from_der;
use crate::tls::{load_certs, load_key, provider};

pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// TLS settings for one probe.
pub struct TlsOptions<'a> {
    /// SNI, and the name the server certificate is verified for.
    pub server_name: String,
    pub identity: Option<&'a Identity>,
    pub trust: Option<&'a Trust>,
}

/// One HTTP request, optionally over TLS.
pub struct HttpRequest<'a> {
    pub addr: SocketAddr,
    pub tls: Option<TlsOptions<'a>>,
    pub method: &'a str,
    /// The Host header.
    pub host: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: Option<Bytes>,
    /// For reports: the URL as the scenario wrote it.
    pub display: String,
    /// Connect from this loopback address, so that the server's log lines of
    /// this request can be told from the others' (`client: 127.1.0.7`).
    pub source: Option<std::net::IpAddr>,
}

#[derive(Debug)]
struct RecordingVerifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    outcome: Mutex<Option<String>>,
    algorithms: WebPkiSupportedAlgorithms,
}

/// `s_client`'s words for the common verification failures.
fn verification_text(error: &TlsError) -> String {
    match error {
        TlsError::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "unable to get local issuer certificate".into()
        }
        TlsError::InvalidCertificate(CertificateError::Expired) => "certificate has expired".into(),
        TlsError::InvalidCertificate(CertificateError::NotValidYet) => {
            "certificate is not yet valid".into()
        }
        TlsError::InvalidCertificate(CertificateError::NotValidForName) => {
            "hostname mismatch".into()
        }
        other => other.to_string(),
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        let outcome = match &self.webpki {
            Some(v) => match v.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ) {
                Ok(_) => "OK".to_string(),
                Err(e) => verification_text(&e),
            },
            None => "not verified: no trusted CA given".to_string(),
        };
        if let Ok(mut slot) = self.outcome.lock() {
            *slot = Some(outcome);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[derive(Debug)]
struct RecordingResolver {
    key: Option<Arc<CertifiedKey>>,
    requested: Mutex<Option<Vec<String>>>,
}

impl ResolvesClientCert for RecordingResolver {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        _schemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        if let Ok(mut slot) = self.requested.lock() {
            *slot = Some(
                root_hint_subjects
                    .iter()
                    .map(|dn| oneline_from_der(dn))
                    .collect(),
            );
        }
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        true
    }
}

struct Recorders {
    verifier: Arc<RecordingVerifier>,
    resolver: Arc<RecordingResolver>,
    sent: Option<String>,
}

fn client_config(
    options: &TlsOptions<'_>,
) -> Result<(Arc<rustls::ClientConfig>, Recorders), String> {
    let provider = provider();
    let webpki = match options.trust {
        Some(trust) => {
            let mut roots = RootCertStore::empty();
            for cert in load_certs(trust.pem.as_bytes())? {
                roots
                    .add(cert)
                    .map_err(|e| format!("trust {}: {e}", trust.name))?;
            }
            Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| format!("trust {}: {e}", trust.name))?,
            )
        }
        None => None,
    };
    let verifier = Arc::new(RecordingVerifier {
        webpki,
        outcome: Mutex::new(None),
        algorithms: provider.signature_verification_algorithms,
    });
    let (key, sent) = match options.identity {
        Some(identity) => {
            let chain = load_certs(identity.chain_pem.as_bytes())?;
            let sent = chain
                .first()
                .and_then(|leaf| CertInfo::from_der(leaf).ok())
                .map(|i| i.subject);
            let key = load_key(identity.key_pem.as_bytes())?;
            let signing = provider
                .key_provider
                .load_private_key(key)
                .map_err(|e| format!("identity {}: {e}", identity.name))?;
            (Some(Arc::new(CertifiedKey::new(chain, signing))), sent)
        }
        None => (None, None),
    };
    let resolver = Arc::new(RecordingResolver {
        key,
        requested: Mutex::new(None),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_client_cert_resolver(resolver.clone());
    Ok((
        Arc::new(config),
        Recorders {
            verifier,
            resolver,
            sent,
        },
    ))
}

/// Run one request and record everything seen.
pub async fn http(request: &HttpRequest<'_>) -> Observation {
    let started = Instant::now();
    let mut observation = Observation {
        target: super::describe_target(request.method, &request.display, request.addr),
        ..Observation::default()
    };
    match tokio::time::timeout(TIMEOUT, run(request, &mut observation)).await {
        Ok(Ok(())) => {}
        Ok(Err(failure)) => {
            let refusal = failure.refusal.unwrap_or_default();
            observation.alert = refusal.alert.map(alert_name);
            observation.rejected =
                observation.alert.is_some() || (observation.tls.is_some() && refusal.reset);
            observation.connection = failure.connection.filter(|_| refusal.alert.is_none());
            observation.error = Some(failure.message);
        }
        Err(_) => observation.error = Some(format!("no answer within {TIMEOUT:?}")),
    }
    observation.elapsed_ms = crate::probe::millis(started.elapsed());
    observation
}

/// A first probe of a host through the ingress controller: a TCP connection
/// and, with `sni`, a TLS handshake presenting no client certificate. No
/// request is sent, so nothing reaches an upstream (no upstream connection or
/// session a check could later see). The observation says whether anything
/// answered: `connection` is set for a refusal, reset or close.
pub(crate) async fn first_answer(addr: SocketAddr, sni: Option<&str>) -> Observation {
    let started = Instant::now();
    let mut observation = Observation {
        target: match sni {
            Some(name) => format!("TLS handshake for {name} via {addr}"),
            None => format!("TCP connection via {addr}"),
        },
        ..Observation::default()
    };
    let work = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| Failure {
                message: format!("connect {addr}: {e}"),
                refusal: None,
                connection: net::ConnectionFailure::of(&e),
            })?;
        let Some(name) = sni else {
            return Ok(None);
        };
        let options = TlsOptions {
            server_name: name.to_string(),
            identity: None,
            trust: None,
        };
        let (config, _) = client_config(&options)?;
        let server_name = ServerName::try_from(name.to_string())
            .map_err(|e| format!("server name {name}: {e}"))?;
        let connector = tokio_rustls::TlsConnector::from(config);
        match connector.connect(server_name, tcp).await {
            Ok(stream) => Ok(stream.get_ref().1.protocol_version().map(protocol_name)),
            Err(e) => Err(Failure {
                message: net::error_chain(&e),
                refusal: net::Refusal::of(&e),
                connection: net::ConnectionFailure::of(&e),
            }),
        }
    };
    match tokio::time::timeout(TIMEOUT, work).await {
        Ok(Ok(protocol)) => {
            observation.tls = protocol.map(|p| TlsFacts {
                protocol: Some(p),
                ..TlsFacts::default()
            });
        }
        Ok(Err(failure)) => {
            let refusal = failure.refusal.unwrap_or_default();
            observation.alert = refusal.alert.map(alert_name);
            observation.rejected = observation.alert.is_some();
            observation.connection = failure.connection.filter(|_| refusal.alert.is_none());
            observation.error = Some(failure.message);
        }
        Err(_) => observation.error = Some(format!("no answer within {TIMEOUT:?}")),
    }
    observation.elapsed_ms = crate::probe::millis(started.elapsed());
    observation
}

/// Why a request got no answer, whether the server refused us, and whether
/// the connection itself failed.
struct Failure {
    message: String,
    refusal: Option<net::Refusal>,
    connection: Option<net::ConnectionFailure>,
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure {
            message,
            refusal: None,
            connection: None,
        }
    }
}

impl From<net::NetError> for Failure {
    fn from(e: net::NetError) -> Self {
        let (refusal, connection) = match &e {
            net::NetError::Refused { refusal, .. } => (
                Some(*refusal),
                (refusal.alert.is_none() && refusal.reset)
                    .then_some(net::ConnectionFailure::Dropped),
            ),
            net::NetError::Dropped { .. } => (None, Some(net::ConnectionFailure::Dropped)),
            net::NetError::Connect { source, .. } => (None, net::ConnectionFailure::of(source)),
            _ => (None, None),
        };
        Failure {
            message: e.to_string(),
            refusal,
            connection,
        }
    }
}

async fn run(request: &HttpRequest<'_>, observation: &mut Observation) -> Result<(), Failure> {
    let (tcp, client) = connect(request.addr, request.source)
        .await
        .map_err(|e| Failure {
            message: format!("connect {}: {e}", request.addr),
            refusal: None,
            connection: net::ConnectionFailure::of(&e),
        })?;
    observation.client = client;
    let http_request = build(request)?;
    let Some(options) = &request.tls else {
        let response = net::send(tcp, http_request).await?;
        observation.response = Some(facts(response));
        return Ok(());
    };
    let (config, recorders) = client_config(options)?;
    let server_name = ServerName::try_from(options.server_name.clone())
        .map_err(|e| format!("server name {}: {e}", options.server_name))?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let handshake = connector.connect(server_name, tcp).await;
    let tls = record_tls(&recorders, handshake.as_ref().ok().map(|s| s.get_ref().1));
    observation.tls = Some(tls);
    let stream = handshake.map_err(|e| Failure {
        message: net::error_chain(&e),
        refusal: net::Refusal::of(&e),
        connection: net::ConnectionFailure::of(&e),
    })?;
    let response = net::send(stream, http_request).await?;
    observation.response = Some(facts(response));
    Ok(())
}

/// Connect from `source` when the system lets us (Linux answers on all of
/// 127.0.0.0/8; elsewhere only 127.0.0.1 may exist), else from anywhere.
async fn connect(
    addr: SocketAddr,
    source: Option<std::net::IpAddr>,
) -> std::io::Result<(tokio::net::TcpStream, Option<String>)> {
    if let Some(ip) = source.filter(|ip| ip.is_ipv4() == addr.is_ipv4()) {
        let socket = if ip.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        if socket.bind(SocketAddr::new(ip, 0)).is_ok() {
            let stream = socket.connect(addr).await?;
            return Ok((stream, Some(ip.to_string())));
        }
    }
    Ok((tokio::net::TcpStream::connect(addr).await?, None))
}

fn record_tls(recorders: &Recorders, conn: Option<&rustls::ClientConnection>) -> TlsFacts {
    let requested = recorders
        .resolver
        .requested
        .lock()
        .ok()
        .and_then(|r| r.clone());
    let verification = recorders
        .verifier
        .outcome
        .lock()
        .ok()
        .and_then(|o| o.clone());
    let peer_chain = conn
        .and_then(|c| c.peer_certificates())
        .map(|chain| {
            chain
                .iter()
                .filter_map(|c| CertInfo::from_der(c).ok())
                .map(|i| i.subject)
                .collect()
        })
        .unwrap_or_default();
    TlsFacts {
        protocol: conn.and_then(|c| c.protocol_version()).map(protocol_name),
        cipher: conn
            .and_then(|c| c.negotiated_cipher_suite())
            .map(|s| cipher_name(s.suite())),
        client_cert_requested: requested.is_some(),
        acceptable_ca_names: requested.clone().unwrap_or_default(),
        peer_chain,
        verified_chain: Vec::new(),
        verification: verification.unwrap_or_else(|| "no server certificate seen".into()),
        client_cert_sent: requested.and(recorders.sent.clone()),
    }
}

fn build(request: &HttpRequest<'_>) -> Result<hyper::Request<Full<Bytes>>, String> {
    let mut builder = hyper::Request::builder()
        .method(request.method)
        .uri(&request.path)
        .header("host", &request.host)
        .header("user-agent", "mtls-e2e")
        .header("connection", "close");
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    if request.body.is_some()
        && !request
            .headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("content-type"))
    {
        builder = builder.header("content-type", "application/json");
    }
    builder
        .body(Full::new(request.body.clone().unwrap_or_default()))
        .map_err(|e| e.to_string())
}

fn facts(response: net::Response) -> HttpFacts {
    HttpFacts {
        status: response.status,
        headers: response.headers,
        body: String::from_utf8_lossy(&response.body).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(addr: SocketAddr) -> HttpRequest<'static> {
        HttpRequest {
            addr,
            tls: None,
            method: "GET",
            host: "h".into(),
            path: "/".into(),
            headers: BTreeMap::new(),
            body: None,
            display: "http://h/".into(),
            source: None,
        }
    }

    /// What a reload or a listener not up yet does to a probe is marked as a
    /// connection failure (the only outcome a cluster check tries again).
    #[tokio::test]
    async fn refused_and_dropped_connections_are_marked() {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = closed.local_addr().expect("address");
        drop(closed);
        let refused = http(&request(addr)).await;
        assert_eq!(
            refused.connection,
            Some(net::ConnectionFailure::Refused),
            "{refused:?}"
        );

        // A server that reads the request and closes without a word.
        let rude = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = rude.local_addr().expect("address");
        let server = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            if let Ok((mut stream, _)) = rude.accept().await {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
            }
        });
        let dropped = http(&request(addr)).await;
        server.abort();
        assert!(dropped.response.is_none());
        assert_eq!(
            dropped.connection,
            Some(net::ConnectionFailure::Dropped),
            "{dropped:?}"
        );
    }
}
