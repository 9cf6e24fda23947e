//! The checks a host's configuration implies, each with why it expects what it
//! expects. The answers follow the configuration NIC rendered (read back with
//! the same analysis `plan` and the hazard finder use) and what nginx does with
//! it: client verification before anything else (400 for a missing or bad
//! certificate under `on`), the rewrite phase's `return`s, then the upstream:
//! our stand-ins, whose answers and TLS needs are known.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::world::World;
use crate::manifest::Kind;
use crate::mock::ServeArgs;
use crate::pki::CertInfo;
use crate::substrate::local::nic::routing::{Access, Egress, Return, Route};

/// A client certificate a probe can present, as the derivation classes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Client {
    None,
    /// Issued by the client CA (`ca`: its subject): a Secret of the manifests
    /// (`secret`, whose usages nginx checks), or one the harness issues.
    Good {
        ca: String,
        secret: Option<String>,
    },
    OtherCa,
    Expired,
    NotYetValid,
    ViaIntermediate,
}

/// Where nginx decides a request's answer, in the order it gets there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    /// Which server takes it (the default server, a refused handshake).
    Server,
    /// The client certificate's verification.
    Verification,
    /// The rewrite phase's `return`s, the server's then the location's.
    Rewrite,
    /// `allow`/`deny`.
    Access,
    /// The upstream: NGINX's exchange with it, and its answer.
    Upstream,
}

/// What a request gets.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    Http {
        status: u16,
        expect: Vec<(String, Value)>,
        why: String,
        /// The upstream TLS handshake fails (a 502 another route's session could mask).
        egress_fails: bool,
        stage: Stage,
    },
    Rejected {
        alert: String,
        why: String,
    },
    /// No prediction: why.
    Unknown(String),
}

fn http(status: u16, expect: Vec<(&str, Value)>, why: String) -> Answer {
    let mut all = vec![("status".to_string(), json!(status))];
    all.extend(expect.into_iter().map(|(k, v)| (k.to_string(), v)));
    Answer::Http {
        status,
        expect: all,
        why,
        egress_fails: false,
        stage: Stage::Upstream,
    }
}

impl Answer {
    /// An HTTP answer with `first` said before its own why (what let the
    /// request through to it); any other answer as it is.
    fn after(self, first: Option<String>) -> Answer {
        match (first, self) {
            (
                Some(first),
                Answer::Http {
                    status,
                    expect,
                    why,
                    egress_fails,
                    stage,
                },
            ) => Answer::Http {
                status,
                expect,
                why: format!("{first}; {why}"),
                egress_fails,
                stage,
            },
            (_, answer) => answer,
        }
    }

    /// The answer, decided at `at`.
    fn at(mut self, at: Stage) -> Answer {
        if let Answer::Http { stage, .. } = &mut self {
            *stage = at;
        }
        self
    }
}

const NO_CERT: &str = "No required SSL certificate was sent";
const BAD_CERT: &str = "The SSL certificate error";

/// The client verification nginx does before the request reaches any phase.
struct Verification {
    mode: String,
    depth: i64,
}

fn verification(route: &Route) -> Option<Verification> {
    let settings = &route.server_rules.ssl_settings;
    let mode = settings.get("ssl_verify_client")?.clone();
    if mode == "off" {
        return None;
    }
    Some(Verification {
        mode,
        depth: settings
            .get("ssl_verify_depth")
            .and_then(|d| d.parse().ok())
            .unwrap_or(1),
    })
}

/// The extended key usages a certificate must allow for one job.
pub(crate) const CLIENT_AUTH: &str = "TLS Web Client Authentication";
pub(crate) const SERVER_AUTH: &str = "TLS Web Server Authentication";

/// OpenSSL's purpose check: no extended key usage allows every job; a list
/// must name this one.
pub(crate) fn allows(cert: &CertInfo, usage: &str) -> bool {
    cert.ext_key_usages.is_empty() || cert.ext_key_usages.iter().any(|u| u == usage)
}

/// The leaf of a Secret's `tls.crt`, when it does not allow `usage`.
fn refused_usage(world: &World, secret: &str, usage: &str) -> Option<String> {
    let leaf = world.certs(secret, "tls.crt").into_iter().next()?;
    (!allows(&leaf, usage)).then(|| {
        format!(
            "the certificate of Secret {secret} is for {} only, not {usage}",
            leaf.ext_key_usages.join(", ")
        )
    })
}

