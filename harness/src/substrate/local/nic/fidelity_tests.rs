//! Fidelity to NGINX Ingress Controller v5.5.4, proven against NIC's own tests.
//!
//! Each test feeds our renderer the inputs of one of NIC's test cases and asserts
//! the directives, values, order, scope and warning texts NIC's test expects:
//! template snapshots (`internal/configs/version1/__snapshots__/template_test.snap`,
//! `version2/__snapshots__/templates_test.snap`), `policy_test.go`
//! (`TestGeneratePolicies`, `TestGeneratePoliciesFails`) and `ingress_test.go`.
//! The expected lines are NIC's; the code under test is ours.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use super::policy::{self, Context, EgressMtlsCfg, IngressMtlsCfg, Inputs, PoliciesCfg};
use super::render::{self, Conf, RenderEnv};
use super::secrets::SecretStore;
use super::{Endpoints, configure};
use crate::manifest::kinds::{PolicyRef, PolicySpec};
use crate::manifest::{self, Object};
use crate::pki::{self, CertSpec, KeyAlgorithm, KeyEncoding, Usage};
use crate::scenario::steps::SecretData;

/// Secrets by `ns/name`, as NIC's tests list their secret references.
pub(super) type Secrets = Vec<(&'static str, SecretData)>;

const CERT: &str = "/etc/nginx/secrets/default-ingress-mtls-secret-ca.crt";
const CRL: &str = "/etc/nginx/secrets/default-ingress-mtls-secret-ca.crl";

/// A self-signed ECDSA P-256 CA named `common_name`, valid for a day.
pub(super) fn self_signed_ca(common_name: &str) -> pki::Issued {
    let mut spec = CertSpec::new(common_name, time::Duration::days(1));
    spec.is_ca = true;
    spec.usages = vec![Usage::CertSign];
    pki::issue(
        &spec,
        KeyAlgorithm::Ecdsa(256).generate().expect("key"),
        None,
    )
    .expect("ca")
}

/// A CA certificate and a TLS pair, made once.
pub(super) fn pems() -> &'static (String, String, String) {
    static PEMS: OnceLock<(String, String, String)> = OnceLock::new();
    PEMS.get_or_init(|| {
        let ca = self_signed_ca("fixture CA");
        let leaf = pki::issue(
            &CertSpec::new("secure-app.example.com", time::Duration::days(1)),
            KeyAlgorithm::Ecdsa(256).generate().expect("key"),
            None,
        )
        .expect("leaf");
        let key = pki::encode_key(&leaf.key, KeyEncoding::Pkcs8).expect("pem");
        (ca.cert_pem, leaf.cert_pem, key)
    })
}

pub(super) fn ca_secret(with_crl: bool) -> SecretData {
    let mut data = BTreeMap::from([("ca.crt".to_string(), pems().0.clone().into_bytes())]);
    if with_crl {
        data.insert("ca.crl".into(), b"base64crl".to_vec());
    }
    SecretData {
        type_: "nginx.org/ca".into(),
        data,
    }
}

pub(super) fn tls_secret() -> SecretData {
    let (_, cert, key) = pems();
    SecretData {
        type_: "kubernetes.io/tls".into(),
        data: BTreeMap::from([
            ("tls.crt".into(), cert.clone().into_bytes()),
            ("tls.key".into(), key.clone().into_bytes()),
        ]),
    }
}

pub(super) fn spec(yaml: &str) -> PolicySpec {
    crate::yaml::parse_one(yaml, Path::new("policy.yaml")).expect("policy spec")
}

pub(super) fn refs(names: &[&str]) -> Vec<PolicyRef> {
    names
        .iter()
        .map(|n| PolicyRef {
            name: n.to_string(),
            namespace: None,
        })
        .collect()
}

/// `generatePolicies` with NIC's test owner (namespace `default`, a VirtualServer).
pub(super) fn generate(
    policies: &[(&str, &str)],
    secrets: &[(&str, SecretData)],
    order: &[&str],
    context: Context,
    tls: bool,
) -> (PoliciesCfg, Vec<String>) {
    generate_for(policies, secrets, order, context, tls, false)
}

/// [`generate`] for an Ingress owner (`parentType: "ing"`) or a VirtualServer.
pub(super) fn generate_for(
    policies: &[(&str, &str)],
    secrets: &[(&str, SecretData)],
    order: &[&str],
    context: Context,
    tls: bool,
    on_ingress: bool,
) -> (PoliciesCfg, Vec<String>) {
    let policies: BTreeMap<String, PolicySpec> = policies
        .iter()
        .map(|(k, y)| (k.to_string(), spec(y)))
        .collect();
    let secrets: crate::scenario::steps::Secrets = secrets
        .iter()
        .map(|(k, s)| {
            let (ns, name) = k.split_once('/').expect("ns/name");
            (manifest::NamespacedName::new(ns, name), s.clone())
        })
        .collect();
    let store = SecretStore::new(&secrets, "/etc/nginx/secrets");
    let inputs = Inputs {
        policies: &policies,
        secrets: &store,
        owner_namespace: "default",
        on_ingress,
    };
    let mut warnings = Vec::new();
    let cfg = policy::generate(&refs(order), context, tls, &inputs, &mut warnings);
    (cfg, warnings)
}

pub(super) fn err500() -> PoliciesCfg {
    PoliciesCfg {
        error_return: Some(500),
        ..PoliciesCfg::default()
    }
}

pub(super) fn lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

/// `needles` appear in `text` as consecutive directive lines, in this order.
pub(super) fn assert_block(text: &str, needles: &[&str]) {
    let all = lines(text);
    let found = all.windows(needles.len()).any(|w| w == needles);
    assert!(
        found,
        "expected the lines\n  {}\nin order, in:\n{text}",
        needles.join("\n  ")
    );
}

pub(super) fn position(text: &str, needle: &str) -> usize {
    text.find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in:\n{text}"))
}

// ------------------------------------------------ version1 template snapshots

/// `TestExecuteTemplate_ForIngressForNGINXWithIngressMTLSPolicy` (fixture A).
#[test]
fn template_ingress_mtls_block() {
    let mut c = Conf::default();
    let m = IngressMtlsCfg {
        client_cert: "/etc/nginx/secrets/default-ingress-mtls-ca-secret".into(),
        client_crl: None,
        verify_client: "on".into(),
        verify_depth: 2,
    };
    render::ingress_mtls(&mut c, 1, &m);
    assert_eq!(
        lines(&c.finish()),
        [
            "ssl_client_certificate /etc/nginx/secrets/default-ingress-mtls-ca-secret;",
            "ssl_verify_client on;",
            "ssl_verify_depth 2;"
        ]
    );
}

