//! The local substrate's NGINX Ingress Controller: from Policies, `VirtualServers`
//! and Secrets to the files NIC 5.5 writes (conf.d, secrets) and the statuses
//! and warnings it reports. Fidelity to the controller is tested against NIC's
//! own template snapshots.

pub(crate) mod field;
pub(crate) mod ingress;
pub(crate) mod ingress_validation;
pub(crate) mod policy;
pub(crate) mod render;
pub(crate) mod routing;
pub(crate) mod secrets;
pub(crate) mod virtualserver;
pub(crate) mod vs_validation;

#[cfg(test)]
mod fidelity_ingress_tests;
#[cfg(test)]
mod fidelity_policy_tests;
#[cfg(test)]
mod fidelity_secret_tests;
#[cfg(test)]
mod fidelity_tests;
#[cfg(test)]
mod fidelity_vs_config_tests;
#[cfg(test)]
mod fidelity_vs_tests;

use crate::manifest::{NamespacedName, ServicePort};
use crate::scenario::steps::Secrets;
use std::collections::BTreeMap;

use crate::manifest::kinds::{Policy, PolicySpec, VirtualServer};
use crate::manifest::{Kind, ManifestError, Object};
pub(crate) use crate::report::ResourceState;

pub(crate) use render::RenderEnv;
pub(crate) use secrets::SecretFile;

/// NIC's ingress class.
pub(crate) const INGRESS_CLASS: &str = "nginx";

/// A host that two resources of one scenario both claim: the second, with
/// the first's file:line. NIC gives the host to the older resource and, of
/// two created in the same second, to the one with the larger UID
/// (`chooseObjectMetaWinner`, internal/k8s/configuration.go). A run applies
/// a scenario's objects within a second or two, so on a cluster which one
/// serves the host is chance; the local render would always pick the first
/// in file order. A run refuses it on every substrate rather than give a
/// verdict that depends on which resource won.
pub(crate) fn host_conflict(objects: &[Object]) -> Option<ManifestError> {
    let mut claimed: BTreeMap<String, &Object> = BTreeMap::new();
    for (object, field, host) in host_claims(objects) {
        if let Some(first) = claimed.get(&host).filter(|first| first.id != object.id) {
            return Some(object.error(
                &field,
                format!(
                    "host {host} is also claimed by {} ({}): NIC gives a host to the older resource, \
                     and of two created in the same second to the one with the larger UID, so on a \
                     cluster which one serves it would be chance; give each resource its own host \
                     (a mergeable master and its minions share one by design)",
                    first.id,
                    first.origin()
                ),
            ));
        }
        claimed.insert(host, object);
    }
    None
}

