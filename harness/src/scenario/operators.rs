//! Built-in mutation operators: from a scenario's own objects, the breakages a
//! user's checks should notice, each an RFC 7386 merge patch on one object (as
//! a hand-written `mutations:` entry is). Pure: objects in, mutations out. The
//! README's "Mutations" section has the table of operators and what each does.
//!
//! They start from NIC's defaults where a field is unset
//! (`internal/configs/policy.go` at v5.5.4, lines 490-496: `verifyClient` on,
//! `verifyDepth` 1; line 610: egress `protocols` `"TLSv1 TLSv1.1 TLSv1.2"`).
//! Not generated: `verifyServer` off and the egress `verifyDepth`: while the
//! upstream presents a valid certificate no probe can tell them apart, and
//! `trusted-ca-swapped` and `ssl-name-changed` show that verification bites.

use serde_json::{Value, json};

use super::spec::{MutationSpec, PatchSpec};
use crate::manifest::{Kind, Object};

/// Every mutation name the operators make starts with this.
pub(crate) const PREFIX: &str = "builtin/";

/// The Secret type NIC reads CA bundles from.
pub(crate) const CA_SECRET_TYPE: &str = "nginx.org/ca";

/// An `nginx.org/ca` Secret the scenario makes (a manifest or a step), and
/// where its CA certificate comes from: two Secrets with the same source hold
/// the same CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CaSecret {
    pub namespace: String,
    pub name: String,
    pub source: String,
}

/// The `nginx.org/ca` Secrets among `objects`, with their `ca.crt` as source.
pub(crate) fn ca_secrets_of(objects: &[Object]) -> Vec<CaSecret> {
    objects
        .iter()
        .filter(|o| o.id.kind == Kind::Secret)
        .filter_map(|o| {
            let json = o.to_json();
            (json.get("type").and_then(Value::as_str) == Some(CA_SECRET_TYPE)).then(|| {
                let ca = ["data", "stringData"]
                    .iter()
                    .find_map(|field| json.pointer(&format!("/{field}/ca.crt")))
                    .map(Value::to_string)
                    .unwrap_or_default();
                CaSecret {
                    namespace: o.namespace().to_string(),
                    name: o.name().to_string(),
                    source: format!("ca.crt {ca}"),
                }
            })
        })
        .collect()
}

/// Every built-in mutation of `objects`, in object order. `cas` are the CA
/// Secrets the scenario makes, to swap one CA for another.
pub(crate) fn derive(objects: &[Object], cas: &[CaSecret]) -> Vec<MutationSpec> {
    let mut out = Vec::new();
    for object in objects {
        let json = object.to_json();
        let mut m = Mutations {
            object,
            json: &json,
            out: &mut out,
        };
        match object.id.kind {
            Kind::Policy => {
                m.ingress_mtls(cas);
                m.egress_mtls(cas);
            }
            Kind::VirtualServer => m.virtual_server(),
            Kind::Ingress => m.ingress(),
            Kind::Certificate => m.certificate(),
            _ => {}
        }
    }
    out
}

/// The mutations of one object.
struct Mutations<'a> {
    object: &'a Object,
    json: &'a Value,
    out: &'a mut Vec<MutationSpec>,
}

const VERIFY_CLIENT_STRENGTH: [&str; 4] = ["on", "optional", "optional_no_ca", "off"];

