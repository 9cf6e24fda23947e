//! The cluster substrates: `kind` (the harness creates and installs the cluster)
//! and `existing` (any cluster from a kubeconfig, with cert-manager and NIC
//! already installed). The same scenario folders run unchanged: objects are
//! server-side applied, the tutorial's steps run against the cluster's Secrets,
//! the harness waits for the states the scenario declares, and the same probes
//! and checks run through the ingress controller and Service port-forwards.

pub(crate) mod actions;
pub mod apply;
pub(crate) mod artifacts;
pub(crate) mod controllers;
pub mod download;
pub(crate) mod forward;
pub mod image;
pub mod install;
pub(crate) mod kind;
pub(crate) mod ownership;
pub(crate) mod preflight;
pub(crate) mod readiness;
pub(crate) mod waits;

use crate::manifest::ServicePort;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::report::ResourceState;
use crate::scenario::{Scenario, Target};
use crate::substrate::local::nginx::find_program;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A tool the substrate needs is missing (exit code 3).
    #[error("{0}")]
    Missing(String),
    /// Bad options or scenarios that cannot share a cluster (exit code 2).
    #[error("{0}")]
    Input(String),
    /// A cluster operation failed or timed out (exit code 4).
    #[error("{0}")]
    Failed(String),
    /// Everything that keeps a run from starting, found before anything is
    /// done, in the order the run needs it (error.rs gives each its exit code
    /// and the whole the lowest of them).
    #[error("the {substrate} substrate cannot start:\n  - {}", .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  - "))]
    Preflight {
        substrate: &'static str,
        problems: Vec<ClusterError>,
    },
}

impl From<kube::Error> for ClusterError {
    fn from(e: kube::Error) -> Self {
        ClusterError::Failed(crate::net::error_chain(&e))
    }
}

/// How to get each tool the cluster substrates use.
fn install_hint(name: &str) -> &'static str {
    match name {
        "kind" => {
            "install kind v0.31.0: `curl -Lo kind https://kind.sigs.k8s.io/dl/v0.31.0/kind-linux-amd64 && \
             chmod +x kind && sudo mv kind /usr/local/bin/` (or `go install sigs.k8s.io/kind@v0.31.0`)"
        }
        "docker" => {
            "install Docker (https://docs.docker.com/engine/install/) or Debian's `sudo apt-get install docker.io`, \
             and start the daemon"
        }
        "kubectl" => {
            "install kubectl (https://kubernetes.io/docs/tasks/tools/), e.g. \
             `curl -LO https://dl.k8s.io/release/v1.34.3/bin/linux/amd64/kubectl && chmod +x kubectl && sudo mv kubectl /usr/local/bin/`"
        }
        "openssl" => {
            "install it with `sudo apt-get install openssl` (Debian/Ubuntu), or point MTLS_E2E_OPENSSL at an openssl binary"
        }
        _ => "install it and put it on PATH",
    }
}

/// A tool on PATH (or `$MTLS_E2E_<NAME>`).
///
/// # Errors
///
/// [`ClusterError::Missing`], saying how to install it, when it is not found.
pub fn tool(name: &str) -> Result<PathBuf, ClusterError> {
    let env = format!("MTLS_E2E_{}", name.to_uppercase());
    find_program(name, &env).ok_or_else(|| {
        ClusterError::Missing(format!("{name} is not on PATH; {}", install_hint(name)))
    })
}

/// Run a tool to completion (killed after `timeout`); stdout on success. For
/// sync callers: [`run`] on a thread of its own, so it never blocks on a
/// runtime thread it would need.
///
/// # Errors
///
/// The tool cannot start, fails (the error ends with its last lines of
/// stderr), or does not finish within `timeout`.
pub fn run_tool(path: &Path, args: &[&str], timeout: Duration) -> Result<String, ClusterError> {
    run_tool_with_input(path, args, None, timeout)
}

/// [`run_tool`] with `input` on the tool's stdin.
pub(crate) fn run_tool_with_input(
    path: &Path,
    args: &[&str],
    input: Option<&[u8]>,
    timeout: Duration,
) -> Result<String, ClusterError> {
    blocking(run(path, args, input, timeout))
}

