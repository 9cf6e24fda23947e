//! The findings: each from NIC's own decisions as the local substrate models
//! them (`policy::generate_reporting`, the secret store, the Ingress and
//! `VirtualServer` helpers the renderer calls), read against the objects.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;

use super::Finding;
use crate::manifest::kinds::{
    EgressMtls, IngressMtls, Policy, PolicyRef, PolicySpec, Service, VirtualServer,
};
use crate::manifest::{Kind, Object};
use crate::scenario::steps::SecretData;
use crate::substrate::local::nic::policy::{
    self, Context, EgressMtlsCfg, Inputs, PoliciesCfg, Problem, ProblemKind,
};
use crate::substrate::local::nic::secrets::{self, SecretStore, TYPE_CA, TYPE_TLS};
use crate::substrate::local::nic::{INGRESS_CLASS, RenderEnv, ingress, virtualserver};
use crate::yaml::{self, Origin};

/// Every finding in `objects`; `typed_secrets` are the Secrets that steps or
/// cert-manager make (`ns/name` → type).
pub(crate) fn find(objects: &[Object], typed_secrets: &BTreeMap<String, String>) -> Vec<Finding> {
    let mut out = Vec::new();
    let facts = Facts::new(objects, typed_secrets, &mut out);
    // The store is keyed as the renderer keys it; lint's own maps by `ns/name`.
    let by_name = |key: &String| {
        let (namespace, name) = key.split_once('/').unwrap_or(("", key));
        crate::manifest::NamespacedName::new(namespace, name)
    };
    let secret_data: crate::scenario::steps::Secrets = facts
        .secret_data
        .iter()
        .map(|(k, v)| (by_name(k), v.clone()))
        .collect();
    let store = SecretStore::new(&secret_data, &facts.secrets_dir).with_typed_only(
        facts
            .typed_secrets
            .iter()
            .map(|(k, v)| (by_name(k), v.clone()))
            .collect(),
    );
    let lint = Lint {
        facts: &facts,
        store: &store,
    };
    for (key, (object, spec)) in &facts.policies {
        lint.policy(key, object, spec, &mut out);
    }
    for object in objects {
        match object.id.kind {
            Kind::VirtualServer => lint.virtual_server(object, &mut out),
            Kind::VirtualServerRoute => lint.virtual_server_route(object, &mut out),
            _ => {}
        }
    }
    lint.ingresses(objects, &mut out);
    out
}

/// What lint knows before it looks at any owner of policies.
struct Facts<'a> {
    objects: &'a [Object],
    /// Policies of NIC's class, by `ns/name`.
    policies: BTreeMap<String, (&'a Object, PolicySpec)>,
    /// The Policies NIC accepts (what owners can use).
    valid: BTreeMap<String, PolicySpec>,
    /// Policies of another ingress class: NIC does not see them.
    other_class: BTreeMap<String, String>,
    /// Secrets the manifests hold, with their data.
    secret_data: BTreeMap<String, SecretData>,
    /// Secrets known by type only, and those named but found nowhere (assumed
    /// to exist with the type NIC wants, so one missing Secret does not hide
    /// every other finding of its owner).
    typed_secrets: BTreeMap<String, String>,
    /// `ns/name` of every Secret named but found nowhere.
    not_found: BTreeSet<String>,
    secrets_dir: String,
}

impl<'a> Facts<'a> {
    fn new(
        objects: &'a [Object],
        typed_secrets: &BTreeMap<String, String>,
        out: &mut Vec<Finding>,
    ) -> Self {
        let mut facts = Facts {
            objects,
            policies: BTreeMap::new(),
            valid: BTreeMap::new(),
            other_class: BTreeMap::new(),
            secret_data: BTreeMap::new(),
            typed_secrets: typed_secrets.clone(),
            not_found: BTreeSet::new(),
            secrets_dir: RenderEnv::nic().secrets_dir,
        };
        for o in objects {
            match o.id.kind {
                Kind::Secret => match crate::substrate::local::certmanager::secret_data(o) {
                    Ok(data) => {
                        facts.secret_data.insert(o.id.key(), data);
                    }
                    Err(e) => out.push(not_linted(o, e.origin, &e.message)),
                },
                Kind::Policy => {
                    let Some(policy) = lenient::<Policy>(o, out) else {
                        continue;
                    };
                    let class = policy.spec.ingress_class_name.as_deref();
                    match class {
                        Some(c) if c != INGRESS_CLASS => {
                            facts.other_class.insert(o.id.key(), c.to_string());
                        }
                        _ => {
                            if policy::validate(&policy.spec).is_ok() {
                                facts.valid.insert(o.id.key(), policy.spec.clone());
                            }
                            facts.policies.insert(o.id.key(), (o, policy.spec));
                        }
                    }
                }
                _ => {}
            }
        }
        // Every Secret a Policy names, and whether anything makes it.
        let mut named: Vec<(String, &'static str, Origin, String)> = Vec::new();
        for (key, (o, spec)) in &facts.policies {
            for (field, name, wanted) in secret_fields(spec) {
                named.push((
                    format!("{}/{name}", o.namespace()),
                    wanted,
                    o.origin_of(&field),
                    format!("Policy {key}"),
                ));
            }
        }
        for (key, secret_key, wanted, origin) in tls_secrets(objects) {
            named.push((secret_key, wanted, origin, key));
        }
        for (secret_key, wanted, origin, object) in named {
            let known = facts.secret_data.contains_key(&secret_key)
                || facts.typed_secrets.contains_key(&secret_key);
            if !known {
                facts.not_found.insert(secret_key.clone());
                facts
                    .typed_secrets
                    .insert(secret_key.clone(), wanted.to_string());
                out.push(Finding::new(
                    "reference-not-found",
                    origin,
                    object,
                    format!(
                        "Secret {secret_key} is not among these manifests, nor made by a step or a cert-manager \
                         Certificate; if it does not exist as type {wanted}, NIC answers 500 (\"references an \
                         invalid secret {secret_key}: secret doesn't exist or of an unsupported type\")"
                    ),
                ));
            }
        }
        facts
    }

    fn inputs<'s>(
        &'s self,
        store: &'s SecretStore<'s>,
        owner: &'s Object,
        on_ingress: bool,
    ) -> Inputs<'s> {
        Inputs {
            policies: &self.valid,
            secrets: store,
            owner_namespace: owner.namespace(),
            on_ingress,
        }
    }

    fn service_port_is_https(&self, namespace: &str, service: &str, port: &PortRef<'_>) -> bool {
        let Some(object) = self.objects.iter().find(|o| {
            o.id.kind == Kind::Service && o.namespace() == namespace && o.name() == service
        }) else {
            return false;
        };
        let Ok(svc) = object.parse::<Service>() else {
            return false;
        };
        svc.spec.ports.iter().any(|p| {
            let matches = match port {
                PortRef::Number(n) => p.port == *n,
                PortRef::Name(name) => p.name.as_deref() == Some(name),
            };
            let https = |s: Option<&str>| s.is_some_and(|s| s == "https");
            let target = match &p.target_port {
                Some(crate::manifest::kinds::IntOrString::Str(s)) => Some(s.as_str()),
                _ => None,
            };
            matches && (https(p.name.as_deref()) || https(target))
        })
    }
}

enum PortRef<'a> {
    Number(u16),
    Name(&'a str),
}

