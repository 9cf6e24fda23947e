//! Ingress → `<ns>-<name>.conf`, as `internal/configs/ingress.go` and
//! `version1/nginx.ingress.tmpl` produce it (OSS, default ConfigMap): standard
//! Ingresses and mergeable master/minion groups, with `nginx.org/policies`
//! (NIC 5.5), `nginx.org/ssl-services` and `nginx.org/ssl-redirect`.

use crate::manifest::NamespacedName;
use crate::manifest::ServicePort;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::policy::{self, Context, Inputs, PoliciesCfg};
use super::render::{self, Conf, RenderEnv};
use super::{Endpoints, INGRESS_CLASS, ResourceState};
use crate::manifest::ControllerState;
use crate::manifest::kinds::{Ingress, IngressPath, IngressSpec, IngressTls, PolicyRef};
use crate::manifest::{ManifestError, Object};

use super::ingress_validation::{
    CONNECT_TIMEOUT, MAX_BODY, MERGEABLE, READ_TIMEOUT, REDIRECT_CODE, SEND_TIMEOUT,
    SSL_REDIRECT_DEPRECATED,
};
pub(crate) use super::ingress_validation::{POLICIES, SSL_REDIRECT, SSL_SERVICES};

/// `minionInheritanceList` (annotations.go), the part the local substrate
/// renders: a minion without these takes its master's.
const MINION_INHERITS: [&str; 4] = [CONNECT_TIMEOUT, READ_TIMEOUT, SEND_TIMEOUT, MAX_BODY];

/// An Ingress as NIC reads it.
pub(crate) struct Parsed<'a> {
    pub object: &'a Object,
    pub spec: IngressSpec,
    pub kind: Mergeable,
}

impl Parsed<'_> {
    /// The host of its first rule: what masters and minions are matched by.
    pub(crate) fn host(&self) -> String {
        self.spec
            .rules
            .first()
            .map(|r| r.host.clone())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mergeable {
    Standard,
    Master,
    Minion,
}

/// What the local substrate cannot honour in an Ingress, each naming its field.
pub(crate) fn unsupported(object: &Object) -> Vec<ManifestError> {
    let mut out: Vec<ManifestError> = object
        .annotations
        .keys()
        .filter(|key| {
            (key.starts_with("nginx.org/") || key.starts_with("nginx.com/"))
                && !super::ingress_validation::modelled().any(|m| m == key.as_str())
        })
        .map(|key| {
            object.error(
                "metadata.annotations",
                format!("annotation {key} is not rendered by the local substrate; run this scenario on kind"),
            )
        })
        .collect();
    if object
        .parse::<Ingress>()
        .is_ok_and(|i| i.spec.default_backend.is_some())
    {
        out.push(object.error(
            "spec.defaultBackend",
            "defaultBackend is not rendered by the local substrate",
        ));
    }
    out
}

/// Read an Ingress; `Ok(None)` when NIC would not process it (another class).
pub(crate) fn parse(object: &Object) -> Result<Option<Parsed<'_>>, ManifestError> {
    let spec = object.parse::<Ingress>()?.spec;
    // HasCorrectIngressClass: the deprecated annotation, when set, wins over the field.
    let annotated = object
        .annotations
        .get("kubernetes.io/ingress.class")
        .filter(|c| !c.is_empty());
    match annotated
        .map(String::as_str)
        .or(spec.ingress_class_name.as_deref())
    {
        Some(INGRESS_CLASS) => {}
        Some(_) => return Ok(None),
        None => {
            return Err(object.error(
                "spec",
                "no ingressClassName: NIC (without -watch-ingress-without-class) would ignore this Ingress; set ingressClassName: nginx",
            ));
        }
    }
    // isMaster / isMinion: any other value is a standard Ingress, which NIC's
    // validation then rejects ("must be one of: 'master' or 'minion'").
    let kind = match object.annotations.get(MERGEABLE).map(String::as_str) {
        Some("master") => Mergeable::Master,
        Some("minion") => Mergeable::Minion,
        _ => Mergeable::Standard,
    };
    Ok(Some(Parsed { object, spec, kind }))
}

/// NIC's Ingress validation (`validateIngress`); `Err` is the event text.
fn validate(p: &Parsed<'_>) -> Result<(), String> {
    super::ingress_validation::validate(&p.object.annotations, &p.spec)
}

