//! What the kind substrate installs: cert-manager and NGINX Ingress Controller
//! from their release manifests, pinned by version and sha256 and downloaded
//! once into the cache; NIC's Deployment patched for kind (host ports 80/443,
//! the ingress-ready node, Recreate) and otherwise run with the release
//! manifests' arguments, which are what the local substrate renders for. Both are applied at
//! the same time, then waited for: CRDs established, cert-manager's webhook
//! answering a server-side dry-run, NIC's Deployment available.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::actions::{Install, Release, installs};
use super::apply::{Applier, Poll, wait_available, wait_condition, wait_for};
use super::download::{self, Download};
use super::{Cluster, ClusterError};

pub(crate) const CERT_MANAGER_VERSION: &str = "v1.19.4";

/// cert-manager's static release manifest. Its digest was computed from a
/// byte-exact vendored copy (kubeflow/manifests, "cert-manager 1.19.4"); the
/// same copy with the version string swapped reproduces a third party's digest
/// of the v1.19.1 download, which is why we trust it. A mismatch stops the run.
#[must_use]
pub fn cert_manager() -> Download {
    Download {
        url: format!(
            "https://github.com/cert-manager/cert-manager/releases/download/{CERT_MANAGER_VERSION}/cert-manager.yaml"
        ),
        sha256: "abad40873bd9c63105bf1fc7c41354fe8ad716f01657762b5acb82977e707ef1",
        size: 1_007_958,
        name: format!("cert-manager-{CERT_MANAGER_VERSION}.yaml"),
    }
}

/// A NIC release: its manifests in apply order (path in the repository, sha256
/// of the file at the release tag, size).
pub struct NicRelease {
    pub version: &'static str,
    pub files: [(&'static str, &'static str, u64); 6],
}

/// The NIC versions the kind substrate installs: the newest 5.5 and the
/// tutorials' 5.3.
pub const NIC_RELEASES: &[NicRelease] = &[
    NicRelease {
        version: "5.5.4",
        files: [
            (
                "deploy/crds.yaml",
                "9a79a8233162a61fc16820c17c62ec6c33f2c1666b69814f30603ef4e0b93098",
                233_957,
            ),
            (
                "deployments/common/ns-and-sa.yaml",
                "699c7e4fa9992baa0d30c979d59ac44f23d87dcaacc32cd5748e81bbc0d70f4f",
                199,
            ),
            (
                "deployments/rbac/rbac.yaml",
                "1f40827042a0f26f7d79f7fecce70b0a43e80cb38e260650df1c4fdad9605920",
                2_480,
            ),
            (
                "deployments/common/nginx-config.yaml",
                "c232ef3d5bd84abe4d40c9a4b86a3f390ea2ec71434b0028d91d6c5bb28e163e",
                95,
            ),
            (
                "deployments/common/ingress-class.yaml",
                "b720fb1fe9b5beac1e347a5bb0859eafa1b2fba492d4698789fe13043a3dfa6e",
                200,
            ),
            (
                "deployments/deployment/nginx-ingress.yaml",
                "e76d4d5369e57d27e21f37aaa3760028910e91c89e4e19b050a3802d460565fd",
                3_506,
            ),
        ],
    },
    NicRelease {
        version: "5.3.4",
        files: [
            (
                "deploy/crds.yaml",
                "b0de8cf43c569e1b48280e31e9ffde9ce33b71ac733e15ad95b1c866c400e378",
                216_553,
            ),
            (
                "deployments/common/ns-and-sa.yaml",
                "699c7e4fa9992baa0d30c979d59ac44f23d87dcaacc32cd5748e81bbc0d70f4f",
                199,
            ),
            (
                "deployments/rbac/rbac.yaml",
                "1f40827042a0f26f7d79f7fecce70b0a43e80cb38e260650df1c4fdad9605920",
                2_480,
            ),
            (
                "deployments/common/nginx-config.yaml",
                "c232ef3d5bd84abe4d40c9a4b86a3f390ea2ec71434b0028d91d6c5bb28e163e",
                95,
            ),
            (
                "deployments/common/ingress-class.yaml",
                "b720fb1fe9b5beac1e347a5bb0859eafa1b2fba492d4698789fe13043a3dfa6e",
                200,
            ),
            (
                "deployments/deployment/nginx-ingress.yaml",
                "d596e7cc05f2a316083ddd2e46e02bc56b2a6408d01ffbecf62d82fac95dc8d5",
                3_506,
            ),
        ],
    },
];

