//! Bringing a scenario up on a cluster: server-side apply (strict field
//! validation), the tutorial's steps against the cluster's Secrets, waits with
//! deadlines for the states the scenario declares, and teardown.

use crate::manifest::NamespacedName;
use crate::manifest::ServicePort;
use crate::scenario::steps::Secrets;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Namespace, Secret};
use kube::Resource;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, ValidationDirective,
};
use kube::core::discovery::{ApiCapabilities, Scope};
use kube::runtime::wait::{self, await_condition};
use kube::runtime::watcher;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::Instrument;

use super::actions::{self, Action, NicPod, Phase, Teardown};
use super::{Cluster, ClusterDeployment, ClusterError, forward, ownership, readiness, waits};
use crate::manifest::kinds::{Ingress, VirtualServer};
use crate::manifest::{Kind, Object, ObjectRef};
use crate::pki::KeyPool;
use crate::report::{Phases, ResourceState};
use crate::scenario::steps::{SecretData, SecretSource, StepRunner};
use crate::scenario::{Probe, Scenario, Target};
use crate::substrate::local::pods::is_our_image;

pub(crate) const FIELD_MANAGER: &str = "mtls-e2e";
pub(crate) const CERTIFICATE_DEADLINE: Duration = Duration::from_secs(180);
pub(crate) const DEPLOYMENT_DEADLINE: Duration = Duration::from_secs(240);
pub(crate) const STATE_DEADLINE: Duration = Duration::from_secs(90);
pub(crate) const SECRET_DEADLINE: Duration = Duration::from_secs(180);
pub(crate) const NAMESPACE_DEADLINE: Duration = Duration::from_secs(180);
/// Until NIC has loaded the scenario's upstreams with their endpoints.
pub(crate) const SERVING_DEADLINE: Duration = Duration::from_secs(120);
/// Until NIC answers each host the checks reach through it.
pub(crate) const FIRST_ANSWER_DEADLINE: Duration = Duration::from_secs(60);

/// The order objects are applied in: namespaces and data first, then issuers and
/// certificates, policies, workloads, and last what routes traffic.
pub(crate) fn apply_rank(kind: Kind) -> u8 {
    match kind {
        Kind::Namespace => 0,
        Kind::Secret | Kind::ConfigMap => 1,
        Kind::ClusterIssuer | Kind::Issuer => 2,
        Kind::Certificate => 3,
        Kind::Policy => 4,
        Kind::Service | Kind::Deployment => 5,
        Kind::VirtualServerRoute | Kind::VirtualServer | Kind::Ingress => 6,
    }
}

/// Objects in apply order (stable within a rank).
#[must_use]
pub fn ordered(objects: &[Object]) -> Vec<&Object> {
    let mut list: Vec<&Object> = objects.iter().collect();
    list.sort_by_key(|o| apply_rank(o.id.kind));
    list
}

/// The JSON a cluster receives for an object: the namespace made explicit (as
/// `kubectl apply -n`), and our image replaced by `image` where it differs.
#[must_use]
pub fn manifest_json(object: &Object, image: &str) -> Value {
    let mut json = object.to_json();
    if let (Some(ns), Some(meta)) = (
        &object.id.namespace,
        json.get_mut("metadata").and_then(Value::as_object_mut),
    ) {
        meta.insert("namespace".into(), Value::String(ns.clone()));
    }
    if object.id.kind == Kind::Deployment
        && let Some(Value::Array(containers)) = json.pointer_mut("/spec/template/spec/containers")
    {
        for c in containers {
            let ours = c
                .get("image")
                .and_then(Value::as_str)
                .is_some_and(is_our_image);
            if ours && c.get("image").and_then(Value::as_str) != Some(image) {
                c["image"] = Value::String(image.to_string());
                c["imagePullPolicy"] = Value::String("IfNotPresent".into());
            }
        }
    }
    json
}

