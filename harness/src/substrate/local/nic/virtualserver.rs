//! `VirtualServer` → `vs_<ns>_<name>.conf`, as `internal/configs/virtualserver.go`
//! and `version2/nginx.virtualserver.tmpl` produce it (OSS, default `ConfigMap`).

use crate::manifest::ControllerState;
use crate::manifest::NamespacedName;
use crate::manifest::ServicePort;

use super::policy::{self, Context, Inputs, PoliciesCfg};
use super::render::{self, Conf, RenderEnv};
use super::{Endpoints, ResourceState};
use crate::manifest::kinds::{ProxyAction, Route, TlsRedirect, Upstream, VirtualServerSpec};
use crate::manifest::{ManifestError, Object};

/// The generated file and the `VirtualServer`'s status.
pub(crate) struct VsOutput {
    pub file_name: String,
    pub config: Option<String>,
    pub state: ResourceState,
    pub host: String,
}

/// What the local substrate cannot honour in a `VirtualServer`, each naming
/// its field (all of them, so that a user fixes them in one pass).
pub(crate) fn unsupported(vs: &Object) -> Vec<ManifestError> {
    let Ok(parsed) = vs.parse::<crate::manifest::kinds::VirtualServer>() else {
        return Vec::new(); // the render reports the parse error
    };
    let spec = parsed.spec;
    let mut out = Vec::new();
    for (i, route) in spec.routes.iter().enumerate() {
        let path = format!("spec.routes[{i}]");
        if route.route.is_some() {
            out.push(vs.error(&format!("{path}.route"), "routes to a VirtualServerRoute are not rendered by the local substrate; run this scenario on kind"));
        }
        if let Some(action) = &route.action
            && (action.return_.is_some() || action.redirect.is_some())
        {
            out.push(vs.error(&format!("{path}.action"), "action.return and action.redirect are not rendered by the local substrate; run this scenario on kind"));
        }
    }
    for (i, u) in spec.upstreams.iter().enumerate() {
        // Other types are NIC validation errors ("must be one of `grpc` or `http`").
        if u.type_.as_deref() == Some("grpc") {
            out.push(vs.error(
                &format!("spec.upstreams[{i}].type"),
                "gRPC upstreams are not rendered by the local substrate",
            ));
        }
    }
    out
}

/// `generateTimeWithDefault`: an unset time is the default as written; a set
/// one (validated before) as `ParseTime` writes it.
pub(crate) fn time_or(value: Option<&str>, default: &str) -> String {
    match value {
        None | Some("") => default.to_string(),
        Some(v) => super::field::parse_time(v).unwrap_or_default(),
    }
}

