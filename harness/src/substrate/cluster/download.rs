//! Downloads pinned by sha256, kept in the user's cache. A file already in the
//! cache with the right digest is used as is, so a machine without internet
//! works once the files are placed there (the plan prints each path).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use tracing::Instrument;

use super::ClusterError;
use crate::net::{self, HttpUrl};

/// A file the kind substrate needs, pinned.
#[derive(Debug, Clone, PartialEq)]
pub struct Download {
    pub url: String,
    pub sha256: &'static str,
    pub size: u64,
    /// Short name, also the end of the cache file's name.
    pub name: String,
}

impl Download {
    /// Where the verified file lives in `cache`.
    #[must_use]
    pub fn cached(&self, cache: &Path) -> PathBuf {
        cache
            .join("downloads")
            .join(format!("{}-{}", &self.sha256[..16], self.name))
    }
}

/// The SHA-256 of `bytes`, in lowercase hex.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The verified file's bytes from the cache alone: `None` when it is not
/// there. A file there with another digest is refused, never used.
///
/// # Errors
///
/// [`ClusterError::Failed`] when the cached file cannot be read or does not
/// match its pinned sha256 (the message says how to replace it).
pub fn read_cached(download: &Download, cache: &Path) -> Result<Option<Vec<u8>>, ClusterError> {
    let path = download.cached(cache);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ClusterError::Failed(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    let got = sha256_hex(&bytes);
    if got != download.sha256 {
        return Err(ClusterError::Failed(format!(
            "{} has sha256 {got}, not the pinned {} of {}; delete it and run `mtls-e2e download`, which fetches the pinned file again",
            path.display(),
            download.sha256,
            download.url
        )));
    }
    Ok(Some(bytes))
}

/// The verified file's bytes: from the cache, or downloaded, verified and cached.
pub(crate) async fn fetch(download: &Download, cache: &Path) -> Result<Vec<u8>, ClusterError> {
    let path = download.cached(cache);
    if let Ok(bytes) = std::fs::read(&path) {
        if sha256_hex(&bytes) == download.sha256 {
            return Ok(bytes);
        }
        tracing::info!(
            "{} in the cache does not match its sha256; downloading it again",
            path.display()
        );
    }
    let span = tracing::info_span!(
        "download",
        what = download.name.as_str(),
        total = download.size
    );
    download_into(download, cache, &path).instrument(span).await
}

async fn download_into(
    download: &Download,
    cache: &Path,
    path: &Path,
) -> Result<Vec<u8>, ClusterError> {
    tracing::info!(
        "downloading {} ({} KiB)",
        download.url,
        download.size / 1024
    );
    let started = std::time::Instant::now();
    let bytes = get(&download.url).await?;
    tracing::debug!(
        bytes = bytes.len(),
        elapsed_s = started.elapsed().as_secs(),
        "downloaded"
    );
    let got = sha256_hex(&bytes);
    if got != download.sha256 {
        return Err(ClusterError::Failed(format!(
            "{} has sha256 {got} ({} bytes), not the pinned {} ({} bytes); nothing was installed. \
             If the upstream file really changed, review it and update the pin in harness/src/substrate/cluster/install.rs",
            download.url,
            bytes.len(),
            download.sha256,
            download.size
        )));
    }
    let dir = path.parent().unwrap_or(cache);
    std::fs::create_dir_all(dir)
        .map_err(|e| ClusterError::Failed(format!("cannot create {}: {e}", dir.display())))?;
    // Write beside, then rename: a killed run never leaves a half file under the final name.
    let partial = dir.join(format!(".{}.partial-{}", download.name, std::process::id()));
    std::fs::write(&partial, &bytes)
        .map_err(|e| ClusterError::Failed(format!("cannot write {}: {e}", partial.display())))?;
    std::fs::rename(&partial, path)
        .map_err(|e| ClusterError::Failed(format!("cannot write {}: {e}", path.display())))?;
    Ok(bytes)
}

fn web_roots() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(
                    "no trusted CA certificates found on this machine (install ca-certificates)"
                        .into(),
                );
            }
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
}