/// nginx's verdict on `client` (`ngx_http_process_request`): `Err` is the
/// 400. `refused_usage`: why the client's certificate is not for client
/// authentication, if it is not.
fn verdict(
    v: &Verification,
    client: &Client,
    client_cas: &[String],
    refused_usage: Option<&str>,
) -> Result<(), Answer> {
    let mode = v.mode.as_str();
    let bad = |why: String| Err(http(400, vec![("bodyContains", json!(BAD_CERT))], why));
    // OpenSSL verifies a client certificate for the purpose "SSL client";
    // optional_no_ca forgives only an unknown issuer, not this.
    if client != &Client::None
        && let Some(why) = refused_usage
    {
        return bad(format!(
            "ssl_verify_client {mode}: {why}, so verification fails"
        ));
    }
    match client {
        Client::None if mode == "on" => Err(http(
            400,
            vec![("bodyContains", json!(NO_CERT))],
            "ssl_verify_client on: a request without a certificate gets nginx's 400".into(),
        )),
        Client::None => Ok(()),
        Client::Good { ca, .. } if client_cas.contains(ca) => Ok(()),
        Client::Good { .. } => bad("the certificate's CA is not in ssl_client_certificate".into()),
        Client::ViaIntermediate if v.depth >= 1 => Ok(()),
        Client::ViaIntermediate => bad(format!(
            "ssl_verify_depth {}: OpenSSL counts intermediates, and this chain has one",
            v.depth
        )),
        // optional_no_ca lets "unable to get issuer" through (ngx_ssl_verify_error_optional).
        Client::OtherCa if mode == "optional_no_ca" => Ok(()),
        Client::OtherCa => bad(format!(
            "ssl_verify_client {mode}: a certificate from a CA nginx does not trust gets its 400"
        )),
        Client::Expired | Client::NotYetValid => bad(format!(
            "ssl_verify_client {mode}: the trusted CA signed it, but a certificate outside its validity fails verification{}",
            if mode == "optional_no_ca" {
                " (optional_no_ca forgives only an unknown issuer)"
            } else {
                ""
            }
        )),
    }
}

/// The address blocks reserved for documentation (RFC 5737, RFC 3849): no
/// client on any substrate has one.
const DOCUMENTATION: [&str; 4] = [
    "192.0.2.0/24",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "2001:db8::/32",
];

/// An `allow`/`deny` address that only documentation addresses fall in.
fn documentation_only(address: &str) -> bool {
    let net = address
        .parse::<ipnet::IpNet>()
        .or_else(|_| address.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
    net.is_ok_and(|net| {
        DOCUMENTATION
            .iter()
            .filter_map(|d| d.parse::<ipnet::IpNet>().ok())
            .any(|d| d.contains(&net))
    })
}

/// nginx's access phase (`ngx_http_access_module`: the first rule that
/// matches decides, none lets the request through) for a client whose address
/// is unknown but never a documentation one: `Ok` with why it passes, `Err`
/// the 403, or no prediction when a rule names an address a client may have.
fn access(rules: &[Access]) -> Result<Option<String>, Answer> {
    let mut unmatched: Vec<String> = Vec::new();
    let names = |unmatched: &[String]| {
        format!(
            "`{}` name{} only documentation addresses (RFC 5737, RFC 3849), which no client has",
            unmatched.join("; "),
            if unmatched.len() == 1 { "s" } else { "" }
        )
    };
    for rule in rules {
        let verb = if rule.allow { "allow" } else { "deny" };
        if rule.address == "all" {
            let before = if unmatched.is_empty() {
                String::new()
            } else {
                format!("{}, then ", names(&unmatched))
            };
            return if rule.allow {
                Ok(Some(format!(
                    "accessControl: {before}`allow all` lets the request through"
                )))
            } else {
                Err(http(
                    403,
                    vec![("bodyContains", json!("403 Forbidden"))],
                    format!("accessControl: {before}`deny all`: nginx answers 403"),
                ))
            };
        }
        if !documentation_only(&rule.address) {
            return Err(Answer::Unknown(format!(
                "accessControl `{verb} {}` decides by the client's address, which differs on each substrate",
                rule.address
            )));
        }
        unmatched.push(format!("{verb} {}", rule.address));
    }
    Ok((!unmatched.is_empty()).then(|| {
        format!(
            "accessControl: {}, and no rule matches: nginx lets the request through",
            names(&unmatched)
        )
    }))
}

fn rewrite(returns: &[Return], tls: bool, host: &str, path: &str, scope: &str) -> Option<Answer> {
    let r = returns.iter().find(|r| !r.plain_only || !tls)?;
    let why = format!(
        "the {scope} `return {}`{}",
        r.code,
        if r.plain_only { " for plain HTTP" } else { "" }
    );
    Some(match &r.target {
        Some(target) => {
            let location = target.replace("$host", host).replace("$request_uri", path);
            http(
                r.code,
                vec![("headers", json!({"location": location}))],
                why,
            )
        }
        None if r.code == 500 => http(
            500,
            vec![("bodyContains", json!("500 Internal Server Error"))],
            format!("{why}: NIC's answer when a policy of this context fails"),
        ),
        None => http(r.code, vec![], why),
    })
}

/// A stand-in behind an upstream and what it needs.
enum Backend {
    Webui,
    Ollama,
    Aigw(Box<Gateway>),
}

struct Gateway {
    tls: bool,
    /// CA subjects the gateway verifies clients against (`None`: no mTLS).
    client_cas: Option<Vec<String>>,
    server: Option<CertInfo>,
    /// The Secret its server certificate is mounted from.
    server_secret: Option<String>,
    routes: Vec<(String, String)>,
}

fn gateway(
    world: &World,
    pod: &crate::substrate::local::pods::PodSpec,
    config: &str,
) -> Option<Gateway> {
    let (kind, key, item) = world.pod_file(pod, config)?;
    let text = String::from_utf8(world.data(kind, &key, &item)?).ok()?;
    let cfg: crate::mock::aigw::Config =
        crate::yaml::parse_one(&text, std::path::Path::new(&item)).ok()?;
    let file_certs = |path: &Option<String>| {
        let (kind, key, item) = world.pod_file(pod, path.as_deref()?)?;
        Some(super::world::certs_in(&world.data(kind, &key, &item)?))
    };
    let tls = cfg.server.tls.as_ref().is_some_and(|t| t.enabled);
    let server = cfg
        .server
        .tls
        .as_ref()
        .and_then(|t| file_certs(&t.server_cert_path))
        .and_then(|c| c.into_iter().next());
    let server_secret = cfg
        .server
        .tls
        .as_ref()
        .and_then(|t| world.pod_file(pod, t.server_cert_path.as_deref()?))
        .filter(|(kind, _, _)| *kind == Kind::Secret)
        .map(|(_, key, _)| key);
    let client_cas = cfg.server.mtls.as_ref().filter(|m| m.enabled).map(|m| {
        file_certs(&m.client_cert_path)
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.subject)
            .collect()
    });
    Some(Gateway {
        tls,
        client_cas,
        server,
        server_secret,
        routes: cfg
            .routes
            .iter()
            .map(|r| (r.path.clone(), r.schema.clone()))
            .collect(),
    })
}