/// The hosts NIC serves for valid resources of its class: each VirtualServer's
/// `spec.host`, and each rule's host of an Ingress that is not a minion.
fn host_claims(objects: &[Object]) -> Vec<(&Object, String, String)> {
    let mut out = Vec::new();
    for object in objects {
        match object.id.kind {
            Kind::VirtualServer => {
                let Ok(vs) = object.parse::<VirtualServer>() else {
                    continue;
                };
                let class = vs.spec.ingress_class_name.as_deref().unwrap_or("");
                // NIC hands hosts only to resources that pass its validation.
                let valid = vs_validation::validate(&vs.spec, object.namespace()).is_ok();
                if (class.is_empty() || class == INGRESS_CLASS) && valid {
                    out.push((object, "spec.host".to_string(), vs.spec.host));
                }
            }
            Kind::Ingress => {
                let Ok(Some(parsed)) = ingress::parse(object) else {
                    continue;
                };
                if parsed.kind == ingress::Mergeable::Minion
                    || ingress_validation::validate(&object.annotations, &parsed.spec).is_err()
                {
                    continue;
                }
                for (i, rule) in parsed.spec.rules.iter().enumerate() {
                    if !rule.host.is_empty() {
                        out.push((object, format!("spec.rules[{i}].host"), rule.host.clone()));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Service endpoints as NIC sees them.
pub(crate) trait Endpoints {
    /// The `address:port` of each endpoint of `service:port`, or why NIC has
    /// none, in the words NIC logs (its log, not an event: the resource stays
    /// Valid and nginx proxies to its 502 server).
    fn lookup(&self, service: &ServicePort) -> Result<Vec<String>, String>;
}

/// Why NIC OSS finds no endpoints for a Service, from the objects alone
/// (`getEndpointsForIngressBackend` in NIC 5.5.4's controller.go).
pub(crate) fn service_problem(objects: &[Object], service: &NamespacedName) -> Option<String> {
    let NamespacedName {
        namespace,
        name: service,
    } = service;
    let Some(found) = objects
        .iter()
        .find(|o| o.id.kind == Kind::Service && o.namespace() == namespace && o.name() == service)
    else {
        return Some(format!(
            "error getting service {service}: service \"{service}\" not found"
        ));
    };
    let external = found
        .parse::<crate::manifest::kinds::Service>()
        .ok()
        .and_then(|s| s.spec.type_)
        .is_some_and(|t| t == "ExternalName");
    external.then(|| {
        format!(
            "error retrieving endpoints for the service {service}: type ExternalName Services feature is only available in NGINX Plus"
        )
    })
}

/// One endpoint lookup NIC made while rendering, for `plan` and evidence.
#[derive(Debug, Clone)]
pub struct UpstreamLookup {
    pub service: ServicePort,
    /// The endpoints, or NIC's reason for none.
    pub endpoints: Result<Vec<String>, String>,
}

/// Records every lookup the renderers make.
struct Recording<'a> {
    inner: &'a dyn Endpoints,
    seen: std::cell::RefCell<Vec<UpstreamLookup>>,
}

impl Endpoints for Recording<'_> {
    fn lookup(&self, service: &ServicePort) -> Result<Vec<String>, String> {
        let endpoints = self.inner.lookup(service);
        let mut seen = self.seen.borrow_mut();
        if !seen.iter().any(|l| &l.service == service) {
            seen.push(UpstreamLookup {
                service: service.clone(),
                endpoints: endpoints.clone(),
            });
        }
        endpoints
    }
}

/// Everything NIC would write and report for a set of objects.
#[derive(Debug, Default)]
pub struct NicOutput {
    /// `conf.d` files: name → text.
    pub conf_files: Vec<(String, String)>,
    pub secret_files: Vec<SecretFile>,
    pub states: Vec<ResourceState>,
    /// Hosts served, and the resource serving each.
    pub hosts: BTreeMap<String, String>,
    /// Each Service port an upstream names, and what NIC resolved it to.
    pub upstreams: Vec<UpstreamLookup>,
}

/// Why nginx would refuse to load `config`: a file it must read (a certificate,
/// key, CA or CRL in NIC's secrets folder) that nobody writes. Secrets always
/// become files; a Policy's `crlFileName` names a file on NIC's own filesystem,
/// which NIC does not create (`tests/suite/test_ingress_mtls.py` CRL cases).
fn unloadable(config: &str, env: &RenderEnv, store: &secrets::SecretStore<'_>) -> Option<String> {
    for line in config.lines().map(str::trim) {
        let Some((directive, path)) = line.trim_end_matches(';').split_once(' ') else {
            continue;
        };
        if !directive.starts_with("ssl_") && !directive.starts_with("proxy_ssl_") {
            continue;
        }
        let path = path.trim().trim_matches('"');
        let Some(name) = path
            .strip_prefix("$secret_dir_path/")
            .or_else(|| path.strip_prefix(&format!("{}/", env.secrets_dir)))
        else {
            continue;
        };
        if !store.has_file(name) {
            let field = if directive == "ssl_crl" {
                " (the Policy's spec.ingressMTLS.crlFileName names a file on NIC's own filesystem, which NIC does not create)"
            } else {
                ""
            };
            return Some(format!(
                "nginx reload failed: {directive} {}/{name}: No such file or directory{field}",
                RenderEnv::nic().secrets_dir
            ));
        }
    }
    None
}

/// NIC's status after a reload that failed: Invalid, "but was not applied".
fn not_applied(state: &mut ResourceState, kind: &str, error: &str) {
    state.state = crate::manifest::ControllerState::Invalid;
    state.reason = "AddedOrUpdatedWithError".into();
    state.message = format!(
        "{}; but was not applied: error reloading NGINX for {kind} {}: {error}",
        state.message, state.key
    );
}

/// Render NIC's configuration for `objects`.
pub(crate) fn configure(
    objects: &[Object],
    secrets: &Secrets,
    endpoints: &dyn Endpoints,
    env: &RenderEnv,
) -> Result<NicOutput, ManifestError> {
    if let Some(problems) = ManifestError::all(unsupported(objects)) {
        return Err(problems);
    }
    let recording = Recording {
        inner: endpoints,
        seen: std::cell::RefCell::default(),
    };
    let mut out = configure_with(objects, secrets, &recording, env)?;
    out.upstreams = recording.seen.into_inner();
    Ok(out)
}

/// Everything of `objects` the local substrate does not render, each with
/// its file, line and what to do: refused together, before anything renders.
fn unsupported(objects: &[Object]) -> Vec<ManifestError> {
    let mut out = Vec::new();
    for object in objects {
        match object.id.kind {
            Kind::Policy => {
                let Ok(policy) = object.parse::<Policy>() else {
                    continue; // the render reports the parse error
                };
                for unrendered in policy::unmodelled_types(&policy.spec) {
                    out.push(object.error(
                        &format!("spec.{unrendered}"),
                        format!(
                            "a `{unrendered}` Policy is not rendered by the local substrate (it renders {}); \
                             run this scenario on kind (`--substrate kind`) to test it with the real controller",
                            PolicySpec::RENDERED.join(", ")
                        ),
                    ));
                }
            }
            Kind::VirtualServer => out.extend(virtualserver::unsupported(object)),
            Kind::VirtualServerRoute => out.push(object.error(
                "kind",
                "VirtualServerRoute is not rendered by the local substrate; run this scenario on kind",
            )),
            Kind::Ingress => out.extend(ingress::unsupported(object)),
            _ => {}
        }
    }
    out
}

fn configure_with(
    objects: &[Object],
    secrets: &Secrets,
    endpoints: &dyn Endpoints,
    env: &RenderEnv,
) -> Result<NicOutput, ManifestError> {
    let mut out = NicOutput::default();

    let mut valid = BTreeMap::new();
    // What the controller's getPolicies says of each Policy: Ok, or its error.
    let mut validation = BTreeMap::new();
    for object in objects.iter().filter(|o| o.id.kind == Kind::Policy) {
        let spec = object.parse::<Policy>()?.spec;
        let key = object.id.key();
        // HasCorrectIngressClass: no class, or ours.
        let class = spec.ingress_class_name.as_deref().unwrap_or("");
        if !class.is_empty() && class != INGRESS_CLASS {
            validation.insert(
                key.clone(),
                Err(format!(
                    "referenced policy {key} has incorrect ingress class: {class} (controller ingress class: {INGRESS_CLASS})"
                )),
            );
            continue;
        }
        let result = policy::validate(&spec);
        let status = policy::status(object.namespace(), object.name(), &result);
        out.states.push(ResourceState::new(
            object,
            status.state,
            &status.reason,
            status.message,
            Vec::new(),
        ));
        if result.is_ok() {
            valid.insert(key.clone(), spec);
        }
        let lookup = result.map_err(|e| format!("policy {key} is invalid: {e}"));
        validation.insert(key, lookup);
    }

    let store = secrets::SecretStore::new(secrets, &env.secrets_dir);
    for object in objects {
        match object.id.kind {
            Kind::VirtualServer => {
                let class = object.parse::<VirtualServer>()?.spec.ingress_class_name;
                // HasCorrectIngressClass: no class (or an empty one), or ours.
                if class
                    .as_deref()
                    .is_some_and(|c| !c.is_empty() && c != INGRESS_CLASS)
                {
                    continue;
                }
                let inputs = policy::Inputs {
                    policies: &valid,
                    secrets: &store,
                    owner_namespace: object.namespace(),
                    on_ingress: false,
                };
                let mut vs = virtualserver::generate(object, &inputs, endpoints, env)?;
                if let Some(config) = &vs.config
                    && let Some(error) = unloadable(config, env, &store)
                {
                    // nginx refuses the whole configuration; NIC keeps serving the
                    // last one that loaded, which never had this host.
                    not_applied(&mut vs.state, "VirtualServer", &error);
                    out.states.push(vs.state);
                    continue;
                }
                if let Some(config) = vs.config {
                    // The host stays with the resource seen first (NIC: the oldest);
                    // configuration.go addProblemsForResourcesWithoutActiveHost.
                    if out.hosts.contains_key(&vs.host) {
                        out.states.push(ResourceState::new(
                            object,
                            crate::manifest::ControllerState::Warning,
                            "Rejected",
                            "Host is taken by another resource".into(),
                            Vec::new(),
                        ));
                        continue;
                    }
                    out.hosts.insert(vs.host.clone(), object.id.to_string());
                    out.conf_files.push((vs.file_name, config));
                }
                out.states.push(vs.state);
            }
            Kind::Ingress => {}
            _ => {}
        }
    }
    let ingresses: Vec<ingress::Parsed<'_>> = objects
        .iter()
        .filter(|o| o.id.kind == Kind::Ingress)
        .filter_map(|o| ingress::parse(o).transpose())
        .collect::<Result<_, _>>()?;
    let inputs = policy::Inputs {
        policies: &valid,
        secrets: &store,
        owner_namespace: "",
        on_ingress: true,
    };
    let host_of = ingress::Parsed::host;
    for p in &ingresses {
        let owner = policy::Inputs {
            owner_namespace: p.object.namespace(),
            ..inputs
        };
        let generated = match p.kind {
            ingress::Mergeable::Standard => {
                ingress::standard(p, &owner, &validation, endpoints, env)
            }
            ingress::Mergeable::Master => {
                let minions: Vec<&ingress::Parsed<'_>> = ingresses
                    .iter()
                    .filter(|m| m.kind == ingress::Mergeable::Minion && host_of(m) == host_of(p))
                    .collect();
                ingress::mergeable(p, &minions, &owner, &validation, endpoints, env)
            }
            ingress::Mergeable::Minion => {
                // A master NIC rejected holds no host (configuration.go addProblemsForOrphanMinions).
                let has_master = ingresses.iter().any(|m| {
                    m.kind == ingress::Mergeable::Master
                        && host_of(m) == host_of(p)
                        && ingress::is_valid(m)
                });
                if !has_master {
                    out.states.push(ingress::orphan_minion(p));
                }
                continue;
            }
        };
        let mut generated = generated;
        if let Some(config) = &generated.config
            && let Some(error) = unloadable(config, env, &store)
        {
            // The reload fails; the last configuration that loaded never had these hosts.
            let owner = p.object.id.key();
            let error = format!("error reloading NGINX for {owner}: {error}");
            for state in &mut generated.states {
                let part = match p.kind {
                    ingress::Mergeable::Master
                        if state.key == owner && state.warnings.is_empty() =>
                    {
                        " but"
                    }
                    // Minions: "%s%s; but was not applied", after a one-space prefix.
                    ingress::Mergeable::Master => {
                        if state.warnings.is_empty() {
                            " ; but"
                        } else {
                            "; ; but"
                        }
                    }
                    _ => "; but",
                };
                state.state = crate::manifest::ControllerState::Invalid;
                state.reason = "AddedOrUpdatedWithError".into();
                state.message = format!("{}{part} was not applied: {error}", state.message);
            }
            out.states.extend(generated.states);
            continue;
        }
        if let Some(config) = generated.config {
            for host in &generated.hosts {
                if let Some(owner) = out.hosts.get(host) {
                    return Err(p.object.error(
                        "spec.rules",
                        format!("host {host} is also served by {owner}; NIC would give it to the older resource"),
                    ));
                }
                out.hosts.insert(host.clone(), p.object.id.to_string());
            }
            out.conf_files.push((generated.file_name, config));
        }
        out.states.extend(generated.states);
    }
    out.conf_files
        .push(("_default-server.conf".into(), render::default_server(env)));
    out.secret_files = store.files();
    Ok(out)
}

#[cfg(test)]
mod host_conflict_tests {
    use super::host_conflict;
    use crate::manifest;
    use std::path::Path;

    fn conflict(yaml: &str) -> Option<String> {
        let objects = manifest::load_text(yaml, Path::new("test.yaml"), "default").expect("yaml");
        host_conflict(&objects).map(|e| e.to_string())
    }

    fn vs(name: &str, host: &str, class: &str) -> String {
        format!(
            "apiVersion: k8s.nginx.org/v1\nkind: VirtualServer\nmetadata: {{name: {name}}}\nspec:\n  host: {host}\n  \
             {class}upstreams: [{{name: tea, service: tea-svc, port: 80}}]\n  routes: [{{path: /, action: {{pass: tea}}}}]\n---\n"
        )
    }

    fn ingress(name: &str, host: &str, annotations: &str) -> String {
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name}, annotations: {{{annotations}}}}}\nspec:\n  \
             ingressClassName: nginx\n  rules:\n  - host: {host}\n    http:\n      paths:\n      \
             - {{path: /{name}, pathType: Prefix, backend: {{service: {{name: tea-svc, port: {{number: 80}}}}}}}}\n---\n"
        )
    }

    #[test]
    fn a_host_claimed_twice_is_refused_at_the_second_claimant() {
        let two = format!(
            "{}{}",
            vs("first", "cafe.example.com", ""),
            vs("second", "cafe.example.com", "")
        );
        let message = conflict(&two).expect("a conflict");
        assert!(message.starts_with("test.yaml:13:"), "{message}");
        assert!(
            message.contains("also claimed by VirtualServer default/first (test.yaml:1)"),
            "{message}"
        );
        // A VirtualServer and an Ingress too.
        let mixed = format!(
            "{}{}",
            vs("first", "cafe.example.com", ""),
            ingress("cafe", "cafe.example.com", "")
        );
        assert!(conflict(&mixed).is_some());
    }

    #[test]
    fn hosts_nic_does_not_give_out_twice_are_no_conflict() {
        // Other hosts; another class; a master and its minion.
        let other = format!(
            "{}{}",
            vs("first", "cafe.example.com", ""),
            vs("second", "tea.example.com", "")
        );
        assert_eq!(conflict(&other), None);
        let class = format!(
            "{}{}",
            vs("first", "cafe.example.com", ""),
            vs("second", "cafe.example.com", "ingressClassName: other\n  ")
        );
        assert_eq!(conflict(&class), None);
        let mergeable = format!(
            "{}{}",
            ingress(
                "master",
                "cafe.example.com",
                "nginx.org/mergeable-ingress-type: master"
            ),
            ingress(
                "minion",
                "cafe.example.com",
                "nginx.org/mergeable-ingress-type: minion"
            )
        );
        assert_eq!(conflict(&mergeable), None);
        // A VirtualServer NIC rejects is given no host.
        let invalid = format!(
            "{}{}",
            vs("first", "cafe.example.com", ""),
            vs(
                "second",
                "cafe.example.com",
                "tls: {redirect: {enable: true, code: 200}}\n  "
            )
        );
        assert_eq!(conflict(&invalid), None);
    }
}
