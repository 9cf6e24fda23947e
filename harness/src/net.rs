//! HTTP/1.1 over any stream, and name resolution for cluster DNS names.
//!
//! One request per connection: probes want a fresh TLS handshake each time (no
//! resumption hiding a missing client certificate), and the mocks are tiny.

use crate::manifest::ServicePort;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// Largest body read from a peer.
pub(crate) const BODY_LIMIT: usize = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum NetError {
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Http(String),
    /// The peer refused the connection at the TLS layer (read from the
    /// error's causes, not from its text).
    #[error("{message}")]
    Refused { message: String, refusal: Refusal },
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The peer closed the connection before any response, with no alert
    /// (hyper's "connection closed before message completed").
    #[error("{message}")]
    Dropped { message: String },
}

/// A probe that got no answer at the connection level: what an nginx reload
/// (workers recycled mid-request) or a listener not up yet causes, and what
/// trying again may cure. A TLS alert, a response or a timeout is never one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectionFailure {
    /// Nothing accepted the connection (connect refused).
    Refused,
    /// Reset or closed before any response, with no TLS alert.
    Dropped,
}

impl ConnectionFailure {
    /// Read from an error and its causes (the I/O error kind, hyper's
    /// incomplete message); `None` when a TLS alert is among them (an answer).
    pub(crate) fn of(error: &(dyn std::error::Error + 'static)) -> Option<ConnectionFailure> {
        use std::io::ErrorKind::{
            BrokenPipe, ConnectionAborted, ConnectionRefused, ConnectionReset, UnexpectedEof,
        };
        let mut found = None;
        let mut next = Some(error);
        while let Some(e) = next {
            if let Some(rustls::Error::AlertReceived(_)) = e.downcast_ref::<rustls::Error>() {
                return None;
            }
            if e.downcast_ref::<hyper::Error>()
                .is_some_and(hyper::Error::is_incomplete_message)
            {
                found = found.or(Some(ConnectionFailure::Dropped));
            }
            next = match e.downcast_ref::<std::io::Error>() {
                Some(io) => {
                    match io.kind() {
                        ConnectionRefused => found = found.or(Some(ConnectionFailure::Refused)),
                        ConnectionReset | BrokenPipe | ConnectionAborted | UnexpectedEof => {
                            found = found.or(Some(ConnectionFailure::Dropped));
                        }
                        _ => {}
                    }
                    io.get_ref()
                        .map(|inner| inner as &(dyn std::error::Error + 'static))
                }
                None => e.source(),
            };
        }
        found
    }
}

/// How a peer refused us: the fatal alert it sent, or a reset / close.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub alert: Option<rustls::AlertDescription>,
    pub reset: bool,
}

impl Refusal {
    /// Read from an error and its causes (rustls' typed alert, the I/O error kind).
    pub(crate) fn of(error: &(dyn std::error::Error + 'static)) -> Option<Refusal> {
        let mut found = Refusal::default();
        let mut next = Some(error);
        while let Some(e) = next {
            if let Some(rustls::Error::AlertReceived(alert)) = e.downcast_ref::<rustls::Error>() {
                found.alert = Some(*alert);
            }
            next = match e.downcast_ref::<std::io::Error>() {
                Some(io) => {
                    use std::io::ErrorKind::{BrokenPipe, ConnectionReset, UnexpectedEof};
                    found.reset |=
                        matches!(io.kind(), ConnectionReset | BrokenPipe | UnexpectedEof);
                    // An io::Error's source skips the error it wraps; look at that one.
                    io.get_ref()
                        .map(|inner| inner as &(dyn std::error::Error + 'static))
                }
                None => e.source(),
            };
        }
        (found != Refusal::default()).then_some(found)
    }
}

/// A hyper error as ours: a refusal when its causes say so.
fn http_error(error: &(dyn std::error::Error + 'static), context: Option<&str>) -> NetError {
    let mut message = error_chain(error);
    if let Some(context) = context {
        message = format!("{message} <- {context}");
    }
    match (Refusal::of(error), ConnectionFailure::of(error)) {
        (Some(refusal), _) => NetError::Refused { message, refusal },
        (None, Some(ConnectionFailure::Dropped)) => NetError::Dropped { message },
        (None, _) => NetError::Http(message),
    }
}

/// A response, fully read.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Bytes,
}

/// Send one request over `stream` and read the whole response.
pub(crate) async fn send<S>(
    stream: S,
    request: hyper::Request<Full<Bytes>>,
) -> Result<Response, NetError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| http_error(&e, None))?;
    let mut driver = tokio::spawn(connection);
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| http_error(&e, None))?;
        read_response(response).await
    }
    .await;
    if let Err(
        NetError::Http(message) | NetError::Refused { message, .. } | NetError::Dropped { message },
    ) = &result
    {
        // The connection may have died first (a TLS 1.3 server's alert after the
        // handshake arrives on the read side): its error is the real cause.
        if let Ok(Ok(Err(e))) = tokio::time::timeout(Duration::from_millis(200), &mut driver).await
        {
            driver.abort();
            return Err(http_error(&e, Some(message)));
        }
    }
    driver.abort();
    result
}

pub(crate) async fn read_response(
    response: hyper::Response<Incoming>,
) -> Result<Response, NetError> {
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).to_string(),
            )
        })
        .collect();
    let body = Limited::new(response.into_body(), BODY_LIMIT)
        .collect()
        .await
        .map_err(|e| NetError::Http(format!("reading the body: {e}")))?
        .to_bytes();
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// Read a request body with the size limit.
pub(crate) async fn read_body(body: Incoming) -> Result<Bytes, String> {
    Limited::new(body, BODY_LIMIT)
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .map_err(|e| e.to_string())
}

