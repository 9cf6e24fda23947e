//! What a scenario built from the user's objects needs around them, and the
//! world it makes: the stand-in components behind the Services the routes
//! name, the namespaces nobody declared, the jq steps that make the CA Secrets
//! the Policies name; then the certificates cert-manager issues (the local
//! substrate's own cert-manager) and the configuration NIC renders (its own
//! renderer), which the checks are derived from.

use crate::manifest::{NamespacedName, ServicePort};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::manifest::kinds::{
    Certificate, Deployment, Ingress, Issuer, Policy, Service, VirtualServer,
};
use crate::manifest::{Kind, ManifestError, Object};
use crate::pki::{CertInfo, KeyPool};
use crate::scenario::steps::SecretData;
use crate::substrate::local::nic::routing::Routing;
use crate::substrate::local::nic::{self, NicOutput, RenderEnv};
use crate::substrate::local::{certmanager, pods};

/// A stand-in component the scenario deploys, and why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Component {
    pub name: String,
    pub namespace: String,
    pub why: String,
}

/// The tutorial's jq step: an `nginx.org/ca` Secret made from a CA
/// Certificate's Secret (`ca.crt` ← `tls.crt`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CopyStep {
    pub from: String,
    pub to: String,
    pub why: String,
}

/// What the scenario adds around the user's objects.
#[derive(Debug, Clone, Default)]
pub(crate) struct Setup {
    pub components: Vec<Component>,
    pub namespaces: Vec<String>,
    pub steps: Vec<CopyStep>,
    /// What could not be provided, each with the object's `file:line`.
    pub notes: Vec<String>,
}

/// The component manifests' objects, placed in `namespace`.
fn component_objects(name: &str, namespace: &str) -> Result<Vec<Object>, ManifestError> {
    let Some((_, text)) = crate::scenario::COMPONENTS.iter().find(|(n, _)| *n == name) else {
        return Ok(Vec::new());
    };
    let path = PathBuf::from(format!("manifests/components/{name}.yaml"));
    crate::manifest::load_text(text, &path, namespace)
}

/// The Service name each component's manifest declares.
fn component_service(name: &str) -> Option<String> {
    component_objects(name, "default")
        .ok()?
        .into_iter()
        .find(|o| o.id.kind == Kind::Service)
        .map(|o| o.name().to_string())
}

/// The pod labels each component's Deployment carries.
fn component_labels(name: &str) -> BTreeMap<String, String> {
    component_objects(name, "default")
        .ok()
        .and_then(|objects| {
            objects
                .into_iter()
                .find(|o| o.id.kind == Kind::Deployment)
                .and_then(|o| o.parse::<Deployment>().ok())
        })
        .map(|d| d.spec.template.metadata.labels)
        .unwrap_or_default()
}

