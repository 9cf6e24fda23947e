//! NIC v5.5.4's `internal/configs/virtualserver_helpers_test.go` and
//! `virtualserver_config_test.go`, the cases about what the local substrate
//! renders for a `VirtualServer` (TLS, the TLS redirect, upstreams, location
//! paths, rewrites, foreign-namespace Services). One test per NIC test
//! function, each row named as NIC names it. NIC's helper tests pass their own
//! `ConfigParams`; the local substrate runs NIC's default ConfigMap, so rows
//! are asserted with its defaults where they differ (said per test).

use serde_json::{Value, json};

use super::fidelity_tests::{ca_secret, conf, tls_secret, warnings_of};
use super::render::RenderEnv;
use super::virtualserver::{location_path, proxy_pass_rewrite, rewrites, time_or};
use super::{Endpoints, configure};
use crate::manifest::kinds::ProxyAction;
use crate::manifest::{self, Object, ServicePort};
use crate::scenario::steps::SecretData;

/// Endpoints NIC's tests give: `ns/svc:port` → addresses.
struct Fixed(Vec<(&'static str, &'static str)>);

impl Endpoints for Fixed {
    fn lookup(&self, service: &ServicePort) -> Result<Vec<String>, String> {
        let key = format!("{}:{}", service.service, service.port);
        Ok(self
            .0
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, a)| a.to_string())
            .collect())
    }
}

fn render(spec: Value, secrets: &[(&str, SecretData)], endpoints: &Fixed) -> super::NicOutput {
    let object = json!({
        "apiVersion": "k8s.nginx.org/v1",
        "kind": "VirtualServer",
        "metadata": {"name": "cafe", "namespace": "default"},
        "spec": spec,
    });
    let text = serde_json::to_string_pretty(&object).expect("json");
    let objects: Vec<Object> =
        manifest::load_text(&text, std::path::Path::new("test.yaml"), "default").expect("objects");
    let secrets: crate::scenario::steps::Secrets = secrets
        .iter()
        .map(|(k, s)| {
            let (ns, name) = k.split_once('/').expect("ns/name");
            (manifest::NamespacedName::new(ns, name), s.clone())
        })
        .collect();
    configure(&objects, &secrets, endpoints, &RenderEnv::nic()).expect("configure")
}

fn vs_conf(out: &super::NicOutput) -> String {
    conf(out, "vs_default_cafe.conf")
}

