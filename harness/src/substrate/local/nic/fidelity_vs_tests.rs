//! NIC v5.5.4's `pkg/apis/configuration/validation/virtualserver_test.go`, the
//! rows about what the local substrate renders (host, TLS, policy references,
//! upstreams, routes with `pass` / `proxy` actions): one test per NIC test
//! function, each row named as NIC names it. NIC's tests call the inner
//! validators; here each row's input is placed in a `VirtualServer` and the
//! whole spec is validated, as `ValidateVirtualServer` does. Rows whose input
//! uses a field the local substrate does not render assert its refusal, with
//! the file and line of the field.

use serde_json::{Value, json};

use super::fidelity_tests::try_render_nic;
use super::vs_validation;
use crate::manifest::kinds::VirtualServerSpec;

/// `ValidateVirtualServer` on a spec given as JSON, in namespace `default`.
fn check(spec: Value) -> Result<(), String> {
    let spec: VirtualServerSpec = serde_json::from_value(spec).expect("spec parses");
    vs_validation::validate(&spec, "default")
}

/// A spec with NIC's test host and `extra` merged in.
fn with(extra: Value) -> Value {
    let mut spec = json!({"host": "example.com"});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    spec
}

/// The local substrate refuses this `VirtualServer` spec, at `test.yaml:LINE`,
/// with `needle` in its words.
fn assert_refused(spec: Value, needle: &str) {
    let object = json!({
        "apiVersion": "k8s.nginx.org/v1",
        "kind": "VirtualServer",
        "metadata": {"name": "cafe"},
        "spec": spec,
    });
    let yaml = serde_json::to_string_pretty(&object).expect("json");
    let err = try_render_nic(&yaml, &[]).expect_err("refused").to_string();
    assert!(
        err.starts_with("test.yaml:")
            && err.contains(needle)
            && (err.contains("not rendered") || err.contains("does not render")),
        "{needle}: {err}"
    );
}

fn upstream(name: &str) -> Value {
    json!({"name": name, "service": "test-svc", "port": 80})
}

fn route(path: &str, pass: &str) -> Value {
    json!({"path": path, "action": {"pass": pass}})
}

const SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', \
     and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is \
     '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// `TestValidateVirtualServer`: NIC's VirtualServer is valid. Its first
/// upstream is gRPC and it names a DoS resource, neither rendered locally; the
/// same VirtualServer without them is valid here too.
#[test]
fn validate_virtual_server() {
    let spec = json!({
        "host": "example.com",
        "tls": {"secret": "abc"},
        "upstreams": [
            {"name": "first", "service": "service-1", "lb-method": "random", "port": 80,
             "max-fails": 8, "max-conns": 16, "keepalive": 32},
            {"name": "second", "service": "service-2", "port": 80},
        ],
        "routes": [route("/first", "first"), route("/second", "second")],
    });
    assert_eq!(check(spec.clone()), Ok(()));
    let mut grpc = spec.clone();
    grpc["upstreams"][0]["type"] = json!("grpc");
    assert_refused(
        grpc,
        "gRPC upstreams are not rendered by the local substrate",
    );
    let mut dos = spec;
    dos["dos"] = json!("some-ns/some-name");
    assert_refused(dos, "dos");
}

/// `TestValidateHost`.
#[test]
fn validate_host() {
    for h in ["hello", "example.com", "hello-world-1", "*.example.com"] {
        assert_eq!(
            vs_validation::validate_host(h, "spec.host"),
            Vec::<String>::new(),
            "{h}"
        );
    }
    for h in [
        "",
        "*",
        "..",
        ".example.com",
        "-hello-world-1",
        "*.-example.com",
    ] {
        assert!(
            !vs_validation::validate_host(h, "spec.host").is_empty(),
            "{h:?}"
        );
    }
    assert_eq!(
        check(json!({"host": ""})),
        Err("spec.host: Required value".into())
    );
    assert_eq!(
        check(json!({"host": "-hello-world-1"})),
        Err(format!(
            "spec.host: Invalid value: \"-hello-world-1\": {SUBDOMAIN}"
        ))
    );
}

/// `TestValidatePolicies`.
#[test]
fn validate_policies() {
    for (msg, policies) in [
        ("name without namespace", json!([{"name": "my-policy"}])),
        (
            "name with namespace",
            json!([{"name": "my-policy", "namespace": "nginx-ingress"}]),
        ),
        (
            "same name different namespaces",
            json!([{"name": "my-policy", "namespace": "default"}, {"name": "my-policy", "namespace": "test"}]),
        ),
    ] {
        assert_eq!(check(with(json!({"policies": policies}))), Ok(()), "{msg}");
    }
}