fn backend_of(world: &World, egress: &Egress) -> Result<(Backend, String), String> {
    let servers = world
        .routing
        .upstream_servers(&egress.upstream)
        .unwrap_or_default();
    let Some((pod, service)) = servers.iter().find_map(|s| world.backend(s)) else {
        return Err(format!(
            "upstream {} has no endpoints (its Service is missing, is of type ExternalName, or selects no pod; `plan` shows NIC's reason)",
            egress.upstream
        ));
    };
    let backend = match &pod.args {
        ServeArgs::Webui { .. } => Backend::Webui,
        ServeArgs::Ollama { .. } => Backend::Ollama,
        ServeArgs::Aigw { config } => {
            Backend::Aigw(Box::new(gateway(world, pod, config).ok_or_else(|| {
                format!("the gateway behind {service} has a configuration init cannot read")
            })?))
        }
    };
    Ok((backend, service))
}

fn dns_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(rest) => name
            .split_once('.')
            .is_some_and(|(first, tail)| !first.is_empty() && tail.eq_ignore_ascii_case(rest)),
        None => pattern.eq_ignore_ascii_case(name),
    }
}

/// The certificate names `host` (its DNS SANs; the CN only when it has none,
/// as OpenSSL's host check does).
pub(crate) fn names_host(cert: &crate::pki::CertInfo, host: &str) -> bool {
    let dns: Vec<&str> = cert
        .sans
        .iter()
        .filter_map(|s| s.strip_prefix("DNS:"))
        .collect();
    if dns.is_empty() {
        return cert
            .subject
            .rsplit("CN = ")
            .next()
            .is_some_and(|cn| dns_matches(cn, host));
    }
    dns.iter().any(|d| dns_matches(d, host))
}

/// The name NGINX sends as SNI to the upstream, if any (`proxy_ssl_server_name`
/// on: `proxy_ssl_name`, whose default `$proxy_host` is the upstream's name).
fn sni(egress: &Egress) -> Option<String> {
    let setting = |k: &str| egress.ssl_settings.get(k).map(String::as_str);
    (setting("proxy_ssl_server_name") == Some("on")).then(|| checked_name(egress))
}

/// The name `proxy_ssl_verify` checks the upstream's certificate for.
fn checked_name(egress: &Egress) -> String {
    match egress
        .ssl_settings
        .get("proxy_ssl_name")
        .map_or("$proxy_host", String::as_str)
    {
        "$proxy_host" => egress.upstream.clone(),
        other => other.to_string(),
    }
}

