//! What the cluster waits decide, from objects and events as the API server
//! returns them. Pure: every rule has a test without a cluster, and the
//! waits in `apply.rs` only fetch what these functions read.

use std::fmt::Write as _;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use serde_json::Value;

use super::apply::Poll;
use crate::manifest::ControllerState;

/// The component NIC's event recorder reports as (NIC 5.5.4
/// cmd/nginx-ingress/main.go:116, `EventSource{Component: "nginx-ingress-controller"}`).
pub(crate) const NIC_COMPONENT: &str = "nginx-ingress-controller";

/// How recent an event is: its last occurrence (an aggregated event's
/// `series.lastObservedTime` or `lastTimestamp`, else `eventTime`) to the
/// second, then `resourceVersion`, which grows with every write (a repeated
/// event is the same object written again, its `count` raised). Legacy events
/// carry whole seconds only, so two events of one second are told apart by
/// their writes, never by which the API listed first.
fn recency(e: &Event) -> (i64, u64, i32) {
    let last = e
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref())
        .map(|t| t.0)
        .or(e.last_timestamp.as_ref().map(|t| t.0))
        .or(e.event_time.as_ref().map(|t| t.0))
        .or(e.first_timestamp.as_ref().map(|t| t.0))
        .map_or(i64::MIN, k8s_openapi::jiff::Timestamp::as_second);
    let version = e
        .metadata
        .resource_version
        .as_deref()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let count = e
        .series
        .as_ref()
        .and_then(|s| s.count)
        .or(e.count)
        .unwrap_or(1);
    (last, version, count)
}

/// Events, most recent last.
pub(crate) fn by_recency<'a>(events: impl IntoIterator<Item = &'a Event>) -> Vec<&'a Event> {
    let mut list: Vec<&Event> = events.into_iter().collect();
    list.sort_by_key(|e| recency(e));
    list
}

fn from_nic(e: &Event) -> bool {
    e.source.as_ref().and_then(|s| s.component.as_deref()) == Some(NIC_COMPONENT)
        || e.reporting_component.as_deref() == Some(NIC_COMPONENT)
}

/// The state an Ingress event of NIC 5.5.4 stands for, from its reason (and,
/// for `Rejected`, its message); `None` for a reason NIC does not give an
/// Ingress. NIC has no `status.state` on an Ingress: the words are those it
/// writes on a `VirtualServer` for the same outcome.
///
/// - `AddedOrUpdated`, `AddedOrUpdatedWithWarning`, `AddedOrUpdatedWithError`:
///   internal/k8s/controller.go:1683-1799 (regular and mergeable Ingresses;
///   "with error": written but not applied, Invalid as on a `VirtualServer`).
/// - `Rejected`, `RejectedWithError`: controller.go:1633-1660 (an Ingress that
///   became invalid) and internal/k8s/policy.go:151 (a bad policy).
/// - Problems (controller.go:1441-1453 `processProblems`): Invalid when the
///   problem is an error, Warning otherwise. The Ingress problems that are not
///   errors are the host and listener conflicts (internal/k8s/configuration.go:
///   1293-1357, reason `Rejected`, told apart by their messages) and a minion
///   without a master (configuration.go:1436-1440, `NoIngressMasterFound`).
pub(crate) fn ingress_event_state(reason: &str, message: &str) -> Option<ControllerState> {
    const NOT_ERRORS: [&str; 3] = [
        "is taken by another resource",
        "are taken by other resources",
        "doesn't exist",
    ];
    match reason {
        "AddedOrUpdated" => Some(ControllerState::Valid),
        "AddedOrUpdatedWithWarning" | "NoIngressMasterFound" => Some(ControllerState::Warning),
        "Rejected" if NOT_ERRORS.iter().any(|m| message.ends_with(m)) => {
            Some(ControllerState::Warning)
        }
        "AddedOrUpdatedWithError" | "Rejected" | "RejectedWithError" => {
            Some(ControllerState::Invalid)
        }
        _ => None,
    }
}

