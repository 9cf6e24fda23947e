//! The local substrate: no cluster, no Docker. The harness plays cert-manager
//! (issues the Certificates), NGINX Ingress Controller (renders nginx.conf as the
//! controller does) and the Services (our mocks on loopback), and runs the real
//! nginx and real TLS.

pub(crate) mod certmanager;
pub mod nginx;
pub(crate) mod nic;
pub(crate) mod pods;

use crate::manifest::NamespacedName;
use crate::manifest::ServicePort;
use crate::scenario::steps::Secrets;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::manifest::{ControllerState, Kind, ManifestError, Object};
use crate::pki::KeyPool;
use crate::report::{Phases, ResourceState};
use crate::scenario::steps::{self, SecretData, SecretSource, StepRunner};
use crate::scenario::{Scenario, Target};
use nginx::{NginxBinary, NginxProcess};
use nic::{NicOutput, RenderEnv};
use pods::{PodSpec, Pods};

use super::SubstrateError;

/// What the local substrate needs from the machine.
#[derive(Clone)]
pub struct Local {
    pub nginx: NginxBinary,
    pub openssl: PathBuf,
    pub keys: KeyPool,
}

/// A scenario applied to the in-memory cluster: everything but processes.
#[derive(Clone)]
pub struct Prepared {
    pub scenario: Scenario,
    pub objects: Vec<Object>,
    pub secrets: Secrets,
    pub issued: Vec<certmanager::Issued>,
    /// The manual steps, as the commands a person would type.
    pub steps: Vec<String>,
    pub pods: Vec<PodSpec>,
    pub workdir: PathBuf,
    pub phases: Phases,
}

/// The in-memory store as a step's `SecretSource`.
struct StoreView<'a>(&'a Secrets);

impl SecretSource for StoreView<'_> {
    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<SecretData>, String> {
        Ok(self.0.get(&NamespacedName::new(namespace, name)).cloned())
    }
}

/// The Secrets among `objects`, as the local substrate holds them.
pub(crate) fn secrets_of(objects: &[Object]) -> Result<Secrets, ManifestError> {
    objects
        .iter()
        .filter(|o| o.id.kind == Kind::Secret)
        .map(|o| Ok((o.id.namespaced_name(), certmanager::secret_data(o)?)))
        .collect()
}

/// `kubectl apply` fails for objects in a namespace that does not exist.
fn check_namespaces(objects: &[Object]) -> Result<(), ManifestError> {
    let declared: Vec<&str> = objects
        .iter()
        .filter(|o| o.id.kind == Kind::Namespace)
        .map(super::super::manifest::Object::name)
        .collect();
    for o in objects {
        if let Some(ns) = &o.id.namespace
            && !matches!(ns.as_str(), "default" | "kube-system")
            && !declared.contains(&ns.as_str())
        {
            return Err(o.error(
                    "metadata",
                    format!("namespace `{ns}` is not declared in the scenario; `kubectl apply` would fail with namespaces \"{ns}\" not found"),
                ));
        }
    }
    Ok(())
}

/// Replace or add objects by identity, as `kubectl apply` does.
fn apply(objects: &mut Vec<Object>, new: Vec<Object>) {
    for object in new {
        match objects.iter_mut().find(|o| o.id == object.id) {
            Some(slot) => *slot = object,
            None => objects.push(object),
        }
    }
}