pub(crate) fn generate(
    vs: &Object,
    inputs: &Inputs<'_>,
    endpoints: &dyn Endpoints,
    env: &RenderEnv,
) -> Result<VsOutput, ManifestError> {
    let spec: VirtualServerSpec = vs.parse::<crate::manifest::kinds::VirtualServer>()?.spec;
    let (ns, name) = (vs.namespace(), vs.name());
    let file_name = format!("vs_{ns}_{name}.conf");
    if let Err(e) = super::vs_validation::validate(&spec, ns) {
        let message = format!("VirtualServer {ns}/{name} was rejected with error: {e}");
        return Ok(VsOutput {
            file_name,
            config: None,
            state: ResourceState::new(
                vs,
                ControllerState::Invalid,
                "Rejected",
                message,
                Vec::new(),
            ),
            host: spec.host,
        });
    }
    let mut warnings = Vec::new();

    // TLS (generateSSLConfig): no spec.tls or no secret → no 443 listener.
    let tls_secret = spec
        .tls
        .as_ref()
        .and_then(|t| t.secret.clone())
        .filter(|s| !s.is_empty());
    let ssl = tls_secret.as_ref().map(|secret| {
        let r = inputs.secrets.get(&NamespacedName::new(ns, secret));
        match (&r.type_, &r.error) {
            (Some(t), _) if t != super::secrets::TYPE_TLS => {
                warnings.push(format!(
                    "TLS secret {secret} is of a wrong type '{t}', must be 'kubernetes.io/tls'"
                ));
                None
            }
            (_, Some(e)) => {
                warnings.push(format!("TLS secret {secret} is invalid: {e}"));
                None
            }
            _ => Some(r.path),
        }
    });
    let redirect = tls_redirect(&spec);
    let redirect_var = redirect.map(redirect_based_on);

    let server_policies = policy::generate(
        &spec.policies,
        Context::Spec,
        ssl.is_some(),
        inputs,
        &mut warnings,
    );

    let mut upstreams: Vec<&Upstream> = spec.upstreams.iter().collect();
    upstreams.sort_by(|a, b| a.name.cmp(&b.name));
    let upstream_name = |u: &str| upstream_name(ns, name, u);

    let mut c = Conf::default();
    for u in &upstreams {
        // `namespace/service` reaches another namespace (ParseServiceReference).
        let (service_ns, service) = u.service.split_once('/').unwrap_or((ns, &u.service));
        let mut servers = endpoints
            .lookup(&ServicePort::new(service_ns, service, u.port))
            .unwrap_or_default();
        servers.sort();
        if servers.is_empty() {
            servers.push(env.bad_gateway_server());
        }
        let fail_timeout = time_or(u.fail_timeout.as_deref(), "10s");
        c.line(0, &format!("upstream {} {{", upstream_name(&u.name)));
        c.line(1, &format!("zone {} 256k;", upstream_name(&u.name)));
        match u.lb_method.as_deref() {
            None | Some("") => c.line(1, "random two least_conn;"),
            Some("round_robin") => {}
            Some(m) => c.line(1, &format!("{m};")),
        }
        for s in &servers {
            c.line(
                1,
                &format!(
                    "server {s} max_fails={} fail_timeout={fail_timeout} max_conns={};",
                    u.max_fails.unwrap_or(1),
                    u.max_conns.unwrap_or(0)
                ),
            );
        }
        if let Some(k) = u.keepalive.filter(|k| *k > 0) {
            c.line(1, &format!("keepalive {k};"));
        }
        c.line(0, "}");
        c.blank();
    }

    c.line(0, "server {");
    for l in &env.http_listen {
        c.line(1, &format!("listen {l};"));
    }
    c.blank();
    c.line(1, &format!("server_name {};", spec.host));
    c.blank();
    c.line(1, "set $resource_type \"virtualserver\";");
    c.line(1, &format!("set $resource_name \"{name}\";"));
    c.line(1, &format!("set $resource_namespace \"{ns}\";"));
    c.line(1, "set $service \"-\";");
    if let Some(cert) = &ssl {
        for l in &env.https_listen {
            c.line(1, &format!("listen {l} ssl;"));
        }
        c.blank();
        render::ssl_certificate(&mut c, env, cert.as_deref());
    }
    if let Some(m) = &server_policies.ingress_mtls {
        render::ingress_mtls(&mut c, 1, m);
    }
    if let (Some(r), Some(var)) = (redirect, redirect_var) {
        c.line(1, &format!("if ({var} = 'http') {{"));
        c.line(
            2,
            &format!(
                "return {} https://$host$request_uri;",
                r.code.unwrap_or(301)
            ),
        );
        c.line(1, "}");
    }
    c.blank();
    c.line(1, "server_tokens \"on\";");
    if let Some(code) = server_policies.error_return {
        c.line(1, &format!("return {code};"));
    }
    render::access_control(&mut c, 1, &server_policies.allow, &server_policies.deny);
    if let Some(e) = &server_policies.egress_mtls {
        c.blank();
        render::egress_mtls(&mut c, 1, "proxy", e, env);
    }

    for (i, route) in spec.routes.iter().enumerate() {
        let location_policies = if route.policies.is_empty() {
            PoliciesCfg::default()
        } else {
            policy::generate(
                &route.policies,
                Context::Route,
                ssl.is_some(),
                inputs,
                &mut warnings,
            )
        };
        let upstream =
            route_upstream(route).and_then(|u| spec.upstreams.iter().find(|x| x.name == u));
        let Some(upstream) = upstream else {
            return Err(vs.error(&format!("spec.routes[{i}]"), "route has no upstream"));
        };
        location(
            &mut c,
            route,
            upstream,
            &upstream_name(&upstream.name),
            &location_policies,
            redirect_var,
            env,
        );
    }
    c.line(0, "}");

    let state = if warnings.is_empty() {
        ResourceState::new(
            vs,
            ControllerState::Valid,
            "AddedOrUpdated",
            format!("Configuration for {ns}/{name} was added or updated "),
            warnings,
        )
    } else {
        let message = format!(
            "Configuration for {ns}/{name} was added or updated ; with warning(s): {}",
            warnings.join("; ")
        );
        ResourceState::new(
            vs,
            ControllerState::Warning,
            "AddedOrUpdatedWithWarning",
            message,
            warnings,
        )
    };
    Ok(VsOutput {
        file_name,
        config: Some(c.finish()),
        state,
        host: spec.host,
    })
}

