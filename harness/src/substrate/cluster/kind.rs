//! kind clusters: the tools, the pinned node images, ensure (reuse when healthy,
//! create otherwise), ownership markers so a run deletes only what it created,
//! and a sweep of clusters left by runs that died.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::Instrument;

use super::{ClusterError, blocking, run, run_tool, tool};

/// The kind release the node images below belong to (helm/kind-action v1.14.0
/// installs it). Node images must be used by digest (kind's release notes).
pub(crate) const KIND_VERSION: &str = "v0.31.0";

/// Kubernetes versions the kind substrate offers, with kind v0.31.0's node images.
pub(crate) const NODE_IMAGES: &[(&str, &str)] = &[
    (
        "1.32",
        "kindest/node:v1.32.11@sha256:5fc52d52a7b9574015299724bd68f183702956aa4a2116ae75a63cb574b35af8",
    ),
    (
        "1.33",
        "kindest/node:v1.33.7@sha256:d26ef333bdb2cbe9862a0f7c3803ecc7b4303d8cea8e814b481b09949d353040",
    ),
    (
        "1.34",
        "kindest/node:v1.34.3@sha256:08497ee19eace7b4b5348db5c6a1591d7752b164530a36f855cb0f2bdcbadd48",
    ),
    (
        "1.35",
        "kindest/node:v1.35.0@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f",
    ),
];

pub(crate) const DEFAULT_K8S: &str = "1.34";

/// Prefix of the clusters this tool creates; the sweep only looks at these.
pub(crate) const CLUSTER_PREFIX: &str = "mtls-e2e";

pub(crate) const CONFIG_TEMPLATE: &str = include_str!("../../../../manifests/kind/cluster.yaml");

pub(crate) fn node_image(k8s: &str) -> Result<&'static str, ClusterError> {
    NODE_IMAGES
        .iter()
        .find(|(v, _)| *v == k8s)
        .map(|(_, i)| *i)
        .ok_or_else(|| {
            let known: Vec<_> = NODE_IMAGES.iter().map(|(v, _)| *v).collect();
            ClusterError::Input(format!(
                "--k8s-version {k8s} is not one of {} (kind {KIND_VERSION} node images)",
                known.join(", ")
            ))
        })
}

/// The kind config for `k8s`.
pub(crate) fn config(k8s: &str) -> Result<String, ClusterError> {
    Ok(CONFIG_TEMPLATE.replace("NODE_IMAGE", node_image(k8s)?))
}

/// What `kind create cluster` is run with.
pub(crate) fn create_args(name: &str, config_path: &Path, kubeconfig: &Path) -> Vec<String> {
    vec![
        "create".into(),
        "cluster".into(),
        "--name".into(),
        name.into(),
        "--config".into(),
        config_path.display().to_string(),
        "--kubeconfig".into(),
        kubeconfig.display().to_string(),
        "--wait".into(),
        "180s".into(),
    ]
}

/// A record that this tool created a cluster, and for which run.
fn marker(cache: &Path, name: &str) -> PathBuf {
    cache.join("clusters").join(format!("{name}.owner"))
}

pub(crate) async fn existing_clusters() -> Result<Vec<String>, ClusterError> {
    let out = run(
        &tool("kind")?,
        &["get", "clusters"],
        None,
        Duration::from_secs(30),
    )
    .await?;
    Ok(out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("No kind clusters"))
        .map(String::from)
        .collect())
}

/// What a run may do with a kind cluster that exists under `--cluster`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// No marker: someone else's (or made by hand), never deleted.
    NotOurs,
    /// Made by a run of ours that is still running (pid).
    InUse(i32),
    /// Made by a run of ours that ended (kept, or its run is gone).
    Ours,
}

/// Who owns `name`, from its marker in the cache.
pub(crate) fn owner(cache: &Path, name: &str) -> Owner {
    let Ok(text) = std::fs::read_to_string(marker(cache, name)) else {
        return Owner::NotOurs;
    };
    let me = i32::try_from(std::process::id()).ok();
    match text.trim().parse::<i32>() {
        Ok(pid) if Some(pid) != me && crate::sys::alive(pid) => Owner::InUse(pid),
        _ => Owner::Ours,
    }
}