/// Fixture B's `EgressMTLS` value (newIngressConfigWithEgressMTLS).
fn fixture_b() -> EgressMtlsCfg {
    EgressMtlsCfg {
        certificate: Some("/etc/nginx/secrets/default-egress-mtls-secret".into()),
        trusted_cert: Some("/etc/nginx/secrets/default-egress-trusted-ca-secret".into()),
        verify_server: true,
        verify_depth: 2,
        protocols: "TLSv1.2 TLSv1.3".into(),
        ciphers: "HIGH:!aNULL:!MD5".into(),
        session_reuse: false,
        server_name: true,
        ssl_name: "secure-app.example.com".into(),
    }
}

/// `TestExecuteTemplate_ForIngressWithProxyEgressMTLSPolicy` (static secret paths in the test).
#[test]
fn template_proxy_egress_mtls_block() {
    let mut env = RenderEnv::nic();
    env.dynamic_ssl_reload = false;
    let mut c = Conf::default();
    render::egress_mtls(&mut c, 1, "proxy", &fixture_b(), &env);
    assert_eq!(
        lines(&c.finish()),
        [
            "proxy_ssl_certificate /etc/nginx/secrets/default-egress-mtls-secret;",
            "proxy_ssl_certificate_key /etc/nginx/secrets/default-egress-mtls-secret;",
            "proxy_ssl_trusted_certificate /etc/nginx/secrets/default-egress-trusted-ca-secret;",
            "proxy_ssl_verify on;",
            "proxy_ssl_verify_depth 2;",
            "proxy_ssl_protocols TLSv1.2 TLSv1.3;",
            "proxy_ssl_ciphers HIGH:!aNULL:!MD5;",
            "proxy_ssl_session_reuse off;",
            "proxy_ssl_server_name on;",
            "proxy_ssl_name secure-app.example.com;",
        ]
    );
}

/// `TestExecuteTemplate_ForIngressWithGRPCEgressMTLSPolicy`: the location form for gRPC.
#[test]
fn template_grpc_egress_mtls_block() {
    let mut env = RenderEnv::nic();
    env.dynamic_ssl_reload = false;
    let mut c = Conf::default();
    render::egress_mtls(&mut c, 2, "grpc", &fixture_b(), &env);
    let text = c.finish();
    assert_eq!(
        lines(&text).first(),
        Some(&"grpc_ssl_certificate /etc/nginx/secrets/default-egress-mtls-secret;")
    );
    assert!(text.contains(
        "grpc_ssl_trusted_certificate /etc/nginx/secrets/default-egress-trusted-ca-secret;"
    ));
    assert!(text.contains("grpc_ssl_name secure-app.example.com;"));
    assert!(!text.contains("proxy_ssl_certificate"));
}

/// `templates_test.snap` (`VirtualServer` fixtures): an empty `SSLName` renders `proxy_ssl_name ;`,
/// and the certificate lines go through `$secret_dir_path` only with dynamic reload.
#[test]
fn template_vs_location_egress_with_empty_ssl_name() {
    let mut env = RenderEnv::nic();
    env.dynamic_ssl_reload = false;
    let e = EgressMtlsCfg {
        certificate: Some("egress-mtls-secret.pem".into()),
        trusted_cert: Some("trusted-cert.pem".into()),
        verify_server: true,
        verify_depth: 1,
        protocols: "TLSv1.3".into(),
        ciphers: "DEFAULT".into(),
        session_reuse: true,
        server_name: true,
        ssl_name: String::new(),
    };
    let mut c = Conf::default();
    render::egress_mtls(&mut c, 2, "proxy", &e, &env);
    assert_eq!(
        lines(&c.finish()),
        [
            "proxy_ssl_certificate egress-mtls-secret.pem;",
            "proxy_ssl_certificate_key egress-mtls-secret.pem;",
            "proxy_ssl_trusted_certificate trusted-cert.pem;",
            "proxy_ssl_verify on;",
            "proxy_ssl_verify_depth 1;",
            "proxy_ssl_protocols TLSv1.3;",
            "proxy_ssl_ciphers DEFAULT;",
            "proxy_ssl_session_reuse on;",
            "proxy_ssl_server_name on;",
            "proxy_ssl_name ;",
        ]
    );
}

// ------------------------------------------------------------ policy_test.go

fn all_secrets() -> Vec<(&'static str, SecretData)> {
    vec![
        ("default/ingress-mtls-secret", ca_secret(false)),
        ("default/ingress-mtls-secret-crl", ca_secret(true)),
        ("default/egress-mtls-secret", tls_secret()),
        ("default/egress-trusted-ca-secret", ca_secret(false)),
        ("default/egress-trusted-ca-secret-crl", ca_secret(true)),
    ]
}

/// `TestGeneratePolicies` "ingressMTLS reference": defaults depth 1, no CRL.
#[test]
fn policies_ingress_mtls_reference() {
    let (cfg, warnings) = generate(
        &[(
            "default/ingress-mtls-policy",
            "ingressMTLS: {clientCertSecret: ingress-mtls-secret, verifyClient: \"off\"}",
        )],
        &all_secrets(),
        &["ingress-mtls-policy"],
        Context::Spec,
        true,
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        cfg.ingress_mtls,
        Some(IngressMtlsCfg {
            client_cert: CERT.into(),
            client_crl: None,
            verify_client: "off".into(),
            verify_depth: 1
        })
    );
    assert_eq!(cfg.error_return, None);
}

/// `TestGeneratePolicies` "ingressMTLS reference with ca.crl field in secret".
#[test]
fn policies_ingress_mtls_crl_in_secret() {
    let (cfg, _) = generate(
        &[(
            "default/ingress-mtls-policy-crl",
            "ingressMTLS: {clientCertSecret: ingress-mtls-secret-crl, verifyClient: \"off\"}",
        )],
        &all_secrets(),
        &["ingress-mtls-policy-crl"],
        Context::Spec,
        true,
    );
    let m = cfg.ingress_mtls.expect("ingressMTLS");
    assert_eq!(
        m.client_cert,
        "/etc/nginx/secrets/default-ingress-mtls-secret-crl-ca.crt"
    );
    assert_eq!(
        m.client_crl.as_deref(),
        Some("/etc/nginx/secrets/default-ingress-mtls-secret-crl-ca.crl")
    );
}

/// `TestGeneratePolicies` "ingressMTLS reference with crl field in policy".
#[test]
fn policies_ingress_mtls_crl_file_name() {
    let (cfg, warnings) = generate(
        &[(
            "default/ingress-mtls-policy-crl",
            "ingressMTLS: {clientCertSecret: ingress-mtls-secret, crlFileName: default-ingress-mtls-secret-ca.crl, verifyClient: \"off\"}",
        )],
        &all_secrets(),
        &["ingress-mtls-policy-crl"],
        Context::Spec,
        true,
    );
    assert!(warnings.is_empty());
    assert_eq!(
        cfg.ingress_mtls,
        Some(IngressMtlsCfg {
            client_cert: CERT.into(),
            client_crl: Some(CRL.into()),
            verify_client: "off".into(),
            verify_depth: 1
        })
    );
}

