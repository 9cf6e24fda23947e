//! NIC v5.5.4's Ingress tests for what the local substrate renders:
//! `internal/k8s/validation_test.go` (`validateIngress` and its parts, the
//! annotations the harness reads), `internal/configs/annotations_test.go` (SSL
//! redirect and redirect code) and `internal/configs/ingress_test.go` (TLS per
//! host, the deprecated redirect annotation, paths). One test per NIC test
//! function, each row named as NIC names it; NIC runs with its default flags
//! (OSS, no `-allow-empty-ingress-host`), so rows that need another flag are
//! listed as such.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::fidelity_tests::{conf, render_nic, state_of, tls_secret, try_render_nic, warnings_of};
use super::ingress_validation::{self, policy_names};
use crate::manifest::kinds::IngressSpec;

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `validateIngress` with NIC's default flags: the errors, as NIC lists them.
fn errors(pairs: &[(&str, &str)], spec: Value) -> Vec<String> {
    let spec: IngressSpec = serde_json::from_value(spec).expect("spec parses");
    ingress_validation::errors(&annotations(pairs), &spec)
}

fn backend(service: &str) -> Value {
    json!({"service": {"name": service, "port": {"number": 80}}})
}

fn path(p: &str, service: &str) -> Value {
    json!({"path": p, "pathType": "Prefix", "backend": backend(service)})
}

fn rule(host: &str) -> Value {
    json!({"host": host})
}

/// A spec whose backends are `services` (NIC's `specServices`).
fn with_services(services: &[&str]) -> Value {
    let paths: Vec<Value> = services.iter().map(|s| path(&format!("/{s}"), s)).collect();
    json!({"rules": [{"host": "example.com", "http": {"paths": paths}}]})
}

/// An Ingress the local substrate refuses, at `test.yaml:LINE`, naming `needle`.
fn assert_refused(annotations: &[(&str, &str)], spec: Value, needle: &str) {
    let object = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "cafe", "annotations": annotations.iter().copied().collect::<BTreeMap<_, _>>()},
        "spec": spec,
    });
    let mut object = object;
    object["spec"]["ingressClassName"] = json!("nginx");
    let text = serde_json::to_string_pretty(&object).expect("json");
    let err = try_render_nic(&text, &[]).expect_err("refused").to_string();
    assert!(
        err.starts_with("test.yaml:") && err.contains(needle) && err.contains("not rendered"),
        "{needle}: {err}"
    );
}

/// `TestValidateIngress`.
#[test]
fn validate_ingress() {
    assert_eq!(
        errors(&[], json!({"rules": [rule("example.com")]})),
        Vec::<String>::new(),
        "valid input"
    );
    assert_eq!(
        errors(
            &[("nginx.org/mergeable-ingress-type", "invalid")],
            json!({"rules": [rule("")]})
        ),
        [
            "annotations.nginx.org/mergeable-ingress-type: Invalid value: \"invalid\": must be one of: 'master' or 'minion'",
            "spec.rules[0].host: Required value"
        ],
        "invalid ingress"
    );
    assert_eq!(
        errors(
            &[("nginx.org/mergeable-ingress-type", "master")],
            json!({"rules": [{"host": "example.com", "http": {"paths": [path("/", "test-svc")]}}]})
        ),
        ["spec.rules[0].http.paths: Too many: 1: must have at most 0 items"],
        "invalid master"
    );
    assert_eq!(
        errors(
            &[("nginx.org/mergeable-ingress-type", "minion")],
            json!({"rules": [rule("example.com")]})
        ),
        ["spec.rules[0].http.paths: Required value: must include at least one path"],
        "invalid minion"
    );
    // The hostless rows run NIC with -allow-empty-ingress-host; by default an
    // empty host is "Required value" (first rows above). The listen-ports and
    // proxy-redirect rows use annotations the local substrate does not render.
    for (name, value) in [
        ("nginx.org/listen-ports", "80,8080"),
        ("nginx.org/proxy-redirect-from", "off"),
        (
            "nginx.org/proxy-redirect-to",
            "http://cafe.example.com/coffee/",
        ),
    ] {
        assert_refused(
            &[(name, value)],
            json!({"rules": [rule("cafe.example.com")]}),
            name,
        );
    }
}

/// One row: its name, the annotations, the spec, NIC's errors.
type AnnotationRow = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    Value,
    Vec<&'static str>,
);

/// `TestValidateNginxIngressAnnotations`, the rows of the annotations the
/// local substrate reads (`isPlus: false`); the others' annotations are refused.
#[test]
fn validate_nginx_ingress_annotations() {
    let plain = || json!({"rules": [rule("example.com")]});
    let cases: Vec<AnnotationRow> = vec![
        (
            "valid input with master annotation",
            vec![("nginx.org/mergeable-ingress-type", "master")],
            plain(),
            vec![],
        ),
        (
            "valid input with minion annotation",
            vec![("nginx.org/mergeable-ingress-type", "minion")],
            with_services(&["s"]),
            vec![],
        ),
        (
            "invalid mergeable type annotation 1",
            vec![("nginx.org/mergeable-ingress-type", "")],
            plain(),
            vec!["annotations.nginx.org/mergeable-ingress-type: Required value"],
        ),
        (
            "invalid mergeable type annotation 2",
            vec![("nginx.org/mergeable-ingress-type", "abc")],
            plain(),
            vec![
                "annotations.nginx.org/mergeable-ingress-type: Invalid value: \"abc\": must be one of: 'master' or 'minion'",
            ],
        ),
        (
            "valid nginx.org/proxy-connect-timeout annotation",
            vec![("nginx.org/proxy-connect-timeout", "10s")],
            plain(),
            vec![],
        ),
        (
            "invalid nginx.org/proxy-connect-timeout annotation",
            vec![("nginx.org/proxy-connect-timeout", "not_a_time")],
            plain(),
            vec![
                "annotations.nginx.org/proxy-connect-timeout: Invalid value: \"not_a_time\": must be a time",
            ],
        ),
        (
            "valid nginx.org/proxy-read-timeout annotation",
            vec![("nginx.org/proxy-read-timeout", "10s")],
            plain(),
            vec![],
        ),
        (
            "invalid nginx.org/proxy-read-timeout annotation",
            vec![("nginx.org/proxy-read-timeout", "not_a_time")],
            plain(),
            vec![
                "annotations.nginx.org/proxy-read-timeout: Invalid value: \"not_a_time\": must be a time",
            ],
        ),
        (
            "valid nginx.org/proxy-send-timeout annotation",
            vec![("nginx.org/proxy-send-timeout", "10s")],
            plain(),
            vec![],
        ),
        (
            "invalid nginx.org/proxy-send-timeout annotation",
            vec![("nginx.org/proxy-send-timeout", "not_a_time")],
            plain(),
            vec![
                "annotations.nginx.org/proxy-send-timeout: Invalid value: \"not_a_time\": must be a time",
            ],
        ),
        (
            "valid nginx.org/client-max-body-size annotation",
            vec![("nginx.org/client-max-body-size", "16M")],
            plain(),
            vec![],
        ),
        (
            "invalid nginx.org/client-max-body-size annotation",
            vec![("nginx.org/client-max-body-size", "not_an_offset")],
            plain(),
            vec![
                "annotations.nginx.org/client-max-body-size: Invalid value: \"not_an_offset\": must be an offset",
            ],
        ),
        (
            "valid nginx.org/ssl-redirect annotation",
            vec![("nginx.org/ssl-redirect", "true")],
            plain(),
            vec![],
        ),
        (
            "invalid nginx.org/ssl-redirect annotation",
            vec![("nginx.org/ssl-redirect", "not_a_boolean")],
            plain(),
            vec![
                "annotations.nginx.org/ssl-redirect: Invalid value: \"not_a_boolean\": must be a boolean",
            ],
        ),
        (
            "valid nginx.org/http-redirect-code annotation",
            vec![("nginx.org/http-redirect-code", "301")],
            plain(),
            vec![],
        ),
        (
            "valid nginx.org/http-redirect-code annotation with 302",
            vec![("nginx.org/http-redirect-code", "302")],
            plain(),
            vec![],
        ),
        (
            "valid nginx.org/http-redirect-code annotation with 307",
            vec![("nginx.org/http-redirect-code", "307")],
            plain(),
            vec![],
        ),
        (
            "valid nginx.org/http-redirect-code annotation with 308",
            vec![("nginx.org/http-redirect-code", "308")],
            plain(),
            vec![],
        ),
        (
            "invalid nginx.org/http-redirect-code annotation, empty string",
            vec![("nginx.org/http-redirect-code", "")],
            plain(),
            vec!["annotations.nginx.org/http-redirect-code: Required value"],
        ),
        (
            "invalid nginx.org/http-redirect-code annotation, invalid code",
            vec![("nginx.org/http-redirect-code", "200")],
            plain(),
            vec![
                "annotations.nginx.org/http-redirect-code: Invalid value: \"200\": status code out of accepted range. accepted values are '301', '302', '307', '308'",
            ],
        ),
        (
            "invalid nginx.org/http-redirect-code annotation, not a number",
            vec![("nginx.org/http-redirect-code", "invalid")],
            plain(),
            vec![
                "annotations.nginx.org/http-redirect-code: Invalid value: \"invalid\": invalid redirect code: strconv.Atoi: parsing \"invalid\": invalid syntax",
            ],
        ),
        (
            "valid nginx.org/ssl-services annotation, single-value",
            vec![("nginx.org/ssl-services", "service-1")],
            with_services(&["service-1"]),
            vec![],
        ),
        (
            "valid nginx.org/ssl-services annotation, multi-value",
            vec![("nginx.org/ssl-services", "service-1,service-2")],
            with_services(&["service-1", "service-2"]),
            vec![],
        ),
        (
            "invalid nginx.org/ssl-services annotation, service does not exist",
            vec![("nginx.org/ssl-services", "service-1,service-2")],
            with_services(&["service-1"]),
            vec![
                "annotations.nginx.org/ssl-services: Invalid value: \"service-1,service-2\": must be a comma-separated list of services. The following services were not found: service-2",
            ],
        ),
    ];
    for (msg, pairs, spec, expected) in cases {
        assert_eq!(errors(&pairs, spec), expected, "{msg}");
    }
    // "invalid multiple annotations messages in alphabetical order": its
    // nginx.org/lb-method is not rendered locally; the order rule holds for the
    // rendered ones.
    assert_eq!(
        errors(
            &[
                ("nginx.org/ssl-redirect", "no"),
                ("nginx.org/mergeable-ingress-type", "invalid")
            ],
            json!({"rules": [rule("example.com")]})
        ),
        [
            "annotations.nginx.org/mergeable-ingress-type: Invalid value: \"invalid\": must be one of: 'master' or 'minion'",
            "annotations.nginx.org/ssl-redirect: Invalid value: \"no\": must be a boolean"
        ]
    );
    assert_refused(
        &[("nginx.org/lb-method", "invalid_method")],
        json!({"rules": [rule("example.com")]}),
        "nginx.org/lb-method",
    );
}