/// Why a kind cluster that exists cannot serve this run: its node image is
/// not the one pinned for `k8s`, no node is labelled `ingress-ready=true`,
/// or that node does not publish ports 80 and 443 on the host's loopback
/// (what `manifests/kind/cluster.yaml` sets up, and NIC's Deployment needs).
/// `containers`: `docker inspect` of the cluster's node containers; `nodes`:
/// the API's Nodes. Empty when it fits.
pub(crate) fn misfits(
    k8s: &str,
    containers: &[serde_json::Value],
    nodes: &[k8s_openapi::api::core::v1::Node],
) -> Result<Vec<String>, ClusterError> {
    let wanted = node_image(k8s)?;
    let mut out = Vec::new();
    for c in containers {
        let name = c["Name"].as_str().unwrap_or("?").trim_start_matches('/');
        let image = c
            .pointer("/Config/Image")
            .and_then(|i| i.as_str())
            .unwrap_or("?");
        if image != wanted {
            let version = nodes
                .iter()
                .find(|n| n.metadata.name.as_deref() == Some(name))
                .and_then(|n| n.status.as_ref())
                .and_then(|s| s.node_info.as_ref())
                .map(|i| format!(" (Kubernetes {})", i.kubelet_version))
                .unwrap_or_default();
            out.push(format!(
                "node {name} runs {image}{version}, not {wanted} (--k8s-version {k8s})"
            ));
        }
    }
    let ingress = nodes.iter().find(|n| {
        n.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("ingress-ready"))
            .map(String::as_str)
            == Some("true")
    });
    let Some(ingress) = ingress else {
        out.push("no node is labelled ingress-ready=true (NIC's Deployment selects it)".into());
        return Ok(out);
    };
    let node = ingress.metadata.name.as_deref().unwrap_or_default();
    let container = containers
        .iter()
        .find(|c| c["Name"].as_str().map(|n| n.trim_start_matches('/')) == Some(node));
    for port in [80u16, 443] {
        let bindings = container
            .and_then(|c| c.pointer(&format!("/HostConfig/PortBindings/{port}~1tcp")))
            .and_then(|b| b.as_array())
            .cloned()
            .unwrap_or_default();
        let on_loopback = bindings.iter().any(|b| {
            b["HostPort"].as_str() == Some(&port.to_string())
                && matches!(
                    b["HostIp"].as_str(),
                    None | Some("" | "0.0.0.0" | "127.0.0.1")
                )
        });
        if !on_loopback {
            out.push(format!(
                "node {node} (labelled ingress-ready=true) does not publish its port {port} as 127.0.0.1:{port} (extraPortMappings)"
            ));
        }
    }
    Ok(out)
}

/// What stops a reused cluster, and what to do about it.
fn does_not_fit(name: &str, misfits: &[String], owner: Owner, cache: &Path) -> ClusterError {
    let what_to_do = match owner {
        Owner::Ours => format!(
            "run again with --recreate: this tool created it (marker {}), so --recreate deletes it and creates it as this run needs",
            marker(cache, name).display()
        ),
        Owner::InUse(pid) => format!(
            "it is in use by another run (pid {pid}); wait for that run, or pick another --cluster"
        ),
        Owner::NotOurs => format!(
            "this tool did not create it (no marker {}), so it never deletes it: pick another --cluster, or delete it yourself with `kind delete cluster --name {name}`",
            marker(cache, name).display()
        ),
    };
    ClusterError::Failed(format!(
        "kind cluster {name} exists but does not fit this run:\n  - {}\n{what_to_do}",
        misfits.join("\n  - ")
    ))
}

/// The cluster's node containers as `docker inspect` shows them, and its Nodes.
async fn observe_nodes(
    name: &str,
    kubeconfig: &Path,
) -> Result<
    (
        Vec<serde_json::Value>,
        Vec<k8s_openapi::api::core::v1::Node>,
    ),
    ClusterError,
