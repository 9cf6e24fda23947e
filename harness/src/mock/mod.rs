//! Our stand-ins for the components behind NGINX: the F5 AI Gateway, Ollama and
//! Open `WebUI`. The same code runs as `mtls-e2e serve ...` in a container (kind)
//! and in-process on the local substrate.

pub(crate) mod aigw;
pub(crate) mod ollama;
pub(crate) mod tls;
pub(crate) mod webui;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::net::Resolver;

#[derive(Debug, thiserror::Error)]
#[error("{component}: {message}")]
pub(crate) struct MockError {
    pub component: &'static str,
    pub message: String,
}

/// `mtls-e2e serve <component>` arguments (also parsed from a Deployment's `args`).
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ServeArgs {
    /// The F5 AI Gateway stand-in, configured by F5's aigw.yaml.
    Aigw {
        /// Path to aigw.yaml.
        #[arg(long)]
        config: String,
    },
    /// The Ollama stand-in (/api/chat).
    Ollama {
        #[arg(long, default_value = ":11434")]
        listen: String,
    },
    /// The Open `WebUI` stand-in.
    Webui {
        #[arg(long, default_value = ":8080")]
        listen: String,
    },
}

/// A container's `command` + `args` for our image: `serve <component> ...`.
#[derive(Debug, clap::Parser)]
#[command(name = "mtls-e2e", no_binary_name = true)]
struct ContainerArgs {
    #[command(subcommand)]
    command: ContainerCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ContainerCommand {
    Serve {
        #[command(subcommand)]
        what: ServeArgs,
    },
}

/// Parse a Deployment container's arguments the way the binary parses its own.
pub(crate) fn parse_container_args(args: &[String]) -> Result<ServeArgs, String> {
    use clap::Parser;
    let words = match args.first().map(String::as_str) {
        Some("mtls-e2e" | "/mtls-e2e") => &args[1..],
        _ => args,
    };
    ContainerArgs::try_parse_from(words)
        .map(|a| match a.command {
            ContainerCommand::Serve { what } => what,
        })
        .map_err(|e| {
            e.to_string()
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .to_string()
        })
}

impl ServeArgs {
    pub(crate) fn component(&self) -> &'static str {
        match self {
            ServeArgs::Aigw { .. } => "aigw",
            ServeArgs::Ollama { .. } => "ollama",
            ServeArgs::Webui { .. } => "webui",
        }
    }
}

/// Where a mock writes its request log.
#[derive(Clone)]
pub(crate) enum LogSink {
    Stdout,
    File(Arc<Mutex<std::fs::File>>),
}

impl LogSink {
    pub(crate) fn line(&self, component: &str, text: &str) {
        let stamp = time::OffsetDateTime::now_utc();
        let line = format!("{stamp} {component}: {text}\n");
        match self {
            LogSink::Stdout => {
                // Not print!: a closed stdout must not panic a connection's task.
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(line.as_bytes());
                let _ = out.flush();
            }
            LogSink::File(file) => {
                if let Ok(mut f) = file.lock() {
                    let _ = f.write_all(line.as_bytes());
                }
            }
        }
    }
}

/// What a mock needs from where it runs.
#[derive(Clone)]
pub(crate) struct MockContext {
    /// Absolute paths in arguments and config are read under this folder
    /// (`/` in a container; a pod's materialised volumes on the local substrate).
    pub root: PathBuf,
    pub env: BTreeMap<String, String>,
    pub resolver: Resolver,
    pub log: LogSink,
}

impl MockContext {
    /// The file a container would see at `path`.
    pub(crate) fn path(&self, path: &str) -> PathBuf {
        match path.strip_prefix('/') {
            Some(rest) => self.root.join(rest),
            None => self.root.join(path),
        }
    }

    pub(crate) fn read(&self, component: &'static str, path: &str) -> Result<Vec<u8>, MockError> {
        std::fs::read(self.path(path)).map_err(|e| MockError {
            component,
            message: format!("cannot read {path}: {e}"),
        })
    }
}

/// The application behind a listener.
#[derive(Clone)]
enum App {
    Aigw(Arc<aigw::Gateway>),
    Ollama(Arc<ollama::Ollama>),
    WebUi(Arc<webui::WebUi>),
}