/// Drive `work` to its end from sync code: on a thread of its own with its own
/// runtime, so that it never blocks a runtime thread it would need (sync
/// callers run on runtime threads, blocking threads, or outside any runtime).
pub(crate) fn blocking<T: Send>(
    work: impl Future<Output = Result<T, ClusterError>> + Send,
) -> Result<T, ClusterError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| ClusterError::Failed(format!("cannot start a runtime: {e}")))?
                    .block_on(work)
            })
            .join()
            .unwrap_or_else(|_| Err(ClusterError::Failed("a tool's runner panicked".into())))
    })
}

/// Run a tool to completion; stdout on success. The tool leads a process group
/// of its own (the terminal's Ctrl-C reaches only us); on a timeout, or when
/// this future is dropped, the whole group is killed.
///
/// # Errors
///
/// The tool cannot start, fails (the error ends with its last lines of
/// stderr), or does not finish within `timeout`.
pub(crate) async fn run(
    path: &Path,
    args: &[&str],
    input: Option<&[u8]>,
    timeout: Duration,
) -> Result<String, ClusterError> {
    use std::process::Stdio;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let shown = format!(
        "{} {}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("?"),
        args.join(" ")
    );
    let mut child = tokio::process::Command::new(path)
        .args(args)
        .process_group(0)
        .kill_on_drop(true)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ClusterError::Failed(format!("cannot run `{shown}`: {e}")))?;
    // Declared after `child`, so dropped before it: the group is killed while
    // its leader is not yet reaped (its pgid cannot have been reused).
    let mut group = Group::register(child.id());
    let (mut stdin, mut stdout, mut stderr) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let work = async {
        let feed = async {
            if let (Some(bytes), Some(pipe)) = (input, stdin.as_mut()) {
                // A tool that exits without reading all its input is judged by its status.
                let _ = pipe.write_all(bytes).await;
            }
            drop(stdin.take());
        };
        let read_out = async {
            if let Some(pipe) = stdout.as_mut() {
                let _ = pipe.read_to_end(&mut out).await;
            }
        };
        let read_err = async {
            if let Some(pipe) = stderr.as_mut() {
                let _ = pipe.read_to_end(&mut err).await;
            }
        };
        let ((), (), (), status) = tokio::join!(feed, read_out, read_err, child.wait());
        status
    };
    let outcome = tokio::time::timeout(timeout, work).await;
    let status = if let Ok(status) = outcome {
        status.map_err(|e| ClusterError::Failed(format!("`{shown}`: {e}")))?
    } else {
        group.kill();
        // SIGKILL reached the leader too: this returns at once.
        let _ = child.wait().await;
        group.reaped();
        return Err(ClusterError::Failed(format!(
            "`{shown}` did not finish within {timeout:?}"
        )));
    };
    group.reaped();
    if !status.success() {
        let stderr = String::from_utf8_lossy(&err);
        let last: Vec<&str> = stderr.lines().rev().take(6).collect();
        return Err(ClusterError::Failed(format!(
            "`{shown}` failed ({status}): {}",
            last.into_iter().rev().collect::<Vec<_>>().join("\n")
        )));
    }
    Ok(String::from_utf8_lossy(&out).to_string())
}

/// Process groups of tools running now (kind, kubectl, docker), so an
/// interrupt can stop them even when a sync caller's thread outlives the
/// future that was dropped.
static RUNNING: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

/// A running tool's process group: registered while it runs, killed when
/// dropped before the tool was reaped.
struct Group {
    pgid: Option<i32>,
}

impl Group {
    fn register(pid: Option<u32>) -> Group {
        let pgid = pid.and_then(|p| i32::try_from(p).ok());
        if let Some(pgid) = pgid {
            RUNNING
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(pgid);
        }
        Group { pgid }
    }

    /// SIGKILL to the whole group (the tool and whatever it started).
    fn kill(&self) {
        if let Some(pgid) = self.pgid {
            // The group our unreaped child leads.
            crate::sys::signal_group(pgid, libc::SIGKILL);
        }
    }

    /// The leader exited and was reaped: its pgid may be reused, never signal it.
    fn reaped(&mut self) {
        self.forget();
    }

    fn forget(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            RUNNING
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .retain(|p| *p != pgid);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
        self.forget();
    }
}