/// `TestValidateIngressSpec` (rows needing `-allow-empty-ingress-host` excepted).
#[test]
fn validate_ingress_spec() {
    let one = |p: Value| json!({"rules": [{"host": "foo.example.com", "http": {"paths": [p]}}]});
    assert!(errors(&[], one(path("/", "a"))).is_empty(), "valid input");
    for (msg, p) in [
        ("test invalid characters in path", r"/tea\{custom_value}"),
        ("test invalid characters in path", r"/tea\"),
        ("test invalid characters in path", r"/tea\n"),
    ] {
        let e = errors(&[], one(path(p, "a")));
        assert!(
            e.len() == 1 && e[0].starts_with("spec.rules[0].http.paths[0].path: Invalid value: "),
            "{msg}: {e:?}"
        );
    }
    assert_eq!(
        errors(&[], one(path("", "a"))),
        [
            "spec.rules[0].http.paths[0].path: Required value: path is required for Exact and Prefix PathTypes"
        ],
        "test empty in path"
    );
    assert_eq!(
        errors(&[], json!({"rules": []})),
        ["spec.rules: Required value"],
        "zero rules"
    );
    assert_eq!(
        errors(&[], json!({"rules": [rule("")]})),
        ["spec.rules[0].host: Required value"],
        "empty host"
    );
    assert_eq!(
        errors(
            &[],
            json!({"rules": [rule("foo.example.com"), rule("foo.example.com")]})
        ),
        ["spec.rules[1].host: Duplicate value: \"foo.example.com\""],
        "duplicated host"
    );
    // "valid input with default backend", "invalid default backend", and the
    // nil-service and resource backends: defaultBackend is not rendered locally,
    // and a backend without a Service does not parse.
    assert_refused(
        &[],
        json!({"defaultBackend": backend("a"), "rules": [rule("foo.example.com")]}),
        "defaultBackend",
    );
    // ImplementationSpecific may omit the path (it defaults to /).
    let implementation =
        json!({"path": "", "pathType": "ImplementationSpecific", "backend": backend("a")});
    assert!(errors(&[], one(implementation)).is_empty());
}

/// `TestValidateMasterSpec`.
#[test]
fn validate_master_spec() {
    let master = [("nginx.org/mergeable-ingress-type", "master")];
    assert!(
        errors(
            &master,
            json!({"rules": [{"host": "foo.example.com", "http": {"paths": []}}]})
        )
        .is_empty(),
        "valid input"
    );
    assert_eq!(
        errors(
            &master,
            json!({"rules": [rule("foo.example.com"), rule("bar.example.com")]})
        ),
        ["spec.rules: Too many: 2: must have at most 1 item"],
        "too many hosts"
    );
    assert_eq!(
        errors(
            &master,
            json!({"rules": [{"host": "foo.example.com", "http": {"paths": [path("/", "a")]}}]})
        ),
        ["spec.rules[0].http.paths: Too many: 1: must have at most 0 items"],
        "too many paths"
    );
}

/// `TestValidateMinionSpec`.
#[test]
fn validate_minion_spec() {
    let minion = [("nginx.org/mergeable-ingress-type", "minion")];
    let with_path =
        json!({"rules": [{"host": "foo.example.com", "http": {"paths": [path("/", "a")]}}]});
    assert!(errors(&minion, with_path.clone()).is_empty(), "valid input");
    assert_eq!(
        errors(
            &minion,
            json!({"rules": [rule("foo.example.com"), rule("bar.example.com")]})
        ),
        ["spec.rules: Too many: 2: must have at most 1 item"],
        "too many hosts"
    );
    assert_eq!(
        errors(
            &minion,
            json!({"rules": [{"host": "foo.example.com", "http": {"paths": []}}]})
        ),
        ["spec.rules[0].http.paths: Required value: must include at least one path"],
        "too few paths"
    );
    let mut tls = with_path;
    tls["tls"] = json!([{"hosts": ["foo.example.com"]}]);
    assert_eq!(
        errors(&minion, tls),
        ["spec.tls: Too many: 1: must have at most 0 items"],
        "tls is forbidden"
    );
}

/// The details NIC's policy-name tests look for in the errors (`err.Detail`).
fn details(value: &str) -> Vec<String> {
    policy_names(value, "test")
        .into_iter()
        .map(|e| {
            e.split_once(": ")
                .map(|(_, rest)| rest.to_string())
                .unwrap_or(e)
        })
        .collect()
}

fn assert_policy_names(name: &str, value: &str, expected: &[&str]) {
    let found = details(value);
    if expected.is_empty() {
        assert!(found.is_empty(), "{name}: {found:?}");
        return;
    }
    for want in expected {
        assert!(
            found.iter().any(|d| d.contains(want)),
            "{name}: {want:?} not in {found:?}"
        );
    }
}

/// `TestValidatePolicyNames`.
#[test]
fn validate_policy_names() {
    let a63 = "a".repeat(63);
    let b63 = "b".repeat(63);
    let long = "a".repeat(254);
    let long_ns = format!("{}/policy", "a".repeat(254));
    let max_both = format!("{a63}/{b63}");
    let rows: Vec<(&str, &str, &[&str])> = vec![
        ("valid single policy name", "my-policy", &[]),
        ("valid policy with numbers", "policy123", &[]),
        ("valid policy with hyphens", "my-policy-name", &[]),
        ("valid policy with dots", "policy.name.test", &[]),
        ("valid single character policy", "a", &[]),
        ("valid policy starting with number", "1policy", &[]),
        ("valid namespaced policy", "namespace/policy-name", &[]),
        (
            "valid namespaced policy with numbers",
            "ns123/policy456",
            &[],
        ),
        (
            "valid namespaced policy with dots",
            "namespace.test/policy.example",
            &[],
        ),
        ("valid single character namespace and policy", "a/b", &[]),
        (
            "valid namespace and policy with numbers",
            "1ns/2policy",
            &[],
        ),
        ("valid multiple policies", "policy1,policy2,policy3", &[]),
        (
            "valid multiple namespaced policies",
            "ns1/policy1,ns2/policy2",
            &[],
        ),
        ("valid mixed policies", "policy1,ns1/policy2,policy3", &[]),
        (
            "valid policies with spaces around commas",
            "policy1, policy2 , ns1/policy3",
            &[],
        ),
        (
            "valid policies with tabs and newlines",
            "policy1,\tpolicy2,\n ns1/policy3 ",
            &[],
        ),
        ("maximum length policy name", &a63, &[]),
        ("maximum length namespace and policy", &max_both, &[]),
        (
            "policy with maximum dot-separated labels",
            "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z",
            &[],
        ),
        (
            "policy name with additional slashes",
            "namespace/policy/with/slashes",
            &["policy name must be a valid DNS subdomain"],
        ),
        (
            "multiple slashes in policy name",
            "ns/policy//name",
            &["policy name must be a valid DNS subdomain"],
        ),
        (
            "completely empty value",
            "",
            &["policy name cannot be empty"],
        ),
        (
            "empty policy in list",
            "policy1,,policy2",
            &["policy name cannot be empty"],
        ),
        ("only whitespace", "   ", &["policy name cannot be empty"]),
        (
            "only tabs and newlines",
            "\t\n\r  ",
            &["policy name cannot be empty"],
        ),
        (
            "empty policy after comma",
            "policy1,",
            &["policy name cannot be empty"],
        ),
        (
            "empty policy before comma",
            ",policy1",
            &["policy name cannot be empty"],
        ),
        (
            "whitespace only policy in list",
            "policy1,  ,policy2",
            &["policy name cannot be empty"],
        ),
        (
            "empty namespace",
            "/policy",
            &["policy namespace cannot be empty"],
        ),
        (
            "empty policy name in namespaced policy",
            "namespace/",
            &["policy name cannot be empty"],
        ),
        (
            "both namespace and policy empty",
            "/",
            &[
                "policy namespace cannot be empty",
                "policy name cannot be empty",
            ],
        ),
        (
            "namespace with only whitespace",
            "  /policy",
            &["policy namespace cannot be empty"],
        ),
        (
            "policy with only whitespace after slash",
            "namespace/  ",
            &["policy name cannot be empty"],
        ),
        (
            "policy name with uppercase",
            "PolicyName",
            &["policy name must be a valid DNS subdomain"],
        ),
        (
            "policy name with underscore",
            "policy_name",
            &["policy name must be a valid DNS subdomain"],
        ),
        (
            "policy name starting with hyphen",
            "-policy",
            &["policy name must be a valid DNS subdomain"],
        ),
        (
            "policy name ending with hyphen",
            "policy-",
            &["policy name must be a valid DNS subdomain"],
        ),
        (
            "policy name starting with dot",
            ".policy",
            &["policy name must be a valid DNS subdomain"],
        ),
        (
            "policy name ending with dot",
            "policy.",
            &["policy name must be a valid DNS subdomain"],
        ),
        (
            "policy name with consecutive dots",
            "policy..name",
            &["policy name must be a valid DNS subdomain"],
        ),
        (
            "policy name too long",
            &long,
            &["policy name must be a valid DNS subdomain"],
        ),
        (
            "policy name with space",
            "policy name",
            &["policy name must be a valid DNS subdomain"],
        ),
        (
            "policy name with special characters",
            "policy@name",
            &["policy name must be a valid DNS subdomain"],
        ),
        (
            "namespace with uppercase",
            "NameSpace/policy",
            &["policy namespace must be a valid DNS subdomain"],
        ),
        (
            "namespace with underscore",
            "name_space/policy",
            &["policy namespace must be a valid DNS subdomain"],
        ),
        (
            "namespace starting with hyphen",
            "-namespace/policy",
            &["policy namespace must be a valid DNS subdomain"],
        ),
        (
            "namespace ending with hyphen",
            "namespace-/policy",
            &["policy namespace must be a valid DNS subdomain"],
        ),
        (
            "namespace starting with dot",
            ".namespace/policy",
            &["policy namespace must be a valid DNS subdomain"],
        ),
        (
            "namespace ending with dot",
            "namespace./policy",
            &["policy namespace must be a valid DNS subdomain"],
        ),
        (
            "namespace too long",
            &long_ns,
            &["policy namespace must be a valid DNS subdomain"],
        ),
        (
            "namespace with space",
            "name space/policy",
            &["policy namespace must be a valid DNS subdomain"],
        ),
        (
            "namespace with special characters",
            "ns@test/policy",
            &["policy namespace must be a valid DNS subdomain"],
        ),
        (
            "mix of valid and invalid policies",
            "valid-policy,INVALID-POLICY,another-valid",
            &["policy name must be a valid DNS subdomain"],
        ),
        (
            "valid namespace with invalid policy",
            "valid-namespace/INVALID-POLICY",
            &["policy name must be a valid DNS subdomain"],
        ),
        (
            "invalid namespace with valid policy",
            "INVALID-NAMESPACE/valid-policy",
            &["policy namespace must be a valid DNS subdomain"],
        ),
        (
            "both namespace and policy invalid",
            "INVALID-NS/INVALID-POLICY",
            &[
                "policy namespace must be a valid DNS subdomain",
                "policy name must be a valid DNS subdomain",
            ],
        ),
        (
            "multiple errors in list",
            "valid-policy,,INVALID-CASE,/empty-ns,ns/",
            &[
                "policy name cannot be empty",
                "policy name must be a valid DNS subdomain",
                "policy namespace cannot be empty",
            ],
        ),
        (
            "policy name with unicode characters",
            "policyñame",
            &["policy name must be a valid DNS subdomain"],
        ),
        (
            "policy name with emoji",
            "policy🚀name",
            &["policy name must be a valid DNS subdomain"],
        ),
        (
            "policy name with chinese characters",
            "policy中文",
            &["policy name must be a valid DNS subdomain"],
        ),
        (
            "namespace with unicode",
            "nameспейс/policy",
            &["policy namespace must be a valid DNS subdomain"],
        ),
    ];
    for (name, value, expected) in rows {
        assert_policy_names(name, value, expected);
    }
    // On the Ingress: NIC's event text.
    assert_eq!(
        errors(
            &[("nginx.org/policies", "/policy")],
            json!({"rules": [rule("example.com")]})
        ),
        [
            "annotations.nginx.org/policies: Invalid value: \"/policy\": policy namespace cannot be empty",
            "annotations.nginx.org/policies: Invalid value: \"/policy\": policy namespace must be a valid DNS \
             subdomain: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or \
             '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for \
             validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        ]
    );
}

/// `TestValidatePolicyNamesFuzzing`: no panic, every error located and explained.
#[test]
fn validate_policy_names_fuzzing() {
    let mut inputs: Vec<String> = [
        "policy!@#$%^&*()",
        "policy[]{};':\"<>?",
        "policy~`|\\+=",
        "policy/name!@#",
        "ns@#$/policy",
        "valid-policy,invalid!policy",
        "ns1/policy1,ns@2/policy2",
        "good,bad_name,ugly-CASE",
        "a",
        " policy ",
        "  policy1  ,  policy2  ",
        "\tpolicy\t",
        "\npolicy\n",
        "\rpolicy\r",
        "\x0c\x0bpolicy\x08",
        ",",
        " , ",
        ",,",
        " ,, ",
        "   ,   ",
        "\t,\n",
        "/",
        "//",
        "///",
        "a/",
        "/a",
        "a//b",
        "a/b/",
        "/a/b",
        "a/b/c/d/e",
        "//a//b//",
        "namespace///policy",
        ".",
        "..",
        "...",
        "a.",
        ".a",
        "a..b",
        "a.b.",
        ".a.b",
        "ns./pol.icy",
        ".ns/.pol",
        "-",
        "--",
        "a-",
        "-a",
        "a--b",
        "-ns/-pol",
        "ns-/pol-",
        "123",
        "123abc",
        "abc123",
        "1a2b3c",
        "123/456",
        "0/0",
        "POLICY",
        "Policy",
        "pOlIcY",
        "NAMESPACE/POLICY",
        "Namespace/Policy",
        "CamelCase/kebab-case",
        "policyé",
        "policy™",
        "policy中文",
        "policy🚀",
        "пространство/политика",
        "名前空間/ポリシー",
        "네임스페이스/정책",
        "policy\x00name",
        "policy\x01name",
        "policy\x1fname",
        "policy\x7fname",
        "ns\x00/policy\x01",
        "valid,INVALID_case,good-one,/empty-ns,ns/,123_bad,valid.policy,ns.good/policy.name",
        "😀/🚀,valid-ns/good-policy,bad ns/policy,ns/bad policy",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    inputs.extend([
        "a".repeat(253),
        "very-long-policy-name-".repeat(10),
        format!("{}/{}", "a".repeat(500), "b".repeat(500)),
        format!("{}policy", "ns,".repeat(100)),
        format!("{}final", vec![""; 1000].join("policy,")),
        format!("{}/{}", "a.".repeat(50), "b-".repeat(50)),
        format!("{}.{}", "a".repeat(63), "b".repeat(63)),
        format!("a{}", "-a".repeat(31)),
        format!("{}/{}", "1".repeat(63), "2".repeat(63)),
        "\0".repeat(1000),
        "\x00\x01\x02".repeat(100),
        "../".repeat(100),
        "a/".repeat(100),
    ]);
    for input in inputs {
        for e in policy_names(&input, "fuzzy") {
            assert!(e.starts_with("fuzzy: Invalid value: "), "{input:?}: {e}");
        }
    }
}

/// `TestValidatePolicyNamesEdgeCases`.
#[test]
fn validate_policy_names_edge_cases() {
    for (name, value, invalid) in [
        ("single character policy", "a".to_string(), false),
        ("single character namespace and policy", "a/b".into(), false),
        ("maximum length valid policy", "a".repeat(253), false),
        ("over maximum length policy", "a".repeat(254), true),
        (
            "policy with all valid DNS chars",
            "policy-123.test".into(),
            false,
        ),
        (
            "namespaced policy with all valid DNS chars",
            "namespace-123.test/policy-456.example".into(),
            false,
        ),
        (
            "policy name that looks like IP but is valid DNS",
            "policy.1.2.3".into(),
            false,
        ),
        (
            "namespace and policy both at max length",
            format!("{}/{}", "a".repeat(253), "b".repeat(253)),
            false,
        ),
        (
            "deeply nested path treated as single policy name",
            "ns/very/deep/nested/path/policy".into(),
            true,
        ),
        ("policy with all numbers", "123456789".into(), false),
        (
            "namespace and policy with all numbers",
            "123/456".into(),
            false,
        ),
        (
            "policy starting with number and containing letters",
            "1abc.2def-3ghi".into(),
            false,
        ),
        (
            "many dot-separated segments",
            format!("{}policy", "a.".repeat(20)),
            false,
        ),
        (
            "policy name exactly at boundary with dots",
            format!("a.{}", "b".repeat(251)),
            false,
        ),
    ] {
        assert_eq!(
            !policy_names(&value, "edge_case").is_empty(),
            invalid,
            "{name}"
        );
    }
}

/// `TestValidatePolicyNamesCommaHandling`.
#[test]
fn validate_policy_names_comma_handling() {
    let empty: &[&str] = &["policy name cannot be empty"];
    for (name, value, expected) in [
        ("no commas single policy", "simple-policy", &[][..]),
        ("two policies with comma", "policy1,policy2", &[]),
        (
            "policies with spaces around comma",
            "policy1 , policy2",
            &[],
        ),
        (
            "policies with tabs and spaces",
            "policy1\t,\t policy2 ",
            &[],
        ),
        (
            "policies with various whitespace",
            " policy1 \t, \n policy2 \r ",
            &[],
        ),
        ("empty policy between commas", "policy1,,policy2", empty),
        ("trailing comma", "policy1,policy2,", empty),
        ("leading comma", ",policy1,policy2", empty),
        ("only commas", ",,,", empty),
        ("whitespace between commas", "policy1,  ,policy2", empty),
        ("tabs between commas", "policy1,\t\t,policy2", empty),
        (
            "many valid policies",
            "p1,p2,p3,p4,p5,ns1/p6,ns2/p7,p8,p9,p10",
            &[],
        ),
        (
            "many valid policies with whitespace",
            " p1 , p2 , p3 , ns1/p4 , ns2/p5 ",
            &[],
        ),
        (
            "mixed valid and empty policies",
            "valid1,,valid2,,valid3",
            empty,
        ),
    ] {
        assert_policy_names(name, value, expected);
    }
}

/// A TLS Ingress for `cafe.example.com`, with `annotations`.
fn cafe(annotations: &[(&str, &str)]) -> String {
    let object = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "cafe-ingress", "annotations": annotations.iter().copied().collect::<BTreeMap<_, _>>()},
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["cafe.example.com"], "secretName": "cafe-secret"}],
            "rules": [{"host": "cafe.example.com", "http": {"paths": [path("/coffee", "coffee-svc")]}}],
        },
    });
    serde_json::to_string_pretty(&object).expect("json")
}

