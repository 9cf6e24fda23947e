//! NIC's Ingress validation (`internal/k8s/validation.go` `validateIngress`,
//! with the controller's default flags: OSS, no snippets, no App Protect, no
//! `-allow-empty-ingress-host`) for the annotations the local substrate
//! renders and the Ingress spec: what makes NIC reject an Ingress, in its words.
//! Other `nginx.org/` and `nginx.com/` annotations are refused before this runs.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::field;
use super::vs_validation::escaped_string;
use crate::manifest::kinds::{IngressPath, IngressSpec};

pub(crate) const MERGEABLE: &str = "nginx.org/mergeable-ingress-type";
pub(crate) const SSL_SERVICES: &str = "nginx.org/ssl-services";
pub(crate) const SSL_REDIRECT: &str = "nginx.org/ssl-redirect";
/// Still read when `nginx.org/ssl-redirect` is absent, with a deprecation warning.
pub(crate) const SSL_REDIRECT_DEPRECATED: &str = "ingress.kubernetes.io/ssl-redirect";
pub(crate) const REDIRECT_CODE: &str = "nginx.org/http-redirect-code";
pub(crate) const CONNECT_TIMEOUT: &str = "nginx.org/proxy-connect-timeout";
pub(crate) const READ_TIMEOUT: &str = "nginx.org/proxy-read-timeout";
pub(crate) const SEND_TIMEOUT: &str = "nginx.org/proxy-send-timeout";
pub(crate) const MAX_BODY: &str = "nginx.org/client-max-body-size";
pub(crate) const POLICIES: &str = "nginx.org/policies";

/// How NIC checks one annotation (`annotationValidations`): a non-empty value
/// first where NIC requires one, then the value itself.
#[derive(Clone, Copy)]
enum Check {
    /// A feature gate checked before anything else, which NIC's default flags
    /// close (OSS, no snippets, no App Protect, no internal routes): the
    /// Ingress is always rejected, with this detail.
    Gate(&'static str),
    MergeableType,
    ServiceList,
    Bool,
    RedirectCode,
    Time,
    Offset,
    Policies,
}

const PLUS: Check = Check::Gate("annotation requires NGINX Plus");
const APP_PROTECT: Check = Check::Gate("annotation requires AppProtect");

/// The annotations whose outcome NIC decides without the local substrate
/// rendering anything beyond them, and their NIC checks (the non-gate ones are
/// `validateRequiredAnnotation` first).
const CHECKS: [(&str, Check); 29] = [
    ("nginx.com/health-checks", PLUS),
    ("nginx.com/health-checks-mandatory", PLUS),
    ("nginx.com/health-checks-mandatory-queue", PLUS),
    ("nginx.com/slow-start", PLUS),
    ("nginx.com/jwt-realm", PLUS),
    ("nginx.com/jwt-key", PLUS),
    ("nginx.com/jwt-token", PLUS),
    ("nginx.com/jwt-login-url", PLUS),
    ("nginx.com/sticky-cookie-services", PLUS),
    ("nginx.com/policies", PLUS),
    (
        "nginx.org/server-snippets",
        Check::Gate("snippet specified but snippets feature is not enabled"),
    ),
    (
        "nginx.org/location-snippets",
        Check::Gate("snippet specified but snippets feature is not enabled"),
    ),
    ("appprotect.f5.com/app-protect-enable", APP_PROTECT),
    (
        "appprotect.f5.com/app-protect-security-log-enable",
        APP_PROTECT,
    ),
    ("appprotect.f5.com/app-protect-policy", APP_PROTECT),
    ("appprotect.f5.com/app-protect-security-log", APP_PROTECT),
    (
        "appprotect.f5.com/app-protect-security-log-destination",
        APP_PROTECT,
    ),
    (
        "appprotectdos.f5.com/app-protect-dos-resource",
        Check::Gate("annotation requires AppProtectDos"),
    ),
    (
        "nsm.nginx.com/internal-route",
        Check::Gate("annotation requires Internal Routes enabled"),
    ),
    (MERGEABLE, Check::MergeableType),
    (SSL_SERVICES, Check::ServiceList),
    (SSL_REDIRECT, Check::Bool),
    (SSL_REDIRECT_DEPRECATED, Check::Bool),
    (REDIRECT_CODE, Check::RedirectCode),
    (CONNECT_TIMEOUT, Check::Time),
    (READ_TIMEOUT, Check::Time),
    (SEND_TIMEOUT, Check::Time),
    (MAX_BODY, Check::Offset),
    (POLICIES, Check::Policies),
];

/// The annotation names whose outcome the local substrate knows.
pub(crate) fn modelled() -> impl Iterator<Item = &'static str> {
    CHECKS.iter().map(|(name, _)| *name)
}