> {
    let listed = run(
        &tool("kind")?,
        &["get", "nodes", "--name", name],
        None,
        Duration::from_secs(30),
    )
    .await?;
    let names: Vec<&str> = listed
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut args = vec!["inspect"];
    args.extend(names.iter().copied());
    let inspected = run(&tool("docker")?, &args, None, Duration::from_secs(30)).await?;
    let containers: Vec<serde_json::Value> = serde_json::from_str(&inspected).map_err(|e| {
        ClusterError::Failed(format!("reading `docker inspect` of {name}'s nodes: {e}"))
    })?;
    let kc = kubeconfig.display().to_string();
    let nodes = run(
        &tool("kubectl")?,
        &["--kubeconfig", &kc, "get", "nodes", "-o", "json"],
        None,
        Duration::from_secs(30),
    )
    .await?;
    let nodes: k8s_openapi::List<k8s_openapi::api::core::v1::Node> =
        serde_json::from_str(&nodes)
            .map_err(|e| ClusterError::Failed(format!("reading {name}'s nodes: {e}")))?;
    Ok((containers, nodes.items))
}

/// Ensure a cluster named `name` exists, answers and fits (see [`misfits`]):
/// one that does not fit stops the run, saying what to do; with `recreate`,
/// one this tool created is deleted and created anew. Returns true when this
/// call created it (and so the run may delete it).
pub(crate) async fn ensure(
    name: &str,
    k8s: &str,
    recreate: bool,
    cache: &Path,
    kubeconfig: &Path,
) -> Result<bool, ClusterError> {
    let kind = tool("kind")?;
    if existing_clusters().await?.iter().any(|c| c == name) {
        let owner = owner(cache, name);
        if recreate {
            match owner {
                Owner::Ours => {
                    tracing::info!(
                        "deleting kind cluster {name} to create it anew (--recreate; this tool created it)"
                    );
                    delete(name, cache).await?;
                    return create(name, k8s, cache, kubeconfig).await;
                }
                Owner::InUse(pid) => {
                    return Err(ClusterError::Input(format!(
                        "--recreate: kind cluster {name} is in use by another run (pid {pid}); wait for that run, or pick another --cluster"
                    )));
                }
                Owner::NotOurs => {
                    return Err(ClusterError::Input(format!(
                        "--recreate deletes only a kind cluster this tool created, and {name} has no marker {}: pick another --cluster, or delete it yourself with `kind delete cluster --name {name}`",
                        marker(cache, name).display()
                    )));
                }
            }
        }
        // Reuse: refresh the kubeconfig and check the API answers.
        let config = run(
            &kind,
            &["get", "kubeconfig", "--name", name],
            None,
            Duration::from_secs(30),
        )
        .await?;
        std::fs::write(kubeconfig, config)
            .map_err(|e| ClusterError::Failed(format!("writing {}: {e}", kubeconfig.display())))?;
        let kubectl = tool("kubectl")?;
        let kc = kubeconfig.display().to_string();
        if let Err(e) = run(
            &kubectl,
            &["--kubeconfig", &kc, "get", "--raw", "/readyz"],
            None,
            Duration::from_secs(30),
        )
        .await
        {
            return Err(ClusterError::Failed(format!(
                "kind cluster {name} exists but its API does not answer ({e}); delete it with `kind delete cluster --name {name}` or pick another --cluster"
            )));
        }
        let (containers, nodes) = observe_nodes(name, kubeconfig).await?;
        let wrong = misfits(k8s, &containers, &nodes)?;
        if !wrong.is_empty() {
            return Err(does_not_fit(name, &wrong, owner, cache));
        }
        tracing::info!("reusing kind cluster {name}");
        return Ok(false);
    }
    create(name, k8s, cache, kubeconfig).await
}