/// The `if ($scheme = http)` redirect of the rendered server, if any.
fn redirect(annotations: &[(&str, &str)]) -> Option<String> {
    let out = render_nic(&cafe(annotations), &[("default/cafe-secret", tls_secret())]);
    let text = conf(&out, "default-cafe-ingress.conf");
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines
        .iter()
        .position(|l| *l == "if ($scheme = http) {")
        .map(|i| lines[i + 1].to_string())
}

/// `TestSSLRedirectAnnotations` (annotations_test.go), on a TLS host.
#[test]
fn ssl_redirect_annotations() {
    for (name, annotations, expected) in [
        (
            "nginx.org/ssl-redirect enabled",
            vec![("nginx.org/ssl-redirect", "true")],
            true,
        ),
        (
            "nginx.org/ssl-redirect disabled",
            vec![("nginx.org/ssl-redirect", "false")],
            false,
        ),
        (
            "deprecated ingress.kubernetes.io/ssl-redirect enabled",
            vec![("ingress.kubernetes.io/ssl-redirect", "true")],
            true,
        ),
        (
            "deprecated ingress.kubernetes.io/ssl-redirect disabled",
            vec![("ingress.kubernetes.io/ssl-redirect", "false")],
            false,
        ),
        (
            "nginx.org/ssl-redirect takes precedence when both present",
            vec![
                ("nginx.org/ssl-redirect", "false"),
                ("ingress.kubernetes.io/ssl-redirect", "true"),
            ],
            false,
        ),
        (
            "nginx.org/ssl-redirect enabled takes precedence",
            vec![
                ("nginx.org/ssl-redirect", "true"),
                ("ingress.kubernetes.io/ssl-redirect", "false"),
            ],
            true,
        ),
        ("no ssl-redirect annotations", vec![], true),
    ] {
        assert_eq!(redirect(&annotations).is_some(), expected, "{name}");
    }
}