/// GET `url`, following up to five redirects (GitHub release assets redirect).
pub(crate) async fn get(url: &str) -> Result<Vec<u8>, ClusterError> {
    let mut current = url.to_string();
    for _ in 0..6 {
        let answer = get_once(&current)
            .await
            .map_err(|e| ClusterError::Failed(format!("downloading {current}: {e}")))?;
        match answer {
            Answer::Body(bytes) => return Ok(bytes),
            Answer::Redirect(None) => {
                return Err(ClusterError::Failed(format!(
                    "{current}: redirect without a location"
                )));
            }
            Answer::Redirect(Some(location)) => {
                current = if location.starts_with('/') {
                    let u = HttpUrl::parse(&current).map_err(ClusterError::Failed)?;
                    let scheme = if u.https { "https" } else { "http" };
                    format!("{scheme}://{}{location}", u.authority)
                } else {
                    location
                };
            }
            Answer::Status(status) => {
                return Err(ClusterError::Failed(format!(
                    "downloading {current}: HTTP {status}"
                )));
            }
        }
    }
    Err(ClusterError::Failed(format!(
        "downloading {url}: too many redirects"
    )))
}

/// What one GET gave.
enum Answer {
    Body(Vec<u8>),
    /// A redirect, with its `location` if it has one.
    Redirect(Option<String>),
    Status(u16),
}

async fn get_once(url: &str) -> Result<Answer, String> {
    // http and https only, with a host and a port that reads.
    HttpUrl::parse(url)?;
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_connect_timeout(Some(Duration::from_secs(30)));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(web_roots()?.as_ref().clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(connector);
    let request = hyper::Request::get(uri)
        .header(
            "user-agent",
            concat!("mtls-e2e/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| net::error_chain(&e))?;
        Ok(match response.status().as_u16() {
            200 => Answer::Body(read_counted(response.into_body()).await?),
            301 | 302 | 303 | 307 | 308 => Answer::Redirect(
                response
                    .headers()
                    .get("location")
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).to_string()),
            ),
            status => Answer::Status(status),
        })
    };
    tokio::time::timeout(Duration::from_secs(120), exchange)
        .await
        .map_err(|_| "timed out after 120 s".to_string())?
}