/// `validateIngress`: annotations in name order, then the spec, then the
/// master or minion rules. `Err` is NIC's event text.
pub(crate) fn validate(
    annotations: &BTreeMap<String, String>,
    spec: &IngressSpec,
) -> Result<(), String> {
    field::aggregate(errors(annotations, spec))
}

/// [`validate`]'s errors one by one (NIC's `field.ErrorList`).
pub(crate) fn errors(annotations: &BTreeMap<String, String>, spec: &IngressSpec) -> Vec<String> {
    let mut errors = validate_annotations(annotations, &spec_services(spec));
    errors.extend(validate_spec(spec));
    match annotations.get(MERGEABLE).map(String::as_str) {
        Some("master") => errors.extend(master_spec(spec)),
        Some("minion") => errors.extend(minion_spec(spec)),
        _ => {}
    }
    errors
}

/// `getSpecServices`: every backend Service name.
fn spec_services(spec: &IngressSpec) -> Vec<&str> {
    spec.default_backend
        .iter()
        .map(|b| b.service.name.as_str())
        .chain(
            spec.rules
                .iter()
                .filter_map(|r| r.http.as_ref())
                .flat_map(|h| &h.paths)
                .map(|p| p.backend.service.name.as_str()),
        )
        .collect()
}

/// `validateIngressAnnotations` for the modelled annotations; `BTreeMap`
/// order is NIC's `sortedAnnotationNames`.
fn validate_annotations(annotations: &BTreeMap<String, String>, services: &[&str]) -> Vec<String> {
    let mut errors = Vec::new();
    for (name, value) in annotations {
        let Some((_, check)) = CHECKS.iter().find(|(n, _)| n == name) else {
            continue;
        };
        let path = format!("annotations.{name}");
        if let Check::Gate(detail) = check {
            errors.push(field::forbidden(&path, detail));
            continue;
        }
        if value.is_empty() {
            errors.push(field::required(&path, ""));
            continue;
        }
        errors.extend(annotation(*check, &path, value, services));
    }
    errors
}

fn annotation(check: Check, path: &str, value: &str, services: &[&str]) -> Vec<String> {
    let one = |detail: &str| vec![field::invalid(path, value, detail)];
    match check {
        Check::Gate(detail) => vec![field::forbidden(path, detail)],
        Check::MergeableType => {
            if value == "master" || value == "minion" {
                Vec::new()
            } else {
                one("must be one of: 'master' or 'minion'")
            }
        }
        // ParseServiceList: split on commas, nothing trimmed.
        Check::ServiceList => {
            let unknown: Vec<&str> = value.split(',').filter(|s| !services.contains(s)).collect();
            if unknown.is_empty() {
                Vec::new()
            } else {
                one(&format!(
                    "must be a comma-separated list of services. The following services were not found: {}",
                    unknown.join(",")
                ))
            }
        }
        Check::Bool => match field::parse_bool(value) {
            Some(_) => Vec::new(),
            None => one("must be a boolean"),
        },
        Check::RedirectCode => match parse_http_redirect_code(value) {
            Ok(_) => Vec::new(),
            Err(e) => one(&e),
        },
        Check::Time => match field::parse_time(value) {
            Some(_) => Vec::new(),
            None => one("must be a time"),
        },
        Check::Offset => match field::parse_offset(value) {
            Some(_) => Vec::new(),
            None => one("must be an offset"),
        },
        Check::Policies => {
            let mut errors = comma_separated_list(path, value);
            if errors.is_empty() {
                errors = policy_names(value, path);
            }
            errors
        }
    }
}

