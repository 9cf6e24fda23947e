//! Ready means serving: before a scenario's checks, NIC must have loaded the
//! scenario's configuration with its endpoints. Pure decisions over what the
//! API server and NIC's pod show; `apply.rs` fetches them.
//!
//! Why the configuration and not NIC's events: a `VirtualServer` or Ingress
//! whose Service has no ready endpoint yet is reported Valid with no warning
//! (NIC 5.5.4 internal/k8s/controller.go:3976-3979 returns no endpoints, and
//! internal/configs/virtualserver.go:368-373 warns only for an empty, non-nil
//! list, then proxies to its 502 server), and when the endpoints become ready
//! NIC rewrites the upstream and reloads without an event or a status change
//! (internal/k8s/endpoint_slice.go:174-206: only a warning that appears or
//! goes is reported). So the harness reads what NIC wrote: the upstreams in
//! `nginx -T`, which NIC writes before each reload.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use crate::manifest::Kind;
use crate::scenario::Scenario;
use crate::substrate::local::nic::routing::upstream_servers;

/// The label an `EndpointSlice` names its Service by (what NIC selects them by).
pub(crate) const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A Service port, as an upstream names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum PortRef {
    Number(u16),
    /// An Ingress backend's `port.name`.
    Name(String),
}

impl std::fmt::Display for PortRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(n) => f.write_str(n),
        }
    }
}

/// A Service port that NIC proxies to for the scenario.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct UpstreamRef {
    pub namespace: String,
    pub service: String,
    pub port: PortRef,
    /// `use-cluster-ip`: nginx proxies to the Service's cluster IP, not to endpoints.
    pub cluster_ip: bool,
    /// The resource that names it (`VirtualServer ns/name`).
    pub owner: String,
}

impl UpstreamRef {
    pub(crate) fn label(&self) -> String {
        format!("Service {}/{}:{}", self.namespace, self.service, self.port)
    }
}