/// Whether NIC keeps this Ingress (it passes validation).
pub(crate) fn is_valid(p: &Parsed<'_>) -> bool {
    validate(p).is_ok()
}

/// A minion whose host has no valid master: rejected if invalid itself, else
/// NIC's warning (configuration.go `addProblemsForOrphanMinions`).
pub(crate) fn orphan_minion(p: &Parsed<'_>) -> ResourceState {
    match validate(p) {
        Err(e) => rejected(p.object, e),
        Ok(()) => ResourceState::new(
            p.object,
            ControllerState::Warning,
            "NoIngressMasterFound",
            "Ingress master is invalid or doesn't exist".into(),
            Vec::new(),
        ),
    }
}

/// `GetPolicyRefsFromAnnotation` (internal/k8s/policies): each trimmed entry,
/// `ns/name` when it has exactly one `/`, as written otherwise; nothing dropped.
fn annotation_refs(o: &Object) -> Vec<PolicyRef> {
    let Some(value) = o.annotations.get(POLICIES).filter(|v| !v.is_empty()) else {
        return Vec::new();
    };
    value
        .split(',')
        .map(str::trim)
        .map(|entry| {
            let parts: Vec<&str> = entry.split('/').collect();
            let (namespace, name) = match parts.as_slice() {
                [ns, name] => (*ns, *name),
                _ => (o.namespace(), entry),
            };
            PolicyRef {
                name: name.to_string(),
                namespace: Some(namespace.to_string()),
            }
        })
        .collect()
}

/// `getIngressPolicyRefs`: the annotation's references, each policy once.
pub(crate) fn policy_refs(o: &Object) -> Vec<PolicyRef> {
    let mut refs: Vec<PolicyRef> = Vec::new();
    for r in annotation_refs(o) {
        if !refs
            .iter()
            .any(|x| x.name == r.name && x.namespace == r.namespace)
        {
            refs.push(r);
        }
    }
    refs
}

/// Controller-side warnings (`createIngressEx`), reported before generation:
/// policies that are missing or invalid (`getPolicies`), then the first secret
/// error of the ingressMTLS policies and of the egressMTLS policies
/// (`addIngressMTLSSecretRefs`, `addEgressMTLSSecretRefs`).
fn policy_errors(
    o: &Object,
    refs: &[PolicyRef],
    all_policies: &BTreeMap<String, Result<(), String>>,
    inputs: &Inputs<'_>,
) -> Vec<String> {
    let mut errors = Vec::new();
    let mut found = Vec::new();
    for r in refs {
        let key = format!(
            "{}/{}",
            r.namespace.as_deref().unwrap_or(o.namespace()),
            r.name
        );
        match all_policies.get(&key) {
            None => errors.push(format!("policy {key} doesn't exist")),
            Some(Err(e)) => errors.push(e.clone()),
            Some(Ok(())) => {
                if let Some(spec) = inputs.policies.get(&key) {
                    found.push((key.split('/').next().unwrap_or_default().to_string(), spec));
                }
            }
        }
    }
    let secret_error = |namespace: &str, name: &Option<String>| {
        let name = name.as_deref().unwrap_or_default();
        inputs
            .secrets
            .get(&NamespacedName::new(namespace, name))
            .error
    };
    // Only the first ingressMTLS policy's secret is looked at.
    if let Some(e) = found
        .iter()
        .find_map(|(ns, p)| p.ingress_mtls.as_ref().map(|m| (ns, m)))
        .and_then(|(ns, m)| secret_error(ns, &m.client_cert_secret))
    {
        errors.push(e);
    }
    let egress_error = found.iter().find_map(|(ns, p)| {
        let e = p.egress_mtls.as_ref()?;
        [&e.tls_secret, &e.trusted_cert_secret]
            .into_iter()
            .filter(|s| s.as_deref().is_some_and(|s| !s.is_empty()))
            .find_map(|s| secret_error(ns, s))
    });
    errors.extend(egress_error);
    errors
        .into_iter()
        .map(|err| format!("Policy error for Ingress {}: {err}", o.id.key()))
        .collect()
}

/// The file and states NIC produces for an Ingress (and its minions).
pub(crate) struct IngressOutput {
    pub file_name: String,
    pub config: Option<String>,
    pub states: Vec<ResourceState>,
    pub hosts: Vec<String>,
}