/// NIC's latest word on an Ingress: the most recent event NIC recorded about
/// this very object (`uid`, so an earlier run's Ingress of the same name does
/// not count). `state` is empty while NIC has said nothing, or when its latest
/// reason says nothing about the state.
pub(crate) fn ingress_state(events: &[Event], uid: Option<&str>) -> (String, String, String) {
    let ours = events
        .iter()
        .filter(|e| from_nic(e) && uid.is_none_or(|u| e.involved_object.uid.as_deref() == Some(u)));
    match by_recency(ours).last() {
        None => (String::new(), String::new(), String::new()),
        Some(e) => {
            let reason = e.reason.clone().unwrap_or_default();
            let message = e.message.clone().unwrap_or_default();
            let state = ingress_event_state(&reason, &message)
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            (state, reason, message)
        }
    }
}

/// Done once a Deployment's rollout is complete, by `kubectl rollout status`'s
/// rule (`kubectl/pkg/polymorphichelpers/rollout_status.go)`: its controller
/// has observed the current spec (`observedGeneration >= generation`), every
/// wanted replica runs the current template, no old replica is left, and the
/// updated ones are available. So on a reused cluster an old pod of the
/// previous spec never passes for the new one.
pub(crate) fn rolled_out(deployment: Option<&Deployment>) -> Poll<()> {
    let Some(d) = deployment else {
        return Poll::Pending("status = null (the Deployment does not exist yet)".into());
    };
    let status = d.status.clone().unwrap_or_default();
    let shown = serde_json::to_value(&d.status).unwrap_or(Value::Null);
    let pending = |why: String| Poll::Pending(format!("{why}; status = {shown}"));
    let generation = d.metadata.generation.unwrap_or(0);
    let observed = status.observed_generation.unwrap_or(0);
    if observed < generation {
        return pending(format!(
            "observedGeneration {observed} < generation {generation}: the controller has not seen the current spec yet"
        ));
    }
    if let Some(c) = status.conditions.iter().flatten().find(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    }) {
        return pending(format!(
            "its progress deadline passed: {}",
            c.message.as_deref().unwrap_or("ProgressDeadlineExceeded")
        ));
    }
    let wanted = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < wanted {
        return pending(format!(
            "{updated} of {wanted} new replicas have been updated"
        ));
    }
    if total > updated {
        return pending(format!(
            "{} old replicas are pending termination",
            total - updated
        ));
    }
    if available < updated {
        return pending(format!(
            "{available} of {updated} updated replicas are available"
        ));
    }
    Poll::Done(())
}

/// Done once a cert-manager Certificate is Ready for its current spec: the
/// Ready condition True and written for this generation (cert-manager sets
/// each condition's `observedGeneration`), so a Certificate edited by this run
/// is not taken as ready on its previous issuance. `generation` is
/// `metadata.generation`; `object` the rest of it.
pub(crate) fn certificate_ready(generation: Option<i64>, object: Option<&Value>) -> Poll<()> {
    let conditions = object
        .and_then(|v| v.pointer("/status/conditions"))
        .unwrap_or(&Value::Null);
    let ready = conditions
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready");
    let Some(ready) = ready else {
        return Poll::Pending(format!(
            "no Ready condition yet; status.conditions = {conditions}"
        ));
    };
    let observed = ready.get("observedGeneration").and_then(Value::as_i64);
    if ready["status"] != "True" {
        return Poll::Pending(format!("status.conditions = {conditions}"));
    }
    match (observed, generation) {
        (Some(o), Some(g)) if o == g => Poll::Done(()),
        (o, g) => Poll::Pending(format!(
            "Ready is True for observedGeneration {} but the Certificate is at generation {}; status.conditions = {conditions}",
            o.map_or("(none)".to_string(), |o| o.to_string()),
            g.map_or("(none)".to_string(), |g| g.to_string()),
        )),
    }
}

/// How many of each pod's latest Warning events a timeout shows.
const EVENTS_PER_POD: usize = 3;