/// The body, read as it arrives: each piece is a `bytes` event (what a
/// download's live line shows), within the body size limit.
async fn read_counted(mut body: hyper::body::Incoming) -> Result<Vec<u8>, String> {
    use http_body_util::BodyExt;
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("reading the body: {}", net::error_chain(&e)))?;
        if let Ok(data) = frame.into_data() {
            bytes.extend_from_slice(&data);
            if bytes.len() > net::BODY_LIMIT {
                return Err(format!("the body is larger than {} bytes", net::BODY_LIMIT));
            }
            tracing::trace!(bytes = bytes.len(), "received");
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let u = HttpUrl::parse(
            "https://raw.githubusercontent.com/nginx/kubernetes-ingress/v5.5.4/deploy/crds.yaml",
        )
        .expect("url");
        assert!(u.https);
        assert_eq!(
            (u.host.as_str(), u.port),
            ("raw.githubusercontent.com", 443)
        );
        assert_eq!(u.path, "/nginx/kubernetes-ingress/v5.5.4/deploy/crds.yaml");
        let u = HttpUrl::parse("http://127.0.0.1:8080").expect("url");
        assert_eq!((u.port, u.path.as_str()), (8080, "/"));
        assert!(HttpUrl::parse("ftp://x/y").is_err());
        assert!(HttpUrl::parse("http://x:99999/y").is_err());
    }

    /// A loopback server that redirects once, then serves `body`.
    async fn serve(body: &'static [u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).to_string();
                let reply = if request.starts_with("GET /start") {
                    "HTTP/1.1 302 Found\r\nlocation: /file\r\ncontent-length: 0\r\n\r\n"
                        .as_bytes()
                        .to_vec()
                } else {
                    let mut r =
                        format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len())
                            .into_bytes();
                    r.extend_from_slice(body);
                    r
                };
                let _ = conn.write_all(&reply).await;
            }
        });
        format!("http://{addr}/start")
    }

    /// The cache alone, as the tests read the CRD schemas: a file with the
    /// pinned digest is used, none is `None`, any other content is refused.
    #[test]
    fn the_cache_gives_only_files_with_the_pinned_digest() {
        let cache = tempfile::tempdir().expect("tempdir");
        let body = b"kind: CustomResourceDefinition\n";
        let digest: &'static str = Box::leak(sha256_hex(body).into_boxed_str());
        let pinned = Download {
            url: "https://example.invalid/crds.yaml".into(),
            sha256: digest,
            size: body.len() as u64,
            name: "crds.yaml".into(),
        };
        assert!(matches!(read_cached(&pinned, cache.path()), Ok(None)));
        let path = pinned.cached(cache.path());
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, body).expect("write");
        assert_eq!(
            read_cached(&pinned, cache.path()).expect("verified"),
            Some(body.to_vec())
        );
        std::fs::write(&path, b"kind: Something else\n").expect("write");
        let refused = read_cached(&pinned, cache.path()).expect_err("another digest");
        let text = refused.to_string();
        assert!(
            text.contains(digest) && text.contains("mtls-e2e download"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_verified_file_is_cached_and_a_wrong_digest_leaves_nothing() {
        let cache = tempfile::tempdir().expect("tempdir");
        let url = serve(b"kind: Namespace\n").await;
        let good = Download {
            url: url.clone(),
            sha256: "0000000000000000000000000000000000000000000000000000000000000000",
            size: 16,
            name: "ns.yaml".into(),
        };
        let err = fetch(&good, cache.path())
            .await
            .expect_err("digest mismatch");
        assert!(
            err.to_string().contains(&sha256_hex(b"kind: Namespace\n")),
            "{err}"
        );
        assert!(!good.cached(cache.path()).exists());
        let digest: &'static str = Box::leak(sha256_hex(b"kind: Namespace\n").into_boxed_str());
        let right = Download {
            sha256: digest,
            ..good
        };
        assert_eq!(
            fetch(&right, cache.path()).await.expect("fetch"),
            b"kind: Namespace\n"
        );
        assert!(right.cached(cache.path()).is_file());
        // Served from the cache now, even with the server gone.
        let offline = Download {
            url: "http://127.0.0.1:1/gone".into(),
            ..right
        };
        assert_eq!(
            fetch(&offline, cache.path()).await.expect("cached"),
            b"kind: Namespace\n"
        );
        let leftovers: Vec<_> = std::fs::read_dir(cache.path().join("downloads"))
            .expect("dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("partial"))
            .collect();
        assert!(leftovers.is_empty());
    }

    /// A download is a `download` span with the file and its pinned size, and
    /// says how many bytes have arrived as they do (what its live line shows).
    #[tokio::test]
    async fn a_download_says_its_bytes_as_they_arrive() {
        let cache = tempfile::tempdir().expect("tempdir");
        let body: &'static [u8] = b"kind: Namespace\n";
        let url = serve(body).await;
        let digest: &'static str = Box::leak(sha256_hex(body).into_boxed_str());
        let pinned = Download {
            url,
            sha256: digest,
            size: 16,
            name: "ns.yaml".into(),
        };
        let (said, _logging) = super::super::captured_logs(tracing::Level::TRACE);
        fetch(&pinned, cache.path()).await.expect("fetch");
        let said = said.text();
        assert!(
            said.contains("download{what=\"ns.yaml\" total=16}: downloading http://"),
            "{said}"
        );
        assert!(
            said.contains("download{what=\"ns.yaml\" total=16}: received bytes=16"),
            "{said}"
        );
        assert!(said.contains("downloaded bytes=16"), "{said}");
    }
}