pub const DEFAULT_NIC: &str = "5.5.4";
pub(crate) const NIC_NAMESPACE: &str = "nginx-ingress";
pub(crate) const NIC_DEPLOYMENT: &str = "nginx-ingress";
pub(crate) const WEBHOOK_DEADLINE: Duration = Duration::from_secs(240);
pub(crate) const NIC_DEADLINE: Duration = Duration::from_secs(300);
pub(crate) const CRD_DEADLINE: Duration = Duration::from_secs(60);
/// On an existing cluster cert-manager already runs: a short wait, not the one for a fresh install.
pub(crate) const EXISTING_WEBHOOK_DEADLINE: Duration = Duration::from_secs(30);

pub(crate) fn nic_release(version: &str) -> Result<&'static NicRelease, ClusterError> {
    NIC_RELEASES
        .iter()
        .find(|r| r.version == version)
        .ok_or_else(|| {
            let known: Vec<&str> = NIC_RELEASES.iter().map(|r| r.version).collect();
            ClusterError::Input(format!(
                "--nic-version {version} is not one of the pinned releases ({})",
                known.join(", ")
            ))
        })
}

/// NIC's manifests for `version`, in apply order.
///
/// # Errors
///
/// `version` is not one of [`NIC_RELEASES`].
pub fn nic_downloads(version: &str) -> Result<Vec<Download>, ClusterError> {
    let release = nic_release(version)?;
    Ok(release
        .files
        .iter()
        .map(|(path, sha256, size)| Download {
            url: format!(
                "https://raw.githubusercontent.com/nginx/kubernetes-ingress/v{version}/{path}"
            ),
            sha256,
            size: *size,
            name: format!("nic-{version}-{}", path.replace('/', "_")),
        })
        .collect())
}

/// Every file the kind substrate installs from, for every pinned release:
/// what `mtls-e2e download` puts into the cache.
#[must_use]
pub fn pinned_downloads() -> Vec<Download> {
    let mut all = vec![cert_manager()];
    for release in NIC_RELEASES {
        all.extend(nic_downloads(release.version).unwrap_or_default());
    }
    all
}

/// The `CustomResourceDefinitions` of cert-manager's release manifest and of
/// NIC `nic_version`'s `deploy/crds.yaml`, from the cache alone (each
/// sha256-checked): `None` when either file is not there.
///
/// # Errors
///
/// `nic_version` is not pinned, or a cached file does not match its digest or
/// cannot be read.
pub fn pinned_crds(nic_version: &str, cache: &Path) -> Result<Option<Vec<Value>>, ClusterError> {
    let nic_crds = nic_downloads(nic_version)?
        .into_iter()
        .find(|d| d.url.ends_with("/deploy/crds.yaml"))
        .ok_or_else(|| ClusterError::Input(format!("NIC {nic_version} pins no CRDs")))?;
    let mut crds = Vec::new();
    for d in [cert_manager(), nic_crds] {
        let Some(bytes) = download::read_cached(&d, cache)? else {
            return Ok(None);
        };
        crds.extend(
            documents(&bytes, &d.name)?
                .into_iter()
                .filter(|o| o["kind"] == "CustomResourceDefinition"),
        );
    }
    Ok(Some(crds))
}

/// Every object of a multi-document manifest, as JSON, in file order.
///
/// # Errors
///
/// The manifest is not UTF-8 or not YAML.
pub fn documents(bytes: &[u8], name: &str) -> Result<Vec<Value>, ClusterError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ClusterError::Failed(format!("{name} is not UTF-8")))?;
    let docs = crate::yaml::parse_documents(text, Path::new(name))
        .map_err(|e| ClusterError::Failed(e.to_string()))?;
    Ok(docs
        .iter()
        .map(crate::yaml::Document::to_json)
        .filter(serde_json::Value::is_object)
        .collect())
}

