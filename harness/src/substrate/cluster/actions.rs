//! A scenario's run on a cluster as a list of actions. `apply::up` and
//! `apply::down` execute the lists below and `plan` prints the same lists, so
//! the golden plan pins what a run does, in the order it does it. Building a
//! list is pure: what the cluster holds is only known when it runs (which
//! namespaces are reused, which objects are ours), so an action that depends
//! on it says so in its line. Installing cert-manager and NIC on kind is a
//! list of the same kind.

use crate::manifest::ServicePort;
use std::fmt::Write;
use std::time::Duration;

use super::{ClusterError, ClusterOptions, Mode, apply, install, ownership, readiness};
use crate::manifest::{Kind, Object, ObjectRef};
use crate::scenario::spec::StepSpec;
use crate::scenario::{Scenario, steps};

/// What bringing a scenario up does, one action at a time.
pub(crate) enum Action<'a> {
    /// Read every object of the scenario: one that exists and is not ours stops
    /// the run (unless adopted); a Namespace that exists is reused.
    ObserveOwnership {
        adopt: Vec<&'a ObjectRef>,
    },
    /// Wait until these namespaces, deleted by an earlier run, are gone (a
    /// reused one is not waited for).
    WaitNamespacesGone(Vec<&'a Object>),
    /// Server-side apply (a reused Namespace is skipped; an adopted object
    /// goes without our label).
    Apply {
        object: &'a Object,
        image: &'a str,
    },
    /// A tutorial step against the cluster's Secrets; its results applied by
    /// the same ownership rule.
    RunStep {
        index: usize,
        step: &'a StepSpec,
    },
    WaitCertificate(&'a Object),
    WaitDeployment(&'a Object),
    /// NIC's state for a Policy, `VirtualServer` or Ingress.
    WaitState {
        object: &'a Object,
        expected: &'a str,
    },
    /// Until NIC serves the scenario's upstreams with their endpoints: each
    /// upstream Service's `EndpointSlices` have a ready endpoint, and `nginx -T`
    /// in NIC's pod lists one in the scenario's upstreams (`readiness`).
    WaitServing {
        upstreams: Vec<readiness::UpstreamRef>,
        pod: NicPod<'a>,
    },
    /// Until NIC answers each host the checks reach through it (a connection,
    /// and on 443 a TLS handshake; no request).
    WaitFirstAnswers(Vec<readiness::FirstProbe>),
    /// A Service a check probes directly.
    PortForward(ServicePort),
    /// `nginx -T` in NIC's pod, for the checks that share state.
    ReadServedConf(NicPod<'a>),
    /// The Secrets the probes' identities and trust read (`ns/name` each).
    ReadProbeSecrets(Vec<&'a str>),
}

/// Where `kubectl exec` finds NIC: the run uses the place the preflight
/// found (`Cluster::nic`); the plan says how it is found.
#[derive(Clone, Copy)]
pub(crate) enum NicPod<'a> {
    /// kind: the Deployment the install made.
    Deployment {
        namespace: &'static str,
        name: &'static str,
    },
    /// An existing cluster: a running pod of the workload the preflight
    /// found, in this namespace if given.
    Found { namespace: Option<&'a str> },
}

/// What taking a scenario down does (`--keep` skips all of it).
pub(crate) enum Teardown<'a> {
    /// Read every object again: only what carries our label is deleted.
    Observe,
    /// A Namespace or cluster-scoped object, if ours.
    Delete(&'a Object),
    /// Namespaced objects of ours whose namespace is not deleted with them
    /// (it existed before, or the scenario does not declare it).
    DeleteOutsideOurNamespaces(Vec<&'a Object>),
    /// In a namespace that was not ours: the Secrets this run's steps made.
    DeleteStepSecrets,
}

/// When an action runs, for the phase timings a report shows: each phase
/// follows the one before, and the list never goes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    ApplyAndSteps,
    Certificates,
    Pods,
    Controller,
    PortForwards,
    /// After the timed phases.
    Untimed,
}

impl Phase {
    pub(crate) const TIMED: [Phase; 5] = [
        Phase::ApplyAndSteps,
        Phase::Certificates,
        Phase::Pods,
        Phase::Controller,
        Phase::PortForwards,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Phase::ApplyAndSteps => "apply and steps",
            Phase::Certificates => "certificates",
            Phase::Pods => "pods",
            Phase::Controller => "controller",
            Phase::PortForwards => "port-forwards",
            Phase::Untimed => "",
        }
    }
}

/// Kinds NIC reports a state for.
fn has_state(kind: Kind) -> bool {
    matches!(kind, Kind::Policy | Kind::VirtualServer | Kind::Ingress)
}

/// Bringing `scenario` up: ownership first (nothing is applied before we know
/// nothing of someone else's is in the way), then the objects in apply order,
/// the steps (they read Secrets cert-manager writes), the waits, the forwards.
pub(crate) fn up<'a>(scenario: &'a Scenario, options: &'a ClusterOptions) -> Vec<Action<'a>> {
    let mut list = vec![Action::ObserveOwnership {
        adopt: options
            .adopt
            .iter()
            .filter(|id| scenario.declares(id))
            .collect(),
    }];
    let namespaces: Vec<&Object> = scenario
        .objects
        .iter()
        .filter(|o| o.id.kind == Kind::Namespace)
        .collect();
    if !namespaces.is_empty() {
        list.push(Action::WaitNamespacesGone(namespaces));
    }
    for object in apply::ordered(&scenario.objects) {
        list.push(Action::Apply {
            object,
            image: &options.image,
        });
    }
    for (index, step) in scenario.spec.steps.iter().enumerate() {
        list.push(Action::RunStep { index, step });
    }
    let of_kind = |kind: Kind| scenario.objects.iter().filter(move |o| o.id.kind == kind);
    list.extend(of_kind(Kind::Certificate).map(Action::WaitCertificate));
    list.extend(of_kind(Kind::Deployment).map(Action::WaitDeployment));
    for object in scenario.objects.iter().filter(|o| has_state(o.id.kind)) {
        list.push(Action::WaitState {
            object,
            expected: scenario.expected_state(&object.id.to_string()).as_str(),
        });
    }
    let pod = nic_pod(options);
    let upstreams = readiness::upstreams(scenario);
    if !upstreams.is_empty() {
        list.push(Action::WaitServing { upstreams, pod });
    }
    let first = readiness::first_probes(scenario);
    if !first.is_empty() {
        list.push(Action::WaitFirstAnswers(first));
    }
    for service in apply::forwarded_services(scenario) {
        list.push(Action::PortForward(service));
    }
    list.push(Action::ReadServedConf(pod));
    list.push(Action::ReadProbeSecrets(probe_secret_keys(scenario)));
    list
}

/// Where `kubectl exec` reaches NIC for `options`.
fn nic_pod(options: &ClusterOptions) -> NicPod<'_> {
    match &options.mode {
        Mode::Kind { .. } => NicPod::Deployment {
            namespace: install::NIC_NAMESPACE,
            name: install::NIC_DEPLOYMENT,
        },
        Mode::Existing { nic_namespace, .. } => NicPod::Found {
            namespace: nic_namespace.as_deref(),
        },
    }
}

impl NicPod<'_> {
    /// `kubectl exec`'s words for it, in the plan.
    fn shown(&self) -> String {
        match self {
            NicPod::Deployment { namespace, name } => format!("-n {namespace} deployment/{name}"),
            NicPod::Found { namespace } => format!(
                "-n {} pod/<a running pod of NIC's Deployment or DaemonSet, found in the preflight>",
                namespace.unwrap_or("<NIC's namespace>")
            ),
        }
    }
}

/// The Secrets a scenario's identities and trust read, `ns/name`, once each.
pub(crate) fn probe_secret_keys(scenario: &Scenario) -> Vec<&str> {
    let mut keys: Vec<&str> = Vec::new();
    for id in scenario.spec.identities.values() {
        keys.extend(id.secret.as_deref());
        keys.extend(
            id.issue
                .as_ref()
                .and_then(|i| i.signed_by.secret.as_deref()),
        );
    }
    keys.extend(
        scenario
            .spec
            .trust
            .values()
            .filter_map(|t| t.secret.as_deref()),
    );
    let mut seen = std::collections::BTreeSet::new();
    keys.retain(|k| seen.insert(*k));
    keys
}

/// Taking `scenario` down: namespaces are not waited for (namespace deletion
/// is slow by design).
pub(crate) fn down(scenario: &Scenario) -> Vec<Teardown<'_>> {
    let mut list = vec![Teardown::Observe];
    let (whole, inside): (Vec<&Object>, Vec<&Object>) = scenario
        .objects
        .iter()
        .partition(|o| o.id.kind == Kind::Namespace || o.id.namespace.is_none());
    list.extend(whole.into_iter().map(Teardown::Delete));
    if !inside.is_empty() {
        list.push(Teardown::DeleteOutsideOurNamespaces(inside));
    }
    list.push(Teardown::DeleteStepSecrets);
    list
}

