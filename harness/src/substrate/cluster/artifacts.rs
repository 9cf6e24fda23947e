//! Evidence of a failed scenario, in one folder per scenario: events and
//! objects of its namespaces, the mock servers' logs, NIC's logs and the part
//! of NIC's generated nginx configuration that belongs to the scenario, and
//! (kind) `kind export logs` once per run. Best effort: a command that fails
//! leaves its error in the file instead of stopping the collection, and each
//! resource kind is read on its own, so a kind the cluster does not serve
//! (cert-manager's, NIC's CRDs) empties nothing else.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use super::install::{NIC_DEPLOYMENT, NIC_NAMESPACE, NIC_POD_SELECTOR};
use super::{Cluster, Mode, kind};
use crate::manifest::Kind;
use crate::scenario::Scenario;
use crate::substrate::local::pods::is_our_image;

/// Scenario-namespaced kinds worth dumping (Secrets are listed, not dumped),
/// each read by a command of its own.
const OBJECT_KINDS: [&str; 14] = [
    "deployments",
    "replicasets",
    "pods",
    "services",
    "endpointslices.discovery.k8s.io",
    "configmaps",
    "certificates.cert-manager.io",
    "certificaterequests.cert-manager.io",
    "issuers.cert-manager.io",
    "policies.k8s.nginx.org",
    "virtualservers.k8s.nginx.org",
    "virtualserverroutes.k8s.nginx.org",
    "ingresses.networking.k8s.io",
    "events.events.k8s.io",
];

/// One command's output; items naming the same file are appended to it, in order.
pub(crate) struct Item {
    pub file: String,
    pub kubectl: Vec<String>,
}

/// Where NIC runs: its namespace and the workload that owns its pod
/// (`deployment/nginx-ingress`), as `kubectl logs` and `exec` name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NicLocation {
    pub namespace: String,
    pub workload: String,
}

impl NicLocation {
    /// Where the kind install puts NIC.
    pub(crate) fn installed() -> NicLocation {
        NicLocation {
            namespace: NIC_NAMESPACE.into(),
            workload: format!("deployment/{NIC_DEPLOYMENT}"),
        }
    }

    /// Where the run expects NIC before its pods are read: where kind
    /// installs it, or the namespace an existing cluster's NIC was named in.
    pub(crate) fn expected(mode: &Mode) -> NicLocation {
        match mode {
            Mode::Kind { .. } => NicLocation::installed(),
            Mode::Existing { nic_namespace, .. } => NicLocation {
                namespace: nic_namespace
                    .clone()
                    .unwrap_or_else(|| "<NIC's namespace, found in the preflight>".into()),
                workload: "<the workload owning NIC's pod>".into(),
            },
        }
    }
}

/// The workload that owns a pod, by its controller reference: a `ReplicaSet`
/// named `<deployment>-<pod-template-hash>` belongs to that Deployment (the
/// rule NIC itself applies, internal/k8s/controller.go `getPodOwnerTypeAndName`);
/// a `DaemonSet` or `StatefulSet` is itself; a pod without one is the pod.
fn owner(pod: &Pod) -> String {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let controller = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    match controller {
        Some(o) if o.kind == "ReplicaSet" => {
            let hash = pod
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("pod-template-hash"));
            match hash.and_then(|h| o.name.strip_suffix(&format!("-{h}"))) {
                Some(deployment) => format!("deployment/{deployment}"),
                None => format!("replicaset/{}", o.name),
            }
        }
        Some(o) => format!("{}/{}", o.kind.to_lowercase(), o.name),
        None => format!("pod/{name}"),
    }
}

/// NIC among `pods` (those labelled [`NIC_POD_SELECTOR`], a label both NIC's
/// manifests and its Helm chart give its pods): a running one first, in
/// `preferred` namespace first (where the run installed or was told NIC is).
pub(crate) fn locate_nic(pods: &[Pod], preferred: Option<&str>) -> Result<NicLocation, String> {
    let running = |p: &Pod| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
    let mut ranked: Vec<&Pod> = pods.iter().collect();
    ranked.sort_by_key(|p| {
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        (
            !running(p),
            Some(ns.as_str()) != preferred,
            ns.clone(),
            p.metadata.name.clone(),
        )
    });
    let pod = ranked
        .first()
        .ok_or_else(|| format!("no pod labelled {NIC_POD_SELECTOR} in any namespace"))?;
    Ok(NicLocation {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        workload: owner(pod),
    })
}

/// Find NIC's pods: in every namespace, or, where the kubeconfig may not list
/// pods cluster-wide, in `preferred`.
async fn find_nic(cluster: &Cluster, preferred: &str) -> Result<NicLocation, String> {
    let params = kube::api::ListParams::default().labels(NIC_POD_SELECTOR);
    let all: kube::Api<Pod> = kube::Api::all(cluster.client.clone());
    let pods = match all.list(&params).await {
        Ok(list) => list.items,
        Err(everywhere) => {
            let one: kube::Api<Pod> = kube::Api::namespaced(cluster.client.clone(), preferred);
            one.list(&params)
                .await
                .map_err(|e| {
                    format!("listing pods {NIC_POD_SELECTOR}: in all namespaces: {everywhere}; in {preferred}: {e}")
                })?
                .items
        }
    };
    locate_nic(&pods, Some(preferred))
}