impl Local {
    /// Apply the scenario to an in-memory cluster: cert-manager issues, the
    /// tutorial's steps run, Deployments are read. Nothing is started.
    ///
    /// # Errors
    /// When an object is invalid or a step fails (file and line).
    pub async fn prepare(
        &self,
        scenario: &Scenario,
        dir: &Path,
    ) -> Result<Prepared, SubstrateError> {
        let workdir = dir.join("work");
        std::fs::create_dir_all(&workdir).map_err(|e| {
            SubstrateError::Failed(format!("cannot create {}: {e}", workdir.display()))
        })?;
        let mut clock = std::time::Instant::now();
        let mut phases = Phases::default();
        let mut objects = scenario.objects.clone();
        check_namespaces(&objects)?;
        let mut issued = BTreeMap::new();
        let keys = self.keys.clone();
        let mut secrets = secrets_of(&objects)?;
        let new = issue(&objects, &secrets, &mut issued, &keys).await?;
        apply(&mut objects, new);
        secrets = secrets_of(&objects)?;
        phases.record("certificates", &mut clock);

        let runner = StepRunner {
            scenario,
            workdir: &workdir,
            keys: &self.keys,
            openssl: &self.openssl,
        };
        let mut step_log = Vec::new();
        for (i, step) in scenario.spec.steps.iter().enumerate() {
            step_log.push(steps::describe(step));
            let created = runner.run(i, &StoreView(&secrets)).await?;
            apply(&mut objects, created);
            secrets = secrets_of(&objects)?;
            let new = issue(&objects, &secrets, &mut issued, &keys).await?;
            if !new.is_empty() {
                apply(&mut objects, new);
                secrets = secrets_of(&objects)?;
            }
        }
        if let Some(stuck) = certmanager::pending(&objects, &issued, &secrets)
            .into_iter()
            .next()
        {
            return Err(stuck.into());
        }
        if !scenario.spec.steps.is_empty() {
            phases.record("steps", &mut clock);
        }
        let pods = pods::plan(&objects, &secrets)?;
        Ok(Prepared {
            scenario: scenario.clone(),
            objects,
            secrets,
            issued: issued.into_values().collect(),
            steps: step_log,
            pods,
            workdir,
            phases,
        })
    }

    /// Render NIC's configuration for `prepared`.
    pub(crate) fn render(
        &self,
        prepared: &Prepared,
        env: &RenderEnv,
        endpoints: &dyn nic::Endpoints,
    ) -> Result<NicOutput, ManifestError> {
        let out = nic::configure(&prepared.objects, &prepared.secrets, endpoints, env)?;
        tracing::debug!(
            files = out.conf_files.len(),
            states = out.states.len(),
            upstreams = out.upstreams.len(),
            "rendered NIC's configuration"
        );
        Ok(out)
    }

    /// NIC's configuration for `objects` with the secrets of `prepared`, as
    /// `plan` shows it: example listeners, and an example endpoint per Service
    /// port. Nothing is started.
    pub(crate) fn planned(
        &self,
        prepared: &Prepared,
        objects: &[Object],
        nginx_dir: &Path,
    ) -> Result<NicOutput, ManifestError> {
        nic::configure(
            objects,
            &prepared.secrets,
            &PlannedEndpoints(objects),
            &planned_env(nginx_dir),
        )
    }

    pub(crate) fn main_conf(&self, env: &RenderEnv, dir: &Path) -> String {
        let text = |p: PathBuf| p.display().to_string();
        nic::render::MainConf {
            env,
            conf_d: &text(dir.join("conf.d")),
            pid: &text(dir.join("run/nginx.pid")),
            error_log: &text(dir.join("logs/error.log")),
            access_log: &text(dir.join("logs/access.log")),
            temp_dir: &text(dir.join("tmp")),
            modern_tls_defaults: nic::render::modern_tls_defaults_needed(self.nginx.version),
            run_as_root: crate::sys::euid() == 0,
        }
        .render()
    }

    /// Start the scenario's pods and nginx. With `strict`, a resource in a state
    /// the scenario does not expect, or a pod that cannot start, stops the run
    /// before nginx starts (a mutated scenario runs with `strict` off).
    pub(crate) async fn start(
        &self,
        prepared: Prepared,
        dir: &Path,
        strict: bool,
    ) -> Result<LocalDeployment, SubstrateError> {
        let mut clock = std::time::Instant::now();
        let mut phases = prepared.phases.clone();
        let pods_dir = dir.join("pods");
        std::fs::create_dir_all(&pods_dir).map_err(|e| SubstrateError::Failed(e.to_string()))?;
        let pods = Pods::start(&prepared.pods, &prepared.objects, &pods_dir).await?;
        if strict && let Some(n) = pods.not_started.first() {
            let origin = prepared
                .objects
                .iter()
                .find(|o| o.id.kind == Kind::Deployment && o.id.key() == n.deployment)
                .map(super::super::manifest::Object::origin);
            return Err(SubstrateError::Input(ManifestError {
                origin: origin.unwrap_or_else(|| prepared.scenario.origin_of("components")),
                message: format!(
                    "Deployment {} would never become ready: {}",
                    n.deployment, n.reason
                ),
            }));
        }
        phases.record("pods", &mut clock);
        let nginx_dir = dir.join("nginx");
        let listeners = NginxListeners::bind()?;
        let (http, https) = (listeners.http_addr, listeners.https_addr);
        let env = local_env(&nginx_dir, http, https);
        let nic = self.render(&prepared, &env, &PodEndpoints(&pods, &prepared.objects))?;
        if strict {
            check_states(&prepared.scenario, &nic)?;
        }
        write_nginx_files(&nginx_dir, &self.main_conf(&env, &nginx_dir), &nic)?;
        let nginx = NginxProcess::start(
            &self.nginx,
            &nginx_dir,
            &nginx_dir.join("nginx.conf"),
            &nginx_dir.join("logs/error.log"),
            &nginx_dir.join("run/nginx.pid"),
            &[&listeners.http, &listeners.https],
            Duration::from_secs(10),
        )
        .await
        .map_err(|e| {
            SubstrateError::Failed(format!(
                "nginx did not start with the rendered configuration: {e}"
            ))
        })?;
        phases.record("nginx", &mut clock);
        Ok(LocalDeployment {
            phases,
            http,
            https,
            listeners,
            pods,
            nginx,
            nic,
            prepared,
            dir: dir.to_path_buf(),
        })
    }
}