/// Every Service port the scenario's `VirtualServers`, `VirtualServerRoutes` and
/// Ingresses proxy to, once each. A `VirtualServer`'s `service: ns/name` is
/// looked up in `ns`, as NIC's `ParseServiceReference` does.
pub(crate) fn upstreams(scenario: &Scenario) -> Vec<UpstreamRef> {
    let mut out: Vec<UpstreamRef> = Vec::new();
    let mut add = |u: UpstreamRef| {
        if !out
            .iter()
            .any(|o| (&o.namespace, &o.service, &o.port) == (&u.namespace, &u.service, &u.port))
        {
            out.push(u);
        }
    };
    for o in &scenario.objects {
        let json = o.to_json();
        let owner = o.id.to_string();
        match o.id.kind {
            Kind::VirtualServer | Kind::VirtualServerRoute => {
                for u in json
                    .pointer("/spec/upstreams")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let (Some(service), Some(port)) = (
                        u.get("service").and_then(Value::as_str),
                        u.get("port")
                            .and_then(Value::as_u64)
                            .and_then(|p| u16::try_from(p).ok()),
                    ) else {
                        continue;
                    };
                    let (namespace, service) = match service.split_once('/') {
                        Some((ns, name)) => (ns, name),
                        None => (o.namespace(), service),
                    };
                    add(UpstreamRef {
                        namespace: namespace.into(),
                        service: service.into(),
                        port: PortRef::Number(port),
                        cluster_ip: u.get("use-cluster-ip").and_then(Value::as_bool) == Some(true),
                        owner: owner.clone(),
                    });
                }
            }
            Kind::Ingress => {
                let backends = json.pointer("/spec/defaultBackend").into_iter().chain(
                    json.pointer("/spec/rules")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|r| r.pointer("/http/paths").and_then(Value::as_array))
                        .flatten()
                        .filter_map(|p| p.get("backend")),
                );
                for b in backends {
                    let Some(service) = b.pointer("/service/name").and_then(Value::as_str) else {
                        continue;
                    };
                    let port = match (
                        b.pointer("/service/port/number")
                            .and_then(Value::as_u64)
                            .and_then(|p| u16::try_from(p).ok()),
                        b.pointer("/service/port/name").and_then(Value::as_str),
                    ) {
                        (Some(n), _) => PortRef::Number(n),
                        (None, Some(name)) => PortRef::Name(name.into()),
                        (None, None) => continue,
                    };
                    add(UpstreamRef {
                        namespace: o.namespace().into(),
                        service: service.into(),
                        port,
                        cluster_ip: false,
                        owner: owner.clone(),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// A Service port's endpoints as NIC will see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoints {
    /// NIC has none for it by design of the objects (and says why); nothing
    /// to wait for: nginx proxies it to NIC's 502 server.
    NoneByDesign(String),
    /// None ready yet; what was seen.
    Waiting(String),
    /// The ready endpoints, as nginx's upstream names them (`10.244.0.7:8080`).
    Ready(Vec<String>),
}

/// `addr:port`, `[addr]:port` for IPv6, as NIC writes an upstream server
/// (Go's `net.JoinHostPort`).
fn host_port(address: &str, port: i32) -> String {
    if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

/// The endpoints NIC 5.5.4 takes for `upstream` from its Service and the
/// Service's `EndpointSlices`: the slices' port for the Service port (the
/// `EndpointSlice` controller names it after the Service port and numbers it
/// with the resolved target port, the number NIC's `selectEndpointSlicesForPort`
/// matches), and of their endpoints those whose `conditions.ready` is true
/// (an unset `ready` is not ready to NIC: controller.go:3796-3809).
pub(crate) fn endpoints(
    upstream: &UpstreamRef,
    service: Option<&Service>,
    slices: &[EndpointSlice],
) -> Endpoints {
    let label = upstream.label();
    let Some(service) = service else {
        return Endpoints::NoneByDesign(format!(
            "{label}: no such Service, so NIC has no endpoints for it"
        ));
    };
    if upstream.cluster_ip {
        return Endpoints::NoneByDesign(format!(
            "{label}: use-cluster-ip, so nginx proxies to the Service's cluster IP"
        ));
    }
    let spec = service.spec.clone().unwrap_or_default();
    if spec.type_.as_deref() == Some("ExternalName") {
        return Endpoints::NoneByDesign(format!(
            "{label}: an ExternalName Service, for which NIC OSS resolves no endpoints \
             (\"type ExternalName Services feature is only available in NGINX Plus\")"
        ));
    }
    let port = spec.ports.iter().flatten().find(|p| match &upstream.port {
        PortRef::Number(n) => p.port == i32::from(*n),
        PortRef::Name(name) => p.name.as_deref() == Some(name.as_str()),
    });
    let Some(port) = port else {
        return Endpoints::NoneByDesign(format!(
            "{label}: the Service has no such port, so NIC has no endpoints for it"
        ));
    };
    let port_name = port.name.clone().unwrap_or_default();
    let target = match &port.target_port {
        Some(IntOrString::Int(n)) => Some(*n),
        None => Some(port.port),
        Some(IntOrString::String(_)) => None,
    };
    let mut ready = Vec::new();
    let mut seen = Vec::new();
    for slice in slices {
        let slice_port = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.clone().unwrap_or_default() == port_name)
            .and_then(|p| p.port)
            .filter(|p| target.is_none_or(|t| t == *p));
        for e in &slice.endpoints {
            let is_ready = e.conditions.as_ref().and_then(|c| c.ready) == Some(true);
            for a in &e.addresses {
                match (slice_port, is_ready) {
                    (Some(p), true) => ready.push(host_port(a, p)),
                    (Some(_), false) => seen.push(format!("{a} not ready")),
                    (None, _) => seen.push(format!("{a} without port {port_name:?}")),
                }
            }
        }
    }
    ready.sort();
    ready.dedup();
    if !ready.is_empty() {
        return Endpoints::Ready(ready);
    }
    let selector = spec.selector.as_ref().is_some_and(|s| !s.is_empty());
    if !selector && slices.is_empty() {
        return Endpoints::NoneByDesign(format!(
            "{label}: no selector and no EndpointSlice, so NIC has no endpoints for it"
        ));
    }
    Endpoints::Waiting(if seen.is_empty() {
        format!(
            "{label}: no ready endpoint yet ({} EndpointSlice(s), no endpoint)",
            slices.len()
        )
    } else {
        format!("{label}: no ready endpoint yet ({})", seen.join(", "))
    })
}

/// Has NIC loaded every ready upstream into the scenario's configuration?
/// `conf`: the scenario's part of `nginx -T`; `ready`: each waited-for
/// Service's label and ready endpoints. Done when, for each, an upstream of
/// the scenario lists one of its ready endpoints; the error says which are
/// missing and what the scenario's upstreams list instead (NIC's 502 server,
/// `unix:/var/lib/nginx/nginx-502-server.sock`, for one without endpoints).
pub(crate) fn conf_serves(conf: &str, ready: &[(String, Vec<String>)]) -> Result<(), String> {
    let blocks = upstream_servers(conf);
    let missing: Vec<String> = ready
        .iter()
        .filter(|(_, addrs)| {
            !blocks
                .values()
                .any(|servers| servers.iter().any(|s| addrs.contains(s)))
        })
        .map(|(label, addrs)| format!("{label} (ready: {})", addrs.join(", ")))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let listed: BTreeMap<&String, String> = blocks.iter().map(|(n, s)| (n, s.join(" "))).collect();
    let shown = if listed.is_empty() {
        "none yet".to_string()
    } else {
        listed
            .iter()
            .map(|(n, s)| format!("{n}: {s}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    Err(format!(
        "nginx -T: no upstream of the scenario lists an endpoint of {}; the scenario's upstreams: {shown}",
        missing.join(", ")
    ))
}

/// A host the checks reach through NIC, and the NIC port they use.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct FirstProbe {
    pub host: String,
    pub port: u16,
    /// A TLS handshake with this SNI (port 443), else a TCP connection.
    pub tls: bool,
}

/// The distinct hosts and ports the scenario's checks reach through NIC.
pub(crate) fn first_probes(scenario: &Scenario) -> Vec<FirstProbe> {
    let mut out: Vec<FirstProbe> = scenario
        .checks
        .iter()
        .filter_map(|c| {
            let target = match &c.probe {
                crate::scenario::Probe::Http { url, .. } => &url.target,
                crate::scenario::Probe::OpenSsl { target, .. } => target,
            };
            match target {
                crate::scenario::Target::Ingress { host, port } => Some(FirstProbe {
                    host: host.clone(),
                    port: *port,
                    tls: *port == 443,
                }),
                crate::scenario::Target::Service { .. } => None,
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Did NIC answer a first probe? Anything but a connection-level failure is
/// an answer (a completed handshake, a TLS alert: the checks judge those); a
/// refusal, reset or close is what a listener not up yet or a reload gives.
pub(crate) fn answered(observation: &crate::probe::Observation) -> Result<(), String> {
    match observation.connection {
        None => Ok(()),
        Some(_) => Err(observation
            .error
            .clone()
            .unwrap_or_else(|| "no answer".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

    fn scenario(name: &str) -> Scenario {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios")
            .join(name);
        Scenario::load(&dir).expect("scenario")
    }

    fn service(v: Value) -> Service {
        serde_json::from_value(v).expect("service")
    }

    fn slice(v: Value) -> EndpointSlice {
        serde_json::from_value(v).expect("endpointslice")
    }

    fn upstream(port: PortRef) -> UpstreamRef {
        UpstreamRef {
            namespace: "app".into(),
            service: "web".into(),
            port,
            cluster_ip: false,
            owner: "VirtualServer app/web".into(),
        }
    }

    fn web() -> Service {
        service(json!({
            "metadata": {"name": "web", "namespace": "app"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
        }))
    }

    fn web_slice(ready: Option<bool>) -> EndpointSlice {
        let conditions = match ready {
            Some(r) => json!({"ready": r}),
            None => json!({}),
        };
        slice(json!({
            "metadata": {"name": "web-abc", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.244.0.7"], "conditions": conditions}]
        }))
    }

    #[test]
    fn upstreams_are_every_service_port_nic_proxies_to() {
        let refs = upstreams(&scenario("upstream-references"));
        let labels: Vec<String> = refs.iter().map(UpstreamRef::label).collect();
        assert!(
            labels.contains(&"Service backend/open-webui:80".to_string()),
            "a namespace/service reference: {labels:?}"
        );
        assert!(
            refs.iter().any(|u| u.namespace == "frontend"),
            "a plain one, in the VirtualServer's namespace: {labels:?}"
        );
        let ingress = upstreams(&scenario("ingress-mergeable"));
        assert!(
            ingress.iter().all(|u| u.owner.starts_with("Ingress ")),
            "{ingress:?}"
        );
        assert!(!ingress.is_empty());
    }

    /// NIC takes only endpoints whose `ready` is true, on the Service port's
    /// resolved target port.
    #[test]
    fn only_ready_endpoints_on_the_services_port_count() {
        let u = upstream(PortRef::Number(80));
        assert_eq!(
            endpoints(&u, Some(&web()), &[web_slice(Some(true))]),
            Endpoints::Ready(vec!["10.244.0.7:8080".into()])
        );
        for unready in [Some(false), None] {
            assert!(
                matches!(
                    endpoints(&u, Some(&web()), &[web_slice(unready)]),
                    Endpoints::Waiting(why) if why.contains("10.244.0.7 not ready")
                ),
                "{unready:?}"
            );
        }
        assert!(matches!(
            endpoints(&u, Some(&web()), &[]),
            Endpoints::Waiting(why) if why.contains("0 EndpointSlice(s)")
        ));
        let named = upstream(PortRef::Name("http".into()));
        assert!(matches!(
            endpoints(&named, Some(&web()), &[web_slice(Some(true))]),
            Endpoints::Ready(_)
        ));
    }

    /// What NIC never gets endpoints for is named, not waited for.
    #[test]
    fn services_without_endpoints_by_design_are_not_waited_for() {
        let u = upstream(PortRef::Number(80));
        let external = service(json!({
            "metadata": {"name": "web"},
            "spec": {"type": "ExternalName", "externalName": "example.com"}
        }));
        for (s, word) in [
            (Some(&external), "ExternalName"),
            (None, "no such Service"),
            (Some(&web()), "no such port"),
        ] {
            let port = if word == "no such port" { 81 } else { 80 };
            let u = upstream(PortRef::Number(port));
            assert!(
                matches!(endpoints(&u, s, &[]), Endpoints::NoneByDesign(why) if why.contains(word)),
                "{word}"
            );
        }
        let by_ip = UpstreamRef {
            cluster_ip: true,
            ..u
        };
        assert!(matches!(
            endpoints(&by_ip, Some(&web()), &[]),
            Endpoints::NoneByDesign(_)
        ));
    }

    /// The upstream NIC wrote before the endpoints were ready points at its
    /// 502 server; once it lists a ready endpoint, NIC has loaded it.
    #[test]
    fn the_configuration_serves_once_an_upstream_lists_a_ready_endpoint() {
        let ready = vec![(
            "Service app/web:80".to_string(),
            vec!["10.244.0.7:8080".to_string()],
        )];
        let before = "# configuration file /etc/nginx/conf.d/vs_app_web.conf:\n\
            upstream vs_app_web_web {\n    zone vs_app_web_web 256k;\n    random two least_conn;\n    \
            server unix:/var/lib/nginx/nginx-502-server.sock;\n}\nserver { listen 80; }\n";
        let e = conf_serves(before, &ready).expect_err("not loaded");
        assert!(
            e.contains("Service app/web:80 (ready: 10.244.0.7:8080)")
                && e.contains("vs_app_web_web: unix:/var/lib/nginx/nginx-502-server.sock"),
            "{e}"
        );
        let after = before.replace(
            "unix:/var/lib/nginx/nginx-502-server.sock",
            "10.244.0.7:8080 max_fails=1 fail_timeout=10s max_conns=0",
        );
        assert_eq!(conf_serves(&after, &ready), Ok(()));
        // A stale endpoint (an old pod's) is not the ready one.
        let stale = before.replace(
            "unix:/var/lib/nginx/nginx-502-server.sock",
            "10.244.0.5:8080",
        );
        assert!(conf_serves(&stale, &ready).is_err());
        assert_eq!(conf_serves("", &[]), Ok(()));
    }

    #[test]
    fn a_first_probe_is_answered_by_anything_but_a_connection_failure() {
        use crate::net::ConnectionFailure;
        use crate::probe::Observation;
        let refused = Observation {
            connection: Some(ConnectionFailure::Refused),
            error: Some("connect 127.0.0.1:443: Connection refused".into()),
            ..Observation::default()
        };
        assert!(answered(&refused).is_err());
        let alert = Observation {
            alert: Some("unrecognized name".into()),
            rejected: true,
            error: Some("received fatal alert".into()),
            ..Observation::default()
        };
        assert_eq!(answered(&alert), Ok(()));
        assert_eq!(answered(&Observation::default()), Ok(()));
        let probes = first_probes(&scenario("openwebui-ingress-mtls"));
        assert!(!probes.is_empty());
        assert!(
            probes.iter().all(|p| p.tls == (p.port == 443)),
            "{probes:?}"
        );
    }
}