/// Event text: `added or updated[ with warning(s): …][ ; with warning(s): …]`.
fn event(
    o: &Object,
    controller: &[String],
    generation: &[String],
    mergeable: bool,
) -> ResourceState {
    let key = o.id.key();
    let mut message = format!("Configuration for {key} was added or updated");
    if !controller.is_empty() {
        let _ = write!(message, " with warning(s): {}", controller.join("; "));
    }
    if !generation.is_empty() {
        // Regular: "added or updated %s" of "; with warning(s): …"; master:
        // "added or updated" + " " + "with warning(s): …" when it is the first part.
        let sep = match (controller.is_empty(), mergeable) {
            (true, false) => " ;",
            (true, true) => "",
            (false, _) => ";",
        };
        let _ = write!(message, "{sep} with warning(s): {}", generation.join("; "));
    }
    if controller.is_empty() && generation.is_empty() && !mergeable {
        message.push(' ');
    }
    let warnings: Vec<String> = controller.iter().chain(generation).cloned().collect();
    let (state, reason) = if warnings.is_empty() {
        (ControllerState::Valid, "AddedOrUpdated")
    } else {
        (ControllerState::Warning, "AddedOrUpdatedWithWarning")
    };
    ResourceState::new(o, state, reason, message, warnings)
}

fn rejected(o: &Object, error: String) -> ResourceState {
    ResourceState::new(o, ControllerState::Invalid, "Rejected", error, Vec::new())
}

struct Ctx<'a> {
    inputs: &'a Inputs<'a>,
    endpoints: &'a dyn Endpoints,
    env: &'a RenderEnv,
    /// The master, while rendering its minions.
    master: Option<&'a Object>,
}

/// A standard Ingress.
pub(crate) fn standard(
    p: &Parsed<'_>,
    inputs: &Inputs<'_>,
    all_policies: &BTreeMap<String, Result<(), String>>,
    endpoints: &dyn Endpoints,
    env: &RenderEnv,
) -> IngressOutput {
    let o = p.object;
    let file_name = format!("{}-{}.conf", o.namespace(), o.name());
    if let Err(e) = validate(p) {
        return IngressOutput {
            file_name,
            config: None,
            states: vec![rejected(o, e)],
            hosts: Vec::new(),
        };
    }
    let ctx = Ctx {
        inputs,
        endpoints,
        env,
        master: None,
    };
    let refs = policy_refs(o);
    let controller = policy_errors(o, &annotation_refs(o), all_policies, inputs);
    let mut warnings: Vec<String> = deprecation_warning(o).into_iter().collect();
    let policies = policy::generate(
        &refs,
        Context::Spec,
        p.spec.tls.is_some(),
        inputs,
        &mut warnings,
    );
    let mut upstreams = BTreeMap::new();
    let mut servers = Conf::default();
    let mut hosts = Vec::new();
    for rule in &p.spec.rules {
        hosts.push(rule.host.clone());
        let paths = rule
            .http
            .as_ref()
            .map(|h| h.paths.as_slice())
            .unwrap_or(&[]);
        let locations = locations(
            &ctx,
            o,
            &rule.host,
            paths,
            &PoliciesCfg::default(),
            None,
            &mut upstreams,
        );
        server(
            &ctx,
            o,
            &p.spec,
            &rule.host,
            &policies,
            &locations,
            &mut servers,
            &mut warnings,
        );
    }
    let text = file(o, &upstreams, servers);
    IngressOutput {
        file_name,
        config: Some(text),
        states: vec![event(o, &controller, &warnings, false)],
        hosts,
    }
}