/// What the server learnt about the client at the TLS layer.
#[derive(Debug, Clone, Default)]
pub(crate) struct Peer {
    pub client_subject: Option<String>,
}

/// A configured mock, ready to serve on a listener.
pub(crate) struct Mock {
    pub component: &'static str,
    /// The port it is configured to listen on (what a Service's targetPort names).
    pub port: u16,
    /// The address `--listen` names (`:4141` is every interface, as in Go).
    address: SocketAddr,
    app: App,
    tls: Option<Arc<rustls::ServerConfig>>,
    log: LogSink,
}

impl Mock {
    pub(crate) fn new(args: &ServeArgs, ctx: &MockContext) -> Result<Mock, MockError> {
        let component = args.component();
        let (app, listen, tls) = match args {
            ServeArgs::Aigw { config } => {
                let gateway = aigw::Gateway::load(config, ctx)?;
                let listen = gateway.address().to_string();
                let tls = gateway.tls_config(ctx)?;
                (App::Aigw(Arc::new(gateway)), listen, tls)
            }
            ServeArgs::Ollama { listen } => (
                App::Ollama(Arc::new(ollama::Ollama::new(ctx))),
                listen.clone(),
                None,
            ),
            ServeArgs::Webui { listen } => (
                App::WebUi(Arc::new(webui::WebUi::new(ctx))),
                listen.clone(),
                None,
            ),
        };
        let address =
            listen_address(&listen).map_err(|message| MockError { component, message })?;
        let port = address.port();
        Ok(Mock {
            component,
            port,
            address,
            app,
            tls,
            log: ctx.log.clone(),
        })
    }

    /// The address to bind inside a container: what `--listen` names, every
    /// interface for `:4141`.
    pub(crate) fn container_address(&self) -> SocketAddr {
        self.address
    }

    /// Serve until the task is dropped.
    pub(crate) async fn serve(self, listener: TcpListener) {
        let Mock {
            component,
            app,
            tls,
            log,
            ..
        } = self;
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        // At most this many connections at once; past that, accepting waits
        // until one ends (each is bounded by the timeouts below).
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let (stream, addr) = match listener.accept().await {
                Ok(pair) => pair,
                Err(e) => {
                    log.line(component, &format!("accept failed: {e}"));
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (app, acceptor, log) = (app.clone(), acceptor.clone(), log.clone());
            tokio::spawn(async move {
                let _slot = slot;
                match acceptor {
                    None => serve_http(stream, app, Peer::default(), log, component).await,
                    Some(_) if looks_like_http(&stream).await => {
                        // What Go's net/http answers on a TLS port (the F5 gateway is Go).
                        log.line(
                            component,
                            &format!("plain HTTP from {addr} on the TLS port: 400"),
                        );
                        refuse_plain_http(stream).await;
                    }
                    Some(acceptor) => {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                        {
                            Ok(Ok(tls_stream)) => {
                                let peer = peer_of(tls_stream.get_ref().1);
                                serve_http(tls_stream, app, peer, log, component).await;
                            }
                            Ok(Err(e)) => log.line(
                                component,
                                &format!("TLS handshake with {addr} failed: {e}"),
                            ),
                            Err(_) => log.line(
                                component,
                                &format!("TLS handshake with {addr} took over {HANDSHAKE_TIMEOUT:?}; closed"),
                            ),
                        }
                    }
                }
            });
        }
    }
}

/// Go's `net/http` reply to a plain HTTP request on a TLS listener.
pub(crate) const GO_PLAIN_HTTP_ON_TLS_PORT: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// Answer a plain HTTP request with Go's 400. The request head is read first and
/// the connection closed gracefully, so the answer cannot be lost to a TCP reset
/// (Go closes with the request unread, which makes the same answer racy).
async fn refuse_plain_http(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    let read_head = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), read_head).await;
    let _ = stream.write_all(GO_PLAIN_HTTP_ON_TLS_PORT).await;
    let _ = stream.shutdown().await;
    // Drain until the client closes (bounded), then drop.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Go's `tlsRecordHeaderLooksLikeHTTP`: the first five bytes of the connection.
