//! NIC's `VirtualServer` validation (`pkg/apis/configuration/validation/
//! virtualserver.go` and `common.go`, OSS) for the fields the local substrate
//! renders: what makes a `VirtualServer` Invalid, in NIC's words. Fields it
//! does not render are refused before this runs (`virtualserver::unsupported`,
//! and the parse of `VirtualServerSpec`).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use super::field;
use crate::manifest::kinds::{
    Action, Header, PolicyRef, ProxyAction, Route, TlsRedirect, Upstream, VirtualServerSpec, VsTls,
};

/// `ValidateVirtualServer`: every error of the spec, aggregated.
pub(crate) fn validate(spec: &VirtualServerSpec, namespace: &str) -> Result<(), String> {
    let mut errors = validate_host(&spec.host, "spec.host");
    errors.extend(validate_tls(spec.tls.as_ref()));
    errors.extend(validate_policies(
        &spec.policies,
        "spec.policies",
        namespace,
    ));
    let (upstream_errors, names) = validate_upstreams(&spec.upstreams);
    errors.extend(upstream_errors);
    errors.extend(validate_routes(&spec.routes, &names, namespace));
    // validateExternalDNS, with NIC's released flags (no -enable-external-dns).
    let dns_enabled = spec
        .external_dns
        .as_ref()
        .and_then(|d| d.get("enable"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    if dns_enabled {
        errors.push(field::forbidden(
            "spec.externalDNS",
            "field requires externalDNS enablement",
        ));
    }
    field::aggregate(errors)
}

/// `validateHost`: required, a DNS-1123 subdomain or `*.` and one.
pub(crate) fn validate_host(host: &str, path: &str) -> Vec<String> {
    if host.is_empty() {
        return vec![field::required(path, "")];
    }
    let messages = if host.starts_with("*.") {
        field::wildcard_dns1123_subdomain(host)
    } else {
        field::dns1123_subdomain(host)
    };
    field::invalid_each(path, host, messages)
}

/// `validateTLS`: the Secret's name and the redirect.
fn validate_tls(tls: Option<&VsTls>) -> Vec<String> {
    let Some(tls) = tls else { return Vec::new() };
    let secret = tls.secret.as_deref().unwrap_or("");
    let mut errors = secret_name(secret, "spec.tls.secret");
    if let Some(r) = &tls.redirect {
        errors.extend(validate_tls_redirect(r));
    }
    // validateTLSCmFields, with NIC's released flags (no -enable-cert-manager).
    if tls.cert_manager.is_some() {
        errors.push(field::forbidden(
            "spec.tls.cert-manager",
            "field requires cert-manager enablement",
        ));
        if secret.is_empty() {
            errors.push(field::forbidden(
                "spec.tls.cert-manager",
                "field requires TLS.Secret to be specified",
            ));
        }
    }
    errors
}

/// `validateSecretName` (`validateK8SName`): empty is allowed.
fn secret_name(name: &str, path: &str) -> Vec<String> {
    if name.is_empty() {
        return Vec::new();
    }
    field::invalid_each(path, name, field::dns1123_subdomain(name))
}

fn validate_tls_redirect(r: &TlsRedirect) -> Vec<String> {
    let mut errors = Vec::new();
    if let Some(code) = r.code
        && ![301, 302, 307, 308].contains(&code)
    {
        errors.push(field::invalid_number(
            "spec.tls.redirect.code",
            code,
            "status code out of accepted range. accepted values are '301', '302', '307', '308'",
        ));
    }
    if let Some(based_on) = r.based_on.as_deref()
        && !["", "scheme", "x-forwarded-proto"].contains(&based_on)
    {
        errors.push(field::invalid(
            "spec.tls.redirect.basedOn",
            based_on,
            "accepted values are 'scheme', 'x-forwarded-proto'",
        ));
    }
    errors
}

/// `validatePolicies`: names, namespaces, and no policy twice (the namespace
/// defaulting to the owner's).
pub(crate) fn validate_policies(refs: &[PolicyRef], path: &str, namespace: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let mut keys = BTreeSet::new();
    for (i, p) in refs.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let explicit = p.namespace.as_deref().unwrap_or("");
        let ns = if explicit.is_empty() {
            namespace
        } else {
            explicit
        };
        let key = format!("{ns}/{}", p.name);
        if !keys.insert(key.clone()) {
            errors.push(field::duplicate(&at, &key));
        }
        if p.name.is_empty() {
            errors.push(field::required(&format!("{at}.name"), ""));
        } else {
            errors.extend(field::invalid_each(
                &format!("{at}.name"),
                &p.name,
                field::dns1123_subdomain(&p.name),
            ));
        }
        if !explicit.is_empty() {
            errors.extend(field::invalid_each(
                &format!("{at}.namespace"),
                explicit,
                field::dns1123_label(explicit),
            ));
        }
    }
    errors
}

/// `validateDNS1035Label`: required, then the label rules.
fn dns1035_label(name: &str, path: &str) -> Vec<String> {
    if name.is_empty() {
        return vec![field::required(path, "")];
    }
    field::invalid_each(path, name, field::dns1035_label(name))
}

/// `validateVirtualServerServiceName`: `service` or `namespace/service`.
fn service_name(name: &str, path: &str) -> Vec<String> {
    let Some((namespace, service)) = name.split_once('/') else {
        return dns1035_label(name, path);
    };
    if service.contains('/') {
        return vec![field::invalid(
            path,
            name,
            " service reference must be in the format namespace/service-name",
        )];
    }
    if namespace.is_empty() || !field::dns1123_label(namespace).is_empty() {
        return vec![field::invalid(
            path,
            name,
            "invalid namespace in service reference",
        )];
    }
    if !dns1035_label(service, path).is_empty() {
        return vec![field::invalid(
            path,
            name,
            "invalid service name in service reference",
        )];
    }
    Vec::new()
}

/// `validateTime`: empty is allowed.
fn time(value: Option<&str>, path: &str) -> Vec<String> {
    match value {
        Some(v) if !v.is_empty() && field::parse_time(v).is_none() => {
            vec![field::invalid(path, v, "invalid time string")]
        }
        _ => Vec::new(),
    }
}

/// `validateOffset`: empty is allowed.
fn offset(value: Option<&str>, path: &str) -> Vec<String> {
    match value {
        Some(v) if !v.is_empty() && field::parse_offset(v).is_none() => vec![field::invalid(
            path,
            v,
            "must consist of numeric characters followed by a valid size suffix. 'k|K|m|M|g|G \
             (e.g. '16', or '32k', or '64M', or '2G', regex used for validation is '\\d+[kKmMgG]?')",
        )],
        _ => Vec::new(),
    }
}

/// `validateSize`: empty is allowed.
pub(crate) fn size(value: Option<&str>, path: &str) -> Vec<String> {
    match value {
        Some(v) if !v.is_empty() && field::parse_size(v).is_none() => vec![field::invalid(
            path,
            v,
            "must consist of numeric characters followed by a valid size suffix. 'k|K|m|M \
             (e.g. '16', or '32k', or '64M', regex used for validation is '\\d+[kKmM]?')",
        )],
        _ => Vec::new(),
    }
}

/// `validatePositiveIntOrZeroFromPointer`.
fn positive_or_zero(value: Option<i64>, path: &str) -> Vec<String> {
    match value {
        Some(n) if n < 0 => vec![field::invalid_number(path, n, "must be positive or zero")],
        _ => Vec::new(),
    }
}

/// `validateNextUpstream`: known parameters, none twice.
fn next_upstream(value: Option<&str>, path: &str) -> Vec<String> {
    const VALID: [&str; 12] = [
        "error",
        "timeout",
        "invalid_header",
        "http_500",
        "http_502",
        "http_503",
        "http_504",
        "http_403",
        "http_404",
        "http_429",
        "non_idempotent",
        "off",
    ];
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    for p in value.unwrap_or("").split_whitespace() {
        if !VALID.contains(&p) {
            errors.push(field::invalid(path, p, "not a valid parameter"));
        }
        if !seen.insert(p) {
            errors.push(field::invalid(path, p, "can not have duplicate parameters"));
        }
    }
    errors
}

/// `validateUpstreams`: each upstream's errors, and the names routes may use.
fn validate_upstreams(upstreams: &[Upstream]) -> (Vec<String>, BTreeSet<String>) {
    let mut errors = Vec::new();
    let mut names = BTreeSet::new();
    for (i, u) in upstreams.iter().enumerate() {
        let at = |child: &str| format!("spec.upstreams[{i}].{child}");
        let name_errors = dns1035_label(&u.name, &at("name"));
        if !name_errors.is_empty() {
            errors.extend(name_errors);
        } else if !names.insert(u.name.clone()) {
            errors.push(field::duplicate(&at("name"), &u.name));
        }
        errors.extend(service_name(&u.service, &at("service")));
        errors.extend(time(u.connect_timeout.as_deref(), &at("connect-timeout")));
        errors.extend(time(u.read_timeout.as_deref(), &at("read-timeout")));
        errors.extend(time(u.send_timeout.as_deref(), &at("send-timeout")));
        errors.extend(next_upstream(
            u.next_upstream.as_deref(),
            &at("next-upstream"),
        ));
        errors.extend(time(
            u.next_upstream_timeout.as_deref(),
            &at("next-upstream-timeout"),
        ));
        errors.extend(positive_or_zero(
            Some(u.next_upstream_tries.unwrap_or(0)),
            &at("next-upstream-tries"),
        ));
        if let Some(method) = u.lb_method.as_deref().filter(|m| !m.is_empty())
            && let Err(e) = field::parse_lb_method(method)
        {
            errors.push(field::invalid(&at("lb-method"), method, &e));
        }
        errors.extend(time(u.fail_timeout.as_deref(), &at("fail-timeout")));
        errors.extend(positive_or_zero(u.max_fails, &at("max-fails")));
        errors.extend(positive_or_zero(u.keepalive, &at("keepalive")));
        errors.extend(positive_or_zero(u.max_conns, &at("max-conns")));
        errors.extend(offset(
            u.client_max_body_size.as_deref(),
            &at("client-max-body-size"),
        ));
        errors.extend(size(u.buffer_size.as_deref(), &at("buffer-size")));
        if let Some(t) = u.type_.as_deref()
            && !["", "grpc", "http"].contains(&t)
        {
            errors.push(field::invalid(
                &at("type"),
                t,
                "must be one of `grpc` or `http`",
            ));
        }
        errors.extend(
            field::port_number(i64::from(u.port))
                .into_iter()
                .map(|m| field::invalid_number(&at("port"), i64::from(u.port), &m)),
        );
    }
    (errors, names)
}

/// `NormalizePath`: no space between a location modifier and its URI.
fn normalize_path(path: &str) -> String {
    for modifier in ["~*", "~", "^~", "="] {
        if let Some(rest) = path.strip_prefix(modifier) {
            return format!("{modifier}{}", rest.trim_start());
        }
    }
    path.to_string()
}

/// `validateVirtualServerRoutes`: each route, and no path twice.
fn validate_routes(routes: &[Route], upstreams: &BTreeSet<String>, namespace: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let mut paths = BTreeSet::new();
    for (i, r) in routes.iter().enumerate() {
        let at = format!("spec.routes[{i}]");
        let route_errors = validate_route(r, &at, upstreams, namespace);
        if !route_errors.is_empty() {
            errors.extend(route_errors);
        } else if !paths.insert(normalize_path(&r.path)) {
            errors.push(field::duplicate(&format!("{at}.path"), &r.path));
        }
    }
    errors
}

/// `validateRoute`, for routes with an `action` (the other kinds are refused earlier).
fn validate_route(
    r: &Route,
    at: &str,
    upstreams: &BTreeSet<String>,
    namespace: &str,
) -> Vec<String> {
    let mut errors = route_path(&r.path, &format!("{at}.path"));
    errors.extend(validate_policies(
        &r.policies,
        &format!("{at}.policies"),
        namespace,
    ));
    let mut count = 0;
    if let Some(action) = &r.action {
        errors.extend(validate_action(
            action,
            &format!("{at}.action"),
            upstreams,
            &r.path,
        ));
        count += 1;
    }
    if r.route.as_deref().is_some_and(|v| !v.is_empty()) {
        count += 1;
    }
    if count != 1 {
        errors.push(field::invalid(
            at,
            "",
            "must specify exactly one of `action`, `splits`, `route` or `routeSelector`",
        ));
    }
    errors
}

/// `validateAction` for `pass` and `proxy`.
fn validate_action(
    a: &Action,
    at: &str,
    upstreams: &BTreeSet<String>,
    route_path: &str,
) -> Vec<String> {
    let count = usize::from(a.pass.as_deref().is_some_and(|p| !p.is_empty()))
        + usize::from(a.redirect.is_some())
        + usize::from(a.return_.is_some())
        + usize::from(a.proxy.is_some());
    if count != 1 {
        return vec![field::required(
            at,
            "action must specify exactly one of `pass`, `redirect`, `return` or `proxy`",
        )];
    }
    let mut errors = Vec::new();
    if let Some(pass) = a.pass.as_deref().filter(|p| !p.is_empty()) {
        errors.extend(referenced_upstream(pass, &format!("{at}.pass"), upstreams));
    }
    if let Some(p) = &a.proxy {
        errors.extend(validate_proxy(
            p,
            &format!("{at}.proxy"),
            upstreams,
            route_path,
        ));
    }
    errors
}

/// `validateReferencedUpstream`.
fn referenced_upstream(name: &str, at: &str, upstreams: &BTreeSet<String>) -> Vec<String> {
    let errors = dns1035_label(name, at);
    if !errors.is_empty() {
        return errors;
    }
    if upstreams.contains(name) {
        Vec::new()
    } else {
        vec![field::not_found(at, name)]
    }
}

/// `validateActionProxy`.
fn validate_proxy(
    p: &ProxyAction,
    at: &str,
    upstreams: &BTreeSet<String>,
    route_path: &str,
) -> Vec<String> {
    let mut errors = referenced_upstream(&p.upstream, &format!("{at}.upstream"), upstreams);
    if let Some(h) = &p.request_headers {
        for (i, header) in h.set.iter().enumerate() {
            errors.extend(proxy_header(header, &format!("{at}.requestHeaders[{i}]")));
        }
    }
    if let Some(h) = &p.response_headers {
        let at = format!("{at}.responseHeaders");
        for (list, name) in [(&h.hide, "hide"), (&h.pass, "pass")] {
            for (i, header) in list.iter().enumerate() {
                errors.extend(field::invalid_each(
                    &format!("{at}.{name}[{i}]"),
                    header,
                    http_header_name(header),
                ));
            }
        }
        for (i, add) in h.add.iter().enumerate() {
            let header = Header {
                name: add.name.clone(),
                value: add.value.clone(),
            };
            errors.extend(proxy_header(&header, &format!("{at}.add[{i}]")));
        }
        for (i, ignored) in h.ignore.iter().enumerate() {
            if !IGNORE_HEADERS.contains(&ignored.as_str()) {
                errors.push(field::invalid(
                    &format!("{at}.ignore[{i}]"),
                    ignored,
                    &format!(
                        "not a valid ignore header name. Accepted headers are : {}",
                        IGNORE_HEADERS.join(", ")
                    ),
                ));
            }
        }
    }
    if let Some(rewrite) = p.rewrite_path.as_deref().filter(|r| !r.is_empty()) {
        let at = format!("{at}.rewritePath");
        errors.extend(no_variables(rewrite, &at));
        if route_path.starts_with('~') {
            if let Err(e) = escaped_string(rewrite, &["/rewrite$1", "/images"]) {
                errors.push(field::invalid(&at, rewrite, &e));
            }
        } else {
            errors.extend(validate_path(rewrite, &at));
        }
    }
    errors
}

/// `validIgnoreHeaders`, in NIC's source order (NIC prints them from a map, in no fixed order).
const IGNORE_HEADERS: [&str; 9] = [
    "X-Accel-Redirect",
    "X-Accel-Expires",
    "X-Accel-Limit-Rate",
    "X-Accel-Buffering",
    "X-Accel-Charset",
    "Expires",
    "Cache-Control",
    "Set-Cookie",
    "Vary",
];

/// `validateStringNoVariables`: `$` only before a digit.
fn no_variables(s: &str, at: &str) -> Vec<String> {
    let bytes = s.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'$' && i + 1 < bytes.len() && !bytes[i + 1].is_ascii_digit() {
            return vec![field::invalid(
                at,
                s,
                "`$` character can be only followed by a number",
            )];
        }
    }
    Vec::new()
}

