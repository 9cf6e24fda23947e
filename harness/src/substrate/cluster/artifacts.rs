//! Evidence of a failed scenario, in one folder per scenario: events and
//! objects of its namespaces, the mock servers' logs, NIC's logs and the part
//! of NIC's generated nginx configuration that belongs to the scenario, and
//! (kind) `kind export logs` once per run. Best effort: a command that fails
//! leaves its error in the file instead of stopping the collection.

use std::path::PathBuf;
use std::time::Duration;

use super::install::{NIC_DEPLOYMENT, NIC_NAMESPACE};
use super::{Cluster, Mode, kind};
use crate::manifest::Kind;
use crate::scenario::Scenario;
use crate::substrate::local::pods::is_our_image;

/// Scenario-namespaced kinds worth dumping (Secrets are listed, not dumped).
const OBJECT_KINDS: &str = "deployments,replicasets,pods,services,endpoints,configmaps,\
certificates.cert-manager.io,certificaterequests.cert-manager.io,issuers.cert-manager.io,\
policies.k8s.nginx.org,virtualservers.k8s.nginx.org,virtualserverroutes.k8s.nginx.org,ingresses.networking.k8s.io";

/// One file: the kubectl arguments that produce it.
pub(crate) struct Item {
    pub file: String,
    pub kubectl: Vec<String>,
}

/// What is collected for a scenario (pure, so the plan and tests can show it).
pub(crate) fn scenario_items(scenario: &Scenario) -> Vec<Item> {
    let mut items = Vec::new();
    let mut namespaces: Vec<&str> = scenario
        .objects
        .iter()
        .filter_map(|o| o.id.namespace.as_deref())
        .collect();
    namespaces.sort();
    namespaces.dedup();
    let words = |s: &[&str]| s.iter().map(|w| w.to_string()).collect::<Vec<_>>();
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
        items.push(Item {
            file: format!("{ns}/objects.yaml"),
            kubectl: words(&["get", OBJECT_KINDS, "-n", ns, "-o", "yaml"]),
        });
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
    let nic = format!("deployment/{NIC_DEPLOYMENT}");
    items.push(Item {
        file: "nic.log".into(),
        kubectl: words(&["logs", "-n", NIC_NAMESPACE, &nic, "--tail=5000"]),
    });
    items.push(Item {
        file: "nic-nginx-T.conf".into(),
        kubectl: words(&["exec", "-n", NIC_NAMESPACE, &nic, "--", "nginx", "-T"]),
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
    let items = scenario_items(scenario);
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
        for item in items {
            let mut args = base.clone();
            args.extend(item.kubectl.iter().cloned());
            let words: Vec<&str> = args.iter().map(String::as_str).collect();
            let text = match super::run(&kubectl, &words, None, Duration::from_secs(60)).await {
                Ok(out) => out,
                Err(e) => format!("# kubectl {} failed:\n# {e}\n", item.kubectl.join(" ")),
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
            let _ = std::fs::write(path, text);
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
        let files: Vec<String> = scenario_items(&scenario)
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
