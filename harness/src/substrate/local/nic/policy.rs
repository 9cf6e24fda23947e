//! Policies as NIC 5.5 handles them: object validation (Policy status), then
//! per-owner generation of the ingressMTLS / egressMTLS config, where any error
//! throws away every policy of that context and becomes `return 500;`.
//! Source: `pkg/apis/configuration/validation/policy.go`, `internal/configs/policy.go`.

use crate::manifest::ControllerState;
use crate::manifest::NamespacedName;
use std::collections::BTreeMap;

use super::field;
use super::secrets::{SecretStore, TYPE_CA, TYPE_TLS};
use crate::manifest::kinds::{AccessControl, EgressMtls, IngressMtls, PolicyRef, PolicySpec};

/// A Policy's status, as NIC writes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct Status {
    pub state: ControllerState,
    pub reason: String,
    pub message: String,
}

/// The policy types in the order NIC validates them (`policyFields` in
/// `pkg/apis/configuration/validation/policy.go`).
const VALIDATION_ORDER: [&str; 12] = [
    "accessControl",
    "rateLimit",
    "jwt",
    "basicAuth",
    "ingressMTLS",
    "egressMTLS",
    "externalAuth",
    "oidc",
    "apiKey",
    "waf",
    "cache",
    "cors",
];

/// Types NIC OSS rejects before reading their fields: their gate check returns
/// early (policy.go `gateCheck`, `earlyReturn`), so their outcome is known
/// without modelling them.
const REJECTED_ON_OSS: [&str; 2] = ["jwt", "oidc"];

fn in_validation_order(spec: &PolicySpec) -> Vec<&'static str> {
    let present = spec.types();
    VALIDATION_ORDER
        .into_iter()
        .filter(|t| present.contains(t))
        .collect()
}