/// `TestHTTPRedirectCodeAnnotationBehavior`: the code NIC keeps, seen in the
/// redirect it writes when the redirect is on (its third row's
/// `nginx.org/redirect-to-https` is not rendered locally).
#[test]
fn http_redirect_code_annotation_behavior() {
    assert_eq!(
        redirect(&[
            ("nginx.org/ssl-redirect", "true"),
            ("nginx.org/http-redirect-code", "307")
        ])
        .as_deref(),
        Some("return 307 https://$host:443$request_uri;"),
        "redirect code applied when SSL redirect enabled"
    );
    assert_eq!(
        redirect(&[
            ("nginx.org/ssl-redirect", "false"),
            ("nginx.org/http-redirect-code", "307")
        ]),
        None,
        "redirect code applied when SSL redirect disabled: nothing redirects"
    );
    assert_eq!(
        redirect(&[("nginx.org/http-redirect-code", "308")]).as_deref(),
        Some("return 308 https://$host:443$request_uri;"),
        "redirect code applied without any redirect settings (ssl-redirect defaults to true)"
    );
    assert_refused(
        &[
            ("nginx.org/redirect-to-https", "true"),
            ("nginx.org/http-redirect-code", "302"),
        ],
        json!({"rules": [rule("cafe.example.com")]}),
        "nginx.org/redirect-to-https",
    );
}

