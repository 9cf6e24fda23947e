//! Where a request goes in an nginx configuration: the server its Host picks,
//! the location its path picks (nginx's rules: `=` exact, then the longest
//! prefix, `^~` stopping there, then regular expressions in order), and the
//! upstream that location proxies to with its effective `proxy_ssl_*` settings.
//!
//! It reads the configuration text itself (what NIC rendered locally, or what
//! `nginx -T` prints on a cluster), so every substrate is analysed the same way.

use std::collections::BTreeMap;

/// A directive and, for block directives, what it holds.
#[derive(Debug, Clone, PartialEq)]
struct Directive {
    name: String,
    args: Vec<String>,
    block: Option<Vec<Directive>>,
}

/// nginx's tokens: words (quotes removed), `{`, `}`, `;`; `#` comments dropped.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '{' | '}' | ';' => {
                out.push(c.to_string());
                chars.next();
            }
            '"' | '\'' => {
                let quote = c;
                chars.next();
                let mut word = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(next) = chars.next() {
                                word.push(next);
                            }
                        }
                        c if c == quote => break,
                        c => word.push(c),
                    }
                }
                out.push(word);
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '{' | '}' | ';') {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                out.push(word);
            }
        }
    }
    out
}

fn parse_block(tokens: &[String], at: &mut usize) -> Vec<Directive> {
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    while *at < tokens.len() {
        let t = &tokens[*at];
        *at += 1;
        match t.as_str() {
            ";" => {
                if let Some((name, args)) = words.split_first() {
                    out.push(Directive {
                        name: name.clone(),
                        args: args.to_vec(),
                        block: None,
                    });
                }
                words.clear();
            }
            "{" => {
                let block = parse_block(tokens, at);
                if let Some((name, args)) = words.split_first() {
                    out.push(Directive {
                        name: name.clone(),
                        args: args.to_vec(),
                        block: Some(block),
                    });
                }
                words.clear();
            }
            "}" => return out,
            _ => words.push(t.clone()),
        }
    }
    out
}

/// A location's effective egress: the upstream and the `proxy_ssl_*` settings
/// (server-level ones inherited unless the location sets its own, as nginx
/// merges them directive by directive).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Egress {
    /// The `upstream` block (or `host:port`) proxied to.
    pub upstream: String,
    pub tls: bool,
    /// `proxy_ssl_session_reuse` (nginx's default: on).
    pub session_reuse: bool,
    /// Every effective `proxy_ssl_*` directive but session reuse, as written.
    pub ssl_settings: BTreeMap<String, String>,
}

/// Where one request ends up.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Route {
    /// `server_name` of the server that answers (`_` for the default server).
    pub server: String,
    /// `location` arguments, as written (`/`, `= /exact`, `~ ^/api`).
    pub location: Option<String>,
    pub egress: Option<Egress>,
    /// What the server does before any location is chosen.
    pub server_rules: ServerRules,
    /// What the location does before it proxies.
    pub location_rules: LocationRules,
}

/// A `return` of the rewrite phase, in the order nginx runs them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Return {
    /// Inside `if ($scheme = http)`: plain HTTP only.
    pub plain_only: bool,
    pub code: u16,
    /// The redirect target as written (`https://$host$request_uri`).
    pub target: Option<String>,
}

/// A server's client verification and rewrite-phase answers.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ServerRules {
    /// `ssl_reject_handshake on`: TLS to this server is refused.
    pub reject_handshake: bool,
    /// Server-level `ssl_*` directives (`ssl_verify_client`, `ssl_client_certificate`, ...).
    pub ssl_settings: BTreeMap<String, String>,
    pub returns: Vec<Return>,
    /// `allow`/`deny` at server level, in order: the answer depends on the client's address.
    pub access: Vec<Access>,
}

/// One `allow` or `deny` rule of nginx's access module.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Access {
    pub allow: bool,
    /// As written: an address, a CIDR block, `unix:` or `all`.
    pub address: String,
}

