//! Where cert-manager and NGINX Ingress Controller run, and which namespaces
//! NIC watches. On kind they are where the install put them; on an existing
//! cluster they are found from their Deployments and `DaemonSets` (by label or
//! image) unless `--cert-manager-namespace` / `--nic-namespace` say, and NIC's
//! watched namespaces are read from its container arguments as NIC 5.5.4
//! parses them (cmd/nginx-ingress/flags.go, internal/k8s/controller.go).
//! Every decision is a pure function over observed objects; `observe` and
//! `namespace_labels` are the only IO.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Namespace, PodTemplateSpec};
use kube::core::{Expression, Selector, SelectorExt};

use super::{ClusterError, install};
use crate::manifest::Kind;
use crate::scenario::Scenario;

type Labels = BTreeMap<String, String>;

/// A container of a workload, as far as finding NIC and its flags needs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Container {
    pub name: String,
    pub image: String,
    pub args: Vec<String>,
    /// The env values Kubernetes would expand `$(NAME)` to, where they are
    /// known here: literal values, and the downward API's `metadata.namespace`.
    pub env: Labels,
}

/// A Deployment or `DaemonSet` as observed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Workload {
    /// `deployment` or `daemonset`, as kubectl names them.
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    /// The pod template's labels.
    pub labels: Labels,
    /// `spec.selector.matchLabels`: how its pods are found.
    pub selector: Labels,
    pub containers: Vec<Container>,
    /// Available replicas (Deployment) or available pods (`DaemonSet`).
    pub available: i32,
}

impl Workload {
    /// `deployment/nginx-ingress`, as kubectl names it.
    pub(crate) fn reference(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }

    fn from_template(
        kind: &'static str,
        metadata: &kube::api::ObjectMeta,
        template: &PodTemplateSpec,
        selector: Option<&Labels>,
        available: i32,
    ) -> Workload {
        let namespace = metadata.namespace.clone().unwrap_or_default();
        let containers = template
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .map(|c| {
                let mut env = Labels::new();
                for e in c.env.iter().flatten() {
                    let field = e
                        .value_from
                        .as_ref()
                        .and_then(|v| v.field_ref.as_ref())
                        .map(|f| f.field_path.as_str());
                    match (&e.value, field) {
                        (Some(value), _) => {
                            env.insert(e.name.clone(), value.clone());
                        }
                        (None, Some("metadata.namespace")) => {
                            env.insert(e.name.clone(), namespace.clone());
                        }
                        _ => {}
                    }
                }
                Container {
                    name: c.name.clone(),
                    image: c.image.clone().unwrap_or_default(),
                    args: c.args.clone().unwrap_or_default(),
                    env,
                }
            })
            .collect();
        Workload {
            kind,
            namespace,
            name: metadata.name.clone().unwrap_or_default(),
            labels: template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default(),
            selector: selector.cloned().unwrap_or_default(),
            containers,
            available,
        }
    }

    pub(crate) fn from_deployment(d: &Deployment) -> Option<Workload> {
        let spec = d.spec.as_ref()?;
        Some(Workload::from_template(
            "deployment",
            &d.metadata,
            &spec.template,
            spec.selector.match_labels.as_ref(),
            d.status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0),
        ))
    }

    pub(crate) fn from_daemonset(d: &DaemonSet) -> Option<Workload> {
        let spec = d.spec.as_ref()?;
        Some(Workload::from_template(
            "daemonset",
            &d.metadata,
            &spec.template,
            spec.selector.match_labels.as_ref(),
            d.status
                .as_ref()
                .and_then(|s| s.number_available)
                .unwrap_or(0),
        ))
    }
}

/// `nginx-ingress` from `docker.io/nginx/nginx-ingress:5.5.4@sha256:...`.
fn repository_name(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split(':').next().unwrap_or(last)
}

/// Which namespaces NIC reads resources in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Watched {
    /// Every namespace (NIC's default).
    All,
    /// `-watch-namespace=a,b`: an informer per entry, as NIC splits it (an
    /// empty entry is every namespace).
    Namespaces(Vec<String>),
    /// `-watch-namespace-label=SELECTOR`: namespaces whose labels match, as
    /// they come and go.
    Labelled(String),
}