/// The changes kind needs in NIC's Deployment, as a JSON merge of our own:
/// host ports so kind's port mappings reach NIC, the ingress-ready node, and
/// Recreate (a second pod could never bind the host ports during a rolling
/// update on one node). NIC's arguments are left as its release manifests
/// have them: in particular no `-default-server-tls-secret` (commented out
/// there), so NIC's default server refuses TLS for unknown hosts with
/// `ssl_reject_handshake on`, exactly as the local substrate renders it
/// (`nic::render::default_server`); a test pins that the two agree.
pub(crate) fn patch_nic_deployment(deployment: &mut Value) -> Result<(), ClusterError> {
    let bad = |what: &str| {
        ClusterError::Failed(format!(
            "NIC's deployment manifest has no {what}; the pinned file changed shape"
        ))
    };
    deployment["spec"]["strategy"] = json!({"type": "Recreate"});
    let pod = deployment
        .pointer_mut("/spec/template/spec")
        .ok_or_else(|| bad("pod spec"))?;
    pod["nodeSelector"] = json!({"ingress-ready": "true"});
    pod["tolerations"] = json!([{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]);
    let container = pod
        .get_mut("containers")
        .and_then(Value::as_array_mut)
        .and_then(|c| c.iter_mut().find(|c| c["name"] == NIC_DEPLOYMENT))
        .ok_or_else(|| bad("nginx-ingress container"))?;
    for (name, port) in [("http", 80), ("https", 443)] {
        let entry = container
            .get_mut("ports")
            .and_then(Value::as_array_mut)
            .and_then(|ports| ports.iter_mut().find(|p| p["name"] == name))
            .ok_or_else(|| bad(&format!("{name} port")))?;
        entry["hostPort"] = json!(port);
    }
    Ok(())
}

/// NIC command-line arguments whose value the local substrate's rendering
/// assumes; the kind install must leave each as NIC's default (checked by a test).
#[cfg(test)]
pub(crate) const ARGUMENTS_THE_LOCAL_RENDER_ASSUMES_DEFAULT: &[&str] = &[
    "-default-server-tls-secret",
    "-ssl-dynamic-reload",
    "-enable-tls-passthrough",
    "-default-http-listener-port",
    "-default-https-listener-port",
];

/// What an install applies, in order, with where each object came from.
pub struct InstallSet {
    pub label: String,
    pub objects: Vec<(String, Value)>,
}

impl InstallSet {
    fn crd_names(&self) -> Vec<String> {
        self.objects
            .iter()
            .filter(|(_, o)| o["kind"] == "CustomResourceDefinition")
            .filter_map(|(_, o)| {
                o.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .collect()
    }
}

/// cert-manager's release manifest, downloaded (or from the cache) and verified.
///
/// # Errors
///
/// The download fails or does not match its pinned digest, or it cannot be read.
pub async fn cert_manager_set(cache: &Path) -> Result<InstallSet, ClusterError> {
    let d = cert_manager();
    let bytes = download::fetch(&d, cache).await?;
    let objects = documents(&bytes, &d.name)?
        .into_iter()
        .map(|o| (d.url.clone(), o))
        .collect();
    Ok(InstallSet {
        label: format!("cert-manager {CERT_MANAGER_VERSION}"),
        objects,
    })
}

/// NIC's manifests, the Deployment patched for kind.
///
/// # Errors
///
/// `version` is not pinned, a download fails or does not match its digest, or
/// a manifest cannot be read.
pub async fn nic_set(version: &str, cache: &Path) -> Result<InstallSet, ClusterError> {
    let mut objects = Vec::new();
    for d in nic_downloads(version)? {
        let bytes = download::fetch(&d, cache).await?;
        for mut object in documents(&bytes, &d.name)? {
            if object["kind"] == "Deployment" {
                patch_nic_deployment(&mut object)?;
                objects.push((format!("{} (patched for kind)", d.url), object));
            } else {
                objects.push((d.url.clone(), object));
            }
        }
    }
    Ok(InstallSet {
        label: format!("NGINX Ingress Controller {version}"),
        objects,
    })
}

/// Apply a set: CRDs first and waited for until established, then the rest.
async fn apply_set(applier: &Applier, set: &InstallSet) -> Result<(), ClusterError> {
    tracing::info!("installing {} ({} objects)", set.label, set.objects.len());
    let (crds, rest): (Vec<_>, Vec<_>) = set
        .objects
        .iter()
        .partition(|(_, o)| o["kind"] == "CustomResourceDefinition");
    for (_, object) in &crds {
        applier.apply(object).await?;
    }
    for name in set.crd_names() {
        let target = (
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            name.as_str(),
        );
        wait_condition(applier, target, "Established", CRD_DEADLINE).await?;
    }
    for (_, object) in &rest {
        applier.apply(object).await?;
    }
    Ok(())
}

/// A `ClusterIssuer` with no issuer type: its schema lets it through, and only
/// cert-manager's validating webhook refuses it ("at least one issuer must be
/// configured"). So a server-side dry-run create that is refused with that is
/// the sign the webhook serves; one that is accepted means no webhook looked
/// at it (cert-manager's CRDs without its webhook). Cluster-scoped, so no
/// namespace selector of the webhook can skip it.
#[must_use]
pub fn webhook_probe() -> Value {
    json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "ClusterIssuer",
        "metadata": {"name": "mtls-e2e-webhook-check"},
        "spec": {}
    })
}

/// What cert-manager's webhook refuses [`webhook_probe`] with (its
/// `ValidateIssuerConfig`).
const WEBHOOK_REFUSAL: &str = "at least one issuer must be configured";

/// Whether a dry-run create of [`webhook_probe`] shows cert-manager's webhook
/// serving: only its own refusal does.
pub(crate) fn webhook_answered(dry_run: &Result<(), String>) -> Poll<()> {
    match dry_run {
        Err(e) if e.contains("denied the request") && e.contains(WEBHOOK_REFUSAL) => Poll::Done(()),
        Err(e) => Poll::Pending(e.clone()),
        Ok(()) => Poll::Pending(
            "the dry-run was accepted, so no webhook checked it: cert-manager's ValidatingWebhookConfiguration \
             (cert-manager-webhook) is missing"
                .into(),
        ),
    }
}

pub(crate) async fn wait_cert_manager(
    applier: &Applier,
    deadline: Duration,
) -> Result<(), ClusterError> {
    let probe = webhook_probe();
    // Polled: a dry-run create is a request to repeat, not an object to watch.
    wait_for(
        "cert-manager's webhook to refuse an invalid ClusterIssuer (server-side dry-run)",
        deadline,
        || async { Ok(webhook_answered(&applier.dry_run_create(&probe).await)) },
    )
    .await
}

/// Install cert-manager and NIC concurrently and wait until both serve: the
/// lists of `actions::installs`, the ones `plan` prints, each run in order.
pub(crate) async fn install(cluster: &Cluster) -> Result<(), ClusterError> {
    let cache = &cluster.options.cache;
    let version = cluster.options.nic.as_deref().unwrap_or(DEFAULT_NIC);
    // Both downloads before anything is applied: a bad one changes nothing.
    let (cm, nic) = tokio::join!(cert_manager_set(cache), nic_set(version, cache));
    let (cm, nic) = (cm?, nic?);
    let applier = Applier::new(cluster.client.clone());
    let [first, second] = installs(version);
    let (a, b) = tokio::join!(
        run(first, &applier, (&cm, &nic)),
        run(second, &applier, (&cm, &nic))
    );
    a?;
    b?;
    tracing::info!("{} and {} are ready", cm.label, nic.label);
    Ok(())
}

/// One list of `actions::installs`, in order; `sets` are the downloaded
/// cert-manager and NIC releases.
async fn run(
    list: Vec<Install<'_>>,
    applier: &Applier,
    sets: (&InstallSet, &InstallSet),
) -> Result<(), ClusterError> {
    for action in list {
        match action {
            Install::Apply(Release::CertManager) => apply_set(applier, sets.0).await?,
            Install::Apply(Release::Nic(_)) => apply_set(applier, sets.1).await?,
            Install::WaitWebhook { deadline } => wait_cert_manager(applier, deadline).await?,
            Install::WaitAvailable {
                namespace,
                name,
                deadline,
            } => wait_available(applier, namespace, name, deadline).await?,
        }
    }
    Ok(())
}

/// The label NIC's pods carry in both its manifests and its Helm chart.
pub(crate) const NIC_POD_SELECTOR: &str = "app.kubernetes.io/name=nginx-ingress";

/// `5.5.4` from `nginx/nginx-ingress:5.5.4` (or `:5.5.4-ubi`, `@sha256:...` after it).
pub(crate) fn version_from_image(image: &str) -> Option<String> {
    let without_digest = image.split('@').next()?;
    let (_, tag) = without_digest.rsplit_once(':')?;
    let version: String = tag
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let parts = version.split('.').filter(|p| !p.is_empty()).count();
    (parts >= 2).then(|| version.trim_end_matches('.').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_complete() {
        assert_eq!(cert_manager().sha256.len(), 64);
        for r in NIC_RELEASES {
            for (path, sha, size) in r.files {
                assert_eq!(sha.len(), 64, "{path}");
                assert!(size > 0);
            }
        }
        assert!(nic_release(DEFAULT_NIC).is_ok());
        assert!(nic_release("4.0.0").is_err());
        let d = nic_downloads("5.3.4").expect("5.3.4");
        assert_eq!(
            d[0].url,
            "https://raw.githubusercontent.com/nginx/kubernetes-ingress/v5.3.4/deploy/crds.yaml"
        );
    }

    #[test]
    fn the_nic_deployment_gets_host_ports_and_keeps_nics_arguments() {
        let mut d = json!({
            "kind": "Deployment",
            "spec": {"template": {"spec": {"containers": [{
                "name": "nginx-ingress",
                "ports": [{"name": "http", "containerPort": 80}, {"name": "https", "containerPort": 443}],
                "args": ["-nginx-configmaps=$(POD_NAMESPACE)/nginx-config"]
            }]}}}
        });
        let before = d["spec"]["template"]["spec"]["containers"][0]["args"].clone();
        patch_nic_deployment(&mut d).expect("patch");
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["ports"][0]["hostPort"], 80);
        assert_eq!(c["ports"][1]["hostPort"], 443);
        assert_eq!(c["args"], before, "NIC's arguments are left as released");
        assert_eq!(d["spec"]["strategy"]["type"], "Recreate");
        assert_eq!(
            d["spec"]["template"]["spec"]["nodeSelector"]["ingress-ready"],
            "true"
        );
        let mut other = json!({"spec": {"template": {"spec": {"containers": [{"name": "x"}]}}}});
        assert!(patch_nic_deployment(&mut other).is_err());
    }

    /// Only cert-manager's own refusal of the probe means its webhook serves:
    /// an accepted dry-run (CRDs without a webhook) or a failed call does not.
    #[test]
    fn cert_manager_is_ready_only_when_its_webhook_refuses_the_probe() {
        let refused = Err(format!(
            "ApiError: admission webhook \"webhook.cert-manager.io\" denied the request: spec: Required value: {WEBHOOK_REFUSAL}: Forbidden (403)"
        ));
        assert!(matches!(webhook_answered(&refused), Poll::Done(())));
        assert!(
            matches!(webhook_answered(&Ok(())), Poll::Pending(why) if why.contains("ValidatingWebhookConfiguration"))
        );
        let down = Err(
            "Internal error occurred: failed calling webhook \"webhook.cert-manager.io\": \
                        no endpoints available for service \"cert-manager-webhook\""
                .to_string(),
        );
        assert!(
            matches!(webhook_answered(&down), Poll::Pending(why) if why.contains("no endpoints"))
        );
        assert_eq!(webhook_probe()["spec"], json!({}));
    }

    /// The kind install and the local render model NIC's default server the
    /// same way: no default server secret, so TLS for an unknown host is
    /// refused at the handshake on both.
    #[test]
    fn kind_and_local_agree_on_the_default_server() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [{
            "name": NIC_DEPLOYMENT,
            "ports": [{"name": "http", "containerPort": 80}, {"name": "https", "containerPort": 443}],
            "args": ["-nginx-configmaps=$(POD_NAMESPACE)/nginx-config", "-enable-custom-resources"]
        }]}}}});
        patch_nic_deployment(&mut d).expect("patch");
        let text = d.to_string();
        for flag in ARGUMENTS_THE_LOCAL_RENDER_ASSUMES_DEFAULT {
            assert!(
                !text.contains(flag),
                "the kind install sets {flag}, which the local render assumes default"
            );
        }
        let local = crate::substrate::local::nic::render::default_server(
            &crate::substrate::local::nic::RenderEnv::nic(),
        );
        assert!(local.contains("ssl_reject_handshake on;"), "{local}");
        assert!(!local.contains("ssl_certificate"), "{local}");
    }
}
