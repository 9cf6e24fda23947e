//! kind clusters: the tools, the pinned node images, ensure (reuse when healthy,
//! create otherwise), ownership markers so a run deletes only what it created,
//! and a sweep of clusters left by runs that died.

use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// Ensure a cluster named `name` exists and answers. Returns true when this call
/// created it (and so the run may delete it).
pub(crate) async fn ensure(
    name: &str,
    k8s: &str,
    cache: &Path,
    kubeconfig: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<bool, ClusterError> {
    let kind = tool("kind")?;
    if existing_clusters().await?.iter().any(|c| c == name) {
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
        match run(
            &kubectl,
            &["--kubeconfig", &kc, "get", "--raw", "/readyz"],
            None,
            Duration::from_secs(30),
        )
        .await
        {
            Ok(_) => {
                progress(&format!("reusing kind cluster {name}"));
                return Ok(false);
            }
            Err(e) => {
                return Err(ClusterError::Failed(format!(
                    "kind cluster {name} exists but its API does not answer ({e}); delete it with `kind delete cluster --name {name}` or pick another --cluster"
                )));
            }
        }
    }
    let config_path = cache.join(format!("{name}-kind.yaml"));
    std::fs::create_dir_all(cache.join("clusters"))
        .map_err(|e| ClusterError::Failed(e.to_string()))?;
    std::fs::write(&config_path, config(k8s)?).map_err(|e| ClusterError::Failed(e.to_string()))?;
    std::fs::write(marker(cache, name), std::process::id().to_string())
        .map_err(|e| ClusterError::Failed(e.to_string()))?;
    progress(&format!(
        "creating kind cluster {name} (Kubernetes {k8s}); this takes a minute or two"
    ));
    let args = create_args(name, &config_path, kubeconfig);
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    if let Err(e) = run(&kind, &words, None, Duration::from_secs(600)).await {
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
pub(crate) fn cleanup_interrupted(name: &str, cache: &Path, progress: &(dyn Fn(&str) + Sync)) {
    let ours = std::fs::read_to_string(marker(cache, name))
        .is_ok_and(|o| o.trim() == std::process::id().to_string());
    if ours {
        progress(&format!(
            "deleting kind cluster {name}, which this run was creating"
        ));
        // Sync: the app calls this from a blocking thread after an interrupt.
        if let Err(e) = blocking(delete(name, cache)) {
            progress(&format!(
                "could not delete it ({e}); run `kind delete cluster --name {name}`"
            ));
        }
    }
}

/// Mark a cluster as kept (`--keep`): the sweep leaves it alone.
pub(crate) fn keep(name: &str, cache: &Path) {
    let _ = std::fs::write(marker(cache, name), "kept");
}

/// Delete clusters of ours whose creating run is gone (and that were not kept).
pub(crate) async fn sweep_stale(
    cache: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), ClusterError> {
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
            progress(&format!(
                "deleting stale kind cluster {name} (its run ended without cleaning up)"
            ));
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

    #[test]
    fn config_has_the_ingress_label_and_ports() {
        let c = config("1.34").expect("config");
        assert!(c.contains("ingress-ready: \"true\""));
        assert!(c.contains("containerPort: 443"));
        assert!(c.contains("kindest/node:v1.34.3@sha256:"));
        assert!(!c.contains("NODE_IMAGE"));
    }
}