fn cafe(extra: Value) -> Value {
    let mut spec = json!({
        "host": "cafe.example.com",
        "upstreams": [{"name": "coffee", "service": "coffee-svc", "port": 80}],
        "routes": [{"path": "/coffee", "action": {"pass": "coffee"}}],
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    spec
}

fn no_endpoints() -> Fixed {
    Fixed(Vec::new())
}

/// `TestGenerateSSLConfig`: no TLS, an empty secret, a missing Secret, one of
/// the wrong type, and a good one (the wildcard row needs `-wildcard-tls-secret`).
#[test]
fn generate_ssl_config() {
    let case = |tls: Value, secrets: &[(&str, SecretData)]| {
        let spec = if tls.is_null() {
            cafe(json!({}))
        } else {
            cafe(json!({"tls": tls}))
        };
        let out = render(spec, secrets, &no_endpoints());
        (vs_conf(&out), warnings_of(&out, "default/cafe"))
    };
    let (text, warnings) = case(json!(null), &[]);
    assert!(!text.contains("443") && warnings.is_empty(), "no TLS field");
    let (text, warnings) = case(json!({"secret": ""}), &[]);
    assert!(
        !text.contains("443") && warnings.is_empty(),
        "TLS field with empty secret and wildcard cert disabled"
    );
    let (text, warnings) = case(json!({"secret": "missing"}), &[]);
    assert!(text.contains("listen 443 ssl;") && text.contains("ssl_reject_handshake on;"));
    assert_eq!(
        warnings,
        ["TLS secret missing is invalid: secret doesn't exist or of an unsupported type"],
        "missing doesn't exist in the cluster with HTTPS"
    );
    let (text, warnings) = case(
        json!({"secret": "mistyped"}),
        &[("default/mistyped", ca_secret(false))],
    );
    assert!(text.contains("ssl_reject_handshake on;"));
    assert_eq!(
        warnings,
        ["TLS secret mistyped is of a wrong type 'nginx.org/ca', must be 'kubernetes.io/tls'"],
        "wrong secret type"
    );
    let (text, warnings) = case(
        json!({"secret": "secret"}),
        &[("default/secret", tls_secret())],
    );
    assert!(
        text.contains("ssl_certificate $secret_dir_path/default-secret;")
            && text.contains("ssl_certificate_key $secret_dir_path/default-secret;")
            && !text.contains("ssl_reject_handshake"),
        "normal case with HTTPS: {text}"
    );
    assert!(warnings.is_empty());
}

/// `TestGenerateRedirectConfig` and `TestGenerateTLSRedirectBasedOn`.
#[test]
fn generate_redirect_config() {
    let redirect = |r: Value| {
        let mut tls = json!({"secret": "secret"});
        if !r.is_null() {
            tls["redirect"] = r;
        }
        let out = render(
            cafe(json!({"tls": tls})),
            &[("default/secret", tls_secret())],
            &no_endpoints(),
        );
        let text = vs_conf(&out);
        let lines: Vec<String> = text.lines().map(|l| l.trim().to_string()).collect();
        lines
            .iter()
            .position(|l| l.starts_with("if (") && l.ends_with("= 'http') {"))
            .map(|i| (lines[i].clone(), lines[i + 1].clone()))
    };
    assert_eq!(redirect(json!(null)), None, "no redirect field");
    assert_eq!(
        redirect(json!({"enable": false})),
        None,
        "redirect disabled"
    );
    assert_eq!(
        redirect(json!({"enable": true})),
        Some((
            "if ($scheme = 'http') {".into(),
            "return 301 https://$host$request_uri;".into()
        )),
        "normal case with defaults"
    );
    assert_eq!(
        redirect(json!({"enable": true, "basedOn": "x-forwarded-proto"})),
        Some((
            "if ($http_x_forwarded_proto = 'http') {".into(),
            "return 301 https://$host$request_uri;".into()
        )),
        "normal case with BasedOn set"
    );
    for (based_on, var) in [
        ("scheme", "$scheme"),
        ("x-forwarded-proto", "$http_x_forwarded_proto"),
        ("", "$scheme"),
    ] {
        let (line, _) =
            redirect(json!({"enable": true, "code": 308, "basedOn": based_on})).expect("redirect");
        assert_eq!(
            line,
            format!("if ({var} = 'http') {{"),
            "TestGenerateTLSRedirectBasedOn {based_on:?}"
        );
    }
}

/// `TestGeneratePath`.
#[test]
fn generate_path() {
    for (path, expected) in [
        ("/", "/"),
        ("=/exact/match", "= /exact/match"),
        ("= /exact/match", "= /exact/match"),
        ("=\t/exact/match", "= /exact/match"),
        (r"~ *\\.jpg", r#"~ "*\\.jpg""#),
        (r"~* *\\.PNG", r#"~* "*\\.PNG""#),
        ("^~/images", "^~ /images"),
        ("^~ /images", "^~ /images"),
        ("^~  /images", "^~ /images"),
        ("~\t/api", r#"~ "/api""#),
        ("~*\t\t/bar", r#"~* "/bar""#),
        ("^~\t/static", "^~ /static"),
    ] {
        assert_eq!(location_path(path), expected, "{path:?}");
    }
}

/// `TestGenerateTime` and `TestGenerateTimeWithDefault`.
#[test]
fn generate_time() {
    for (value, expected) in [("0s", "0s"), ("0", "0s"), ("1h", "1h"), ("1h 30m", "1h30m")] {
        assert_eq!(time_or(Some(value), "unused"), expected, "{value}");
    }
    for (value, default, expected) in [
        ("1h 30m", "", "1h30m"),
        ("", "60s", "60s"),
        ("", "test", "test"),
    ] {
        assert_eq!(
            time_or(Some(value), default),
            expected,
            "{value:?} {default:?}"
        );
    }
}

fn proxy(rewrite: &str) -> ProxyAction {
    serde_json::from_value(json!({"upstream": "u", "rewritePath": rewrite})).expect("proxy")
}

/// `TestGenerateRewrites` (the rows of a route's own location; the internal
/// rows are split and match locations, not rendered locally).
#[test]
fn generate_rewrites() {
    assert!(rewrites("", None).is_empty(), "action isn't proxy");
    assert!(
        rewrites("", Some(&proxy(""))).is_empty(),
        "no rewrite is configured"
    );
    assert!(
        rewrites("/path", Some(&proxy("/rewrite"))).is_empty(),
        "non-regex rewrite for non-internal location is not needed"
    );
    assert_eq!(
        rewrites("~/regex", Some(&proxy("/rewrite"))),
        [r#""^/regex" "/rewrite" break"#],
        "regex rewrite for non-internal location"
    );
}

/// `TestGenerateProxyPassRewrite` (non-internal rows).
#[test]
fn generate_proxy_pass_rewrite() {
    assert_eq!(proxy_pass_rewrite("", None), "");
    for (path, expected) in [
        ("/path", "/rewrite"),
        ("=/path", "/rewrite"),
        ("~/path", ""),
        ("^~/path", "/rewrite"),
    ] {
        assert_eq!(
            proxy_pass_rewrite(path, Some(&proxy("/rewrite"))),
            expected,
            "{path}"
        );
    }
    // Rendered: the regex route rewrites, then proxies to the bare upstream.
    let spec = cafe(
        json!({"routes": [{"path": "~ ^/coffee/(.*)", "action": {"proxy": {"upstream": "coffee", "rewritePath": "/$1"}}}]}),
    );
    let text = vs_conf(&render(spec, &[], &no_endpoints()));
    super::fidelity_tests::assert_block(
        &text,
        &[
            "set $default_connection_header close;",
            r#"rewrite "^^/coffee/(.*)" "/$1" break;"#,
        ],
    );
    assert!(
        text.contains("proxy_pass http://vs_default_cafe_coffee;"),
        "{text}"
    );
}

/// `TestGenerateProxyPassProtocol` and `TestIsTLSEnabled` (the rows without
/// SPIFFE certificates or NGINX Service Mesh, which the local substrate does not run).
#[test]
fn generate_proxy_pass_protocol() {
    for (tls, scheme) in [
        (json!(null), "http"),
        (json!({"enable": false}), "http"),
        (json!({"enable": true}), "https"),
    ] {
        let mut u = json!({"name": "coffee", "service": "coffee-svc", "port": 80});
        if !tls.is_null() {
            u["tls"] = tls.clone();
        }
        let text = vs_conf(&render(
            cafe(json!({"upstreams": [u]})),
            &[],
            &no_endpoints(),
        ));
        assert!(
            text.contains(&format!("proxy_pass {scheme}://vs_default_cafe_coffee;")),
            "{tls}"
        );
    }
}

/// `TestGenerateUpstream`, `TestGenerateLBMethod`, `TestGenerateUpstreamWithKeepalive`
/// and `TestUpstreamHasKeepalive`, with NIC's default ConfigMap (`random two
/// least_conn`, `max_fails=1`, `fail_timeout=10s`, `max_conns=0`, keepalive 0):
/// NIC's rows that set a ConfigMap keepalive of 21 or 32 are the default's 0 here.
#[test]
fn generate_upstream() {
    let endpoints = Fixed(vec![("default/coffee-svc:80", "192.168.10.10:8080")]);
    let upstream_block = |u: Value| {
        let text = vs_conf(&render(cafe(json!({"upstreams": [u]})), &[], &endpoints));
        let start = text
            .find("upstream vs_default_cafe_coffee {")
            .expect("upstream");
        let end = start + text[start..].find('}').expect("end");
        (text[start..=end].to_string(), text)
    };
    let base = json!({"name": "coffee", "service": "coffee-svc", "port": 80});
    let (block, text) = upstream_block(base.clone());
    assert_eq!(
        super::fidelity_tests::lines(&block),
        [
            "upstream vs_default_cafe_coffee {",
            "zone vs_default_cafe_coffee 256k;",
            "random two least_conn;",
            "server 192.168.10.10:8080 max_fails=1 fail_timeout=10s max_conns=0;",
            "}"
        ]
    );
    assert!(
        text.contains("set $default_connection_header close;"),
        "no keepalive"
    );
    for (method, line) in [("round_robin", None), ("random", Some("random;"))] {
        let mut u = base.clone();
        u["lb-method"] = json!(method);
        let (block, _) = upstream_block(u);
        assert!(!block.contains("least_conn"), "{method}");
        if let Some(l) = line {
            assert!(block.contains(l), "{method}: {block}");
        }
    }
    for (keepalive, expected) in [
        (json!(32), Some("keepalive 32;")),
        (json!(0), None),
        (json!(null), None),
    ] {
        let mut u = base.clone();
        if !keepalive.is_null() {
            u["keepalive"] = keepalive.clone();
        }
        let (block, text) = upstream_block(u);
        assert_eq!(
            block.contains("keepalive"),
            expected.is_some(),
            "{keepalive}"
        );
        if let Some(l) = expected {
            assert!(block.contains(l));
            assert!(
                text.contains("set $default_connection_header \"\";"),
                "upstream keepalive set"
            );
        }
    }
}

/// `TestGenerateVirtualServerConfigWithForeignNamespaceService` (and
/// `TestParseServiceReference`, `TestUpstreamNamerForVirtualServer`): the
/// endpoints of `coffee/coffee-svc`, the upstream named for the VirtualServer,
/// and `$service` without the namespace.
#[test]
fn foreign_namespace_service() {
    let endpoints = Fixed(vec![("coffee/coffee-svc:80", "10.0.0.20:80")]);
    let spec = cafe(
        json!({"upstreams": [{"name": "coffee", "service": "coffee/coffee-svc", "port": 80}]}),
    );
    let out = render(spec, &[], &endpoints);
    assert!(warnings_of(&out, "default/cafe").is_empty());
    let text = vs_conf(&out);
    assert!(
        text.contains("server 10.0.0.20:80 max_fails=1 fail_timeout=10s max_conns=0;"),
        "{text}"
    );
    let coffee = &text[text.find("location /coffee {").expect("location")..];
    assert!(coffee.contains("set $service \"coffee-svc\";"), "{coffee}");
    assert!(coffee.contains("proxy_pass http://vs_default_cafe_coffee;"));
}

/// A VirtualServer with an empty `ingressClassName` is the controller's (`HasCorrectIngressClass`).
#[test]
fn empty_ingress_class_is_ours() {
    let out = render(cafe(json!({"ingressClassName": ""})), &[], &no_endpoints());
    assert!(
        out.conf_files
            .iter()
            .any(|(n, _)| n == "vs_default_cafe.conf")
    );
    let out = render(
        cafe(json!({"ingressClassName": "other"})),
        &[],
        &no_endpoints(),
    );
    assert!(
        out.conf_files
            .iter()
            .all(|(n, _)| n != "vs_default_cafe.conf")
    );
}