/// What NIC watches, from its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WatchScope {
    pub resources: Watched,
    /// `-watch-secret-namespace`; `None`: NIC reads Secrets wherever it reads resources.
    pub secrets: Option<Vec<String>>,
    /// How NIC was told, for messages (`-watch-namespace=a,b`), empty for the default.
    pub flags: String,
}

impl WatchScope {
    pub(crate) fn everything() -> WatchScope {
        WatchScope {
            resources: Watched::All,
            secrets: None,
            flags: String::new(),
        }
    }
}

/// Where NIC runs and what it watches.
#[derive(Debug, Clone)]
pub(crate) struct NicPlace {
    pub namespace: String,
    /// `deployment/nginx-ingress`.
    pub workload: String,
    /// Its pods, as a label selector.
    pub selector: String,
    /// Its image, when read from the cluster.
    pub image: Option<String>,
    pub watch: WatchScope,
}

impl NicPlace {
    /// Where the kind install puts NIC: its release manifests, which set no
    /// `-watch-namespace*` argument.
    pub(crate) fn installed() -> NicPlace {
        NicPlace {
            namespace: install::NIC_NAMESPACE.into(),
            workload: format!("deployment/{}", install::NIC_DEPLOYMENT),
            selector: install::NIC_POD_SELECTOR.into(),
            image: None,
            watch: WatchScope::everything(),
        }
    }
}

fn is_nic(w: &Workload) -> bool {
    w.labels.get("app.kubernetes.io/name").map(String::as_str) == Some("nginx-ingress")
        || w.containers.iter().any(nic_container)
}

fn nic_container(c: &Container) -> bool {
    matches!(
        repository_name(&c.image),
        "nginx-ingress" | "nginx-plus-ingress"
    )
}

fn is_cert_manager(w: &Workload) -> bool {
    w.labels.get("app.kubernetes.io/name").map(String::as_str) == Some("cert-manager")
        || w.containers.iter().any(|c| {
            matches!(
                repository_name(&c.image),
                "cert-manager-controller" | "cert-manager-webhook" | "cert-manager-cainjector"
            )
        })
}

/// `in namespace X` or `on this cluster`, for messages.
fn where_(given: Option<&str>) -> String {
    given.map_or_else(
        || "on this cluster".to_string(),
        |ns| format!("in namespace {ns}"),
    )
}

