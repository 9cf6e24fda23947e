//! Pods on the local substrate: each Deployment of our image becomes one mock
//! running in-process, with its Secret and `ConfigMap` volumes materialised under
//! a private root, and each Service port mapped onto the mock's loopback listener.

use crate::manifest::NamespacedName;
use crate::manifest::ServicePort;
use crate::scenario::steps::Secrets;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::manifest::kinds::{ConfigMap, Deployment, IntOrString, Service};
use crate::manifest::{Kind, ManifestError, Object};
use crate::mock::{self, LogSink, Mock, MockContext, ServeArgs};
use crate::net::{Resolver, ServiceMap};
use crate::substrate::SubstrateError;
use crate::sys::write_private;

/// The image repository our binary is published as; any registry and tag.
pub(crate) const IMAGE_REPOSITORY: &str = "mtls-e2e";

/// A Deployment, understood.
#[derive(Debug, Clone)]
pub struct PodSpec {
    pub deployment: Object,
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub args: ServeArgs,
    pub env: BTreeMap<String, String>,
    /// Named container ports.
    pub port_names: BTreeMap<String, u16>,
    volumes: Vec<VolumeFiles>,
}

#[derive(Debug, Clone)]
struct VolumeFiles {
    mount_path: String,
    source: String,
    files: Result<Vec<(String, Vec<u8>)>, String>,
}

pub(crate) fn is_our_image(image: &str) -> bool {
    let without_tag = image.split('@').next().unwrap_or(image);
    let name = without_tag.rsplit('/').next().unwrap_or(without_tag);
    name.split(':').next() == Some(IMAGE_REPOSITORY)
}

/// Read every Deployment; volumes are resolved against the final Secrets and
/// `ConfigMaps`.
pub(crate) fn plan(objects: &[Object], secrets: &Secrets) -> Result<Vec<PodSpec>, ManifestError> {
    let config_maps: BTreeMap<String, ConfigMap> = objects
        .iter()
        .filter(|o| o.id.kind == Kind::ConfigMap)
        .map(|o| Ok((o.id.key(), o.parse::<ConfigMap>()?)))
        .collect::<Result<_, ManifestError>>()?;
    let mut pods = Vec::new();
    for object in objects.iter().filter(|o| o.id.kind == Kind::Deployment) {
        let deployment = object.parse::<Deployment>()?;
        if deployment.spec.replicas == Some(0) {
            continue;
        }
        let pod = &deployment.spec.template.spec;
        let [container] = pod.containers.as_slice() else {
            return Err(object.error(
                "spec.template.spec.containers",
                "the local substrate runs Deployments with exactly one container",
            ));
        };
        if !is_our_image(&container.image) {
            return Err(object.error(
                "spec.template.spec.containers[0].image",
                format!("the local substrate runs only the mtls-e2e image, not `{}`; run this scenario on kind", container.image),
            ));
        }
        let words: Vec<String> = container
            .command
            .iter()
            .chain(&container.args)
            .cloned()
            .collect();
        let args = mock::parse_container_args(&words).map_err(|e| {
            object.error(
                "spec.template.spec.containers[0].args",
                format!("mtls-e2e would exit: {e}"),
            )
        })?;
        let mut env = BTreeMap::new();
        for (i, var) in container.env.iter().enumerate() {
            let Some(value) = &var.value else {
                return Err(object.error(
                    &format!("spec.template.spec.containers[0].env[{i}]"),
                    "only literal env values are supported locally",
                ));
            };
            env.insert(var.name.clone(), value.clone());
        }
        let mut volumes = Vec::new();
        for (i, mount) in container.volume_mounts.iter().enumerate() {
            let mount_field =
                format!("spec.template.spec.containers[0].volumeMounts[{i}].mountPath");
            if let Some(why) = backsteps(&mount.mount_path) {
                return Err(
                    object.error(&mount_field, invalid(&mount_field, &mount.mount_path, why))
                );
            }
            if let Some((v, volume)) = pod
                .volumes
                .iter()
                .enumerate()
                .find(|(_, v)| v.name == mount.name)
            {
                let (source, items) = match (&volume.secret, &volume.config_map) {
                    (Some(s), _) => ("secret", &s.items),
                    (None, Some(c)) => ("configMap", &c.items),
                    (None, None) => ("", &Vec::new()),
                };
                for (j, item) in items.iter().enumerate() {
                    let field = format!("spec.template.spec.volumes[{v}].{source}.items[{j}].path");
                    if let Some(why) = local_non_reserved_path(&item.path) {
                        return Err(object.error(&field, invalid(&field, &item.path, why)));
                    }
                }
            }
            let Some(volume) = pod.volumes.iter().find(|v| v.name == mount.name) else {
                return Err(object.error(
                    &format!("spec.template.spec.containers[0].volumeMounts[{i}]"),
                    format!("no volume named `{}`", mount.name),
                ));
            };
            let ns = object.namespace();
            let (source, files) = if let Some(s) = &volume.secret {
                let key = NamespacedName::new(ns, &s.secret_name);
                let files = match secrets.get(&key) {
                    None => Err(format!("Secret {key} does not exist")),
                    Some(secret) => project(&secret.data, &s.items),
                };
                (format!("Secret {key}"), files)
            } else if let Some(c) = &volume.config_map {
                let key = format!("{ns}/{}", c.name);
                let files = match config_maps.get(&key) {
                    None => Err(format!("ConfigMap {key} does not exist")),
                    Some(cm) => {
                        let data = cm
                            .data
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
                            .collect();
                        project(&data, &c.items)
                    }
                };
                (format!("ConfigMap {key}"), files)
            } else {
                return Err(object.error(
                    "spec.template.spec.volumes",
                    format!(
                        "volume `{}`: only secret and configMap volumes are supported locally",
                        volume.name
                    ),
                ));
            };
            volumes.push(VolumeFiles {
                mount_path: mount.mount_path.clone(),
                source,
                files,
            });
        }
        pods.push(PodSpec {
            deployment: object.clone(),
            namespace: object.namespace().to_string(),
            name: object.name().to_string(),
            labels: deployment.spec.template.metadata.labels.clone(),
            args,
            env,
            port_names: container
                .ports
                .iter()
                .filter_map(|p| p.name.clone().map(|n| (n, p.container_port)))
                .collect(),
            volumes,
        });
    }
    Ok(pods)
}