/// `TestValidatePoliciesFails`.
#[test]
fn validate_policies_fails() {
    for (msg, policies, error) in [
        (
            "missing name",
            json!([{"name": ""}]),
            "spec.policies[0].name: Required value".to_string(),
        ),
        (
            "invalid name",
            json!([{"name": "-invalid"}]),
            format!("spec.policies[0].name: Invalid value: \"-invalid\": {SUBDOMAIN}"),
        ),
        (
            "invalid namespace",
            json!([{"name": "my-policy", "namespace": "-invalid"}]),
            "spec.policies[0].namespace: Invalid value: \"-invalid\": a lowercase RFC 1123 label must consist of \
             lower case alphanumeric characters or '-', and must start and end with an alphanumeric character \
             (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
                .to_string(),
        ),
        (
            "duplicated policies",
            json!([{"name": "my-policy", "namespace": "default"}, {"name": "my-policy", "namespace": "default"}]),
            "spec.policies[1]: Duplicate value: \"default/my-policy\"".to_string(),
        ),
        (
            "duplicated policies with inferred namespace",
            json!([{"name": "my-policy", "namespace": "default"}, {"name": "my-policy"}]),
            "spec.policies[1]: Duplicate value: \"default/my-policy\"".to_string(),
        ),
    ] {
        assert_eq!(check(with(json!({"policies": policies}))), Err(error), "{msg}");
    }
}

/// `TestValidateTLS` (NIC runs it with cert-manager enabled; the local
/// substrate does not render `cert-manager`, so its rows are refusals).
#[test]
fn validate_tls() {
    for tls in [
        json!(null),
        json!({"secret": ""}),
        json!({"secret": "my-secret"}),
        json!({"secret": "my-secret", "redirect": {}}),
        json!({"secret": "my-secret", "redirect": {"enable": true}}),
        json!({"secret": "my-secret", "redirect": {"enable": true, "code": 302, "basedOn": "scheme"}}),
        json!({"secret": "my-secret", "redirect": {"enable": true, "code": 307}}),
    ] {
        let spec = if tls.is_null() {
            with(json!({}))
        } else {
            with(json!({"tls": tls}))
        };
        assert_eq!(check(spec), Ok(()), "{tls}");
    }
    // Its cert-manager row is valid with -enable-cert-manager, which NIC's
    // released manifests leave off; without it (NIC's own last case) it is not.
    assert_eq!(
        check(with(
            json!({"tls": {"secret": "my-secret", "cert-manager": {"issuer": "my-issuer"}}})
        )),
        Err("spec.tls.cert-manager: Forbidden: field requires cert-manager enablement".into())
    );
    for (tls, error) in [
        (
            json!({"secret": "-"}),
            format!("spec.tls.secret: Invalid value: \"-\": {SUBDOMAIN}"),
        ),
        (
            json!({"secret": "a/b"}),
            format!("spec.tls.secret: Invalid value: \"a/b\": {SUBDOMAIN}"),
        ),
        (
            json!({"secret": "my-secret", "redirect": {"enable": true, "code": 305, "basedOn": "scheme"}}),
            "spec.tls.redirect.code: Invalid value: 305: status code out of accepted range. accepted values are \
             '301', '302', '307', '308'"
                .to_string(),
        ),
        (
            json!({"secret": "my-secret", "redirect": {"enable": true, "code": 301, "basedOn": "invalidScheme"}}),
            "spec.tls.redirect.basedOn: Invalid value: \"invalidScheme\": accepted values are 'scheme', 'x-forwarded-proto'"
                .to_string(),
        ),
    ] {
        assert_eq!(check(with(json!({"tls": tls}))), Err(error), "{tls}");
    }
    assert_eq!(
        check(with(
            json!({"tls": {"cert-manager": {"issuer": "my-issuer"}}})
        )),
        Err(
            "[spec.tls.cert-manager: Forbidden: field requires cert-manager enablement, \
             spec.tls.cert-manager: Forbidden: field requires TLS.Secret to be specified]"
                .into()
        )
    );
}

/// `TestValidateExternalDNSEnabled`: without `-enable-external-dns` (NIC's
/// released flags) an enabled externalDNS is rejected; a disabled one is ignored.
#[test]
fn validate_external_dns_enabled() {
    assert_eq!(
        check(with(json!({"externalDNS": {"enable": true}}))),
        Err("spec.externalDNS: Forbidden: field requires externalDNS enablement".into())
    );
    assert_eq!(
        check(with(json!({"externalDNS": {"enable": false}}))),
        Ok(())
    );
}