impl Action<'_> {
    pub(crate) fn phase(&self) -> Phase {
        match self {
            Action::ObserveOwnership { .. }
            | Action::WaitNamespacesGone(_)
            | Action::Apply { .. }
            | Action::RunStep { .. } => Phase::ApplyAndSteps,
            Action::WaitCertificate(_) => Phase::Certificates,
            Action::WaitDeployment(_) => Phase::Pods,
            Action::WaitState { .. } | Action::WaitServing { .. } | Action::WaitFirstAnswers(_) => {
                Phase::Controller
            }
            Action::PortForward(_) => Phase::PortForwards,
            Action::ReadServedConf(_) | Action::ReadProbeSecrets(_) => Phase::Untimed,
        }
    }

    /// The action's lines in the plan.
    pub(crate) fn describe(&self, w: &mut String) {
        match self {
            Action::ObserveOwnership { adopt } => {
                let _ = writeln!(
                    w,
                    "  before anything is applied, each object below is read: one that exists without the label {}={} is not ours, so the run stops \
                     (a Namespace that exists is used as it is and never deleted)",
                    ownership::MANAGED_BY,
                    ownership::MANAGER
                );
                for id in adopt {
                    let _ = writeln!(
                        w,
                        "  --adopt {}: if it exists and is not ours, it is overwritten as the scenario says, without our label, and never deleted",
                        ownership::adopt_arg(id)
                    );
                }
            }
            Action::WaitNamespacesGone(namespaces) => {
                let names: Vec<&str> = namespaces.iter().map(|o| o.name()).collect();
                let _ = writeln!(
                    w,
                    "  then wait (<= {} s) until namespace(s) {}, unless used as they are, are not terminating (an earlier run's deletion is not waited for)",
                    apply::NAMESPACE_DEADLINE.as_secs(),
                    names.join(", ")
                );
            }
            Action::Apply { object, image } => {
                let _ = writeln!(w, "  --- {} ({})", object.id, object.origin());
                let json = apply::manifest_json(object, image);
                for line in serde_json::to_string_pretty(&json)
                    .unwrap_or_default()
                    .lines()
                {
                    let _ = writeln!(w, "    {line}");
                }
            }
            Action::RunStep { step, .. } => {
                let _ = writeln!(w, "  step ({}):", step_heading(step));
                for line in steps::describe(step).lines() {
                    let _ = writeln!(w, "    {line}");
                }
            }
            Action::WaitCertificate(o) => {
                let _ = writeln!(
                    w,
                    "  wait (<= {} s): {} Ready, for its current generation (the condition's observedGeneration)",
                    apply::CERTIFICATE_DEADLINE.as_secs(),
                    o.id
                );
            }
            Action::WaitDeployment(o) => {
                let _ = writeln!(
                    w,
                    "  wait (<= {} s): {} rolled out (observedGeneration current, every replica updated, none old, all available; a timeout says why its pods are not ready)",
                    apply::DEPLOYMENT_DEADLINE.as_secs(),
                    o.id
                );
            }
            Action::WaitState { object, expected } => {
                let how = if object.id.kind == Kind::Ingress {
                    "NIC's latest event on this very object (by last occurrence, then write order) says"
                } else {
                    "status.state is"
                };
                let _ = writeln!(
                    w,
                    "  wait (<= {} s): {} {how} {expected}",
                    apply::STATE_DEADLINE.as_secs(),
                    object.id
                );
            }
            Action::WaitServing { upstreams, pod } => {
                let _ = writeln!(
                    w,
                    "  wait (<= {} s): NIC serves the scenario's upstreams with their endpoints (NIC records no event or status when only endpoints change):",
                    apply::SERVING_DEADLINE.as_secs()
                );
                let _ = writeln!(
                    w,
                    "    each Service's EndpointSlices ({}=NAME) have an endpoint with conditions.ready true on its port \
                     (a Service NIC has no endpoints for by design, ExternalName or missing, is named and not waited for):",
                    readiness::SERVICE_NAME_LABEL
                );
                for u in upstreams {
                    let _ = writeln!(w, "      {} (from {})", u.label(), u.owner);
                }
                let _ = writeln!(
                    w,
                    "    then an upstream of the scenario's configuration lists one of them (not NIC's 502 server):\n    $ kubectl exec {} -- nginx -T",
                    pod.shown()
                );
            }
            Action::WaitFirstAnswers(probes) => {
                let _ = writeln!(
                    w,
                    "  wait (<= {} s): NIC answers each host the checks reach through it, with no request sent (nothing reaches an upstream); \
                     a refused, reset or closed connection is tried again, anything else is an answer:",
                    apply::FIRST_ANSWER_DEADLINE.as_secs()
                );
                for p in probes {
                    let how = if p.tls {
                        "a TLS handshake with that SNI, no client certificate"
                    } else {
                        "a TCP connection"
                    };
                    let _ = writeln!(w, "    {}:{}: {how}", p.host, p.port);
                }
            }
            Action::PortForward(service) => {
                let _ = writeln!(
                    w,
                    "  port-forward: Service {service} -> 127.0.0.1:(free port)"
                );
            }
            Action::ReadServedConf(pod) => {
                let _ = writeln!(
                    w,
                    "  read NIC's configuration as nginx loaded it, to find checks that share state (without it none are grouped):\n    $ kubectl exec {} -- nginx -T",
                    pod.shown()
                );
            }
            Action::ReadProbeSecrets(keys) => {
                if keys.is_empty() {
                    let _ = writeln!(
                        w,
                        "  the probes read no Secret (their identities and trust are files or issued here)"
                    );
                } else {
                    let _ = writeln!(
                        w,
                        "  read the Secrets the probes' identities and trust use: {}",
                        keys.join(", ")
                    );
                }
            }
        }
    }
}