/// `TestGenerateNginxCfgForSSLRedirectDeprecationWarnings` (ingress_test.go).
#[test]
fn ssl_redirect_deprecation_warnings() {
    let warning = "The annotation 'ingress.kubernetes.io/ssl-redirect' is deprecated and will be removed. \
                   Please use 'nginx.org/ssl-redirect' instead.";
    for (msg, annotations, expected) in [
        (
            "deprecated annotation generates warning",
            vec![("ingress.kubernetes.io/ssl-redirect", "true")],
            vec![warning],
        ),
        (
            "new annotation does not generate warning",
            vec![("nginx.org/ssl-redirect", "true")],
            vec![],
        ),
        (
            "both annotations present generates warning",
            vec![
                ("ingress.kubernetes.io/ssl-redirect", "true"),
                ("nginx.org/ssl-redirect", "false"),
            ],
            vec![warning],
        ),
        ("no ssl-redirect annotations", vec![], vec![]),
    ] {
        let out = render_nic(
            &cafe(&annotations),
            &[("default/cafe-secret", tls_secret())],
        );
        assert_eq!(warnings_of(&out, "default/cafe-ingress"), expected, "{msg}");
    }
}

/// One row: its name, `spec.tls`, the Secrets, a line of the server, the warnings.
type SslRow = (
    &'static str,
    Value,
    Vec<(&'static str, crate::scenario::steps::SecretData)>,
    Option<&'static str>,
    Vec<&'static str>,
);

/// `TestAddSSLConfig` (ingress_test.go), through the rendered server: TLS for
/// another host, a good Secret, an invalid one, one of the wrong type, and no
/// Secret name (the wildcard row needs `-wildcard-tls-secret`, not set by default).
#[test]
fn add_ssl_config() {
    let ingress = |tls: Value| {
        let object = json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "cafe-ingress"},
            "spec": {
                "ingressClassName": "nginx",
                "tls": tls,
                "rules": [{"host": "cafe.example.com", "http": {"paths": [path("/", "coffee-svc")]}}],
            },
        });
        serde_json::to_string_pretty(&object).expect("json")
    };
    let ca_typed = super::fidelity_tests::ca_secret(false);
    let invalid_tls = crate::scenario::steps::SecretData {
        type_: "kubernetes.io/tls".into(),
        data: BTreeMap::from([
            ("tls.crt".into(), b"x".to_vec()),
            ("tls.key".into(), b"y".to_vec()),
        ]),
    };
    let cases: Vec<SslRow> = vec![
        (
            "TLS termination for different host",
            json!([{"hosts": ["some.example.com"], "secretName": "cafe-secret"}]),
            vec![("default/cafe-secret", tls_secret())],
            None,
            vec![],
        ),
        (
            "TLS termination",
            json!([{"hosts": ["cafe.example.com"], "secretName": "cafe-secret"}]),
            vec![("default/cafe-secret", tls_secret())],
            Some("ssl_certificate $secret_dir_path/default-cafe-secret;"),
            vec![],
        ),
        (
            "invalid secret",
            json!([{"hosts": ["cafe.example.com"], "secretName": "cafe-secret"}]),
            vec![("default/cafe-secret", invalid_tls)],
            Some("ssl_reject_handshake on;"),
            vec![
                "TLS secret cafe-secret is invalid: failed to validate TLS cert and key: tls: failed to find any PEM data in certificate input",
            ],
        ),
        (
            "secret of wrong type without error",
            json!([{"hosts": ["cafe.example.com"], "secretName": "cafe-secret"}]),
            vec![("default/cafe-secret", ca_typed.clone())],
            Some("ssl_reject_handshake on;"),
            vec![
                "TLS secret cafe-secret is of a wrong type 'nginx.org/ca', must be 'kubernetes.io/tls'",
            ],
        ),
        (
            "secret of wrong type with error",
            json!([{"hosts": ["cafe.example.com"], "secretName": "cafe-secret"}]),
            vec![(
                "default/cafe-secret",
                crate::scenario::steps::SecretData {
                    type_: "nginx.org/ca".into(),
                    data: BTreeMap::new(),
                },
            )],
            Some("ssl_reject_handshake on;"),
            vec![
                "TLS secret cafe-secret is of a wrong type 'nginx.org/ca', must be 'kubernetes.io/tls'",
            ],
        ),
        (
            "no secret name with wildcard disabled",
            json!([{"hosts": ["cafe.example.com"]}]),
            vec![],
            Some("ssl_reject_handshake on;"),
            vec![
                "TLS termination for host 'cafe.example.com' requires specifying a TLS secret or configuring a global wildcard TLS secret",
            ],
        ),
    ];
    for (msg, tls, secrets, line, warnings) in cases {
        let out = render_nic(&ingress(tls), &secrets);
        let text = conf(&out, "default-cafe-ingress.conf");
        match line {
            None => assert!(!text.contains("listen 443"), "{msg}: {text}"),
            Some(l) => assert!(
                text.contains("listen 443 ssl;") && text.contains(l),
                "{msg}: {text}"
            ),
        }
        assert_eq!(warnings_of(&out, "default/cafe-ingress"), warnings, "{msg}");
    }
    // The loop over spec.tls keeps going: the last entry naming the host wins.
    let two = json!([{"hosts": ["cafe.example.com"], "secretName": "first"},
                     {"hosts": ["cafe.example.com"], "secretName": "second"}]);
    let out = render_nic(
        &ingress(two),
        &[
            ("default/first", tls_secret()),
            ("default/second", tls_secret()),
        ],
    );
    assert!(
        conf(&out, "default-cafe-ingress.conf")
            .contains("ssl_certificate $secret_dir_path/default-second;")
    );
}

/// `TestGenerateIngressPath` / `TestPathOrDefault*`: `= ` for Exact, the path
/// as written otherwise, `/` for none (ImplementationSpecific).
#[test]
fn generate_ingress_path() {
    for (path_type, p, expected) in [
        (
            "Exact",
            "/path/to/resource",
            "location = /path/to/resource {",
        ),
        (
            "Prefix",
            "/path/to/resource",
            "location /path/to/resource {",
        ),
        (
            "ImplementationSpecific",
            "/path/to/resource",
            "location /path/to/resource {",
        ),
        ("ImplementationSpecific", "", "location / {"),
    ] {
        let object = json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "cafe-ingress"},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": "cafe.example.com", "http": {"paths": [
                {"path": p, "pathType": path_type, "backend": backend("coffee-svc")}]}}]},
        });
        let out = render_nic(&serde_json::to_string(&object).expect("json"), &[]);
        assert!(
            conf(&out, "default-cafe-ingress.conf").contains(expected),
            "{path_type} {p:?}"
        );
    }
}

