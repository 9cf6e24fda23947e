//! nginx.conf text as NIC's templates print it, directive for directive
//! (`version1/nginx.tmpl`, `version2/nginx.virtualserver.tmpl`). Whitespace is
//! tidied; directives, values and their order follow the templates.

use super::policy::{EgressMtlsCfg, IngressMtlsCfg};
use std::fmt::Write as _;

/// The environment NIC renders for. [`RenderEnv::nic`] is the controller's own
/// (for fidelity tests); the local substrate swaps in loopback ports and its
/// private folder.
#[derive(Debug, Clone)]
pub(crate) struct RenderEnv {
    /// `listen` arguments for port 80 (NIC: `80` and `[::]:80`).
    pub http_listen: Vec<String>,
    /// `listen` arguments for port 443, without `ssl`.
    pub https_listen: Vec<String>,
    /// NIC's `/etc/nginx/secrets`.
    pub secrets_dir: String,
    /// NIC's `/var/lib/nginx` (the 502 and 418 unix sockets).
    pub runtime_dir: String,
    /// `-ssl-dynamic-reload` (default true): certificate paths go through `$secret_dir_path`.
    pub dynamic_ssl_reload: bool,
    /// The server an Ingress upstream gets when its Service has no endpoints
    /// (NIC: `127.0.0.1:8181`, where nothing listens, so requests get 502).
    pub ingress_no_endpoints: String,
}

impl RenderEnv {
    pub(crate) fn nic() -> Self {
        RenderEnv {
            http_listen: vec!["80".into(), "[::]:80".into()],
            https_listen: vec!["443".into(), "[::]:443".into()],
            secrets_dir: "/etc/nginx/secrets".into(),
            runtime_dir: "/var/lib/nginx".into(),
            dynamic_ssl_reload: true,
            ingress_no_endpoints: "127.0.0.1:8181".into(),
        }
    }

    /// `makeSecretPath`: with dynamic reload, the secrets folder becomes `$secret_dir_path`.
    pub(crate) fn secret_path(&self, path: &str) -> String {
        if self.dynamic_ssl_reload {
            path.replacen(&self.secrets_dir, "$secret_dir_path", 1)
        } else {
            path.to_string()
        }
    }

    pub(crate) fn bad_gateway_server(&self) -> String {
        format!("unix:{}/nginx-502-server.sock", self.runtime_dir)
    }
}

/// A config file being written.
#[derive(Default)]
pub(crate) struct Conf {
    out: String,
}