/// `kind create cluster`, with the ownership marker written first.
async fn create(
    name: &str,
    k8s: &str,
    cache: &Path,
    kubeconfig: &Path,
) -> Result<bool, ClusterError> {
    let kind = tool("kind")?;
    let config_path = cache.join(format!("{name}-kind.yaml"));
    std::fs::create_dir_all(cache.join("clusters"))
        .map_err(|e| ClusterError::Failed(e.to_string()))?;
    std::fs::write(&config_path, config(k8s)?).map_err(|e| ClusterError::Failed(e.to_string()))?;
    std::fs::write(marker(cache, name), std::process::id().to_string())
        .map_err(|e| ClusterError::Failed(e.to_string()))?;
    tracing::info!("creating kind cluster {name} (Kubernetes {k8s}); this takes a minute or two");
    let args = create_args(name, &config_path, kubeconfig);
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let what = format!("kind cluster {name} (Kubernetes {k8s})");
    let span = tracing::info_span!("create", what = what.as_str());
    let created = run(&kind, &words, None, Duration::from_secs(600))
        .instrument(span)
        .await;
    if let Err(e) = created {
        let _ = std::fs::remove_file(marker(cache, name));
        return Err(e);
    }
    Ok(true)
}

pub(crate) async fn delete(name: &str, cache: &Path) -> Result<(), ClusterError> {
    run(
        &tool("kind")?,
        &["delete", "cluster", "--name", name],
        None,
        Duration::from_secs(300),
    )
    .await?;
    let _ = std::fs::remove_file(marker(cache, name));
    Ok(())
}

/// After an interrupt: delete the cluster if this process was creating it.
pub(crate) fn cleanup_interrupted(name: &str, cache: &Path) {
    let ours = std::fs::read_to_string(marker(cache, name))
        .is_ok_and(|o| o.trim() == std::process::id().to_string());
    if ours {
        tracing::info!("deleting kind cluster {name}, which this run was creating");
        // Sync: the app calls this from a blocking thread after an interrupt.
        if let Err(e) = blocking(delete(name, cache)) {
            tracing::warn!("could not delete it ({e}); run `kind delete cluster --name {name}`");
        }
    }
}

/// Mark a cluster as kept (`--keep`): the sweep leaves it alone.
pub(crate) fn keep(name: &str, cache: &Path) {
    let _ = std::fs::write(marker(cache, name), "kept");
}