/// The namespace cert-manager runs in: the one its Deployments are in.
pub(crate) fn find_cert_manager(
    workloads: &[Workload],
    given: Option<&str>,
) -> Result<String, ClusterError> {
    let namespaces: BTreeSet<&str> = workloads
        .iter()
        .filter(|w| is_cert_manager(w))
        .filter(|w| given.is_none_or(|ns| w.namespace == ns))
        .map(|w| w.namespace.as_str())
        .collect();
    match namespaces.len() {
        0 => Err(ClusterError::Missing(format!(
            "cert-manager does not run {} (no Deployment labelled app.kubernetes.io/name=cert-manager or running a \
             cert-manager-controller/-webhook image); install it with `kubectl apply -f {}`{}",
            where_(given),
            install::cert_manager().url,
            if given.is_some() {
                ", or give the namespace it runs in with --cert-manager-namespace"
            } else {
                ""
            }
        ))),
        1 => Ok(namespaces
            .into_iter()
            .next()
            .unwrap_or_default()
            .to_string()),
        _ => Err(ClusterError::Input(format!(
            "cert-manager runs in several namespaces ({}); pass --cert-manager-namespace to say which the run uses",
            namespaces.into_iter().collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// NIC's workload: exactly one, with a pod available, and what it watches.
pub(crate) fn find_nic(
    workloads: &[Workload],
    given: Option<&str>,
) -> Result<NicPlace, ClusterError> {
    let found: Vec<&Workload> = workloads
        .iter()
        .filter(|w| is_nic(w))
        .filter(|w| given.is_none_or(|ns| w.namespace == ns))
        .collect();
    let nic = match found.as_slice() {
        [] => {
            return Err(ClusterError::Missing(format!(
                "NGINX Ingress Controller does not run {} (no Deployment or DaemonSet labelled {} or running the \
                 nginx/nginx-ingress image); install NIC 5.5 (https://docs.nginx.com/nginx-ingress-controller/install/){}",
                where_(given),
                install::NIC_POD_SELECTOR,
                if given.is_some() {
                    ", or give the namespace it runs in with --nic-namespace"
                } else {
                    ""
                }
            )));
        }
        [one] => *one,
        several => {
            let names: Vec<String> = several
                .iter()
                .map(|w| format!("{} in {}", w.reference(), w.namespace))
                .collect();
            return Err(ClusterError::Input(format!(
                "NGINX Ingress Controller runs as {}; the run needs one: pass --nic-namespace (one NIC per namespace)",
                names.join(", ")
            )));
        }
    };
    if nic.selector.is_empty() {
        return Err(ClusterError::Input(format!(
            "NIC's {} in {} selects its pods by expressions, not labels; pass --nic-namespace with a NIC whose selector has matchLabels",
            nic.reference(),
            nic.namespace
        )));
    }
    if nic.available < 1 {
        return Err(ClusterError::Failed(format!(
            "NIC's {} in {} has no available pod; see `kubectl -n {} describe {}`",
            nic.reference(),
            nic.namespace,
            nic.namespace,
            nic.reference()
        )));
    }
    let container = nic
        .containers
        .iter()
        .find(|c| nic_container(c))
        .or_else(|| {
            nic.containers
                .iter()
                .find(|c| c.name == install::NIC_DEPLOYMENT)
        })
        .or_else(|| nic.containers.first())
        .ok_or_else(|| {
            ClusterError::Input(format!("NIC's {} has no container", nic.reference()))
        })?;
    let watch = watch_scope(&container.args, &container.env).map_err(|e| {
        ClusterError::Input(format!(
            "NIC's {} in {}: {e}",
            nic.reference(),
            nic.namespace
        ))
    })?;
    Ok(NicPlace {
        namespace: nic.namespace.clone(),
        workload: nic.reference(),
        selector: nic
            .selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
        image: Some(container.image.clone()),
        watch,
    })
}

/// `$(NAME)` expanded as Kubernetes expands container arguments: a defined
/// name is replaced, `$$` is a `$`, anything else stays as written. Returns
/// the names that stayed unexpanded.
fn expand(text: &str, env: &Labels) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut unknown = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(name) = after.strip_prefix('(').and_then(|t| t.split_once(')')) {
            if let Some(value) = env.get(name.0) {
                out.push_str(value);
            } else {
                out.push_str(&format!("$({})", name.0));
                unknown.push(name.0.to_string());
            }
            rest = name.1;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    (out, unknown)
}

/// The last value of a string flag, as Go's flag package reads `-name=v`,
/// `--name=v`, `-name v` and `--name v`; parsing stops at `--`.
fn flag_value(args: &[String], name: &str) -> Option<String> {
    let mut value = None;
    let mut words = args.iter();
    while let Some(word) = words.next() {
        if word == "--" {
            break;
        }
        let Some(flag) = word.strip_prefix("--").or_else(|| word.strip_prefix('-')) else {
            continue;
        };
        match flag.split_once('=') {
            Some((n, v)) if n == name => value = Some(v.to_string()),
            None if flag == name => value = words.next().cloned(),
            _ => {}
        }
    }
    value
}

/// What NIC watches, from its container's arguments (after Kubernetes'
/// `$(VAR)` expansion), as NIC 5.5.4 reads them.
pub(crate) fn watch_scope(args: &[String], env: &Labels) -> Result<WatchScope, String> {
    let read = |name: &str| -> Result<Option<String>, String> {
        let Some(raw) = flag_value(args, name) else {
            return Ok(None);
        };
        let (value, unknown) = expand(&raw, env);
        if !unknown.is_empty() {
            return Err(format!(
                "-{name}={raw} names $({}), which is not a literal or metadata.namespace env value; \
                 the run cannot tell which namespaces NIC watches",
                unknown.join("), $(")
            ));
        }
        Ok(Some(value).filter(|v| !v.is_empty()))
    };
    let namespaces = read("watch-namespace")?;
    let label = read("watch-namespace-label")?;
    let secrets = read("watch-secret-namespace")?;
    let mut flags = Vec::new();
    let resources = match (namespaces, label) {
        (Some(_), Some(_)) => {
            return Err(
                "-watch-namespace and -watch-namespace-label are both set, which NIC refuses at start".into(),
            );
        }
        (Some(list), None) => {
            flags.push(format!("-watch-namespace={list}"));
            // NIC splits without trimming; an empty entry is every namespace.
            let list: Vec<String> = list.split(',').map(String::from).collect();
            if list.iter().any(String::is_empty) {
                Watched::All
            } else {
                Watched::Namespaces(list)
            }
        }
        (None, Some(selector)) => {
            parse_selector(&selector)?;
            flags.push(format!("-watch-namespace-label={selector}"));
            Watched::Labelled(selector)
        }
        (None, None) => Watched::All,
    };
    let secrets = secrets.map(|list| {
        flags.push(format!("-watch-secret-namespace={list}"));
        list.split(',').map(String::from).collect()
    });
    Ok(WatchScope {
        resources,
        secrets,
        flags: flags.join(" "),
    })
}

/// A label selector as Kubernetes writes them (`a=b,c!=d,e in (f,g),!h`).
fn parse_selector(text: &str) -> Result<Selector, String> {
    let bad = |why: &str| format!("-watch-namespace-label={text}: {why}");
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    let word = |w: &str| -> Result<String, String> {
        let w = w.trim();
        if w.is_empty() || w.contains(char::is_whitespace) {
            Err(bad(&format!("`{w}` is not a label key or value")))
        } else {
            Ok(w.to_string())
        }
    };
    let set = |values: &str| -> Result<BTreeSet<String>, String> {
        let inner = values
            .trim()
            .strip_prefix('(')
            .and_then(|v| v.strip_suffix(')'))
            .ok_or_else(|| bad("a set must be written `(a,b)`"))?;
        inner.split(',').map(&word).collect()
    };
    let mut expressions = Vec::new();
    for part in parts {
        let part = part.trim();
        let expression = if let Some(key) = part.strip_prefix('!') {
            Expression::DoesNotExist(word(key)?)
        } else if let Some((key, values)) = part.split_once(" notin ") {
            Expression::NotIn(word(key)?, set(values)?)
        } else if let Some((key, values)) = part.split_once(" in ") {
            Expression::In(word(key)?, set(values)?)
        } else if let Some((key, value)) = part.split_once("!=") {
            Expression::NotEqual(word(key)?, word(value)?)
        } else if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
            Expression::Equal(word(key)?, word(value)?)
        } else if part.contains(['<', '>']) {
            return Err(bad("`<` and `>` are not evaluated here"));
        } else {
            Expression::Exists(word(part)?)
        };
        expressions.push(expression);
    }
    Ok(expressions.into_iter().collect())
}

/// A namespace a scenario needs NIC to watch, and the first object that needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Need {
    pub namespace: String,
    /// `VirtualServer open-webui/open-webui (scenarios/x/30-vs.yaml:1)`.
    pub by: String,
    /// NIC reads Secrets there too (the object's TLS and CA Secrets).
    pub secrets: bool,
}

/// The namespaces NIC must watch for `scenario`: those of its Policies,
/// `VirtualServers`, `VirtualServerRoutes` and Ingresses (and their Secrets), and
/// those of Services an upstream names as `namespace/name`.
pub(crate) fn needed(scenario: &Scenario) -> Vec<Need> {
    let mut out: Vec<Need> = Vec::new();
    let mut add = |namespace: &str, by: String, secrets: bool| match out
        .iter_mut()
        .find(|n| n.namespace == namespace)
    {
        Some(n) => n.secrets |= secrets,
        None => out.push(Need {
            namespace: namespace.to_string(),
            by,
            secrets,
        }),
    };
    for o in &scenario.objects {
        let read_by_nic = matches!(
            o.id.kind,
            Kind::Policy | Kind::VirtualServer | Kind::VirtualServerRoute | Kind::Ingress
        );
        if !read_by_nic {
            continue;
        }
        let by = format!("{} ({})", o.id, o.origin());
        add(o.namespace(), by.clone(), true);
        let json = o.to_json();
        let upstreams = json
            .pointer("/spec/upstreams")
            .and_then(serde_json::Value::as_array);
        for service in upstreams
            .into_iter()
            .flatten()
            .filter_map(|u| u["service"].as_str())
        {
            if let Some((namespace, _)) = service.split_once('/') {
                add(
                    namespace,
                    format!("{by}, upstream service {service}"),
                    false,
                );
            }
        }
    }
    out
}

/// The informer NIC reads namespace `ns` with (`""`: its all-namespaces
/// one), or `None` when it does not watch `ns`.
fn informer(watch: &Watched, ns: &str, labels: Option<&Labels>) -> Result<Option<String>, String> {
    Ok(match watch {
        Watched::All => Some(String::new()),
        Watched::Namespaces(list) if list.iter().any(String::is_empty) => Some(String::new()),
        Watched::Namespaces(list) => list.iter().any(|n| n == ns).then(|| ns.to_string()),
        Watched::Labelled(selector) => parse_selector(selector)?
            .matches(labels.unwrap_or(&Labels::new()))
            .then(|| ns.to_string()),
    })
}

/// Every namespace of `scenario` that NIC would not watch, as a refusal that
/// says what to do; `labels` gives a namespace's labels (the scenario's
/// Namespace, or the cluster's), `None` when it has none.
pub(crate) fn unwatched(
    scenario: &Scenario,
    nic: &NicPlace,
    labels: &dyn Fn(&str) -> Option<Labels>,
) -> Vec<ClusterError> {
    let mut problems = Vec::new();
    let how = format!(
        "NIC's {} in {} runs with {}",
        nic.workload, nic.namespace, nic.watch.flags
    );
    for need in needed(scenario) {
        let ns = need.namespace.as_str();
        let found = labels(ns);
        let informer = match informer(&nic.watch.resources, ns, found.as_ref()) {
            Ok(i) => i,
            Err(e) => {
                problems.push(ClusterError::Input(e));
                continue;
            }
        };
        let Some(informer) = informer else {
            let fix = match &nic.watch.resources {
                Watched::Labelled(selector) => format!(
                    "give namespace {ns} the labels `{selector}` selects (its metadata.labels in the scenario, \
                     or `kubectl label namespace {ns} ...` where it exists), or run NIC without -watch-namespace-label"
                ),
                _ => format!("add {ns} to NIC's -watch-namespace, or run NIC without it"),
            };
            problems.push(ClusterError::Input(format!(
                "scenario {}: namespace {ns}, needed by {}, is not watched: {how}; {fix}",
                scenario.name, need.by
            )));
            continue;
        };
        let secrets_read = nic
            .watch
            .secrets
            .as_ref()
            .is_none_or(|list| list.iter().any(|s| s.is_empty() || *s == informer));
        if need.secrets && !secrets_read {
            problems.push(ClusterError::Input(format!(
                "scenario {}: NIC reads no Secrets in namespace {ns}, needed by {}: {how} (it reads Secrets only through \
                 the informers of those namespaces{}); add {ns} to -watch-secret-namespace, or run NIC without it",
                scenario.name,
                need.by,
                if informer.is_empty() {
                    ", and the one for every namespace is not among them"
                } else {
                    ""
                }
            )));
        }
    }
    problems
}

/// The labels a namespace will have when the scenario runs: the cluster's,
/// for one that exists and is not ours (it is used as it is); otherwise the
/// scenario's own Namespace, if it declares one, with the label the run
/// applies it with.
pub(crate) fn namespace_labels(
    scenario: &Scenario,
    live: Option<&Namespace>,
    ns: &str,
) -> Option<Labels> {
    let declared = scenario
        .objects
        .iter()
        .find(|o| o.id.kind == Kind::Namespace && o.name() == ns)
        .map(|o| {
            let mut labels = o.labels.clone();
            labels.insert(
                super::ownership::MANAGED_BY.into(),
                super::ownership::MANAGER.into(),
            );
            labels
        });
    let live_labels = live.map(|n| n.metadata.labels.clone().unwrap_or_default());
    let ours = live_labels.as_ref().is_some_and(|l| {
        l.get(super::ownership::MANAGED_BY).map(String::as_str) == Some(super::ownership::MANAGER)
    });
    match (live_labels, declared) {
        (Some(live), _) if !ours => Some(live),
        (_, Some(declared)) => Some(declared),
        (live, None) => live,
    }
}

/// The note `plan` and `run` give for `--image` on an existing cluster: an
/// image without a registry (`mtls-e2e:e2e`) is used as the cluster finds it.
pub(crate) fn image_note(image: &str) -> Option<String> {
    (!image.contains('/')).then(|| {
        format!(
            "image {image} names no registry: the cluster's nodes must already have it (a kind cluster after \
             `kind load docker-image {image}`, or a desktop cluster sharing this machine's Docker); otherwise our \
             pods end in ErrImagePull (push it and pass --image REGISTRY/mtls-e2e:TAG)"
        )
    })
}

/// Every Deployment and `DaemonSet` in `namespace` (all namespaces when `None`).
pub(crate) async fn observe(
    client: &kube::Client,
    namespace: Option<&str>,
) -> Result<Vec<Workload>, ClusterError> {
    let lp = kube::api::ListParams::default();
    let (deployments, daemonsets): (kube::Api<Deployment>, kube::Api<DaemonSet>) = match namespace {
        Some(ns) => (
            kube::Api::namespaced(client.clone(), ns),
            kube::Api::namespaced(client.clone(), ns),
        ),
        None => (
            kube::Api::all(client.clone()),
            kube::Api::all(client.clone()),
        ),
    };
    let listed = |e: kube::Error| {
        let text = crate::net::error_chain(&e);
        if matches!(&e, kube::Error::Api(r) if r.code == 403) {
            ClusterError::Missing(format!(
                "cannot list Deployments and DaemonSets {} ({text}); give the namespaces with \
                 --cert-manager-namespace and --nic-namespace",
                where_(namespace)
            ))
        } else {
            ClusterError::Failed(format!("listing Deployments and DaemonSets: {text}"))
        }
    };
    let mut out: Vec<Workload> = deployments
        .list(&lp)
        .await
        .map_err(listed)?
        .items
        .iter()
        .filter_map(Workload::from_deployment)
        .collect();
    out.extend(
        daemonsets
            .list(&lp)
            .await
            .map_err(listed)?
            .items
            .iter()
            .filter_map(Workload::from_daemonset),
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(ToString::to_string).collect()
    }

    fn workload(kind: &'static str, ns: &str, name: &str, image: &str, args: &[&str]) -> Workload {
        Workload {
            kind,
            namespace: ns.into(),
            name: name.into(),
            labels: Labels::new(),
            selector: labels(&[("app", name)]),
            containers: vec![Container {
                name: name.into(),
                image: image.into(),
                args: words(args),
                env: labels(&[("POD_NAMESPACE", ns)]),
            }],
            available: 1,
        }
    }

    fn scenario(name: &str) -> Scenario {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios")
            .join(name);
        Scenario::load(&dir).expect("scenario")
    }

    /// cert-manager and NIC are found wherever they run, by image or label;
    /// none, several, or one without an available pod is said, with what to do.
    #[test]
    fn controllers_are_found_wherever_they_run() {
        let mut helm_nic = workload(
            "daemonset",
            "ingress",
            "edge-nginx-ingress",
            "private.example/nginx-plus-ingress:5.5.4",
            &[],
        );
        helm_nic.labels = labels(&[("app.kubernetes.io/name", "nginx-ingress")]);
        let observed = vec![
            workload(
                "deployment",
                "kube-system",
                "coredns",
                "registry.k8s.io/coredns/coredns:v1.11.1",
                &[],
            ),
            workload(
                "deployment",
                "security",
                "cm",
                "quay.io/jetstack/cert-manager-controller:v1.19.4",
                &[],
            ),
            workload(
                "deployment",
                "security",
                "cm-webhook",
                "quay.io/jetstack/cert-manager-webhook:v1.19.4",
                &[],
            ),
            helm_nic,
        ];
        assert_eq!(
            find_cert_manager(&observed, None).expect("found"),
            "security"
        );
        let nic = find_nic(&observed, None).expect("found");
        assert_eq!(
            (
                nic.namespace.as_str(),
                nic.workload.as_str(),
                nic.selector.as_str()
            ),
            (
                "ingress",
                "daemonset/edge-nginx-ingress",
                "app=edge-nginx-ingress"
            )
        );
        assert_eq!(nic.watch, WatchScope::everything());

        let missing = find_nic(&observed, Some("nginx-ingress")).expect_err("not there");
        assert!(
            matches!(&missing, ClusterError::Missing(m) if m.contains("in namespace nginx-ingress") && m.contains("--nic-namespace")),
            "{missing}"
        );
        let none = find_cert_manager(&observed[..1], None).expect_err("none");
        assert!(
            matches!(&none, ClusterError::Missing(m) if m.contains("kubectl apply -f https://github.com/cert-manager")),
            "{none}"
        );
        let mut two = observed.clone();
        two.push(workload(
            "deployment",
            "nginx-ingress",
            "nginx-ingress",
            "nginx/nginx-ingress:5.3.4",
            &[],
        ));
        assert!(
            matches!(find_nic(&two, None), Err(ClusterError::Input(m)) if m.contains("--nic-namespace"))
        );
        assert_eq!(
            find_nic(&two, Some("nginx-ingress"))
                .expect("chosen")
                .namespace,
            "nginx-ingress"
        );
        let mut down = two.clone();
        down.last_mut().expect("nic").available = 0;
        assert!(
            matches!(find_nic(&down, Some("nginx-ingress")), Err(ClusterError::Failed(m)) if m.contains("no available pod"))
        );
    }

    /// NIC's flags as Go's flag package reads them, after Kubernetes expands
    /// `$(POD_NAMESPACE)`; the last one wins; `--` ends them.
    #[test]
    fn nics_watched_namespaces_are_read_from_its_arguments() {
        let env = labels(&[("POD_NAMESPACE", "nginx-ingress")]);
        let scope = |args: &[&str]| watch_scope(&words(args), &env);
        assert_eq!(
            scope(&["-nginx-configmaps=$(POD_NAMESPACE)/nginx-config"]),
            Ok(WatchScope::everything())
        );
        let listed = scope(&[
            "-watch-namespace=a",
            "--watch-namespace",
            "open-webui,$(POD_NAMESPACE)",
        ])
        .expect("parsed");
        assert_eq!(
            listed.resources,
            Watched::Namespaces(words(&["open-webui", "nginx-ingress"]))
        );
        assert_eq!(listed.flags, "-watch-namespace=open-webui,nginx-ingress");
        assert_eq!(
            scope(&["-watch-namespace=a,"]).expect("parsed").resources,
            Watched::All
        );
        assert_eq!(
            scope(&["-watch-namespace="]).expect("parsed").resources,
            Watched::All
        );
        assert_eq!(
            scope(&["--", "-watch-namespace=a"])
                .expect("parsed")
                .resources,
            Watched::All
        );
        let labelled = scope(&["-watch-namespace-label=team in (ai,web),!legacy"]).expect("parsed");
        assert_eq!(
            labelled.resources,
            Watched::Labelled("team in (ai,web),!legacy".into())
        );
        assert!(
            scope(&["-watch-namespace=a", "-watch-namespace-label=x=y"])
                .expect_err("both")
                .contains("NIC refuses")
        );
        assert!(
            scope(&["-watch-namespace=$(TARGET)"])
                .expect_err("unknown")
                .contains("$(TARGET)")
        );
        let secrets = scope(&["-watch-secret-namespace=a,b"]).expect("parsed");
        assert_eq!(secrets.secrets, Some(words(&["a", "b"])));
        assert_eq!(
            expand("$$(X)-$(POD_NAMESPACE)-$", &env),
            ("$(X)-nginx-ingress-$".to_string(), Vec::new())
        );
    }

    #[test]
    fn label_selectors_match_as_kubernetes_does() {
        let matches = |selector: &str, pairs: &[(&str, &str)]| {
            parse_selector(selector)
                .expect("selector")
                .matches(&labels(pairs))
        };
        assert!(matches("team=ai", &[("team", "ai")]));
        assert!(matches("team==ai,env", &[("team", "ai"), ("env", "x")]));
        assert!(!matches("team=ai,env", &[("team", "ai")]));
        assert!(matches("team!=ai", &[]));
        assert!(matches("team in (ai, web)", &[("team", "web")]));
        assert!(!matches("team notin (ai,web)", &[("team", "ai")]));
        assert!(matches("!legacy", &[("team", "ai")]));
        assert!(parse_selector("count>1").is_err());
        assert!(parse_selector("team in ai").is_err());
    }

    fn nic_with(watch: WatchScope) -> NicPlace {
        NicPlace {
            watch,
            ..NicPlace::installed()
        }
    }

    /// A scenario whose namespaces NIC does not watch is refused up front,
    /// saying which object needs which namespace and what to change.
    #[test]
    fn a_scenario_outside_nics_namespaces_is_refused_with_what_to_do() {
        let s = scenario("upstream-references");
        let needs: Vec<String> = needed(&s).into_iter().map(|n| n.namespace).collect();
        assert!(
            needs.len() >= 2,
            "the VirtualServer's and its upstream's namespace: {needs:?}"
        );
        let none = |_: &str| None;
        assert!(unwatched(&s, &nic_with(WatchScope::everything()), &none).is_empty());
        let only_first = watch_scope(
            &words(&[&format!("-watch-namespace={}", needs[0])]),
            &Labels::new(),
        )
        .expect("scope");
        let refused = unwatched(&s, &nic_with(only_first), &none);
        assert_eq!(refused.len(), needs.len() - 1, "{refused:?}");
        let text = refused[0].to_string();
        assert!(
            text.contains(&needs[1]) && text.contains("add") && text.contains("-watch-namespace"),
            "{text}"
        );
        assert!(matches!(refused[0], ClusterError::Input(_)));

        let s = scenario("openwebui-ingress-mtls");
        let labelled = watch_scope(&words(&["-watch-namespace-label=mtls=yes"]), &Labels::new())
            .expect("scope");
        let refused = unwatched(&s, &nic_with(labelled.clone()), &none);
        assert!(
            refused[0].to_string().contains("labels `mtls=yes`"),
            "{refused:?}"
        );
        let with_label = |_: &str| Some(labels(&[("mtls", "yes")]));
        assert!(unwatched(&s, &nic_with(labelled), &with_label).is_empty());

        // Secrets are read only through the informers of -watch-secret-namespace:
        // NIC watching every namespace with -watch-secret-namespace=x reads none.
        let secrets = watch_scope(
            &words(&["-watch-secret-namespace=elsewhere"]),
            &Labels::new(),
        )
        .expect("scope");
        let refused = unwatched(&s, &nic_with(secrets), &none);
        assert!(
            refused[0].to_string().contains("reads no Secrets"),
            "{refused:?}"
        );
        let secrets = watch_scope(
            &words(&[
                "-watch-namespace=open-webui",
                "-watch-secret-namespace=open-webui",
            ]),
            &Labels::new(),
        )
        .expect("scope");
        assert!(unwatched(&s, &nic_with(secrets), &none).is_empty());
    }

    #[test]
    fn a_namespace_has_the_labels_it_will_have_when_the_scenario_runs() {
        let s = scenario("openwebui-ingress-mtls");
        let live = |pairs: &[(&str, &str)]| Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some("open-webui".into()),
                labels: Some(labels(pairs)),
                ..Default::default()
            },
            ..Default::default()
        };
        let declared = namespace_labels(&s, None, "open-webui").expect("declared");
        assert_eq!(
            declared
                .get(super::super::ownership::MANAGED_BY)
                .map(String::as_str),
            Some(super::super::ownership::MANAGER),
            "applied with our label"
        );
        let someone_elses = live(&[("team", "web")]);
        assert_eq!(
            namespace_labels(&s, Some(&someone_elses), "open-webui"),
            Some(labels(&[("team", "web")]))
        );
        let ours = live(&[(
            super::super::ownership::MANAGED_BY,
            super::super::ownership::MANAGER,
        )]);
        assert_eq!(
            namespace_labels(&s, Some(&ours), "open-webui"),
            Some(declared)
        );
        assert_eq!(namespace_labels(&s, None, "nowhere"), None);
    }

    #[test]
    fn a_local_image_is_accepted_with_a_warning() {
        let note = image_note("mtls-e2e:e2e").expect("a note");
        assert!(
            note.contains("kind load docker-image mtls-e2e:e2e"),
            "{note}"
        );
        assert_eq!(image_note("registry.example.com/mtls-e2e:1.0"), None);
        assert_eq!(
            repository_name("docker.io/nginx/nginx-ingress:5.5.4@sha256:ab"),
            "nginx-ingress"
        );
        assert_eq!(
            repository_name("localhost:5000/nginx-ingress"),
            "nginx-ingress"
        );
    }
}