/// `ParseHTTPRedirectCode` (configmaps.go).
pub(crate) fn parse_http_redirect_code(value: &str) -> Result<u16, String> {
    let code: i64 = go_atoi(value).map_err(|e| format!("invalid redirect code: {e}"))?;
    match code {
        301 | 302 | 307 | 308 => Ok(code as u16),
        _ => Err(
            "status code out of accepted range. accepted values are '301', '302', '307', '308'"
                .into(),
        ),
    }
}

/// Go's `strconv.Atoi`, with its error text.
fn go_atoi(value: &str) -> Result<i64, String> {
    let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.Atoi: parsing {}: invalid syntax",
            field::go_quote(value)
        ));
    }
    value.parse().map_err(|_| {
        format!(
            "strconv.Atoi: parsing {}: value out of range",
            field::go_quote(value)
        )
    })
}

/// `validateCommaSeparatedList`: each trimmed item an escaped annotation value.
fn comma_separated_list(path: &str, value: &str) -> Vec<String> {
    value
        .split(',')
        .map(go_trim_space)
        .filter(|item| !valid_annotation_value(item))
        .map(|item| {
            field::invalid(
                path,
                item,
                "a valid annotation value must have all '\"' escaped and must not contain any '$' or end with an unescaped '\\'",
            )
        })
        .collect()
}

/// `annotationValueFmt`: `([^"$\\]|\\[^$])*`.
fn valid_annotation_value(s: &str) -> bool {
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '$' => return false,
            '\\' => match chars.next() {
                None | Some('$') => return false,
                Some(_) => {}
            },
            _ => {}
        }
    }
    true
}

/// Go's `strings.TrimSpace`.
fn go_trim_space(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || c == '\u{85}' || c == '\u{a0}')
}

/// `validatePolicyNames`: `name` or `namespace/name`, each a DNS-1123 subdomain.
pub(crate) fn policy_names(value: &str, path: &str) -> Vec<String> {
    let mut errors = Vec::new();
    for policy in value.split(',').map(go_trim_space) {
        let name = match policy.split_once('/') {
            Some((namespace, name)) => {
                if namespace.is_empty() {
                    errors.push(field::invalid(
                        path,
                        policy,
                        "policy namespace cannot be empty",
                    ));
                }
                let dns = field::dns1123_subdomain(namespace);
                if !dns.is_empty() {
                    errors.push(field::invalid(
                        path,
                        policy,
                        &format!(
                            "policy namespace must be a valid DNS subdomain: {}",
                            dns.join("; ")
                        ),
                    ));
                }
                name
            }
            None => policy,
        };
        if name.is_empty() {
            errors.push(field::invalid(path, policy, "policy name cannot be empty"));
        }
        let dns = field::dns1123_subdomain(name);
        if !dns.is_empty() {
            errors.push(field::invalid(
                path,
                policy,
                &format!(
                    "policy name must be a valid DNS subdomain: {}",
                    dns.join("; ")
                ),
            ));
        }
    }
    errors
}