/// An error and its causes on one line (`a <- b <- c`), for reports.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(" <- ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Service ports reachable on this machine: `(namespace, service, port)` → address.
/// The local substrate fills it; inside a cluster, DNS does the same job.
#[derive(Debug, Default)]
pub struct ServiceMap {
    entries: BTreeMap<ServicePort, SocketAddr>,
}

impl ServiceMap {
    pub(crate) fn insert(&mut self, namespace: &str, service: &str, port: u16, addr: SocketAddr) {
        self.entries
            .insert(ServicePort::new(namespace, service, port), addr);
    }

    pub(crate) fn get(&self, service: &ServicePort) -> Option<SocketAddr> {
        self.entries.get(service).copied()
    }

    /// Resolve `svc`, `svc.ns`, `svc.ns.svc` or `svc.ns.svc.cluster.local`, as a
    /// pod in `search_namespace` would.
    pub(crate) fn lookup(
        &self,
        host: &str,
        port: u16,
        search_namespace: &str,
    ) -> Option<SocketAddr> {
        let trimmed = host
            .strip_suffix(".svc.cluster.local")
            .or_else(|| host.strip_suffix(".svc"))
            .unwrap_or(host);
        let (service, namespace) = match trimmed.split_once('.') {
            Some((s, ns)) if !ns.contains('.') => (s, ns),
            Some(_) => return None,
            None => (trimmed, search_namespace),
        };
        self.get(&ServicePort::new(namespace, service, port))
    }
}

/// How a component finds the hosts it calls.
#[derive(Debug, Clone)]
pub(crate) enum Resolver {
    /// The system resolver (in a container, the cluster's DNS).
    System,
    /// Cluster names mapped onto loopback by the local substrate. The map is
    /// filled once every pod has its listener, before any request is made.
    Services {
        map: Arc<OnceLock<ServiceMap>>,
        namespace: String,
    },
}

impl Resolver {
    pub(crate) async fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, NetError> {
        match self {
            Resolver::Services { map, namespace } => {
                if let Some(addr) = map.get().and_then(|m| m.lookup(host, port, namespace)) {
                    return Ok(addr);
                }
                // Loopback and literal addresses still work outside the map.
                if let Ok(ip) = host.parse::<std::net::IpAddr>()
                    && ip.is_loopback()
                {
                    return Ok(SocketAddr::new(ip, port));
                }
                Err(NetError::Resolve(format!(
                    "{host}:{port} (no such Service in the local substrate)"
                )))
            }
            Resolver::System => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| NetError::Resolve(format!("{host}:{port}: {e}")))?
                .next()
                .ok_or_else(|| NetError::Resolve(format!("{host}:{port}"))),
        }
    }
}