/// Why a Deployment's pods are not ready, for a timeout's message: each pod's
/// phase, the state of each container that is not ready (`ImagePullBackOff`
/// and its message, a crash's exit code, a failing readiness probe), a pod
/// condition that is False with a message (`Unschedulable`), and its latest
/// Warning events. With no pod at all, the Deployment's `ReplicaSets`' Warning
/// events (`FailedCreate`). `deployment` is the Deployment's name.
pub(crate) fn pods_not_ready(deployment: &str, pods: &[Pod], events: &[Event]) -> String {
    let warnings = |kind: &str, name: &dyn Fn(&str) -> bool| -> Vec<String> {
        let matching = events.iter().filter(|e| {
            e.type_.as_deref() == Some("Warning")
                && e.involved_object.kind.as_deref() == Some(kind)
                && e.involved_object.name.as_deref().is_some_and(name)
        });
        let list = by_recency(matching);
        list.iter()
            .rev()
            .take(EVENTS_PER_POD)
            .rev()
            .map(|e| {
                format!(
                    "{}: {}",
                    e.reason.as_deref().unwrap_or("?"),
                    e.message.as_deref().unwrap_or_default().trim()
                )
            })
            .collect()
    };
    if pods.is_empty() {
        let prefix = format!("{deployment}-");
        let rs = warnings("ReplicaSet", &|n| n.starts_with(&prefix));
        return if rs.is_empty() {
            "no pod of it exists, and its ReplicaSets have no Warning event".into()
        } else {
            format!("no pod of it exists; its ReplicaSets: {}", rs.join("; "))
        };
    }
    let mut out = Vec::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let status = pod.status.clone().unwrap_or_default();
        let mut line = format!(
            "pod {name} ({})",
            status.phase.as_deref().unwrap_or("no phase yet")
        );
        let containers = status
            .init_container_statuses
            .iter()
            .flatten()
            .map(|c| ("init container", c))
            .chain(
                status
                    .container_statuses
                    .iter()
                    .flatten()
                    .map(|c| ("container", c)),
            );
        for (what, c) in containers {
            if c.ready {
                continue;
            }
            let state = c.state.as_ref();
            let described = if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
                format!(
                    "waiting: {}{}",
                    w.reason.as_deref().unwrap_or("?"),
                    w.message
                        .as_deref()
                        .map(|m| format!(" ({})", m.trim()))
                        .unwrap_or_default()
                )
            } else if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
                format!(
                    "terminated: {} (exit code {}){}",
                    t.reason.as_deref().unwrap_or("?"),
                    t.exit_code,
                    t.message
                        .as_deref()
                        .map(|m| format!(": {}", m.trim()))
                        .unwrap_or_default()
                )
            } else if state.and_then(|s| s.running.as_ref()).is_some() {
                "running, not ready (its readiness probe has not passed)".to_string()
            } else {
                "no state yet".to_string()
            };
            let restarts = if c.restart_count > 0 {
                format!(", {} restarts", c.restart_count)
            } else {
                String::new()
            };
            let _ = write!(line, "; {what} {} {described}{restarts}", c.name);
        }
        for cond in status.conditions.iter().flatten() {
            if cond.status == "False"
                && let Some(message) = cond.message.as_deref()
            {
                let _ = write!(
                    line,
                    "; {} False: {}{}",
                    cond.type_,
                    cond.reason
                        .as_deref()
                        .map(|r| format!("{r}: "))
                        .unwrap_or_default(),
                    message.trim()
                );
            }
        }
        let pod_events = warnings("Pod", &|n| n == name);
        if !pod_events.is_empty() {
            let _ = write!(line, "; events: {}", pod_events.join("; "));
        }
        out.push(line);
    }
    out.join("\n  ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(v: Value) -> Event {
        serde_json::from_value(v).expect("event")
    }

    fn nic_event(reason: &str, last: &str, rv: &str, uid: &str) -> Event {
        event(json!({
            "metadata": {"name": format!("e{rv}"), "resourceVersion": rv},
            "involvedObject": {"kind": "Ingress", "name": "i", "uid": uid},
            "reason": reason,
            "message": format!("{reason} message"),
            "lastTimestamp": last,
            "source": {"component": "nginx-ingress-controller"},
        }))
    }

    #[test]
    fn every_ingress_reason_of_nic_maps_to_its_state() {
        use ControllerState::{Invalid, Valid, Warning};
        let cases = [
            ("AddedOrUpdated", "", Some(Valid)),
            ("AddedOrUpdatedWithWarning", "", Some(Warning)),
            ("AddedOrUpdatedWithError", "", Some(Invalid)),
            (
                "Rejected",
                "spec.rules[0].host: Invalid value",
                Some(Invalid),
            ),
            ("RejectedWithError", "", Some(Invalid)),
            (
                "NoIngressMasterFound",
                "Ingress master is invalid or doesn't exist",
                Some(Warning),
            ),
            (
                "Rejected",
                "All hosts are taken by other resources",
                Some(Warning),
            ),
            (
                "Rejected",
                "Host is taken by another resource",
                Some(Warning),
            ),
            ("Rejected", "Listener tcp-80 doesn't exist", Some(Warning)),
            ("Scheduled", "", None),
            ("CreateCertificate", "", None),
        ];
        for (reason, message, want) in cases {
            assert_eq!(
                ingress_event_state(reason, message),
                want,
                "{reason}: {message}"
            );
        }
    }

    /// One-second timestamps tie; the later write (resourceVersion) wins, and
    /// an aggregated event counts at its last occurrence, not its first.
    #[test]
    fn the_latest_event_is_the_latest_occurrence_then_the_latest_write() {
        let warning = nic_event(
            "AddedOrUpdatedWithWarning",
            "2025-01-01T00:00:05Z",
            "120",
            "u",
        );
        let valid = nic_event("AddedOrUpdated", "2025-01-01T00:00:05Z", "130", "u");
        // Listed in the other order: the list order must not matter.
        let (state, reason, _) = ingress_state(&[valid.clone(), warning.clone()], Some("u"));
        assert_eq!(
            (state.as_str(), reason.as_str()),
            ("Valid", "AddedOrUpdated")
        );

        // The Warning event seen again later (count 2, lastTimestamp moved).
        let mut again = warning.clone();
        again.count = Some(2);
        again.first_timestamp = again.last_timestamp.clone();
        again.last_timestamp = serde_json::from_value(json!("2025-01-01T00:00:09Z")).ok();
        again.metadata.resource_version = Some("140".into());
        let (state, _, _) = ingress_state(&[again, valid.clone()], Some("u"));
        assert_eq!(state, "Warning");

        // A series' lastObservedTime is the latest occurrence, whatever lastTimestamp says.
        let series = event(json!({
            "metadata": {"name": "s", "resourceVersion": "100"},
            "involvedObject": {"kind": "Ingress", "name": "i", "uid": "u"},
            "reason": "Rejected", "message": "bad",
            "eventTime": "2025-01-01T00:00:01.000000Z",
            "series": {"count": 4, "lastObservedTime": "2025-01-01T00:00:30.000000Z"},
            "reportingComponent": "nginx-ingress-controller",
        }));
        let (state, reason, _) = ingress_state(&[valid, series], Some("u"));
        assert_eq!((state.as_str(), reason.as_str()), ("Invalid", "Rejected"));
    }

    #[test]
    fn events_of_another_object_or_component_do_not_count() {
        let old = nic_event("AddedOrUpdated", "2025-01-01T00:00:09Z", "200", "old-uid");
        let mut other = nic_event("AddedOrUpdated", "2025-01-01T00:00:09Z", "201", "u");
        other.source = None;
        let mine = nic_event("Rejected", "2025-01-01T00:00:01Z", "100", "u");
        let (state, reason, _) = ingress_state(&[old, other, mine], Some("u"));
        assert_eq!((state.as_str(), reason.as_str()), ("Invalid", "Rejected"));
        assert_eq!(ingress_state(&[], Some("u")).0, "");
    }

    fn deployment(v: Value) -> Deployment {
        serde_json::from_value(v).expect("deployment")
    }

    /// A reused cluster: the old pod is available, but the new spec is not
    /// observed yet, or not rolled out, or an old replica remains.
    #[test]
    fn a_deployment_is_ready_only_when_its_current_spec_is_rolled_out() {
        let pending = |d: &Deployment| match rolled_out(Some(d)) {
            Poll::Pending(why) => why,
            Poll::Done(()) => panic!("not rolled out: {d:?}"),
        };
        let stale = deployment(json!({
            "metadata": {"generation": 2},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}
        }));
        assert!(pending(&stale).starts_with("observedGeneration 1 < generation 2"));
        let rolling = deployment(json!({
            "metadata": {"generation": 2},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1}
        }));
        assert!(pending(&rolling).starts_with("1 old replicas are pending termination"));
        let new_not_up = deployment(json!({
            "metadata": {"generation": 2},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1}
        }));
        assert!(pending(&new_not_up).starts_with("1 of 2 updated replicas are available"));
        let none_updated = deployment(json!({
            "metadata": {"generation": 3},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": {"observedGeneration": 3, "replicas": 1, "updatedReplicas": 0, "availableReplicas": 1}
        }));
        assert!(pending(&none_updated).starts_with("0 of 1 new replicas have been updated"));
        let done = deployment(json!({
            "metadata": {"generation": 2},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}
        }));
        assert!(matches!(rolled_out(Some(&done)), Poll::Done(())));
        assert!(matches!(rolled_out(None), Poll::Pending(_)));
    }

    #[test]
    fn a_certificate_is_ready_only_for_its_current_generation() {
        let ready_for = |g: i64| {
            json!({"status": {"conditions": [
                {"type": "Issuing", "status": "False"},
                {"type": "Ready", "status": "True", "observedGeneration": g}
            ]}})
        };
        assert!(matches!(
            certificate_ready(Some(2), Some(&ready_for(2))),
            Poll::Done(())
        ));
        assert!(matches!(
            certificate_ready(Some(3), Some(&ready_for(2))),
            Poll::Pending(why) if why.starts_with("Ready is True for observedGeneration 2 but the Certificate is at generation 3")
        ));
        let not_ready = json!({"status": {"conditions": [{"type": "Ready", "status": "False", "observedGeneration": 1}]}});
        assert!(matches!(
            certificate_ready(Some(1), Some(&not_ready)),
            Poll::Pending(_)
        ));
        assert!(matches!(
            certificate_ready(Some(1), None),
            Poll::Pending(why) if why.starts_with("no Ready condition yet")
        ));
    }

    #[test]
    fn a_timed_out_deployment_says_why_its_pods_are_not_ready() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "aigw-5d9c-x1"},
            "status": {
                "phase": "Pending",
                "containerStatuses": [{
                    "name": "aigw", "image": "mtls-e2e:e2e", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"mtls-e2e:e2e\""}}
                }],
                "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady", "message": "containers with unready status: [aigw]"}]
            }
        }))
        .expect("pod");
        let pulled = event(json!({
            "metadata": {"name": "p1", "resourceVersion": "10"},
            "involvedObject": {"kind": "Pod", "name": "aigw-5d9c-x1"},
            "type": "Warning", "reason": "Failed",
            "message": "Failed to pull image \"mtls-e2e:e2e\": not found",
            "lastTimestamp": "2025-01-01T00:00:01Z"
        }));
        let normal = event(json!({
            "metadata": {"name": "p2", "resourceVersion": "11"},
            "involvedObject": {"kind": "Pod", "name": "aigw-5d9c-x1"},
            "type": "Normal", "reason": "Scheduled", "message": "assigned",
            "lastTimestamp": "2025-01-01T00:00:02Z"
        }));
        let why = pods_not_ready("aigw", &[pod], &[normal, pulled]);
        assert!(why.contains("pod aigw-5d9c-x1 (Pending)"), "{why}");
        assert!(
            why.contains(
                "container aigw waiting: ImagePullBackOff (Back-off pulling image \"mtls-e2e:e2e\")"
            ),
            "{why}"
        );
        assert!(
            why.contains("Ready False: ContainersNotReady: containers with unready status: [aigw]"),
            "{why}"
        );
        assert!(
            why.contains("events: Failed: Failed to pull image"),
            "{why}"
        );
        assert!(!why.contains("Scheduled"), "only Warning events: {why}");

        let quota = event(json!({
            "metadata": {"name": "r1", "resourceVersion": "12"},
            "involvedObject": {"kind": "ReplicaSet", "name": "aigw-5d9c"},
            "type": "Warning", "reason": "FailedCreate", "message": "exceeded quota",
            "lastTimestamp": "2025-01-01T00:00:02Z"
        }));
        assert_eq!(
            pods_not_ready("aigw", &[], &[quota]),
            "no pod of it exists; its ReplicaSets: FailedCreate: exceeded quota"
        );
    }
}