/// A location's own answers before proxying.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LocationRules {
    pub returns: Vec<Return>,
    /// The location's own `allow`/`deny` rules (nginx inherits the server's only when it has none).
    pub access: Vec<Access>,
    /// The URI part of `proxy_pass` (`/` in `proxy_pass https://up/;`): nginx
    /// replaces the matched prefix with it.
    pub proxy_uri: Option<String>,
}

#[derive(Debug, Clone)]
struct Location {
    modifier: Option<String>,
    path: String,
    egress: Option<Egress>,
    rules: LocationRules,
}

#[derive(Debug, Clone)]
struct Server {
    names: Vec<String>,
    ssl: bool,
    plain: bool,
    default_ssl: bool,
    default_plain: bool,
    locations: Vec<Location>,
    rules: ServerRules,
}

/// A parsed configuration: its servers and their locations.
#[derive(Debug, Clone, Default)]
pub(crate) struct Routing {
    servers: Vec<Server>,
    /// `upstream` blocks: name → the `server` addresses, in order.
    upstreams: BTreeMap<String, Vec<String>>,
}

/// The rewrite-phase `return`s of a block, `if ($scheme = http)` ones included.
fn returns_in(block: &[Directive]) -> Vec<Return> {
    let mut out = Vec::new();
    for d in block {
        let plain_only = match (&d.block, d.name.as_str()) {
            (None, "return") => false,
            (Some(_), "if") => {
                let condition = d.args.join(" ").replace(['(', ')', '\'', '"'], "");
                if condition.split_whitespace().collect::<Vec<_>>() != ["$scheme", "=", "http"] {
                    continue;
                }
                true
            }
            _ => continue,
        };
        let found = if plain_only {
            d.block
                .iter()
                .flatten()
                .find(|x| x.name == "return" && x.block.is_none())
        } else {
            Some(d)
        };
        if let Some(code) = found
            .and_then(|r| r.args.first())
            .and_then(|c| c.parse().ok())
        {
            out.push(Return {
                plain_only,
                code,
                target: found.and_then(|r| r.args.get(1).cloned()),
            });
        }
    }
    out
}

fn access_rules(block: &[Directive]) -> Vec<Access> {
    block
        .iter()
        .filter(|d| d.block.is_none() && (d.name == "allow" || d.name == "deny"))
        .map(|d| Access {
            allow: d.name == "allow",
            address: d.args.join(" "),
        })
        .collect()
}

fn proxy_ssl(block: &[Directive]) -> BTreeMap<String, String> {
    block
        .iter()
        .filter(|d| d.name.starts_with("proxy_ssl"))
        .map(|d| (d.name.clone(), d.args.join(" ")))
        .collect()
}

fn servers_in(
    block: &[Directive],
    out: &mut Vec<Server>,
    upstreams: &mut BTreeMap<String, Vec<String>>,
) {
    for d in block {
        let Some(inner) = &d.block else { continue };
        if d.name == "upstream" {
            let servers = inner
                .iter()
                .filter(|x| x.name == "server")
                .filter_map(|x| x.args.first().cloned())
                .collect();
            upstreams.insert(d.args.join(" "), servers);
            continue;
        }
        if d.name != "server" {
            servers_in(inner, out, upstreams);
            continue;
        }
        let listens: Vec<&Directive> = inner.iter().filter(|x| x.name == "listen").collect();
        // Unix-socket helper servers (NIC's 502/418 servers) take no requests of ours.
        if listens
            .iter()
            .all(|l| l.args.first().is_some_and(|a| a.starts_with("unix:")))
        {
            continue;
        }
        let has = |l: &&Directive, word: &str| l.args.iter().any(|a| a == word);
        let server_level = proxy_ssl(inner);
        let locations = inner
            .iter()
            .filter(|x| x.name == "location")
            .filter_map(|x| location(x, &server_level))
            .collect();
        out.push(Server {
            names: inner
                .iter()
                .filter(|x| x.name == "server_name")
                .flat_map(|x| x.args.clone())
                .collect(),
            ssl: listens.iter().any(|l| has(l, "ssl")),
            plain: listens.iter().any(|l| !has(l, "ssl")),
            default_ssl: listens
                .iter()
                .any(|l| has(l, "ssl") && has(l, "default_server")),
            default_plain: listens
                .iter()
                .any(|l| !has(l, "ssl") && has(l, "default_server")),
            locations,
            rules: ServerRules {
                reject_handshake: inner
                    .iter()
                    .any(|x| x.name == "ssl_reject_handshake" && x.args == ["on"]),
                ssl_settings: inner
                    .iter()
                    .filter(|x| x.block.is_none() && x.name.starts_with("ssl_"))
                    .map(|x| (x.name.clone(), x.args.join(" ")))
                    .collect(),
                returns: returns_in(inner),
                access: access_rules(inner),
            },
        });
    }
}