/// Every `(namespace, service)` a `VirtualServer` upstream or an Ingress backend names.
fn backends(objects: &[Object]) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for o in objects {
        match o.id.kind {
            Kind::VirtualServer => {
                if let Ok(vs) = o.parse::<VirtualServer>() {
                    for u in vs.spec.upstreams {
                        let (ns, svc) =
                            u.service.split_once('/').map_or(
                                (o.namespace().to_string(), u.service.clone()),
                                |(n, s)| (n.to_string(), s.to_string()),
                            );
                        out.push((ns, svc, o.origin().to_string()));
                    }
                }
            }
            Kind::Ingress => {
                if let Ok(ing) = o.parse::<Ingress>() {
                    for rule in ing.spec.rules {
                        for p in rule.http.map(|h| h.paths).unwrap_or_default() {
                            out.push((
                                o.namespace().to_string(),
                                p.backend.service.name,
                                o.origin().to_string(),
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

fn has(objects: &[Object], kind: Kind, ns: &str, name: &str) -> bool {
    objects
        .iter()
        .any(|o| o.id.kind == kind && o.namespace() == ns && o.name() == name)
}

/// Pods in `ns` carrying every label of `selector`.
fn selects(objects: &[Object], ns: &str, selector: &BTreeMap<String, String>) -> bool {
    objects
        .iter()
        .filter(|o| o.id.kind == Kind::Deployment && o.namespace() == ns)
        .filter_map(|o| o.parse::<Deployment>().ok())
        .any(|d| {
            selector
                .iter()
                .all(|(k, v)| d.spec.template.metadata.labels.get(k) == Some(v))
        })
}

/// Secrets a Certificate writes, `ns/name` → the Certificate.
fn certificate_secrets(objects: &[Object]) -> BTreeMap<String, (Object, Certificate)> {
    objects
        .iter()
        .filter(|o| o.id.kind == Kind::Certificate)
        .filter_map(|o| {
            let c = o.parse::<Certificate>().ok()?;
            Some((
                format!("{}/{}", o.namespace(), c.spec.secret_name),
                (o.clone(), c),
            ))
        })
        .collect()
}

/// What the scenario needs around `objects`: components, namespaces, steps.
pub(crate) fn setup(objects: &[Object]) -> Setup {
    let mut setup = Setup::default();
    let mut all = objects.to_vec();

    // Stand-ins behind the Services the routes name (or that select their pods).
    let mut wanted: Vec<(String, String, String)> = Vec::new();
    for (ns, svc, origin) in backends(objects) {
        for (component, _) in crate::scenario::COMPONENTS {
            if component_service(component).as_deref() == Some(svc.as_str())
                && !has(objects, Kind::Service, &ns, &svc)
            {
                wanted.push((
                    component.to_string(),
                    ns.clone(),
                    format!(
                        "{origin} routes to Service {ns}/{svc}, which the manifests do not hold: the `{component}` stand-in provides it"
                    ),
                ));
            }
        }
    }
    for o in objects.iter().filter(|o| o.id.kind == Kind::Service) {
        let Ok(service) = o.parse::<Service>() else {
            continue;
        };
        for (component, _) in crate::scenario::COMPONENTS {
            let labels = component_labels(component);
            let matches = !service.spec.selector.is_empty()
                && service
                    .spec
                    .selector
                    .iter()
                    .all(|(k, v)| labels.get(k) == Some(v));
            if matches && !selects(objects, o.namespace(), &service.spec.selector) {
                wanted.push((
                    component.to_string(),
                    o.namespace().to_string(),
                    format!(
                        "Service {} ({}) selects the `{component}` stand-in's pods, which no Deployment of the manifests provides",
                        o.id.key(),
                        o.origin()
                    ),
                ));
            }
        }
    }
    // The gateway's own backends: an aigw.yaml naming the Ollama Service.
    for o in objects.iter().filter(|o| o.id.kind == Kind::ConfigMap) {
        let text = o.to_json().to_string();
        let ns = o.namespace();
        if text.contains(&format!("ollama.{ns}.svc")) && !has(objects, Kind::Service, ns, "ollama")
        {
            wanted.push((
                "ollama".into(),
                ns.to_string(),
                format!(
                    "ConfigMap {} ({}) sends the gateway's requests to ollama.{ns}.svc: the `ollama` stand-in provides it",
                    o.id.key(),
                    o.origin()
                ),
            ));
        }
    }
    let mut seen = BTreeSet::new();
    for (component, ns, why) in wanted {
        if !seen.insert((component.clone(), ns.clone())) {
            continue;
        }
        let Ok(extra) = component_objects(&component, &ns) else {
            continue;
        };
        if let Some(clash) = extra.iter().find(|x| all.iter().any(|o| o.id == x.id)) {
            setup.notes.push(format!(
                "{}: the `{component}` stand-in is not added: the manifests already declare {}",
                all.iter()
                    .find(|o| o.id == clash.id)
                    .map(|o| o.origin().to_string())
                    .unwrap_or_default(),
                clash.id
            ));
            continue;
        }
        all.extend(extra);
        setup.components.push(Component {
            name: component,
            namespace: ns,
            why,
        });
    }

    // Namespaces nobody declares (`kubectl apply` would fail on them).
    let declared: BTreeSet<String> = all
        .iter()
        .filter(|o| o.id.kind == Kind::Namespace)
        .map(|o| o.name().to_string())
        .collect();
    let used: BTreeSet<String> = all.iter().filter_map(|o| o.id.namespace.clone()).collect();
    setup.namespaces = used
        .into_iter()
        .filter(|ns| !declared.contains(ns) && !matches!(ns.as_str(), "default" | "kube-system"))
        .collect();

    setup.steps = ca_steps(&all, &mut setup.notes);
    // A component whose Secrets or ConfigMaps nobody provides would not start.
    let provided = |ns: &str, name: &str, kind: Kind| {
        has(&all, kind, ns, name)
            || (kind == Kind::Secret
                && (certificate_secrets(&all).contains_key(&format!("{ns}/{name}"))
                    || setup.steps.iter().any(|s| s.to == format!("{ns}/{name}"))))
    };
    let mut kept = Vec::new();
    for c in std::mem::take(&mut setup.components) {
        let missing: Vec<String> = component_objects(&c.name, &c.namespace)
            .unwrap_or_default()
            .iter()
            .filter_map(|o| o.parse::<Deployment>().ok())
            .flat_map(|d| d.spec.template.spec.volumes)
            .filter_map(|v| match (&v.secret, &v.config_map) {
                (Some(s), _) if !provided(&c.namespace, &s.secret_name, Kind::Secret) => {
                    Some(format!("Secret {}/{}", c.namespace, s.secret_name))
                }
                (_, Some(m)) if !provided(&c.namespace, &m.name, Kind::ConfigMap) => {
                    Some(format!("ConfigMap {}/{}", c.namespace, m.name))
                }
                _ => None,
            })
            .collect();
        if missing.is_empty() {
            kept.push(c);
        } else {
            setup.notes.push(format!(
                "{}; but the stand-in needs {}, which the manifests do not hold (nor can a Certificate or a jq step make it): \
                 it is left out, so that Service has no pods and NIC answers 502; add the missing objects to test the route",
                c.why,
                missing.join(" and ")
            ));
        }
    }
    // Ollama answers the gateway only: without a gateway in its namespace it serves nobody.
    let gateways: Vec<String> = kept
        .iter()
        .filter(|c| c.name == "aigw")
        .map(|c| c.namespace.clone())
        .collect();
    let gateway_runs = |ns: &str| {
        gateways.iter().any(|g| g == ns)
            || objects.iter().any(|o| {
                o.id.kind == Kind::Deployment
                    && o.namespace() == ns
                    && o.parse::<Deployment>().is_ok_and(|d| {
                        d.spec
                            .template
                            .spec
                            .containers
                            .iter()
                            .any(|c| c.args.iter().any(|a| a == "aigw"))
                    })
            })
    };
    kept.retain(|c| {
        c.name != "ollama" || !c.why.starts_with("ConfigMap") || gateway_runs(&c.namespace)
    });
    setup.components = kept;
    setup
}

/// What names a CA Secret.
#[derive(Debug, Clone, Copy, PartialEq)]
enum CaUse {
    Policy,
    /// A volume without `items`: a CA bundle mount, as the gateway's.
    Mount,
}

/// `ns/name` of every CA Secret something names: a Policy's client or trusted
/// CA, a volume without `items` (a CA bundle mount, as the gateway's).
fn ca_references(objects: &[Object]) -> Vec<(String, String, CaUse)> {
    let mut out = Vec::new();
    for o in objects {
        let ns = o.namespace();
        match o.id.kind {
            Kind::Policy => {
                let Ok(p) = o.parse::<Policy>() else { continue };
                if let Some(name) = p.spec.ingress_mtls.and_then(|m| m.client_cert_secret) {
                    out.push((
                        format!("{ns}/{name}"),
                        format!(
                            "Policy {} ({}) verifies clients against it",
                            o.id.key(),
                            o.origin_of("spec.ingressMTLS.clientCertSecret")
                        ),
                        CaUse::Policy,
                    ));
                }
                if let Some(name) = p.spec.egress_mtls.and_then(|m| m.trusted_cert_secret) {
                    out.push((
                        format!("{ns}/{name}"),
                        format!(
                            "Policy {} ({}) verifies the upstream against it",
                            o.id.key(),
                            o.origin_of("spec.egressMTLS.trustedCertSecret")
                        ),
                        CaUse::Policy,
                    ));
                }
            }
            Kind::Deployment => {
                let Ok(d) = o.parse::<Deployment>() else {
                    continue;
                };
                for v in d.spec.template.spec.volumes {
                    if let Some(s) = v.secret.filter(|s| s.items.is_empty()) {
                        out.push((
                            format!("{ns}/{}", s.secret_name),
                            format!(
                                "Deployment {} ({}) mounts it as a CA bundle",
                                o.id.key(),
                                o.origin()
                            ),
                            CaUse::Mount,
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The CA Secret behind the CA Issuer that issues Certificate `c` (in `ns`).
fn issuing_ca(objects: &[Object], ns: &str, c: &Certificate) -> Option<String> {
    let cluster = c.spec.issuer_ref.kind.as_deref() == Some("ClusterIssuer");
    objects
        .iter()
        .filter(|o| o.name() == c.spec.issuer_ref.name)
        .filter(|o| {
            if cluster {
                o.id.kind == Kind::ClusterIssuer
            } else {
                o.id.kind == Kind::Issuer && o.namespace() == ns
            }
        })
        .find_map(|o| o.parse::<Issuer>().ok()?.spec.ca)
        .map(|ca| ca.secret_name)
}

/// The CA Secrets in `ns` whose CA issued the client certificates the
/// egressMTLS Policies there present (`tlsSecret`): what a backend that
/// verifies NGINX must trust.
fn egress_client_cas(objects: &[Object], ns: &str) -> BTreeSet<String> {
    let written = certificate_secrets(objects);
    objects
        .iter()
        .filter(|o| o.id.kind == Kind::Policy && o.namespace() == ns)
        .filter_map(|o| o.parse::<Policy>().ok()?.spec.egress_mtls?.tls_secret)
        .filter_map(|secret| {
            let (_, c) = written.get(&format!("{ns}/{secret}"))?;
            issuing_ca(objects, ns, c)
        })
        .collect()
}

/// jq steps for the CA Secrets that nothing provides but a CA Certificate in
/// the namespace would write (tutorial 000's step 5). Which CA: the one whose
/// Secret name begins the wanted name (`verify-ca` → `verify-ca-nginx`); for a
/// CA bundle a pod mounts, the one CA that issued the client certificates the
/// egressMTLS Policies present there (the pod is what NGINX presents them
/// to); else the only CA there that backs a CA Issuer (and is not already
/// another Secret's, by name). Anything less certain is a note, not a guess.
fn ca_steps(objects: &[Object], notes: &mut Vec<String>) -> Vec<CopyStep> {
    let written = certificate_secrets(objects);
    let missing: Vec<(String, String, CaUse)> = ca_references(objects)
        .into_iter()
        .filter(|(key, _, _)| {
            let (ns, name) = key.split_once('/').unwrap_or_default();
            !has(objects, Kind::Secret, ns, name) && !written.contains_key(key)
        })
        .collect();
    let cas: Vec<(String, String)> = written
        .iter()
        .filter(|(_, (_, c))| c.spec.is_ca)
        .map(|(key, _)| {
            let (ns, name) = key.split_once('/').unwrap_or_default();
            (ns.to_string(), name.to_string())
        })
        .collect();
    let backs_issuer = |ns: &str, secret: &str| {
        objects.iter().any(|o| {
            matches!(o.id.kind, Kind::Issuer | Kind::ClusterIssuer)
                && (o.namespace() == ns || o.id.kind == Kind::ClusterIssuer)
                && o.parse::<Issuer>()
                    .ok()
                    .and_then(|i| i.spec.ca)
                    .is_some_and(|ca| ca.secret_name == secret)
        })
    };
    let by_prefix = |ns: &str, name: &str| {
        cas.iter()
            .filter(|(cns, cname)| cns == ns && name.starts_with(cname.as_str()) && name != cname)
            .max_by_key(|(_, cname)| cname.len())
            .map(|(_, cname)| cname.clone())
    };
    let claimed: BTreeSet<String> = missing
        .iter()
        .filter_map(|(key, _, _)| {
            let (ns, name) = key.split_once('/')?;
            by_prefix(ns, name).map(|c| format!("{ns}/{c}"))
        })
        .collect();
    let mut steps: Vec<CopyStep> = Vec::new();
    let mut done: BTreeSet<String> = BTreeSet::new();
    for (key, why, used) in missing {
        if !done.insert(key.clone()) {
            continue;
        }
        let (ns, name) = key.split_once('/').unwrap_or_default();
        let unclaimed: Vec<&String> = cas
            .iter()
            .filter(|(cns, cname)| cns == ns && !claimed.contains(&format!("{ns}/{cname}")))
            .map(|(_, cname)| cname)
            .collect();
        let issuing: Vec<&&String> = unclaimed.iter().filter(|c| backs_issuer(ns, c)).collect();
        let egress_clients: Vec<String> = egress_client_cas(objects, ns)
            .into_iter()
            .filter(|c| cas.iter().any(|(cns, cname)| cns == ns && cname == c))
            .collect();
        let (source, rule) = if let Some(c) = by_prefix(ns, name) {
            (Some(c), "its name begins with that CA Secret's")
        } else if let (CaUse::Mount, [one]) = (used, egress_clients.as_slice()) {
            (
                Some(one.clone()),
                "it issued the client certificates the egressMTLS Policies there present to that pod",
            )
        } else if let [one] = issuing.as_slice() {
            (
                Some((**one).clone()),
                "it is the only CA there that backs a CA Issuer",
            )
        } else {
            (None, "")
        };
        match source {
            Some(source) => steps.push(CopyStep {
                from: format!("{ns}/{source}"),
                to: key.clone(),
                why: format!(
                    "{why}; the manifests do not hold Secret {key}, and CA Certificate {ns}/{source} writes the CA ({rule})"
                ),
            }),
            None => notes.push(format!(
                "{why}; Secret {key} is not in the manifests and no single CA Certificate in {ns} would provide it: \
                 add it (or a copySecret step naming its CA) to scenario.yaml"
            )),
        }
    }
    steps
}

/// Endpoints as the scenario will have them: a Service reaches the pods it
/// selects. Each endpoint names the Service it stands for, so the checks can
/// tell which backend a location proxies to.
struct WorldEndpoints<'a> {
    objects: &'a [Object],
    pods: &'a [pods::PodSpec],
}

/// Prefix of the endpoints `init` hands the renderer.
pub(crate) const ENDPOINT_PREFIX: &str = "unix:/mtls-e2e-init/";

impl nic::Endpoints for WorldEndpoints<'_> {
    fn lookup(&self, wanted: &ServicePort) -> Result<Vec<String>, String> {
        if let Some(problem) = nic::service_problem(self.objects, &wanted.service) {
            return Err(problem);
        }
        let (namespace, service, port) = (
            wanted.service.namespace.as_str(),
            wanted.service.name.as_str(),
            wanted.port,
        );
        let selector = self
            .objects
            .iter()
            .find(|o| {
                o.id.kind == Kind::Service && o.namespace() == namespace && o.name() == service
            })
            .and_then(|o| o.parse::<Service>().ok())
            .map(|s| s.spec.selector)
            .unwrap_or_default();
        let selected = !selector.is_empty()
            && self.pods.iter().any(|p| {
                p.namespace == namespace && selector.iter().all(|(k, v)| p.labels.get(k) == Some(v))
            });
        Ok(if selected {
            vec![format!("{ENDPOINT_PREFIX}{namespace}/{service}/{port}")]
        } else {
            Vec::new()
        })
    }
}

/// The scenario's world, as the local substrate would make it.
pub(crate) struct World {
    pub objects: Vec<Object>,
    /// By `ns/name`, the form init writes into scenario.yaml.
    pub secrets: BTreeMap<String, SecretData>,
    /// The certificates of each Secret's keys, parsed once: `(secret, key)` →
    /// certificates (init asks for them on every prediction).
    parsed: BTreeMap<(String, String), Vec<CertInfo>>,
    pub pods: Vec<pods::PodSpec>,
    pub nic: NicOutput,
    pub routing: Routing,
}

/// `ns/name` as a Secret's key (init's own names are always namespaced).
fn secret_key(key: &str) -> Option<NamespacedName> {
    let (namespace, name) = key.split_once('/')?;
    Some(NamespacedName::new(namespace, name))
}

/// The scenario's objects as `run` loads them: the manifests', then the components'.
pub(crate) fn scenario_objects(
    objects: &[Object],
    setup: &Setup,
) -> Result<Vec<Object>, ManifestError> {
    let mut all = objects.to_vec();
    for c in &setup.components {
        all.extend(component_objects(&c.name, &c.namespace)?);
    }
    Ok(all)
}

/// Issue, copy and render: what the local substrate does before nginx starts.
/// An error is what would stop a local run, with its file and line.
pub(crate) fn build(objects: &[Object], setup: &Setup) -> Result<World, ManifestError> {
    let mut all = scenario_objects(objects, setup)?;
    let keys = KeyPool::new();
    let mut done = BTreeMap::new();
    let mut secrets = crate::substrate::local::secrets_of(&all)?;
    // Certificates, then the jq steps on their Secrets, then whatever a CA
    // Issuer backed by a copied Secret can now sign.
    for _ in 0..3 {
        let created = certmanager::reconcile(&all, &secrets, &mut done, &keys)?;
        for object in created {
            match all.iter_mut().find(|o| o.id == object.id) {
                Some(slot) => *slot = object,
                None => all.push(object),
            }
        }
        secrets = crate::substrate::local::secrets_of(&all)?;
        for step in &setup.steps {
            if let (Some(from), Some(to)) = (secret_key(&step.from), secret_key(&step.to))
                && let Some(cert) = secrets.get(&from).and_then(|s| s.data.get("tls.crt"))
            {
                let data = BTreeMap::from([("ca.crt".to_string(), cert.clone())]);
                secrets.insert(
                    to,
                    SecretData {
                        type_: nic::secrets::TYPE_CA.into(),
                        data,
                    },
                );
            }
        }
    }
    if let Some(stuck) = ManifestError::all(certmanager::pending(&all, &done, &secrets)) {
        return Err(stuck);
    }
    let pods = pods::plan(&all, &secrets)?;
    rendered(all, secrets, pods)
}

/// NIC's render of `objects` with these Secrets and pods.
fn rendered(
    objects: Vec<Object>,
    secrets: crate::scenario::steps::Secrets,
    pods: Vec<pods::PodSpec>,
) -> Result<World, ManifestError> {
    let endpoints = WorldEndpoints {
        objects: &objects,
        pods: &pods,
    };
    let nic = nic::configure(&objects, &secrets, &endpoints, &RenderEnv::nic())?;
    let routing = Routing::parse(nic.conf_files.iter().map(|(_, t)| t.as_str()));
    let secrets: BTreeMap<String, SecretData> = secrets
        .into_iter()
        .map(|(key, data)| (key.to_string(), data))
        .collect();
    let parsed = secrets
        .iter()
        .flat_map(|(secret, data)| {
            data.data
                .iter()
                .map(move |(key, bytes)| ((secret.clone(), key.clone()), certs_in(bytes)))
        })
        .collect();
    Ok(World {
        objects,
        secrets,
        parsed,
        pods,
        nic,
        routing,
    })
}

impl World {
    /// The world with `changed` in place of the object of its id, an object
    /// only NIC reads (a Policy, `VirtualServer` or Ingress): the same
    /// certificates, steps and pods, rendered again, as a mutated run does.
    pub(crate) fn rerendered(&self, changed: &Object) -> Result<World, ManifestError> {
        let mut objects = self.objects.clone();
        match objects.iter_mut().find(|o| o.id == changed.id) {
            Some(slot) => *slot = changed.clone(),
            None => objects.push(changed.clone()),
        }
        let secrets = self
            .secrets
            .iter()
            .filter_map(|(key, data)| Some((secret_key(key)?, data.clone())))
            .collect();
        rendered(objects, secrets, self.pods.clone())
    }
}

/// The certificates a PEM bundle holds.
pub(crate) fn certs_in(bytes: &[u8]) -> Vec<CertInfo> {
    pem::parse_many(bytes)
        .unwrap_or_default()
        .iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .filter_map(|b| CertInfo::from_der(b.contents()).ok())
        .collect()
}

impl World {
    /// The Secret behind a path in NIC's secrets folder (`<ns>-<name>`,
    /// `<ns>-<name>-ca.crt`), as the renderer names them.
    pub(crate) fn secret_of_file(&self, path: &str) -> Option<&str> {
        let file = path.rsplit('/').next()?;
        self.secrets.keys().map(String::as_str).find(|key| {
            let base = key.replacen('/', "-", 1);
            file == base || file == format!("{base}-ca.crt")
        })
    }

    /// The certificates of a Secret's key.
    pub(crate) fn certs(&self, secret: &str, key: &str) -> Vec<CertInfo> {
        self.parsed
            .get(&(secret.to_string(), key.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// A Secret holding the key of the CA `subject` (to sign identities).
    pub(crate) fn signer_of(&self, subject: &str) -> Option<String> {
        self.secrets
            .iter()
            .filter(|(_, s)| s.data.contains_key("tls.key"))
            .find(|(key, _)| {
                self.certs(key, "tls.crt")
                    .first()
                    .is_some_and(|c| c.is_ca && c.subject == subject)
            })
            .map(|(key, _)| key.clone())
    }

    /// A Secret whose `ca.crt` holds the CA `subject` (a trust bundle).
    pub(crate) fn bundle_of(&self, subject: &str) -> Option<String> {
        let holds = |key: &str| {
            self.certs(key, "ca.crt")
                .iter()
                .any(|c| c.subject == subject)
        };
        // A CA's own Secret first (cert-manager's root: ca.crt is itself).
        self.secrets
            .keys()
            .find(|key| {
                holds(key)
                    && self
                        .certs(key, "tls.crt")
                        .first()
                        .is_some_and(|c| c.subject == subject)
            })
            .or_else(|| self.secrets.keys().find(|key| holds(key)))
            .cloned()
    }

    /// Client certificates of the manifests (Certificates' Secrets) issued
    /// by the CA `subject`: those made for client auth first; a certificate
    /// without extended usage (cert-manager's default) serves too, unless a
    /// host presents it as its own.
    pub(crate) fn clients_of(&self, subject: &str) -> Vec<String> {
        let written = certificate_secrets(&self.objects);
        let servers = self.server_secrets();
        let mut found: Vec<(bool, String)> = written
            .keys()
            .filter_map(|key| {
                let leaf = self.certs(key, "tls.crt").into_iter().next()?;
                let client_auth = leaf
                    .ext_key_usages
                    .iter()
                    .any(|u| u == "TLS Web Client Authentication");
                let usable = !leaf.is_ca
                    && leaf.issuer == subject
                    && (client_auth || (leaf.ext_key_usages.is_empty() && !servers.contains(key)));
                usable.then(|| (!client_auth, key.clone()))
            })
            .collect();
        found.sort();
        found.into_iter().map(|(_, key)| key).collect()
    }

    /// `ns/name` of every Secret a `VirtualServer` or an Ingress serves TLS with.
    fn server_secrets(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for o in &self.objects {
            let ns = o.namespace();
            if o.id.kind == Kind::VirtualServer
                && let Ok(vs) = o.parse::<VirtualServer>()
                && let Some(secret) = vs.spec.tls.and_then(|t| t.secret)
            {
                out.insert(format!("{ns}/{secret}"));
            }
            if o.id.kind == Kind::Ingress
                && let Ok(ing) = o.parse::<Ingress>()
            {
                for t in ing.spec.tls.unwrap_or_default() {
                    if let Some(secret) = t.secret_name {
                        out.insert(format!("{ns}/{secret}"));
                    }
                }
            }
        }
        out
    }

    /// The pod behind an endpoint `init` handed the renderer.
    pub(crate) fn backend(&self, endpoint: &str) -> Option<(&pods::PodSpec, String)> {
        let rest = endpoint.strip_prefix(ENDPOINT_PREFIX)?;
        let mut parts = rest.split('/');
        let (ns, svc) = (parts.next()?, parts.next()?);
        let selector = self
            .objects
            .iter()
            .find(|o| o.id.kind == Kind::Service && o.namespace() == ns && o.name() == svc)
            .and_then(|o| o.parse::<Service>().ok())?
            .spec
            .selector;
        let pod = self.pods.iter().find(|p| {
            p.namespace == ns && selector.iter().all(|(k, v)| p.labels.get(k) == Some(v))
        })?;
        Some((pod, format!("{ns}/{svc}")))
    }

    /// A file inside a pod: which Secret or `ConfigMap` key the mount puts there.
    pub(crate) fn pod_file(
        &self,
        pod: &pods::PodSpec,
        path: &str,
    ) -> Option<(Kind, String, String)> {
        let d = pod.deployment.parse::<Deployment>().ok()?;
        let spec = d.spec.template.spec;
        let container = spec.containers.first()?;
        let mount = container
            .volume_mounts
            .iter()
            .filter(|m| path.starts_with(&format!("{}/", m.mount_path.trim_end_matches('/'))))
            .max_by_key(|m| m.mount_path.len())?;
        let rel = path[mount.mount_path.trim_end_matches('/').len() + 1..].to_string();
        let volume = spec.volumes.iter().find(|v| v.name == mount.name)?;
        let key_of = |items: &[crate::manifest::kinds::KeyToPath]| {
            if items.is_empty() {
                Some(rel.clone())
            } else {
                items.iter().find(|i| i.path == rel).map(|i| i.key.clone())
            }
        };
        let ns = &pod.namespace;
        if let Some(s) = &volume.secret {
            return Some((
                Kind::Secret,
                format!("{ns}/{}", s.secret_name),
                key_of(&s.items)?,
            ));
        }
        let c = volume.config_map.as_ref()?;
        Some((
            Kind::ConfigMap,
            format!("{ns}/{}", c.name),
            key_of(&c.items)?,
        ))
    }

    /// The bytes of a Secret or `ConfigMap` key.
    pub(crate) fn data(&self, kind: Kind, key: &str, item: &str) -> Option<Vec<u8>> {
        match kind {
            Kind::Secret => self.secrets.get(key)?.data.get(item).cloned(),
            _ => self
                .objects
                .iter()
                .find(|o| o.id.kind == kind && o.id.key() == key)?
                .parse::<crate::manifest::kinds::ConfigMap>()
                .ok()?
                .data
                .get(item)
                .map(|s| s.clone().into_bytes()),
        }
    }
}