/// Delete clusters of ours whose creating run is gone (and that were not kept).
pub(crate) async fn sweep_stale(cache: &Path) -> Result<(), ClusterError> {
    let Ok(entries) = std::fs::read_dir(cache.join("clusters")) else {
        return Ok(());
    };
    let live = existing_clusters().await?;
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_stem().and_then(|n| n.to_str()).map(String::from) else {
            continue;
        };
        if !name.starts_with(CLUSTER_PREFIX) {
            continue;
        }
        let owner = std::fs::read_to_string(&path).unwrap_or_default();
        let Ok(pid) = owner.trim().parse::<i32>() else {
            continue;
        };
        let alive = crate::sys::alive(pid);
        if alive {
            continue;
        }
        if live.contains(&name) {
            tracing::info!(
                "deleting stale kind cluster {name} (its run ended without cleaning up)"
            );
            delete(&name, cache).await?;
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
    Ok(())
}

/// `kind load docker-image IMAGE --name NAME`.
pub(crate) fn load_image(name: &str, image: &str) -> Result<(), ClusterError> {
    run_tool(
        &tool("kind")?,
        &["load", "docker-image", image, "--name", name],
        Duration::from_secs(300),
    )
    .map(|_| ())
}

/// `kind export logs DIR --name NAME`.
pub(crate) async fn export_logs(name: &str, dir: &Path) -> Result<(), ClusterError> {
    let d = dir.display().to_string();
    run(
        &tool("kind")?,
        &["export", "logs", &d, "--name", name],
        None,
        Duration::from_secs(300),
    )
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_images_are_pinned_by_digest() {
        for (_, image) in NODE_IMAGES {
            assert!(image.contains("@sha256:") && image.len() > 80, "{image}");
        }
        assert!(node_image(DEFAULT_K8S).is_ok());
        assert!(node_image("1.20").is_err());
    }

    fn node(labels: serde_json::Value) -> k8s_openapi::api::core::v1::Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "mtls-e2e-control-plane", "labels": labels},
            "status": {"nodeInfo": {"kubeletVersion": "v1.33.7", "architecture": "amd64",
                "bootID": "", "containerRuntimeVersion": "", "kernelVersion": "", "kubeProxyVersion": "",
                "machineID": "", "operatingSystem": "linux", "osImage": "", "systemUUID": ""}}
        }))
        .expect("node")
    }

    fn container(image: &str, bindings: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "Name": "/mtls-e2e-control-plane",
            "Config": {"Image": image},
            "HostConfig": {"PortBindings": bindings}
        })
    }

    /// A reused cluster is checked as the run needs it: its node image, the
    /// ingress node's label, and that node's published 80 and 443.
    #[test]
    fn a_reused_cluster_must_have_the_version_ports_and_label_this_run_needs() {
        let wanted = node_image("1.34").expect("image");
        let ports = serde_json::json!({
            "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "80"}],
            "443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "443"}],
            "6443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "41234"}]
        });
        let label = serde_json::json!({"ingress-ready": "true"});
        let fits = misfits(
            "1.34",
            &[container(wanted, ports.clone())],
            &[node(label.clone())],
        );
        assert_eq!(fits.expect("known version"), Vec::<String>::new());

        let older = node_image("1.33").expect("image");
        let wrong = misfits(
            "1.34",
            &[container(older, ports.clone())],
            &[node(label.clone())],
        )
        .expect("known version");
        assert_eq!(wrong.len(), 1, "{wrong:?}");
        assert!(
            wrong[0].contains("(Kubernetes v1.33.7), not kindest/node:v1.34.3"),
            "{wrong:?}"
        );

        let unlabelled = misfits(
            "1.34",
            &[container(wanted, ports)],
            &[node(serde_json::json!({}))],
        )
        .expect("known version");
        assert_eq!(
            unlabelled,
            ["no node is labelled ingress-ready=true (NIC's Deployment selects it)"]
        );

        let no_ports =
            serde_json::json!({"6443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "41234"}]});
        let closed = misfits(
            "1.34",
            &[container(wanted, no_ports)],
            &[node(label.clone())],
        )
        .expect("known version");
        assert_eq!(closed.len(), 2, "{closed:?}");
        assert!(
            closed[1].contains("does not publish its port 443"),
            "{closed:?}"
        );

        let elsewhere = serde_json::json!({
            "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
            "443/tcp": [{"HostIp": "10.0.0.5", "HostPort": "443"}]
        });
        let moved = misfits("1.34", &[container(wanted, elsewhere)], &[node(label)])
            .expect("known version");
        assert_eq!(moved.len(), 2, "{moved:?}");
    }

    /// `--recreate` deletes only what this tool created, and never a cluster
    /// another run is using.
    #[test]
    fn only_a_cluster_with_our_marker_is_ours_to_recreate() {
        let cache = tempfile::tempdir().expect("tempdir");
        assert_eq!(owner(cache.path(), "mtls-e2e"), Owner::NotOurs);
        std::fs::create_dir_all(cache.path().join("clusters")).expect("dir");
        keep("mtls-e2e", cache.path());
        assert_eq!(owner(cache.path(), "mtls-e2e"), Owner::Ours);
        std::fs::write(
            marker(cache.path(), "mtls-e2e"),
            std::process::id().to_string(),
        )
        .expect("marker");
        assert_eq!(
            owner(cache.path(), "mtls-e2e"),
            Owner::Ours,
            "this run's own"
        );
        // pid 1 is always running and is never this test.
        std::fs::write(marker(cache.path(), "mtls-e2e"), "1").expect("marker");
        assert_eq!(owner(cache.path(), "mtls-e2e"), Owner::InUse(1));
        let e = does_not_fit("mtls-e2e", &["x".into()], Owner::Ours, cache.path());
        assert!(e.to_string().contains("run again with --recreate"), "{e}");
        let e = does_not_fit("mtls-e2e", &["x".into()], Owner::NotOurs, cache.path());
        assert!(e.to_string().contains("never deletes it"), "{e}");
    }

    #[test]
    fn config_has_the_ingress_label_and_ports() {
        let c = config("1.34").expect("config");
        assert!(c.contains("ingress-ready: \"true\""));
        assert!(c.contains("containerPort: 443"));
        assert!(c.contains("kindest/node:v1.34.3@sha256:"));
        assert!(!c.contains("NODE_IMAGE"));
    }
}