/// NIC rejects an invalid Ingress with its validation text as the event, and serves nothing for it.
#[test]
fn an_invalid_ingress_is_rejected_with_nics_words() {
    let out = render_nic(&cafe(&[("nginx.org/mergeable-ingress-type", "abc")]), &[]);
    let state = state_of(&out, "default/cafe-ingress");
    assert_eq!(
        (
            state.state.as_str(),
            state.reason.as_str(),
            state.message.as_str()
        ),
        (
            "Invalid",
            "Rejected",
            "annotations.nginx.org/mergeable-ingress-type: Invalid value: \"abc\": must be one of: 'master' or 'minion'"
        )
    );
    assert!(!out.hosts.contains_key("cafe.example.com"));
}

/// `mergeMasterAnnotationsIntoMinion` (annotations_test.go
/// `TestMergeMasterAnnotationsIntoMinion`): a minion takes its master's
/// timeouts and body size unless it sets its own.
#[test]
fn minion_inherits_master_timeouts() {
    let yaml = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: cafe-master
  annotations: {nginx.org/mergeable-ingress-type: master, nginx.org/proxy-read-timeout: "1m 30", nginx.org/client-max-body-size: 2m}
spec:
  ingressClassName: nginx
  rules: [{host: cafe.example.com}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: coffee
  annotations: {nginx.org/mergeable-ingress-type: minion, nginx.org/client-max-body-size: 3m}
spec:
  ingressClassName: nginx
  rules:
  - host: cafe.example.com
    http: {paths: [{path: /coffee, pathType: Prefix, backend: {service: {name: coffee-svc, port: {number: 80}}}}]}
"#;
    let out = render_nic(yaml, &[]);
    let text = conf(&out, "default-cafe-master.conf");
    let coffee = &text[text.find("location /coffee").expect("location")..];
    assert!(coffee.contains("proxy_read_timeout 1m30s;"), "{coffee}");
    assert!(coffee.contains("client_max_body_size 3m;"), "{coffee}");
    assert!(coffee.contains("proxy_connect_timeout 60s;"), "{coffee}");
}

/// The lines of the location block for `path` in `text`.
fn location_block<'t>(text: &'t str, path: &str) -> &'t str {
    let start = text
        .find(&format!("location {path} {{"))
        .unwrap_or_else(|| panic!("no location {path} in {text}"));
    let end = text[start..]
        .find("\n    }")
        .map_or(text.len(), |e| start + e);
    &text[start..end]
}

/// `TestGenerateNginxCfgForAccessControl`: server-level `allow` / `deny all`, no warnings.
#[test]
fn ingress_access_control() {
    let yaml = format!(
        "{}{}",
        super::fidelity_tests::policy_object(
            "my-test-policy",
            "{accessControl: {allow: [10.1.0.0/24]}}"
        ),
        super::fidelity_tests::CAFE_INGRESS
            .replace("POLICIES", "my-test-policy")
            .replace(", nginx.org/ssl-services: \"SSL\"", "")
    );
    let out = render_nic(&yaml, &[("default/cafe-secret", tls_secret())]);
    let text = conf(&out, "default-cafe-ingress.conf");
    super::fidelity_tests::assert_block(
        &text,
        &["allow 10.1.0.0/24;", "deny all;", "server_tokens on;"],
    );
    assert!(warnings_of(&out, "default/cafe-ingress").is_empty());
}

/// `TestGenerateNginxCfgForMergeableIngressesMasterWithAccessControl` and
/// `...MinionWithAccessControl`: the master's rules at server scope, a
/// minion's in its own locations only.
#[test]
fn mergeable_access_control() {
    let policy = super::fidelity_tests::policy_object(
        "my-test-policy",
        "{accessControl: {allow: [10.0.0.1/24]}}",
    );
    let master = super::fidelity_tests::MERGEABLE
        .replace("MASTER", "my-test-policy")
        .replace(", nginx.org/policies: \"COFFEE\"", "");
    let out = render_nic(
        &format!("{policy}{master}"),
        &[("default/cafe-secret", tls_secret())],
    );
    let text = conf(&out, "default-cafe-ingress-master.conf");
    let server = &text[..text.find("location /").expect("locations")];
    assert!(
        server.contains("allow 10.0.0.1/24;") && server.contains("deny all;"),
        "{server}"
    );
    assert!(!location_block(&text, "/coffee").contains("allow "));
    for key in [
        "default/cafe-ingress-master",
        "default/cafe-ingress-coffee-minion",
    ] {
        assert!(warnings_of(&out, key).is_empty(), "{key}");
    }

    let minion = super::fidelity_tests::MERGEABLE
        .replace(", nginx.org/policies: \"MASTER\"", "")
        .replace("COFFEE", "my-test-policy");
    let out = render_nic(
        &format!("{policy}{minion}"),
        &[("default/cafe-secret", tls_secret())],
    );
    let text = conf(&out, "default-cafe-ingress-master.conf");
    let server = &text[..text.find("location /").expect("locations")];
    assert!(!server.contains("allow "), "{server}");
    let coffee = location_block(&text, "/coffee");
    assert!(
        coffee.contains("allow 10.0.0.1/24;") && coffee.contains("deny all;"),
        "{coffee}"
    );
    assert!(!location_block(&text, "/tea").contains("allow "));
    assert!(warnings_of(&out, "default/cafe-ingress-coffee-minion").is_empty());
}

/// `TestGenerateNginxCfgForMergeableIngressesMasterWithMissingOrInvalidPolicy`
/// and `...MinionWithMissingOrInvalidPolicy` (their `nginx.com/policies` rows
/// use a Plus annotation, not rendered locally).
#[test]
fn mergeable_missing_policy() {
    let master = super::fidelity_tests::MERGEABLE
        .replace("MASTER", "missing-policy")
        .replace(", nginx.org/policies: \"COFFEE\"", "");
    let out = render_nic(&master, &[("default/cafe-secret", tls_secret())]);
    let text = conf(&out, "default-cafe-ingress-master.conf");
    let server = &text[..text.find("location /").expect("locations")];
    assert!(server.contains("return 500;"), "{server}");
    assert!(
        warnings_of(&out, "default/cafe-ingress-master")
            .contains(&"Policy default/missing-policy is missing or invalid".to_string())
    );

    let minion = super::fidelity_tests::MERGEABLE
        .replace(", nginx.org/policies: \"MASTER\"", "")
        .replace("COFFEE", "missing-policy");
    let out = render_nic(&minion, &[("default/cafe-secret", tls_secret())]);
    let text = conf(&out, "default-cafe-ingress-master.conf");
    assert!(location_block(&text, "/coffee").contains("return 500;"));
    assert!(!location_block(&text, "/tea").contains("return 500;"));
    assert!(
        warnings_of(&out, "default/cafe-ingress-coffee-minion")
            .contains(&"Policy default/missing-policy is missing or invalid".to_string())
    );
    // The nginx.com/policies rows: on OSS NIC rejects the Ingress.
    assert_eq!(
        errors(
            &[("nginx.com/policies", "missing-policy")],
            json!({"rules": [rule("cafe.example.com")]})
        ),
        ["annotations.nginx.com/policies: Forbidden: annotation requires NGINX Plus"]
    );
}

/// `TestGenerateNginxCfgWithMissingTLSSecret`: the handshake is refused and NIC
/// warns with the store's error (the real store's words; NIC's test injects its own).
/// `TestGenerateNginxCfgWithWildcardTLSSecret` needs `-wildcard-tls-secret`, not set by default.
#[test]
fn ingress_missing_tls_secret() {
    let out = render_nic(&cafe(&[]), &[]);
    let text = conf(&out, "default-cafe-ingress.conf");
    assert!(text.contains("ssl_reject_handshake on;"), "{text}");
    assert_eq!(
        warnings_of(&out, "default/cafe-ingress"),
        ["TLS secret cafe-secret is invalid: secret doesn't exist or of an unsupported type"]
    );
}