/// Ctrl-C: stop every tool still running (a `kind create` takes minutes).
/// Async callers' tools stop when their futures are dropped; this reaches
/// those of sync callers too.
pub(crate) fn stop_running_tools() {
    let list = RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    for pgid in list {
        // The group of a child we started and have not reaped.
        crate::sys::signal_group(pgid, libc::SIGTERM);
    }
}

/// Which cluster, and how it is set up.
#[derive(Debug, Clone)]
pub enum Mode {
    /// A kind cluster the harness ensures; `recreate`: one of ours that
    /// exists is deleted and created anew (`--recreate`).
    Kind {
        name: String,
        k8s: String,
        recreate: bool,
    },
    /// A cluster from a kubeconfig, with cert-manager and NIC installed.
    Existing {
        context: Option<String>,
        /// Where NIC runs; `None`: found from its workload.
        nic_namespace: Option<String>,
        /// Where cert-manager runs; `None`: found from its Deployments.
        cert_manager_namespace: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub mode: Mode,
    /// NIC version (`5.5.4`, `5.3.4`): installed on kind (default the newest
    /// pinned); on an existing cluster read from NIC's image unless given.
    pub nic: Option<String>,
    /// The image our Deployments run (kind: built here and loaded; existing: must be pullable).
    pub image: String,
    pub keep: bool,
    /// Objects of someone else's that the user lets the run overwrite
    /// (`--adopt`); applied without our label, never deleted.
    pub adopt: Vec<crate::manifest::ObjectRef>,
    /// Where failing scenarios' artifacts go.
    pub artifacts: PathBuf,
    /// Downloads, kubeconfigs and cluster markers (`~/.cache/mtls-e2e`).
    pub cache: PathBuf,
}

impl ClusterOptions {
    pub(crate) fn is_kind(&self) -> bool {
        matches!(self.mode, Mode::Kind { .. })
    }

    /// The kind cluster's name (empty for an existing cluster).
    pub(crate) fn cluster_name(&self) -> &str {
        match &self.mode {
            Mode::Kind { name, .. } => name,
            Mode::Existing { .. } => "",
        }
    }

    #[must_use]
    pub fn label(&self) -> &'static str {
        if self.is_kind() { "kind" } else { "existing" }
    }
}

/// The user's cache folder for downloads and kubeconfigs.
#[must_use]
pub fn default_cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("mtls-e2e");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".cache").join("mtls-e2e"),
        None => std::env::temp_dir().join("mtls-e2e-cache"),
    }
}

/// `5.5.4` ≥ `5.5`? NIC reports `5.5.4`, `v5.3.4` or `5.3` (read as 5.3.0);
/// a version semver cannot read is never new enough.
pub(crate) fn version_at_least(have: &str, need: &str) -> bool {
    let have = have.trim_start_matches('v');
    let have =
        semver::Version::parse(have).or_else(|_| semver::Version::parse(&format!("{have}.0")));
    match (have, crate::scenario::spec::nic_requirement(need)) {
        (Ok(have), Ok(need)) => need.matches(&have),
        _ => false,
    }
}

/// Why a scenario cannot run against NIC `version`: it declares a newer one.
#[must_use]
pub fn skip_reason(scenario: &Scenario, version: &str) -> Option<String> {
    let need = scenario.spec.requires.nic.as_deref()?;
    (!version_at_least(version, need)).then(|| {
        format!("needs NGINX Ingress Controller {need} or newer; the cluster runs {version}")
    })
}

/// Scenarios that share a cluster must not collide: their namespaces, hosts and
/// cluster-scoped objects must differ (they run in parallel).
pub(crate) fn check_shareable(scenarios: &[&Scenario]) -> Result<(), ClusterError> {
    let mut namespaces: BTreeMap<String, String> = BTreeMap::new();
    let mut hosts: BTreeMap<String, String> = BTreeMap::new();
    let mut cluster_scoped: BTreeMap<String, String> = BTreeMap::new();
    for s in scenarios {
        let mut own = std::collections::BTreeSet::new();
        for o in &s.objects {
            match &o.id.namespace {
                Some(ns) => {
                    own.insert(ns.clone());
                }
                None => {
                    if let Some(other) = cluster_scoped.insert(o.id.to_string(), s.name.clone())
                        && other != s.name
                    {
                        return Err(ClusterError::Input(format!(
                            "{} is declared by scenarios {other} and {}; cluster-scoped objects must differ",
                            o.id, s.name
                        )));
                    }
                }
            }
        }
        for ns in own {
            if let Some(other) = namespaces.insert(ns.clone(), s.name.clone()) {
                return Err(ClusterError::Input(format!(
                    "namespace {ns} is used by scenarios {other} and {}; scenarios run in parallel in their own namespaces",
                    s.name
                )));
            }
        }
        for host in apply::served_hosts(s).keys() {
            if let Some(other) = hosts.insert(host.clone(), s.name.clone())
                && other != s.name
            {
                return Err(ClusterError::Input(format!(
                    "host {host} is served by scenarios {other} and {}; NIC would give it to one of them",
                    s.name
                )));
            }
        }
    }
    Ok(())
}