/// The API server's message for an invalid value (`field.Invalid`).
fn invalid(field: &str, value: &str, why: &str) -> String {
    format!("{field}: Invalid value: {value:?}: {why}")
}

/// `validatePathNoBacksteps`: no `..` element (volume mount paths).
fn backsteps(path: &str) -> Option<&'static str> {
    path.split('/')
        .any(|part| part == "..")
        .then_some("must not contain '..'")
}

/// `validateLocalNonReservedPath` (a projected item's `path`): relative, no
/// `..` element, not starting with `..` (kubelet's own `..data` links).
fn local_non_reserved_path(path: &str) -> Option<&'static str> {
    if path.starts_with('/') {
        return Some("must be a relative path");
    }
    if let Some(why) = backsteps(path) {
        return Some(why);
    }
    let first = path.split('/').next().unwrap_or_default();
    (first.starts_with("..") && first.len() > 2).then_some("must not start with '..'")
}

/// Volume projection: every key, or the listed `items` (key → path).
fn project(
    data: &BTreeMap<String, Vec<u8>>,
    items: &[crate::manifest::kinds::KeyToPath],
) -> Result<Vec<(String, Vec<u8>)>, String> {
    if items.is_empty() {
        return Ok(data.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    }
    items
        .iter()
        .map(|item| {
            data.get(&item.key)
                .map(|v| (item.path.clone(), v.clone()))
                .ok_or_else(|| format!("key `{}` is missing", item.key))
        })
        .collect()
}

/// A pod that could not start, and why (Kubernetes would keep it pending).
#[derive(Debug, Clone, serde::Serialize)]
pub struct NotStarted {
    pub deployment: String,
    pub reason: String,
}

/// Mocks running in-process, and where each Service port leads.
pub struct Pods {
    pub services: Arc<OnceLock<ServiceMap>>,
    pub not_started: Vec<NotStarted>,
    /// Each started pod's Deployment (`ns/name`) and its request log.
    logs: Vec<(String, PathBuf)>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Pods {
    /// Materialise volumes under `dir`, bind a loopback listener per pod, map the
    /// Services, and start serving.
    pub(crate) async fn start(
        specs: &[PodSpec],
        objects: &[Object],
        dir: &Path,
    ) -> Result<Pods, SubstrateError> {
        let services = Arc::new(OnceLock::new());
        let mut started: Vec<(&PodSpec, u16, SocketAddr, Mock, tokio::net::TcpListener)> =
            Vec::new();
        let mut not_started = Vec::new();
        let mut logs = Vec::new();
        for spec in specs {
            let root = dir.join(format!("{}-{}", spec.namespace, spec.name));
            if let Some(reason) = materialise(&root, &spec.volumes) {
                not_started.push(NotStarted {
                    deployment: spec.deployment.id.key(),
                    reason,
                });
                continue;
            }
            let log_path = dir.join(format!("{}-{}.log", spec.namespace, spec.name));
            logs.push((spec.deployment.id.key(), log_path.clone()));
            let log = std::fs::File::create(&log_path).map_err(|e| {
                spec.deployment
                    .error("metadata", format!("cannot create the pod log: {e}"))
            })?;
            let ctx = MockContext {
                root,
                env: spec.env.clone(),
                resolver: Resolver::Services {
                    map: services.clone(),
                    namespace: spec.namespace.clone(),
                },
                log: LogSink::File(Arc::new(std::sync::Mutex::new(log))),
            };
            let mock = Mock::new(&spec.args, &ctx).map_err(|e| {
                spec.deployment.error(
                    "spec.template.spec.containers[0]",
                    format!("the container would crash: {e}"),
                )
            })?;
            // The machine, not the scenario, is short of ports: the substrate failed.
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
                .await
                .map_err(|e| {
                    SubstrateError::Failed(format!(
                        "pod {}: cannot listen on a loopback port: {e} (every port of the ephemeral range may be taken)",
                        spec.deployment.id.key()
                    ))
                })?;
            let addr = listener
                .local_addr()
                .map_err(|e| SubstrateError::Failed(e.to_string()))?;
            started.push((spec, mock.port, addr, mock, listener));
        }

        let mut map = ServiceMap::default();
        for object in objects.iter().filter(|o| o.id.kind == Kind::Service) {
            let service = object.parse::<Service>()?;
            if service.spec.selector.is_empty() {
                continue;
            }
            for port in &service.spec.ports {
                let target = port
                    .target_port
                    .clone()
                    .unwrap_or(IntOrString::Int(i64::from(port.port)));
                for (spec, listen_port, addr, _, _) in &started {
                    let selected = spec.namespace == object.namespace()
                        && service
                            .spec
                            .selector
                            .iter()
                            .all(|(k, v)| spec.labels.get(k) == Some(v));
                    let resolved = match &target {
                        IntOrString::Int(n) => u16::try_from(*n).ok(),
                        IntOrString::Str(name) => spec.port_names.get(name).copied(),
                    };
                    // The Service reaches the pod only where the process listens.
                    if selected && resolved == Some(*listen_port) {
                        map.insert(object.namespace(), object.name(), port.port, *addr);
                    }
                }
            }
        }
        let _ = services.set(map);
        let tasks = started
            .into_iter()
            .map(|(_, _, _, mock, listener)| tokio::spawn(mock.serve(listener)))
            .collect();
        Ok(Pods {
            services,
            not_started,
            logs,
            tasks,
        })
    }

    pub(crate) fn service(&self, service: &ServicePort) -> Option<SocketAddr> {
        self.services.get().and_then(|m| m.get(service))
    }

    /// The requests from `client` (NIC's X-Real-IP) each pod logged, as
    /// `Deployment ns/name: GET / -> 200 ...`.
    pub(crate) fn requests_from(&self, client: &str) -> Vec<String> {
        let token = format!("for={client}");
        let mut out = Vec::new();
        for (deployment, path) in &self.logs {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            for line in text.lines() {
                if line.split_whitespace().any(|w| w == token) {
                    // Drop the timestamp: `<stamp> <component>: <request>`.
                    let request = line.split_once(": ").map_or(line, |(_, r)| r);
                    out.push(format!("Deployment {deployment}: {request}"));
                }
            }
        }
        out
    }

    pub(crate) fn stop(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

impl Drop for Pods {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Write a pod's volumes; returns why the pod cannot start, if it cannot.
fn materialise(root: &Path, volumes: &[VolumeFiles]) -> Option<String> {
    for volume in volumes {
        let files = match &volume.files {
            Ok(files) => files,
            Err(e) => {
                return Some(format!(
                    "volume at {} from {}: {e}",
                    volume.mount_path, volume.source
                ));
            }
        };
        let dir: PathBuf = root.join(volume.mount_path.trim_start_matches('/'));
        if let Err(e) = std::fs::create_dir_all(&dir) {
            return Some(format!("cannot create {}: {e}", dir.display()));
        }
        for (name, bytes) in files {
            if let Err(e) = write_private(&dir.join(name), bytes) {
                return Some(format!("cannot write {name}: {e}"));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_paths_follow_the_api_servers_rules() {
        assert_eq!(
            backsteps("/etc/aigw/../../tmp"),
            Some("must not contain '..'")
        );
        assert_eq!(backsteps("/etc/aigw"), None);
        assert_eq!(
            local_non_reserved_path("/abs"),
            Some("must be a relative path")
        );
        assert_eq!(
            local_non_reserved_path("a/../../x"),
            Some("must not contain '..'")
        );
        assert_eq!(
            local_non_reserved_path("..data/x"),
            Some("must not start with '..'")
        );
        assert_eq!(local_non_reserved_path("tls.crt"), None);
        assert_eq!(local_non_reserved_path("certs/..x"), None);
    }

    #[test]
    fn image_names() {
        assert!(is_our_image("mtls-e2e:e2e"));
        assert!(is_our_image("ghcr.io/org/mtls-e2e:1.0"));
        assert!(is_our_image("localhost:5000/mtls-e2e"));
        assert!(!is_our_image("ollama/ollama:latest"));
        assert!(!is_our_image("mtls-e2e-other:1"));
    }
}