/// The types of `spec` whose fields NIC would validate but the local substrate
/// does not model: those before the first early return (policy.go
/// `validatePolicySpec`). Anything else is decided by [`validate`].
pub(crate) fn unmodelled_types(spec: &PolicySpec) -> Vec<&'static str> {
    let mut out = Vec::new();
    for t in in_validation_order(spec) {
        if REJECTED_ON_OSS.contains(&t) {
            break;
        }
        if !PolicySpec::RENDERED.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// Validate a Policy object as NIC OSS does (`ValidatePolicy` with
/// `PolicyValidationConfig{}`); `Err` holds the field errors as NIC joins them.
/// Types listed by [`unmodelled_types`] must have been refused before.
pub(crate) fn validate(spec: &PolicySpec) -> Result<(), String> {
    let mut errors = Vec::new();
    let mut count = 0;
    for t in in_validation_order(spec) {
        match t {
            "accessControl" => {
                validate_access_control(
                    spec.access_control.as_ref().expect("present"),
                    &mut errors,
                );
            }
            "ingressMTLS" => {
                validate_ingress_mtls(spec.ingress_mtls.as_ref().expect("present"), &mut errors);
            }
            "egressMTLS" => {
                validate_egress_mtls(spec.egress_mtls.as_ref().expect("present"), &mut errors);
            }
            // policy.go: the jwt and oidc gate checks on OSS, then an early return.
            "jwt" => {
                errors.push(field::forbidden(
                    "spec.jwt",
                    "jwt secrets are only supported in NGINX Plus",
                ));
                return field::aggregate(errors);
            }
            "oidc" => {
                errors.push(field::forbidden(
                    "spec.oidc",
                    "OIDC must be enabled via cli argument -enable-oidc to use OIDC policy",
                ));
                errors.push(field::forbidden(
                    "spec.oidc",
                    "OIDC is only supported in NGINX Plus",
                ));
                return field::aggregate(errors);
            }
            // Refused before validation (see `unmodelled_types`).
            _ => {}
        }
        count += 1;
    }
    if count != 1 {
        errors.push(field::invalid(
            "spec",
            "",
            "must specify exactly one of: `accessControl`, `rateLimit`, `ingressMTLS`, `egressMTLS`, \
             `basicAuth`, `apiKey`, `cache`, `cors`, `externalAuth`",
        ));
    }
    field::aggregate(errors)
}

pub(crate) fn status(namespace: &str, name: &str, result: &Result<(), String>) -> Status {
    match result {
        Ok(()) => Status {
            state: ControllerState::Valid,
            reason: "AddedOrUpdated".into(),
            message: format!("Policy {namespace}/{name} was added or updated"),
        },
        Err(e) => Status {
            state: ControllerState::Invalid,
            reason: "Rejected".into(),
            message: format!("Policy {namespace}/{name} is invalid and was rejected: {e}"),
        },
    }
}

/// `validateSecretName` (common.go): empty is allowed, else a DNS-1123 subdomain.
fn check_secret_name(value: &str, path: &str, errors: &mut Vec<String>) {
    if !value.is_empty() {
        errors.extend(field::invalid_each(
            path,
            value,
            field::dns1123_subdomain(value),
        ));
    }
}

/// `validateAccessControl`: exactly one of allow/deny, each entry an IP or CIDR.
fn validate_access_control(a: &AccessControl, errors: &mut Vec<String>) {
    let mut count = 0;
    for (name, list) in [("allow", &a.allow), ("deny", &a.deny)] {
        let Some(list) = list else { continue };
        for (i, entry) in list.iter().enumerate() {
            if !is_ip_or_cidr(entry) {
                errors.push(field::invalid(
                    &format!("spec.accessControl.{name}[{i}]"),
                    entry,
                    "must be a CIDR or IP",
                ));
            }
        }
        count += 1;
    }
    if count != 1 {
        errors.push(field::invalid(
            "spec.accessControl",
            "",
            "must specify exactly one of: `allow` or `deny`",
        ));
    }
}

/// Go's `net.ParseCIDR` or `net.ParseIP` accepts it.
fn is_ip_or_cidr(text: &str) -> bool {
    use std::net::IpAddr;
    match text.split_once('/') {
        None => text.parse::<IpAddr>().is_ok(),
        Some((ip, bits)) => {
            let max = match ip.parse::<IpAddr>() {
                Ok(IpAddr::V4(_)) => 32,
                Ok(IpAddr::V6(_)) => 128,
                Err(_) => return false,
            };
            !bits.is_empty()
                && bits.bytes().all(|b| b.is_ascii_digit())
                && bits.parse::<u32>().is_ok_and(|n| n <= max)
        }
    }
}

/// `validateIngressMTLS`.
fn validate_ingress_mtls(m: &IngressMtls, errors: &mut Vec<String>) {
    let secret = m.client_cert_secret.as_deref().unwrap_or("");
    if secret.is_empty() {
        errors.push(field::required("spec.ingressMTLS.clientCertSecret", ""));
        return;
    }
    check_secret_name(secret, "spec.ingressMTLS.clientCertSecret", errors);
    // `ValidateParameter` lists the accepted values from a Go map, in no fixed
    // order; this is one of the orders NIC prints.
    if let Some(v) = m.verify_client.as_deref().filter(|v| !v.is_empty())
        && !["on", "off", "optional", "optional_no_ca"].contains(&v)
    {
        errors.push(field::invalid(
            "spec.ingressMTLS.verifyClient",
            v,
            &format!(
                "'{v}' contains an invalid NGINX parameter. Accepted parameters are: on, off, optional, optional_no_ca"
            ),
        ));
    }
    if let Some(d) = m.verify_depth.filter(|d| *d < 0) {
        errors.push(field::invalid_number(
            "spec.ingressMTLS.verifyDepth",
            d,
            "must be positive",
        ));
    }
}

/// `validateEgressMTLS`.
fn validate_egress_mtls(e: &EgressMtls, errors: &mut Vec<String>) {
    check_secret_name(
        e.tls_secret.as_deref().unwrap_or(""),
        "spec.egressMTLS.tlsSecret",
        errors,
    );
    let trusted = e.trusted_cert_secret.as_deref().unwrap_or("");
    if e.verify_server.unwrap_or(false) && trusted.is_empty() {
        errors.push(field::required(
            "spec.egressMTLS.trustedCertSecret",
            "must be set when verifyServer is 'true'",
        ));
        return;
    }
    check_secret_name(trusted, "spec.egressMTLS.trustedCertSecret", errors);
    if let Some(d) = e.verify_depth.filter(|d| *d < 0) {
        errors.push(field::invalid_number(
            "spec.egressMTLS.verifyDepth",
            d,
            "must be positive",
        ));
    }
    // validateSSLName: a DNS-1123 subdomain when set.
    check_secret_name(
        e.ssl_name.as_deref().unwrap_or(""),
        "spec.egressMTLS.sslName",
        errors,
    );
}

/// Where policies are referenced from; NIC names it in its warnings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Context {
    Spec,
    Route,
    /// A `VirtualServerRoute`'s subroute (not rendered locally; `lint` reads it).
    Subroute,
    Minion,
}