/// `getPolicies` (controller.go), which the Ingress event reports: a Policy of
/// another class is named as such, one with no class is the controller's, and
/// each reference is looked up as written (duplicates included).
#[test]
fn ingress_policy_lookup_errors() {
    let other = "apiVersion: k8s.nginx.org/v1\nkind: Policy\nmetadata: {name: other}\n\
                 spec: {ingressClassName: other, accessControl: {allow: [10.0.0.1]}}\n---\n";
    let unclassed = "apiVersion: k8s.nginx.org/v1\nkind: Policy\nmetadata: {name: unclassed}\n\
                     spec: {ingressClassName: \"\", accessControl: {allow: [10.0.0.2]}}\n---\n";
    let ingress =
        super::fidelity_tests::CAFE_INGRESS.replace(", nginx.org/ssl-services: \"SSL\"", "");
    let out = render_nic(
        &format!("{other}{}", ingress.replace("POLICIES", "other")),
        &[("default/cafe-secret", tls_secret())],
    );
    assert_eq!(
        warnings_of(&out, "default/cafe-ingress"),
        [
            "Policy error for Ingress default/cafe-ingress: referenced policy default/other has incorrect ingress \
             class: other (controller ingress class: nginx)",
            "Policy default/other is missing or invalid"
        ]
    );
    let out = render_nic(
        &format!("{unclassed}{}", ingress.replace("POLICIES", "unclassed")),
        &[("default/cafe-secret", tls_secret())],
    );
    assert!(warnings_of(&out, "default/cafe-ingress").is_empty());
    assert!(conf(&out, "default-cafe-ingress.conf").contains("allow 10.0.0.2;"));
    let out = render_nic(
        &ingress.replace("POLICIES", "gone, gone"),
        &[("default/cafe-secret", tls_secret())],
    );
    assert_eq!(
        warnings_of(&out, "default/cafe-ingress"),
        [
            "Policy error for Ingress default/cafe-ingress: policy default/gone doesn't exist",
            "Policy error for Ingress default/cafe-ingress: policy default/gone doesn't exist",
            "Policy default/gone is missing or invalid"
        ]
    );
}

/// `HasCorrectIngressClass`: the deprecated `kubernetes.io/ingress.class`
/// annotation wins over `ingressClassName`.
#[test]
fn ingress_class_annotation_wins() {
    let ingress = cafe(&[("kubernetes.io/ingress.class", "other")]);
    let out = render_nic(&ingress, &[("default/cafe-secret", tls_secret())]);
    assert!(
        out.conf_files
            .iter()
            .all(|(name, _)| name != "default-cafe-ingress.conf")
    );
    assert!(out.states.iter().all(|s| s.key != "default/cafe-ingress"));
}

/// A Policy object named `name` with an accessControl list.
fn access_policy(name: &str, kind: &str, cidr: &str) -> String {
    super::fidelity_tests::policy_object(name, &format!("{{accessControl: {{{kind}: [{cidr}]}}}}"))
}

/// version1 `template_test.go`: `TestExecuteTemplate_ForIngressForNGINXWithACPolicyAllow`
/// and `...Deny`.
#[test]
fn template_ingress_access_control_allow_and_deny() {
    for (kind, wanted) in [
        ("allow", ["allow 10.0.0.0/8;", "deny all;"]),
        ("deny", ["deny 10.0.0.0/8;", "allow all;"]),
    ] {
        let yaml = format!(
            "{}{}",
            access_policy("ac", kind, "10.0.0.0/8"),
            super::fidelity_tests::CAFE_INGRESS
                .replace("POLICIES", "ac")
                .replace(", nginx.org/ssl-services: \"SSL\"", "")
        );
        let out = render_nic(&yaml, &[("default/cafe-secret", tls_secret())]);
        super::fidelity_tests::assert_block(&conf(&out, "default-cafe-ingress.conf"), &wanted);
    }
}

/// `TestExecuteTemplate_ForMergeableIngressMasterPolicy`, `...MinionPolicy` and
/// `...MasterMinionPolicy`: the master's list in the server, the minion's in its location.
#[test]
fn template_mergeable_access_control() {
    let render = |master: Option<(&str, &str)>, minion: Option<(&str, &str)>| {
        let mut policies = String::new();
        let mut yaml = super::fidelity_tests::MERGEABLE.to_string();
        match master {
            Some((kind, cidr)) => {
                policies.push_str(&access_policy("master-ac", kind, cidr));
                yaml = yaml.replace("MASTER", "master-ac");
            }
            None => yaml = yaml.replace(", nginx.org/policies: \"MASTER\"", ""),
        }
        match minion {
            Some((kind, cidr)) => {
                policies.push_str(&access_policy("minion-ac", kind, cidr));
                yaml = yaml.replace("COFFEE", "minion-ac");
            }
            None => yaml = yaml.replace(", nginx.org/policies: \"COFFEE\"", ""),
        }
        let out = render_nic(
            &format!("{policies}{yaml}"),
            &[("default/cafe-secret", tls_secret())],
        );
        let text = conf(&out, "default-cafe-ingress-master.conf");
        let server = text[..text.find("location /").expect("locations")].to_string();
        (server, location_block(&text, "/coffee").to_string())
    };
    let has = |block: &str, wanted: &[&str]| wanted.iter().all(|w| block.contains(w));
    for (name, master, minion, wanted_master, wanted_minion) in [
        (
            "Master Policy - Allow",
            Some(("allow", "10.0.0.0/16")),
            None,
            &["allow 10.0.0.0/16;", "deny all;"][..],
            &[][..],
        ),
        (
            "Master Policy - Deny",
            Some(("deny", "10.0.0.0/16")),
            None,
            &["deny 10.0.0.0/16;", "allow all;"],
            &[],
        ),
        (
            "Minion Policy - Allow",
            None,
            Some(("allow", "10.0.0.0/16")),
            &[],
            &["allow 10.0.0.0/16;", "deny all;"],
        ),
        (
            "Minion Policy - Deny",
            None,
            Some(("deny", "10.0.0.0/16")),
            &[],
            &["deny 10.0.0.0/16;", "allow all;"],
        ),
        (
            "Master + Minion - Allow",
            Some(("allow", "10.0.0.0/16")),
            Some(("allow", "10.1.1.1/16")),
            &["allow 10.0.0.0/16;", "deny all;"],
            &["allow 10.1.1.1/16", "deny all;"],
        ),
        (
            "Master + Minion - Deny",
            Some(("deny", "10.0.0.0/16")),
            Some(("deny", "10.1.1.1/16")),
            &["deny 10.0.0.0/16;", "allow all;"],
            &["deny 10.1.1.1/16", "allow all;"],
        ),
        (
            "Master Allow Minion Deny",
            Some(("allow", "10.0.0.0/16")),
            Some(("deny", "10.1.1.1/16")),
            &["allow 10.0.0.0/16;", "deny all;"],
            &["deny 10.1.1.1/16", "allow all;"],
        ),
    ] {
        let (server, coffee) = render(master, minion);
        assert!(has(&server, wanted_master), "{name}: {server}");
        assert!(has(&coffee, wanted_minion), "{name}: {coffee}");
        if master.is_none() {
            assert!(
                !server.contains("allow ") && !server.contains("deny "),
                "{name}: {server}"
            );
        }
        if minion.is_none() {
            assert!(
                !coffee.contains("allow ") && !coffee.contains("deny "),
                "{name}: {coffee}"
            );
        }
    }
}