/// A mergeable group: the master's server with every minion's locations.
pub(crate) fn mergeable(
    master: &Parsed<'_>,
    minions: &[&Parsed<'_>],
    inputs: &Inputs<'_>,
    all_policies: &BTreeMap<String, Result<(), String>>,
    endpoints: &dyn Endpoints,
    env: &RenderEnv,
) -> IngressOutput {
    let m = master.object;
    let file_name = format!("{}-{}.conf", m.namespace(), m.name());
    let mut states = Vec::new();
    if let Err(e) = validate(master) {
        return IngressOutput {
            file_name,
            config: None,
            states: vec![rejected(m, e)],
            hosts: Vec::new(),
        };
    }
    let host = master.spec.rules[0].host.clone();
    let master_inputs = Inputs {
        owner_namespace: m.namespace(),
        ..*inputs
    };
    let ctx = Ctx {
        inputs: &master_inputs,
        endpoints,
        env,
        master: None,
    };
    let refs = policy_refs(m);
    let controller = policy_errors(m, &annotation_refs(m), all_policies, &master_inputs);
    // Minions lose this annotation before generation (minionDenylist); the master keeps it.
    let mut master_warnings: Vec<String> = deprecation_warning(m).into_iter().collect();
    let policies = policy::generate(
        &refs,
        Context::Spec,
        master.spec.tls.is_some(),
        &master_inputs,
        &mut master_warnings,
    );
    let mut upstreams = BTreeMap::new();
    let mut locs = Conf::default();
    let mut sorted: Vec<&&Parsed<'_>> = minions.iter().collect();
    sorted.sort_by_key(|p| p.object.id.key());
    for minion in sorted {
        let o = minion.object;
        if let Err(e) = validate(minion) {
            states.push(rejected(o, e));
            continue;
        }
        let minion_inputs = Inputs {
            owner_namespace: o.namespace(),
            ..*inputs
        };
        let minion_ctx = Ctx {
            inputs: &minion_inputs,
            endpoints,
            env,
            master: Some(m),
        };
        let minion_refs = policy_refs(o);
        let minion_controller = policy_errors(o, &annotation_refs(o), all_policies, &minion_inputs);
        let mut minion_warnings = Vec::new();
        let minion_policies = policy::generate(
            &minion_refs,
            Context::Minion,
            false,
            &minion_inputs,
            &mut minion_warnings,
        );
        let paths = minion.spec.rules[0]
            .http
            .as_ref()
            .map(|h| h.paths.as_slice())
            .unwrap_or(&[]);
        let text = locations(
            &minion_ctx,
            o,
            &host,
            paths,
            &minion_policies,
            Some(o),
            &mut upstreams,
        );
        locs.raw(&text);
        states.push(event(o, &minion_controller, &minion_warnings, true));
    }
    let mut servers = Conf::default();
    server(
        &ctx,
        m,
        &master.spec,
        &host,
        &policies,
        &locs.finish(),
        &mut servers,
        &mut master_warnings,
    );
    states.insert(0, event(m, &controller, &master_warnings, true));
    let text = file(m, &upstreams, servers);
    IngressOutput {
        file_name,
        config: Some(text),
        states,
        hosts: vec![host],
    }
}

fn file(o: &Object, upstreams: &BTreeMap<String, String>, servers: Conf) -> String {
    let mut c = Conf::default();
    c.line(0, &format!("# configuration for {}", o.id.key()));
    for text in upstreams.values() {
        c.raw(text);
    }
    c.blank();
    c.raw(&servers.finish());
    c.finish()
}

#[allow(clippy::too_many_arguments)]
fn server(
    ctx: &Ctx<'_>,
    o: &Object,
    spec: &IngressSpec,
    host: &str,
    policies: &PoliciesCfg,
    locations: &str,
    c: &mut Conf,
    warnings: &mut Vec<String>,
) {
    let env = ctx.env;
    let tls = tls_for_host(spec, host);
    let cert = tls.map(|t| match t.secret_name.as_deref().filter(|s| !s.is_empty()) {
        None => {
            warnings.push(format!("TLS termination for host '{host}' requires specifying a TLS secret or configuring a global wildcard TLS secret"));
            None
        }
        Some(secret) => {
            let r = ctx
                .inputs
                .secrets
                .get(&NamespacedName::new(o.namespace(), secret));
            match (&r.type_, &r.error) {
                (Some(t), _) if t != super::secrets::TYPE_TLS => {
                    warnings.push(format!("TLS secret {secret} is of a wrong type '{t}', must be 'kubernetes.io/tls'"));
                    None
                }
                (_, Some(e)) => {
                    warnings.push(format!("TLS secret {secret} is invalid: {e}"));
                    None
                }
                _ => Some(r.path),
            }
        }
    });
    let mut ingress_mtls = policies.ingress_mtls.as_ref();
    if cert.is_none() && ingress_mtls.is_some() {
        warnings.push(ingress_mtls_ignored_for_host(host));
        ingress_mtls = None;
    }
    c.line(0, "server {");
    let http: Vec<String> = env
        .http_listen
        .iter()
        .map(|l| format!("listen {l};"))
        .collect();
    c.line(1, &http.join(""));
    if let Some(cert) = &cert {
        let https: Vec<String> = env
            .https_listen
            .iter()
            .map(|l| format!("listen {l} ssl;"))
            .collect();
        c.line(1, &https.join(""));
        render::ssl_certificate(c, env, cert.as_deref());
    }
    if let Some(m) = ingress_mtls {
        render::ingress_mtls(c, 1, m);
    }
    render::access_control(c, 1, &policies.allow, &policies.deny);
    c.blank();
    c.line(1, "server_tokens on;");
    if let Some(code) = policies.error_return {
        c.line(1, &format!("return {code};"));
    }
    c.blank();
    c.line(
        1,
        &format!("server_name {};", if host.is_empty() { "_" } else { host }),
    );
    c.line(1, "set $resource_type \"ingress\";");
    c.line(1, &format!("set $resource_name \"{}\";", o.name()));
    c.line(
        1,
        &format!("set $resource_namespace \"{}\";", o.namespace()),
    );
    c.line(1, "set $service \"-\";");
    if let Some(e) = &policies.egress_mtls {
        render::egress_mtls(c, 1, "proxy", e, env);
    }
    if cert.is_some() && ssl_redirect(o) {
        let code = redirect_code(o);
        c.line(1, "if ($scheme = http) {");
        c.line(2, &format!("return {code} https://$host:443$request_uri;"));
        c.line(1, "}");
    }
    c.raw(locations);
    c.line(0, "}");
}

/// The `spec.tls` entry that covers `host`, if any: a host without one is served without TLS.
/// When several entries name the host, the last one wins (`addSSLConfig` keeps looping).
pub(crate) fn tls_for_host<'a>(spec: &'a IngressSpec, host: &str) -> Option<&'a IngressTls> {
    spec.tls.as_ref().and_then(|list| {
        list.iter()
            .rev()
            .find(|t| t.hosts.iter().any(|h| h == host))
    })
}