/// `validation.IsHTTPHeaderName`.
pub(crate) fn http_header_name(name: &str) -> Vec<String> {
    let ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Vec::new()
    } else {
        vec![
            "a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', \
             regex used for validation is '[-A-Za-z0-9]+')"
                .into(),
        ]
    }
}

/// `validateActionProxyHeader`.
fn proxy_header(h: &Header, at: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let name_at = format!("{at}.name");
    if h.name.is_empty() {
        errors.push(field::required(&name_at, ""));
    }
    errors.extend(field::invalid_each(
        &name_at,
        &h.name,
        http_header_name(&h.name),
    ));
    let value_at = format!("{at}.value");
    if let Err(e) = escaped_string(
        &h.value,
        &[
            "Hello World! \\n",
            "\\\"${request_uri}\\\" is unavailable. \\n",
        ],
    ) {
        errors.push(field::invalid(&value_at, &h.value, &e));
    }
    errors.extend(string_with_variables(&h.value, &value_at));
    errors
}

/// `ValidateEscapedString`: every `"` escaped, no trailing lone `\`.
pub(crate) fn escaped_string(s: &str, examples: &[&str]) -> Result<(), String> {
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Err(escaped_string_error(examples)),
            // RE2's `\\.` takes any character but a newline.
            '\\' if matches!(chars.next(), None | Some('\n')) => {
                return Err(escaped_string_error(examples));
            }
            _ => {}
        }
    }
    Ok(())
}