impl Teardown<'_> {
    /// The action's lines in the plan.
    pub(crate) fn describe(&self, w: &mut String) {
        match self {
            Teardown::Observe => {
                let _ = writeln!(
                    w,
                    "  teardown (unless --keep), each only if it carries {}={} (a namespace that existed before is never deleted):",
                    ownership::MANAGED_BY,
                    ownership::MANAGER
                );
            }
            Teardown::Delete(o) => {
                let _ = writeln!(w, "    delete {}", o.id);
            }
            Teardown::DeleteOutsideOurNamespaces(objects) => {
                let _ = writeln!(
                    w,
                    "    delete each of the other {} object(s), if its namespace is not deleted with it (it existed before, or the scenario does not declare it)",
                    objects.len()
                );
            }
            Teardown::DeleteStepSecrets => {
                let _ = writeln!(
                    w,
                    "    in a namespace that was not ours: the Secrets the steps made (label {}=<run id>)",
                    ownership::RUN
                );
            }
        }
    }
}

/// The plan's lines for bringing a scenario up: each action's, with one
/// heading over the objects applied.
pub(crate) fn narrate_up(actions: &[Action], w: &mut String) {
    let mut applying = false;
    for action in actions {
        let apply = matches!(action, Action::Apply { .. });
        if apply && !applying {
            let _ = writeln!(
                w,
                "  apply (server-side, strict field validation; every object labelled {}={} and {}=<run id>), in order:",
                ownership::MANAGED_BY,
                ownership::MANAGER,
                ownership::RUN
            );
        }
        applying = apply;
        action.describe(w);
    }
}