impl Conf {
    pub(crate) fn line(&mut self, depth: usize, text: &str) {
        for _ in 0..depth {
            self.out.push_str("    ");
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    /// Text already formatted (a block rendered elsewhere).
    pub(crate) fn raw(&mut self, text: &str) {
        self.out.push_str(text);
    }

    pub(crate) fn blank(&mut self) {
        self.out.push('\n');
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }
}

/// A TLS server's certificate, as both NIC templates write it: the Secret's file,
/// or `ssl_reject_handshake on;` when the TLS Secret is unusable.
pub(crate) fn ssl_certificate(conf: &mut Conf, env: &RenderEnv, cert: Option<&str>) {
    match cert {
        Some(path) => {
            conf.line(1, &format!("ssl_certificate {};", env.secret_path(path)));
            conf.line(
                1,
                &format!("ssl_certificate_key {};", env.secret_path(path)),
            );
        }
        None => conf.line(1, "ssl_reject_handshake on;"),
    }
}

/// The ingressMTLS block (server scope only).
pub(crate) fn ingress_mtls(conf: &mut Conf, depth: usize, m: &IngressMtlsCfg) {
    conf.line(depth, &format!("ssl_client_certificate {};", m.client_cert));
    if let Some(crl) = &m.client_crl {
        conf.line(depth, &format!("ssl_crl {crl};"));
    }
    conf.line(depth, &format!("ssl_verify_client {};", m.verify_client));
    conf.line(depth, &format!("ssl_verify_depth {};", m.verify_depth));
}

/// The egressMTLS block: `proxy_ssl_*` (or `grpc_ssl_*` at location scope for gRPC).
pub(crate) fn egress_mtls(
    conf: &mut Conf,
    depth: usize,
    prefix: &str,
    e: &EgressMtlsCfg,
    env: &RenderEnv,
) {
    if let Some(cert) = &e.certificate {
        let path = env.secret_path(cert);
        conf.line(depth, &format!("{prefix}_ssl_certificate {path};"));
        conf.line(depth, &format!("{prefix}_ssl_certificate_key {path};"));
    }
    if let Some(trusted) = &e.trusted_cert {
        conf.line(
            depth,
            &format!("{prefix}_ssl_trusted_certificate {trusted};"),
        );
    }
    let on_off = |b: bool| if b { "on" } else { "off" };
    conf.line(
        depth,
        &format!("{prefix}_ssl_verify {};", on_off(e.verify_server)),
    );
    conf.line(
        depth,
        &format!("{prefix}_ssl_verify_depth {};", e.verify_depth),
    );
    conf.line(depth, &format!("{prefix}_ssl_protocols {};", e.protocols));
    conf.line(depth, &format!("{prefix}_ssl_ciphers {};", e.ciphers));
    conf.line(
        depth,
        &format!("{prefix}_ssl_session_reuse {};", on_off(e.session_reuse)),
    );
    conf.line(
        depth,
        &format!("{prefix}_ssl_server_name {};", on_off(e.server_name)),
    );
    conf.line(depth, &format!("{prefix}_ssl_name {};", e.ssl_name));
}

/// Go's `%q` for the header values NIC prints with `printf "%q"`.
/// accessControl, as both templates print it: allow-lists end in `deny all`,
/// deny-lists in `allow all` (nginx takes the first rule that matches).
pub(crate) fn access_control(conf: &mut Conf, depth: usize, allow: &[String], deny: &[String]) {
    for a in allow {
        conf.line(depth, &format!("allow {a};"));
    }
    if !allow.is_empty() {
        conf.line(depth, "deny all;");
    }
    for d in deny {
        conf.line(depth, &format!("deny {d};"));
    }
    if !deny.is_empty() {
        conf.line(depth, "allow all;");
    }
}

pub(crate) fn go_quote(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// nginx's built-in defaults changed in 1.23.4 (TLS 1.3 on by default). NIC
/// 5.5.4 ships nginx 1.31.3 and sets no `ssl_protocols`, so on an older system
/// nginx the local substrate states 1.31's defaults explicitly.
pub(crate) fn modern_tls_defaults_needed(nginx_version: (u32, u32, u32)) -> bool {
    nginx_version < (1, 23, 4)
}

/// NIC's main `nginx.conf` (`version1/nginx.tmpl` with default `ConfigMap` values).
/// `paths` points logs and temp files into the run folder; `extra_http` holds
/// local-substrate lines that are printed with a comment saying why.
pub(crate) struct MainConf<'a> {
    pub env: &'a RenderEnv,
    pub conf_d: &'a str,
    pub pid: &'a str,
    pub error_log: &'a str,
    pub access_log: &'a str,
    pub temp_dir: &'a str,
    pub modern_tls_defaults: bool,
    /// Running as root: keep workers as root, or they could not read the
    /// private (0600) certificate files that `$secret_dir_path` loads per handshake.
    pub run_as_root: bool,
}

impl MainConf<'_> {
    pub(crate) fn render(&self) -> String {
        let mut c = Conf::default();
        c.line(0, "# NGINX Ingress Controller 5.5 main configuration (version1/nginx.tmpl, default ConfigMap),");
        c.line(0, "# rendered by the mtls-e2e local substrate. Local changes: one worker, logs and temp files in the");
        c.line(
            0,
            "# run folder, no njs module, no stub_status server, listeners on loopback ports.",
        );
        if self.run_as_root {
            c.line(0, "user  root;");
        }
        c.line(0, "worker_processes  1;");
        c.line(0, "daemon off;");
        c.blank();
        c.line(0, &format!("error_log  {} info;", self.error_log));
        c.line(0, &format!("pid        {};", self.pid));
        c.blank();
        c.line(0, "events {");
        c.line(1, "worker_connections  1024;");
        c.line(0, "}");
        c.blank();
        c.line(0, "http {");
        c.line(1, "default_type  application/octet-stream;");
        c.line(1, "map_hash_max_size 2048;");
        c.line(1, "map_hash_bucket_size 256;");
        c.blank();
        c.line(
            1,
            "log_format  main  '$remote_addr - $remote_user [$time_local] \"$request\" '",
        );
        c.line(
            1,
            "                  '$status $body_bytes_sent \"$http_referer\" '",
        );
        c.line(
            1,
            "                  '\"$http_user_agent\" \"$http_x_forwarded_for\"';",
        );
        c.blank();
        c.line(1, "map $upstream_trailer_grpc_status $grpc_status {");
        c.line(2, "default $upstream_trailer_grpc_status;");
        c.line(2, "'' $sent_http_grpc_status;");
        c.line(1, "}");
        if self.env.dynamic_ssl_reload {
            c.line(1, "map $nginx_version $secret_dir_path {");
            c.line(2, &format!("default \"{}\";", self.env.secrets_dir));
            c.line(1, "}");
        }
        c.line(1, &format!("access_log {} main;", self.access_log));
        for kind in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            c.line(1, &format!("{kind}_temp_path {}/{kind};", self.temp_dir));
        }
        c.blank();
        c.line(1, "sendfile        on;");
        c.blank();
        c.line(1, "keepalive_timeout 75s;");
        c.line(1, "keepalive_requests 1000;");
        c.blank();
        c.line(1, "server_names_hash_max_size 1024;");
        c.line(1, "server_names_hash_bucket_size 256;");
        c.blank();
        c.line(1, "variables_hash_bucket_size 256;");
        c.line(1, "variables_hash_max_size 1024;");
        c.blank();
        c.line(1, "map $request_uri $request_uri_no_args {");
        c.line(2, "\"~^(?P<path>[^?]*)(\\?.*)?$\" $path;");
        c.line(1, "}");
        c.blank();
        c.line(1, "map $http_upgrade $connection_upgrade {");
        c.line(2, "default upgrade;");
        c.line(2, "''      close;");
        c.line(1, "}");
        c.line(1, "map $http_upgrade $default_connection_header {");
        c.line(2, "default \"\";");
        c.line(1, "}");
        for var in [
            "resource_type",
            "resource_name",
            "resource_namespace",
            "service",
        ] {
            c.line(1, &format!("map $http_host ${var} {{"));
            c.line(2, "default \"\";");
            c.line(1, "}");
        }
        c.line(1, "map $http_upgrade $vs_connection_header {");
        c.line(2, "default upgrade;");
        c.line(2, "''      $default_connection_header;");
        c.line(1, "}");
        if self.modern_tls_defaults {
            c.blank();
            c.line(
                1,
                "# Local substrate: this nginx predates 1.23.4; these are the built-in defaults of",
            );
            c.line(
                1,
                "# nginx 1.31.3, which NIC 5.5.4 ships (NIC itself sets no ssl_protocols).",
            );
            c.line(1, "ssl_protocols TLSv1.2 TLSv1.3;");
            c.line(1, "proxy_ssl_protocols TLSv1.2 TLSv1.3;");
            c.line(1, "grpc_ssl_protocols TLSv1.2 TLSv1.3;");
        }
        c.blank();
        c.line(1, &format!("include {}/*.conf;", self.conf_d));
        c.blank();
        for code in [502, 418] {
            c.line(1, "server {");
            c.line(
                2,
                &format!(
                    "listen unix:{}/nginx-{code}-server.sock;",
                    self.env.runtime_dir
                ),
            );
            c.line(2, "access_log off;");
            c.blank();
            c.line(2, &format!("return {code};"));
            c.line(1, "}");
        }
        c.line(0, "}");
        c.finish()
    }
}