/// nginx's two listeners (NIC's ports 80 and 443), bound by the run and held
/// until the scenario is stopped: the kernel hands out ports nobody holds, and
/// nobody can take them while we hold them, so there is no window between
/// choosing a port and listening on it.
pub struct NginxListeners {
    http: std::net::TcpListener,
    https: std::net::TcpListener,
    pub http_addr: SocketAddr,
    pub https_addr: SocketAddr,
}

impl NginxListeners {
    pub(crate) fn bind() -> Result<NginxListeners, SubstrateError> {
        let bind = || {
            let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
            let addr = listener.local_addr()?;
            Ok::<_, std::io::Error>((listener, addr))
        };
        let fail = |e: std::io::Error| {
            SubstrateError::Failed(format!(
                "cannot listen on a loopback port for nginx: {e} (every port of the ephemeral range may be taken; \
                 see /proc/sys/net/ipv4/ip_local_port_range)"
            ))
        };
        let (http, http_addr) = bind().map_err(fail)?;
        let (https, https_addr) = bind().map_err(fail)?;
        Ok(NginxListeners {
            http,
            https,
            http_addr,
            https_addr,
        })
    }
}

async fn issue(
    objects: &[Object],
    secrets: &Secrets,
    issued: &mut BTreeMap<String, certmanager::Issued>,
    keys: &KeyPool,
) -> Result<Vec<Object>, SubstrateError> {
    // Signing waits on the key pool; keep it off the async workers.
    let (objects, secrets, mut done, keys) = (
        objects.to_vec(),
        secrets.clone(),
        std::mem::take(issued),
        keys.clone(),
    );
    let (result, done) = tokio::task::spawn_blocking(move || {
        let r = certmanager::reconcile(&objects, &secrets, &mut done, &keys);
        (r, done)
    })
    .await
    .map_err(|e| SubstrateError::Failed(format!("issuing certificates: {e}")))?;
    *issued = done;
    Ok(result?)
}

/// NIC's environment as `plan` shows it: example listeners nothing listens on.
pub(crate) fn planned_env(nginx_dir: &Path) -> RenderEnv {
    let at = |port| SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port));
    local_env(nginx_dir, at(18080), at(18443))
}

/// The resources whose state is not the one the scenario expects (default Valid).
pub(crate) fn unexpected_states<'a>(
    scenario: &Scenario,
    states: &'a [ResourceState],
) -> Vec<&'a ResourceState> {
    states
        .iter()
        .filter(|s| s.state != scenario.expected_state(&s.id()))
        .collect()
}

/// Whether only NIC reads objects of `kind` (not cert-manager, the steps or
/// the pods): a mutation of one changes nothing but NIC's render.
pub(crate) fn read_by_nic_only(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Policy | Kind::VirtualServer | Kind::VirtualServerRoute | Kind::Ingress
    )
}

/// Why a mutation NIC renders alike is not run.
pub(crate) const EQUIVALENT: &str = "NIC renders the same configuration, secrets and resource states with it as without it, \
     so no probe can tell";