impl Context {
    fn name(&self) -> &'static str {
        match self {
            Context::Spec => "spec",
            Context::Route => "route",
            Context::Subroute => "subroute",
            Context::Minion => "minion",
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct IngressMtlsCfg {
    pub client_cert: String,
    pub client_crl: Option<String>,
    pub verify_client: String,
    pub verify_depth: i64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct EgressMtlsCfg {
    /// The combined cert+key file (both directives use it).
    pub certificate: Option<String>,
    pub trusted_cert: Option<String>,
    pub verify_server: bool,
    pub verify_depth: i64,
    pub protocols: String,
    pub ciphers: String,
    pub session_reuse: bool,
    pub server_name: bool,
    pub ssl_name: String,
}

/// The policy configuration of one context (a server, or a location).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PoliciesCfg {
    pub ingress_mtls: Option<IngressMtlsCfg>,
    pub egress_mtls: Option<EgressMtlsCfg>,
    /// `return 500;` when any policy of the context failed.
    pub error_return: Option<u16>,
    /// accessControl: `allow X; ... deny all;` and `deny Y; ... allow all;`.
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

impl PoliciesCfg {
    fn failed() -> Self {
        PoliciesCfg {
            error_return: Some(500),
            ..PoliciesCfg::default()
        }
    }
}

/// What the controller knows while generating one owner's config.
#[derive(Clone, Copy)]
pub(crate) struct Inputs<'a> {
    /// Valid Policies by `ns/name` (invalid ones are left out, as NIC does).
    pub policies: &'a BTreeMap<String, PolicySpec>,
    pub secrets: &'a SecretStore<'a>,
    pub owner_namespace: &'a str,
    /// True when the owner is an Ingress (fewer policy types are allowed).
    pub on_ingress: bool,
}

/// What NIC objects to in one context's policies, and its warning text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub kind: ProblemKind,
    /// The policy (`ns/name`) the warning names.
    pub policy: String,
    /// NIC's warning, word for word.
    pub message: String,
}

/// Why NIC objects; all but [`ProblemKind::Ignored`] throw the context's
/// policies away and render `return 500;`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProblemKind {
    /// The Policy does not exist, is invalid, or is of another class.
    MissingOrInvalid,
    /// A policy type NIC does not apply to Ingress resources.
    NotSupportedOnIngress,
    /// ingressMTLS outside a server's `spec` (route, subroute, minion).
    NotAllowedInContext,
    /// ingressMTLS on a server without TLS.
    TlsRequired,
    /// A Secret the policy names is of the wrong type.
    SecretWrongType,
    /// A Secret the policy names is missing, of a type NIC cannot see, or holds data NIC refuses.
    SecretInvalid,
    /// The policy is ignored with a warning; the context is still served.
    Ignored,
}

/// Collects a context's problems.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, kind: ProblemKind, policy: &str, message: String) {
        self.0.push(Problem {
            kind,
            policy: policy.to_string(),
            message,
        });
    }
}

/// `generatePolicies` for the mTLS types.
pub(crate) fn generate(
    refs: &[PolicyRef],
    context: Context,
    tls: bool,
    inputs: &Inputs<'_>,
    warnings: &mut Vec<String>,
) -> PoliciesCfg {
    let (config, problems) = generate_reporting(refs, context, tls, inputs);
    warnings.extend(problems.into_iter().map(|p| p.message));
    config
}

/// [`generate`], with each warning's kind and policy: what `lint` reports.
pub(crate) fn generate_reporting(
    refs: &[PolicyRef],
    context: Context,
    tls: bool,
    inputs: &Inputs<'_>,
) -> (PoliciesCfg, Vec<Problem>) {
    let mut problems = Problems::default();
    let config = generate_into(refs, context, tls, inputs, &mut problems);
    (config, problems.0)
}

fn generate_into(
    refs: &[PolicyRef],
    context: Context,
    tls: bool,
    inputs: &Inputs<'_>,
    warnings: &mut Problems,
) -> PoliciesCfg {
    let mut config = PoliciesCfg::default();
    for r in refs {
        let namespace = r
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(inputs.owner_namespace);
        let key = format!("{namespace}/{}", r.name);
        let Some(policy) = inputs.policies.get(&key) else {
            warnings.push(
                ProblemKind::MissingOrInvalid,
                &key,
                format!("Policy {key} is missing or invalid"),
            );
            return PoliciesCfg::failed();
        };
        let supported_on_ingress = [
            "accessControl",
            "cors",
            "externalAuth",
            "ingressMTLS",
            "egressMTLS",
            "waf",
        ];
        if inputs.on_ingress
            && !policy
                .types()
                .iter()
                .all(|t| supported_on_ingress.contains(t))
        {
            warnings.push(
                ProblemKind::NotSupportedOnIngress,
                &key,
                format!("Policy {key} is not supported on Ingress resources"),
            );
            return PoliciesCfg::failed();
        }
        let failed = if let Some(m) = &policy.ingress_mtls {
            add_ingress_mtls(
                &mut config,
                m,
                &key,
                namespace,
                context,
                tls,
                inputs.secrets,
                warnings,
            )
        } else if let Some(e) = &policy.egress_mtls {
            add_egress_mtls(&mut config, e, &key, namespace, inputs.secrets, warnings)
        } else if let Some(a) = &policy.access_control {
            add_access_control(&mut config, a, &key, warnings);
            false
        } else {
            // Only rendered types get here: configure() refuses the others.
            false
        };
        if failed {
            return PoliciesCfg::failed();
        }
    }
    config
}