/// The TLS session a request left behind on its upstream server, which the
/// next request through a location with `proxy_ssl_session_reuse on` resumes.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The location that made it, as its check's URL shows it.
    pub made_by: String,
    /// The egress it was made through.
    pub egress: Egress,
    /// Whether NGINX verified the upstream's certificate when it made it (the
    /// verification result a resumed session carries).
    pub verified: bool,
}

/// Why `egress` does not resume `session` (a fresh handshake follows), if it does not.
fn no_resumption(session: &Session, egress: &Egress) -> Option<String> {
    if !egress.session_reuse || !session.egress.session_reuse {
        return Some("proxy_ssl_session_reuse is off".into());
    }
    if session.egress.upstream != egress.upstream {
        return Some("another upstream".into());
    }
    let protocols = egress
        .ssl_settings
        .get("proxy_ssl_protocols")
        .map_or("TLSv1.2 TLSv1.3", String::as_str);
    if !protocols.split_whitespace().any(|p| p == "TLSv1.3") {
        return Some(format!(
            "the session is TLS 1.3 and this location's proxy_ssl_protocols are `{protocols}`"
        ));
    }
    // The gateway (rustls) resumes a session only for the name it was made for.
    if sni(egress) != sni(&session.egress) {
        return Some("this location sends another SNI than the session was made for".into());
    }
    None
}

/// Why NGINX's TLS exchange with the gateway fails, if it does, in the order
/// it happens: the protocol version (`ClientHello`), NGINX's verification of the
/// gateway's certificate (its chain and purpose, then `ngx_ssl_check_host`
/// once the handshake is done), then the gateway's verdict on NGINX's client
/// certificate, which arrives after that. A resumed `session` skips the chain,
/// purpose and client certificate, but not the name check.
fn egress_handshake(
    world: &World,
    egress: &Egress,
    gw: &Gateway,
    session: Option<&Session>,
) -> Option<String> {
    let setting = |k: &str| egress.ssl_settings.get(k).map(String::as_str);
    let resumed = session.filter(|s| no_resumption(s, egress).is_none());
    let verify = setting("proxy_ssl_verify") == Some("on");
    if let Some(session) = resumed {
        if verify && !session.verified {
            return Some(format!(
                "proxy_ssl_verify on: the session it resumes (from {}) was made without verifying the gateway",
                session.made_by
            ));
        }
    } else {
        let protocols = setting("proxy_ssl_protocols").unwrap_or("TLSv1.2 TLSv1.3");
        if !protocols.split_whitespace().any(|p| p == "TLSv1.3") {
            return Some(format!(
                "proxy_ssl_protocols is `{protocols}` (an egressMTLS Policy without `protocols` gets NIC's default), \
                 and the gateway speaks TLS 1.3 only"
            ));
        }
        if verify && let Some(server) = &gw.server {
            let trusted: Vec<String> = setting("proxy_ssl_trusted_certificate")
                .and_then(|p| world.secret_of_file(p))
                .map(|s| {
                    world
                        .certs(s, "ca.crt")
                        .into_iter()
                        .map(|c| c.subject)
                        .collect()
                })
                .unwrap_or_default();
            if !trusted.contains(&server.issuer) {
                return Some(format!(
                    "proxy_ssl_verify on: the gateway's certificate is issued by `{}`, which the trusted CA Secret does not hold",
                    server.issuer
                ));
            }
            if !allows(server, SERVER_AUTH) {
                return Some(format!(
                    "proxy_ssl_verify on: the gateway's certificate is for {} only, not {SERVER_AUTH}",
                    server.ext_key_usages.join(", ")
                ));
            }
        }
    }
    if verify && let Some(server) = &gw.server {
        let name = checked_name(egress);
        if !names_host(server, &name) {
            return Some(format!(
                "proxy_ssl_verify on checks the name `{name}`{}, which the gateway's certificate ({}) does not carry",
                if setting("proxy_ssl_name").is_none_or(|n| n == "$proxy_host") {
                    " ($proxy_host, NIC's default sslName: the upstream's generated name)"
                } else {
                    ""
                },
                server.sans.join(", ")
            ));
        }
    }
    if resumed.is_some() {
        return None;
    }
    if let Some(cas) = &gw.client_cas {
        let presented = setting("proxy_ssl_certificate").and_then(|p| world.secret_of_file(p));
        let Some(secret) = presented else {
            return Some(
                "the gateway requires a client certificate and NGINX presents none (no egressMTLS tlsSecret)"
                    .into(),
            );
        };
        let issuer = world
            .certs(secret, "tls.crt")
            .into_iter()
            .next()
            .map(|c| c.issuer)
            .unwrap_or_default();
        if !cas.contains(&issuer) {
            return Some(format!(
                "NGINX's client certificate (Secret {secret}) is issued by `{issuer}`, and the gateway trusts only {}",
                cas.join(", ")
            ));
        }
        if let Some(why) = refused_usage(world, secret, CLIENT_AUTH) {
            return Some(format!(
                "the gateway refuses NGINX's client certificate: {why}"
            ));
        }
    }
    None
}