/// `TestValidateUpstreams`: "no upstreams", and "2 valid upstreams" (its
/// `subselector`, `use-cluster-ip` and gRPC type are refused locally).
#[test]
fn validate_upstreams() {
    assert_eq!(
        check(with(json!({"upstreams": []}))),
        Ok(()),
        "no upstreams"
    );
    let upstreams = json!([
        {"name": "upstream1", "service": "test-1", "port": 80, "next-upstream": "error timeout",
         "next-upstream-timeout": "10s", "next-upstream-tries": 5, "max-conns": 16},
        {"name": "upstream2", "service": "test-2", "port": 80, "next-upstream": "error timeout",
         "next-upstream-timeout": "10s", "next-upstream-tries": 5, "type": "http"},
        {"name": "upstream3", "service": "test-3", "port": 80},
    ]);
    let routes = json!([
        route("/1", "upstream1"),
        route("/2", "upstream2"),
        route("/3", "upstream3")
    ]);
    assert_eq!(
        check(with(json!({"upstreams": upstreams, "routes": routes}))),
        Ok(()),
        "2 valid upstreams; all three names can be passed to"
    );
    for (key, value) in [
        ("subselector", json!({"version": "test"})),
        ("use-cluster-ip", json!(true)),
    ] {
        let mut u = upstream("upstream2");
        u[key] = value;
        assert_refused(with(json!({"upstreams": [u]})), key);
    }
}