/// `spec.tls.redirect` when enabled (`generateTLSRedirectConfig`).
pub(crate) fn tls_redirect(spec: &VirtualServerSpec) -> Option<&TlsRedirect> {
    spec.tls
        .as_ref()
        .and_then(|t| t.redirect.as_ref())
        .filter(|r| r.enable)
}

/// The variable the redirect tests against `'http'` (`generateTLSRedirectBasedOn`):
/// the connection's own scheme, or the `X-Forwarded-Proto` header a client sends.
pub(crate) fn redirect_based_on(redirect: &TlsRedirect) -> &'static str {
    match redirect.based_on.as_deref() {
        Some("x-forwarded-proto") => "$http_x_forwarded_proto",
        _ => "$scheme",
    }
}

/// The `upstream` block of a `VirtualServer`'s upstream (what `$proxy_host` is).
pub(crate) fn upstream_name(namespace: &str, name: &str, upstream: &str) -> String {
    format!("vs_{namespace}_{name}_{upstream}")
}

/// The upstream a route passes or proxies to.
pub(crate) fn route_upstream(route: &Route) -> Option<&str> {
    let action = route.action.as_ref()?;
    action
        .pass
        .as_deref()
        .or_else(|| action.proxy.as_ref().map(|p| p.upstream.as_str()))
}

fn location(
    c: &mut Conf,
    route: &Route,
    upstream: &Upstream,
    upstream_name: &str,
    policies: &PoliciesCfg,
    redirect_var: Option<&str>,
    env: &RenderEnv,
) {
    let proxy = route.action.as_ref().and_then(|a| a.proxy.as_ref());
    c.blank();
    c.line(1, &format!("location {} {{", location_path(&route.path)));
    // `ServiceName`: the Service without its namespace (ParseServiceReference).
    let service = upstream
        .service
        .split_once('/')
        .map_or(upstream.service.as_str(), |(_, name)| name);
    c.line(2, &format!("set $service \"{service}\";"));
    if let Some(code) = policies.error_return {
        c.line(2, &format!("return {code};"));
    }
    render::access_control(c, 2, &policies.allow, &policies.deny);
    if let Some(e) = &policies.egress_mtls {
        render::egress_mtls(c, 2, "proxy", e, env);
    }
    let keepalive = upstream.keepalive.unwrap_or(0) > 0;
    c.line(
        2,
        &format!(
            "set $default_connection_header {};",
            if keepalive { "\"\"" } else { "close" }
        ),
    );
    for r in rewrites(&route.path, proxy) {
        c.line(2, &format!("rewrite {r};"));
    }
    let time = |v: &Option<String>| time_or(v.as_deref(), "60s");
    c.line(
        2,
        &format!("proxy_connect_timeout {};", time(&upstream.connect_timeout)),
    );
    c.line(
        2,
        &format!("proxy_read_timeout {};", time(&upstream.read_timeout)),
    );
    c.line(
        2,
        &format!("proxy_send_timeout {};", time(&upstream.send_timeout)),
    );
    c.line(
        2,
        &format!(
            "client_max_body_size {};",
            upstream.client_max_body_size.as_deref().unwrap_or("1m")
        ),
    );
    if let Some(size) = &upstream.client_body_buffer_size {
        c.line(2, &format!("client_body_buffer_size {size};"));
    }
    c.blank();
    c.line(
        2,
        &format!(
            "proxy_buffering {};",
            if upstream.buffering.unwrap_or(true) {
                "on"
            } else {
                "off"
            }
        ),
    );
    if let Some(size) = &upstream.buffer_size {
        c.line(2, &format!("proxy_buffer_size {size};"));
    }
    c.line(2, "proxy_http_version 1.1;");
    c.line(2, "proxy_set_header Upgrade $http_upgrade;");
    c.line(2, "proxy_set_header Connection $vs_connection_header;");
    let request_headers = proxy.and_then(|p| p.request_headers.as_ref());
    let pass_headers = request_headers.and_then(|h| h.pass).unwrap_or(true);
    c.line(
        2,
        &format!(
            "proxy_pass_request_headers {};",
            if pass_headers { "on" } else { "off" }
        ),
    );
    let custom = request_headers.map_or(&[][..], |h| h.set.as_slice());
    let has = |name: &str| custom.iter().any(|h| h.name.eq_ignore_ascii_case(name));
    let proto = redirect_var.unwrap_or("$scheme");
    for (header, value) in [
        ("X-Real-IP", "$remote_addr"),
        ("X-Forwarded-For", "$proxy_add_x_forwarded_for"),
        ("X-Forwarded-Host", "$host"),
        ("X-Forwarded-Port", "$server_port"),
        ("X-Forwarded-Proto", proto),
    ] {
        if !has(header) {
            c.line(2, &format!("proxy_set_header {header} {value};"));
        }
    }
    for h in custom {
        c.line(
            2,
            &format!(
                "proxy_set_header {} {};",
                h.name,
                render::go_quote(&h.value)
            ),
        );
    }
    if !has("Host") {
        c.line(2, "proxy_set_header Host \"$host\";");
    }
    if let Some(response) = proxy.and_then(|p| p.response_headers.as_ref()) {
        for h in &response.hide {
            c.line(2, &format!("proxy_hide_header {h};"));
        }
        for h in &response.pass {
            c.line(2, &format!("proxy_pass_header {h};"));
        }
        if !response.ignore.is_empty() {
            c.line(
                2,
                &format!("proxy_ignore_headers {};", response.ignore.join(" ")),
            );
        }
        for h in &response.add {
            let always = if h.always { "always" } else { "" };
            c.line(
                2,
                &format!(
                    "add_header {} {} {always};",
                    h.name,
                    render::go_quote(&h.value)
                ),
            );
        }
    }
    let scheme = if upstream.tls.as_ref().is_some_and(|t| t.enable) {
        "https"
    } else {
        "http"
    };
    let rewrite = proxy_pass_rewrite(&route.path, proxy);
    c.line(
        2,
        &format!("proxy_pass {scheme}://{upstream_name}{rewrite};"),
    );
    c.line(
        2,
        &format!(
            "proxy_next_upstream {};",
            upstream.next_upstream.as_deref().unwrap_or("error timeout")
        ),
    );
    c.line(
        2,
        &format!(
            "proxy_next_upstream_timeout {};",
            time_or(upstream.next_upstream_timeout.as_deref(), "0s")
        ),
    );
    c.line(
        2,
        &format!(
            "proxy_next_upstream_tries {};",
            upstream.next_upstream_tries.unwrap_or(0)
        ),
    );
    c.line(1, "}");
}