impl Mutations<'_> {
    /// `builtin/<operator>/<ns>/<name>[/<detail>]`, what it does, and the patch.
    fn push(&mut self, operator: &str, detail: Option<&str>, does: String, merge: Value) {
        let id = &self.object.id;
        let detail = detail.map(|d| format!("/{d}")).unwrap_or_default();
        self.out.push(MutationSpec {
            name: format!("{PREFIX}{operator}/{}{detail}", id.key()),
            why: Some(does),
            patch: PatchSpec {
                object: id.to_string(),
                merge,
            },
            breaks: Vec::new(),
            builtin: true,
        });
    }

    fn ingress_mtls(&mut self, cas: &[CaSecret]) {
        let Some(mtls) = self.json.pointer("/spec/ingressMTLS") else {
            return;
        };
        let id = self.object.id.to_string();
        // NIC's default when unset (policy.go:491).
        let current = mtls
            .get("verifyClient")
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .unwrap_or("on");
        if let Some(at) = VERIFY_CLIENT_STRENGTH.iter().position(|v| *v == current) {
            let weaker = &VERIFY_CLIENT_STRENGTH[at + 1..];
            // The next weaker mode, and `off` when that is not it already.
            let targets = weaker
                .first()
                .into_iter()
                .chain(weaker.last().filter(|_| weaker.len() > 1));
            for target in targets {
                self.push(
                    &format!("verify-client-{}", target.replace('_', "-")),
                    None,
                    format!("{id} sets ingressMTLS verifyClient `{target}` instead of `{current}`"),
                    json!({"spec": {"ingressMTLS": {"verifyClient": target}}}),
                );
            }
        }
        if let Some(secret) = mtls.get("clientCertSecret").and_then(Value::as_str) {
            let (operator, does, other) = self.swap_ca(cas, secret, "client CA");
            self.push(
                &format!("client-ca-{operator}"),
                None,
                format!("{id} verifies clients against {does}"),
                json!({"spec": {"ingressMTLS": {"clientCertSecret": other}}}),
            );
        }
        if let Some(depth) = mtls
            .get("verifyDepth")
            .and_then(Value::as_i64)
            .filter(|d| *d > 0)
        {
            self.push(
                "verify-depth-lowered",
                None,
                format!(
                    "{id} sets ingressMTLS verifyDepth {} instead of {depth}",
                    depth - 1
                ),
                json!({"spec": {"ingressMTLS": {"verifyDepth": depth - 1}}}),
            );
        }
    }

    /// Another CA's Secret in the object's namespace, or a name nothing holds:
    /// (operator suffix, what the Policy then trusts, the new Secret name).
    fn swap_ca(
        &self,
        cas: &[CaSecret],
        current: &str,
        what: &str,
    ) -> (&'static str, String, String) {
        let ns = self.object.namespace();
        // Where the current CA comes from: the Secret it was made from, or
        // itself (a Secret of another type copied into an nginx.org/ca one).
        let source = cas
            .iter()
            .find(|c| c.namespace == ns && c.name == current)
            .map_or_else(|| copied_from(ns, current), |c| c.source.clone());
        let other = cas
            .iter()
            .filter(|c| c.namespace == ns && c.name != current && c.source != source)
            .map(|c| c.name.as_str())
            .min();
        if let Some(other) = other {
            return (
                "swapped",
                format!("Secret {ns}/{other} (another CA) instead of {ns}/{current}"),
                other.to_string(),
            );
        }
        let missing = format!("{current}-missing");
        (
            "missing",
            format!(
                "Secret {ns}/{missing}, which does not exist, instead of {ns}/{current} \
                 (the scenario makes no other {what} Secret in {ns} to swap in)"
            ),
            missing,
        )
    }

    fn egress_mtls(&mut self, cas: &[CaSecret]) {
        let Some(mtls) = self.json.pointer("/spec/egressMTLS") else {
            return;
        };
        let id = self.object.id.to_string();
        let verify_server = mtls.get("verifyServer").and_then(Value::as_bool) == Some(true);
        if verify_server && let Some(name) = mtls.get("sslName").and_then(Value::as_str) {
            let wrong = format!("not-{name}");
            self.push(
                "ssl-name-changed",
                None,
                format!(
                    "{id} expects the upstream's certificate to name `{wrong}` instead of `{name}`"
                ),
                json!({"spec": {"egressMTLS": {"sslName": wrong}}}),
            );
        }
        if let Some(protocols) = mtls.get("protocols").and_then(Value::as_str)
            && protocols.split_whitespace().any(|p| p == "TLSv1.3")
        {
            let left: Vec<&str> = protocols
                .split_whitespace()
                .filter(|p| *p != "TLSv1.3")
                .collect();
            let (does, value) = if left.is_empty() {
                (
                    "sets no egressMTLS protocols, so NIC's default `TLSv1 TLSv1.1 TLSv1.2` (no TLS 1.3) applies"
                        .to_string(),
                    Value::Null,
                )
            } else {
                let left = left.join(" ");
                (
                    format!("sets egressMTLS protocols `{left}` instead of `{protocols}`"),
                    Value::String(left),
                )
            };
            self.push(
                "tls13-removed",
                None,
                format!("{id} {does}"),
                json!({"spec": {"egressMTLS": {"protocols": value}}}),
            );
        }
        if verify_server && let Some(secret) = mtls.get("trustedCertSecret").and_then(Value::as_str)
        {
            let (operator, does, other) = self.swap_ca(cas, secret, "CA");
            self.push(
                &format!("trusted-ca-{operator}"),
                None,
                format!("{id} verifies the upstream against {does}"),
                json!({"spec": {"egressMTLS": {"trustedCertSecret": other}}}),
            );
        }
        if mtls.get("tlsSecret").and_then(Value::as_str).is_some() {
            self.push(
                "client-cert-dropped",
                None,
                format!("{id} presents no client certificate to the upstream (no tlsSecret)"),
                json!({"spec": {"egressMTLS": {"tlsSecret": null}}}),
            );
        }
    }

    fn virtual_server(&mut self) {
        let id = self.object.id.to_string();
        let policies = policy_names(self.json.pointer("/spec/policies"));
        for (i, name) in policies.iter().enumerate() {
            let mut left = self
                .json
                .pointer("/spec/policies")
                .cloned()
                .unwrap_or_default();
            remove_at(&mut left, i);
            self.push(
                "policy-dropped",
                Some(name),
                format!("{id} no longer references Policy {name} in spec.policies"),
                json!({"spec": {"policies": none_if_empty(left)}}),
            );
        }
        let routes = self
            .json
            .pointer("/spec/routes")
            .cloned()
            .unwrap_or_default();
        for (r, route) in routes.as_array().into_iter().flatten().enumerate() {
            let path = route.get("path").and_then(Value::as_str).unwrap_or("");
            for (p, name) in policy_names(route.get("policies")).iter().enumerate() {
                let mut changed = routes.clone();
                if let Some(slot) = changed.get_mut(r).and_then(Value::as_object_mut) {
                    let mut left = slot.get("policies").cloned().unwrap_or_default();
                    remove_at(&mut left, p);
                    match none_if_empty(left) {
                        Value::Null => slot.remove("policies"),
                        left => slot.insert("policies".into(), left),
                    };
                }
                self.push(
                    "route-policy-dropped",
                    Some(&format!("{name}@{path}")),
                    format!("{id} no longer references Policy {name} on route {path}"),
                    json!({"spec": {"routes": changed}}),
                );
            }
        }
        if self.json.pointer("/spec/tls").is_some_and(|t| !t.is_null()) {
            self.push(
                "tls-removed",
                None,
                format!("{id} has no spec.tls"),
                json!({"spec": {"tls": null}}),
            );
        }
        if self.json.pointer("/spec/tls/redirect/enable") == Some(&Value::Bool(true)) {
            self.push(
                "tls-redirect-removed",
                None,
                format!("{id} no longer redirects plain HTTP to HTTPS (no spec.tls.redirect)"),
                json!({"spec": {"tls": {"redirect": null}}}),
            );
        }
        let upstreams = self
            .json
            .pointer("/spec/upstreams")
            .cloned()
            .unwrap_or_default();
        for (u, upstream) in upstreams.as_array().into_iter().flatten().enumerate() {
            if upstream.pointer("/tls/enable") != Some(&Value::Bool(true)) {
                continue;
            }
            let name = upstream.get("name").and_then(Value::as_str).unwrap_or("");
            let mut changed = upstreams.clone();
            if let Some(slot) = changed.get_mut(u).and_then(Value::as_object_mut) {
                slot.remove("tls");
            }
            self.push(
                "upstream-tls-off",
                Some(name),
                format!("{id} speaks plain HTTP to its upstream {name} (no tls.enable)"),
                json!({"spec": {"upstreams": changed}}),
            );
        }
    }

    fn ingress(&mut self) {
        const POLICIES: &str = "nginx.org/policies";
        const SSL_SERVICES: &str = "nginx.org/ssl-services";
        let id = self.object.id.to_string();
        if let Some(list) = self.object.annotations.get(POLICIES) {
            // NIC splits the annotation on commas (ParseStringList).
            let names: Vec<&str> = list
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .collect();
            for (i, name) in names.iter().enumerate() {
                let left: Vec<&str> = names
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, n)| *n)
                    .collect();
                let value = if left.is_empty() {
                    Value::Null
                } else {
                    Value::String(left.join(", "))
                };
                self.push(
                    "annotation-policy-dropped",
                    Some(name),
                    format!("{id} no longer lists Policy {name} in {POLICIES}"),
                    json!({"metadata": {"annotations": {POLICIES: value}}}),
                );
            }
        }
        if let Some(services) = self.object.annotations.get(SSL_SERVICES) {
            self.push(
                "ssl-services-removed",
                None,
                format!(
                    "{id} has no {SSL_SERVICES} annotation, so NGINX speaks plain HTTP to {services}"
                ),
                json!({"metadata": {"annotations": {SSL_SERVICES: null}}}),
            );
        }
        if self
            .json
            .pointer("/spec/tls")
            .and_then(Value::as_array)
            .is_some_and(|t| !t.is_empty())
        {
            self.push(
                "ingress-tls-removed",
                None,
                format!("{id} has no spec.tls"),
                json!({"spec": {"tls": null}}),
            );
        }
    }

    fn certificate(&mut self) {
        if self.json.pointer("/spec/isCA") == Some(&Value::Bool(true)) {
            return;
        }
        let Some(usages) = self.json.pointer("/spec/usages").and_then(Value::as_array) else {
            return;
        };
        let usages: Vec<&str> = usages.iter().filter_map(Value::as_str).collect();
        let id = self.object.id.to_string();
        for (dropped, other) in [
            ("client auth", "server auth"),
            ("server auth", "client auth"),
        ] {
            if !usages.contains(&dropped) {
                continue;
            }
            let mut changed: Vec<&str> = usages.iter().copied().filter(|u| *u != dropped).collect();
            if !changed.contains(&other) {
                changed.push(other);
            }
            self.push(
                &format!("{}-dropped", dropped.replace(' ', "-")),
                None,
                format!(
                    "{id} is issued with usages [{}], without {dropped}",
                    changed.join(", ")
                ),
                json!({"spec": {"usages": changed}}),
            );
        }
    }
}

