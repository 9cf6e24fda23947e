//! Port-forwards: a loopback listener whose connections are carried to a pod
//! port through the API server (kube-rs `ws`), as `kubectl port-forward` does.
//! Port-forwarding works on Pods only, so a Service is resolved to a ready pod
//! behind it and the Service's targetPort.

use crate::manifest::{NamespacedName, ServicePort};
use std::collections::BTreeMap;
use std::net::SocketAddr;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use kube::api::ListParams;

use super::ClusterError;

#[derive(Debug, Clone)]
pub enum Target {
    /// A ready pod matching a label selector, on a container port.
    Selector {
        namespace: String,
        selector: String,
        port: u16,
    },
    /// A Service port, as a pod in the cluster would reach it.
    Service(ServicePort),
}

/// A running port-forward.
pub struct Forward {
    pub local: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Forward {
    pub(crate) async fn start(
        client: kube::Client,
        target: Target,
    ) -> Result<Forward, ClusterError> {
        // Resolve once now so that a wrong target fails the run with a clear message.
        resolve(&client, &target).await?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| ClusterError::Failed(format!("cannot bind a loopback port: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| ClusterError::Failed(e.to_string()))?;
        let task = tokio::spawn(async move {
            loop {
                // A loopback listener that cannot accept is broken for good: stop
                // rather than spin; the probes then report the refused connection.
                let Ok((mut conn, _)) = listener.accept().await else {
                    break;
                };
                let (client, target) = (client.clone(), target.clone());
                tokio::spawn(async move {
                    let Ok((pod, namespace, port)) = resolve(&client, &target).await else {
                        return;
                    };
                    let pods: Api<Pod> = Api::namespaced(client, &namespace);
                    let Ok(mut forwarder) = pods.portforward(&pod, &[port]).await else {
                        return;
                    };
                    if let Some(mut upstream) = forwarder.take_stream(port) {
                        let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
                    }
                    forwarder.abort();
                });
            }
        });
        Ok(Forward { local, task })
    }

    pub(crate) fn stop(self) {
        self.task.abort();
    }

    pub(crate) fn abort(&self) {
        self.task.abort();
    }
}

fn selector_of(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// (pod name, namespace, container port) for a target.
async fn resolve(
    client: &kube::Client,
    target: &Target,
) -> Result<(String, String, u16), ClusterError> {
    let (namespace, selector, port) = match target {
        Target::Selector {
            namespace,
            selector,
            port,
        } => (namespace.clone(), selector.clone(), PortRef::Number(*port)),
        Target::Service(ServicePort {
            service: NamespacedName { namespace, name },
            port,
        }) => {
            let services: Api<Service> = Api::namespaced(client.clone(), namespace);
            let svc = services
                .get(name)
                .await
                .map_err(|e| ClusterError::Failed(format!("Service {namespace}/{name}: {e}")))?;
            let spec = svc.spec.unwrap_or_default();
            let selector = spec.selector.filter(|s| !s.is_empty()).ok_or_else(|| {
                ClusterError::Failed(format!(
                    "Service {namespace}/{name} has no selector, so there is no pod to forward to"
                ))
            })?;
            let service_port = spec
                .ports
                .unwrap_or_default()
                .into_iter()
                .find(|p| p.port == i32::from(*port))
                .ok_or_else(|| {
                    ClusterError::Failed(format!("Service {namespace}/{name} has no port {port}"))
                })?;
            let target = match service_port.target_port {
                None => PortRef::Number(*port),
                Some(IntOrString::Int(n)) => PortRef::Number(u16::try_from(n).unwrap_or(*port)),
                Some(IntOrString::String(name)) => PortRef::Name(name),
            };
            (namespace.clone(), selector_of(&selector), target)
        }
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let list = pods.list(&ListParams::default().labels(&selector)).await?;
    let pod = list.items.into_iter().find(is_ready).ok_or_else(|| {
        ClusterError::Failed(format!(
            "no ready pod matches {selector} in namespace {namespace}"
        ))
    })?;
    let number = match port {
        PortRef::Number(n) => n,
        PortRef::Name(name) => pod
            .spec
            .as_ref()
            .into_iter()
            .flat_map(|s| &s.containers)
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .ok_or_else(|| {
                ClusterError::Failed(format!(
                    "no container port named {name} in the pods behind {selector}"
                ))
            })?,
    };
    let name = pod
        .metadata
        .name
        .ok_or_else(|| ClusterError::Failed("a pod without a name".into()))?;
    Ok((name, namespace, number))
}

enum PortRef {
    Number(u16),
    Name(String),
}