fn location(d: &Directive, server_level: &BTreeMap<String, String>) -> Option<Location> {
    let block = d.block.as_ref()?;
    let (modifier, path) = match d.args.as_slice() {
        [path] => (None, path.clone()),
        [m, path] => (Some(m.clone()), path.clone()),
        _ => return None,
    };
    // Named and internal locations are reached only by nginx's own redirects.
    if path.starts_with('@') || block.iter().any(|x| x.name == "internal") {
        return None;
    }
    let proxy_target = block
        .iter()
        .find(|x| x.name == "proxy_pass")
        .and_then(|p| p.args.first());
    let proxy_uri = proxy_target.and_then(|target| {
        let rest = target.split_once("://").map_or(target.as_str(), |(_, r)| r);
        rest.find('/').map(|i| rest[i..].to_string())
    });
    let egress = proxy_target.map(|target| {
        let (tls, rest) = match target.split_once("://") {
            Some((scheme, rest)) => (scheme == "https", rest),
            None => (false, target.as_str()),
        };
        let upstream = rest.split('/').next().unwrap_or(rest).to_string();
        let mut settings = server_level.clone();
        settings.extend(proxy_ssl(block));
        let session_reuse = settings
            .remove("proxy_ssl_session_reuse")
            .is_none_or(|v| v != "off");
        Egress {
            upstream,
            tls,
            session_reuse,
            ssl_settings: settings,
        }
    });
    Some(Location {
        modifier,
        path,
        egress,
        rules: LocationRules {
            returns: returns_in(block),
            access: access_rules(block),
            proxy_uri,
        },
    })
}

/// Each `upstream` block's servers (`server ADDRESS ...;`), by name, in
/// configuration text (conf.d files, or one `nginx -T` dump).
pub(crate) fn upstream_servers(text: &str) -> BTreeMap<String, Vec<String>> {
    fn walk(directives: &[Directive], out: &mut BTreeMap<String, Vec<String>>) {
        for d in directives {
            let Some(block) = &d.block else { continue };
            match (d.name.as_str(), d.args.first()) {
                ("upstream", Some(name)) => {
                    let servers = block
                        .iter()
                        .filter(|x| x.name == "server")
                        .filter_map(|x| x.args.first().cloned());
                    out.entry(name.clone()).or_default().extend(servers);
                }
                _ => walk(block, out),
            }
        }
    }
    let tokens = tokens(text);
    let mut at = 0;
    let mut out = BTreeMap::new();
    walk(&parse_block(&tokens, &mut at), &mut out);
    out
}