/// How NGINX reaches the gateway, when the exchange succeeds: for the why.
fn egress_shown(world: &World, egress: &Egress, session: Option<&Session>) -> String {
    if !egress.tls {
        return "over plain HTTP".into();
    }
    let setting = |k: &str| egress.ssl_settings.get(k).map(String::as_str);
    let mut shown = match setting("proxy_ssl_certificate").and_then(|p| world.secret_of_file(p)) {
        Some(secret) => format!("over egress mTLS (NGINX presents Secret {secret}'s certificate"),
        None => "over TLS (NGINX presents no client certificate".into(),
    };
    if setting("proxy_ssl_verify") != Some("on") {
        shown.push_str("; proxy_ssl_verify off: it does not check the gateway's certificate");
    }
    shown.push(')');
    if let Some(s) = session.filter(|s| no_resumption(s, egress).is_none()) {
        shown = format!(
            "{shown}, resuming the TLS session the request to {} left (proxy_ssl_session_reuse on: NGINX caches it per upstream server and does not verify the gateway's certificate again)",
            s.made_by
        );
    }
    shown
}

/// What the upstream answers for `upstream_path`.
fn upstream_answer(
    world: &World,
    egress: &Egress,
    upstream_path: &str,
    session: Option<&Session>,
) -> Answer {
    let (backend, service) = match backend_of(world, egress) {
        Ok(b) => b,
        Err(why) => {
            return http(
                502,
                vec![("bodyContains", json!("502 Bad Gateway"))],
                format!("{why}: nginx answers 502"),
            );
        }
    };
    let tls_to_plain = || {
        let mut a = http(
            502,
            vec![("bodyContains", json!("502 Bad Gateway"))],
            format!(
                "upstream TLS to {service}, whose stand-in speaks plain HTTP: the handshake fails"
            ),
        );
        if let Answer::Http { egress_fails, .. } = &mut a {
            *egress_fails = true;
        }
        a
    };
    match backend {
        Backend::Webui if egress.tls => tls_to_plain(),
        Backend::Webui if upstream_path.starts_with("/api/") => Answer::Unknown(format!(
            "{upstream_path} is an Open WebUI API path; init probes its pages"
        )),
        Backend::Webui => http(
            200,
            vec![("bodyContains", json!("<title>Open WebUI</title>"))],
            format!("{service} (the Open WebUI stand-in) serves its page at {upstream_path}"),
        ),
        Backend::Ollama if egress.tls => tls_to_plain(),
        Backend::Ollama if upstream_path == "/" => http(
            200,
            vec![("bodyContains", json!("Ollama is running"))],
            format!("{service} (the Ollama stand-in) answers `/`"),
        ),
        Backend::Ollama => Answer::Unknown(format!(
            "init probes Ollama only at `/`, not {upstream_path}"
        )),
        Backend::Aigw(gw) => {
            if !egress.tls && gw.tls {
                return http(
                    400,
                    vec![(
                        "bodyContains",
                        json!("Client sent an HTTP request to an HTTPS server."),
                    )],
                    format!(
                        "plain HTTP to {service}'s TLS port (no upstream TLS: VirtualServer upstream `tls.enable`, or the Ingress's nginx.org/ssl-services): the gateway answers 400 and NGINX relays it"
                    ),
                );
            }
            if egress.tls && !gw.tls {
                return tls_to_plain();
            }
            if egress.tls
                && let Some(why) = egress_handshake(world, egress, &gw, session)
            {
                return Answer::Http {
                    status: 502,
                    expect: vec![
                        ("status".into(), json!(502)),
                        ("bodyContains".into(), json!("502 Bad Gateway")),
                    ],
                    why: format!("the upstream TLS handshake with {service} fails: {why}"),
                    egress_fails: true,
                    stage: Stage::Upstream,
                };
            }
            let shown = egress_shown(world, egress, session);
            match gw.routes.iter().find(|(p, _)| p == upstream_path) {
                Some((_, schema)) if schema == "v1/models" => http(
                    200,
                    vec![("json", json!({"object": "list"}))],
                    format!("{service} answers its v1/models route {shown}: the whole chain holds"),
                ),
                Some(_) => Answer::Unknown(format!(
                    "{upstream_path} is a chat route; init probes the gateway's models route or an unknown path"
                )),
                None => http(
                    404,
                    vec![("bodyContains", json!("no route for"))],
                    format!(
                        "{service} is reached {shown} (the handshake succeeds) and answers 404: aigw.yaml has no route {upstream_path}"
                    ),
                ),
            }
        }
    }
}