fn escaped_string_error(examples: &[&str]) -> String {
    let mut msg = String::from(
        "must have all '\"' (double quotes) escaped and must not end with an unescaped '\\' (backslash)",
    );
    if examples.is_empty() {
        msg.push_str(" (regex used for validation is '([^\"\\\\]|\\\\.)*')");
        return msg;
    }
    msg.push_str(" (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            msg.push_str(" or ");
        }
        msg.push_str(&format!("'{e}', "));
    }
    msg.push_str("regex used for validation is '([^\"\\\\]|\\\\.)*')");
    msg
}

/// `actionProxyHeaderVariables`, in NIC's source order.
const PROXY_HEADER_VARIABLES: [&str; 44] = [
    "request_uri",
    "request_method",
    "request_body",
    "scheme",
    "args",
    "host",
    "request_time",
    "request_length",
    "nginx_version",
    "pid",
    "connection",
    "remote_addr",
    "remote_port",
    "time_iso8601",
    "time_local",
    "server_addr",
    "server_port",
    "server_name",
    "server_protocol",
    "connections_active",
    "connections_reading",
    "connections_writing",
    "connections_waiting",
    "ssl_cipher",
    "ssl_ciphers",
    "ssl_client_cert",
    "ssl_client_escaped_cert",
    "ssl_client_fingerprint",
    "ssl_client_i_dn",
    "ssl_client_i_dn_legacy",
    "ssl_client_raw_cert",
    "ssl_client_s_dn",
    "ssl_client_s_dn_legacy",
    "ssl_client_serial",
    "ssl_client_v_end",
    "ssl_client_v_remain",
    "ssl_client_v_start",
    "ssl_client_verify",
    "ssl_curves",
    "ssl_early_data",
    "ssl_protocol",
    "ssl_server_name",
    "ssl_session_id",
    "ssl_session_reused",
];