impl Local {
    /// Whether NIC renders `prepared` with `changed`, an object only NIC reads,
    /// in place of the object of its id exactly as without it ([`renders_alike`]):
    /// the mutation is equivalent.
    ///
    /// # Errors
    /// When NIC's render of either fails (file and line).
    pub(crate) fn renders_alike_with(
        &self,
        prepared: &Prepared,
        changed: &Object,
        nginx_dir: &Path,
    ) -> Result<bool, ManifestError> {
        let before = self.planned(prepared, &prepared.objects, nginx_dir)?;
        let mut objects = prepared.objects.clone();
        if let Some(slot) = objects.iter_mut().find(|o| o.id == changed.id) {
            *slot = changed.clone();
        }
        let after = self.planned(prepared, &objects, nginx_dir)?;
        Ok(renders_alike(&before, &after))
    }
}

/// Two renders nginx would serve alike: the same configuration files, the
/// same secret files among those the configuration names (nginx reads no
/// other), the same hosts and resource states (their messages aside).
pub(crate) fn renders_alike(a: &NicOutput, b: &NicOutput) -> bool {
    let states = |o: &NicOutput| -> Vec<(String, ControllerState)> {
        o.states.iter().map(|s| (s.id(), s.state)).collect()
    };
    // The files a configuration names: the last part of each path in it.
    let named = |o: &NicOutput| -> std::collections::BTreeSet<String> {
        o.conf_files
            .iter()
            .flat_map(|(_, text)| text.split(|c: char| c.is_whitespace() || c == ';' || c == '"'))
            .filter_map(|word| word.rsplit_once('/').map(|(_, file)| file.to_string()))
            .collect()
    };
    let read = |o: &NicOutput| -> Vec<nic::secrets::SecretFile> {
        let named = named(o);
        o.secret_files
            .iter()
            .filter(|f| named.contains(&f.name))
            .cloned()
            .collect()
    };
    a.conf_files == b.conf_files
        && read(a) == read(b)
        && a.hosts == b.hosts
        && states(a) == states(b)
}

/// Every resource must be in the state the scenario expects (default Valid).
pub(crate) fn check_states(scenario: &Scenario, nic: &NicOutput) -> Result<(), ManifestError> {
    match unexpected_states(scenario, &nic.states).first() {
        Some(state) => Err(ManifestError {
            origin: state.origin.clone(),
            message: format!(
                "{} would be {}, not {}: {} (if that is what the scenario tests, declare it under resourceStates)",
                state.id(),
                state.state,
                scenario.expected_state(&state.id()),
                state.message
            ),
        }),
        None => Ok(()),
    }
}

/// nginx's runtime folder, relative to the folder nginx runs in.
const NGINX_RUNTIME_DIR: &str = "run";

/// NIC's environment on this machine: loopback listeners, the run folder.
pub(crate) fn local_env(nginx_dir: &Path, http: SocketAddr, https: SocketAddr) -> RenderEnv {
    RenderEnv {
        http_listen: vec![http.to_string()],
        https_listen: vec![https.to_string()],
        secrets_dir: nginx_dir.join("secrets").display().to_string(),
        // Relative to nginx's working folder (nginx_dir): a unix socket path
        // holds at most 107 bytes, and TMPDIR can be long (macOS's is ~49).
        runtime_dir: NGINX_RUNTIME_DIR.into(),
        dynamic_ssl_reload: true,
        // Locally nothing may be assumed about 127.0.0.1:8181; a socket nobody
        // listens on gives the same 502.
        ingress_no_endpoints: format!("unix:{NGINX_RUNTIME_DIR}/no-endpoints.sock"),
    }
}

fn write_nginx_files(dir: &Path, main: &str, nic: &NicOutput) -> Result<(), SubstrateError> {
    let fail =
        |e: std::io::Error| SubstrateError::Failed(format!("writing the nginx configuration: {e}"));
    for sub in ["conf.d", "secrets", "logs", "tmp", "run"] {
        let path = dir.join(sub);
        if sub == "conf.d" && path.exists() {
            std::fs::remove_dir_all(&path).map_err(fail)?;
        }
        std::fs::create_dir_all(&path).map_err(fail)?;
    }
    std::fs::write(dir.join("nginx.conf"), main).map_err(fail)?;
    for (name, text) in &nic.conf_files {
        std::fs::write(dir.join("conf.d").join(name), text).map_err(fail)?;
    }
    for file in &nic.secret_files {
        let path = dir.join("secrets").join(&file.name);
        if file.private {
            crate::sys::write_private(&path, &file.content).map_err(fail)?;
        } else {
            std::fs::write(&path, &file.content).map_err(fail)?;
        }
    }
    Ok(())
}