/// `validateIngressSpec` (empty hosts not allowed: NIC's default).
fn validate_spec(spec: &IngressSpec) -> Vec<String> {
    if spec.rules.is_empty() {
        return vec![field::required("spec.rules", "")];
    }
    let mut errors = Vec::new();
    let mut hosts = Vec::new();
    for (i, rule) in spec.rules.iter().enumerate() {
        let at = format!("spec.rules[{i}]");
        if rule.host.is_empty() {
            errors.push(field::required(&format!("{at}.host"), ""));
        } else if hosts.contains(&rule.host.as_str()) {
            errors.push(field::duplicate(&format!("{at}.host"), &rule.host));
        } else {
            hosts.push(rule.host.as_str());
        }
        for (j, path) in rule.http.iter().flat_map(|h| h.paths.iter()).enumerate() {
            errors.extend(validate_path(path, &format!("{at}.http.paths[{j}].path")));
        }
    }
    errors
}

/// `validatePath` (internal/k8s/validation.go).
fn validate_path(p: &IngressPath, at: &str) -> Vec<String> {
    let path = p.path.as_str();
    if path.is_empty() {
        if p.path_type == "ImplementationSpecific" {
            return Vec::new();
        }
        return vec![field::required(
            at,
            "path is required for Exact and Prefix PathTypes",
        )];
    }
    if let Some(error) = field::unsafe_path(path, at) {
        return vec![error];
    }
    let spaced = path
        .chars()
        .any(|c| c == ';' || matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' '));
    if !path.starts_with('/') || spaced {
        return vec![field::invalid(
            at,
            path,
            "must start with / and must not include any whitespace character or `;` (e.g. '/', or '/path', or \
             '/path/subpath-123', regex used for validation is '/[^\\s;]*')",
        )];
    }
    // validateRegexPath: NIC compiles every path with regexp2.
    if let Err(e) = fancy_regex::Regex::new(path) {
        return vec![field::invalid(
            at,
            path,
            &format!("must be a valid regular expression: {e}"),
        )];
    }
    if let Err(e) = escaped_string(path, &["*.jpg", "^/images/image_*.png$"]) {
        return vec![field::invalid(at, path, &e)];
    }
    let mut errors = Vec::new();
    static BRACES: OnceLock<regex::Regex> = OnceLock::new();
    let braces = BRACES.get_or_init(|| regex::Regex::new(r"\{(.*?)\}").expect("valid pattern"));
    if braces.captures_iter(path).any(|c| {
        c.get(1)
            .is_some_and(|m| m.as_str().chars().any(|ch| ch.is_ascii_alphabetic()))
    }) {
        errors.push(field::invalid(
            at,
            path,
            "must not include curly braces containing alphabetical characters",
        ));
    }
    static ILLEGAL: OnceLock<regex::Regex> = OnceLock::new();
    let illegal = ILLEGAL
        .get_or_init(|| regex::Regex::new(r"^/etc/|/root|/var|\\n|\\r$").expect("valid pattern"));
    if illegal.is_match(path) {
        errors.push(field::invalid(at, path, "must not contain invalid paths"));
    }
    errors
}

/// `validateMasterSpec`: one host, no paths.
fn master_spec(spec: &IngressSpec) -> Vec<String> {
    if spec.rules.len() != 1 {
        return vec![field::too_many("spec.rules", spec.rules.len(), 1)];
    }
    let paths = spec.rules[0].http.as_ref().map_or(0, |h| h.paths.len());
    if paths > 0 {
        return vec![field::too_many("spec.rules[0].http.paths", paths, 0)];
    }
    Vec::new()
}

/// `validateMinionSpec`: no TLS, one host, at least one path.
fn minion_spec(spec: &IngressSpec) -> Vec<String> {
    let mut errors = Vec::new();
    let tls = spec.tls.as_ref().map_or(0, Vec::len);
    if tls > 0 {
        errors.push(field::too_many("spec.tls", tls, 0));
    }
    if spec.rules.len() != 1 {
        errors.push(field::too_many("spec.rules", spec.rules.len(), 1));
        return errors;
    }
    if spec.rules[0]
        .http
        .as_ref()
        .is_none_or(|h| h.paths.is_empty())
    {
        errors.push(field::required(
            "spec.rules[0].http.paths",
            "must include at least one path",
        ));
    }
    errors
}