/// `TestExecuteTemplate_ForIngressForNGINXWithServiceBeforeRedirect` (and the
/// VirtualServer one, `TestVirtualServerForNginxWithServiceBeforeRedirect`):
/// `set $service "-";` comes before the redirect's `return`.
#[test]
fn template_service_before_redirect() {
    let out = render_nic(&cafe(&[]), &[("default/cafe-secret", tls_secret())]);
    let text = conf(&out, "default-cafe-ingress.conf");
    let set = text.find("set $service \"-\";").expect("set");
    let ret = text.find("return 301 https://").expect("return");
    assert!(set < ret, "{text}");
    let vs = "apiVersion: k8s.nginx.org/v1\nkind: VirtualServer\nmetadata: {name: cafe}\nspec:\n  host: cafe.example.com\n  \
              tls: {secret: cafe-secret, redirect: {enable: true}}\n  upstreams: [{name: tea, service: tea-svc, port: 80}]\n  \
              routes: [{path: /, action: {pass: tea}}]\n";
    let out = render_nic(vs, &[("default/cafe-secret", tls_secret())]);
    let text = conf(&out, "vs_default_cafe.conf");
    assert!(
        text.find("set $service \"-\";").expect("set") < text.find("return 301").expect("return")
    );
}

/// `TestExecuteTemplate_ForIngressForNGINXWithPoliciesErrorReturnServer` and
/// `...Location`: a standard Ingress's failed policies return 500 from the
/// server; a minion's from its location only.
#[test]
fn template_policies_error_return() {
    let standard = super::fidelity_tests::CAFE_INGRESS
        .replace("POLICIES", "missing")
        .replace(", nginx.org/ssl-services: \"SSL\"", "");
    let out = render_nic(&standard, &[("default/cafe-secret", tls_secret())]);
    let text = conf(&out, "default-cafe-ingress.conf");
    let server = &text[..text.find("location /").expect("locations")];
    assert!(server.contains("return 500;"), "{server}");
    let minion = super::fidelity_tests::MERGEABLE
        .replace(", nginx.org/policies: \"MASTER\"", "")
        .replace("COFFEE", "missing")
        .replace("/coffee", "/tea-first")
        .replace("/tea,", "/coffee-later,");
    let out = render_nic(&minion, &[("default/cafe-secret", tls_secret())]);
    let text = conf(&out, "default-cafe-ingress-master.conf");
    let first_location = text.find("location /").expect("locations");
    assert!(!text[..first_location].contains("return 500;"));
    assert!(location_block(&text, "/tea-first").contains("return 500;"));
}

/// `TestAddIngressForMergeableIngresses` (internal/k8s/configuration_test.go):
/// a minion without a master, or whose master NIC rejected, is a Warning with
/// reason `NoIngressMasterFound`; it is not served.
#[test]
fn minion_without_a_valid_master() {
    let minion = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ingress-minion-1
  annotations: {nginx.org/mergeable-ingress-type: minion}
spec:
  ingressClassName: nginx
  rules:
  - host: foo.example.com
    http: {paths: [{path: /path-1, pathType: Prefix, backend: {service: {name: s, port: {number: 80}}}}]}
"#;
    let invalid_master = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: master\n  \
                          annotations: {nginx.org/mergeable-ingress-type: master}\nspec:\n  ingressClassName: nginx\n  \
                          rules: [{host: foo.example.com}, {host: bar.example.com}]\n---\n";
    for yaml in [minion.to_string(), format!("{invalid_master}{minion}")] {
        let out = render_nic(&yaml, &[]);
        let state = state_of(&out, "default/ingress-minion-1");
        assert_eq!(
            (
                state.state.as_str(),
                state.reason.as_str(),
                state.message.as_str()
            ),
            (
                "Warning",
                "NoIngressMasterFound",
                "Ingress master is invalid or doesn't exist"
            )
        );
        assert!(!out.hosts.contains_key("foo.example.com"));
    }
}

/// `addProblemsForResourcesWithoutActiveHost` (configuration.go): a second
/// VirtualServer for a taken host is a Warning, `Rejected`, in NIC's words.
#[test]
fn virtual_server_host_taken() {
    let vs = |name: &str| {
        format!(
            "apiVersion: k8s.nginx.org/v1\nkind: VirtualServer\nmetadata: {{name: {name}}}\nspec:\n  host: cafe.example.com\n  \
             upstreams: [{{name: tea, service: tea-svc, port: 80}}]\n  routes: [{{path: /, action: {{pass: tea}}}}]\n---\n"
        )
    };
    let out = render_nic(&format!("{}{}", vs("first"), vs("second")), &[]);
    let state = state_of(&out, "default/second");
    assert_eq!(
        (
            state.state.as_str(),
            state.reason.as_str(),
            state.message.as_str()
        ),
        ("Warning", "Rejected", "Host is taken by another resource")
    );
    assert_eq!(state_of(&out, "default/first").state.as_str(), "Valid");
}

/// `TestValidateNginxIngressAnnotations`, the rows whose annotation NIC gates
/// behind a flag that is off by default (Plus, snippets, App Protect, App
/// Protect DoS, internal routes): NIC rejects the Ingress whatever the value.
/// The rows that turn one gate on and hit the next (App Protect enabled, then
/// "requires NGINX Plus") need a flag the local substrate does not set.
#[test]
fn validate_gated_annotations() {
    let plain = || json!({"rules": [rule("example.com")]});
    for (name, value, detail) in [
        (
            "nginx.com/health-checks",
            "true",
            "annotation requires NGINX Plus",
        ),
        (
            "nginx.com/health-checks-mandatory",
            "true",
            "annotation requires NGINX Plus",
        ),
        (
            "nginx.com/health-checks-mandatory-queue",
            "true",
            "annotation requires NGINX Plus",
        ),
        (
            "nginx.com/slow-start",
            "true",
            "annotation requires NGINX Plus",
        ),
        (
            "nginx.org/server-snippets",
            "snippet-1",
            "snippet specified but snippets feature is not enabled",
        ),
        (
            "nginx.org/location-snippets",
            "snippet-1",
            "snippet specified but snippets feature is not enabled",
        ),
        (
            "nginx.com/jwt-realm",
            "true",
            "annotation requires NGINX Plus",
        ),
        (
            "nginx.com/jwt-key",
            "true",
            "annotation requires NGINX Plus",
        ),
        (
            "nginx.com/jwt-token",
            "true",
            "annotation requires NGINX Plus",
        ),
        (
            "nginx.com/jwt-login-url",
            "true",
            "annotation requires NGINX Plus",
        ),
        (
            "nginx.com/sticky-cookie-services",
            "true",
            "annotation requires NGINX Plus",
        ),
        (
            "appprotect.f5.com/app-protect-enable",
            "true",
            "annotation requires AppProtect",
        ),
        (
            "appprotect.f5.com/app-protect-security-log-enable",
            "true",
            "annotation requires AppProtect",
        ),
        (
            "appprotect.f5.com/app-protect-policy",
            "true",
            "annotation requires AppProtect",
        ),
        (
            "appprotect.f5.com/app-protect-security-log",
            "true",
            "annotation requires AppProtect",
        ),
        (
            "appprotect.f5.com/app-protect-security-log-destination",
            "true",
            "annotation requires AppProtect",
        ),
        (
            "appprotectdos.f5.com/app-protect-dos-resource",
            "dos-resource-name",
            "annotation requires AppProtectDos",
        ),
        (
            "nsm.nginx.com/internal-route",
            "true",
            "annotation requires Internal Routes enabled",
        ),
    ] {
        assert_eq!(
            errors(&[(name, value)], plain()),
            [format!("annotations.{name}: Forbidden: {detail}")],
            "{name}"
        );
    }
    // End to end: Invalid, Rejected, nothing served.
    let out = render_nic(
        &cafe(&[("appprotect.f5.com/app-protect-enable", "True")]),
        &[],
    );
    let state = state_of(&out, "default/cafe-ingress");
    assert_eq!(
        (state.state.as_str(), state.message.as_str()),
        (
            "Invalid",
            "annotations.appprotect.f5.com/app-protect-enable: Forbidden: annotation requires AppProtect"
        )
    );
}