/// Hosts a scenario serves through NIC, and the resource serving each.
pub(crate) fn served_hosts(s: &Scenario) -> BTreeMap<String, String> {
    let mut hosts = BTreeMap::new();
    for o in &s.objects {
        match o.id.kind {
            Kind::VirtualServer => {
                if let Ok(vs) = o.parse::<VirtualServer>() {
                    hosts.insert(vs.spec.host, o.id.to_string());
                }
            }
            Kind::Ingress => {
                let minion = o
                    .annotations
                    .get("nginx.org/mergeable-ingress-type")
                    .map(String::as_str)
                    == Some("minion");
                if let (false, Ok(ing)) = (minion, o.parse::<Ingress>()) {
                    for rule in ing.spec.rules {
                        hosts.insert(rule.host, o.id.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    hosts
}

/// Server-side apply of arbitrary objects, resolving kinds through discovery
/// (re-resolved on a miss, so CRDs installed a moment ago are found).
pub(crate) struct Applier {
    client: kube::Client,
    resolved: Mutex<HashMap<(String, String), (ApiResource, ApiCapabilities)>>,
}

impl Applier {
    pub(crate) fn new(client: kube::Client) -> Self {
        Applier {
            client,
            resolved: Mutex::new(HashMap::new()),
        }
    }

    async fn resource(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<(ApiResource, ApiCapabilities), ClusterError> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(found) = self.resolved.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(found);
        }
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let found = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .map_err(|e| {
                ClusterError::Failed(format!(
                    "the cluster does not serve {api_version} {kind}: {e}"
                ))
            })?;
        if let Ok(mut m) = self.resolved.lock() {
            m.insert(key, found.clone());
        }
        Ok(found)
    }

    async fn api(&self, json: &Value) -> Result<(Api<DynamicObject>, String), ClusterError> {
        let api_version = json
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = json.get("kind").and_then(Value::as_str).unwrap_or_default();
        let name = json
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let (resource, caps) = self.resource(api_version, kind).await?;
        let api = match (
            caps.scope,
            json.pointer("/metadata/namespace").and_then(Value::as_str),
        ) {
            (Scope::Namespaced, Some(ns)) => {
                Api::namespaced_with(self.client.clone(), ns, &resource)
            }
            (Scope::Namespaced, None) => {
                Api::default_namespaced_with(self.client.clone(), &resource)
            }
            (Scope::Cluster, _) => Api::all_with(self.client.clone(), &resource),
        };
        Ok((api, name))
    }

    /// `kubectl apply --server-side --field-manager=mtls-e2e --force-conflicts --validate=strict`.
    pub(crate) async fn apply(&self, json: &Value) -> Result<(), ClusterError> {
        let (api, name) = self.api(json).await?;
        let params = PatchParams {
            field_validation: Some(ValidationDirective::Strict),
            ..PatchParams::apply(FIELD_MANAGER).force()
        };
        api.patch(&name, &params, &Patch::Apply(json))
            .await
            .map_err(|e| {
                ClusterError::Failed(format!(
                    "applying {} {name}: {}",
                    json.get("kind").and_then(Value::as_str).unwrap_or("?"),
                    crate::net::error_chain(&e)
                ))
            })?;
        Ok(())
    }

    /// A server-side dry-run create: it passes through admission webhooks.
    pub(crate) async fn dry_run_create(&self, json: &Value) -> Result<(), String> {
        let (api, _) = self.api(json).await.map_err(|e| e.to_string())?;
        let object: DynamicObject =
            serde_json::from_value(json.clone()).map_err(|e| e.to_string())?;
        let params = PostParams {
            dry_run: true,
            field_manager: Some(FIELD_MANAGER.into()),
        };
        api.create(&params, &object)
            .await
            .map(|_| ())
            .map_err(|e| crate::net::error_chain(&e))
    }

    /// The API that serves an object of `kind` (in `namespace`, if namespaced).
    pub(crate) async fn api_for(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Api<DynamicObject>, ClusterError> {
        let probe = serde_json::json!({"apiVersion": api_version, "kind": kind, "metadata": {"namespace": namespace}});
        Ok(self.api(&probe).await?.0)
    }

    /// The object as JSON, if it exists.
    pub(crate) async fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ClusterError> {
        let api = self.api_for(api_version, kind, namespace).await?;
        let found = api.get_opt(name).await?;
        Ok(found.map(|o| serde_json::to_value(o).unwrap_or(Value::Null)))
    }

    pub(crate) async fn delete(&self, json: &Value) -> Result<(), ClusterError> {
        let (api, name) = self.api(json).await?;
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// What a wait saw on its last look.
pub(crate) enum Poll<T> {
    Done(T),
    Pending(String),
}

/// Poll `look` until it is done or `deadline` passes; on a timeout the error
/// shows the last observation beside what was expected. Only for what a watch
/// cannot follow (events by field selector, dry-runs, `kubectl exec`): one
/// object is waited for with [`watch_until`]. A `wait` span: each new
/// observation is a debug event, and every [`PROGRESS_EVERY`] an info event
/// says the wait goes on.
pub(crate) async fn wait_for<T, F, Fut>(
    what: &str,
    deadline: Duration,
    mut look: F,
) -> Result<T, ClusterError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>, ClusterError>>,
{
    let polling = async {
        let started = Instant::now();
        let mut interval = Duration::from_millis(250);
        let mut last_report = Instant::now();
        let mut last = String::new();
        loop {
            let seen = match look().await {
                Ok(Poll::Done(v)) => return Ok(v),
                Ok(Poll::Pending(seen)) => seen,
                Err(e) => e.to_string(),
            };
            if seen != last {
                tracing::debug!(last = %seen, "observed");
                last = seen;
            }
            if started.elapsed() > deadline {
                return Err(timed_out(what, deadline, &last));
            }
            if last_report.elapsed() > PROGRESS_EVERY {
                still_waiting(started, &last);
                last_report = Instant::now();
            }
            // The next look, not a synchronisation: the deadline above bounds it.
            tokio::time::sleep(interval).await;
            interval = (interval * 2).min(Duration::from_secs(2));
        }
    };
    polling.instrument(tracing::info_span!("wait", what)).await
}

/// How often a long wait says what it last saw.
const PROGRESS_EVERY: Duration = Duration::from_secs(15);

fn timed_out(what: &str, deadline: Duration, last: &str) -> ClusterError {
    ClusterError::Failed(format!(
        "{what}: not reached within {deadline:?}; last observed: {last}"
    ))
}

/// A wait goes on (what it waits for is its span's).
fn still_waiting(started: Instant, last: &str) {
    tracing::info!(
        elapsed_s = started.elapsed().as_secs(),
        last = %last,
        "still waiting"
    );
}

/// Watch one object (`await_condition`) until `look` is done with it or
/// `deadline` passes. `look` sees `None` while the object does not exist; what
/// it last said is in the timeout's message and in the wait's events (as
/// [`wait_for`]'s). A watch that breaks is watched again (the error is what
/// was last observed); one the cluster forbids fails at once, saying which
/// permission is missing.
pub(crate) async fn watch_until<K, T, F>(
    api: Api<K>,
    name: &str,
    what: &str,
    deadline: Duration,
    look: F,
) -> Result<T, ClusterError>
where
    K: Clone + Debug + Send + DeserializeOwned + Resource + 'static,
    T: Send,
    F: Fn(Option<&K>) -> Poll<T> + Sync,
{
    let last = Mutex::new(String::from("nothing yet"));
    let found: Mutex<Option<T>> = Mutex::new(None);
    let record = |seen: String| {
        if let Ok(mut l) = last.lock()
            && *l != seen
        {
            tracing::debug!(last = %seen, "observed");
            *l = seen;
        }
    };
    let shown = || last.lock().map(|l| l.clone()).unwrap_or_default();
    let condition = |object: Option<&K>| match look(object) {
        Poll::Done(v) => {
            if let Ok(mut f) = found.lock() {
                *f = Some(v);
            }
            true
        }
        Poll::Pending(seen) => {
            record(seen);
            false
        }
    };
    let watch = async {
        loop {
            match await_condition(api.clone(), name, &condition).await {
                Ok(_) => return Ok(()),
                Err(wait::Error::ProbeFailed(e)) if forbidden(&e) => {
                    return Err(ClusterError::Failed(format!(
                        "{what}: the cluster does not let this kubeconfig watch it \
                         (the wait needs `list` and `watch` on it): {e}"
                    )));
                }
                Err(e) => {
                    record(format!("the watch failed: {}", crate::net::error_chain(&e)));
                    // A pause before watching again, so a failing API server is not hammered.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    };
    let started = Instant::now();
    let mut reports =
        tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
    let mut watch = pin!(watch);
    let reporting = async {
        loop {
            tokio::select! {
                done = &mut watch => break done,
                _ = reports.tick() => still_waiting(started, &shown()),
            }
        }
    };
    let waited = tokio::time::timeout(deadline, reporting)
        .instrument(tracing::info_span!("wait", what))
        .await;
    match waited {
        Err(_) => Err(timed_out(what, deadline, &shown())),
        Ok(Err(e)) => Err(e),
        Ok(Ok(())) => {
            found.lock().ok().and_then(|mut f| f.take()).ok_or_else(|| {
                ClusterError::Failed(format!("{what}: the watch ended with no result"))
            })
        }
    }
}

/// The watch was refused for lack of permission (403).
fn forbidden(e: &watcher::Error) -> bool {
    match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => s.code == 403,
        watcher::Error::WatchError(s) => s.code == 403,
        _ => false,
    }
}

/// A Secret from the cluster, decoded.
async fn read_secret(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Option<SecretData>, ClusterError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    Ok(api.get_opt(name).await?.as_ref().map(secret_data))
}

fn secret_data(secret: &Secret) -> SecretData {
    let mut data = BTreeMap::new();
    for (k, v) in secret.data.iter().flatten() {
        data.insert(k.clone(), v.0.clone());
    }
    for (k, v) in secret.string_data.iter().flatten() {
        data.insert(k.clone(), v.clone().into_bytes());
    }
    SecretData {
        type_: secret.type_.clone().unwrap_or_else(|| "Opaque".into()),
        data,
    }
}

/// The cluster's Secrets as a step reads them: a Secret cert-manager has not
/// written yet is waited for.
struct ClusterSecrets<'a> {
    client: &'a kube::Client,
}

impl SecretSource for ClusterSecrets<'_> {
    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<SecretData>, String> {
        let what = format!("Secret {namespace}/{name}");
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        watch_until(api, name, &what, SECRET_DEADLINE, |s| match s {
            Some(s) => Poll::Done(Some(secret_data(s))),
            None => Poll::Pending("does not exist yet".into()),
        })
        .await
        .map_err(|e| e.to_string())
    }
}

/// Services the checks probe directly (not through NIC): each gets a port-forward.
pub(crate) fn forwarded_services(scenario: &Scenario) -> Vec<ServicePort> {
    let mut out: Vec<ServicePort> = Vec::new();
    for check in &scenario.checks {
        let target = match &check.probe {
            Probe::Http { url, .. } => &url.target,
            Probe::OpenSsl { target, .. } => target,
        };
        if let Target::Service { service, .. } = target
            && !out.contains(service)
        {
            out.push(service.clone());
        }
    }
    out
}

/// Apply a scenario, run its steps, wait for its states; nothing is probed yet.
/// The work is `actions::up`, the list `plan` prints, executed in order.
pub(crate) async fn up(
    cluster: &Cluster,
    scenario: &Scenario,
    workdir: &Path,
    keys: &KeyPool,
    openssl: &Path,
) -> Result<ClusterDeployment, crate::substrate::SubstrateError> {
    let applier = Applier::new(cluster.client.clone());
    let runner = StepRunner {
        scenario,
        workdir,
        keys,
        openssl,
    };
    let secrets = ClusterSecrets {
        client: &cluster.client,
    };
    let mut phases = Phases::default();
    let mut clock = Instant::now();
    let mut phase = Phase::ApplyAndSteps;
    // What the ownership check decided, and what the adopted objects are; the
    // later actions follow it.
    let mut decision = ownership::Decision::default();
    let mut adopt: Vec<ObjectRef> = Vec::new();
    let mut states = Vec::new();
    let mut services = BTreeMap::new();
    let mut nginx_conf = None;
    let mut probe_secrets = BTreeMap::new();
    for action in actions::up(scenario, &cluster.options) {
        time_phases(&mut phases, &mut clock, &mut phase, action.phase());
        match action {
            Action::ObserveOwnership { adopt: adopted } => {
                adopt = adopted.into_iter().cloned().collect();
                let observed = observe_all(&applier, &scenario.objects)
                    .await
                    .map_err(to_substrate)?;
                decision = ownership::decide(&observed, &adopt);
                if !decision.conflicts.is_empty() {
                    return Err(to_substrate(ClusterError::Input(format!(
                        "{}: {}",
                        scenario.name,
                        decision.conflicts.join("; ")
                    ))));
                }
                for reused in &decision.reuse {
                    tracing::info!(
                        "namespace {reused} exists and is not ours: used, never deleted"
                    );
                }
                for adopted in &decision.adopted {
                    tracing::info!(
                        "{adopted} exists and is not ours: adopted (--adopt), overwritten as the scenario says, never deleted"
                    );
                }
            }
            Action::WaitNamespacesGone(namespaces) => {
                for object in namespaces {
                    if decision.reuse.iter().any(|n| n == object.name()) {
                        continue;
                    }
                    wait_not_terminating(cluster, object.name())
                        .await
                        .map_err(|e| fail(object, e))?;
                }
            }
            Action::Apply { object, image } => {
                if object.id.kind == Kind::Namespace
                    && decision.reuse.iter().any(|n| n == object.name())
                {
                    continue;
                }
                let json = if decision.adopted.contains(&object.id) {
                    manifest_json(object, image)
                } else {
                    owned_json(object, image, &cluster.run_id)
                };
                applier.apply(&json).await.map_err(|e| fail(object, e))?;
            }
            Action::RunStep { index, .. } => {
                for object in runner.run(index, &secrets).await? {
                    // A step's Secret may land in a namespace that is not ours: the same rule.
                    let seen = observe_all(&applier, std::slice::from_ref(&object))
                        .await
                        .map_err(|e| fail(&object, e))?;
                    let step_decision = ownership::decide(&seen, &adopt);
                    if let Some(conflict) = step_decision.conflicts.first() {
                        return Err(to_substrate(ClusterError::Input(format!(
                            "{} (step {}): {conflict}",
                            scenario.name,
                            index + 1
                        ))));
                    }
                    let json = if step_decision.adopted.contains(&object.id) {
                        manifest_json(&object, &cluster.options.image)
                    } else {
                        owned_json(&object, &cluster.options.image, &cluster.run_id)
                    };
                    applier.apply(&json).await.map_err(|e| fail(&object, e))?;
                }
            }
            Action::WaitCertificate(object) => {
                wait_certificate(&applier, object)
                    .await
                    .map_err(|e| fail(object, e))?;
            }
            Action::WaitDeployment(object) => {
                wait_deployment(&applier, object)
                    .await
                    .map_err(|e| fail(object, e))?;
            }
            Action::WaitState { object, expected } => {
                let state = wait_state(cluster, &applier, object, expected)
                    .await
                    .map_err(|e| fail(object, e))?;
                states.push(state);
            }
            Action::WaitServing { upstreams, pod } => {
                wait_serving(cluster, scenario, &upstreams, &pod, SERVING_DEADLINE)
                    .await
                    .map_err(|e| failed(format!("{}: {e}", scenario.name)))?;
            }
            Action::WaitFirstAnswers(probes) => {
                wait_first_answers(cluster, &probes, FIRST_ANSWER_DEADLINE)
                    .await
                    .map_err(|e| failed(format!("{}: {e}", scenario.name)))?;
            }
            Action::PortForward(service) => {
                let t = forward::Target::Service(service.clone());
                let forward = forward::Forward::start(cluster.client.clone(), t)
                    .await
                    .map_err(to_substrate)?;
                services.insert(service, forward);
            }
            Action::ReadServedConf(pod) => {
                nginx_conf = served_conf(cluster, &pod).await;
            }
            Action::ReadProbeSecrets(keys) => {
                probe_secrets = read_probe_secrets(&cluster.client, &keys)
                    .await
                    .map_err(to_substrate)?;
            }
        }
    }
    time_phases(&mut phases, &mut clock, &mut phase, Phase::Untimed);
    let ingress = (
        cluster.ingress.address(80).map_err(failed)?,
        cluster.ingress.address(443).map_err(failed)?,
    );
    Ok(ClusterDeployment {
        scenario: scenario.clone(),
        states,
        hosts: served_hosts(scenario),
        services,
        ingress,
        phases,
        nginx_conf,
        probe_secrets,
    })
}

/// Wait until NIC serves the scenario's upstreams with their endpoints
/// ([`readiness::endpoints`], then [`readiness::conf_serves`] over `nginx -T`
/// in NIC's pod). Polled: `EndpointSlices` are a list by label, and NIC's
/// configuration is read by `kubectl exec`, neither one object to watch.
async fn wait_serving(
    cluster: &Cluster,
    scenario: &Scenario,
    upstreams: &[readiness::UpstreamRef],
    pod: &NicPod<'_>,
    deadline: Duration,
) -> Result<(), ClusterError> {
    use k8s_openapi::api::core::v1::Service;
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    let mut namespaces: Vec<String> = scenario
        .objects
        .iter()
        .filter_map(|o| o.id.namespace.clone())
        .collect();
    namespaces.sort();
    namespaces.dedup();
    let mut told = false;
    let what = "NIC serving the scenario's upstreams with their endpoints";
    wait_for(what, deadline, || {
        let first_look = !told;
        told = true;
        let namespaces = &namespaces;
        async move {
            let mut waiting = Vec::new();
            let mut ready = Vec::new();
            for u in upstreams {
                let services: Api<Service> = Api::namespaced(cluster.client.clone(), &u.namespace);
                let slices: Api<EndpointSlice> =
                    Api::namespaced(cluster.client.clone(), &u.namespace);
                let service = services.get_opt(&u.service).await?;
                let selector = format!("{}={}", readiness::SERVICE_NAME_LABEL, u.service);
                let listed = slices
                    .list(&ListParams::default().labels(&selector))
                    .await?;
                match readiness::endpoints(u, service.as_ref(), &listed.items) {
                    readiness::Endpoints::Ready(addrs) => ready.push((u.label(), addrs)),
                    readiness::Endpoints::Waiting(why) => waiting.push(why),
                    readiness::Endpoints::NoneByDesign(why) => {
                        if first_look {
                            tracing::info!(
                                "not waited for: {why} (nginx proxies it to NIC's 502 server)"
                            );
                        }
                    }
                }
            }
            if !waiting.is_empty() {
                return Ok(Poll::Pending(waiting.join("; ")));
            }
            if ready.is_empty() {
                return Ok(Poll::Done(()));
            }
            let conf = nginx_t(cluster, pod).await.map_err(ClusterError::Failed)?;
            let refs: Vec<&str> = namespaces.iter().map(String::as_str).collect();
            let ours = super::artifacts::scenario_conf(&conf, &refs);
            Ok(match readiness::conf_serves(&ours, &ready) {
                Ok(()) => Poll::Done(()),
                Err(why) => Poll::Pending(why),
            })
        }
    })
    .await
}

/// Wait until NIC answers each of `probes` ([`readiness::answered`]): a
/// connection refused, reset or closed (a listener not up yet, workers
/// recycled by a reload) is tried again until the deadline.
async fn wait_first_answers(
    cluster: &Cluster,
    probes: &[readiness::FirstProbe],
    deadline: Duration,
) -> Result<(), ClusterError> {
    for p in probes {
        let addr = cluster
            .ingress
            .address(p.port)
            .map_err(ClusterError::Failed)?;
        let what = format!("NIC answering {}:{} (via {addr})", p.host, p.port);
        let sni = p.tls.then_some(p.host.as_str());
        wait_for(&what, deadline, || async move {
            let seen = crate::probe::native::first_answer(addr, sni).await;
            Ok(match readiness::answered(&seen) {
                Ok(()) => Poll::Done(()),
                Err(why) => Poll::Pending(why),
            })
        })
        .await?;
    }
    Ok(())
}

/// Record each timed phase that ends before `next` starts (one with no
/// actions is recorded too, near 0 ms, so a report always lists them all).
fn time_phases(phases: &mut Phases, clock: &mut Instant, current: &mut Phase, next: Phase) {
    for p in Phase::TIMED {
        if *current <= p && p < next {
            phases.record(p.name(), clock);
        }
    }
    *current = next.max(*current);
}

/// NIC's configuration as nginx loaded it (`nginx -T` in NIC's pod), for
/// finding checks that share state; without it no group is formed, and the
/// run says so.
async fn served_conf(cluster: &Cluster, pod: &NicPod<'_>) -> Option<String> {
    match nginx_t(cluster, pod).await {
        Ok(text) => Some(text),
        Err(e) => {
            tracing::info!(
                "cannot read NIC's configuration (nginx -T): {e}; checks sharing an upstream TLS session are not grouped"
            );
            None
        }
    }
}

/// `nginx -T` in NIC's pod: the configuration as NIC wrote it.
async fn nginx_t(cluster: &Cluster, pod: &NicPod<'_>) -> Result<String, String> {
    let (namespace, target) = nic_exec_target(cluster, pod)
        .await
        .map_err(|e| format!("cannot find NIC's pod: {e}"))?;
    let mut args = cluster.kubectl_args();
    args.extend(
        [
            "exec",
            "-n",
            namespace.as_str(),
            target.as_str(),
            "--",
            "nginx",
            "-T",
        ]
        .map(String::from),
    );
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let kubectl = super::tool("kubectl").map_err(|e| e.to_string())?;
    super::run(&kubectl, &words, None, Duration::from_secs(60))
        .await
        .map_err(|e| e.to_string())
}

/// Where NIC runs, for `kubectl exec`: the Deployment the kind install made,
/// or on an existing cluster the first running pod NIC's label selects.
async fn nic_exec_target(cluster: &Cluster, pod: &NicPod<'_>) -> Result<(String, String), String> {
    use k8s_openapi::api::core::v1::Pod;
    match pod {
        NicPod::Deployment { namespace, name } => {
            Ok((namespace.to_string(), format!("deployment/{name}")))
        }
        // The place the preflight found (a given namespace was checked there).
        NicPod::Found { .. } => {
            let (namespace, selector) = (&cluster.nic.namespace, &cluster.nic.selector);
            let pods: kube::Api<Pod> = kube::Api::namespaced(cluster.client.clone(), namespace);
            let list = pods
                .list(&kube::api::ListParams::default().labels(selector))
                .await
                .map_err(|e| e.to_string())?;
            list.items
                .iter()
                .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .and_then(|p| p.metadata.name.clone())
                .map(|name| (namespace.clone(), format!("pod/{name}")))
                .ok_or_else(|| format!("no running pod {selector} in {namespace}"))
        }
    }
}

fn failed(message: String) -> crate::substrate::SubstrateError {
    crate::substrate::SubstrateError::Failed(message)
}

pub(crate) fn to_substrate(e: ClusterError) -> crate::substrate::SubstrateError {
    match e {
        ClusterError::Missing(m) => crate::substrate::SubstrateError::Environment(m),
        ClusterError::Input(m) => {
            crate::substrate::SubstrateError::Input(crate::manifest::ManifestError {
                origin: crate::yaml::Origin::file(Path::new("command line")),
                message: m,
            })
        }
        ClusterError::Failed(m) => crate::substrate::SubstrateError::Failed(m),
        // Only the preflight lists problems, before any bring-up.
        e @ ClusterError::Preflight { .. } => {
            crate::substrate::SubstrateError::Failed(e.to_string())
        }
    }
}

/// A cluster failure about an object, with the object's file and line.
fn fail(object: &Object, e: ClusterError) -> crate::substrate::SubstrateError {
    crate::substrate::SubstrateError::Failed(format!("{} ({}): {e}", object.id, object.origin()))
}

/// Wait until a Certificate is Ready for its current generation.
async fn wait_certificate(applier: &Applier, object: &Object) -> Result<(), ClusterError> {
    let what = format!(
        "Certificate {}/{} Ready (for its current generation)",
        object.namespace(),
        object.name()
    );
    let api = applier
        .api_for(&object.api_version, "Certificate", Some(object.namespace()))
        .await?;
    watch_until(
        api,
        object.name(),
        &what,
        CERTIFICATE_DEADLINE,
        |o| match o {
            Some(o) => waits::certificate_ready(o.metadata.generation, Some(&o.data)),
            None => waits::certificate_ready(None, None),
        },
    )
    .await
}

/// Wait until an object's `status.conditions` has `condition` True.
/// `target`: (apiVersion, kind, namespace, name).
pub(crate) async fn wait_condition(
    applier: &Applier,
    target: (&str, &str, Option<&str>, &str),
    condition: &str,
    deadline: Duration,
) -> Result<(), ClusterError> {
    let (api_version, kind, namespace, name) = target;
    let shown = match namespace {
        Some(ns) => format!("{kind} {ns}/{name} {condition}"),
        None => format!("{kind} {name} {condition}"),
    };
    let api = applier.api_for(api_version, kind, namespace).await?;
    watch_until(api, name, &shown, deadline, |o| {
        condition_true(o.map(|o| &o.data), condition)
    })
    .await
}

/// Done once `status.conditions` of an object (its JSON without metadata)
/// has `condition` True.
fn condition_true(object: Option<&Value>, condition: &str) -> Poll<()> {
    let conditions = object
        .and_then(|v| v.pointer("/status/conditions"))
        .unwrap_or(&Value::Null);
    let met = conditions
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == condition && c["status"] == "True");
    if met {
        Poll::Done(())
    } else {
        Poll::Pending(format!("status.conditions = {conditions}"))
    }
}

async fn wait_deployment(applier: &Applier, object: &Object) -> Result<(), ClusterError> {
    wait_available(
        applier,
        object.namespace(),
        object.name(),
        DEPLOYMENT_DEADLINE,
    )
    .await
}

/// Wait until a Deployment has rolled out its current spec
/// ([`waits::rolled_out`]); a timeout says why its pods are not ready.
pub(crate) async fn wait_available(
    applier: &Applier,
    namespace: &str,
    name: &str,
    deadline: Duration,
) -> Result<(), ClusterError> {
    let what = format!("Deployment {namespace}/{name} rolled out and available");
    let api: Api<Deployment> = Api::namespaced(applier.client.clone(), namespace);
    match watch_until(api.clone(), name, &what, deadline, waits::rolled_out).await {
        Err(ClusterError::Failed(message)) => {
            let why = match why_pods_not_ready(&applier.client, &api, namespace, name).await {
                Ok(why) => why,
                Err(e) => format!("(its pods could not be read: {e})"),
            };
            Err(ClusterError::Failed(format!(
                "{message}\n  why its pods are not ready:\n  {why}"
            )))
        }
        other => other,
    }
}

/// The pods a Deployment selects and the namespace's events, read for
/// [`waits::pods_not_ready`].
async fn why_pods_not_ready(
    client: &kube::Client,
    deployments: &Api<Deployment>,
    namespace: &str,
    name: &str,
) -> Result<String, ClusterError> {
    use k8s_openapi::api::core::v1::Pod;
    let deployment = deployments.get_opt(name).await?;
    let selector = deployment
        .as_ref()
        .and_then(|d| d.spec.as_ref())
        .and_then(|s| s.selector.match_labels.as_ref())
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        });
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        return Ok("the Deployment has no spec.selector.matchLabels to find its pods by".into());
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pods = pods.list(&ListParams::default().labels(&selector)).await?;
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let events = events.list(&ListParams::default()).await?;
    Ok(waits::pods_not_ready(name, &pods.items, &events.items))
}

/// Wait until NIC reports `expected` for a Policy, `VirtualServer` (status) or
/// Ingress (its latest event).
async fn wait_state(
    cluster: &Cluster,
    applier: &Applier,
    object: &Object,
    expected: &str,
) -> Result<ResourceState, ClusterError> {
    let what = format!("{} {expected}", object.id);
    let done = |(state, reason, message): (String, String, String)| {
        if state == expected {
            Poll::Done(ResourceState::new(
                object,
                // `state` is `expected`, one of NIC's three words.
                crate::manifest::ControllerState::parse(&state)
                    .unwrap_or(crate::manifest::ControllerState::Invalid),
                &reason,
                message,
                Vec::new(),
            ))
        } else {
            Poll::Pending(format!(
                "state {:?}, reason {reason:?}, message {message:?}",
                if state.is_empty() { "none yet" } else { &state }
            ))
        }
    };
    if object.id.kind == Kind::Ingress {
        // Polled: NIC reports on Ingresses in events, a list by field selector, not one object to watch.
        return wait_for(&what, STATE_DEADLINE, || async {
            Ok(done(latest_event(cluster, object).await?))
        })
        .await;
    }
    let api = applier
        .api_for(
            &object.api_version,
            object.id.kind.name(),
            Some(object.namespace()),
        )
        .await?;
    watch_until(api, object.name(), &what, STATE_DEADLINE, |o| {
        done(nic_status(o.map(|o| &o.data)))
    })
    .await
}

/// NIC's `status.state`, `reason` and `message` of a Policy or `VirtualServer`
/// (its JSON without metadata); empty where not written yet.
fn nic_status(object: Option<&Value>) -> (String, String, String) {
    let status = object.and_then(|v| v.get("status"));
    let text = |k: &str| {
        status
            .and_then(|s| s.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (text("state"), text("reason"), text("message"))
}

/// NIC reports on Ingresses through events: its latest word on this Ingress
/// ([`waits::ingress_state`]).
async fn latest_event(
    cluster: &Cluster,
    object: &Object,
) -> Result<(String, String, String), ClusterError> {
    let ingresses: Api<k8s_openapi::api::networking::v1::Ingress> =
        Api::namespaced(cluster.client.clone(), object.namespace());
    let uid = ingresses
        .get_metadata_opt(object.name())
        .await?
        .and_then(|i| i.metadata.uid);
    let api: Api<Event> = Api::namespaced(cluster.client.clone(), object.namespace());
    let fields = format!(
        "involvedObject.kind=Ingress,involvedObject.name={}",
        object.name()
    );
    let events = api.list(&ListParams::default().fields(&fields)).await?;
    Ok(waits::ingress_state(&events.items, uid.as_deref()))
}

/// The Secrets the probes read (`ns/name` each), from the cluster; one that
/// does not exist is left out (the identity that needs it says so).
async fn read_probe_secrets(client: &kube::Client, keys: &[&str]) -> Result<Secrets, ClusterError> {
    let mut out = BTreeMap::new();
    for key in keys {
        let Some((ns, name)) = key.split_once('/') else {
            continue;
        };
        if let Some(secret) = read_secret(client, ns, name).await? {
            out.insert(NamespacedName::new(ns, name), secret);
        }
    }
    Ok(out)
}

/// A namespace an earlier run deleted may still be terminating (deletion is not
/// waited for); applying into it would fail, so wait until it is gone.
async fn wait_not_terminating(cluster: &Cluster, name: &str) -> Result<(), ClusterError> {
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    let what = format!("namespace {name} (terminating after an earlier run) to be gone");
    watch_until(namespaces, name, &what, NAMESPACE_DEADLINE, not_terminating).await
}

/// Done unless the namespace is being deleted.
fn not_terminating(namespace: Option<&Namespace>) -> Poll<()> {
    match namespace {
        Some(ns) if ns.metadata.deletion_timestamp.is_some() => Poll::Pending(format!(
            "status = {}",
            serde_json::to_string(&ns.status).unwrap_or_default()
        )),
        _ => Poll::Done(()),
    }
}

/// Delete what a scenario created, only what carries our label. The work is
/// `actions::down`, the list `plan` prints, executed in order.
pub(crate) async fn down(cluster: &Cluster, scenario: &Scenario) -> Result<(), ClusterError> {
    let applier = Applier::new(cluster.client.clone());
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    let mut observed = Vec::new();
    let mut deletable = Vec::new();
    for action in actions::down(scenario) {
        match action {
            Teardown::Observe => {
                observed = observe_all(&applier, &scenario.objects).await?;
                deletable = ownership::deletable(&observed);
            }
            Teardown::Delete(object) if object.id.kind == Kind::Namespace => {
                if !deletable.contains(&object.id) {
                    continue;
                }
                // Not waited for: namespace deletion is slow by design.
                match namespaces
                    .delete(object.name(), &DeleteParams::background())
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Teardown::Delete(object) => {
                if deletable.contains(&object.id) {
                    applier
                        .delete(&manifest_json(object, &cluster.options.image))
                        .await?;
                }
            }
            Teardown::DeleteOutsideOurNamespaces(objects) => {
                for object in objects.iter().filter(|o| deletable.contains(&o.id)) {
                    applier
                        .delete(&manifest_json(object, &cluster.options.image))
                        .await?;
                }
            }
            Teardown::DeleteStepSecrets => {
                // Secrets the steps made in namespaces that are not ours carry this run's label.
                let foreign = observed.iter().filter(|(id, seen)| {
                    id.kind == Kind::Namespace && *seen == ownership::Observed::Foreign
                });
                for (ns, _) in foreign {
                    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), &ns.name);
                    let selector = format!("{}={}", ownership::RUN, cluster.run_id);
                    let made = secrets
                        .list(&kube::api::ListParams::default().labels(&selector))
                        .await?;
                    for s in made.items {
                        if let Some(name) = s.metadata.name {
                            let _ = secrets.delete(&name, &DeleteParams::background()).await;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// A manifest as this run applies it: as sent, with our labels.
fn owned_json(object: &Object, image: &str, run_id: &str) -> Value {
    let mut json = manifest_json(object, image);
    ownership::label(&mut json, run_id);
    json
}

/// What the cluster holds under each object's name.
async fn observe_all(
    applier: &Applier,
    objects: &[Object],
) -> Result<Vec<(ObjectRef, ownership::Observed)>, ClusterError> {
    let mut out = Vec::new();
    for o in objects {
        let existing = applier
            .get(
                &o.api_version,
                o.id.kind.name(),
                o.id.namespace.as_deref(),
                o.name(),
            )
            .await?;
        out.push((o.id.clone(), ownership::observe(existing.as_ref())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_on_services_get_one_port_forward_each() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/aigw-egress-mtls");
        let scenario = Scenario::load(&dir).expect("scenario");
        let forwards = forwarded_services(&scenario);
        assert_eq!(forwards, vec![ServicePort::new("ai-gateway", "aigw", 80)]);
        let hosts = served_hosts(&scenario);
        assert!(
            hosts
                .values()
                .all(|owner| owner.starts_with("VirtualServer ")),
            "{hosts:?}"
        );
    }

    #[test]
    fn namespaces_come_first_and_routes_last() {
        assert!(apply_rank(Kind::Namespace) < apply_rank(Kind::Secret));
        assert!(apply_rank(Kind::Certificate) < apply_rank(Kind::Policy));
        assert!(apply_rank(Kind::Deployment) < apply_rank(Kind::VirtualServer));
    }

    #[test]
    fn manifests_get_an_explicit_namespace_and_our_image() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      containers:\n      - {name: c, image: \"mtls-e2e:e2e\"}\n";
        let objects =
            crate::manifest::load_text(text, Path::new("d.yaml"), "team").expect("objects");
        let json = manifest_json(&objects[0], "registry.example.com/mtls-e2e:1.0");
        assert_eq!(json["metadata"]["namespace"], "team");
        assert_eq!(
            json.pointer("/spec/template/spec/containers/0/image")
                .and_then(Value::as_str),
            Some("registry.example.com/mtls-e2e:1.0")
        );
        let same = manifest_json(&objects[0], "mtls-e2e:e2e");
        assert!(
            same.pointer("/spec/template/spec/containers/0/imagePullPolicy")
                .is_none()
        );
    }
}

#[cfg(test)]
mod wait_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions_are_met_only_when_true() {
        let pending = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        match condition_true(Some(&pending), "Ready") {
            Poll::Pending(seen) => assert!(seen.starts_with("status.conditions = ["), "{seen}"),
            Poll::Done(()) => panic!("not ready"),
        }
        let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert!(matches!(
            condition_true(Some(&ready), "Ready"),
            Poll::Done(())
        ));
        assert!(matches!(
            condition_true(None, "Ready"),
            Poll::Pending(seen) if seen == "status.conditions = null"
        ));
    }

    #[test]
    fn a_namespace_is_waited_for_only_while_terminating() {
        let gone: Namespace = serde_json::from_value(json!({
            "metadata": {"name": "n", "deletionTimestamp": "2025-01-01T00:00:00Z"},
            "status": {"phase": "Terminating"}
        }))
        .expect("namespace");
        assert!(matches!(
            not_terminating(Some(&gone)),
            Poll::Pending(seen) if seen == r#"status = {"phase":"Terminating"}"#
        ));
        assert!(matches!(not_terminating(None), Poll::Done(())));
    }

    #[test]
    fn nic_status_reads_state_reason_and_message() {
        let vs = json!({"status": {"state": "Warning", "reason": "AddedOrUpdatedWithWarning", "message": "m"}});
        assert_eq!(
            nic_status(Some(&vs)),
            (
                "Warning".into(),
                "AddedOrUpdatedWithWarning".into(),
                "m".into()
            )
        );
        assert_eq!(
            nic_status(None),
            (String::new(), String::new(), String::new())
        );
    }

    /// An API server that answers every request with `status` and `body`,
    /// except watches, which it holds open with no event.
    async fn fake_api(status: u16, body: &'static str) -> kube::Client {
        fake_api_routes(vec![("", status, body)]).await
    }

    /// An API server that answers a request for exactly `path` (any query)
    /// with its `status` and `body` (a route with the empty path answers
    /// everything else), 404 otherwise, and holds watches open with no event.
    async fn fake_api_routes(routes: Vec<(&'static str, u16, &'static str)>) -> kube::Client {
        use hyper::service::service_fn;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let routes = std::sync::Arc::new(routes);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let routes = routes.clone();
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let routes = routes.clone();
                    async move {
                        if req.uri().query().is_some_and(|q| q.contains("watch=true")) {
                            std::future::pending::<()>().await;
                        }
                        let path = req.uri().path();
                        let (status, body) = routes
                            .iter()
                            .find(|(p, _, _)| *p == path)
                            .or_else(|| routes.iter().find(|(p, _, _)| p.is_empty()))
                            .map_or(
                                (404, r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#),
                                |(_, s, b)| (*s, *b),
                            );
                        hyper::Response::builder()
                            .status(status)
                            .header("content-type", "application/json")
                            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                                body.as_bytes(),
                            )))
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
                );
            }
        });
        let config = kube::Config::new(url.parse().expect("url"));
        kube::Client::try_from(config).expect("client")
    }

    /// A cluster over `client`, as the kind substrate would have it.
    fn fake_cluster(client: kube::Client) -> Cluster {
        Cluster {
            client,
            options: super::super::ClusterOptions {
                mode: super::super::Mode::Kind {
                    name: "mtls-e2e".into(),
                    k8s: "1.34".into(),
                    recreate: false,
                },
                nic: None,
                image: "mtls-e2e:e2e".into(),
                keep: false,
                adopt: Vec::new(),
                artifacts: std::env::temp_dir(),
                cache: std::env::temp_dir(),
            },
            kubeconfig: None,
            context: None,
            created: false,
            ingress: super::super::IngressAccess::HostPorts {
                http: "127.0.0.1:80".parse().expect("address"),
                https: "127.0.0.1:443".parse().expect("address"),
            },
            run_id: "test".into(),
            nic: super::super::controllers::NicPlace::installed(),
        }
    }

    fn object(text: &str) -> Object {
        crate::manifest::load_text(text, Path::new("o.yaml"), "team")
            .expect("objects")
            .remove(0)
    }

    /// The Ingress's events are read, and only NIC's on this very Ingress
    /// (its uid) count: an earlier Ingress of the same name's newer event not.
    #[tokio::test]
    async fn an_ingress_state_is_read_from_nic_events_on_that_very_ingress() {
        let client = fake_api_routes(vec![
            (
                "/apis/networking.k8s.io/v1/namespaces/team/ingresses/i",
                200,
                r#"{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"i","namespace":"team","uid":"now"}}"#,
            ),
            (
                "/api/v1/namespaces/team/events",
                200,
                r#"{"kind":"EventList","apiVersion":"v1","metadata":{},"items":[
                  {"metadata":{"name":"a","resourceVersion":"20"},"involvedObject":{"kind":"Ingress","name":"i","uid":"before"},
                   "reason":"AddedOrUpdated","message":"old","lastTimestamp":"2025-01-01T00:00:09Z","source":{"component":"nginx-ingress-controller"}},
                  {"metadata":{"name":"b","resourceVersion":"10"},"involvedObject":{"kind":"Ingress","name":"i","uid":"now"},
                   "reason":"AddedOrUpdatedWithWarning","message":"with warning(s): x","lastTimestamp":"2025-01-01T00:00:01Z","source":{"component":"nginx-ingress-controller"}}
                ]}"#,
            ),
        ])
        .await;
        let cluster = fake_cluster(client);
        let ingress = object(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i}\nspec: {ingressClassName: nginx}\n",
        );
        let (state, reason, message) = latest_event(&cluster, &ingress).await.expect("events");
        assert_eq!(
            (state.as_str(), reason.as_str(), message.as_str()),
            ("Warning", "AddedOrUpdatedWithWarning", "with warning(s): x")
        );
    }

    /// A Deployment that never rolls out times out saying why its pods are
    /// not ready, from the pods and events the cluster lists.
    #[tokio::test]
    async fn a_timed_out_deployment_shows_its_pods_states_and_events() {
        let client = fake_api_routes(vec![
            (
                "/apis/apps/v1/namespaces/team/deployments",
                200,
                r#"{"kind":"DeploymentList","apiVersion":"apps/v1","metadata":{"resourceVersion":"1"},"items":[]}"#,
            ),
            (
                "/apis/apps/v1/namespaces/team/deployments/d",
                200,
                r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d","namespace":"team"},
                   "spec":{"selector":{"matchLabels":{"app":"d"}},"template":{}}}"#,
            ),
            (
                "/api/v1/namespaces/team/pods",
                200,
                r#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[{"metadata":{"name":"d-1"},
                   "status":{"phase":"Pending","containerStatuses":[{"name":"c","image":"x","imageID":"","ready":false,"restartCount":0,
                   "state":{"waiting":{"reason":"ImagePullBackOff","message":"Back-off pulling image \"x\""}}}]}}]}"#,
            ),
            (
                "/api/v1/namespaces/team/events",
                200,
                r#"{"kind":"EventList","apiVersion":"v1","metadata":{},"items":[]}"#,
            ),
        ])
        .await;
        let applier = Applier::new(client);
        let e = wait_available(&applier, "team", "d", Duration::from_millis(300))
            .await
            .expect_err("never available");
        let text = e.to_string();
        assert!(text.contains("not reached within 300ms"), "{text}");
        assert!(
            text.contains("pod d-1 (Pending); container c waiting: ImagePullBackOff"),
            "{text}"
        );
    }

    /// A listener that accepts is an answer; one that refuses is waited for
    /// until the deadline, which then says what it last saw.
    #[tokio::test]
    async fn first_answers_wait_out_refused_connections_only() {
        let open = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let (open_addr, closed_addr) = (
            open.local_addr().expect("address"),
            closed.local_addr().expect("address"),
        );
        drop(closed);
        let client = fake_api(404, "{}").await;
        let mut cluster = fake_cluster(client);
        let probe = vec![readiness::FirstProbe {
            host: "app.example.com".into(),
            port: 80,
            tls: false,
        }];
        cluster.ingress = super::super::IngressAccess::HostPorts {
            http: open_addr,
            https: open_addr,
        };
        wait_first_answers(&cluster, &probe, Duration::from_secs(5))
            .await
            .expect("answered");
        cluster.ingress = super::super::IngressAccess::HostPorts {
            http: closed_addr,
            https: closed_addr,
        };
        let e = wait_first_answers(&cluster, &probe, Duration::from_millis(300))
            .await
            .expect_err("refused");
        assert!(
            e.to_string().contains("NIC answering app.example.com:80"),
            "{e}"
        );
        assert!(e.to_string().to_lowercase().contains("refused"), "{e}");
        drop(open);
    }

    /// Services NIC has no endpoints for by design are named and not waited
    /// for; one whose pods are not ready yet is, and its timeout says so.
    #[tokio::test]
    async fn the_serving_wait_reads_services_and_their_endpoint_slices() {
        let client = fake_api_routes(vec![
            (
                "/api/v1/namespaces/team/services/elsewhere",
                200,
                r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"elsewhere","namespace":"team"},
                   "spec":{"type":"ExternalName","externalName":"example.com"}}"#,
            ),
            (
                "/api/v1/namespaces/team/services/web",
                200,
                r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"team"},
                   "spec":{"selector":{"app":"web"},"ports":[{"port":80,"targetPort":8080}]}}"#,
            ),
            (
                "/apis/discovery.k8s.io/v1/namespaces/team/endpointslices",
                200,
                r#"{"kind":"EndpointSliceList","apiVersion":"discovery.k8s.io/v1","metadata":{},"items":[
                   {"metadata":{"name":"web-1","labels":{"kubernetes.io/service-name":"web"}},"addressType":"IPv4",
                    "ports":[{"port":8080}],"endpoints":[{"addresses":["10.0.0.9"],"conditions":{"ready":false}}]}]}"#,
            ),
        ])
        .await;
        let cluster = fake_cluster(client);
        let scenario = Scenario::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/plain-http-port-80"),
        )
        .expect("scenario");
        let upstream = |service: &str| readiness::UpstreamRef {
            namespace: "team".into(),
            service: service.into(),
            port: readiness::PortRef::Number(80),
            cluster_ip: false,
            owner: "VirtualServer team/v".into(),
        };
        let pod = NicPod::Deployment {
            namespace: "nginx-ingress",
            name: "nginx-ingress",
        };
        let (said, _logging) = super::super::captured_logs(tracing::Level::INFO);
        wait_serving(
            &cluster,
            &scenario,
            &[upstream("elsewhere")],
            &pod,
            Duration::from_secs(5),
        )
        .await
        .expect("nothing to wait for");
        let said = said.text();
        assert!(
            said.lines().any(|m| m
                .contains(": not waited for: Service team/elsewhere:80: an ExternalName Service")),
            "{said}"
        );
        let e = wait_serving(
            &cluster,
            &scenario,
            &[upstream("web")],
            &pod,
            Duration::from_millis(300),
        )
        .await
        .expect_err("not ready");
        assert!(
            e.to_string().ends_with(
                "last observed: Service team/web:80: no ready endpoint yet (10.0.0.9 not ready)"
            ),
            "{e}"
        );
    }

    /// A wait is a `wait` span naming what it waits for; each new observation
    /// is one `observed` event (what its live line shows), a repeated one none.
    #[tokio::test]
    async fn a_wait_says_each_new_observation_once() {
        let (said, _logging) = super::super::captured_logs(tracing::Level::DEBUG);
        let mut looks = ["issuing", "issuing", "ready"].into_iter();
        let waited = wait_for("Certificate team/web Ready", Duration::from_secs(5), || {
            let seen = looks.next();
            async move {
                Ok(match seen {
                    Some("ready") | None => Poll::Done(()),
                    Some(other) => Poll::Pending(other.to_string()),
                })
            }
        })
        .await;
        assert!(waited.is_ok());
        let said = said.text();
        let observed: Vec<&str> = said.lines().filter(|l| l.contains("observed")).collect();
        assert_eq!(
            observed,
            ["wait{what=\"Certificate team/web Ready\"}: observed last=issuing"],
            "{said}"
        );
    }

    /// Wait for Secret team/s, which never appears; the error the wait ends with.
    async fn wait_for_missing_secret(client: kube::Client, deadline: Duration) -> ClusterError {
        let api: Api<Secret> = Api::namespaced(client, "team");
        let outcome = watch_until(api, "s", "Secret team/s", deadline, |s| match s {
            Some(_) => Poll::Done(()),
            None => Poll::Pending("does not exist yet".into()),
        })
        .await;
        match outcome {
            Ok(()) => panic!("the Secret never exists, so the wait cannot succeed"),
            Err(e) => e,
        }
    }

    #[tokio::test]
    async fn a_forbidden_watch_says_which_permission_is_missing() {
        let client = fake_api(
            403,
            r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"secrets is forbidden","reason":"Forbidden","code":403}"#,
        )
        .await;
        let e = wait_for_missing_secret(client, Duration::from_secs(20)).await;
        assert!(e.to_string().contains("needs `list` and `watch`"), "{e}");
    }

    #[tokio::test]
    async fn a_watch_past_its_deadline_says_what_it_last_observed() {
        let client = fake_api(
            200,
            r#"{"kind":"SecretList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]}"#,
        )
        .await;
        let e = wait_for_missing_secret(client, Duration::from_millis(500)).await;
        assert_eq!(
            e.to_string(),
            "Secret team/s: not reached within 500ms; last observed: does not exist yet"
        );
    }
}