async fn looks_like_http(stream: &tokio::net::TcpStream) -> bool {
    let mut head = [0u8; 5];
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match stream.peek(&mut head).await {
                Ok(n) if n >= 5 => return true,
                Ok(0) | Err(_) => return false,
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(1)).await,
            }
        }
    })
    .await;
    read.unwrap_or(false) && matches!(&head, b"GET /" | b"HEAD " | b"POST " | b"PUT /" | b"OPTIO")
}

fn peer_of(conn: &rustls::ServerConnection) -> Peer {
    let client_subject = conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| crate::pki::CertInfo::from_der(leaf).ok())
        .map(|info| info.subject);
    Peer { client_subject }
}

async fn serve_http<S>(stream: S, app: App, peer: Peer, log: LogSink, component: &'static str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let (app, peer, log) = (app.clone(), peer.clone(), log.clone());
        async move {
            // NIC sets X-Real-IP to the client's address: with one loopback
            // address per probe, it names the request in the failure evidence.
            let line = format!(
                "{} {}{}",
                request.method(),
                request.uri(),
                request
                    .headers()
                    .get("x-real-ip")
                    .and_then(|v| v.to_str().ok())
                    .map(|ip| format!(" for={ip}"))
                    .unwrap_or_default()
            );
            let response = match &app {
                App::Aigw(g) => g.handle(request, &peer).await,
                App::Ollama(o) => o.handle(request).await,
                App::WebUi(w) => w.handle(request).await,
            };
            let who = peer
                .client_subject
                .as_deref()
                .map(|s| format!(" client=\"{s}\""))
                .unwrap_or_default();
            log.line(
                component,
                &format!("{line} -> {}{who}", response.status().as_u16()),
            );
            Ok::<_, Infallible>(response)
        }
    });
    // A request head must arrive within the timeout, also between requests
    // on a kept-alive connection, so idle and slow clients are let go.
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// Connections a mock serves at once.
pub(crate) const MAX_CONNECTIONS: usize = 256;
/// Time a client gets to complete the TLS handshake.
pub(crate) const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Time a client gets to send a request head (and to start the next one).
pub(crate) const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// `:8080` (every interface), `8080`, `127.0.0.1:8080` or `[::1]:8080`.
pub(crate) fn listen_address(listen: &str) -> Result<SocketAddr, String> {
    let bad = || format!("`{listen}` is not a listen address like :8080 or 127.0.0.1:8080");
    match listen.rsplit_once(':') {
        None | Some(("", _)) => {
            let port = listen_port(listen)?;
            Ok(SocketAddr::from(([0, 0, 0, 0], port)))
        }
        Some(_) => listen.parse().map_err(|_| bad()),
    }
}

/// `:8080`, `0.0.0.0:8080` or `8080` → 8080.
pub(crate) fn listen_port(listen: &str) -> Result<u16, String> {
    let port = listen.rsplit_once(':').map_or(listen, |(_, p)| p);
    port.parse()
        .map_err(|_| format!("`{listen}` is not a listen address like :8080"))
}

pub(crate) fn json_response(
    status: u16,
    value: &serde_json::Value,
) -> hyper::Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
}

pub(crate) fn text_response(
    status: u16,
    content_type: &str,
    body: impl Into<Bytes>,
) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
}

/// An OpenAI-style error body.
pub(crate) fn openai_error(
    status: u16,
    kind: &str,
    code: &str,
    message: &str,
) -> hyper::Response<Full<Bytes>> {
    json_response(
        status,
        &serde_json::json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
    )
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Run a mock as this process (`mtls-e2e serve ...` in a container).
pub(crate) async fn serve_standalone(args: &ServeArgs) -> Result<(), MockError> {
    let ctx = MockContext {
        root: PathBuf::from("/"),
        env: std::env::vars().collect(),
        resolver: Resolver::System,
        log: LogSink::Stdout,
    };
    let mock = Mock::new(args, &ctx)?;
    let component = mock.component;
    let address = mock.container_address();
    let listener = TcpListener::bind(address).await.map_err(|e| MockError {
        component,
        message: format!("cannot listen on {address}: {e}"),
    })?;
    let bound = listener.local_addr().unwrap_or(address);
    ctx.log.line(component, &format!("listening on {bound}"));
    mock.serve(listener).await;
    Ok(())
}