/// What is collected for a scenario (pure, so the plan and tests can show it),
/// with NIC where `nic` says.
pub(crate) fn scenario_items(scenario: &Scenario, nic: &NicLocation) -> Vec<Item> {
    let mut items = Vec::new();
    let mut namespaces: Vec<&str> = scenario
        .objects
        .iter()
        .filter_map(|o| o.id.namespace.as_deref())
        .collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    let words = |s: &[&str]| {
        s.iter()
            .map(std::string::ToString::to_string)
            .collect::<Vec<_>>()
    };
    for ns in &namespaces {
        items.push(Item {
            file: format!("{ns}/events.txt"),
            kubectl: words(&[
                "get",
                "events",
                "-n",
                ns,
                "--sort-by=.lastTimestamp",
                "-o",
                "wide",
            ]),
        });
        for kind in OBJECT_KINDS {
            items.push(Item {
                file: format!("{ns}/objects.yaml"),
                kubectl: words(&["get", kind, "-n", ns, "-o", "yaml"]),
            });
        }
        items.push(Item {
            file: format!("{ns}/secrets.txt"),
            kubectl: words(&["get", "secrets", "-n", ns, "-o", "wide"]),
        });
    }
    for o in &scenario.objects {
        if o.id.kind == Kind::ClusterIssuer {
            items.push(Item {
                file: format!("clusterissuer-{}.yaml", o.name()),
                kubectl: words(&["get", "clusterissuer", o.name(), "-o", "yaml"]),
            });
        }
        if o.id.kind == Kind::Deployment && deployment_is_ours(o) {
            let target = format!("deployment/{}", o.name());
            items.push(Item {
                file: format!("{}/{}.log", o.namespace(), o.name()),
                kubectl: words(&[
                    "logs",
                    "-n",
                    o.namespace(),
                    &target,
                    "--all-containers",
                    "--tail=5000",
                ]),
            });
        }
    }
    let (ns, target) = (nic.namespace.as_str(), nic.workload.as_str());
    items.push(Item {
        file: "nic.log".into(),
        kubectl: words(&["logs", "-n", ns, target, "--tail=5000"]),
    });
    items.push(Item {
        file: "nic-nginx-T.conf".into(),
        kubectl: words(&["exec", "-n", ns, target, "--", "nginx", "-T"]),
    });
    items
}

fn deployment_is_ours(object: &crate::manifest::Object) -> bool {
    let json = object.to_json();
    json.pointer("/spec/template/spec/containers")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
        .any(|c| {
            c.get("image")
                .and_then(|i| i.as_str())
                .is_some_and(is_our_image)
        })
}

/// The files of `nginx -T` output that belong to `namespaces` (NIC names them
/// `vs_<ns>_<name>.conf` and `<ns>-<name>.conf`).
pub(crate) fn scenario_conf(nginx_t: &str, namespaces: &[&str]) -> String {
    let mut out = String::new();
    let mut keep = false;
    for line in nginx_t.lines() {
        if let Some(file) = line.strip_prefix("# configuration file ") {
            let name = file
                .trim_end_matches(':')
                .rsplit('/')
                .next()
                .unwrap_or_default();
            keep = namespaces.iter().any(|ns| {
                name.starts_with(&format!("vs_{ns}_")) || name.starts_with(&format!("{ns}-"))
            });
        }
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Collect a failed scenario's evidence under `<artifacts>/<scenario>/`.
pub(crate) async fn collect(cluster: &Cluster, scenario: &Scenario, why: &str) -> PathBuf {
    let dir = cluster.options.artifacts.join(&scenario.name);
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join("FAILURE.txt"),
        format!("{}\n\n{why}\n", scenario.name),
    );
    let base = cluster.kubectl_args();
    // Where the preflight found NIC; its pods are read again in case it moved.
    let expected = NicLocation {
        namespace: cluster.nic.namespace.clone(),
        workload: cluster.nic.workload.clone(),
    };
    let nic = match find_nic(cluster, &expected.namespace).await {
        Ok(found) => found,
        Err(e) => {
            let _ = std::fs::write(
                dir.join("nic-not-found.txt"),
                format!(
                    "NIC's pod was not found, so NIC's log and configuration were not read: {e}\n"
                ),
            );
            expected
        }
    };
    let items = scenario_items(scenario, &nic);
    let folder = dir.clone();
    let namespaces: Vec<String> = {
        let mut n: Vec<String> = scenario
            .objects
            .iter()
            .filter_map(|o| o.id.namespace.clone())
            .collect();
        n.sort();
        n.dedup();
        n
    };
    if let Ok(kubectl) = super::tool("kubectl") {
        let mut written: Vec<String> = Vec::new();
        for item in items {
            let mut args = base.clone();
            args.extend(item.kubectl.iter().cloned());
            let words: Vec<&str> = args.iter().map(String::as_str).collect();
            let shown = item.kubectl.join(" ");
            let mut text = match super::run(&kubectl, &words, None, Duration::from_secs(60)).await {
                Ok(out) => out,
                Err(e) => format!("# kubectl {shown} failed:\n# {e}\n"),
            };
            let path = folder.join(&item.file);
            if let Some(parent) = path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            if item.file == "nic-nginx-T.conf" {
                let refs: Vec<&str> = namespaces.iter().map(String::as_str).collect();
                let _ = std::fs::write(
                    folder.join("nic-scenario.conf"),
                    scenario_conf(&text, &refs),
                );
            }
            if written.contains(&item.file) {
                // One document stream per kind: `---` keeps the file valid YAML.
                text = format!("---\n# kubectl {shown}\n{text}");
                let _ = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()));
            } else {
                if item.file.ends_with(".yaml") {
                    text = format!("# kubectl {shown}\n{text}");
                }
                let _ = std::fs::write(path, text);
                written.push(item.file.clone());
            }
        }
    }
    dir
}