/// `addAccessControlConfig`: lists accumulate over the context's policies.
fn add_access_control(
    config: &mut PoliciesCfg,
    a: &AccessControl,
    key: &str,
    warnings: &mut Problems,
) {
    config.allow.extend(a.allow.iter().flatten().cloned());
    config.deny.extend(a.deny.iter().flatten().cloned());
    if !config.allow.is_empty() && !config.deny.is_empty() {
        warnings.push(
            ProblemKind::Ignored,
            key,
            "AccessControl policy (or policies) with deny rules is overridden by policy (or policies) with allow rules"
                .into(),
        );
    }
}

/// `addIngressMTLSConfig`; returns true on an error.
#[allow(clippy::too_many_arguments)]
fn add_ingress_mtls(
    config: &mut PoliciesCfg,
    m: &IngressMtls,
    key: &str,
    namespace: &str,
    context: Context,
    tls: bool,
    secrets: &SecretStore<'_>,
    warnings: &mut Problems,
) -> bool {
    if context != Context::Spec {
        warnings.push(
            ProblemKind::NotAllowedInContext,
            key,
            format!(
                "IngressMTLS policy {key} is not allowed in the {} context",
                context.name()
            ),
        );
        return true;
    }
    if !tls {
        warnings.push(
            ProblemKind::TlsRequired,
            key,
            format!("TLS must be enabled for IngressMTLS policy {key}"),
        );
        return true;
    }
    if config.ingress_mtls.is_some() {
        warnings.push(ProblemKind::Ignored, key, format!("Multiple ingressMTLS policies are not allowed. IngressMTLS policy {key} will be ignored"));
        return false;
    }
    let secret_key = NamespacedName::new(namespace, m.client_cert_secret.as_deref().unwrap_or(""));
    let secret = secrets.get(&secret_key);
    if let Some(t) = secret.type_.as_deref().filter(|t| *t != TYPE_CA) {
        warnings.push(ProblemKind::SecretWrongType, key, format!(
            "IngressMTLS policy {key} references a secret {secret_key} of a wrong type '{t}', must be '{TYPE_CA}'"
        ));
        return true;
    }
    if let Some(e) = &secret.error {
        warnings.push(
            ProblemKind::SecretInvalid,
            key,
            format!("IngressMTLS policy {key:?} references an invalid secret {secret_key}: {e}"),
        );
        return true;
    }
    let mut fields = secret.path.split_whitespace();
    let client_cert = fields.next().unwrap_or_default().to_string();
    let crl_in_secret = fields.next().map(str::to_string);
    if secret.has_crl && m.crl_file_name.is_some() {
        warnings.push(ProblemKind::Ignored, key, format!(
            "Both ca.crl in the Secret and ingressMTLS.crlFileName fields cannot be used. ca.crl in {secret_key} \
             will be ignored and {key} will be applied"
        ));
    }
    let client_crl = match (&m.crl_file_name, secret.has_crl) {
        (Some(file), _) => Some(format!("{}/{file}", secrets_dir_of(&client_cert))),
        (None, true) => crl_in_secret,
        (None, false) => None,
    };
    config.ingress_mtls = Some(IngressMtlsCfg {
        client_cert,
        client_crl,
        verify_client: verify_client(m),
        verify_depth: m.verify_depth.unwrap_or(1),
    });
    false
}

/// `ssl_verify_client` as NIC renders it (default `on`).
pub(crate) fn verify_client(m: &IngressMtls) -> String {
    m.verify_client
        .clone()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "on".into())
}

/// The secrets folder, from a path inside it (`crlFileName` lives there too).
fn secrets_dir_of(path: &str) -> &str {
    path.rsplit_once('/').map_or(".", |(dir, _)| dir)
}