/// `generateRewrites` for a route's own location (not internal): a regex
/// route rewrites its match; other routes rewrite in `proxy_pass`.
pub(crate) fn rewrites(path: &str, proxy: Option<&ProxyAction>) -> Vec<String> {
    let Some(rewrite) = proxy
        .and_then(|p| p.rewrite_path.as_deref())
        .filter(|r| !r.is_empty())
    else {
        return Vec::new();
    };
    let Some(regex) = path.strip_prefix('~') else {
        return Vec::new();
    };
    let trimmed = regex.strip_prefix('*').unwrap_or(regex).trim();
    vec![format!("\"^{trimmed}\" \"{rewrite}\" break")]
}

/// `generateProxyPassRewrite`: the rewrite `proxy_pass` carries, for `/`, `=` and `^~` routes.
pub(crate) fn proxy_pass_rewrite(path: &str, proxy: Option<&ProxyAction>) -> String {
    let Some(p) = proxy else { return String::new() };
    if path.starts_with('/') || path.starts_with('=') || path.starts_with("^~") {
        p.rewrite_path.clone().unwrap_or_default()
    } else {
        String::new()
    }
}

/// `generatePath`: one space after `^~` and `=`, regexes quoted after `~` / `~*`.
pub(crate) fn location_path(path: &str) -> String {
    if let Some(rest) = path.strip_prefix("^~") {
        format!("^~ {}", rest.trim_start())
    } else if let Some(rest) = path.strip_prefix("~*") {
        format!("~* \"{}\"", rest.trim_start())
    } else if let Some(rest) = path.strip_prefix('~') {
        format!("~ \"{}\"", rest.trim_start())
    } else if let Some(rest) = path.strip_prefix('=') {
        format!("= {}", rest.trim_start())
    } else {
        path.to_string()
    }
}