/// Everything a request to `host` over `tls` for `path` with `client` gets.
pub(crate) fn predict(
    world: &World,
    host: &str,
    tls: bool,
    path: &str,
    client: &Client,
    client_cas: &[String],
) -> Answer {
    predict_after(world, host, tls, path, client, client_cas, None)
}

/// What a request gets right after another one left `session` behind on its
/// upstream server (`None`: from an empty session cache, as `predict`).
pub(crate) fn predict_after(
    world: &World,
    host: &str,
    tls: bool,
    path: &str,
    client: &Client,
    client_cas: &[String],
    session: Option<&Session>,
) -> Answer {
    let Some(route) = world.routing.route(host, tls, path) else {
        return Answer::Unknown("no server listens".into());
    };
    if route.server == "_" {
        return if tls {
            Answer::Rejected {
                alert: "unrecognized name".into(),
                why: "no server has TLS for this host: NIC's default server refuses the handshake (ssl_reject_handshake)".into(),
            }
        } else {
            http(
                404,
                vec![],
                "no server is configured for this host: NIC's default server answers 404".into(),
            )
            .at(Stage::Server)
        };
    }
    if tls && route.server_rules.reject_handshake {
        return Answer::Rejected {
            alert: "unrecognized name".into(),
            why: "the host's TLS Secret is unusable: NIC renders ssl_reject_handshake".into(),
        };
    }
    let mut verified = None;
    if tls && let Some(v) = verification(&route) {
        let usage = match client {
            Client::Good {
                secret: Some(secret),
                ..
            } => refused_usage(world, secret, CLIENT_AUTH),
            _ => None,
        };
        if let Err(answer) = verdict(&v, client, client_cas, usage.as_deref()) {
            return answer.at(Stage::Verification);
        }
        verified = (*client != Client::None)
            .then(|| format!("ssl_verify_client {} lets the certificate through", v.mode));
    }
    proceed(world, &route, tls, host, path, session).after(verified)
}

/// The session a request to `path` leaves on its upstream server, when it
/// gets a 2xx through TLS with session reuse on.
pub(crate) fn session_of(
    world: &World,
    host: &str,
    tls: bool,
    path: &str,
    client: &Client,
    client_cas: &[String],
) -> Option<Session> {
    let egress = world.routing.route(host, tls, path)?.egress?;
    if !egress.tls || !egress.session_reuse {
        return None;
    }
    match predict(world, host, tls, path, client, client_cas) {
        Answer::Http {
            status: 200..=299, ..
        } => Some(Session {
            made_by: format!("{}://{host}{path}", if tls { "https" } else { "http" }),
            verified: egress
                .ssl_settings
                .get("proxy_ssl_verify")
                .map(String::as_str)
                == Some("on"),
            egress,
        }),
        _ => None,
    }
}

/// The `allow`/`deny` rules nginx applies to a route: the location's own
/// replace the server's (`ngx_http_access_merge_loc_conf`).
pub(crate) fn effective_access(route: &Route) -> &[Access] {
    if route.location_rules.access.is_empty() {
        &route.server_rules.access
    } else {
        &route.location_rules.access
    }
}

/// After client verification: the rewrite phase (the server's `return`s, then
/// the location's), the access phase, the upstream.
fn proceed(
    world: &World,
    route: &Route,
    tls: bool,
    host: &str,
    path: &str,
    session: Option<&Session>,
) -> Answer {
    if let Some(a) = rewrite(&route.server_rules.returns, tls, host, path, "server's") {
        return a.at(Stage::Rewrite);
    }
    if let Some(a) = rewrite(&route.location_rules.returns, tls, host, path, "location's") {
        return a.at(Stage::Rewrite);
    }
    let allowed = match access(effective_access(route)) {
        Ok(why) => why,
        Err(answer) => return answer.at(Stage::Access),
    };
    let Some(egress) = route.egress.as_ref() else {
        return Answer::Unknown("the location does not proxy".into());
    };
    let location = route.location.clone().unwrap_or_default();
    let upstream_path = upstream_path(&location, route.location_rules.proxy_uri.as_deref(), path);
    upstream_answer(world, egress, &upstream_path, session).after(allowed)
}

/// What the upstream sees: nginx replaces the matched prefix with
/// `proxy_pass`'s URI part, when it has one.
fn upstream_path(location: &str, uri: Option<&str>, path: &str) -> String {
    let Some(uri) = uri else {
        return path.to_string();
    };
    if location.starts_with('=') {
        return uri.to_string();
    }
    if location.starts_with('~') {
        return path.to_string();
    }
    let prefix = location.split_whitespace().last().unwrap_or(location);
    format!("{uri}{}", path.strip_prefix(prefix).unwrap_or("")).replacen("//", "/", 1)
}