/// `TestValidateUpstreamsFails`: the first error of each row (NIC checks only
/// that there is one) and the upstream names routes can still use.
#[test]
fn validate_upstreams_fails() {
    let base = |extra: Value| {
        let mut u = json!({"name": "upstream1", "service": "test-1", "port": 80,
                           "next-upstream": "error timeout", "next-upstream-timeout": "10s",
                           "next-upstream-tries": 5});
        if let (Some(o), Some(e)) = (u.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        u
    };
    let dns1035 = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an \
                   alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', \
                   regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
    for (msg, upstreams, error) in [
        (
            "invalid upstream name",
            vec![base(json!({"name": "@upstream1", "next-upstream": "http_502"}))],
            format!("spec.upstreams[0].name: Invalid value: \"@upstream1\": {dns1035}"),
        ),
        (
            "invalid service",
            vec![base(json!({"service": "@test-1"}))],
            format!("spec.upstreams[0].service: Invalid value: \"@test-1\": {dns1035}"),
        ),
        (
            "invalid port",
            vec![base(json!({"port": 0}))],
            "spec.upstreams[0].port: Invalid value: 0: must be between 1 and 65535, inclusive".into(),
        ),
        (
            "duplicated upstreams",
            vec![base(json!({})), base(json!({"service": "test-2"}))],
            "spec.upstreams[1].name: Duplicate value: \"upstream1\"".into(),
        ),
        (
            "invalid next upstream syntax",
            vec![base(json!({"next-upstream": "https_504"}))],
            "spec.upstreams[0].next-upstream: Invalid value: \"https_504\": not a valid parameter".into(),
        ),
        (
            "invalid upstream timeout value",
            vec![base(json!({"next-upstream": "http_504", "next-upstream-timeout": "-2s"}))],
            "spec.upstreams[0].next-upstream-timeout: Invalid value: \"-2s\": invalid time string".into(),
        ),
        (
            "invalid upstream tries value",
            vec![base(json!({"next-upstream": "https_504", "next-upstream-tries": -1}))],
            "[spec.upstreams[0].next-upstream: Invalid value: \"https_504\": not a valid parameter, \
             spec.upstreams[0].next-upstream-tries: Invalid value: -1: must be positive or zero]"
                .into(),
        ),
        (
            "negative value for MaxConns",
            vec![json!({"name": "upstream1", "service": "test-1", "port": 80, "max-conns": -1})],
            "spec.upstreams[0].max-conns: Invalid value: -1: must be positive or zero".into(),
        ),
        (
            "invalid value for ClientMaxBodySize",
            vec![json!({"name": "upstream1", "service": "test-1", "port": 80, "client-max-body-size": "7mins"})],
            "spec.upstreams[0].client-max-body-size: Invalid value: \"7mins\": must consist of numeric characters \
             followed by a valid size suffix. 'k|K|m|M|g|G (e.g. '16', or '32k', or '64M', or '2G', regex used for \
             validation is '\\d+[kKmMgG]?')"
                .into(),
        ),
        (
            "invalid value for ProxyBufferSize",
            vec![json!({"name": "upstream1", "service": "test-1", "port": 80, "buffer-size": "1G"})],
            "spec.upstreams[0].buffer-size: Invalid value: \"1G\": must consist of numeric characters followed by a \
             valid size suffix. 'k|K|m|M (e.g. '16', or '32k', or '64M', regex used for validation is '\\d+[kKmM]?')"
                .into(),
        ),
        (
            "Invalid upstream type - must be one of `grpc` or `http` (without its use-cluster-ip, refused below)",
            vec![json!({"name": "upstream1", "service": "test-1", "port": 80, "type": "unsupported"})],
            "spec.upstreams[0].type: Invalid value: \"unsupported\": must be one of `grpc` or `http`".into(),
        ),
    ] {
        let names_ok = msg != "invalid upstream name";
        let result = check(with(json!({"upstreams": upstreams})));
        assert_eq!(result, Err(error), "{msg}");
        // The upstream NIC keeps in its name set can be passed to; an invalid name cannot.
        let routed = check(with(json!({"upstreams": upstreams, "routes": [route("/", "upstream1")]})))
            .expect_err(msg);
        assert_eq!(
            routed.contains("spec.routes[0].action.pass"),
            !names_ok,
            "{msg}: {routed}"
        );
    }
    for (msg, key, value) in [
        (
            "invalid value for ProxyBuffers",
            "buffers",
            json!({"number": -1, "size": "1G"}),
        ),
        (
            "invalid key for subselector",
            "subselector",
            json!({"\\$invalidkey": "test"}),
        ),
        (
            "invalid value for subselector",
            "subselector",
            json!({"version": "test=fail"}),
        ),
        (
            "invalid use of subselector with use-cluster-ip",
            "use-cluster-ip",
            json!(true),
        ),
    ] {
        let mut u = upstream("upstream1");
        u[key] = value;
        assert_refused(with(json!({"upstreams": [u]})), key);
        let _ = msg;
    }
}

/// `TestValidateNextUpstream` / `TestValidateNextUpstreamFails`.
#[test]
fn validate_next_upstream() {
    let spec = |v: &str| {
        let mut u = upstream("u");
        u["next-upstream"] = json!(v);
        with(json!({"upstreams": [u]}))
    };
    for ok in ["error timeout", "http_404 timeout"] {
        assert_eq!(check(spec(ok)), Ok(()), "{ok}");
    }
    assert_eq!(
        check(spec("error error")),
        Err("spec.upstreams[0].next-upstream: Invalid value: \"error\": can not have duplicate parameters".into())
    );
    assert!(check(spec("https_404")).is_err());
}

/// `TestValidateDNS1035Label` (upstream names) and `TestValidateDNS1123Label`
/// (policy namespaces, checked the same way).
#[test]
fn validate_dns_labels() {
    let name = |n: &str| check(with(json!({"upstreams": [upstream(n)]})));
    for ok in ["test", "test-123"] {
        assert_eq!(name(ok), Ok(()), "{ok}");
    }
    assert_eq!(
        name(""),
        Err("spec.upstreams[0].name: Required value".into())
    );
    for bad in ["123", "test.123"] {
        assert!(name(bad).is_err(), "{bad}");
    }
    let ns = |n: &str| check(with(json!({"policies": [{"name": "p", "namespace": n}]})));
    for ok in ["my-namespace", "namespace-123", "123namespace"] {
        assert_eq!(ns(ok), Ok(()), "{ok}");
    }
    // "" is the default namespace for a policy reference: only NIC's label function rejects it.
    for bad in [
        "UPPERCASE",
        "Test",
        "very-long-label-name-that-exceeds-the-maximum-allowed-length-of-63-characters",
    ] {
        assert!(ns(bad).is_err(), "{bad}");
    }
    assert!(
        ns("very-long-label-name-that-exceeds-the-maximum-allowed-length-of-63-characters")
            .unwrap_err()
            .contains("must be no more than 63 characters")
    );
}

/// `TestValidateVirtualServerRoutes`.
#[test]
fn validate_virtual_server_routes() {
    assert_eq!(check(with(json!({"routes": []}))), Ok(()), "no routes");
    assert_eq!(
        check(with(
            json!({"upstreams": [upstream("test")], "routes": [route("/", "test")]})
        )),
        Ok(()),
        "valid route"
    );
    assert_refused(
        with(
            json!({"routes": [{"path": "~ /regex-one", "route": "default/my-vsr"},
                               {"path": "~* /regex-two", "route": "default/my-vsr"}]}),
        ),
        "routes to a VirtualServerRoute are not rendered by the local substrate",
    );
}

/// `TestValidateVirtualServerRoutesFails`.
#[test]
fn validate_virtual_server_routes_fails() {
    let upstreams = json!([upstream("test-1"), upstream("test-2")]);
    assert_eq!(
        check(with(json!({"upstreams": upstreams,
                          "routes": [route("/test", "test-1"), route("/test", "test-2")]}))),
        Err("spec.routes[1].path: Duplicate value: \"/test\"".into()),
        "duplicated paths"
    );
    assert_eq!(
        check(with(json!({"routes": [{"path": ""}]}))),
        Err("[spec.routes[0].path: Required value, spec.routes[0]: Invalid value: \"\": must specify exactly one \
             of `action`, `splits`, `route` or `routeSelector`]"
            .into()),
        "invalid route"
    );
    for (msg, routes) in [
        (
            "mixed modifier types referencing the same VSR",
            json!([{"path": "~ /regex", "route": "default/my-vsr"}, {"path": "/prefix", "route": "default/my-vsr"}]),
        ),
        (
            "exact and regex referencing the same VSR",
            json!([{"path": "= /exact", "route": "default/my-vsr"}, {"path": "~ /regex", "route": "default/my-vsr"}]),
        ),
        (
            "mixed types with implicit and explicit namespace referencing same VSR",
            json!([{"path": "~ /regex", "route": "my-vsr"}, {"path": "/prefix", "route": "default/my-vsr"}]),
        ),
    ] {
        let _ = msg;
        assert_refused(with(json!({"routes": routes})), "VirtualServerRoute");
    }
}

/// `TestValidateRoute` (splits, matches and VirtualServerRoute references are refused locally).
#[test]
fn validate_route() {
    assert_eq!(
        check(with(
            json!({"upstreams": [upstream("test")], "routes": [route("/", "test")]})
        )),
        Ok(()),
        "valid route with upstream"
    );
    let ups = json!([upstream("test-1"), upstream("test-2")]);
    assert_refused(
        with(
            json!({"upstreams": ups, "routes": [{"path": "/", "splits": [
            {"weight": 90, "action": {"pass": "test-1"}}, {"weight": 10, "action": {"pass": "test-2"}}]}]}),
        ),
        "splits",
    );
    assert_refused(
        with(
            json!({"upstreams": ups, "routes": [{"path": "/", "action": {"pass": "test-2"}, "matches": [
            {"conditions": [{"header": "x-version", "value": "test-1"}], "action": {"pass": "test-1"}}]}]}),
        ),
        "matches",
    );
    assert_refused(
        with(json!({"routes": [{"path": "/", "route": "default/test"}]})),
        "VirtualServerRoute",
    );
}

/// `TestValidateRouteFails`.
#[test]
fn validate_route_fails() {
    let dns1035 = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an \
                   alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', \
                   regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
    assert_eq!(
        check(with(
            json!({"upstreams": [upstream("test")], "routes": [route("", "test")]})
        )),
        Err("spec.routes[0].path: Required value".into()),
        "empty path"
    );
    assert_eq!(
        check(with(json!({"routes": [route("/test", "-test")]}))),
        Err(format!(
            "spec.routes[0].action.pass: Invalid value: \"-test\": {dns1035}"
        )),
        "invalid pass action"
    );
    assert_eq!(
        check(with(json!({"routes": [route("/", "test")]}))),
        Err("spec.routes[0].action.pass: Not found: \"test\"".into()),
        "non-existing upstream in pass action"
    );
    // "both action and splits exist", "both splits and matches exist": splits
    // and matches are refused locally; "route field exists but is forbidden"
    // is the VirtualServerRoute subroute rule, not rendered locally.
    assert_refused(
        with(json!({"routes": [{"path": "/", "action": {"pass": "test"}, "splits": []}]})),
        "splits",
    );
}

/// `TestValidateAction` (redirect actions are refused locally).
#[test]
fn validate_action() {
    let ups = json!([upstream("test")]);
    assert_eq!(
        check(with(
            json!({"upstreams": ups, "routes": [route("/", "test")]})
        )),
        Ok(()),
        "base pass action"
    );
    for redirect in [
        json!({"url": "http://www.nginx.com"}),
        json!({"url": "http://www.nginx.com", "code": 302}),
    ] {
        assert_refused(
            with(json!({"routes": [{"path": "/", "action": {"redirect": redirect}}]})),
            "action.return and action.redirect are not rendered by the local substrate",
        );
    }
    let proxy = json!({
        "upstream": "test", "rewritePath": "/rewrite",
        "requestHeaders": {"set": [{"name": "Header-Name", "value": "value"}]},
        "responseHeaders": {"hide": ["header-name"], "pass": ["header-name"], "ignore": ["Expires"],
                            "add": [{"name": "Header-Name", "value": "value", "always": true}]},
    });
    assert_eq!(
        check(with(
            json!({"upstreams": ups, "routes": [{"path": "/", "action": {"proxy": proxy}}]})
        )),
        Ok(()),
        "proxy action with rewritePath, requestHeaders and responseHeaders"
    );
}

/// `TestValidateActionFails` (redirect and return rows are refused locally).
#[test]
fn validate_action_fails() {
    let action = |a: Value| check(with(json!({"routes": [{"path": "/", "action": a}]})));
    assert_eq!(
        action(json!({})),
        Err("spec.routes[0].action: Required value: action must specify exactly one of `pass`, `redirect`, \
             `return` or `proxy`"
            .into()),
        "empty action"
    );
    assert_eq!(
        action(json!({"proxy": {"upstream": ""}})),
        Err("spec.routes[0].action.proxy.upstream: Required value".into()),
        "proxy action with missing upstream field"
    );
    for a in [
        json!({"redirect": {}}),
        json!({"pass": "test", "redirect": {"url": "http://www.nginx.com"}}),
        json!({"redirect": {"url": "http://www.nginx.com", "code": 305}}),
        json!({"return": {"body": "Hello World", "headers": [{"name": "", "value": "value"}]}}),
        json!({"return": {"body": "Hello World", "headers": [{"name": "X-Header;inject", "value": "value"}]}}),
        json!({"return": {"body": "Hello World", "headers": [{"name": "X-Header", "value": "$http_authorization"}]}}),
        json!({"return": {"body": "Hello World", "headers": [{"name": "X-Header", "value": "value\"inject"}]}}),
        json!({"return": {"body": "Hello World", "headers": [{"name": "X-Header{inject}", "value": "value"}]}}),
        json!({"return": {"body": "Hello World", "headers": [{"name": ";}location /pwned {", "value": "x"}]}}),
    ] {
        assert_refused(
            with(json!({"routes": [{"path": "/", "action": a}]})),
            "action.return and action.redirect are not rendered",
        );
    }
}

/// `TestValidateReferencedUpstream` / `TestValidateUpstreamFails` (`pass` to an upstream).
#[test]
fn validate_referenced_upstream() {
    let pass =
        |to: &str, ups: Value| check(with(json!({"upstreams": ups, "routes": [route("/", to)]})));
    assert_eq!(pass("test", json!([upstream("test")])), Ok(()));
    assert_eq!(
        pass("", json!([])),
        Err("spec.routes[0].action: Required value: action must specify exactly one of `pass`, `redirect`, \
             `return` or `proxy`"
            .into()),
        "empty upstream: an empty pass is no action at all (countActions)"
    );
    assert!(pass("-test", json!([])).is_err(), "invalid upstream");
    assert_eq!(
        pass("test", json!([])),
        Err("spec.routes[0].action.pass: Not found: \"test\"".into()),
        "non-existing upstream"
    );
}

fn route_path(path: &str) -> Result<(), String> {
    check(with(
        json!({"upstreams": [upstream("test")], "routes": [route(path, "test")]}),
    ))
}

/// `TestValidateRegexPath` / `TestValidateRegexPathFails`.
#[test]
fn validate_regex_path() {
    for (msg, path) in [
        ("case sensitive regexp", "~ ^/foo.*\\.jpg"),
        ("case insensitive regexp", "~* ^/Bar.*\\.jpg"),
        ("regexp with escaped double quotes", r#"~ ^/f\"oo.*\\.jpg"#),
        ("regexp with curly braces", "~ [0-9a-z]{4}[0-9]+"),
        (
            "regex with backtracking",
            "~ ^/coffee/(?!.*\\/latte)(?!.*\\/americano)(.*)",
        ),
        (
            "case sensitive regexp with extra space after modifier",
            "~  ^/foo.*\\.jpg",
        ),
        (
            "case insensitive regexp with tab after modifier",
            "~*\t^/Bar.*\\.jpg",
        ),
    ] {
        assert_eq!(route_path(path), Ok(()), "{msg}");
    }
    for (msg, path) in [
        ("invalid regexp", "~ [{"),
        ("unescaped double quotes", r#"~ /foo""#),
        ("empty regex", r#"~""#),
        ("ending in backslash", r"~ /foo\"),
        ("bare + after modifier is nothing to repeat", "~ +"),
    ] {
        let err = route_path(path).expect_err(msg);
        assert!(
            err.starts_with("spec.routes[0].path: Invalid value: "),
            "{msg}: {err}"
        );
    }
    assert_eq!(
        route_path(r#"~ /foo""#),
        Err("spec.routes[0].path: Invalid value: \"~ /foo\\\"\": must have all '\"' (double quotes) escaped and \
             must not end with an unescaped '\\' (backslash) (e.g. '*.jpg',  or '^/images/image_*.png$', regex used \
             for validation is '([^\"\\\\]|\\\\.)*')"
            .into())
    );
}

/// `TestValidateRoutePath`.
#[test]
fn validate_route_path() {
    for path in [
        "/",
        "~ /^foo.*\\.jpg",
        "~* /^Bar.*\\.jpg",
        "=/exact/match",
        "^~/images",
        "^~/path/subpath",
        "^~ /images",
        "^~ /path/subpath",
        "^~  /images",
    ] {
        assert_eq!(route_path(path), Ok(()), "{path}");
    }
    for path in [
        "",
        "invalid",
        "^/foo.*\\.jpg",
        "^~/path with spaces",
        "^~/{invalid",
    ] {
        assert!(route_path(path).is_err(), "{path:?}");
    }
    assert_eq!(
        route_path("invalid"),
        Err(
            "spec.routes[0].path: Invalid value: \"invalid\": must start with /, ~, = or ^~".into()
        )
    );
}

fn upstream_with(key: &str, value: Value) -> Result<(), String> {
    let mut u = upstream("u");
    u[key] = value;
    check(with(json!({"upstreams": [u]})))
}

/// `TestValidateUpstreamLBMethod` / `_Fails` (OSS rows; NIC's Plus rows differ only by the accepted list).
#[test]
fn validate_upstream_lb_method() {
    for ok in ["round_robin", ""] {
        assert_eq!(upstream_with("lb-method", json!(ok)), Ok(()), "{ok}");
    }
    assert_eq!(
        upstream_with("lb-method", json!("wrong")),
        Err("spec.upstreams[0].lb-method: Invalid value: \"wrong\": invalid load balancing method: \"wrong\"".into())
    );
}

/// `TestValidatePositiveIntOrZeroFromPointer` / `_Fails`, `TestValidatePositiveIntOrZero` / `_Fails`
/// (the upstream integers NIC validates with them).
#[test]
fn validate_positive_int_or_zero() {
    for key in ["max-fails", "keepalive", "max-conns", "next-upstream-tries"] {
        for ok in [0, 1] {
            assert_eq!(upstream_with(key, json!(ok)), Ok(()), "{key} {ok}");
        }
        assert_eq!(
            upstream_with(key, json!(-1)),
            Err(format!(
                "spec.upstreams[0].{key}: Invalid value: -1: must be positive or zero"
            )),
            "{key}"
        );
    }
}

/// `TestValidateBuffer`: `buffers` is not rendered locally.
#[test]
fn validate_buffer() {
    let mut u = upstream("u");
    u["buffers"] = json!({"number": 8, "size": "8k"});
    assert_refused(with(json!({"upstreams": [u]})), "buffers");
}

fn proxy_route(proxy: Value, path: &str) -> Result<(), String> {
    let mut p = proxy;
    p["upstream"] = json!("upstream1");
    check(with(json!({"upstreams": [upstream("upstream1")],
                      "routes": [{"path": path, "action": {"proxy": p}}]})))
}

/// `TestValidateActionProxy` / `TestValidateActionProxyFails`.
#[test]
fn validate_action_proxy() {
    assert_eq!(
        proxy_route(json!({"rewritePath": "/test"}), "/path"),
        Ok(())
    );
    assert_eq!(
        check(with(json!({"upstreams": [upstream("upstream1")],
                          "routes": [{"path": "/path", "action": {"proxy": {"upstream": ""}}}]}))),
        Err("spec.routes[0].action.proxy.upstream: Required value".into())
    );
}

/// `TestValidateActionProxyRewritePath` / `_Fails`, and the `ForRegexp` pair (a `~` route).
#[test]
fn validate_action_proxy_rewrite_path() {
    let rewrite = |r: &str, path: &str| proxy_route(json!({"rewritePath": r}), path);
    for ok in ["/rewrite", "/rewrite", "/$2"] {
        assert_eq!(rewrite(ok, "/path"), Ok(()), "{ok}");
    }
    for bad in [r"/\d{3}", "(", "$request_uri"] {
        assert!(rewrite(bad, "/path").is_err(), "{bad}");
    }
    for ok in ["/rewrite$1", "test", "/$2", r#"\"test\""#] {
        assert_eq!(rewrite(ok, "~ /path"), Ok(()), "{ok}");
    }
    for bad in ["$request_uri", r#""test""#, r"test\"] {
        assert!(rewrite(bad, "~ /path").is_err(), "{bad}");
    }
    assert_eq!(
        rewrite("$request_uri", "/path"),
        Err("[spec.routes[0].action.proxy.rewritePath: Invalid value: \"$request_uri\": `$` character can be only \
             followed by a number, spec.routes[0].action.proxy.rewritePath: Invalid value: \"$request_uri\": must \
             start with / and must not include any whitespace character, `{`, `}` or `;` (e.g. '/', or '/path', or \
             '/path/subpath-123', regex used for validation is '/[^\\s{};\\\\]*')]"
            .into())
    );
}

fn set_header(name: &str, value: &str) -> Result<(), String> {
    proxy_route(
        json!({"requestHeaders": {"set": [{"name": name, "value": value}]}}),
        "/",
    )
}

/// `TestValidateActionProxyHeader` / `_Fails` (as request headers).
#[test]
fn validate_action_proxy_header() {
    for value in [
        "my.service",
        r#"\"my.service\""#,
        "${request_uri}",
        "${http_some_header}",
        "${request_uri} and ${http_some_header}",
    ] {
        assert_eq!(set_header("Host", value), Ok(()), "{value}");
    }
    for (msg, name, value) in [
        ("Invalid name with spaces", "12378 qwe ", "my.service"),
        (
            "Invalid value with unescaped '\"'",
            "Host",
            r#""my.service"#,
        ),
        ("Invalid value with ending '\\'", "Host", r"my.service\"),
        ("Invalid variable", "Host", "${realpath_root}"),
        ("Invalid special variable", "Host", "${sent_http_name}"),
        (
            "Invalid value with escaped '$' character",
            "Host",
            r"my.\$service",
        ),
    ] {
        assert!(set_header(name, value).is_err(), "{msg}");
    }
    assert_eq!(
        set_header("Host", "my.\\$service"),
        Err("spec.routes[0].action.proxy.requestHeaders[0].value: Invalid value: \"my.\\\\$service\": variables \
             must be enclosed in curly braces, for example ${host}"
            .into())
    );
}

/// `TestValidateActionProxyRequestHeaders` / `_Fails`.
#[test]
fn validate_action_proxy_request_headers() {
    assert_eq!(
        proxy_route(
            json!({"requestHeaders": {"set": [{"name": "Host", "value": "nginx.org"},
                                              {"name": "scheme", "value": "${scheme}"},
                                              {"name": "user", "value": "${http_user}"}]}}),
            "/"
        ),
        Ok(())
    );
    for (name, value) in [
        ("in va lid", ""),
        ("Host", "$var"),
        ("", "nginx.org"),
        ("Host", "${http_%}"),
    ] {
        assert!(set_header(name, value).is_err(), "{name:?} {value:?}");
    }
    assert_eq!(
        set_header("", "nginx.org"),
        Err("[spec.routes[0].action.proxy.requestHeaders[0].name: Required value, \
             spec.routes[0].action.proxy.requestHeaders[0].name: Invalid value: \"\": a valid HTTP header must \
             consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is \
             '[-A-Za-z0-9]+')]"
            .into())
    );
}

/// `TestValidateActionProxyResponseHeaders` / `_Fails`.
#[test]
fn validate_action_proxy_response_headers() {
    let response = |h: Value| proxy_route(json!({"responseHeaders": h}), "/");
    for h in [
        json!({"hide": ["Header"], "pass": ["Header"], "ignore": ["Expires"],
               "add": [{"name": "Host", "value": "nginx.org", "always": false}]}),
        json!({"hide": ["Header"]}),
        json!({"pass": ["Header"]}),
        json!({"ignore": ["Expires"]}),
        json!({"add": [{"name": "Host", "value": "nginx.org", "always": false},
                       {"name": "uri", "value": "${request_uri}"},
                       {"name": "abc", "value": "${http_abc}"}]}),
    ] {
        assert_eq!(response(h.clone()), Ok(()), "{h}");
    }
    for (msg, h) in [
        (
            "all fields invalid",
            json!({"hide": [""], "pass": [""], "ignore": [""], "add": [{"name": "", "value": "nginx.org"}]}),
        ),
        ("invalid hide headers", json!({"hide": ["invalid header"]})),
        ("invalid pass headers", json!({"pass": ["$invalid"]})),
        (
            "invalid ignore headers",
            json!({"ignore": ["1234 invalid"]}),
        ),
        (
            "invalid Add header name",
            json!({"add": [{"name": "$invalid 123", "value": "nginx.org", "always": false}]}),
        ),
        (
            "invalid Add header value",
            json!({"add": [{"name": "Host", "value": "${invalid}", "always": false}]}),
        ),
    ] {
        assert!(response(h).is_err(), "{msg}");
    }
}

/// `TestValidateIgnoreHeaders` / `_Fails`.
#[test]
fn validate_ignore_headers() {
    let ignore = |h: Value| proxy_route(json!({"responseHeaders": {"ignore": h}}), "/");
    assert_eq!(
        ignore(json!([
            "X-Accel-Redirect",
            "X-Accel-Expires",
            "X-Accel-Limit-Rate",
            "X-Accel-Buffering",
            "X-Accel-Charset",
            "Expires",
            "Cache-Control",
            "Set-Cookie",
            "Vary"
        ])),
        Ok(())
    );
    let err = ignore(json!(["Host", "Connection"])).expect_err("invalid");
    assert!(
        err.starts_with("[spec.routes[0].action.proxy.responseHeaders.ignore[0]: Invalid value: \"Host\": not a \
                         valid ignore header name. Accepted headers are : "),
        "{err}"
    );
}

/// `TestValidateStringNoVariables` / `_Fails` (rewritePath on a prefix route).
#[test]
fn validate_string_no_variables() {
    let rewrite = |r: &str| proxy_route(json!({"rewritePath": format!("/{r}")}), "/");
    for ok in [
        "string",
        "endWith$",
        "withNumber$1",
        "abcййй",
        "abcййй$1",
        "",
    ] {
        assert_eq!(rewrite(ok), Ok(()), "{ok}");
    }
    for bad in ["$var", "abcйй$й", "$$"] {
        let err = rewrite(bad).expect_err(bad);
        assert!(
            err.contains("`$` character can be only followed by a number"),
            "{err}"
        );
    }
}