/// `validateStringWithVariables` with the proxy header variables (OSS).
fn string_with_variables(s: &str, at: &str) -> Vec<String> {
    const MSG: &str = "variables must be enclosed in curly braces, for example ${host}";
    if s.ends_with('$') {
        return vec![field::invalid(at, s, "must not end with $")];
    }
    for (i, _) in s.match_indices('$') {
        let rest = &s[i + 1..];
        if !rest.starts_with('{') || !rest.contains('}') {
            return vec![field::invalid(at, s, MSG)];
        }
    }
    static VARIABLE: OnceLock<regex::Regex> = OnceLock::new();
    let variable =
        VARIABLE.get_or_init(|| regex::Regex::new(r"\$\{([^}]*)\}").expect("valid pattern"));
    let mut errors = Vec::new();
    for caps in variable.captures_iter(s) {
        let name = caps.get(1).map_or("", |m| m.as_str());
        let special = ["arg_", "http_", "cookie_", "jwt_claim_", "jwt_header_"]
            .iter()
            .any(|p| name.starts_with(p));
        if special {
            errors.extend(special_variable(name, at));
        } else if !PROXY_HEADER_VARIABLES.contains(&name) {
            errors.push(field::invalid(
                at,
                name,
                &format!(
                    "'{name}' contains an invalid NGINX variable. Accepted variables are: {}",
                    PROXY_HEADER_VARIABLES.join(", ")
                ),
            ));
        }
    }
    errors
}

