//! The preflight: `actions::preflight`, the list `plan` prints, executed in
//! order before anything is done. Every check runs (a later one is left out
//! only when it needs what an earlier one could not give, such as a cluster
//! to ask), and everything missing is reported at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::actions::{self, Preflight};
use super::controllers::{self, NicPlace};
use super::{ClusterError, ClusterOptions, Mode, install, run_tool, tool};
use crate::scenario::Scenario;

/// What the preflight found, for the run to go on with.
pub(crate) struct Ready {
    /// The existing cluster's connection (kind's exists only once it does).
    pub client: Option<kube::Client>,
    pub nic: NicPlace,
    /// NIC's version on an existing cluster (kind installs the one asked for).
    pub nic_version: Option<String>,
    pub openssl: PathBuf,
}

/// The tool checks' problems, in the list's order: each missing tool, and a
/// Docker daemon that does not answer (asked whenever docker is found).
fn tool_problems(
    list: &[Preflight],
    find: &dyn Fn(&str) -> Result<PathBuf, ClusterError>,
    daemon: &dyn Fn(&Path) -> Result<(), ClusterError>,
) -> Vec<ClusterError> {
    let mut problems = Vec::new();
    for check in list {
        match check {
            Preflight::Tool(name) => problems.extend(find(name).err()),
            Preflight::DockerDaemon => {
                if let Ok(docker) = find("docker") {
                    problems.extend(daemon(&docker).err());
                }
            }
            _ => {}
        }
    }
    problems
}

fn docker_answers(docker: &Path) -> Result<(), ClusterError> {
    run_tool(
        docker,
        &["info", "--format", "{{.ServerVersion}}"],
        Duration::from_secs(20),
    )
    .map(drop)
    .map_err(|e| {
        ClusterError::Missing(format!(
            "the docker daemon does not answer `docker info` ({e}); start it (or set DOCKER_HOST)"
        ))
    })
}

/// Run the preflight of `options` for `scenarios`; nothing else is done
/// unless it finds nothing missing.
pub(crate) async fn run(
    options: &ClusterOptions,
    scenarios: &[&Scenario],
) -> Result<Ready, ClusterError> {
    let list = actions::preflight(options, scenarios);
    let find = |name: &str| tool(name);
    let mut problems = tool_problems(&list, &find, &|d| {
        // Sync on its own thread (run_tool), so it never blocks this runtime.
        docker_answers(d)
    });
    let mut ready = Ready {
        client: None,
        nic: NicPlace::installed(),
        nic_version: None,
        openssl: tool("openssl").unwrap_or_default(),
    };
    if let Mode::Existing { .. } = options.mode {
        existing(&list, options, scenarios, &mut ready, &mut problems).await;
    }
    if problems.is_empty() {
        Ok(ready)
    } else {
        Err(ClusterError::Preflight {
            substrate: options.label(),
            problems,
        })
    }
}