/// Whether a request's exchange involves the Secret `secret`: the host's
/// server certificate or client CA, what NGINX presents or trusts upstream,
/// the gateway's own certificate, or the client's.
pub(crate) fn touches(
    world: &World,
    host: &str,
    tls: bool,
    path: &str,
    client: &Client,
    secret: &str,
) -> bool {
    if matches!(client, Client::Good { secret: Some(s), .. } if s == secret) {
        return true;
    }
    let Some(route) = world.routing.route(host, tls, path) else {
        return false;
    };
    let names = |settings: &BTreeMap<String, String>, keys: &[&str]| {
        keys.iter()
            .filter_map(|k| settings.get(*k))
            .any(|p| world.secret_of_file(p) == Some(secret))
    };
    if tls
        && names(
            &route.server_rules.ssl_settings,
            &["ssl_certificate", "ssl_client_certificate"],
        )
    {
        return true;
    }
    let Some(egress) = &route.egress else {
        return false;
    };
    names(
        &egress.ssl_settings,
        &["proxy_ssl_certificate", "proxy_ssl_trusted_certificate"],
    ) || matches!(
        backend_of(world, egress),
        Ok((Backend::Aigw(gw), _)) if gw.server_secret.as_deref() == Some(secret)
    )
}

/// A request path that reaches `location` and asks its backend something
/// init can predict, or `None` (a regular-expression location).
pub(crate) fn probe_path(world: &World, host: &str, tls: bool, location: &str) -> Option<String> {
    let (modifier, base) = match location.split_once(' ') {
        Some((m, p)) => (Some(m), p),
        None => (None, location),
    };
    if modifier.is_some_and(|m| m.starts_with('~')) {
        return None;
    }
    let route = world.routing.route(host, tls, base)?;
    let wanted = route
        .egress
        .as_ref()
        .and_then(|e| backend_of(world, e).ok())
        .and_then(|(b, _)| match b {
            Backend::Aigw(gw) => gw
                .routes
                .iter()
                .find(|(_, s)| s == "v1/models")
                .map(|(p, _)| p.clone()),
            _ => None,
        });
    let mut candidates = Vec::new();
    if let Some(wanted) = wanted
        && modifier.is_none()
    {
        match route.location_rules.proxy_uri.as_deref() {
            Some(uri) => {
                if let Some(rest) = wanted.strip_prefix(uri.trim_end_matches('/')) {
                    candidates.push(format!("{}{}", base.trim_end_matches('/'), rest));
                }
            }
            None => candidates.push(wanted),
        }
    }
    candidates.push(base.to_string());
    candidates.into_iter().find(|p| {
        world
            .routing
            .route(host, tls, p)
            .and_then(|r| r.location)
            .as_deref()
            == Some(location)
    })
}

/// The client CA subjects of a TLS host (its `ssl_client_certificate`).
pub(crate) fn client_cas(world: &World, host: &str) -> Vec<String> {
    world
        .routing
        .route(host, true, "/")
        .and_then(|r| {
            r.server_rules
                .ssl_settings
                .get("ssl_client_certificate")
                .cloned()
        })
        .and_then(|p| world.secret_of_file(&p).map(str::to_string))
        .map(|s| {
            world
                .certs(&s, "ca.crt")
                .into_iter()
                .map(|c| c.subject)
                .collect()
        })
        .unwrap_or_default()
}

/// The verification mode of a TLS host, if it asks for certificates.
pub(crate) fn verify_mode(world: &World, host: &str) -> Option<(String, i64)> {
    let route = world.routing.route(host, true, "/")?;
    verification(&route).map(|v| (v.mode, v.depth))
}

/// The server certificate a TLS host presents.
pub(crate) fn server_cert(world: &World, host: &str) -> Option<crate::pki::CertInfo> {
    let route = world.routing.route(host, true, "/")?;
    let path = route.server_rules.ssl_settings.get("ssl_certificate")?;
    let secret = world.secret_of_file(path)?;
    world.certs(secret, "tls.crt").into_iter().next()
}