impl Routing {
    /// Parse configuration files (conf.d files, or one `nginx -T` dump).
    pub(crate) fn parse<'a>(files: impl IntoIterator<Item = &'a str>) -> Routing {
        let mut servers = Vec::new();
        let mut upstreams = BTreeMap::new();
        for text in files {
            let tokens = tokens(text);
            let mut at = 0;
            servers_in(&parse_block(&tokens, &mut at), &mut servers, &mut upstreams);
        }
        Routing { servers, upstreams }
    }

    /// The `server` addresses of the `upstream` block `name`.
    pub(crate) fn upstream_servers(&self, name: &str) -> Option<&[String]> {
        self.upstreams.get(name).map(Vec::as_slice)
    }

    /// Every location of the server named `host` (over TLS or plain HTTP), as
    /// written (`/`, `= /exact`, `~ ^/api`), in order.
    pub(crate) fn locations(&self, host: &str, tls: bool) -> Vec<String> {
        self.servers
            .iter()
            .filter(|s| if tls { s.ssl } else { s.plain })
            .find(|s| s.names.iter().any(|n| n.eq_ignore_ascii_case(host)))
            .map(|s| {
                s.locations
                    .iter()
                    .map(|l| match &l.modifier {
                        Some(m) => format!("{m} {}", l.path),
                        None => l.path.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Where a request for `host` and `path` goes, over TLS or plain HTTP.
    pub(crate) fn route(&self, host: &str, tls: bool, path: &str) -> Option<Route> {
        let listening = |s: &&Server| if tls { s.ssl } else { s.plain };
        let server = self
            .servers
            .iter()
            .filter(listening)
            .find(|s| s.names.iter().any(|n| n.eq_ignore_ascii_case(host)))
            .or_else(|| {
                self.servers
                    .iter()
                    .filter(listening)
                    .find(|s| if tls { s.default_ssl } else { s.default_plain })
            })?;
        let path = path.split('?').next().unwrap_or(path);
        let location = pick_location(&server.locations, path);
        Some(Route {
            server: server.names.first().cloned().unwrap_or_else(|| "_".into()),
            location: location.map(|l| match &l.modifier {
                Some(m) => format!("{m} {}", l.path),
                None => l.path.clone(),
            }),
            egress: location.and_then(|l| l.egress.clone()),
            server_rules: server.rules.clone(),
            location_rules: location.map(|l| l.rules.clone()).unwrap_or_default(),
        })
    }
}

fn pick_location<'a>(locations: &'a [Location], path: &str) -> Option<&'a Location> {
    if let Some(exact) = locations
        .iter()
        .find(|l| l.modifier.as_deref() == Some("=") && l.path == path)
    {
        return Some(exact);
    }
    let prefix = locations
        .iter()
        .filter(|l| matches!(l.modifier.as_deref(), None | Some("^~")))
        .filter(|l| path.starts_with(l.path.as_str()))
        .max_by_key(|l| l.path.len());
    if let Some(p) = prefix
        && p.modifier.as_deref() == Some("^~")
    {
        return Some(p);
    }
    let regex = locations.iter().find(|l| {
        let pattern = match l.modifier.as_deref() {
            Some("~") => l.path.clone(),
            Some("~*") => format!("(?i){}", l.path),
            _ => return false,
        };
        regex::Regex::new(&pattern).is_ok_and(|r| r.is_match(path))
    });
    regex.or(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = r#"
upstream vs_ns_app_gw {
    zone vs_ns_app_gw 256k;
    server 127.0.0.1:4000 max_fails=1;
}
server {
    listen 127.0.0.1:80;
    server_name app.example.com;
    listen 127.0.0.1:443 ssl;
    proxy_ssl_certificate $secret_dir_path/ns-egress; # a comment
    location / {
        proxy_ssl_verify on;
        proxy_ssl_trusted_certificate /s/ns-good-ca.crt;
        proxy_pass https://vs_ns_app_gw;
    }
    location /wrong {
        proxy_ssl_verify on;
        proxy_ssl_trusted_certificate "/s/ns-other-ca.crt";
        proxy_ssl_session_reuse off;
        proxy_pass https://vs_ns_app_gw/rewritten;
    }
    location = /exact { return 500; }
    location ~ ^/api/v[0-9]+ { proxy_pass http://vs_ns_app_plain; }
    location ^~ /api/static { proxy_pass http://vs_ns_app_static; }
    location @return_0 { return 200; }
}
server {
    listen 127.0.0.1:80 default_server;
    listen 127.0.0.1:443 ssl default_server;
    ssl_reject_handshake on;
    server_name _;
    location / { return 404; }
}
server { listen unix:/run/nginx-502-server.sock; return 502; }
"#;

    #[test]
    fn requests_go_where_nginx_sends_them() {
        let r = Routing::parse([CONF]);
        let root = r.route("app.example.com", true, "/chat?x=1").unwrap();
        assert_eq!(root.location.as_deref(), Some("/"));
        let egress = root.egress.unwrap();
        assert_eq!(egress.upstream, "vs_ns_app_gw");
        assert!(egress.tls && egress.session_reuse);
        assert_eq!(
            egress
                .ssl_settings
                .get("proxy_ssl_certificate")
                .map(String::as_str),
            Some("$secret_dir_path/ns-egress"),
            "server-level settings are inherited"
        );
        let wrong = r.route("APP.example.com", false, "/wrong/x").unwrap();
        let wrong = wrong.egress.unwrap();
        assert_eq!(wrong.upstream, "vs_ns_app_gw");
        assert!(!wrong.session_reuse);
        assert_eq!(
            wrong
                .ssl_settings
                .get("proxy_ssl_trusted_certificate")
                .map(String::as_str),
            Some("/s/ns-other-ca.crt")
        );
        let exact = r.route("app.example.com", true, "/exact").unwrap();
        assert_eq!(exact.location.as_deref(), Some("= /exact"));
        assert!(exact.egress.is_none());
        let api = r.route("app.example.com", true, "/api/v1/models").unwrap();
        assert_eq!(api.egress.unwrap().upstream, "vs_ns_app_plain");
        let stat = r.route("app.example.com", true, "/api/static/v1").unwrap();
        assert_eq!(
            stat.egress.unwrap().upstream,
            "vs_ns_app_static",
            "^~ stops the regex search"
        );
        let unknown = r.route("other.example.com", true, "/").unwrap();
        assert_eq!(unknown.server, "_");
        assert!(unknown.egress.is_none());
    }

    #[test]
    fn server_rules_returns_and_upstreams_are_read() {
        let conf = r#"
upstream vs_ns_app_web { zone z 256k; server unix:/x/ns/web/80 max_fails=1; }
server {
    listen 127.0.0.1:80;
    listen 127.0.0.1:443 ssl;
    server_name app.example.com;
    ssl_certificate $secret_dir_path/ns-tls;
    ssl_client_certificate /s/ns-ca-ca.crt;
    ssl_verify_client optional;
    ssl_verify_depth 0;
    if ($scheme = 'http') {
        return 301 https://$host$request_uri;
    }
    return 500;
    location /good/ {
        allow 192.0.2.1;
        deny all;
        proxy_pass https://vs_ns_app_web/;
    }
}
"#;
        let r = Routing::parse([conf]);
        assert_eq!(
            r.upstream_servers("vs_ns_app_web"),
            Some(&["unix:/x/ns/web/80".to_string()][..])
        );
        assert_eq!(r.locations("app.example.com", true), ["/good/"]);
        let route = r.route("app.example.com", true, "/good/x").expect("route");
        let rules = &route.server_rules;
        assert_eq!(rules.ssl_settings["ssl_verify_client"], "optional");
        assert_eq!(rules.ssl_settings["ssl_verify_depth"], "0");
        assert_eq!(
            rules.returns,
            [
                Return {
                    plain_only: true,
                    code: 301,
                    target: Some("https://$host$request_uri".into())
                },
                Return {
                    plain_only: false,
                    code: 500,
                    target: None
                }
            ]
        );
        assert!(rules.access.is_empty());
        assert_eq!(
            route.location_rules.access,
            [
                Access {
                    allow: true,
                    address: "192.0.2.1".into()
                },
                Access {
                    allow: false,
                    address: "all".into()
                }
            ]
        );
        assert_eq!(route.location_rules.proxy_uri.as_deref(), Some("/"));
    }
}