/// NIC's warning when an Ingress's ingressMTLS meets a host without TLS.
pub(crate) fn ingress_mtls_ignored_for_host(host: &str) -> String {
    format!(
        "IngressMTLS policy is ignored for host {host:?} because TLS is not enabled for that host"
    )
}

/// `nginx.org/ssl-redirect`, else the deprecated `ingress.kubernetes.io/ssl-redirect`
/// (default true): plain HTTP to a TLS host is redirected to HTTPS (parseAnnotations).
pub(crate) fn ssl_redirect(o: &Object) -> bool {
    o.annotations
        .get(SSL_REDIRECT)
        .or_else(|| o.annotations.get(SSL_REDIRECT_DEPRECATED))
        .and_then(|v| super::field::parse_bool(v))
        .unwrap_or(true)
}

/// `nginx.org/http-redirect-code` (default 301).
fn redirect_code(o: &Object) -> u16 {
    o.annotations
        .get(REDIRECT_CODE)
        .and_then(|v| super::ingress_validation::parse_http_redirect_code(v).ok())
        .unwrap_or(301)
}

/// generateNginxCfg's warning for the deprecated annotation.
fn deprecation_warning(o: &Object) -> Option<String> {
    o.annotations.contains_key(SSL_REDIRECT_DEPRECATED).then(|| {
        format!(
            "The annotation '{SSL_REDIRECT_DEPRECATED}' is deprecated and will be removed. Please use '{SSL_REDIRECT}' instead."
        )
    })
}

/// The services `nginx.org/ssl-services` names: NGINX proxies to them over TLS.
pub(crate) fn ssl_services(o: &Object) -> Vec<&str> {
    o.annotations
        .get(SSL_SERVICES)
        .map(|v| v.split(',').collect())
        .unwrap_or_default()
}

/// The `upstream` block of an Ingress path (what `$proxy_host` is).
pub(crate) fn upstream_name(o: &Object, host: &str, service: &str, port: &str) -> String {
    format!(
        "{}-{}-{}-{service}-{port}",
        o.namespace(),
        o.name(),
        if host.is_empty() { "_" } else { host },
    )
}