/// `validateSpecialVariable` (OSS: `jwt_*` are Plus only).
fn special_variable(name: &str, at: &str) -> Vec<String> {
    if name.starts_with("jwt_header") || name.starts_with("jwt_claim") {
        if name.splitn(3, '_').count() != 3 {
            return vec![field::invalid(at, name, "is invalid variable")];
        }
        return vec![field::forbidden(at, "is only supported in NGINX Plus")];
    }
    let Some((kind, value)) = name.split_once('_') else {
        return vec![field::invalid(at, name, "is invalid variable")];
    };
    let word = |ok: bool, msg: &str| {
        if ok {
            Vec::new()
        } else {
            vec![field::invalid(at, name, msg)]
        }
    };
    let underscored = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    match kind {
        "arg" => word(
            underscored,
            "a valid argument name must consist of alphanumeric characters or '_' (e.g. 'argument_123', \
             regex used for validation is '[_A-Za-z0-9]+')",
        ),
        "cookie" => word(
            underscored,
            "a valid cookie name must consist of alphanumeric characters or '_' (e.g. 'my_cookie_123', \
             regex used for validation is '[_A-Za-z0-9]+')",
        ),
        "http" => word(
            http_header_name(&value.replace('_', "-")).is_empty() && !value.contains('-'),
            "a valid special variable must consists of alphanumeric characters or '_'",
        ),
        _ => vec![field::invalid(at, name, "unknown special variable")],
    }
}