/// `TestGeneratePolicies` "egressMTLS reference" and "egressMTLS with crt and crl".
#[test]
fn policies_egress_mtls_reference_and_crl_dropped() {
    for (trusted, expected_trusted) in [
        (
            "egress-trusted-ca-secret",
            "/etc/nginx/secrets/default-egress-trusted-ca-secret-ca.crt",
        ),
        (
            "egress-trusted-ca-secret-crl",
            "/etc/nginx/secrets/default-egress-trusted-ca-secret-crl-ca.crt",
        ),
    ] {
        let yaml = format!(
            "egressMTLS: {{tlsSecret: egress-mtls-secret, serverName: true, sessionReuse: false, trustedCertSecret: {trusted}}}"
        );
        let (cfg, warnings) = generate(
            &[("default/egress-mtls-policy", &yaml)],
            &all_secrets(),
            &["egress-mtls-policy"],
            Context::Route,
            false,
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            cfg.egress_mtls,
            Some(EgressMtlsCfg {
                certificate: Some("/etc/nginx/secrets/default-egress-mtls-secret".into()),
                trusted_cert: Some(expected_trusted.into()),
                verify_server: false,
                verify_depth: 1,
                protocols: "TLSv1 TLSv1.1 TLSv1.2".into(),
                ciphers: "DEFAULT".into(),
                session_reuse: false,
                server_name: true,
                ssl_name: "$proxy_host".into(),
            })
        );
    }
}

const INGRESS_MTLS: &str = "ingressMTLS: {clientCertSecret: ingress-mtls-secret}";