/// The plan's lines for taking a scenario down.
pub(crate) fn narrate_down(actions: &[Teardown], w: &mut String) {
    for action in actions {
        action.describe(w);
    }
}

/// What a step does with the cluster, for its heading in the plan: only a
/// step that reads a Secret waits for cert-manager to write it.
fn step_heading(step: &StepSpec) -> String {
    if step.openssl.is_some() {
        "openssl, in the scenario's work folder".into()
    } else if step.write_file.is_some() {
        "a file in the scenario's work folder".into()
    } else if let Some(c) = &step.create_secret {
        format!(
            "Secret {} made from work-folder files, then applied",
            c.name
        )
    } else if let Some(c) = &step.copy_secret {
        format!(
            "reads Secret {} from the cluster, waiting for cert-manager to write it; Secret {} applied",
            c.from, c.to
        )
    } else {
        "nothing".into()
    }
}

/// What is checked before a run does anything, in the order the run needs
/// it. All of it runs and everything missing is listed at once.
pub(crate) enum Preflight<'a> {
    /// A tool on PATH (or `$MTLS_E2E_<NAME>`).
    Tool(&'static str),
    /// The Docker daemon answers `docker info`.
    DockerDaemon,
    /// The kubeconfig's context reaches its API server.
    Cluster { context: Option<&'a str> },
    /// cert-manager's Deployments, and its webhook refusing an invalid
    /// `ClusterIssuer` (the sign it serves).
    CertManager { namespace: Option<&'a str> },
    /// NIC's Deployment or `DaemonSet` with a pod available, its version and
    /// the namespaces it watches.
    Nic {
        namespace: Option<&'a str>,
        version: Option<&'a str>,
    },
    /// Each scenario's namespaces are ones NIC watches.
    WatchedNamespaces(Vec<(&'a str, Vec<String>)>),
    /// Where the image our Deployments run comes from.
    Image(&'a str),
}

/// The preflight of `options`' substrate for `scenarios`.
pub(crate) fn preflight<'a>(
    options: &'a ClusterOptions,
    scenarios: &[&'a Scenario],
) -> Vec<Preflight<'a>> {
    match &options.mode {
        Mode::Kind { .. } => vec![
            Preflight::Tool("kind"),
            Preflight::Tool("docker"),
            Preflight::DockerDaemon,
            Preflight::Tool("kubectl"),
            Preflight::Tool("openssl"),
        ],
        Mode::Existing {
            context,
            nic_namespace,
            cert_manager_namespace,
        } => vec![
            Preflight::Tool("kubectl"),
            Preflight::Tool("openssl"),
            Preflight::Cluster {
                context: context.as_deref(),
            },
            Preflight::CertManager {
                namespace: cert_manager_namespace.as_deref(),
            },
            Preflight::Nic {
                namespace: nic_namespace.as_deref(),
                version: options.nic.as_deref(),
            },
            Preflight::WatchedNamespaces(
                scenarios
                    .iter()
                    .filter(|s| runs_here(s, options, options.nic.as_deref()))
                    .map(|s| {
                        let needed = super::controllers::needed(s);
                        (
                            s.name.as_str(),
                            needed.into_iter().map(|n| n.namespace).collect(),
                        )
                    })
                    .collect(),
            ),
            Preflight::Image(&options.image),
        ],
    }
}

/// Whether `scenario` runs on `options`' substrate (with NIC `nic`, when
/// known): a skipped one needs nothing of the cluster.
pub(crate) fn runs_here(scenario: &Scenario, options: &ClusterOptions, nic: Option<&str>) -> bool {
    scenario.substrate_skip(options.label()).is_none()
        && nic.is_none_or(|v| super::skip_reason(scenario, v).is_none())
}

impl Preflight<'_> {
    /// The check's lines in the plan.
    pub(crate) fn describe(&self, w: &mut String) {
        let found = |namespace: Option<&str>| {
            namespace.map_or_else(|| "found".to_string(), |ns| format!("in namespace {ns}"))
        };
        match self {
            Preflight::Tool(name) => {
                let _ = writeln!(
                    w,
                    "  {name} on PATH (or MTLS_E2E_{}); else exit 3, saying how to install it",
                    name.to_uppercase()
                );
            }
            Preflight::DockerDaemon => {
                let _ = writeln!(
                    w,
                    "  $ docker info --format {{{{.ServerVersion}}}}   (the daemon answers; else exit 3)"
                );
            }
            Preflight::Cluster { context } => {
                let _ = writeln!(
                    w,
                    "  the kubeconfig (KUBECONFIG or ~/.kube/config), context {}, reaches its API server; else exit 3 without a kubeconfig, 4 when it does not answer",
                    context.unwrap_or("(current)")
                );
            }
            Preflight::CertManager { namespace } => {
                let _ = writeln!(
                    w,
                    "  cert-manager: its Deployments {} (labelled app.kubernetes.io/name=cert-manager or running a cert-manager-* image; else exit 3), and its webhook serving: \
                     this server-side dry-run create must be refused by the webhook, not accepted (<= {} s; else exit 3):\n    {}",
                    found(*namespace),
                    install::EXISTING_WEBHOOK_DEADLINE.as_secs(),
                    install::webhook_probe()
                );
            }
            Preflight::Nic { namespace, version } => {
                let _ = writeln!(
                    w,
                    "  NIC: its Deployment or DaemonSet {} (labelled {} or running the nginx/nginx-ingress image; else exit 3) with a pod available (else exit 4); \
                     its version {}; the namespaces it watches from its -watch-namespace, -watch-namespace-label and -watch-secret-namespace arguments",
                    found(*namespace),
                    install::NIC_POD_SELECTOR,
                    version
                        .map_or_else(|| "from its image".to_string(), |v| format!("{v} (given)"))
                );
            }
            Preflight::WatchedNamespaces(scenarios) => {
                let _ = writeln!(
                    w,
                    "  NIC must watch (and read Secrets in) the namespaces of each scenario that runs; else the run is refused before anything is applied (exit 2):"
                );
                for (name, namespaces) in scenarios {
                    let _ = writeln!(w, "    {name}: {}", namespaces.join(", "));
                }
            }
            Preflight::Image(image) => {
                let how = super::controllers::image_note(image)
                    .unwrap_or_else(|| "your cluster must be able to pull it".into());
                let _ = writeln!(w, "  our Deployments run image {image}: {how}");
            }
        }
    }
}

/// A release the kind substrate installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Release<'a> {
    CertManager,
    /// NGINX Ingress Controller at this version.
    Nic(&'a str),
}

/// Installing a release on kind, one action at a time.
pub(crate) enum Install<'a> {
    /// Every object of the release's downloads: CRDs first, waited for until
    /// Established, then the rest.
    Apply(Release<'a>),
    /// Until cert-manager's webhook refuses an invalid server-side dry-run create.
    WaitWebhook { deadline: Duration },
    /// Until a Deployment has its replicas available.
    WaitAvailable {
        namespace: &'static str,
        name: &'static str,
        deadline: Duration,
    },
}

/// Installing cert-manager and NIC `nic` on kind: the lists run at the same
/// time, each in order (the downloads are fetched before either starts).
pub(crate) fn installs(nic: &str) -> [Vec<Install<'_>>; 2] {
    [
        vec![
            Install::Apply(Release::CertManager),
            Install::WaitWebhook {
                deadline: install::WEBHOOK_DEADLINE,
            },
        ],
        vec![
            Install::Apply(Release::Nic(nic)),
            Install::WaitAvailable {
                namespace: install::NIC_NAMESPACE,
                name: install::NIC_DEPLOYMENT,
                deadline: install::NIC_DEADLINE,
            },
        ],
    ]
}

impl Install<'_> {
    /// The action's lines in the plan.
    pub(crate) fn describe(&self, w: &mut String) -> Result<(), ClusterError> {
        match self {
            Install::Apply(Release::CertManager) => {
                let _ = writeln!(
                    w,
                    "  cert-manager {}: every object of {}, in file order",
                    install::CERT_MANAGER_VERSION,
                    install::cert_manager().name
                );
            }
            Install::Apply(Release::Nic(version)) => {
                let _ = writeln!(
                    w,
                    "  NGINX Ingress Controller {version}: every object of these, in order:"
                );
                for d in install::nic_downloads(version)? {
                    let _ = writeln!(w, "    {}", d.name);
                }
                let mut example = serde_json::json!({"spec": {"template": {"spec": {"containers": [{
                    "name": install::NIC_DEPLOYMENT,
                    "ports": [{"name": "http", "containerPort": 80}, {"name": "https", "containerPort": 443}],
                    "args": ["(NIC's own arguments)"]
                }]}}}});
                install::patch_nic_deployment(&mut example)?;
                let _ = writeln!(
                    w,
                    "    the Deployment, with these fields set for kind (NIC's arguments as released: no -default-server-tls-secret,"
                );
                let _ = writeln!(
                    w,
                    "    so TLS for an unknown host is refused at the handshake, as the local substrate renders it):"
                );
                for line in serde_json::to_string_pretty(&example)
                    .unwrap_or_default()
                    .lines()
                {
                    let _ = writeln!(w, "      {line}");
                }
            }
            Install::WaitWebhook { deadline } => {
                let _ = writeln!(
                    w,
                    "    wait (<= {} s): cert-manager's webhook refuses this server-side dry-run create (\"at least one issuer must be configured\"; accepted would mean no webhook checked it):\n    {}",
                    deadline.as_secs(),
                    install::webhook_probe()
                );
            }
            Install::WaitAvailable {
                namespace,
                name,
                deadline,
            } => {
                let _ = writeln!(
                    w,
                    "    wait (<= {} s): Deployment {namespace}/{name} rolled out and available",
                    deadline.as_secs()
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn scenario(name: &str) -> Scenario {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios")
            .join(name);
        Scenario::load(&dir).expect("scenario")
    }

    fn options(mode: Mode) -> ClusterOptions {
        ClusterOptions {
            mode,
            nic: None,
            image: "mtls-e2e:e2e".into(),
            keep: false,
            adopt: Vec::new(),
            artifacts: PathBuf::from("/tmp/artifacts"),
            cache: PathBuf::from("/tmp/cache"),
        }
    }

    fn kind_mode() -> Mode {
        Mode::Kind {
            name: "mtls-e2e".into(),
            k8s: "1.34".into(),
            recreate: false,
        }
    }

    /// The order a run depends on: ownership before anything, namespaces
    /// before what lives in them, steps after the applies (they read the
    /// Secrets cert-manager writes), waits after both, NIC's configuration
    /// and the probes' Secrets read last; and phases never go back (their
    /// timings assume it).
    #[test]
    fn bring_up_runs_in_the_order_the_cluster_needs() {
        let opts = options(kind_mode());
        for name in ["openwebui-ingress-mtls", "aigw-egress-mtls"] {
            let s = scenario(name);
            let list = up(&s, &opts);
            let at = |f: &dyn Fn(&Action) -> bool| -> Vec<usize> {
                list.iter()
                    .enumerate()
                    .filter(|(_, a)| f(a))
                    .map(|(i, _)| i)
                    .collect()
            };
            assert!(matches!(list[0], Action::ObserveOwnership { .. }), "{name}");
            assert!(matches!(list[1], Action::WaitNamespacesGone(_)), "{name}");
            let applies = at(&|a| matches!(a, Action::Apply { .. }));
            let namespace_applies = at(
                &|a| matches!(a, Action::Apply { object, .. } if object.id.kind == Kind::Namespace),
            );
            let steps = at(&|a| matches!(a, Action::RunStep { .. }));
            let waits = at(&|a| {
                matches!(
                    a,
                    Action::WaitCertificate(_)
                        | Action::WaitDeployment(_)
                        | Action::WaitState { .. }
                )
            });
            let forwards = at(&|a| matches!(a, Action::PortForward(_)));
            let last = |v: &[usize]| v.last().copied().unwrap_or(0);
            let first = |v: &[usize]| v.first().copied().unwrap_or(usize::MAX);
            assert_eq!(applies.len(), s.objects.len(), "{name}: every object");
            assert!(!namespace_applies.is_empty(), "{name}");
            assert_eq!(
                namespace_applies,
                applies[..namespace_applies.len()],
                "{name}: namespaces first"
            );
            assert!(
                last(&applies) < first(&steps),
                "{name}: steps after applies"
            );
            assert!(
                last(&applies).max(last(&steps)) < first(&waits),
                "{name}: waits after applies and steps"
            );
            assert!(
                last(&waits) < first(&forwards),
                "{name}: forwards after waits"
            );
            assert!(
                matches!(
                    list[list.len() - 2..],
                    [Action::ReadServedConf(_), Action::ReadProbeSecrets(_)]
                ),
                "{name}: NIC's configuration and the probes' Secrets read last"
            );
            assert!(
                list.windows(2).all(|p| p[0].phase() <= p[1].phase()),
                "{name}: phases in order"
            );
            let teardown = down(&s);
            assert!(matches!(teardown[0], Teardown::Observe));
            assert!(matches!(teardown.last(), Some(Teardown::DeleteStepSecrets)));
        }
    }

    /// `up` and `down` execute these lists and `plan` prints them: every
    /// action has a line, and the plan holds each scenario's lines in order.
    #[test]
    fn every_action_a_run_executes_has_its_line_in_the_plan() {
        let s = scenario("aigw-egress-mtls");
        for mode in [
            kind_mode(),
            Mode::Existing {
                context: None,
                nic_namespace: None,
                cert_manager_namespace: None,
            },
        ] {
            let mut opts = options(mode);
            opts.nic = Some(install::DEFAULT_NIC.into());
            let plan = crate::plan::cluster(&opts, &[&s]).expect("plan");
            let ups = up(&s, &opts);
            let downs = down(&s);
            let mut lines = String::new();
            for a in &ups {
                let mut one = String::new();
                a.describe(&mut one);
                assert!(!one.trim().is_empty(), "an action without a line");
            }
            for a in &downs {
                let mut one = String::new();
                a.describe(&mut one);
                assert!(!one.trim().is_empty(), "a teardown action without a line");
            }
            for check in preflight(&opts, &[&s]) {
                check.describe(&mut lines);
            }
            assert!(
                plan.contains(&lines),
                "the plan prints the preflight the run executes, in its order"
            );
            lines.clear();
            narrate_up(&ups, &mut lines);
            assert!(plan.contains(&lines), "the plan prints the bring-up list");
            assert!(
                !plan.contains("mutation "),
                "mutations run on the local substrate only"
            );
            lines.clear();
            narrate_down(&downs, &mut lines);
            assert!(plan.contains(&lines), "the plan prints the teardown list");
        }
    }

    /// On kind each release is applied before it is waited for, and the plan
    /// holds the lines of both install lists.
    #[test]
    fn installs_apply_then_wait_and_are_in_the_plan() {
        let s = scenario("aigw-egress-mtls");
        let opts = options(kind_mode());
        let plan = crate::plan::cluster(&opts, &[&s]).expect("plan");
        for list in installs(install::DEFAULT_NIC) {
            assert!(matches!(list.first(), Some(Install::Apply(_))));
            assert!(list[1..].iter().all(|a| !matches!(a, Install::Apply(_))));
            let mut lines = String::new();
            for action in &list {
                let mut one = String::new();
                action.describe(&mut one).expect("describe");
                assert!(!one.trim().is_empty(), "an install action without a line");
                lines.push_str(&one);
            }
            assert!(plan.contains(&lines), "the plan prints the install list");
        }
    }
}
