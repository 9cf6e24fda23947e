//! HTTP/1.1 over any stream, and name resolution for cluster DNS names.
//!
//! One request per connection: probes want a fresh TLS handshake each time (no
//! resumption hiding a missing client certificate), and the mocks are tiny.

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
pub const BODY_LIMIT: usize = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Http(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Bytes,
}

/// Send one request over `stream` and read the whole response.
pub async fn send<S>(stream: S, request: hyper::Request<Full<Bytes>>) -> Result<Response, NetError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| NetError::Http(error_chain(&e)))?;
    let mut driver = tokio::spawn(connection);
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| NetError::Http(error_chain(&e)))?;
        read_response(response).await
    }
    .await;
    if let Err(NetError::Http(message)) = &result {
        // The connection may have died first (a TLS 1.3 server's alert after the
        // handshake arrives on the read side): its error is the real cause.
        if let Ok(Ok(Err(e))) = tokio::time::timeout(Duration::from_millis(200), &mut driver).await
        {
            driver.abort();
            return Err(NetError::Http(format!("{} <- {message}", error_chain(&e))));
        }
    }
    driver.abort();
    result
}

pub async fn read_response(response: hyper::Response<Incoming>) -> Result<Response, NetError> {
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
pub async fn read_body(body: Incoming) -> Result<Bytes, String> {
    Limited::new(body, BODY_LIMIT)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| e.to_string())
}

/// An error and its causes on one line (`a <- b <- c`), for reports.
pub fn error_chain(error: &dyn std::error::Error) -> String {
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
    entries: BTreeMap<(String, String, u16), SocketAddr>,
}

impl ServiceMap {
    pub fn insert(&mut self, namespace: &str, service: &str, port: u16, addr: SocketAddr) {
        self.entries
            .insert((namespace.into(), service.into(), port), addr);
    }

    pub fn get(&self, namespace: &str, service: &str, port: u16) -> Option<SocketAddr> {
        self.entries
            .get(&(namespace.into(), service.into(), port))
            .copied()
    }

    /// Resolve `svc`, `svc.ns`, `svc.ns.svc` or `svc.ns.svc.cluster.local`, as a
    /// pod in `search_namespace` would.
    pub fn lookup(&self, host: &str, port: u16, search_namespace: &str) -> Option<SocketAddr> {
        let trimmed = host
            .strip_suffix(".svc.cluster.local")
            .or_else(|| host.strip_suffix(".svc"))
            .unwrap_or(host);
        let (service, namespace) = match trimmed.split_once('.') {
            Some((s, ns)) if !ns.contains('.') => (s, ns),
            Some(_) => return None,
            None => (trimmed, search_namespace),
        };
        self.get(namespace, service, port)
    }
}

/// How a component finds the hosts it calls.
#[derive(Debug, Clone)]
pub enum Resolver {
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
    pub async fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, NetError> {
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
pub struct HttpUrl {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// `host:port` as written (the Host header).
    pub authority: String,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    pub fn parse(text: &str) -> Result<HttpUrl, String> {
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
pub fn host_port(
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
pub async fn http_call(
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