/// Locations of one rule (or of a minion, when `minion` is set), adding upstreams.
fn locations(
    ctx: &Ctx<'_>,
    o: &Object,
    host: &str,
    paths: &[IngressPath],
    policies: &PoliciesCfg,
    minion: Option<&Object>,
    upstreams: &mut BTreeMap<String, String>,
) -> String {
    let ssl_services = ssl_services(o);
    // mergeMasterAnnotationsIntoMinion: what the minion does not set, its master's.
    let annotation = |k: &str| {
        o.annotations.get(k).or_else(|| {
            minion
                .and(ctx.master)
                .filter(|_| MINION_INHERITS.contains(&k))
                .and_then(|m| m.annotations.get(k))
        })
    };
    // parseAnnotations: times as ParseTime writes them, the body size as written.
    let time = |k: &str| {
        annotation(k)
            .and_then(|v| super::field::parse_time(v))
            .unwrap_or_else(|| "60s".into())
    };
    let max_body = annotation(MAX_BODY).map_or("1m", String::as_str);
    let mut c = Conf::default();
    for path in paths {
        let svc = &path.backend.service;
        let port = svc
            .port
            .number
            .map(|n| n.to_string())
            .or_else(|| svc.port.name.clone())
            .unwrap_or_default();
        let name = upstream_name(o, host, &svc.name, &port);
        upstreams
            .entry(name.clone())
            .or_insert_with(|| upstream(ctx, o, &name, &svc.name, svc.port.number));
        let location = match (path.path_type.as_str(), path.path.as_str()) {
            (_, "") => "/".to_string(),
            ("Exact", p) => format!("= {p}"),
            (_, p) => p.to_string(),
        };
        c.line(1, &format!("location {location} {{"));
        c.line(2, &format!("set $service \"{}\";", svc.name));
        if let Some(m) = minion {
            c.line(2, &format!("# location for minion {}", m.id.key()));
            c.line(2, &format!("set $resource_name \"{}\";", m.name()));
            c.line(
                2,
                &format!("set $resource_namespace \"{}\";", m.namespace()),
            );
        }
        if let Some(code) = policies.error_return {
            c.line(2, &format!("return {code};"));
        }
        render::access_control(&mut c, 2, &policies.allow, &policies.deny);
        if let Some(e) = &policies.egress_mtls {
            render::egress_mtls(&mut c, 2, "proxy", e, ctx.env);
        }
        c.line(2, "proxy_http_version 1.1;");
        c.line(
            2,
            &format!("proxy_connect_timeout {};", time(CONNECT_TIMEOUT)),
        );
        c.line(2, &format!("proxy_read_timeout {};", time(READ_TIMEOUT)));
        c.line(2, &format!("proxy_send_timeout {};", time(SEND_TIMEOUT)));
        c.line(2, &format!("client_max_body_size {max_body};"));
        c.line(2, "proxy_set_header Host $host;");
        c.line(2, "proxy_set_header X-Real-IP $remote_addr;");
        c.line(
            2,
            "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        );
        c.line(2, "proxy_set_header X-Forwarded-Host $host;");
        c.line(2, "proxy_set_header X-Forwarded-Port $server_port;");
        c.line(2, "proxy_set_header X-Forwarded-Proto $scheme;");
        c.line(2, "proxy_buffering on;");
        let scheme = if ssl_services.contains(&svc.name.as_str()) {
            "https"
        } else {
            "http"
        };
        c.line(2, &format!("proxy_pass {scheme}://{name};"));
        c.line(1, "}");
        c.blank();
    }
    c.finish()
}

fn upstream(ctx: &Ctx<'_>, o: &Object, name: &str, service: &str, port: Option<u16>) -> String {
    let mut servers = port
        .and_then(|p| {
            ctx.endpoints
                .lookup(&ServicePort::new(o.namespace(), service, p))
                .ok()
        })
        .unwrap_or_default();
    servers.sort();
    if servers.is_empty() {
        servers.push(ctx.env.ingress_no_endpoints.clone());
    }
    let mut c = Conf::default();
    c.line(0, &format!("upstream {name} {{"));
    c.line(1, &format!("zone {name} 256k;"));
    c.line(1, "random two least_conn;");
    for s in servers {
        c.line(
            1,
            &format!("server {s} max_fails=1 fail_timeout=10s max_conns=0;"),
        );
    }
    c.line(0, "}");
    c.blank();
    c.finish()
}