/// `TestGeneratePoliciesFails`: each case's result and exact warning.
#[test]
fn policies_fails_ingress_mtls_cases() {
    let invalid_ca = SecretData {
        type_: "nginx.org/ca".into(),
        data: BTreeMap::new(),
    };
    type Case = (&'static str, Secrets, Context, bool, PoliciesCfg, String);
    let cases: Vec<Case> = vec![
        (
            "ingress mtls reference an invalid secret",
            vec![("default/ingress-mtls-secret", invalid_ca.clone())],
            Context::Spec,
            true,
            err500(),
            "IngressMTLS policy \"default/ingress-mtls-policy\" references an invalid secret default/ingress-mtls-secret: CA secret must have the data field ca.crt".into(),
        ),
        (
            "ingress mtls references wrong secret type",
            vec![("default/ingress-mtls-secret", tls_secret())],
            Context::Spec,
            true,
            err500(),
            "IngressMTLS policy default/ingress-mtls-policy references a secret default/ingress-mtls-secret of a wrong type 'kubernetes.io/tls', must be 'nginx.org/ca'".into(),
        ),
        (
            "ingress mtls in the wrong context",
            vec![("default/ingress-mtls-secret", ca_secret(false))],
            Context::Route,
            true,
            err500(),
            "IngressMTLS policy default/ingress-mtls-policy is not allowed in the route context".into(),
        ),
        (
            "ingress mtls on minion ingress (context checked before TLS)",
            vec![],
            Context::Minion,
            false,
            err500(),
            "IngressMTLS policy default/ingress-mtls-policy is not allowed in the minion context".into(),
        ),
        (
            "ingress mtls missing TLS config",
            vec![("default/ingress-mtls-secret", ca_secret(false))],
            Context::Spec,
            false,
            err500(),
            "TLS must be enabled for IngressMTLS policy default/ingress-mtls-policy".into(),
        ),
    ];
    for (name, secrets, context, tls, expected, warning) in cases {
        let (cfg, warnings) = generate(
            &[("default/ingress-mtls-policy", INGRESS_MTLS)],
            &secrets,
            &["ingress-mtls-policy"],
            context,
            tls,
        );
        assert_eq!(cfg, expected, "{name}");
        assert_eq!(warnings, vec![warning], "{name}");
    }
}

/// `TestGeneratePoliciesFails` "ingress mtls absent secret ref": the controller always
/// holds a reference, so a Secret that does not exist reads as invalid (see policy.go).
#[test]
fn policies_fails_missing_secret_reads_as_invalid() {
    let (cfg, warnings) = generate(
        &[("default/ingress-mtls-policy", INGRESS_MTLS)],
        &[],
        &["ingress-mtls-policy"],
        Context::Spec,
        true,
    );
    assert_eq!(cfg, err500());
    assert_eq!(
        warnings,
        [
            "IngressMTLS policy \"default/ingress-mtls-policy\" references an invalid secret default/ingress-mtls-secret: secret doesn't exist or of an unsupported type"
        ]
    );
}

/// `TestGeneratePoliciesFails` "multi ingress mtls": the first wins, a warning names the second.
#[test]
fn policies_fails_multi_ingress_mtls() {
    let (cfg, warnings) = generate(
        &[
            ("default/ingress-mtls-policy", INGRESS_MTLS),
            (
                "default/ingress-mtls-policy2",
                "ingressMTLS: {clientCertSecret: ingress-mtls-secret2}",
            ),
        ],
        &[("default/ingress-mtls-secret", ca_secret(false))],
        &["ingress-mtls-policy", "ingress-mtls-policy2"],
        Context::Spec,
        true,
    );
    assert_eq!(
        cfg.ingress_mtls,
        Some(IngressMtlsCfg {
            client_cert: CERT.into(),
            client_crl: None,
            verify_client: "on".into(),
            verify_depth: 1
        })
    );
    assert_eq!(cfg.error_return, None);
    assert_eq!(
        warnings,
        [
            "Multiple ingressMTLS policies are not allowed. IngressMTLS policy default/ingress-mtls-policy2 will be ignored"
        ]
    );
}

/// `TestGeneratePoliciesFails` "ingress mtls ca.crl and ingressMTLS.Crl set": a warning, not an error.
#[test]
fn policies_fails_both_crls() {
    let (cfg, warnings) = generate(
        &[(
            "default/ingress-mtls-policy",
            "ingressMTLS: {clientCertSecret: ingress-mtls-secret, crlFileName: default-ingress-mtls-secret-ca.crl}",
        )],
        &[("default/ingress-mtls-secret", ca_secret(true))],
        &["ingress-mtls-policy"],
        Context::Spec,
        true,
    );
    assert_eq!(cfg.error_return, None);
    assert_eq!(
        cfg.ingress_mtls.and_then(|m| m.client_crl).as_deref(),
        Some(CRL)
    );
    assert_eq!(
        warnings,
        [
            "Both ca.crl in the Secret and ingressMTLS.crlFileName fields cannot be used. ca.crl in default/ingress-mtls-secret will be ignored and default/ingress-mtls-policy will be applied"
        ]
    );
}

/// `TestGeneratePoliciesFails` egress cases: multi (warning only), wrong types, invalid secrets.
#[test]
fn policies_fails_egress_mtls_cases() {
    let (cfg, warnings) = generate(
        &[
            (
                "default/egress-mtls-policy",
                "egressMTLS: {tlsSecret: egress-mtls-secret}",
            ),
            (
                "default/egress-mtls-policy2",
                "egressMTLS: {tlsSecret: egress-mtls-secret2}",
            ),
        ],
        &[("default/egress-mtls-secret", tls_secret())],
        &["egress-mtls-policy", "egress-mtls-policy2"],
        Context::Route,
        false,
    );
    let e = cfg.egress_mtls.expect("first egress kept");
    assert_eq!(
        e.certificate.as_deref(),
        Some("/etc/nginx/secrets/default-egress-mtls-secret")
    );
    assert!(e.session_reuse && !e.verify_server && !e.server_name);
    assert_eq!(
        (
            e.verify_depth,
            e.ssl_name.as_str(),
            e.trusted_cert.as_deref()
        ),
        (1, "$proxy_host", None)
    );
    assert_eq!(
        warnings,
        [
            "Multiple egressMTLS policies in the same context is not valid. EgressMTLS policy default/egress-mtls-policy2 will be ignored"
        ]
    );

    let invalid_ca = SecretData {
        type_: "nginx.org/ca".into(),
        data: BTreeMap::new(),
    };
    let cases: Vec<(&str, Secrets, &str)> = vec![
        (
            "egressMTLS: {trustedCertSecret: egress-trusted-secret, sslName: foo.com}",
            vec![("default/egress-trusted-secret", invalid_ca)],
            "EgressMTLS policy default/egress-mtls-policy references an invalid secret default/egress-trusted-secret: CA secret must have the data field ca.crt",
        ),
        (
            "egressMTLS: {tlsSecret: egress-mtls-secret, sslName: foo.com}",
            vec![("default/egress-mtls-secret", ca_secret(false))],
            "EgressMTLS policy default/egress-mtls-policy references a secret default/egress-mtls-secret of a wrong type 'nginx.org/ca', must be 'kubernetes.io/tls'",
        ),
        (
            "egressMTLS: {trustedCertSecret: egress-trusted-secret, sslName: foo.com}",
            vec![("default/egress-trusted-secret", tls_secret())],
            "EgressMTLS policy default/egress-mtls-policy references a secret default/egress-trusted-secret of a wrong type 'kubernetes.io/tls', must be 'nginx.org/ca'",
        ),
        (
            "egressMTLS: {tlsSecret: egress-mtls-secret, sslName: foo.com}",
            vec![],
            "EgressMTLS policy default/egress-mtls-policy references an invalid secret default/egress-mtls-secret: secret doesn't exist or of an unsupported type",
        ),
    ];
    for (yaml, secrets, warning) in cases {
        let (cfg, warnings) = generate(
            &[("default/egress-mtls-policy", yaml)],
            &secrets,
            &["egress-mtls-policy"],
            Context::Route,
            false,
        );
        assert_eq!(cfg, err500(), "{yaml}");
        assert_eq!(warnings, vec![warning.to_string()], "{yaml}");
    }
}

/// `TestGeneratePoliciesFails` "missing policy".
#[test]
fn policies_missing_policy() {
    let (cfg, warnings) = generate(&[], &[], &["allow-policy"], Context::Spec, true);
    assert_eq!(cfg, err500());
    assert_eq!(
        warnings,
        ["Policy default/allow-policy is missing or invalid"]
    );
}

/// `TestGeneratePolicies_UnsupportedOnIngress` and `TestIsPolicySupportedOnIngress`:
/// on an Ingress, a type NIC does not apply there is a 500 and a warning; the
/// supported ones pass. (Outside this unit, the local substrate never gets such
/// a Policy this far: jwt and OIDC are invalid on OSS, the others refused.)
#[test]
fn policies_unsupported_on_ingress() {
    for (policy_type, yaml) in [
        ("RateLimit", "rateLimit: {}"),
        ("JWTAuth", "jwt: {}"),
        ("BasicAuth", "basicAuth: {}"),
        ("OIDC", "oidc: {}"),
        ("APIKey", "apiKey: {}"),
        ("Cache", "cache: {}"),
    ] {
        let (cfg, warnings) = generate_for(
            &[("default/test-policy", yaml)],
            &[],
            &["test-policy"],
            Context::Spec,
            false,
            true,
        );
        assert_eq!(cfg, err500(), "{policy_type}");
        assert_eq!(
            warnings,
            ["Policy default/test-policy is not supported on Ingress resources"],
            "{policy_type}"
        );
    }
    for (name, yaml, supported) in [
        (
            "AccessControl is supported",
            "accessControl: {allow: [127.0.0.1]}",
            true,
        ),
        ("CORS is supported", "cors: {}", true),
        (
            "IngressMTLS is supported",
            "ingressMTLS: {clientCertSecret: ca}",
            true,
        ),
        ("EgressMTLS is supported", "egressMTLS: {}", true),
        ("RateLimit is not supported", "rateLimit: {}", false),
        ("JWTAuth is not supported", "jwt: {}", false),
        ("BasicAuth is not supported", "basicAuth: {}", false),
        ("OIDC is not supported", "oidc: {}", false),
        ("APIKey is not supported", "apiKey: {}", false),
        ("WAF is supported", "waf: {}", true),
        ("Cache is not supported", "cache: {}", false),
    ] {
        let (_, warnings) = generate_for(
            &[("default/p", yaml)],
            &[("default/ca", ca_secret(false))],
            &["p"],
            Context::Spec,
            true,
            true,
        );
        let refused = warnings
            .iter()
            .any(|w| w.ends_with("is not supported on Ingress resources"));
        assert_eq!(!refused, supported, "{name}: {warnings:?}");
    }
}

/// `TestGeneratePolicies` accessControl cases: "explicit reference", "implicit
/// reference", "merging", and "conflicting policies" with its warning.
#[test]
fn policies_access_control() {
    let allow1 = (
        "default/allow-policy",
        "accessControl: {allow: [127.0.0.1]}",
    );
    let (cfg, warnings) = generate(&[allow1], &[], &["allow-policy"], Context::Spec, true);
    assert_eq!(cfg.allow, ["127.0.0.1"]);
    assert!(cfg.deny.is_empty() && cfg.error_return.is_none() && warnings.is_empty());
    let (merged, _) = generate(
        &[
            (
                "default/allow-policy-1",
                "accessControl: {allow: [127.0.0.1]}",
            ),
            (
                "default/allow-policy-2",
                "accessControl: {allow: [127.0.0.2]}",
            ),
        ],
        &[],
        &["allow-policy-1", "allow-policy-2"],
        Context::Route,
        true,
    );
    assert_eq!(merged.allow, ["127.0.0.1", "127.0.0.2"]);
    let (conflict, warnings) = generate(
        &[
            allow1,
            ("default/deny-policy", "accessControl: {deny: [127.0.0.2]}"),
        ],
        &[],
        &["allow-policy", "deny-policy"],
        Context::Spec,
        true,
    );
    assert_eq!(
        (conflict.allow.as_slice(), conflict.deny.as_slice()),
        (
            &["127.0.0.1".to_string()][..],
            &["127.0.0.2".to_string()][..]
        )
    );
    assert_eq!(
        warnings,
        [
            "AccessControl policy (or policies) with deny rules is overridden by policy (or policies) with allow rules"
        ]
    );
    // Both templates: allow-lists end in `deny all`, deny-lists in `allow all`.
    let mut c = Conf::default();
    render::access_control(&mut c, 1, &conflict.allow, &conflict.deny);
    assert_eq!(
        lines(&c.finish()),
        [
            "allow 127.0.0.1;",
            "deny all;",
            "deny 127.0.0.2;",
            "allow all;"
        ]
    );
}

/// `TestValidateAccessControl_PassesOnValidInput` / _`FailsOnInvalidInput`.
#[test]
fn validate_access_control_cases() {
    for ok in [
        "{allow: []}",
        "{allow: [127.0.0.1]}",
        "{deny: []}",
        "{deny: [127.0.0.1]}",
        "{allow: [10.0.0.0/8, \"::1\"]}",
    ] {
        let result = policy::validate(&spec(&format!("accessControl: {ok}")));
        assert!(result.is_ok(), "{ok}: {result:?}");
    }
    for (bad, message) in [
        (
            "{}",
            "spec.accessControl: Invalid value: \"\": must specify exactly one of: `allow` or `deny`",
        ),
        (
            "{allow: [], deny: []}",
            "spec.accessControl: Invalid value: \"\": must specify exactly one of: `allow` or `deny`",
        ),
        (
            "{allow: [invalid]}",
            "spec.accessControl.allow[0]: Invalid value: \"invalid\": must be a CIDR or IP",
        ),
        (
            "{deny: [invalid]}",
            "spec.accessControl.deny[0]: Invalid value: \"invalid\": must be a CIDR or IP",
        ),
    ] {
        assert_eq!(
            policy::validate(&spec(&format!("accessControl: {bad}"))),
            Err(message.to_string()),
            "{bad}"
        );
    }
}

// ------------------------------------------------------------- ingress_test.go

pub(super) struct NoEndpoints;

impl Endpoints for NoEndpoints {
    fn lookup(&self, _: &crate::manifest::ServicePort) -> Result<Vec<String>, String> {
        Ok(Vec::new())
    }
}

pub(super) const CAFE_INGRESS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: cafe-ingress
  annotations: {nginx.org/policies: "POLICIES", nginx.org/ssl-services: "SSL"}
spec:
  ingressClassName: nginx
  tls: [{hosts: [cafe.example.com], secretName: cafe-secret}]
  rules:
  - host: cafe.example.com
    http:
      paths:
      - {path: /coffee, pathType: Prefix, backend: {service: {name: coffee-svc, port: {number: 80}}}}
      - {path: /tea, pathType: Prefix, backend: {service: {name: tea-svc, port: {number: 80}}}}
"#;

pub(super) const MERGEABLE: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: cafe-ingress-master
  annotations: {nginx.org/mergeable-ingress-type: master, nginx.org/policies: "MASTER"}
spec:
  ingressClassName: nginx
  tls: [{hosts: [cafe.example.com], secretName: cafe-secret}]
  rules: [{host: cafe.example.com}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: cafe-ingress-coffee-minion
  annotations: {nginx.org/mergeable-ingress-type: minion, nginx.org/policies: "COFFEE", nginx.org/ssl-services: coffee-svc}
spec:
  ingressClassName: nginx
  rules:
  - host: cafe.example.com
    http: {paths: [{path: /coffee, pathType: Prefix, backend: {service: {name: coffee-svc, port: {number: 80}}}}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: cafe-ingress-tea-minion
  annotations: {nginx.org/mergeable-ingress-type: minion, nginx.org/ssl-services: tea-svc}
spec:
  ingressClassName: nginx
  rules:
  - host: cafe.example.com
    http: {paths: [{path: /tea, pathType: Prefix, backend: {service: {name: tea-svc, port: {number: 80}}}}]}
"#;

pub(super) fn policy_object(name: &str, spec_yaml: &str) -> String {
    format!(
        "apiVersion: k8s.nginx.org/v1\nkind: Policy\nmetadata: {{name: {name}}}\nspec: {spec_yaml}\n---\n"
    )
}

pub(super) fn egress_policy(
    name: &str,
    tls: &str,
    trusted: &str,
    ssl_name: &str,
    verify: bool,
    depth: u32,
) -> String {
    policy_object(
        name,
        &format!(
            "{{egressMTLS: {{tlsSecret: {tls}, trustedCertSecret: {trusted}, verifyServer: {verify}, verifyDepth: {depth}, serverName: true, sslName: {ssl_name}}}}}"
        ),
    )
}

/// Render NIC's files for some objects with NIC's own environment.
pub(super) fn render_nic(yaml: &str, secrets: &[(&str, SecretData)]) -> super::NicOutput {
    try_render_nic(yaml, secrets).expect("configure")
}

/// [`render_nic`], or the local substrate's refusal (located in `test.yaml`).
pub(super) fn try_render_nic(
    yaml: &str,
    secrets: &[(&str, SecretData)],
) -> Result<super::NicOutput, crate::manifest::ManifestError> {
    let objects: Vec<Object> = manifest::load_text(yaml, Path::new("test.yaml"), "default")?;
    let secrets: crate::scenario::steps::Secrets = secrets
        .iter()
        .map(|(k, s)| {
            let (ns, name) = k.split_once('/').expect("ns/name");
            (manifest::NamespacedName::new(ns, name), s.clone())
        })
        .collect();
    configure(&objects, &secrets, &NoEndpoints, &RenderEnv::nic())
}

pub(super) fn conf(out: &super::NicOutput, name: &str) -> String {
    out.conf_files
        .iter()
        .find(|(n, _)| n == name)
        .map_or_else(|| panic!("no {name}"), |(_, t)| t.clone())
}

pub(super) fn state_of(out: &super::NicOutput, key: &str) -> super::ResourceState {
    out.states
        .iter()
        .find(|s| s.key == key)
        .cloned()
        .unwrap_or_else(|| panic!("no state for {key}"))
}

pub(super) fn warnings_of(out: &super::NicOutput, key: &str) -> Vec<String> {
    out.states
        .iter()
        .filter(|s| s.key == key)
        .flat_map(|s| s.warnings.clone())
        .collect()
}

/// `TestGenerateNginxCfgForIngressMTLS`: server-scope mTLS after the certificate lines.
#[test]
fn ingress_with_ingress_mtls_policy() {
    let yaml = format!(
        "{}{}",
        policy_object(
            "my-test-policy",
            "{ingressMTLS: {clientCertSecret: ingress-mtls-secret, verifyClient: \"on\", verifyDepth: 2}}"
        ),
        CAFE_INGRESS
            .replace("POLICIES", "my-test-policy")
            .replace(", nginx.org/ssl-services: \"SSL\"", "")
    );
    let out = render_nic(
        &yaml,
        &[
            ("default/cafe-secret", tls_secret()),
            ("default/ingress-mtls-secret", ca_secret(false)),
        ],
    );
    let text = conf(&out, "default-cafe-ingress.conf");
    assert_block(
        &text,
        &[
            "listen 443 ssl;listen [::]:443 ssl;",
            "ssl_certificate $secret_dir_path/default-cafe-secret;",
            "ssl_certificate_key $secret_dir_path/default-cafe-secret;",
            "ssl_client_certificate /etc/nginx/secrets/default-ingress-mtls-secret-ca.crt;",
            "ssl_verify_client on;",
            "ssl_verify_depth 2;",
            "server_tokens on;",
            "server_name cafe.example.com;",
        ],
    );
    assert!(warnings_of(&out, "default/cafe-ingress").is_empty());
    assert!(!text.contains("return 500;"));
}

/// `TestGenerateNginxCfgForEgressMTLSPolicy`: server-scope `proxy_ssl`_*, https upstreams, nothing in locations.
#[test]
fn ingress_with_egress_mtls_policy() {
    let yaml = format!(
        "{}{}",
        egress_policy(
            "egress-mtls-policy",
            "egress-mtls-secret",
            "egress-trusted-ca-secret",
            "secure-app.example.com",
            true,
            2
        ),
        CAFE_INGRESS
            .replace("POLICIES", "egress-mtls-policy")
            .replace("SSL", "coffee-svc,tea-svc")
    );
    let out = render_nic(
        &yaml,
        &[
            ("default/cafe-secret", tls_secret()),
            ("default/egress-mtls-secret", tls_secret()),
            ("default/egress-trusted-ca-secret", ca_secret(false)),
        ],
    );
    let text = conf(&out, "default-cafe-ingress.conf");
    assert_block(
        &text,
        &[
            "set $service \"-\";",
            "proxy_ssl_certificate $secret_dir_path/default-egress-mtls-secret;",
            "proxy_ssl_certificate_key $secret_dir_path/default-egress-mtls-secret;",
            "proxy_ssl_trusted_certificate /etc/nginx/secrets/default-egress-trusted-ca-secret-ca.crt;",
            "proxy_ssl_verify on;",
            "proxy_ssl_verify_depth 2;",
            "proxy_ssl_protocols TLSv1 TLSv1.1 TLSv1.2;",
            "proxy_ssl_ciphers DEFAULT;",
            "proxy_ssl_session_reuse on;",
            "proxy_ssl_server_name on;",
            "proxy_ssl_name secure-app.example.com;",
        ],
    );
    // Locations inherit from the server: no proxy_ssl_* after the first location.
    let first_location = position(&text, "location /coffee");
    assert!(!text[first_location..].contains("proxy_ssl_"), "{text}");
    assert!(
        text.contains("proxy_pass https://default-cafe-ingress-cafe.example.com-coffee-svc-80;")
    );
    assert!(text.contains("proxy_pass https://default-cafe-ingress-cafe.example.com-tea-svc-80;"));
    assert!(warnings_of(&out, "default/cafe-ingress").is_empty());
}

/// `TestGenerateNginxCfgForMergeableIngressesEgressMTLSPolicy`: the master's egress at
/// server scope, inherited by the tea minion, overridden at location scope by the coffee minion.
#[test]
fn mergeable_minion_egress_overrides_master() {
    let yaml = format!(
        "{}{}{}",
        egress_policy(
            "master-egress-mtls-policy",
            "egress-mtls-secret",
            "egress-trusted-ca-secret",
            "secure-app.example.com",
            true,
            2
        ),
        egress_policy(
            "coffee-egress-mtls-policy",
            "egress-mtls-secret-alt",
            "egress-trusted-ca-secret-alt",
            "coffee.example.com",
            false,
            4
        ),
        MERGEABLE
            .replace("MASTER", "master-egress-mtls-policy")
            .replace("COFFEE", "coffee-egress-mtls-policy")
    );
    let out = render_nic(
        &yaml,
        &[
            ("default/cafe-secret", tls_secret()),
            ("default/egress-mtls-secret", tls_secret()),
            ("default/egress-trusted-ca-secret", ca_secret(false)),
            ("default/egress-mtls-secret-alt", tls_secret()),
            ("default/egress-trusted-ca-secret-alt", ca_secret(false)),
        ],
    );
    let text = conf(&out, "default-cafe-ingress-master.conf");
    let coffee = position(&text, "location /coffee");
    let tea = position(&text, "location /tea");
    let server_part = &text[..coffee.min(tea)];
    assert!(server_part.contains("proxy_ssl_name secure-app.example.com;"));
    assert!(server_part.contains("proxy_ssl_verify_depth 2;"));
    let coffee_part = &text[coffee..if tea > coffee { tea } else { text.len() }];
    assert_block(
        coffee_part,
        &[
            "# location for minion default/cafe-ingress-coffee-minion",
            "set $resource_name \"cafe-ingress-coffee-minion\";",
            "set $resource_namespace \"default\";",
            "proxy_ssl_certificate $secret_dir_path/default-egress-mtls-secret-alt;",
            "proxy_ssl_certificate_key $secret_dir_path/default-egress-mtls-secret-alt;",
            "proxy_ssl_trusted_certificate /etc/nginx/secrets/default-egress-trusted-ca-secret-alt-ca.crt;",
            "proxy_ssl_verify off;",
            "proxy_ssl_verify_depth 4;",
        ],
    );
    let tea_part = &text[tea..if coffee > tea { coffee } else { text.len() }];
    assert!(
        !tea_part.contains("proxy_ssl_"),
        "the tea minion inherits the master's: {tea_part}"
    );
    assert!(tea_part.contains("proxy_pass https://"));
    for key in [
        "default/cafe-ingress-master",
        "default/cafe-ingress-coffee-minion",
        "default/cafe-ingress-tea-minion",
    ] {
        assert!(
            warnings_of(&out, key).is_empty(),
            "{key}: {:?}",
            warnings_of(&out, key)
        );
    }
}

/// `TestGenerateNginxCfgForMergeableIngressesMinionWithIngressMTLSPolicy`: location 500
/// on the minion, and NIC's warning.
#[test]
fn mergeable_minion_ingress_mtls_is_a_location_500() {
    let yaml = format!(
        "{}{}",
        policy_object(
            "ingress-mtls-policy",
            "{ingressMTLS: {clientCertSecret: ingress-mtls-secret, verifyClient: \"on\"}}"
        ),
        MERGEABLE
            .replace(", nginx.org/policies: \"MASTER\"", "")
            .replace("COFFEE", "ingress-mtls-policy")
    );
    let out = render_nic(
        &yaml,
        &[
            ("default/cafe-secret", tls_secret()),
            ("default/ingress-mtls-secret", ca_secret(false)),
        ],
    );
    let text = conf(&out, "default-cafe-ingress-master.conf");
    let coffee = position(&text, "location /coffee");
    assert_block(
        &text[coffee..],
        &[
            "set $resource_namespace \"default\";",
            "return 500;",
            "proxy_http_version 1.1;",
        ],
    );
    let server_part = &text[..coffee.min(position(&text, "location /tea"))];
    assert!(!server_part.contains("return 500;"));
    assert_eq!(
        warnings_of(&out, "default/cafe-ingress-coffee-minion"),
        ["IngressMTLS policy default/ingress-mtls-policy is not allowed in the minion context"]
    );
    // updateMergeableIngressStatusAndEvents: "%s%swith warning(s): %v" with an
    // empty first part, prefixed by one space: no `;` (controller.go).
    let minion = state_of(&out, "default/cafe-ingress-coffee-minion");
    assert_eq!(
        minion.message,
        "Configuration for default/cafe-ingress-coffee-minion was added or updated with warning(s): \
         IngressMTLS policy default/ingress-mtls-policy is not allowed in the minion context"
    );

    // Without the CA Secret the controller adds its own warning first
    // (createIngressEx: "Policy error for Ingress ...", controller.go).
    let out = render_nic(&yaml, &[("default/cafe-secret", tls_secret())]);
    let minion = state_of(&out, "default/cafe-ingress-coffee-minion");
    assert_eq!(
        minion.message,
        "Configuration for default/cafe-ingress-coffee-minion was added or updated with warning(s): \
         Policy error for Ingress default/cafe-ingress-coffee-minion: secret doesn't exist or of an unsupported type; \
         with warning(s): IngressMTLS policy default/ingress-mtls-policy is not allowed in the minion context"
    );
}

/// The same reload failure for an Ingress (configurator.go: "error reloading
/// NGINX for ns/name"; controller.go: "... added or updated ; but was not applied").
#[test]
fn crl_file_name_on_an_ingress_is_not_applied() {
    let policy = policy_object(
        "p",
        "{ingressMTLS: {clientCertSecret: ingress-mtls-secret, crlFileName: webapp.crl}}",
    );
    let ingress = CAFE_INGRESS
        .replace("POLICIES", "p")
        .replace(", nginx.org/ssl-services: \"SSL\"", "");
    let out = render_nic(
        &format!("{policy}{ingress}"),
        &[
            ("default/cafe-secret", tls_secret()),
            ("default/ingress-mtls-secret", ca_secret(false)),
        ],
    );
    let state = state_of(&out, "default/cafe-ingress");
    assert_eq!(state.state.as_str(), "Invalid", "{}", state.message);
    assert!(
        state.message.starts_with(
            "Configuration for default/cafe-ingress was added or updated ; but was not applied: \
             error reloading NGINX for default/cafe-ingress: nginx reload failed: ssl_crl /etc/nginx/secrets/webapp.crl"
        ),
        "{}",
        state.message
    );
    assert!(!out.hosts.contains_key("cafe.example.com"));
}

/// `tests/suite/test_ingress_mtls.py` `test_ingress_mtls_policy_crl`: a Policy
/// whose `crlFileName` names a file NIC's nginx cannot read makes the reload
/// fail: the `VirtualServer` is Invalid, its message still says "added or
/// updated" (with the warning when the Secret has a CRL too), and the host is
/// not served (the default server answers).
#[test]
fn crl_file_name_that_nginx_cannot_read_is_not_applied() {
    let vs = "apiVersion: k8s.nginx.org/v1\nkind: VirtualServer\nmetadata: {name: virtual-server}\nspec:\n  \
              host: virtual-server.example.com\n  tls: {secret: tls-secret}\n  policies: [{name: ingress-mtls-policy}]\n  \
              upstreams: [{name: backend1, service: backend1-svc, port: 80}]\n  routes: [{path: /backend1, action: {pass: backend1}}]\n";
    let valid = policy_object(
        "ingress-mtls-policy",
        "{ingressMTLS: {clientCertSecret: ingress-mtls-secret, verifyClient: \"on\", verifyDepth: 1}}",
    );
    let crl = policy_object(
        "ingress-mtls-policy",
        "{ingressMTLS: {clientCertSecret: ingress-mtls-secret, verifyClient: \"on\", verifyDepth: 1, crlFileName: webapp.crl}}",
    );
    let state_of = |policy: &str, secret_has_crl: bool| {
        let out = render_nic(
            &format!("{policy}{vs}"),
            &[
                ("default/tls-secret", tls_secret()),
                ("default/ingress-mtls-secret", ca_secret(secret_has_crl)),
            ],
        );
        let state = state_of(&out, "default/virtual-server");
        (state, out.hosts.contains_key("virtual-server.example.com"))
    };
    let (state, served) = state_of(&valid, true);
    assert_eq!((state.state.as_str(), served), ("Valid", true));
    assert!(state.message.contains("added or updated"));

    let (state, served) = state_of(&crl, false);
    assert_eq!(
        (state.state.as_str(), served),
        ("Invalid", false),
        "{}",
        state.message
    );
    assert!(
        state.message.contains("added or updated"),
        "{}",
        state.message
    );
    assert!(
        state.message.contains(
            "; but was not applied: error reloading NGINX for VirtualServer default/virtual-server"
        ),
        "{}",
        state.message
    );
    assert!(
        state.message.contains("/etc/nginx/secrets/webapp.crl")
            && state.message.contains("crlFileName"),
        "{}",
        state.message
    );

    let (state, served) = state_of(&crl, true);
    assert_eq!(
        (state.state.as_str(), served),
        ("Invalid", false),
        "{}",
        state.message
    );
    assert!(
        state.message.contains("added or updated ; with warning(s)"),
        "{}",
        state.message
    );
}

/// `TestGenerateNginxCfgWithMissingOrInvalidPolicy` (and `template_test`'s
/// PoliciesErrorReturnServer): server `return 500;` right after `server_tokens`.
#[test]
fn ingress_missing_policy_is_a_server_500() {
    let yaml = CAFE_INGRESS
        .replace("POLICIES", "missing-policy")
        .replace(", nginx.org/ssl-services: \"SSL\"", "");
    let out = render_nic(&yaml, &[("default/cafe-secret", tls_secret())]);
    let text = conf(&out, "default-cafe-ingress.conf");
    assert_block(
        &text,
        &[
            "server_tokens on;",
            "return 500;",
            "server_name cafe.example.com;",
        ],
    );
    let w = warnings_of(&out, "default/cafe-ingress");
    assert!(
        w.iter()
            .any(|x| x == "Policy default/missing-policy is missing or invalid"),
        "{w:?}"
    );
    assert!(w.iter().any(|x| x == "Policy error for Ingress default/cafe-ingress: policy default/missing-policy doesn't exist"), "{w:?}");
}

/// The Ingress rules NIC's tests leave untested, from ingress.go: no TLS at all is a
/// server 500; TLS for another host only ignores the policy for this host.
#[test]
fn ingress_tls_rules_not_covered_by_nic_tests() {
    let policy = policy_object(
        "p",
        "{ingressMTLS: {clientCertSecret: ingress-mtls-secret}}",
    );
    let no_tls = CAFE_INGRESS
        .replace("POLICIES", "p")
        .replace(", nginx.org/ssl-services: \"SSL\"", "")
        .replace(
            "  tls: [{hosts: [cafe.example.com], secretName: cafe-secret}]\n",
            "",
        );
    let out = render_nic(
        &format!("{policy}{no_tls}"),
        &[("default/ingress-mtls-secret", ca_secret(false))],
    );
    assert!(conf(&out, "default-cafe-ingress.conf").contains("return 500;"));
    assert_eq!(
        warnings_of(&out, "default/cafe-ingress"),
        ["TLS must be enabled for IngressMTLS policy default/p"]
    );

    // `tls: []` is stored as no TLS at all (the API server drops empty lists),
    // so NIC's `Spec.TLS != nil` is false: the same 500 (internal/configs/ingress.go).
    let empty_tls = CAFE_INGRESS
        .replace("POLICIES", "p")
        .replace(", nginx.org/ssl-services: \"SSL\"", "")
        .replace(
            "  tls: [{hosts: [cafe.example.com], secretName: cafe-secret}]\n",
            "  tls: []\n",
        );
    let out = render_nic(
        &format!("{policy}{empty_tls}"),
        &[("default/ingress-mtls-secret", ca_secret(false))],
    );
    assert!(conf(&out, "default-cafe-ingress.conf").contains("return 500;"));
    assert_eq!(
        warnings_of(&out, "default/cafe-ingress"),
        ["TLS must be enabled for IngressMTLS policy default/p"]
    );

    let other_host = CAFE_INGRESS
        .replace("POLICIES", "p")
        .replace(", nginx.org/ssl-services: \"SSL\"", "")
        .replace("hosts: [cafe.example.com]", "hosts: [other.example.com]");
    let out = render_nic(
        &format!("{policy}{other_host}"),
        &[
            ("default/cafe-secret", tls_secret()),
            ("default/ingress-mtls-secret", ca_secret(false)),
        ],
    );
    let text = conf(&out, "default-cafe-ingress.conf");
    assert!(
        !text.contains("return 500;")
            && !text.contains("ssl_verify_client")
            && !text.contains("listen 443"),
        "{text}"
    );
    assert_eq!(
        warnings_of(&out, "default/cafe-ingress"),
        [
            "IngressMTLS policy is ignored for host \"cafe.example.com\" because TLS is not enabled for that host"
        ]
    );
}

// ----------------------------------------------------- VirtualServer (templates)

/// `templates_test.snap` order: TLS listeners, certificates, ingressMTLS, then the TLS
/// redirect, then `server_tokens`; a route egress policy inside its location only.
#[test]
fn virtual_server_order_and_scopes() {
    let yaml = format!(
        "{}{}{}",
        policy_object(
            "ingress-mtls-policy",
            "{ingressMTLS: {clientCertSecret: ingress-mtls-secret, verifyDepth: 2}}"
        ),
        egress_policy(
            "egress-mtls-policy",
            "egress-mtls-secret",
            "egress-trusted-ca-secret",
            "secure-app.example.com",
            true,
            1
        ),
        r"apiVersion: k8s.nginx.org/v1
kind: VirtualServer
metadata: {name: cafe}
spec:
  host: example.com
  tls: {secret: cafe-secret, redirect: {enable: true}}
  policies: [{name: ingress-mtls-policy}]
  upstreams: [{name: tea, service: tea-svc, port: 80, tls: {enable: true}}]
  routes:
  - path: /
    policies: [{name: egress-mtls-policy}]
    action: {pass: tea}
"
    );
    let out = render_nic(
        &yaml,
        &[
            ("default/cafe-secret", tls_secret()),
            ("default/ingress-mtls-secret", ca_secret(false)),
            ("default/egress-mtls-secret", tls_secret()),
            ("default/egress-trusted-ca-secret", ca_secret(false)),
        ],
    );
    let text = conf(&out, "vs_default_cafe.conf");
    assert_block(
        &text,
        &[
            "listen 443 ssl;",
            "listen [::]:443 ssl;",
            "ssl_certificate $secret_dir_path/default-cafe-secret;",
            "ssl_certificate_key $secret_dir_path/default-cafe-secret;",
            "ssl_client_certificate /etc/nginx/secrets/default-ingress-mtls-secret-ca.crt;",
            "ssl_verify_client on;",
            "ssl_verify_depth 2;",
            "if ($scheme = 'http') {",
            "return 301 https://$host$request_uri;",
            "}",
            "server_tokens \"on\";",
        ],
    );
    assert!(position(&text, "set $service \"-\";") < position(&text, "return 301"));
    let location = position(&text, "location / {");
    assert!(!text[..location].contains("proxy_ssl_"));
    assert_block(
        &text[location..],
        &[
            "set $service \"tea-svc\";",
            "proxy_ssl_certificate $secret_dir_path/default-egress-mtls-secret;",
            "proxy_ssl_certificate_key $secret_dir_path/default-egress-mtls-secret;",
            "proxy_ssl_trusted_certificate /etc/nginx/secrets/default-egress-trusted-ca-secret-ca.crt;",
            "proxy_ssl_verify on;",
        ],
    );
    assert!(text.contains("proxy_pass https://vs_default_cafe_tea;"));
    assert!(text.contains(
        "server unix:/var/lib/nginx/nginx-502-server.sock max_fails=1 fail_timeout=10s max_conns=0;"
    ));
    let state = out
        .states
        .iter()
        .find(|s| s.key == "default/cafe")
        .expect("state");
    assert_eq!(
        (state.state.as_str(), state.message.as_str()),
        (
            "Valid",
            "Configuration for default/cafe was added or updated "
        )
    );
}