/// A connected cluster.
pub struct Cluster {
    pub client: kube::Client,
    pub options: ClusterOptions,
    /// The kind cluster's kubeconfig (in the cache); `None`: the user's, as kubectl finds it.
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// This run created the kind cluster (and deletes it unless `--keep`).
    pub created: bool,
    /// How probes reach the ingress controller.
    pub ingress: IngressAccess,
    /// This run's identity, in the `mtls-e2e.io/run` label of what it applies.
    pub run_id: String,
    /// Where NIC runs and what it watches.
    pub(crate) nic: controllers::NicPlace,
}

/// 12 random hex digits: which run applied an object.
fn new_run_id() -> String {
    let mut bytes = [0u8; 6];
    // The pid and the clock if the system's randomness cannot be had.
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        let fallback = u64::from(std::process::id()) << 20
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() << 30 ^ u64::from(d.subsec_nanos()))
                .unwrap_or_default();
        bytes.copy_from_slice(&fallback.to_be_bytes()[2..]);
    }
    bytes.iter().fold(String::new(), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

/// NIC's ports 80 and 443 as probes reach them.
pub enum IngressAccess {
    /// kind's host port mappings on loopback.
    HostPorts { http: SocketAddr, https: SocketAddr },
    /// Port-forwards to the NIC pod (existing clusters).
    Forwarded {
        http: forward::Forward,
        https: forward::Forward,
    },
}

impl IngressAccess {
    pub(crate) fn address(&self, port: u16) -> Result<SocketAddr, String> {
        let (http, https) = match self {
            IngressAccess::HostPorts { http, https } => (*http, *https),
            IngressAccess::Forwarded { http, https } => (http.local, https.local),
        };
        super::ingress_address(port, http, https)
    }
}

impl Cluster {
    /// Ensure (kind) or reach (existing) the cluster, after the preflight
    /// found nothing missing: on kind the cluster is created or reused here;
    /// on an existing cluster the preflight's connection is used, and probes
    /// reach the NIC it found through port-forwards.
    pub(crate) async fn connect(
        options: ClusterOptions,
        ready: preflight::Ready,
    ) -> Result<Cluster, ClusterError> {
        std::fs::create_dir_all(&options.cache).map_err(|e| {
            ClusterError::Failed(format!("cannot create {}: {e}", options.cache.display()))
        })?;
        let (kubeconfig, context, created, client) = match (&options.mode, ready.client) {
            (
                Mode::Kind {
                    name,
                    k8s,
                    recreate,
                },
                _,
            ) => {
                let (name, k8s, cache) = (name.clone(), k8s.clone(), options.cache.clone());
                let kubeconfig = options.cache.join(format!("{name}.kubeconfig"));
                let path = kubeconfig.clone();
                // kind takes minutes; the futures are dropped on Ctrl-C, which kills its tools.
                kind::sweep_stale(&cache).await?;
                let created = kind::ensure(&name, &k8s, *recreate, &cache, &path).await?;
                let context = format!("kind-{}", options.cluster_name());
                let client = client(Some(&kubeconfig), Some(&context)).await?;
                (Some(kubeconfig), Some(context), created, client)
            }
            (Mode::Existing { context, .. }, Some(client)) => {
                (None, context.clone(), false, client)
            }
            (Mode::Existing { context, .. }, None) => (
                None,
                context.clone(),
                false,
                client(None, context.as_deref()).await?,
            ),
        };
        let ingress = match &options.mode {
            Mode::Kind { .. } => IngressAccess::HostPorts {
                http: SocketAddr::from(([127, 0, 0, 1], 80)),
                https: SocketAddr::from(([127, 0, 0, 1], 443)),
            },
            Mode::Existing { .. } => {
                let pod = |port| forward::Target::Selector {
                    namespace: ready.nic.namespace.clone(),
                    selector: ready.nic.selector.clone(),
                    port,
                };
                let http = forward::Forward::start(client.clone(), pod(80)).await?;
                let https = forward::Forward::start(client.clone(), pod(443)).await?;
                IngressAccess::Forwarded { http, https }
            }
        };
        Ok(Cluster {
            client,
            options,
            kubeconfig,
            context,
            created,
            ingress,
            run_id: new_run_id(),
            nic: ready.nic,
        })
    }

    /// Stop the port-forwards to NIC (existing clusters).
    pub(crate) fn stop_forwards(&self) {
        if let IngressAccess::Forwarded { http, https } = &self.ingress {
            http.abort();
            https.abort();
        }
    }

    /// `kubectl` arguments that reach this cluster.
    pub(crate) fn kubectl_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(k) = &self.kubeconfig {
            args.extend(["--kubeconfig".to_string(), k.display().to_string()]);
        }
        if let Some(c) = &self.context {
            args.extend(["--context".to_string(), c.clone()]);
        }
        args
    }

    /// Delete the kind cluster if this run created it and `--keep` was not given.
    pub(crate) fn finish(&self) -> Result<(), ClusterError> {
        if let Mode::Kind { name, .. } = &self.options.mode {
            if self.options.keep {
                kind::keep(name, &self.options.cache);
                tracing::info!(
                    "kept kind cluster {name} (--keep); reach it with `kubectl --context kind-{name}` \
                     or the kubeconfig {}",
                    self.options
                        .cache
                        .join(format!("{name}.kubeconfig"))
                        .display()
                );
            } else if self.created {
                tracing::info!("deleting kind cluster {name}, which this run created");
                // Sync: the engine calls this outside of the futures Ctrl-C drops.
                blocking(kind::delete(name, &self.options.cache))?;
            }
        }
        Ok(())
    }
}