/// NIC's `sslName` when the Policy sets none: the upstream block's name.
pub(crate) const DEFAULT_SSL_NAME: &str = "$proxy_host";

/// `addEgressMTLSConfig`; returns true on an error.
fn add_egress_mtls(
    config: &mut PoliciesCfg,
    e: &EgressMtls,
    key: &str,
    namespace: &str,
    secrets: &SecretStore<'_>,
    warnings: &mut Problems,
) -> bool {
    if config.egress_mtls.is_some() {
        warnings.push(ProblemKind::Ignored, key, format!(
            "Multiple egressMTLS policies in the same context is not valid. EgressMTLS policy {key} will be ignored"
        ));
        return false;
    }
    let mut resolve = |name: &Option<String>, wanted: &str| -> Result<Option<String>, ()> {
        let Some(name) = name.as_deref().filter(|n| !n.is_empty()) else {
            return Ok(None);
        };
        let secret_key = NamespacedName::new(namespace, name);
        let secret = secrets.get(&secret_key);
        if let Some(t) = secret.type_.as_deref().filter(|t| *t != wanted) {
            warnings.push(ProblemKind::SecretWrongType, key, format!(
                "EgressMTLS policy {key} references a secret {secret_key} of a wrong type '{t}', must be '{wanted}'"
            ));
            return Err(());
        }
        if let Some(err) = &secret.error {
            warnings.push(
                ProblemKind::SecretInvalid,
                key,
                format!("EgressMTLS policy {key} references an invalid secret {secret_key}: {err}"),
            );
            return Err(());
        }
        Ok(Some(secret.path))
    };
    let Ok(certificate) = resolve(&e.tls_secret, TYPE_TLS) else {
        return true;
    };
    let Ok(trusted) = resolve(&e.trusted_cert_secret, TYPE_CA) else {
        return true;
    };
    // A CA reference carries "<crt> <crl>"; the trusted certificate is the first.
    let trusted_cert = trusted.and_then(|p| p.split_whitespace().next().map(str::to_string));
    config.egress_mtls = Some(egress_settings(e, certificate, trusted_cert));
    false
}

/// The `proxy_ssl_*` values of an egressMTLS policy, NIC's defaults filled in
/// (no TLS 1.3 unless `protocols` says so, `sslName` `$proxy_host`, session reuse on).
pub(crate) fn egress_settings(
    e: &EgressMtls,
    certificate: Option<String>,
    trusted_cert: Option<String>,
) -> EgressMtlsCfg {
    EgressMtlsCfg {
        certificate,
        trusted_cert,
        verify_server: e.verify_server.unwrap_or(false),
        verify_depth: e.verify_depth.unwrap_or(1),
        protocols: e
            .protocols
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "TLSv1 TLSv1.1 TLSv1.2".into()),
        ciphers: e
            .ciphers
            .clone()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "DEFAULT".into()),
        session_reuse: e.session_reuse.unwrap_or(true),
        server_name: e.server_name.unwrap_or(false),
        ssl_name: e
            .ssl_name
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_SSL_NAME.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> PolicySpec {
        crate::yaml::parse_one::<PolicySpec>(yaml, std::path::Path::new("p.yaml")).expect("spec")
    }

    #[test]
    fn exactly_one_policy_type() {
        let err = validate(&spec("{}")).unwrap_err();
        assert!(
            err.starts_with("spec: Invalid value: \"\": must specify exactly one of:"),
            "{err}"
        );
        let two = spec("ingressMTLS: {clientCertSecret: a}\negressMTLS: {tlsSecret: b}\n");
        assert!(validate(&two).unwrap_err().contains("exactly one"));
    }

    #[test]
    fn nic_field_errors() {
        assert_eq!(
            validate(&spec("ingressMTLS: {}")).unwrap_err(),
            "spec.ingressMTLS.clientCertSecret: Required value"
        );
        assert!(
            validate(&spec(
                "ingressMTLS: {clientCertSecret: a, verifyClient: maybe}"
            ))
            .unwrap_err()
            .contains("'maybe' contains an invalid NGINX parameter")
        );
        assert_eq!(
            validate(&spec("egressMTLS: {verifyServer: true}")).unwrap_err(),
            "spec.egressMTLS.trustedCertSecret: Required value: must be set when verifyServer is 'true'"
        );
        assert!(validate(&spec("egressMTLS: {sslName: $proxy_host}")).is_err());
        assert!(
            validate(&spec(
                "egressMTLS: {tlsSecret: a, verifyServer: on, trustedCertSecret: b}"
            ))
            .is_ok()
        );
    }
}