/// The source of a CA Secret made by copying `namespace/name`.
pub(crate) fn copied_from(namespace: &str, name: &str) -> String {
    format!("Secret {namespace}/{name}")
}

/// The names in a list of policy references (`[{name, namespace}]`).
fn policy_names(list: Option<&Value>) -> Vec<String> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| {
            let name = r.get("name").and_then(Value::as_str).unwrap_or("");
            match r.get("namespace").and_then(Value::as_str) {
                Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
                _ => name.to_string(),
            }
        })
        .collect()
}

fn remove_at(list: &mut Value, i: usize) {
    if let Some(items) = list.as_array_mut()
        && i < items.len()
    {
        items.remove(i);
    }
}

/// An emptied list is removed from the object (`null` in a merge patch).
fn none_if_empty(list: Value) -> Value {
    match list.as_array() {
        Some(items) if items.is_empty() => Value::Null,
        _ => list,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(yaml: &str) -> Vec<Object> {
        crate::manifest::load_text(yaml, std::path::Path::new("m.yaml"), "ns").expect("objects")
    }

    fn names(mutations: &[MutationSpec]) -> Vec<&str> {
        mutations.iter().map(|m| m.name.as_str()).collect()
    }

    /// The object `name` patches, as it reads once patched.
    fn patched(objects: &[Object], mutations: &[MutationSpec], name: &str) -> Value {
        let m = mutations
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", names(mutations)));
        assert!(m.builtin && m.breaks.is_empty(), "{m:?}");
        let object = objects
            .iter()
            .find(|o| o.id.to_string() == m.patch.object)
            .expect("the patched object");
        let mut json = object.to_json();
        crate::manifest::merge_patch(&mut json, &m.patch.merge);
        // The patched object still loads, as the mutated scenario must.
        object.with_json(&json).expect("valid object");
        json
    }

    const POLICY: &str = "apiVersion: k8s.nginx.org/v1\nkind: Policy\nmetadata: {name: p}\nspec:\n";

    #[test]
    fn verify_client_is_weakened_one_step_and_to_off() {
        let cases = [
            (
                "",
                vec![
                    "builtin/verify-client-optional/ns/p",
                    "builtin/verify-client-off/ns/p",
                ],
            ),
            (
                "verifyClient: \"on\"",
                vec![
                    "builtin/verify-client-optional/ns/p",
                    "builtin/verify-client-off/ns/p",
                ],
            ),
            (
                "verifyClient: optional",
                vec![
                    "builtin/verify-client-optional-no-ca/ns/p",
                    "builtin/verify-client-off/ns/p",
                ],
            ),
            (
                "verifyClient: optional_no_ca",
                vec!["builtin/verify-client-off/ns/p"],
            ),
            ("verifyClient: \"off\"", vec![]),
        ];
        for (field, expected) in cases {
            let o = objects(&format!(
                "{POLICY}  ingressMTLS: {{clientCertSecret: ca, {field}}}\n"
            ));
            let all = derive(&o, &[]);
            let got: Vec<&str> = names(&all)
                .into_iter()
                .filter(|n| n.starts_with("builtin/verify-client"))
                .collect();
            assert_eq!(got, expected, "{field}");
        }
        let o = objects(&format!(
            "{POLICY}  ingressMTLS: {{clientCertSecret: ca, verifyClient: optional}}\n"
        ));
        let all = derive(&o, &[]);
        assert_eq!(
            patched(&o, &all, "builtin/verify-client-optional-no-ca/ns/p")["spec"]["ingressMTLS"]["verifyClient"],
            "optional_no_ca"
        );
    }

    #[test]
    fn the_client_ca_is_swapped_for_another_ca_or_a_missing_secret() {
        let ca = |name: &str, source: &str| CaSecret {
            namespace: "ns".into(),
            name: name.into(),
            source: source.into(),
        };
        let o = objects(&format!(
            "{POLICY}  ingressMTLS: {{clientCertSecret: ca-nginx}}\n"
        ));
        // A copy of the same CA is not another CA; the other CA's Secret is.
        let cas = [
            ca("ca-nginx", "Secret ns/ca"),
            ca("ca-copy", "Secret ns/ca"),
            ca("other-nginx", "Secret ns/other"),
        ];
        let all = derive(&o, &cas);
        let json = patched(&o, &all, "builtin/client-ca-swapped/ns/p");
        assert_eq!(
            json["spec"]["ingressMTLS"]["clientCertSecret"],
            "other-nginx"
        );
        // A policy naming the kubernetes.io/tls Secret a copy was made from: the copy is the same CA.
        let o = objects(&format!(
            "{POLICY}  ingressMTLS: {{clientCertSecret: ca}}\n"
        ));
        let all = derive(&o, &cas[..2]);
        let json = patched(&o, &all, "builtin/client-ca-missing/ns/p");
        assert_eq!(
            json["spec"]["ingressMTLS"]["clientCertSecret"],
            "ca-missing"
        );
        // Secrets of another namespace are never swapped in.
        let elsewhere = CaSecret {
            namespace: "other".into(),
            ..ca("x", "Secret other/x")
        };
        assert!(names(&derive(&o, &[elsewhere])).contains(&"builtin/client-ca-missing/ns/p"));
    }

    #[test]
    fn verify_depth_is_lowered_where_the_policy_sets_it() {
        let o = objects(&format!(
            "{POLICY}  ingressMTLS: {{clientCertSecret: ca, verifyDepth: 2}}\n"
        ));
        let all = derive(&o, &[]);
        assert_eq!(
            patched(&o, &all, "builtin/verify-depth-lowered/ns/p")["spec"]["ingressMTLS"]["verifyDepth"],
            1
        );
        for field in ["verifyDepth: 0", ""] {
            let o = objects(&format!(
                "{POLICY}  ingressMTLS: {{clientCertSecret: ca, {field}}}\n"
            ));
            assert!(
                !names(&derive(&o, &[]))
                    .iter()
                    .any(|n| n.contains("verify-depth")),
                "{field}"
            );
        }
    }

    const EGRESS: &str = "  egressMTLS: {tlsSecret: client, trustedCertSecret: ca, verifyServer: true, sslName: up.example.com, protocols: TLSv1.2 TLSv1.3}\n";

    #[test]
    fn egress_operators() {
        let o = objects(&format!("{POLICY}{EGRESS}"));
        let all = derive(&o, &[]);
        assert_eq!(
            names(&all),
            [
                "builtin/ssl-name-changed/ns/p",
                "builtin/tls13-removed/ns/p",
                "builtin/trusted-ca-missing/ns/p",
                "builtin/client-cert-dropped/ns/p"
            ]
        );
        let egress = |name: &str| patched(&o, &all, name)["spec"]["egressMTLS"].clone();
        assert_eq!(
            egress("builtin/ssl-name-changed/ns/p")["sslName"],
            "not-up.example.com"
        );
        assert_eq!(egress("builtin/tls13-removed/ns/p")["protocols"], "TLSv1.2");
        assert_eq!(
            egress("builtin/trusted-ca-missing/ns/p")["trustedCertSecret"],
            "ca-missing"
        );
        assert!(
            egress("builtin/client-cert-dropped/ns/p")
                .get("tlsSecret")
                .is_none()
        );
        // TLS 1.3 alone: removing it leaves NIC's default, which lacks it.
        let only = EGRESS.replace("TLSv1.2 TLSv1.3", "TLSv1.3");
        let o = objects(&format!("{POLICY}{only}"));
        let all = derive(&o, &[]);
        assert!(
            patched(&o, &all, "builtin/tls13-removed/ns/p")["spec"]["egressMTLS"]
                .get("protocols")
                .is_none()
        );
        // Without verifyServer, sslName and the trusted CA change nothing NGINX checks.
        let unverified = EGRESS.replace("verifyServer: true", "verifyServer: false");
        let o = objects(&format!("{POLICY}{unverified}"));
        assert_eq!(
            names(&derive(&o, &[])),
            [
                "builtin/tls13-removed/ns/p",
                "builtin/client-cert-dropped/ns/p"
            ]
        );
    }

    const VS: &str = "apiVersion: k8s.nginx.org/v1
kind: VirtualServer
metadata: {name: vs}
spec:
  host: a.example.com
  tls: {secret: tls, redirect: {enable: true}}
  policies: [{name: mtls}, {name: acl}]
  upstreams:
    - {name: app, service: app, port: 80}
    - {name: gw, service: gw, port: 443, tls: {enable: true}}
  routes:
    - path: /
      action: {pass: app}
    - path: /gw
      policies: [{name: egress}]
      action: {pass: gw}
";

    #[test]
    fn virtual_server_operators() {
        let o = objects(VS);
        let all = derive(&o, &[]);
        assert_eq!(
            names(&all),
            [
                "builtin/policy-dropped/ns/vs/mtls",
                "builtin/policy-dropped/ns/vs/acl",
                "builtin/route-policy-dropped/ns/vs/egress@/gw",
                "builtin/tls-removed/ns/vs",
                "builtin/tls-redirect-removed/ns/vs",
                "builtin/upstream-tls-off/ns/vs/gw"
            ]
        );
        let spec = |name: &str| patched(&o, &all, name)["spec"].clone();
        assert_eq!(
            spec("builtin/policy-dropped/ns/vs/mtls")["policies"],
            serde_json::json!([{"name": "acl"}])
        );
        let routes = spec("builtin/route-policy-dropped/ns/vs/egress@/gw")["routes"].clone();
        assert_eq!(
            routes[0],
            serde_json::json!({"path": "/", "action": {"pass": "app"}})
        );
        assert_eq!(
            routes[1],
            serde_json::json!({"path": "/gw", "action": {"pass": "gw"}})
        );
        assert!(spec("builtin/tls-removed/ns/vs").get("tls").is_none());
        assert_eq!(
            spec("builtin/tls-redirect-removed/ns/vs")["tls"],
            serde_json::json!({"secret": "tls"})
        );
        let upstreams = spec("builtin/upstream-tls-off/ns/vs/gw")["upstreams"].clone();
        assert_eq!(
            upstreams[1],
            serde_json::json!({"name": "gw", "service": "gw", "port": 443})
        );
        assert_eq!(upstreams[0]["name"], "app");
        // The last policy reference dropped removes the list.
        let single = VS.replace("[{name: mtls}, {name: acl}]", "[{name: mtls}]");
        let o = objects(&single);
        let all = derive(&o, &[]);
        assert!(
            patched(&o, &all, "builtin/policy-dropped/ns/vs/mtls")["spec"]
                .get("policies")
                .is_none()
        );
    }

    #[test]
    fn ingress_operators() {
        let o = objects(
            "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ing
  annotations: {nginx.org/policies: \"mtls, egress\", nginx.org/ssl-services: app}
spec:
  tls: [{hosts: [a.example.com], secretName: tls}]
  rules: [{host: a.example.com}]
",
        );
        let all = derive(&o, &[]);
        assert_eq!(
            names(&all),
            [
                "builtin/annotation-policy-dropped/ns/ing/mtls",
                "builtin/annotation-policy-dropped/ns/ing/egress",
                "builtin/ssl-services-removed/ns/ing",
                "builtin/ingress-tls-removed/ns/ing"
            ]
        );
        let annotations = |name: &str| patched(&o, &all, name)["metadata"]["annotations"].clone();
        assert_eq!(
            annotations("builtin/annotation-policy-dropped/ns/ing/mtls")["nginx.org/policies"],
            "egress"
        );
        assert!(
            annotations("builtin/ssl-services-removed/ns/ing")
                .get("nginx.org/ssl-services")
                .is_none()
        );
        assert!(
            patched(&o, &all, "builtin/ingress-tls-removed/ns/ing")["spec"]
                .get("tls")
                .is_none()
        );
    }

    #[test]
    fn certificate_usages_lose_the_one_they_are_for() {
        let cert = |usages: &str, extra: &str| {
            objects(&format!(
                "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {{name: c}}\nspec:\n  secretName: c\n  issuerRef: {{name: ca}}\n  {usages}\n  {extra}\n"
            ))
        };
        let o = cert(
            "usages: [digital signature, key encipherment, client auth]",
            "",
        );
        let all = derive(&o, &[]);
        assert_eq!(names(&all), ["builtin/client-auth-dropped/ns/c"]);
        assert_eq!(
            patched(&o, &all, "builtin/client-auth-dropped/ns/c")["spec"]["usages"],
            serde_json::json!(["digital signature", "key encipherment", "server auth"])
        );
        // Both: each one dropped alone.
        let o = cert("usages: [server auth, client auth]", "");
        let all = derive(&o, &[]);
        assert_eq!(
            patched(&o, &all, "builtin/server-auth-dropped/ns/c")["spec"]["usages"],
            serde_json::json!(["client auth"])
        );
        // cert-manager's default usages carry no extended key usage: nothing to drop; nor on a CA.
        assert!(derive(&cert("", ""), &[]).is_empty());
        assert!(derive(&cert("usages: [client auth]", "isCA: true"), &[]).is_empty());
    }

    /// Every shipped scenario: unique names, and every patch applies to its
    /// scenario and loads.
    #[test]
    fn the_shipped_scenarios_mutations_apply() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        for dir in crate::scenario::discover(&root).expect("scenarios") {
            let s = crate::scenario::Scenario::load(&dir).unwrap_or_else(|e| panic!("{e}"));
            let unique: std::collections::BTreeSet<&str> = names(&s.builtin).into_iter().collect();
            assert_eq!(unique.len(), s.builtin.len(), "{}", s.name);
            for m in &s.builtin {
                assert!(m.name.starts_with(PREFIX));
                s.mutated(m).unwrap_or_else(|e| panic!("{}: {e}", m.name));
            }
        }
    }
}