/// An `http://` or `https://` URL, as `http::Uri` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpUrl {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// `host:port` as written (the Host header).
    pub authority: String,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    pub(crate) fn parse(text: &str) -> Result<HttpUrl, String> {
        let uri: http::Uri = text
            .parse()
            .map_err(|e| format!("`{text}` is not a URL: {e}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(format!("`{text}` must start with http:// or https://")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("`{text}` has no host"))?;
        let (host, port) = host_port(authority, if https { 443 } else { 80 })?;
        Ok(HttpUrl {
            https,
            host: host.to_string(),
            port,
            authority: authority.to_string(),
            path: match uri.query() {
                Some(query) => format!("{}?{query}", uri.path()),
                None => uri.path().to_string(),
            },
        })
    }
}

/// The host and port of `authority` (`default_port` when it names none).
pub(crate) fn host_port(
    authority: &http::uri::Authority,
    default_port: u16,
) -> Result<(&str, u16), String> {
    let host = authority.host();
    if host.is_empty() {
        return Err(format!("`{authority}` has no host"));
    }
    // `port_u16` is None both for no port and for a bad one (`:x`, `:99999`);
    // anything written after the host is a port that must read.
    match authority.port_u16() {
        Some(port) => Ok((host, port)),
        None if authority.as_str().ends_with(host) => Ok((host, default_port)),
        None => Err(format!("`{authority}` has no valid port number")),
    }
}

/// A plain-HTTP request to `url` (`http://host:port/path`), as mocks call each other.
pub(crate) async fn http_call(
    resolver: &Resolver,
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: Bytes,
    timeout: Duration,
) -> Result<Response, NetError> {
    let u = HttpUrl::parse(url).map_err(NetError::Http)?;
    if u.https {
        return Err(NetError::Http(format!(
            "`{url}`: only http:// is supported here"
        )));
    }
    let work = async {
        let addr = resolver.resolve(&u.host, u.port).await?;
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|source| NetError::Connect {
                addr: addr.to_string(),
                source,
            })?;
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(u.path.as_str())
            .header("host", u.authority.as_str());
        for (name, value) in headers {
            builder = builder.header(*name, value);
        }
        let request = builder
            .body(Full::new(body))
            .map_err(|e| NetError::Http(e.to_string()))?;
        send(stream, request).await
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| NetError::Timeout(timeout))?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The alert and the reset come from the error's types, wherever in its
    /// causes they are (tokio-rustls wraps rustls' error in an `io::Error`).
    #[test]
    fn a_refusal_is_read_from_the_error_types() {
        let alert = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired),
        );
        assert_eq!(
            Refusal::of(&alert),
            Some(Refusal {
                alert: Some(rustls::AlertDescription::CertificateRequired),
                reset: false
            })
        );
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(Refusal::of(&reset).map(|r| r.reset), Some(true));
        // Words alone are not a refusal.
        let words = std::io::Error::other("received fatal alert: CertificateRequired");
        assert_eq!(Refusal::of(&words), None);
    }

    /// What a reload does to a request (reset, closed) is a connection
    /// failure; a TLS alert is the server's answer, never one.
    #[test]
    fn connection_failures_are_read_from_the_error_types() {
        let kind = |k: std::io::ErrorKind| ConnectionFailure::of(&std::io::Error::from(k));
        assert_eq!(
            kind(std::io::ErrorKind::ConnectionRefused),
            Some(ConnectionFailure::Refused)
        );
        assert_eq!(
            kind(std::io::ErrorKind::ConnectionReset),
            Some(ConnectionFailure::Dropped)
        );
        assert_eq!(
            kind(std::io::ErrorKind::UnexpectedEof),
            Some(ConnectionFailure::Dropped)
        );
        assert_eq!(kind(std::io::ErrorKind::TimedOut), None);
        let alert = std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired),
        );
        assert_eq!(ConnectionFailure::of(&alert), None);
        let words = std::io::Error::other("connection reset by peer");
        assert_eq!(ConnectionFailure::of(&words), None);
    }

    #[test]
    fn cluster_names_resolve_like_a_pod() {
        let mut map = ServiceMap::default();
        let addr: SocketAddr = "127.0.0.1:4000".parse().expect("addr");
        map.insert("ai-gateway", "ollama", 11434, addr);
        assert_eq!(map.lookup("ollama", 11434, "ai-gateway"), Some(addr));
        assert_eq!(map.lookup("ollama.ai-gateway", 11434, "other"), Some(addr));
        assert_eq!(
            map.lookup("ollama.ai-gateway.svc.cluster.local", 11434, "x"),
            Some(addr)
        );
        assert_eq!(map.lookup("ollama", 11434, "other"), None);
        assert_eq!(map.lookup("ollama.ai-gateway", 80, "ai-gateway"), None);
        assert_eq!(map.lookup("example.com", 11434, "ai-gateway"), None);
    }
}