/// `_default-server.conf`: no default TLS secret, so TLS for unknown hosts is
/// refused at the handshake and plain HTTP gets 404.
pub(crate) fn default_server(env: &RenderEnv) -> String {
    let mut c = Conf::default();
    c.line(0, "# configuration for /");
    c.blank();
    c.line(0, "server {");
    let http: Vec<String> = env
        .http_listen
        .iter()
        .map(|l| format!("listen {l} default_server;"))
        .collect();
    c.line(1, &http.join(""));
    let https: Vec<String> = env
        .https_listen
        .iter()
        .map(|l| format!("listen {l} ssl default_server;"))
        .collect();
    c.line(1, &https.join(""));
    c.line(1, "ssl_reject_handshake on;");
    c.blank();
    c.line(1, "server_tokens on;");
    c.blank();
    c.line(1, "server_name _;");
    c.line(1, "location / {");
    c.line(2, "return 404;");
    c.line(1, "}");
    c.line(0, "}");
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_quoting_matches_printf_q() {
        assert_eq!(go_quote("$host"), "\"$host\"");
        assert_eq!(go_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }

    #[test]
    fn dynamic_reload_paths() {
        let env = RenderEnv::nic();
        assert_eq!(
            env.secret_path("/etc/nginx/secrets/ns-tls"),
            "$secret_dir_path/ns-tls"
        );
        let mut static_env = env.clone();
        static_env.dynamic_ssl_reload = false;
        assert_eq!(
            static_env.secret_path("/etc/nginx/secrets/ns-tls"),
            "/etc/nginx/secrets/ns-tls"
        );
    }
}