pub(crate) async fn client(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<kube::Client, ClusterError> {
    let kc = match kubeconfig {
        Some(path) => kube::config::Kubeconfig::read_from(path)
            .map_err(|e| ClusterError::Failed(format!("reading {}: {e}", path.display())))?,
        None => kube::config::Kubeconfig::read().map_err(|e| {
            ClusterError::Missing(format!(
                "no usable kubeconfig (KUBECONFIG or ~/.kube/config): {e}"
            ))
        })?,
    };
    let shown = kubeconfig.map_or_else(|| "kubeconfig".into(), |p| p.display().to_string());
    let options = kube::config::KubeConfigOptions {
        context: context.map(String::from),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kc, &options)
        .await
        .map_err(|e| ClusterError::Failed(format!("{shown}: {e}")))?;
    Ok(kube::Client::try_from(config)?)
}

/// A scenario up on a cluster.
pub struct ClusterDeployment {
    pub scenario: Scenario,
    pub states: Vec<ResourceState>,
    /// Hosts served, and the resource serving each (`Kind ns/name`).
    pub hosts: BTreeMap<String, String>,
    /// Port-forwards to Services the checks probe directly.
    pub services: BTreeMap<ServicePort, forward::Forward>,
    pub ingress: (SocketAddr, SocketAddr),
    pub phases: crate::report::Phases,
    /// `nginx -T` of NIC once the scenario was served, when it could be read.
    pub nginx_conf: Option<String>,
    /// The Secrets the probes' identities and trust read, by `ns/name`.
    pub probe_secrets: crate::scenario::steps::Secrets,
}

impl ClusterDeployment {
    pub(crate) fn address(&self, target: &Target) -> Result<SocketAddr, String> {
        match target {
            Target::Ingress { port, .. } => {
                super::ingress_address(*port, self.ingress.0, self.ingress.1)
            }
            Target::Service { service, .. } => self
                .services
                .get(service)
                .map(|f| f.local)
                .ok_or_else(|| format!("no port-forward to Service {service}")),
        }
    }

    pub(crate) fn stop(&mut self) {
        for (_, f) in std::mem::take(&mut self.services) {
            f.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(version_at_least("5.5.4", "5.5"));
        assert!(version_at_least("5.10.0", "5.5"));
        assert!(!version_at_least("5.3.4", "5.5"));
        assert!(version_at_least("v5.3.4", "5.3"));
        assert!(version_at_least("5.3", "5.3"));
        assert!(!version_at_least("edge", "5.3"));
    }

    fn scenario(name: &str) -> Scenario {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios")
            .join(name);
        Scenario::load(&dir).expect("scenario")
    }

    #[test]
    fn scenarios_needing_a_newer_nic_are_skipped_with_the_reason() {
        let annotation = scenario("ingress-mtls-annotation");
        assert_eq!(
            skip_reason(&annotation, "5.3.4").as_deref(),
            Some("needs NGINX Ingress Controller 5.5 or newer; the cluster runs 5.3.4")
        );
        assert_eq!(skip_reason(&annotation, "5.5.4"), None);
        assert_eq!(
            skip_reason(&scenario("openwebui-ingress-mtls"), "5.3.4"),
            None
        );
    }

    #[test]
    fn scenarios_that_would_collide_on_a_cluster_are_refused() {
        let a = scenario("openwebui-ingress-mtls");
        let b = scenario("plain-http-port-80");
        assert!(check_shareable(&[&a, &b]).is_ok());
        let again = scenario("openwebui-ingress-mtls");
        let mut copy = again.clone();
        copy.name = "copy".into();
        let e = check_shareable(&[&a, &copy]).expect_err("same objects twice");
        assert!(
            e.to_string().contains("openwebui-ingress-mtls and copy"),
            "{e}"
        );
    }

    #[test]
    fn missing_tools_say_how_to_get_them() {
        let e = ClusterError::Missing(format!("kind is not on PATH; {}", install_hint("kind")));
        assert!(e.to_string().contains("kind.sigs.k8s.io/dl/v0.31.0"));
    }
}

/// What the code under test logs at `level` and above, as plain lines, for
/// the tests that assert what a user is told; captured while the guard lives,
/// on this thread (a current-thread runtime keeps every task on it).
#[cfg(test)]
pub(crate) fn captured_logs(
    level: tracing::Level,
) -> (CapturedLogs, tracing::subscriber::DefaultGuard) {
    let logs = CapturedLogs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .without_time()
        .with_target(false)
        .with_level(false)
        .with_ansi(false)
        .with_writer(logs.clone())
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

#[cfg(test)]
#[derive(Clone, Default)]
pub(crate) struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(test)]
impl CapturedLogs {
    pub(crate) fn text(&self) -> String {
        self.0
            .lock()
            .map(|b| String::from_utf8_lossy(&b).to_string())
            .unwrap_or_default()
    }
}

#[cfg(test)]
impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod runner_tests {
    use super::*;

    fn sh() -> PathBuf {
        PathBuf::from("/bin/sh")
    }

    #[tokio::test]
    async fn a_tool_gives_its_stdout_and_reads_its_input() {
        let out = run(
            &sh(),
            &["-c", "cat; echo done"],
            Some(b"in\n"),
            Duration::from_secs(20),
        )
        .await
        .expect("runs");
        assert_eq!(out, "in\ndone\n");
    }

    #[tokio::test]
    async fn a_failing_tool_shows_its_last_stderr_lines() {
        let e = run(
            &sh(),
            &["-c", "echo bad >&2; exit 3"],
            None,
            Duration::from_secs(20),
        )
        .await
        .expect_err("fails");
        assert!(
            e.to_string().contains("failed (exit status: 3): bad"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_tool_past_its_timeout_is_killed_with_what_it_started() {
        let started = std::time::Instant::now();
        // The background sleep keeps stdout open: only killing the group ends it.
        let e = run(
            &sh(),
            &["-c", "sleep 30 & sleep 30"],
            None,
            Duration::from_millis(300),
        )
        .await
        .expect_err("times out");
        assert!(e.to_string().contains("did not finish within"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn the_sync_runner_works_on_a_runtime_thread() {
        let out = run_tool(&sh(), &["-c", "echo hi"], Duration::from_secs(20)).expect("runs");
        assert_eq!(out, "hi\n");
    }

    #[test]
    fn the_sync_runner_works_outside_a_runtime() {
        let out = run_tool(&sh(), &["-c", "echo hi"], Duration::from_secs(20)).expect("runs");
        assert_eq!(out, "hi\n");
    }
}