/// The existing cluster's checks, in the list's order, each adding what it
/// finds missing.
async fn existing(
    list: &[Preflight<'_>],
    options: &ClusterOptions,
    scenarios: &[&Scenario],
    ready: &mut Ready,
    problems: &mut Vec<ClusterError>,
) {
    let mut nic_found = false;
    for check in list {
        match check {
            Preflight::Tool(_) | Preflight::DockerDaemon => {}
            Preflight::Cluster { context } => {
                // The kubeconfig's, unless one was given (the tests' fake API server).
                let made = match ready.client.take() {
                    Some(c) => Ok(c),
                    None => super::client(None, *context).await,
                };
                let client = match made {
                    Ok(c) => c,
                    Err(e) => {
                        problems.push(e);
                        return;
                    }
                };
                if let Err(e) = client.apiserver_version().await {
                    problems.push(ClusterError::Failed(format!(
                        "the cluster of context {} does not answer: {}",
                        context.unwrap_or("(current)"),
                        crate::net::error_chain(&e)
                    )));
                    return;
                }
                ready.client = Some(client);
            }
            Preflight::CertManager { namespace } => {
                let Some(client) = &ready.client else {
                    continue;
                };
                match controllers::observe(client, *namespace)
                    .await
                    .and_then(|w| controllers::find_cert_manager(&w, *namespace))
                {
                    Err(e) => problems.push(e),
                    Ok(found) => {
                        tracing::info!("cert-manager runs in namespace {found}");
                        let applier = super::apply::Applier::new(client.clone());
                        if let Err(e) =
                            install::wait_cert_manager(&applier, install::EXISTING_WEBHOOK_DEADLINE)
                                .await
                        {
                            problems.push(ClusterError::Missing(format!(
                                "cert-manager's webhook does not serve ({e}); see `kubectl -n {found} get pods,endpoints`, or reinstall with `kubectl apply -f {}`",
                                install::cert_manager().url
                            )));
                        }
                    }
                }
            }
            Preflight::Nic { namespace, version } => {
                let Some(client) = &ready.client else {
                    continue;
                };
                let found = controllers::observe(client, *namespace)
                    .await
                    .and_then(|w| controllers::find_nic(&w, *namespace));
                match found {
                    Err(e) => problems.push(e),
                    Ok(nic) => {
                        let image = nic.image.clone().unwrap_or_default();
                        let read = install::version_from_image(&image);
                        match version.map(String::from).or(read) {
                            Some(v) => ready.nic_version = Some(v),
                            None => problems.push(ClusterError::Input(format!(
                                "cannot tell NIC's version from its image {image}; pass --nic-version (e.g. 5.5.4)"
                            ))),
                        }
                        tracing::info!(
                            "NGINX Ingress Controller: {} in namespace {} ({image}){}",
                            nic.workload,
                            nic.namespace,
                            if nic.watch.flags.is_empty() {
                                String::new()
                            } else {
                                format!(", {}", nic.watch.flags)
                            }
                        );
                        ready.nic = nic;
                        nic_found = true;
                    }
                }
            }
            Preflight::WatchedNamespaces(_) => {
                let Some(client) = &ready.client else {
                    continue;
                };
                if !nic_found {
                    continue;
                }
                let nic = ready.nic_version.as_deref();
                for scenario in scenarios
                    .iter()
                    .filter(|s| actions::runs_here(s, options, nic))
                {
                    let labels = live_labels(client, scenario, &ready.nic).await;
                    let look = |ns: &str| labels.get(ns).cloned().flatten();
                    problems.extend(controllers::unwatched(scenario, &ready.nic, &look));
                }
            }
            Preflight::Image(image) => {
                if let Some(note) = controllers::image_note(image) {
                    tracing::info!("note: {note}");
                }
            }
        }
    }
}

/// The labels each namespace NIC must watch for `scenario` will have, read
/// from the cluster where the watch is by label (otherwise none are needed).
async fn live_labels(
    client: &kube::Client,
    scenario: &Scenario,
    nic: &NicPlace,
) -> std::collections::BTreeMap<String, Option<std::collections::BTreeMap<String, String>>> {
    use k8s_openapi::api::core::v1::Namespace;
    let mut out = std::collections::BTreeMap::new();
    if !matches!(nic.watch.resources, controllers::Watched::Labelled(_)) {
        return out;
    }
    let api: kube::Api<Namespace> = kube::Api::all(client.clone());
    for need in controllers::needed(scenario) {
        let live = api.get_opt(&need.namespace).await.ok().flatten();
        let labels = controllers::namespace_labels(scenario, live.as_ref(), &need.namespace);
        out.insert(need.namespace, labels);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Every missing tool is listed, in the order the run needs them, and the
    /// Docker daemon is asked whenever docker is there, whatever else is missing.
    #[test]
    fn every_missing_tool_is_listed_in_the_order_the_run_needs_them() {
        let kind = options(Mode::Kind {
            name: "mtls-e2e".into(),
            k8s: "1.34".into(),
            recreate: false,
        });
        let list = actions::preflight(&kind, &[]);
        let missing = |absent: &'static [&'static str]| {
            move |name: &str| {
                if absent.contains(&name) {
                    Err(ClusterError::Missing(format!("{name} is not on PATH")))
                } else {
                    Ok(PathBuf::from(format!("/usr/bin/{name}")))
                }
            }
        };
        let down = |_: &Path| {
            Err(ClusterError::Missing(
                "the docker daemon does not answer".into(),
            ))
        };
        let problems = tool_problems(&list, &missing(&["kind", "kubectl", "openssl"]), &down);
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "kind is not on PATH",
                "the docker daemon does not answer",
                "kubectl is not on PATH",
                "openssl is not on PATH"
            ]
        );
        let no_docker = tool_problems(&list, &missing(&["docker"]), &down);
        assert_eq!(
            no_docker.len(),
            1,
            "no daemon to ask without docker: {no_docker:?}"
        );
        assert!(tool_problems(&list, &missing(&[]), &|_| Ok(())).is_empty());
        let existing = options(Mode::Existing {
            context: None,
            nic_namespace: None,
            cert_manager_namespace: None,
        });
        let list = actions::preflight(&existing, &[]);
        let lines: Vec<String> =
            tool_problems(&list, &missing(&["kind", "kubectl", "openssl"]), &down)
                .iter()
                .map(ToString::to_string)
                .collect();
        assert_eq!(lines, ["kubectl is not on PATH", "openssl is not on PATH"]);
    }

    /// A loopback stand-in for an API server: each request's `METHOD path`
    /// is answered by the first route whose prefix it starts with.
    async fn fake_api(routes: Vec<(&'static str, u16, String)>) -> kube::Client {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let routes = std::sync::Arc::new(routes);
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let routes = routes.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let mut chunk = [0u8; 8192];
                        let Ok(n) = conn.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        let Some(end) = text.find("\r\n\r\n") else {
                            continue;
                        };
                        let length: usize = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() < end + 4 + length {
                            continue;
                        }
                        let line = text.lines().next().unwrap_or_default().to_string();
                        buf.drain(..end + 4 + length);
                        let (status, body) = routes
                            .iter()
                            .find(|(prefix, _, _)| line.starts_with(prefix))
                            .map_or((404, "{}".to_string()), |(_, s, b)| (*s, b.clone()));
                        let reply = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if conn.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let url: http::Uri = format!("http://{addr}").parse().expect("url");
        kube::Client::try_from(kube::Config::new(url)).expect("client")
    }

    fn list(kind: &str, items: &[serde_json::Value]) -> String {
        serde_json::json!({"apiVersion": "apps/v1", "kind": kind, "metadata": {}, "items": items})
            .to_string()
    }

    /// The existing cluster's checks against an API server that serves what
    /// they read: cert-manager and NIC found outside their usual namespaces
    /// (NIC as a DaemonSet), the webhook's refusal taken as ready, NIC's
    /// version from its image, and a scenario in a namespace NIC's
    /// `-watch-namespace` leaves out refused with what to do, all in one list.
    #[tokio::test]
    async fn an_existing_cluster_is_read_and_judged_as_a_whole() {
        let template = |labels: serde_json::Value, image: &str, args: &[&str]| {
            serde_json::json!({"metadata": {"labels": labels}, "spec": {"containers": [{
                "name": "main", "image": image, "args": args,
                "env": [{"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]
            }]}})
        };
        let cert_manager = serde_json::json!({
            "metadata": {"name": "cert-manager-webhook", "namespace": "security"},
            "spec": {"selector": {"matchLabels": {"app": "webhook"}},
                     "template": template(serde_json::json!({"app": "webhook"}), "quay.io/jetstack/cert-manager-webhook:v1.19.4", &[])},
            "status": {"availableReplicas": 1}
        });
        let nic = serde_json::json!({
            "metadata": {"name": "edge", "namespace": "ingress"},
            "spec": {"selector": {"matchLabels": {"app": "edge"}},
                     "template": template(serde_json::json!({"app": "edge", "app.kubernetes.io/name": "nginx-ingress"}),
                                          "nginx/nginx-ingress:5.3.4",
                                          &["-watch-namespace=$(POD_NAMESPACE),tenants"])},
            "status": {"numberAvailable": 1}
        });
        let denied = serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "admission webhook \"webhook.cert-manager.io\" denied the request: spec: Required value: at least one issuer must be configured",
            "reason": "Forbidden", "code": 403});
        let client = fake_api(vec![
            ("GET /version", 200, serde_json::json!({"major": "1", "minor": "34", "gitVersion": "v1.34.3", "gitCommit": "", "gitTreeState": "", "buildDate": "", "goVersion": "", "compiler": "", "platform": "linux/amd64"}).to_string()),
            ("GET /apis/apps/v1/deployments", 200, list("DeploymentList", &[cert_manager])),
            ("GET /apis/apps/v1/daemonsets", 200, list("DaemonSetList", &[nic])),
            ("GET /apis/cert-manager.io/v1", 200, serde_json::json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "cert-manager.io/v1",
                "resources": [{"name": "clusterissuers", "singularName": "clusterissuer", "namespaced": false, "kind": "ClusterIssuer", "verbs": ["create", "get"]}]}).to_string()),
            ("POST /apis/cert-manager.io/v1/clusterissuers", 403, denied.to_string()),
        ])
        .await;
        let opts = options(Mode::Existing {
            context: None,
            nic_namespace: None,
            cert_manager_namespace: None,
        });
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios/openwebui-ingress-mtls");
        let scenario = Scenario::load(&dir).expect("scenario");
        let list = actions::preflight(&opts, &[&scenario]);
        let mut ready = Ready {
            client: Some(client),
            nic: NicPlace::installed(),
            nic_version: None,
            openssl: PathBuf::new(),
        };
        let mut problems = Vec::new();
        let (said, _logging) = super::super::captured_logs(tracing::Level::INFO);
        existing(&list, &opts, &[&scenario], &mut ready, &mut problems).await;
        let said = said.text();
        assert!(
            said.contains("cert-manager runs in namespace security"),
            "{said}"
        );
        assert!(
            said.contains("daemonset/edge in namespace ingress"),
            "{said}"
        );
        assert!(
            said.contains("note: image mtls-e2e:e2e names no registry"),
            "{said}"
        );
        assert_eq!(ready.nic_version.as_deref(), Some("5.3.4"));
        assert_eq!(
            (ready.nic.namespace.as_str(), ready.nic.selector.as_str()),
            ("ingress", "app=edge")
        );
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 1, "only the unwatched namespace: {lines:?}");
        assert!(
            lines[0].contains("namespace open-webui")
                && lines[0].contains("-watch-namespace=ingress,tenants")
                && lines[0].contains("scenarios/openwebui-ingress-mtls/"),
            "{}",
            lines[0]
        );
        assert!(matches!(problems[0], ClusterError::Input(_)));
    }

    /// The existing substrate checks what the run needs in the order it
    /// needs it: the tools, the cluster, cert-manager (whose Secrets the
    /// steps read), NIC, the namespaces NIC watches, and the image last.
    #[test]
    fn an_existing_cluster_is_checked_in_the_order_the_run_needs() {
        let existing = options(Mode::Existing {
            context: Some("staging".into()),
            nic_namespace: None,
            cert_manager_namespace: None,
        });
        let order: Vec<&str> = actions::preflight(&existing, &[])
            .iter()
            .map(|c| match c {
                Preflight::Tool(t) => t,
                Preflight::DockerDaemon => "docker daemon",
                Preflight::Cluster { .. } => "cluster",
                Preflight::CertManager { .. } => "cert-manager",
                Preflight::Nic { .. } => "nic",
                Preflight::WatchedNamespaces(_) => "watched namespaces",
                Preflight::Image(_) => "image",
            })
            .collect();
        assert_eq!(
            order,
            [
                "kubectl",
                "openssl",
                "cluster",
                "cert-manager",
                "nic",
                "watched namespaces",
                "image"
            ]
        );
    }
}