/// Once per run with failures on kind: `kind export logs` (node, kubelet,
/// containerd and every container's logs).
pub(crate) async fn collect_cluster(cluster: &Cluster) -> Option<PathBuf> {
    let Mode::Kind { name, .. } = &cluster.options.mode else {
        return None;
    };
    let dir = cluster.options.artifacts.join("kind-logs");
    let (name, target) = (name.clone(), dir.clone());
    match kind::export_logs(&name, &target).await {
        Ok(()) => Some(dir),
        Err(e) => {
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(dir.join("ERROR.txt"), e.to_string());
            Some(dir)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_scenario_collects_its_namespaces_mocks_and_nic() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/aigw-egress-mtls");
        let scenario = Scenario::load(&dir).expect("scenario");
        let files: Vec<String> = scenario_items(&scenario, &NicLocation::installed())
            .into_iter()
            .map(|i| i.file)
            .collect();
        for want in [
            "ai-gateway/events.txt",
            "ai-gateway/objects.yaml",
            "ai-gateway/aigw.log",
            "ai-gateway/ollama.log",
            "nic.log",
            "nic-nginx-T.conf",
        ] {
            assert!(files.iter().any(|f| f == want), "{want} not in {files:?}");
        }
    }

    /// One command per kind: a kind the cluster does not serve fails alone.
    #[test]
    fn each_resource_kind_is_read_on_its_own() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/aigw-egress-mtls");
        let scenario = Scenario::load(&dir).expect("scenario");
        let gets: Vec<Vec<String>> = scenario_items(&scenario, &NicLocation::installed())
            .into_iter()
            .filter(|i| i.file == "ai-gateway/objects.yaml")
            .map(|i| i.kubectl)
            .collect();
        assert_eq!(gets.len(), OBJECT_KINDS.len());
        for (get, kind) in gets.iter().zip(OBJECT_KINDS) {
            assert_eq!(get[..2], ["get".to_string(), kind.to_string()]);
            assert!(!get[1].contains(','), "{get:?}");
        }
    }

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    /// NIC is found by its pods wherever it runs, named by the workload that
    /// owns them, a running pod first.
    #[test]
    fn nic_is_found_by_its_pods_label_and_owner() {
        let helm = pod(serde_json::json!({
            "metadata": {
                "name": "edge-nginx-ingress-controller-7c9d8-abcde", "namespace": "ingress",
                "labels": {"app.kubernetes.io/name": "nginx-ingress", "pod-template-hash": "7c9d8"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "controller": true,
                    "name": "edge-nginx-ingress-controller-7c9d8", "uid": "1"}]
            },
            "status": {"phase": "Running"}
        }));
        let pending = pod(serde_json::json!({
            "metadata": {
                "name": "nginx-ingress-x", "namespace": "nginx-ingress",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "controller": true,
                    "name": "nginx-ingress", "uid": "2"}]
            },
            "status": {"phase": "Pending"}
        }));
        let found =
            locate_nic(&[pending.clone(), helm.clone()], Some("nginx-ingress")).expect("found");
        assert_eq!(
            found,
            NicLocation {
                namespace: "ingress".into(),
                workload: "deployment/edge-nginx-ingress-controller".into()
            }
        );
        let daemonset = locate_nic(&[pending], None).expect("found");
        assert_eq!(daemonset.workload, "daemonset/nginx-ingress");
        assert!(locate_nic(&[], None).is_err());
    }

    #[test]
    fn only_the_scenarios_conf_files_are_kept() {
        let t = "# configuration file /etc/nginx/nginx.conf:\nuser nginx;\n\
                 # configuration file /etc/nginx/conf.d/vs_webui_openwebui.conf:\nserver { listen 443; }\n\
                 # configuration file /etc/nginx/conf.d/other-app.conf:\nserver { }\n\
                 # configuration file /etc/nginx/conf.d/webui-ingress.conf:\nserver { listen 80; }\n";
        let kept = scenario_conf(t, &["webui"]);
        assert!(kept.contains("vs_webui_openwebui.conf") && kept.contains("listen 443"));
        assert!(kept.contains("webui-ingress.conf"));
        assert!(!kept.contains("other-app") && !kept.contains("user nginx"));
    }
}