/// `validatePath` (common.go): an absolute path without spaces, `{`, `}`, `;` or `\`.
pub(crate) fn validate_path(path: &str, at: &str) -> Vec<String> {
    if path.is_empty() {
        return vec![field::required(at, "")];
    }
    if let Some(error) = field::unsafe_path(path, at) {
        return vec![error];
    }
    let ok = path.starts_with('/')
        && !path
            .chars()
            .any(|c| matches!(c, '{' | '}' | ';' | '\\') || go_space(c));
    if ok {
        Vec::new()
    } else {
        vec![field::invalid(
            at,
            path,
            "must start with / and must not include any whitespace character, `{`, `}` or `;` \
             (e.g. '/', or '/path', or '/path/subpath-123', regex used for validation is '/[^\\s{};\\\\]*')",
        )]
    }
}

/// RE2's `\s`.
fn go_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

/// `validateRoutePath`: `/`, `=`, `^~` paths, or a `~` / `~*` regex.
fn route_path(path: &str, at: &str) -> Vec<String> {
    if path.is_empty() {
        return vec![field::required(at, "")];
    }
    if let Some(rest) = path.strip_prefix("^~") {
        validate_path(rest.trim_start(), at)
    } else if path.starts_with('~') {
        regex_path(path, at)
    } else if path.starts_with('/') {
        validate_path(path, at)
    } else if let Some(rest) = path.strip_prefix('=') {
        validate_path(rest.trim_start(), at)
    } else {
        vec![field::invalid(at, path, "must start with /, ~, = or ^~")]
    }
}

/// `validateRegexPath`: the regex after its modifier compiles (NIC uses the
/// backtracking `regexp2`; `fancy-regex` accepts the same lookarounds, and its
/// words follow NIC's "must be a valid regular expression: "), and its quotes are escaped.
fn regex_path(path: &str, at: &str) -> Vec<String> {
    let regex = path
        .strip_prefix("~*")
        .or_else(|| path.strip_prefix('~'))
        .map_or(path, str::trim_start);
    if let Err(e) = fancy_regex::Regex::new(regex) {
        return vec![field::invalid(
            at,
            path,
            &format!("must be a valid regular expression: {e}"),
        )];
    }
    match escaped_string(regex, &["*.jpg", "^/images/image_*.png$"]) {
        Ok(()) => Vec::new(),
        Err(e) => vec![field::invalid(at, path, &e)],
    }
}