struct PodEndpoints<'a>(&'a Pods, &'a [Object]);

impl nic::Endpoints for PodEndpoints<'_> {
    fn lookup(&self, service: &ServicePort) -> Result<Vec<String>, String> {
        if let Some(problem) = nic::service_problem(self.1, &service.service) {
            return Err(problem);
        }
        Ok(self
            .0
            .service(service)
            .map(|a| vec![a.to_string()])
            .unwrap_or_default())
    }
}

/// Stand-in endpoints for `plan`: one example address per Service port.
pub(crate) struct PlannedEndpoints<'a>(pub &'a [Object]);

impl nic::Endpoints for PlannedEndpoints<'_> {
    fn lookup(&self, service: &ServicePort) -> Result<Vec<String>, String> {
        match nic::service_problem(self.0, &service.service) {
            Some(problem) => Err(problem),
            None => Ok(vec![format!("127.0.0.1:{}", 20000 + service.port % 10000)]),
        }
    }
}

/// A scenario running on the local substrate.
pub struct LocalDeployment {
    pub phases: Phases,
    pub http: SocketAddr,
    pub https: SocketAddr,
    /// Held for as long as nginx serves on them.
    pub listeners: NginxListeners,
    pub pods: Pods,
    pub nginx: NginxProcess,
    pub nic: NicOutput,
    pub prepared: Prepared,
    pub dir: PathBuf,
}

impl LocalDeployment {
    /// Where a probe connects for `target`.
    pub(crate) fn address(&self, target: &Target) -> Result<SocketAddr, String> {
        match target {
            Target::Ingress { port, .. } => super::ingress_address(*port, self.http, self.https),
            Target::Service { service, .. } => self.pods.service(service).ok_or_else(|| {
                let why = self
                    .pods
                    .not_started
                    .iter()
                    .map(|n| format!("; pod {} did not start: {}", n.deployment, n.reason))
                    .collect::<String>();
                format!(
                    "Service {} port {} has no ready endpoint{why}",
                    service.service, service.port
                )
            }),
        }
    }

    /// The tail of nginx's error log, for failure reports.
    /// The last `lines` error-log lines about requests from `client`.
    pub(crate) fn error_log_lines_of(&self, client: &str, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.nginx.error_log).unwrap_or_default();
        let marker = format!("client: {client},");
        let ours: Vec<&str> = text.lines().filter(|l| l.contains(&marker)).collect();
        ours[ours.len().saturating_sub(lines)..].join("\n")
    }

    pub(crate) async fn stop(mut self) {
        self.nginx.stop().await;
        self.pods.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nic::secrets::SecretFile;

    fn output(conf: &str, files: &[(&str, &str)]) -> NicOutput {
        NicOutput {
            conf_files: vec![("vs_ns_a.conf".into(), conf.into())],
            secret_files: files
                .iter()
                .map(|(name, content)| SecretFile {
                    name: (*name).into(),
                    content: content.as_bytes().to_vec(),
                    private: false,
                })
                .collect(),
            states: Vec::new(),
            hosts: BTreeMap::new(),
            upstreams: Vec::new(),
        }
    }

    /// Renders are alike when nginx would read the same: a secret file the
    /// configuration does not name (even one whose name begins another's)
    /// does not count; a named one, or any configuration text, does.
    #[test]
    fn renders_alike_compares_what_nginx_reads() {
        let conf = "ssl_client_certificate $secret_dir_path/ns-ca-nginx-ca.crt;\n";
        let base = output(conf, &[("ns-ca-nginx-ca.crt", "A")]);
        let unread = output(conf, &[("ns-ca-nginx-ca.crt", "A"), ("ns-ca", "B")]);
        assert!(renders_alike(&base, &unread));
        let other_ca = output(conf, &[("ns-ca-nginx-ca.crt", "C")]);
        assert!(!renders_alike(&base, &other_ca));
        let other_conf = output(
            "ssl_verify_client optional;\n",
            &[("ns-ca-nginx-ca.crt", "A")],
        );
        assert!(!renders_alike(&base, &other_conf));
    }
}