/// The Secret fields of a policy: (path, name, the type NIC wants there).
fn secret_fields(spec: &PolicySpec) -> Vec<(String, String, &'static str)> {
    let mut out = Vec::new();
    let mut add = |path: &str, name: &Option<String>, wanted: &'static str| {
        if let Some(name) = name.as_deref().filter(|n| !n.is_empty()) {
            out.push((path.to_string(), name.to_string(), wanted));
        }
    };
    if let Some(m) = &spec.ingress_mtls {
        add(
            "spec.ingressMTLS.clientCertSecret",
            &m.client_cert_secret,
            TYPE_CA,
        );
    }
    if let Some(e) = &spec.egress_mtls {
        add("spec.egressMTLS.tlsSecret", &e.tls_secret, TYPE_TLS);
        add(
            "spec.egressMTLS.trustedCertSecret",
            &e.trusted_cert_secret,
            TYPE_CA,
        );
    }
    out
}

/// The TLS Secrets `VirtualServers` and Ingresses name: (object, `ns/name`, type, origin).
fn tls_secrets(objects: &[Object]) -> Vec<(String, String, &'static str, Origin)> {
    let mut out = Vec::new();
    for o in objects {
        match o.id.kind {
            Kind::VirtualServer => {
                if let Ok(vs) = o.parse::<VirtualServer>()
                    && let Some(secret) =
                        vs.spec.tls.and_then(|t| t.secret).filter(|s| !s.is_empty())
                {
                    out.push((
                        o.id.to_string(),
                        format!("{}/{secret}", o.namespace()),
                        TYPE_TLS,
                        o.origin_of("spec.tls.secret"),
                    ));
                }
            }
            Kind::Ingress => {
                if let Ok(i) = o.parse::<crate::manifest::kinds::Ingress>() {
                    for (n, t) in i.spec.tls.iter().flatten().enumerate() {
                        if let Some(secret) = t.secret_name.as_deref().filter(|s| !s.is_empty()) {
                            out.push((
                                o.id.to_string(),
                                format!("{}/{secret}", o.namespace()),
                                TYPE_TLS,
                                o.origin_of(&format!("spec.tls[{n}].secretName")),
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

struct Lint<'a> {
    facts: &'a Facts<'a>,
    store: &'a SecretStore<'a>,
}

/// One context's policies as NIC configures them.
struct ContextCfg {
    cfg: PoliciesCfg,
    problems: Vec<Problem>,
}

impl Lint<'_> {
    fn generate(
        &self,
        owner: &Object,
        refs: &[PolicyRef],
        context: Context,
        tls: bool,
        on_ingress: bool,
    ) -> ContextCfg {
        let inputs = self.facts.inputs(self.store, owner, on_ingress);
        let (cfg, problems) = policy::generate_reporting(refs, context, tls, &inputs);
        ContextCfg { cfg, problems }
    }

    /// Findings of one Policy on its own (its validity and its egress defaults).
    fn policy(&self, key: &str, o: &Object, spec: &PolicySpec, out: &mut Vec<Finding>) {
        let object = o.id.to_string();
        if let Err(e) = policy::validate(spec) {
            let status = policy::status(o.namespace(), o.name(), &Err(e));
            out.push(Finding::new(
                "policy-invalid",
                o.origin_of("spec"),
                object,
                format!(
                    "{}; every VirtualServer or Ingress that references it answers 500 (\"Policy {key} is missing or invalid\")",
                    status.message
                ),
            ));
            return;
        }
        if let Some(m) = &spec.ingress_mtls {
            self.ingress_mtls_policy(o, m, out);
        }
        if let Some(e) = &spec.egress_mtls {
            egress_policy(o, e, out);
        }
    }

    fn ingress_mtls_policy(&self, o: &Object, m: &IngressMtls, out: &mut Vec<Finding>) {
        if let Some(file) = &m.crl_file_name {
            out.push(Finding::new(
                "crl-file-not-created",
                o.origin_of("spec.ingressMTLS.crlFileName"),
                o.id.to_string(),
                format!(
                    "crlFileName `{file}` is read from {}/{file} in NIC's pod, which NIC never writes; without it \
                     nginx fails to reload (\"ssl_crl ... No such file or directory\") and NIC reports the resource \
                     \"... but was not applied\", so the host is not served",
                    self.facts.secrets_dir
                ),
            ));
        }
    }

    /// Map NIC's problems in one context to findings at `origin` (the reference).
    fn problems(
        &self,
        owner: &Object,
        problems: &[Problem],
        origin_of_ref: &dyn Fn(&str) -> Origin,
        out: &mut Vec<Finding>,
    ) {
        let object = owner.id.to_string();
        for p in problems {
            let at = origin_of_ref(&p.policy);
            let finding = match p.kind {
                ProblemKind::MissingOrInvalid => {
                    if self.facts.policies.contains_key(&p.policy) {
                        // Invalid: reported once, at the Policy.
                        continue;
                    }
                    let why = match self.facts.other_class.get(&p.policy) {
                        Some(class) => format!(
                            "Policy {} has ingressClassName `{class}`, so NIC (class `{INGRESS_CLASS}`) does not see it: \"{}\" and 500",
                            p.policy, p.message
                        ),
                        None => format!(
                            "Policy {} is not among these manifests; if it does not exist, NIC answers 500 (\"{}\")",
                            p.policy, p.message
                        ),
                    };
                    Finding::new("reference-not-found", at, object.clone(), why)
                }
                ProblemKind::NotAllowedInContext => {
                    let fix = if owner.id.kind == Kind::Ingress {
                        "put the ingressMTLS policy on the master Ingress: it applies at server scope, to every minion's paths"
                    } else {
                        "reference the ingressMTLS policy in the VirtualServer's `spec.policies` (server scope): NIC applies ingressMTLS to a whole host only"
                    };
                    Finding::new(
                        "ingress-mtls-not-on-server",
                        at,
                        object.clone(),
                        format!("NIC: \"{}\"; that location answers 500", p.message),
                    )
                    .fix(fix)
                }
                ProblemKind::TlsRequired => Finding::new(
                    "ingress-mtls-without-tls",
                    at,
                    object.clone(),
                    format!("NIC: \"{}\"; every request answers 500", p.message),
                ),
                ProblemKind::SecretWrongType => {
                    self.secret_finding(p, "secret-wrong-type", &object, at)
                }
                ProblemKind::SecretInvalid => {
                    let unsupported = self.secret_named(p).is_some_and(|(key, _, _)| {
                        self.facts
                            .secret_data
                            .get(&key)
                            .map(|d| d.type_.clone())
                            .or_else(|| self.facts.typed_secrets.get(&key).cloned())
                            .is_some_and(|t| !secrets::SUPPORTED.contains(&t.as_str()))
                    });
                    let id = if unsupported {
                        "secret-wrong-type"
                    } else {
                        "policy-answers-500"
                    };
                    self.secret_finding(p, id, &object, at)
                }
                ProblemKind::NotSupportedOnIngress => Finding::new(
                    "policy-answers-500",
                    at,
                    object.clone(),
                    format!("NIC: \"{}\"; every request answers 500", p.message),
                ),
                ProblemKind::Ignored => Finding::new(
                    "policy-ignored",
                    at,
                    object.clone(),
                    format!("NIC: \"{}\"", p.message),
                ),
            };
            out.push(finding);
        }
    }

    /// The Secret field of the Policy a secret problem names: (`ns/name`, origin, Policy).
    fn secret_named(&self, p: &Problem) -> Option<(String, Origin, String)> {
        let (o, spec) = self.facts.policies.get(&p.policy)?;
        secret_fields(spec)
            .into_iter()
            .find_map(|(field, name, _)| {
                let key = format!("{}/{name}", o.namespace());
                [format!("secret {key} "), format!("secret {key}:")]
                    .iter()
                    .any(|named| p.message.contains(named.as_str()))
                    .then(|| (key, o.origin_of(&field), o.id.to_string()))
            })
    }

    /// A secret problem is the Policy's, found where an owner uses it: it is
    /// reported at the Policy's field, once whoever references it.
    fn secret_finding(&self, p: &Problem, id: &'static str, owner: &str, at: Origin) -> Finding {
        // At the reference when the message names no field of the Policy's (it always does).
        let (origin, object) = match self.secret_named(p) {
            Some((_, origin, object)) => (origin, object),
            None => (at, owner.to_string()),
        };
        Finding::new(
            id,
            origin,
            object,
            format!(
                "NIC: \"{}\"; every resource using the policy ({owner} here) answers 500",
                p.message
            ),
        )
    }

    fn virtual_server(&self, o: &Object, out: &mut Vec<Finding>) {
        let Some(vs) = lenient::<VirtualServer>(o, out) else {
            return;
        };
        let spec = vs.spec;
        if spec
            .ingress_class_name
            .as_deref()
            .is_some_and(|c| c != INGRESS_CLASS)
        {
            return;
        }
        // As generateSSLConfig: TLS when the named Secret is a usable TLS Secret.
        let tls = spec
            .tls
            .as_ref()
            .and_then(|t| t.secret.as_deref())
            .filter(|s| !s.is_empty())
            .is_some_and(|s| {
                let r = self
                    .store
                    .get(&crate::manifest::NamespacedName::new(o.namespace(), s));
                r.type_.as_deref() == Some(TYPE_TLS) && r.error.is_none()
            });
        let origin_in = |refs: &[PolicyRef], base: &str| {
            let owner_ns = o.namespace().to_string();
            let refs = refs.to_vec();
            let base = base.to_string();
            move |key: &str| -> Origin {
                match refs.iter().position(|r| ref_key(r, &owner_ns) == key) {
                    Some(j) => o.origin_of(&format!("{base}[{j}]")),
                    None => o.origin_of(&base),
                }
            }
        };
        let server = self.generate(o, &spec.policies, Context::Spec, tls, false);
        self.problems(
            o,
            &server.problems,
            &origin_in(&spec.policies, "spec.policies"),
            out,
        );
        let routes: Vec<ContextCfg> = spec
            .routes
            .iter()
            .enumerate()
            .map(|(i, route)| {
                let cfg = if route.policies.is_empty() {
                    ContextCfg {
                        cfg: PoliciesCfg::default(),
                        problems: Vec::new(),
                    }
                } else {
                    self.generate(o, &route.policies, Context::Route, tls, false)
                };
                self.problems(
                    o,
                    &cfg.problems,
                    &origin_in(&route.policies, &format!("spec.routes[{i}].policies")),
                    out,
                );
                cfg
            })
            .collect();

        self.optional_verification(o, &spec, &server.cfg, out);
        let vs = Vs {
            o,
            spec: &spec,
            server: &server.cfg,
            routes: &routes,
        };
        vs.plain_http(out);
        vs.plain_upstreams(self.facts, out);
        vs.session_reuse(out);
    }

    /// `optional` / `optional_no_ca` with nothing passing the verification result on.
    fn optional_verification(
        &self,
        o: &Object,
        spec: &crate::manifest::kinds::VirtualServerSpec,
        cfg: &PoliciesCfg,
        out: &mut Vec<Finding>,
    ) {
        let Some(m) = &cfg.ingress_mtls else {
            return;
        };
        if !matches!(m.verify_client.as_str(), "optional" | "optional_no_ca") {
            return;
        }
        let passes_verify = spec.routes.iter().any(|r| {
            r.action
                .as_ref()
                .and_then(|a| a.proxy.as_ref())
                .and_then(|p| p.request_headers.as_ref())
                .is_some_and(|h| h.set.iter().any(|s| s.value.contains("ssl_client_verify")))
        });
        if passes_verify {
            return;
        }
        let at = first_ref_with(&spec.policies, o, &self.facts.valid, |p| {
            p.ingress_mtls.is_some()
        });
        out.push(Finding::new(
            "optional-verification-unchecked",
            o.origin_of(&format!("spec.policies[{}]", at.unwrap_or(0))),
            o.id.to_string(),
            optional_why(&m.verify_client),
        ));
    }

    /// `VirtualServerRoute` subroutes: NIC's "subroute" context. (The local
    /// substrate does not render them; only policy placement is read.)
    fn virtual_server_route(&self, o: &Object, out: &mut Vec<Finding>) {
        #[derive(serde::Deserialize)]
        struct Vsr {
            spec: VsrSpec,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct VsrSpec {
            ingress_class_name: Option<String>,
            #[serde(default)]
            subroutes: Vec<Subroute>,
        }
        #[derive(serde::Deserialize)]
        struct Subroute {
            #[serde(default)]
            policies: Vec<PolicyRef>,
        }
        let Ok(vsr) = o.parse::<Vsr>() else {
            out.push(not_linted(
                o,
                o.origin(),
                "its spec.subroutes do not read as NIC's",
            ));
            return;
        };
        if vsr
            .spec
            .ingress_class_name
            .as_deref()
            .is_some_and(|c| c != INGRESS_CLASS)
        {
            return;
        }
        for (i, sub) in vsr.spec.subroutes.iter().enumerate() {
            if sub.policies.is_empty() {
                continue;
            }
            // TLS is the VirtualServer's; the context check comes first either way.
            let cfg = self.generate(o, &sub.policies, Context::Subroute, true, false);
            let ns = o.namespace().to_string();
            let refs = sub.policies.clone();
            let base = format!("spec.subroutes[{i}].policies");
            self.problems(
                o,
                &cfg.problems,
                &|key: &str| match refs.iter().position(|r| ref_key(r, &ns) == key) {
                    Some(j) => o.origin_of(&format!("{base}[{j}]")),
                    None => o.origin_of(&base),
                },
                out,
            );
        }
    }

    fn ingresses(&self, objects: &[Object], out: &mut Vec<Finding>) {
        let mut parsed = Vec::new();
        for o in objects.iter().filter(|o| o.id.kind == Kind::Ingress) {
            match ingress::parse(o) {
                Ok(Some(p)) => parsed.push(p),
                Ok(None) => {}
                Err(e) => out.push(not_linted(o, e.origin, &e.message)),
            }
        }
        let host_of = ingress::Parsed::host;
        for p in &parsed {
            match p.kind {
                ingress::Mergeable::Standard => {
                    let hosts: Vec<String> = p.spec.rules.iter().map(|r| r.host.clone()).collect();
                    self.ingress_server(p, &hosts, &[p], out);
                }
                ingress::Mergeable::Master => {
                    let minions: Vec<&ingress::Parsed<'_>> = parsed
                        .iter()
                        .filter(|m| {
                            m.kind == ingress::Mergeable::Minion && host_of(m) == host_of(p)
                        })
                        .collect();
                    self.ingress_server(p, &[host_of(p)], &minions, out);
                    for m in &minions {
                        let cfg = self.generate(
                            m.object,
                            &ingress::policy_refs(m.object),
                            Context::Minion,
                            false,
                            true,
                        );
                        let at = annotation_origin(m.object, ingress::POLICIES);
                        self.problems(m.object, &cfg.problems, &|_| at.clone(), out);
                        if cfg.cfg.egress_mtls.is_some() {
                            egress_without_ssl_services(m, out);
                        }
                    }
                }
                ingress::Mergeable::Minion => {}
            }
        }
        for p in &parsed {
            self.https_ports(p, out);
        }
    }

    /// A standard Ingress or a master: its server-scope policies, for `hosts`,
    /// with the locations of `paths_of` (itself, or the master's minions).
    fn ingress_server(
        &self,
        p: &ingress::Parsed<'_>,
        hosts: &[String],
        paths_of: &[&ingress::Parsed<'_>],
        out: &mut Vec<Finding>,
    ) {
        let o = p.object;
        let object = o.id.to_string();
        let cfg = self.generate(
            o,
            &ingress::policy_refs(o),
            Context::Spec,
            p.spec.tls.is_some(),
            true,
        );
        let at = annotation_origin(o, ingress::POLICIES);
        self.problems(o, &cfg.problems, &|_| at.clone(), out);
        if let Some(m) = &cfg.cfg.ingress_mtls {
            for (i, host) in hosts.iter().enumerate() {
                let rule = p
                    .spec
                    .rules
                    .iter()
                    .position(|r| &r.host == host)
                    .unwrap_or(i);
                if ingress::tls_for_host(&p.spec, host).is_none() {
                    out.push(Finding::new(
                        "ingress-mtls-ignored-for-host",
                        o.origin_of(&format!("spec.rules[{rule}].host")),
                        object.clone(),
                        format!(
                            "NIC: \"{}\"; requests to {host} are served without any client certificate",
                            ingress::ingress_mtls_ignored_for_host(host)
                        ),
                    ));
                } else if !ingress::ssl_redirect(o) && m.verify_client == "on" {
                    out.push(Finding::new(
                        "plain-http-bypasses-mtls",
                        annotation_origin(o, ingress::SSL_REDIRECT),
                        object.clone(),
                        format!(
                            "nginx.org/ssl-redirect is false, so port 80 of {host} serves plain HTTP, where nginx asks for no \
                             certificate{}",
                            if o.annotations.contains_key("nginx.org/redirect-to-https") {
                                "; nginx.org/redirect-to-https redirects only requests whose X-Forwarded-Proto header is \
                                 `http`, which a client talking to NIC directly does not send"
                            } else {
                                ""
                            }
                        ),
                    ).fix("remove `nginx.org/ssl-redirect: \"false\"` (NIC's default redirects plain HTTP to HTTPS)"));
                }
            }
            if matches!(m.verify_client.as_str(), "optional" | "optional_no_ca")
                && !o
                    .annotations
                    .values()
                    .any(|v| v.contains("ssl_client_verify"))
            {
                out.push(Finding::new(
                    "optional-verification-unchecked",
                    annotation_origin(o, ingress::POLICIES),
                    object.clone(),
                    optional_why(&m.verify_client),
                ).fix("on an Ingress NIC passes no client-certificate variable to the app: use `verifyClient: \"on\"`, or a VirtualServer that passes `${ssl_client_verify}`"));
            }
        }
        if cfg.cfg.egress_mtls.is_some()
            && !paths_of.iter().any(|m| {
                let services = ingress::ssl_services(m.object);
                backends(m)
                    .iter()
                    .any(|(_, _, svc, _)| services.contains(&svc.as_str()))
            })
        {
            out.push(egress_without_tls_finding(
                p,
                paths_of.len() > 1 || p.kind == ingress::Mergeable::Master,
            ));
        }
    }

    /// Backends on a port named https that NGINX reaches over plain HTTP.
    fn https_ports(&self, p: &ingress::Parsed<'_>, out: &mut Vec<Finding>) {
        if p.kind == ingress::Mergeable::Master {
            return; // a master has no paths; ssl-services on it is ignored (masterDenylist)
        }
        let object = p.object.id.to_string();
        if out
            .iter()
            .any(|f| f.id == "plain-http-to-tls-upstream" && f.object == object)
        {
            return; // already reported for its egress policy
        }
        let services = ingress::ssl_services(p.object);
        for (path, port, svc, number) in backends(p) {
            if services.contains(&svc.as_str()) {
                continue;
            }
            let port_ref = match (&number, &port) {
                (Some(n), _) => PortRef::Number(*n),
                (None, Some(name)) => PortRef::Name(name),
                _ => continue,
            };
            if self
                .facts
                .service_port_is_https(p.object.namespace(), &svc, &port_ref)
            {
                out.push(Finding::new(
                    "plain-http-to-tls-upstream",
                    p.object.origin_of(&path),
                    p.object.id.to_string(),
                    format!(
                        "Service {}/{svc} port {} is named https, but nginx.org/ssl-services does not name `{svc}`: NGINX \
                         sends plain HTTP to a TLS port",
                        p.object.namespace(),
                        number.map_or_else(|| port.clone().unwrap_or_default(), |n| n.to_string())
                    ),
                ).fix(format!("`nginx.org/ssl-services: \"{svc}\"` on this Ingress")));
            }
        }
    }
}

/// One `VirtualServer` as NIC configures it: the server's policies and each route's.
struct Vs<'a> {
    o: &'a Object,
    spec: &'a crate::manifest::kinds::VirtualServerSpec,
    server: &'a PoliciesCfg,
    routes: &'a [ContextCfg],
}

impl Vs<'_> {
    fn object(&self) -> String {
        self.o.id.to_string()
    }

    fn upstream_of(&self, route: usize) -> Option<&crate::manifest::kinds::Upstream> {
        virtualserver::route_upstream(&self.spec.routes[route])
            .and_then(|u| self.spec.upstreams.iter().find(|x| x.name == u))
    }

    fn upstream_tls(&self, route: usize) -> bool {
        self.upstream_of(route)
            .is_some_and(|u| u.tls.as_ref().is_some_and(|t| t.enable))
    }

    /// Port 80 of a host whose HTTPS side requires a client certificate.
    fn plain_http(&self, out: &mut Vec<Finding>) {
        // Only `on` requires a certificate on HTTPS; optional verification is its own finding.
        let required = self
            .server
            .ingress_mtls
            .as_ref()
            .is_some_and(|m| m.verify_client == "on");
        if required {
            let redirect = virtualserver::tls_redirect(self.spec);
            let based_on = redirect.map(virtualserver::redirect_based_on);
            let why = match based_on {
                None => Some(format!(
                    "client certificates are required on HTTPS, but a VirtualServer always listens on port 80 too and \
                         nginx asks for certificates only on TLS connections: http://{}/ reaches the upstream without one",
                    self.spec.host
                )),
                Some("$http_x_forwarded_proto") => Some(format!(
                    "spec.tls.redirect is based on x-forwarded-proto: NIC renders `if ($http_x_forwarded_proto = 'http')`, \
                         so a client that talks to NIC directly on port 80 and sends no such header reaches the upstream \
                         of http://{}/ without a certificate",
                    self.spec.host
                )),
                Some(_) => None,
            };
            if let Some(why) = why {
                let at = if redirect.is_some() {
                    "spec.tls.redirect"
                } else {
                    "spec.tls"
                };
                out.push(
                        Finding::new("plain-http-bypasses-mtls", self.o.origin_of(at), self.object(), why)
                            .fix("`spec.tls.redirect: {enable: true}` (NIC then answers plain HTTP with 301 to HTTPS, based on the connection's scheme)"),
                    );
            }
        }
    }

    /// Egress mTLS (or a port named https) toward an upstream reached over plain HTTP.
    fn plain_upstreams(&self, facts: &Facts<'_>, out: &mut Vec<Finding>) {
        // Each route's egress: its own, or the server's (nginx inherits it).
        let mut reported_upstreams = BTreeSet::new();
        for (i, route) in self.routes.iter().enumerate() {
            if route.cfg.egress_mtls.is_some() && !self.upstream_tls(i) {
                let upstream = self
                    .upstream_of(i)
                    .map(|u| u.name.clone())
                    .unwrap_or_default();
                reported_upstreams.insert(upstream.clone());
                out.push(Finding::new(
                        "plain-http-to-tls-upstream",
                        self.o.origin_of(&format!("spec.routes[{i}].policies")),
                        self.object(),
                        format!(
                            "route {} has an egressMTLS policy, but upstream `{upstream}` has no `tls.enable: true`: NGINX \
                             proxies over plain HTTP (`proxy_pass http://...`), so the proxy_ssl_* settings are never used",
                            self.spec.routes[i].path
                        ),
                    ).fix("`tls: {enable: true}` on the upstream"));
            }
        }
        if self.server.egress_mtls.is_some()
            && !self.spec.routes.is_empty()
            && (0..self.spec.routes.len()).all(|i| !self.upstream_tls(i))
        {
            let at = first_ref_with(&self.spec.policies, self.o, &facts.valid, |p| {
                p.egress_mtls.is_some()
            });
            out.push(Finding::new(
                    "plain-http-to-tls-upstream",
                    self.o.origin_of(&format!("spec.policies[{}]", at.unwrap_or(0))),
                    self.object(),
                    "the VirtualServer has an egressMTLS policy, but none of its upstreams has `tls.enable: true`: NGINX \
                     proxies over plain HTTP, so the policy presents and checks no certificate"
                        .to_string(),
                ).fix("`tls: {enable: true}` on the upstreams that serve TLS"));
        }
        for (k, u) in self.spec.upstreams.iter().enumerate() {
            let (ns, service) = u
                .service
                .split_once('/')
                .unwrap_or((self.o.namespace(), &u.service));
            let plain = !u.tls.as_ref().is_some_and(|t| t.enable);
            if plain
                && !reported_upstreams.contains(&u.name)
                && facts.service_port_is_https(ns, service, &PortRef::Number(u.port))
            {
                out.push(Finding::new(
                        "plain-http-to-tls-upstream",
                        self.o.origin_of(&format!("spec.upstreams[{k}]")),
                        self.object(),
                        format!(
                            "Service {ns}/{service} port {} is named https, but upstream `{}` has no `tls.enable: true`: \
                             NGINX sends plain HTTP to a TLS port",
                            u.port, u.name
                        ),
                    ).fix("`tls: {enable: true}` on the upstream"));
            }
        }
    }

    /// Routes sharing one upstream's TLS session cache with different egress settings.
    fn session_reuse(&self, out: &mut Vec<Finding>) {
        // Routes sharing one upstream's TLS session cache with different egress settings.
        let mut by_upstream: BTreeMap<&str, Vec<(usize, EgressMtlsCfg)>> = BTreeMap::new();
        for (i, route) in self.routes.iter().enumerate() {
            if route.cfg.error_return.is_some() || !self.upstream_tls(i) {
                continue;
            }
            let effective = route
                .cfg
                .egress_mtls
                .as_ref()
                .or(self.server.egress_mtls.as_ref());
            if let (Some(e), Some(u)) = (effective, self.upstream_of(i))
                && e.session_reuse
            {
                by_upstream
                    .entry(u.name.as_str())
                    .or_default()
                    .push((i, e.clone()));
            }
        }
        for (upstream, users) in by_upstream {
            for (i, e) in &users {
                let others: Vec<&str> = users
                    .iter()
                    .filter(|(j, other)| j != i && other != e)
                    .map(|(j, _)| self.spec.routes[*j].path.as_str())
                    .collect();
                if others.is_empty() {
                    continue;
                }
                out.push(Finding::new(
                        "session-reuse-masks-verification",
                        self.o.origin_of(&format!("spec.routes[{i}]")),
                        self.object(),
                        format!(
                            "route {} and route(s) {} proxy to upstream `{upstream}` ({}) with different egress TLS settings, \
                             and proxy_ssl_session_reuse is on (NIC's default): NGINX caches the TLS session per upstream \
                             server, so this route can resume a session another route verified, and its own trusted CA, \
                             sslName and verification are never applied",
                            self.spec.routes[*i].path,
                            others.join(", "),
                            virtualserver::upstream_name(self.o.namespace(), self.o.name(), upstream)
                        ),
                    ));
            }
        }
    }
}

/// Findings of an egressMTLS policy's own settings, NIC's defaults filled in.
fn egress_policy(o: &Object, e: &EgressMtls, out: &mut Vec<Finding>) {
    let object = o.id.to_string();
    let cfg = policy::egress_settings(e, None, None);
    if !cfg.protocols.split_whitespace().any(|p| p == "TLSv1.3") {
        let (at, what) = if e.protocols.as_deref().is_some_and(|p| !p.is_empty()) {
            (
                "spec.egressMTLS.protocols",
                format!("protocols `{}`", cfg.protocols),
            )
        } else {
            (
                "spec.egressMTLS",
                format!(
                    "no `protocols`, so NIC renders its default `proxy_ssl_protocols {};`",
                    cfg.protocols
                ),
            )
        };
        out.push(Finding::new(
            "egress-protocols-without-tls13",
            o.origin_of(at),
            object.clone(),
            format!(
                "{what}: NGINX offers the upstream no TLS 1.3, and a TLS 1.3-only upstream (the AI gateway stand-in, \
                 tutorial 002's F5 AI Gateway) refuses the handshake: 502"
            ),
        ));
    }
    if cfg.verify_server {
        if cfg.ssl_name == policy::DEFAULT_SSL_NAME {
            out.push(Finding::new(
                "verify-server-without-ssl-name",
                o.origin_of("spec.egressMTLS.verifyServer"),
                object,
                format!(
                    "verifyServer is on and sslName is not set, so NIC renders `proxy_ssl_name {};`: the upstream's \
                     certificate is checked against NIC's upstream block name (vs_<namespace>_<virtualserver>_<upstream>, \
                     or <namespace>-<ingress>-<host>-<service>-<port>), which it never carries: 502",
                    policy::DEFAULT_SSL_NAME
                ),
            ));
        }
    } else {
        out.push(Finding::new(
            "egress-without-server-verification",
            o.origin_of("spec.egressMTLS"),
            object,
            "verifyServer is not set (NIC's default: `proxy_ssl_verify off;`): NGINX presents its client certificate \
             to whatever answers on the upstream's address and forwards the requests without checking who it is"
                .to_string(),
        ));
    }
}

fn optional_why(verify_client: &str) -> String {
    let who = if verify_client == "optional_no_ca" {
        "without a certificate, and with one from any CA (optional_no_ca does not verify it),"
    } else {
        "without a certificate"
    };
    format!(
        "verifyClient `{verify_client}`: requests {who} reach the app, and nothing passes `$ssl_client_verify` on, so \
         the app cannot tell them from verified ones; check that it refuses anything but SUCCESS"
    )
}

/// (path to the backend, port name, service, port number) of each Ingress path.
fn backends(p: &ingress::Parsed<'_>) -> Vec<(String, Option<String>, String, Option<u16>)> {
    let mut out = Vec::new();
    for (i, rule) in p.spec.rules.iter().enumerate() {
        for (j, path) in rule.http.iter().flat_map(|h| &h.paths).enumerate() {
            let svc = &path.backend.service;
            out.push((
                format!("spec.rules[{i}].http.paths[{j}].backend"),
                svc.port.name.clone(),
                svc.name.clone(),
                svc.port.number,
            ));
        }
    }
    out
}

/// An egress policy applies, but no location of its scope proxies over TLS.
fn egress_without_tls_finding(p: &ingress::Parsed<'_>, mergeable: bool) -> Finding {
    let o = p.object;
    let names: Vec<String> = backends(p).into_iter().map(|(_, _, s, _)| s).collect();
    let (why, fix) = if mergeable {
        (
            "the master's egressMTLS policy applies to its minions' locations, but no minion names its service in \
             nginx.org/ssl-services (NIC ignores that annotation on a master): NGINX proxies over plain HTTP, so the \
             policy presents and checks no certificate"
                .to_string(),
            "`nginx.org/ssl-services` on each minion whose service serves TLS".to_string(),
        )
    } else {
        (
            format!(
                "the Ingress has an egressMTLS policy but no nginx.org/ssl-services, so NGINX proxies to {} over plain \
                 HTTP (`proxy_pass http://...`): egressMTLS does not switch the upstream to TLS, and the policy \
                 presents and checks no certificate",
                if names.is_empty() {
                    "its backends".to_string()
                } else {
                    names.join(", ")
                }
            ),
            format!(
                "`nginx.org/ssl-services: \"{}\"`",
                names.first().map_or("<service>", String::as_str)
            ),
        )
    };
    Finding::new(
        "plain-http-to-tls-upstream",
        annotation_origin(o, ingress::POLICIES),
        o.id.to_string(),
        why,
    )
    .fix(fix)
}

/// A minion's own egress policy with none of its services in its ssl-services.
fn egress_without_ssl_services(m: &ingress::Parsed<'_>, out: &mut Vec<Finding>) {
    let services = ingress::ssl_services(m.object);
    if !backends(m)
        .iter()
        .any(|(_, _, svc, _)| services.contains(&svc.as_str()))
    {
        out.push(egress_without_tls_finding(m, false));
    }
}

/// `ns/name` of a policy reference, as NIC resolves it.
fn ref_key(r: &PolicyRef, owner_namespace: &str) -> String {
    let ns = r
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(owner_namespace);
    format!("{ns}/{}", r.name)
}

/// The index of the first reference to a valid policy that `wanted` accepts.
fn first_ref_with(
    refs: &[PolicyRef],
    owner: &Object,
    valid: &BTreeMap<String, PolicySpec>,
    wanted: impl Fn(&PolicySpec) -> bool,
) -> Option<usize> {
    refs.iter().position(|r| {
        valid
            .get(&ref_key(r, owner.namespace()))
            .is_some_and(&wanted)
    })
}

/// The line of an annotation, or of the annotations.
fn annotation_origin(o: &Object, key: &str) -> Origin {
    let line = o
        .doc
        .root
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(key))
        .map(|n| n.line);
    match line {
        Some(line) => Origin::at(&o.doc.file, line),
        None => o.origin_of("metadata.annotations"),
    }
}

fn not_linted(o: &Object, origin: Origin, why: &str) -> Finding {
    Finding::new(
        "not-linted",
        origin,
        o.id.to_string(),
        format!("lint does not read this object: {why}"),
    )
}

/// The typed view of `o`, leaving out each field the view does not have (a
/// field the local substrate does not render), each reported as `not-linted`.
fn lenient<T: DeserializeOwned>(o: &Object, out: &mut Vec<Finding>) -> Option<T> {
    let mut json = o.to_json();
    // Bounded: each round removes one field.
    for _ in 0..256 {
        match serde_path_to_error::deserialize::<_, T>(&json) {
            Ok(value) => return Some(value),
            Err(e) => {
                let at = e.path().to_string();
                let inner = e.into_inner().to_string();
                let Some(field) = yaml::unknown_field(&inner).map(str::to_string) else {
                    out.push(not_linted(o, o.origin_of(&at), &inner));
                    return None;
                };
                // The path names the unknown field itself; its parent holds it.
                let parent = match at.strip_suffix(field.as_str()) {
                    Some("") => ".".to_string(),
                    Some(rest) => rest.trim_end_matches('.').to_string(),
                    None => at.clone(),
                };
                let path = if parent == "." {
                    field.clone()
                } else {
                    format!("{parent}.{field}")
                };
                if !remove_at(&mut json, &parent, &field) {
                    out.push(not_linted(
                        o,
                        o.origin_of(&path),
                        &format!("{inner} [{parent}]"),
                    ));
                    return None;
                }
                out.push(Finding::new(
                    "not-linted",
                    o.origin_of(&path),
                    o.id.to_string(),
                    format!("lint does not read `{path}`: whatever it changes is not checked"),
                ));
            }
        }
    }
    None
}

/// Remove `field` from the map at `parent` (`spec.routes[0]`, or `.` for the root).
fn remove_at(json: &mut serde_json::Value, parent: &str, field: &str) -> bool {
    let mut node = json;
    for part in parent.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            let Some(next) = node.get_mut(key) else {
                return false;
            };
            node = next;
        }
        while let Some(end) = rest.find(']') {
            let Some(next) = rest[1..end]
                .parse::<usize>()
                .ok()
                .and_then(|i| node.get_mut(i))
            else {
                return false;
            };
            node = next;
            rest = &rest[end + 1..];
        }
    }
    node.as_object_mut()
        .is_some_and(|m| m.remove(field).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Secrets the tests' steps and cert-manager would make.
    fn made() -> BTreeMap<String, String> {
        [
            ("a/server-tls", TYPE_TLS),
            ("a/ca", TYPE_CA),
            ("a/other-ca", TYPE_CA),
            ("a/client", TYPE_TLS),
            ("a/cert-manager-ca", TYPE_TLS),
        ]
        .into_iter()
        .map(|(k, t)| (k.to_string(), t.to_string()))
        .collect()
    }

    const MTLS: &str = "apiVersion: k8s.nginx.org/v1\nkind: Policy\nmetadata: {name: mtls, namespace: a}\nspec:\n  ingressMTLS: {clientCertSecret: ca}\n";
    const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: app, namespace: a}\nspec:\n  selector: {app: x}\n  ports: [{name: http, port: 80}]\n";

    /// A VirtualServer; its upstream `u` (plain HTTP to app:80) unless `spec` has upstreams.
    fn vs(spec: &str) -> String {
        let upstreams = if spec.contains("upstreams:") {
            ""
        } else {
            "  upstreams: [{name: u, service: app, port: 80}]\n"
        };
        format!(
            "apiVersion: k8s.nginx.org/v1\nkind: VirtualServer\nmetadata: {{name: vs, namespace: a}}\nspec:\n  host: a.example.com\n{upstreams}{spec}"
        )
    }

    fn ingress(annotations: &str, spec: &str) -> String {
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: ing\n  namespace: a\n  annotations: {{{annotations}}}\nspec:\n  ingressClassName: nginx\n{spec}"
        )
    }

    const RULES_A: &str = "  rules:\n  - host: a.example.com\n    http:\n      paths:\n      - {path: /, pathType: Prefix, backend: {service: {name: app, port: {number: 80}}}}\n";

    fn egress(fields: &str) -> String {
        format!(
            "apiVersion: k8s.nginx.org/v1\nkind: Policy\nmetadata: {{name: egress, namespace: a}}\nspec:\n  egressMTLS: {{tlsSecret: client, {fields}}}\n"
        )
    }

    const GOOD_EGRESS: &str =
        "trustedCertSecret: ca, verifyServer: true, sslName: app.a.svc, protocols: TLSv1.3";

    fn ids(docs: &[&str]) -> Vec<&'static str> {
        let text = docs.join("---\n");
        let objects = crate::manifest::load_text(&text, std::path::Path::new("t.yaml"), "default")
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let mut ids: Vec<&str> = find(&objects, &made()).iter().map(|f| f.id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Each case: the trap (its id must be found) and the fixed variant (it must not).
    fn fires(id: &str, trap: &[&str], fixed: &[&str]) {
        let on_trap = ids(trap);
        assert!(
            on_trap.contains(&id),
            "{id} not found on the trap; found {on_trap:?}"
        );
        let on_fixed = ids(fixed);
        assert!(
            !on_fixed.contains(&id),
            "{id} found on the fixed variant: {on_fixed:?}"
        );
    }

    #[test]
    fn plain_http_bypasses_mtls() {
        let tls = "  tls: {secret: server-tls}\n  policies: [{name: mtls}]\n  routes: [{path: /, action: {pass: u}}]\n";
        // verifyClient optional does not require a certificate on HTTPS either: not this finding.
        let optional = MTLS.replace(
            "clientCertSecret: ca",
            "clientCertSecret: ca, verifyClient: optional",
        );
        assert!(!ids(&[&optional, &vs(tls)]).contains(&"plain-http-bypasses-mtls"));
        let redirect = "  tls: {secret: server-tls, redirect: {enable: true}}\n  policies: [{name: mtls}]\n  routes: [{path: /, action: {pass: u}}]\n";
        let on_xfp = "  tls: {secret: server-tls, redirect: {enable: true, basedOn: x-forwarded-proto}}\n  policies: [{name: mtls}]\n  routes: [{path: /, action: {pass: u}}]\n";
        fires(
            "plain-http-bypasses-mtls",
            &[MTLS, &vs(tls)],
            &[MTLS, &vs(redirect)],
        );
        fires(
            "plain-http-bypasses-mtls",
            &[MTLS, &vs(on_xfp)],
            &[MTLS, &vs(redirect)],
        );
        let ing_tls =
            format!("  tls: [{{hosts: [a.example.com], secretName: server-tls}}]\n{RULES_A}");
        fires(
            "plain-http-bypasses-mtls",
            &[
                MTLS,
                &ingress(
                    "nginx.org/policies: mtls, nginx.org/ssl-redirect: \"false\"",
                    &ing_tls,
                ),
            ],
            &[MTLS, &ingress("nginx.org/policies: mtls", &ing_tls)],
        );
    }

    #[test]
    fn ingress_mtls_on_a_route_a_subroute_or_a_minion() {
        let on_route = "  tls: {secret: server-tls}\n  routes: [{path: /, policies: [{name: mtls}], action: {pass: u}}]\n";
        let on_spec = "  tls: {secret: server-tls, redirect: {enable: true}}\n  policies: [{name: mtls}]\n  routes: [{path: /, action: {pass: u}}]\n";
        fires(
            "ingress-mtls-not-on-server",
            &[MTLS, &vs(on_route)],
            &[MTLS, &vs(on_spec)],
        );
        let vsr = |policies: &str| {
            format!(
                "apiVersion: k8s.nginx.org/v1\nkind: VirtualServerRoute\nmetadata: {{name: sub, namespace: a}}\nspec:\n  host: a.example.com\n  upstreams: [{{name: u, service: app, port: 80}}]\n  subroutes: [{{path: /sub, {policies}action: {{pass: u}}}}]\n"
            )
        };
        fires(
            "ingress-mtls-not-on-server",
            &[MTLS, &vsr("policies: [{name: mtls}], ")],
            &[MTLS, &vsr("")],
        );
        let master = |policies: &str| {
            ingress(
                &format!("nginx.org/mergeable-ingress-type: master{policies}"),
                "  tls: [{hosts: [a.example.com], secretName: server-tls}]\n  rules: [{host: a.example.com}]\n",
            )
        };
        let minion = |policies: &str| {
            format!(
                "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: minion\n  namespace: a\n  annotations: {{nginx.org/mergeable-ingress-type: minion{policies}}}\nspec:\n  ingressClassName: nginx\n{RULES_A}"
            )
        };
        fires(
            "ingress-mtls-not-on-server",
            &[MTLS, &master(""), &minion(", nginx.org/policies: mtls")],
            &[MTLS, &master(", nginx.org/policies: mtls"), &minion("")],
        );
    }

    #[test]
    fn ingress_mtls_without_tls() {
        let no_tls = "  policies: [{name: mtls}]\n  routes: [{path: /, action: {pass: u}}]\n";
        let tls = "  tls: {secret: server-tls, redirect: {enable: true}}\n  policies: [{name: mtls}]\n  routes: [{path: /, action: {pass: u}}]\n";
        fires(
            "ingress-mtls-without-tls",
            &[MTLS, &vs(no_tls)],
            &[MTLS, &vs(tls)],
        );
        fires(
            "ingress-mtls-without-tls",
            &[MTLS, &ingress("nginx.org/policies: mtls", RULES_A)],
            &[
                MTLS,
                &ingress(
                    "nginx.org/policies: mtls",
                    &format!(
                        "  tls: [{{hosts: [a.example.com], secretName: server-tls}}]\n{RULES_A}"
                    ),
                ),
            ],
        );
    }

    #[test]
    fn ingress_mtls_ignored_for_a_host_without_tls() {
        let other =
            format!("  tls: [{{hosts: [b.example.com], secretName: server-tls}}]\n{RULES_A}");
        let this =
            format!("  tls: [{{hosts: [a.example.com], secretName: server-tls}}]\n{RULES_A}");
        fires(
            "ingress-mtls-ignored-for-host",
            &[MTLS, &ingress("nginx.org/policies: mtls", &other)],
            &[MTLS, &ingress("nginx.org/policies: mtls", &this)],
        );
    }

    #[test]
    fn ca_secret_of_the_wrong_type() {
        let spec = "  tls: {secret: server-tls, redirect: {enable: true}}\n  policies: [{name: mtls}]\n  routes: [{path: /, action: {pass: u}}]\n";
        let tls_typed = MTLS.replace("clientCertSecret: ca", "clientCertSecret: cert-manager-ca");
        fires(
            "secret-wrong-type",
            &[&tls_typed, &vs(spec)],
            &[MTLS, &vs(spec)],
        );
        // An Opaque Secret is invisible to NIC: "secret doesn't exist or of an unsupported type".
        let opaque = "apiVersion: v1\nkind: Secret\nmetadata: {name: opaque-ca, namespace: a}\ntype: Opaque\nstringData: {ca.crt: x}\n";
        let opaque_ref = MTLS.replace("clientCertSecret: ca", "clientCertSecret: opaque-ca");
        fires(
            "secret-wrong-type",
            &[&opaque_ref, opaque, &vs(spec)],
            &[MTLS, &vs(spec)],
        );
        let route = "  upstreams: [{name: t, service: app, port: 80, tls: {enable: true}}]\n  routes: [{path: /, policies: [{name: egress}], action: {pass: t}}]\n";
        fires(
            "secret-wrong-type",
            &[
                &egress(&GOOD_EGRESS.replace(
                    "trustedCertSecret: ca",
                    "trustedCertSecret: cert-manager-ca",
                )),
                &vs(route),
            ],
            &[&egress(GOOD_EGRESS), &vs(route)],
        );
    }

    #[test]
    fn invalid_policy() {
        let bad = "apiVersion: k8s.nginx.org/v1\nkind: Policy\nmetadata: {name: mtls, namespace: a}\nspec: {}\n";
        fires("policy-invalid", &[bad], &[MTLS]);
    }

    #[test]
    fn policies_nic_answers_500_for() {
        let rate = "apiVersion: k8s.nginx.org/v1\nkind: Policy\nmetadata: {name: rate, namespace: a}\nspec:\n  rateLimit: {rate: 1r/s, key: x, zoneSize: 1M}\n";
        let this =
            format!("  tls: [{{hosts: [a.example.com], secretName: server-tls}}]\n{RULES_A}");
        fires(
            "policy-answers-500",
            &[rate, &ingress("nginx.org/policies: rate", &this)],
            &[rate, &ingress("", &this)],
        );
        let no_ca_crt = "apiVersion: v1\nkind: Secret\nmetadata: {name: ca, namespace: a}\ntype: nginx.org/ca\nstringData: {tls.crt: x}\n";
        let spec = "  tls: {secret: server-tls, redirect: {enable: true}}\n  policies: [{name: mtls}]\n  routes: [{path: /, action: {pass: u}}]\n";
        fires(
            "policy-answers-500",
            &[MTLS, no_ca_crt, &vs(spec)],
            &[MTLS, &vs(spec)],
        );
    }

    #[test]
    fn references_to_nothing() {
        let missing = MTLS.replace("clientCertSecret: ca", "clientCertSecret: nowhere");
        fires("reference-not-found", &[&missing], &[MTLS]);
        let spec = "  tls: {secret: server-tls, redirect: {enable: true}}\n  policies: [{name: mtls}]\n  routes: [{path: /, action: {pass: u}}]\n";
        fires("reference-not-found", &[&vs(spec)], &[MTLS, &vs(spec)]);
    }

    #[test]
    fn a_second_policy_of_a_kind_is_ignored() {
        let second = "apiVersion: k8s.nginx.org/v1\nkind: Policy\nmetadata: {name: mtls2, namespace: a}\nspec:\n  ingressMTLS: {clientCertSecret: ca}\n";
        let two = "  tls: {secret: server-tls, redirect: {enable: true}}\n  policies: [{name: mtls}, {name: mtls2}]\n  routes: [{path: /, action: {pass: u}}]\n";
        let one = "  tls: {secret: server-tls, redirect: {enable: true}}\n  policies: [{name: mtls}]\n  routes: [{path: /, action: {pass: u}}]\n";
        fires(
            "policy-ignored",
            &[MTLS, second, &vs(two)],
            &[MTLS, second, &vs(one)],
        );
    }

    #[test]
    fn crl_file_name() {
        let crl = MTLS.replace(
            "clientCertSecret: ca",
            "clientCertSecret: ca, crlFileName: webapp.crl",
        );
        fires("crl-file-not-created", &[&crl], &[MTLS]);
    }

    #[test]
    fn egress_defaults() {
        fires(
            "verify-server-without-ssl-name",
            &[&egress(
                "trustedCertSecret: ca, verifyServer: true, protocols: TLSv1.3",
            )],
            &[&egress(GOOD_EGRESS)],
        );
        fires(
            "egress-protocols-without-tls13",
            &[&egress(
                "trustedCertSecret: ca, verifyServer: true, sslName: app.a.svc",
            )],
            &[&egress(GOOD_EGRESS)],
        );
        fires(
            "egress-protocols-without-tls13",
            &[&egress(
                "trustedCertSecret: ca, verifyServer: true, sslName: app.a.svc, protocols: TLSv1.2",
            )],
            &[&egress(&GOOD_EGRESS.replace("TLSv1.3", "TLSv1.2 TLSv1.3"))],
        );
        fires(
            "egress-without-server-verification",
            &[&egress("protocols: TLSv1.3")],
            &[&egress(GOOD_EGRESS)],
        );
    }

    #[test]
    fn session_reuse_across_routes_of_one_upstream() {
        let other =
            egress(&GOOD_EGRESS.replace("trustedCertSecret: ca", "trustedCertSecret: other-ca"))
                .replace("name: egress,", "name: egress-other,");
        let shared = |reuse: &str| {
            format!(
                "apiVersion: k8s.nginx.org/v1\nkind: VirtualServer\nmetadata: {{name: vs, namespace: a}}\nspec:\n  host: a.example.com\n  upstreams: [{{name: t, service: app, port: 80, tls: {{enable: true}}}}{reuse}]\n  routes:\n  - {{path: /a, policies: [{{name: egress}}], action: {{pass: t}}}}\n  - {{path: /b, policies: [{{name: egress-other}}], action: {{pass: {}}}}}\n",
                if reuse.is_empty() { "t" } else { "t2" }
            )
        };
        fires(
            "session-reuse-masks-verification",
            &[&egress(GOOD_EGRESS), &other, &shared("")],
            &[
                &egress(GOOD_EGRESS),
                &other,
                &shared(", {name: t2, service: app, port: 80, tls: {enable: true}}"),
            ],
        );
        let no_reuse = |p: &str| {
            p.replace(
                "protocols: TLSv1.3",
                "protocols: TLSv1.3, sessionReuse: false",
            )
        };
        fires(
            "session-reuse-masks-verification",
            &[&egress(GOOD_EGRESS), &other, &shared("")],
            &[
                &no_reuse(&egress(GOOD_EGRESS)),
                &no_reuse(&other),
                &shared(""),
            ],
        );
    }

    #[test]
    fn egress_toward_a_plain_http_upstream() {
        let plain = "  routes: [{path: /, policies: [{name: egress}], action: {pass: u}}]\n";
        let tls = "  upstreams: [{name: u, service: app, port: 80, tls: {enable: true}}]\n  routes: [{path: /, policies: [{name: egress}], action: {pass: u}}]\n";
        fires(
            "plain-http-to-tls-upstream",
            &[&egress(GOOD_EGRESS), &vs(plain)],
            &[&egress(GOOD_EGRESS), &vs(tls)],
        );
        fires(
            "plain-http-to-tls-upstream",
            &[
                &egress(GOOD_EGRESS),
                &ingress("nginx.org/policies: egress", RULES_A),
            ],
            &[
                &egress(GOOD_EGRESS),
                &ingress(
                    "nginx.org/policies: egress, nginx.org/ssl-services: app",
                    RULES_A,
                ),
            ],
        );
        // No egress policy, but the Service's port is named https.
        let https = SERVICE.replace("name: http,", "name: https,");
        fires(
            "plain-http-to-tls-upstream",
            &[&https, &ingress("", RULES_A)],
            &[SERVICE, &ingress("", RULES_A)],
        );
        fires(
            "plain-http-to-tls-upstream",
            &[&https, &vs("  routes: [{path: /, action: {pass: u}}]\n")],
            &[SERVICE, &vs("  routes: [{path: /, action: {pass: u}}]\n")],
        );
    }

    #[test]
    fn optional_verification_nobody_checks() {
        let policy = |v: &str| {
            MTLS.replace(
                "clientCertSecret: ca",
                &format!("clientCertSecret: ca, verifyClient: {v}"),
            )
        };
        let spec = "  tls: {secret: server-tls, redirect: {enable: true}}\n  policies: [{name: mtls}]\n  routes: [{path: /, action: {pass: u}}]\n";
        let passes = "  tls: {secret: server-tls, redirect: {enable: true}}\n  policies: [{name: mtls}]\n  routes:\n  - path: /\n    action:\n      proxy:\n        upstream: u\n        requestHeaders: {set: [{name: X-Client-Verify, value: \"${ssl_client_verify}\"}]}\n";
        fires(
            "optional-verification-unchecked",
            &[&policy("optional_no_ca"), &vs(spec)],
            &[&policy("optional_no_ca"), &vs(passes)],
        );
        fires(
            "optional-verification-unchecked",
            &[&policy("optional"), &vs(spec)],
            &[&policy("\"on\""), &vs(spec)],
        );
    }

    /// A field the typed views lack is reported, and the rest is still linted.
    #[test]
    fn fields_lint_does_not_read_are_named() {
        let spec = "  tls: {secret: server-tls}\n  policies: [{name: mtls}]\n  routes: [{path: /, splits: [{weight: 100, action: {pass: u}}]}]\n";
        let text = [MTLS, &vs(spec)].join("---\n");
        let objects = crate::manifest::load_text(&text, std::path::Path::new("t.yaml"), "default")
            .expect("objects");
        let found = find(&objects, &made());
        let not_linted = found
            .iter()
            .find(|f| f.id == "not-linted")
            .expect("not-linted");
        assert!(
            not_linted.message.contains("spec.routes[0].splits"),
            "{}",
            not_linted.message
        );
        assert!(
            found.iter().any(|f| f.id == "plain-http-bypasses-mtls"),
            "{found:?}"
        );
    }
}