/// Hosts in the order the manifests declare them, each with its owner's origin.
pub(crate) fn hosts(world: &World) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for o in &world.objects {
        let found: Vec<String> = match o.id.kind {
            Kind::VirtualServer => o
                .parse::<crate::manifest::kinds::VirtualServer>()
                .map(|v| vec![v.spec.host])
                .unwrap_or_default(),
            Kind::Ingress => o
                .parse::<crate::manifest::kinds::Ingress>()
                .map(|i| i.spec.rules.into_iter().map(|r| r.host).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        for host in found.into_iter().filter(|h| !h.is_empty()) {
            if !out.iter().any(|(h, _)| *h == host) {
                out.push((host, format!("{} ({})", o.id, o.origin())));
            }
        }
    }
    out
}

/// Whether NIC serves `host` at all, and over TLS.
pub(crate) fn served(world: &World, host: &str) -> (bool, bool) {
    let served = world.nic.hosts.contains_key(host);
    let tls = served
        && world
            .routing
            .route(host, true, "/")
            .is_some_and(|r| r.server != "_");
    (served, tls)
}

/// The states NIC would report that are not Valid: `Kind ns/name` → (state, message).
pub(crate) fn states(world: &World) -> BTreeMap<String, (String, String)> {
    world
        .nic
        .states
        .iter()
        .filter(|s| s.state != crate::manifest::ControllerState::Valid)
        .map(|s| (s.id(), (s.state.to_string(), s.message.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upstream_sees_the_rewritten_path() {
        assert_eq!(
            upstream_path("/good/", Some("/"), "/good/v1/models"),
            "/v1/models"
        );
        assert_eq!(upstream_path("/", None, "/v1/models"), "/v1/models");
        assert_eq!(upstream_path("= /x", Some("/y"), "/x"), "/y");
    }

    #[test]
    fn optional_no_ca_forgives_only_an_unknown_issuer() {
        let v = Verification {
            mode: "optional_no_ca".into(),
            depth: 1,
        };
        let cas = ["CN = ca".to_string()];
        assert!(verdict(&v, &Client::OtherCa, &cas, None).is_ok());
        assert!(verdict(&v, &Client::None, &cas, None).is_ok());
        assert!(verdict(&v, &Client::Expired, &cas, None).is_err());
        let on = Verification {
            mode: "on".into(),
            depth: 0,
        };
        let Err(Answer::Http { status, expect, .. }) = verdict(&on, &Client::None, &cas, None)
        else {
            panic!("on refuses a request without a certificate");
        };
        assert_eq!(status, 400);
        assert!(expect.contains(&("bodyContains".into(), json!(NO_CERT))));
        assert!(
            verdict(&on, &Client::ViaIntermediate, &cas, None).is_err(),
            "depth 0 refuses an intermediate"
        );
        let good = Client::Good {
            ca: "CN = ca".into(),
            secret: Some("ns/client".into()),
        };
        assert!(verdict(&on, &good, &cas, None).is_ok());
        // A certificate not for client authentication fails even where an unknown issuer would not.
        for mode in [&on, &v] {
            let Err(Answer::Http { status, why, .. }) =
                verdict(mode, &good, &cas, Some("it is for server auth only"))
            else {
                panic!("OpenSSL's purpose check refuses it");
            };
            assert_eq!(status, 400);
            assert!(why.contains("server auth only"), "{why}");
        }
    }

    #[test]
    fn access_rules_are_judged_for_a_client_with_no_documentation_address() {
        for (address, only) in [
            ("192.0.2.10", true),
            ("198.51.100.0/24", true),
            ("203.0.113.128/25", true),
            ("2001:db8::1", true),
            ("192.0.0.0/16", false),
            ("10.0.0.0/8", false),
            ("all", false),
            ("unix:", false),
        ] {
            assert_eq!(documentation_only(address), only, "{address}");
        }
        let rule = |allow: bool, address: &str| Access {
            allow,
            address: address.into(),
        };
        assert_eq!(access(&[]), Ok(None));
        assert!(matches!(
            access(&[rule(false, "192.0.2.0/24"), rule(true, "all")]),
            Ok(Some(why)) if why.contains("`allow all` lets the request through")
        ));
        assert!(matches!(
            access(&[rule(false, "192.0.2.0/24")]),
            Ok(Some(why)) if why.contains("no rule matches")
        ));
        assert!(matches!(
            access(&[rule(true, "192.0.2.10"), rule(false, "all")]),
            Err(Answer::Http { status: 403, .. })
        ));
        assert!(matches!(
            access(&[rule(false, "10.0.0.0/8"), rule(true, "all")]),
            Err(Answer::Unknown(_))
        ));
    }

    #[test]
    fn host_names_follow_openssl() {
        let mut cert = crate::pki::CertInfo::from_pem(
            &crate::pki::issue(
                &crate::pki::CertSpec::new("x.example.com", time::Duration::days(1)),
                crate::pki::KeyAlgorithm::Ecdsa(256)
                    .generate()
                    .expect("key"),
                None,
            )
            .expect("cert")
            .cert_pem,
        )
        .expect("info");
        cert.sans = vec!["DNS:*.verify.example.com".into()];
        assert!(names_host(&cert, "optional.verify.example.com"));
        assert!(!names_host(&cert, "a.b.verify.example.com"));
        cert.sans.clear();
        assert!(names_host(&cert, "x.example.com"), "the CN when no DNS SAN");
    }
}
