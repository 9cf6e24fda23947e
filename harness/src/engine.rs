//! The engine: bring scenarios up on a substrate, run their checks, tear them
//! down, and report. The CLI and the test binary are thin layers over it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use tracing::Instrument;

use crate::check;
use crate::hazard::{self, SharedState};
use crate::pki::{KeyAlgorithm, KeyPool};
use crate::probe::{self, HttpRequest, Identity, Observation, TlsOptions, Trust};
use crate::report::{
    CheckReport, MutationOutcome, MutationReport, Phases, Report, ResourceState, ScenarioOutcome,
    ScenarioReport,
};
use crate::scenario::{Check, Probe, Scenario, Target, steps};
use crate::substrate::SubstrateError;
use crate::substrate::cluster::{
    self, Cluster, ClusterDeployment, ClusterError, ClusterOptions, Mode,
};
use crate::substrate::identities::{self, Probes};
use crate::substrate::local::nginx::{NginxBinary, find_program};
use crate::substrate::local::nic::routing::Routing;
use crate::substrate::local::{
    Local, LocalDeployment, Prepared, certmanager, renders_alike, unexpected_states,
};
use crate::substrate::rundir::{self, RunDir};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Environment(String),
    #[error("cannot create the run folder: {0}")]
    RunDir(std::io::Error),
    #[error("{0}")]
    Cluster(#[from] ClusterError),
}

impl From<&EngineError> for crate::error::Error {
    fn from(e: &EngineError) -> Self {
        use crate::error::Error;
        match e {
            EngineError::Environment(m) => Error::Environment(m.clone()),
            EngineError::RunDir(_) => Error::Substrate(e.to_string()),
            EngineError::Cluster(c) => Error::from(c),
        }
    }
}

/// Where a scenario is up.
pub enum Deployment {
    Local(Box<LocalDeployment>),
    Cluster(Box<ClusterDeployment>),
}

impl Deployment {
    /// Where a probe connects for `target`.
    pub(crate) fn address(&self, target: &Target) -> Result<SocketAddr, String> {
        match self {
            Deployment::Local(d) => d.address(target),
            Deployment::Cluster(d) => d.address(target),
        }
    }

    pub(crate) fn scenario(&self) -> &Scenario {
        match self {
            Deployment::Local(d) => &d.prepared.scenario,
            Deployment::Cluster(d) => &d.scenario,
        }
    }

    /// Resource states as the controller reports them.
    pub(crate) fn states(&self) -> &[ResourceState] {
        match self {
            Deployment::Local(d) => &d.nic.states,
            Deployment::Cluster(d) => &d.states,
        }
    }

    /// Hosts served, and the resource (`Kind ns/name`) serving each.
    pub(crate) fn hosts(&self) -> &BTreeMap<String, String> {
        match self {
            Deployment::Local(d) => &d.nic.hosts,
            Deployment::Cluster(d) => &d.hosts,
        }
    }

    /// Pods that could not start, and why (the local substrate decides this
    /// itself; a cluster's Deployments are waited for instead).
    pub(crate) fn not_started(&self) -> Vec<String> {
        match self {
            Deployment::Local(d) => d
                .pods
                .not_started
                .iter()
                .map(|n| format!("{}: {}", n.deployment, n.reason))
                .collect(),
            Deployment::Cluster(_) => Vec::new(),
        }
    }

    /// nginx's latest error log lines (local; on a cluster they are in the artifacts).
    /// nginx's error-log lines of one request: those naming the address the
    /// probe connected from (`client: 127.1.0.7,`).
    pub(crate) fn log_of(&self, client: Option<&str>) -> Option<String> {
        match self {
            Deployment::Local(d) => {
                // openssl cannot choose its address: its checks share 127.0.0.1.
                let (ip, whose) = match client {
                    Some(ip) => (ip, "this request"),
                    None => (
                        "127.0.0.1",
                        "the openssl checks of this scenario (they share 127.0.0.1)",
                    ),
                };
                let lines = d.error_log_lines_of(ip, 8);
                Some(if lines.is_empty() {
                    format!("(nothing logged about {whose}, from {ip})")
                } else if client.is_none() {
                    format!("(lines about {whose})\n{lines}")
                } else {
                    lines
                })
            }
            Deployment::Cluster(_) => None,
        }
    }

    /// Which pods a request reached (local): each mock logs NIC's X-Real-IP,
    /// and each request comes from an address of its own. `None` where the
    /// request cannot be told apart (openssl, a cluster).
    pub(crate) fn reached_by(&self, client: Option<&str>) -> Option<String> {
        match (self, client) {
            (Deployment::Local(d), Some(ip)) => {
                let requests = d.pods.requests_from(ip);
                Some(if requests.is_empty() {
                    "no pod: nginx answered without proxying it".to_string()
                } else {
                    requests.join("; ")
                })
            }
            _ => None,
        }
    }

    /// A loopback address of its own for each request to the local nginx,
    /// so that its log lines are this request's only.
    fn source_for(&self, addr: std::net::SocketAddr) -> Option<std::net::IpAddr> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        if !matches!(self, Deployment::Local(_)) || !addr.ip().is_loopback() || !addr.is_ipv4() {
            return None;
        }
        // 127.1.0.1 onwards: never 127.0.0.1, which other programs use.
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 0x00fe_fffe + 1;
        Some(std::net::IpAddr::V4(std::net::Ipv4Addr::from(
            0x7f01_0000 + n,
        )))
    }

    pub(crate) fn phases(&self) -> Phases {
        match self {
            Deployment::Local(d) => d.phases.clone(),
            Deployment::Cluster(d) => d.phases.clone(),
        }
    }

    /// The configuration nginx serves the scenario with, as routes.
    pub(crate) fn routing(&self) -> Routing {
        match self {
            Deployment::Local(d) => {
                Routing::parse(d.nic.conf_files.iter().map(|(_, t)| t.as_str()))
            }
            Deployment::Cluster(d) => Routing::parse(d.nginx_conf.as_deref()),
        }
    }
}

/// A scenario that is up, with its identities resolved.
pub struct Live {
    pub deployment: Deployment,
    pub probes: Probes,
    pub setup_ms: u64,
    pub phases: Phases,
    /// The scenario's private folder (identities, work files).
    pub dir: PathBuf,
    /// Groups of checks that share state, found in the served configuration.
    pub shared: Vec<SharedState>,
    /// Each group runs once, in order; its reports are kept for every caller.
    group_runs: Vec<tokio::sync::OnceCell<Vec<CheckReport>>>,
}

impl Live {
    fn new(
        deployment: Deployment,
        probes: Probes,
        setup_ms: u64,
        phases: Phases,
        dir: PathBuf,
    ) -> Live {
        let shared = hazard::find(deployment.scenario(), &deployment.routing());
        let group_runs = shared
            .iter()
            .map(|_| tokio::sync::OnceCell::new())
            .collect();
        Live {
            deployment,
            probes,
            setup_ms,
            phases,
            dir,
            shared,
            group_runs,
        }
    }

    /// The group `check` belongs to, if any.
    fn group_of(&self, check: &str) -> Option<usize> {
        self.shared
            .iter()
            .position(|g| g.checks.iter().any(|c| c == check))
    }

    /// What the controller reports for the resource serving a check's host, for
    /// the evidence of a failed check.
    pub(crate) fn controller_view(&self, check: &Check) -> Option<String> {
        let (_, _, target) = self.inputs(check);
        let Target::Ingress { host, .. } = target else {
            return None;
        };
        let Some(owner) = self.deployment.hosts().get(host) else {
            return Some(format!(
                "no resource serves host {host}; NIC's default server answers"
            ));
        };
        let state = self.deployment.states().iter().find(|s| &s.id() == owner)?;
        Some(format!("{owner}: {} ({})", state.state, state.message))
    }

    /// A check's identity, trust and target, resolved for this scenario.
    pub(crate) fn inputs<'a>(
        &'a self,
        check: &'a Check,
    ) -> (Option<&'a Identity>, Option<&'a Trust>, &'a Target) {
        let identity = check
            .identity
            .as_ref()
            .and_then(|n| self.probes.identities.get(n));
        let trust = check.trust.as_ref().and_then(|n| self.probes.trust.get(n));
        let target = match &check.probe {
            Probe::Http { url, .. } => &url.target,
            Probe::OpenSsl { target, .. } => target,
        };
        (identity, trust, target)
    }
}

/// Whether an engine cleans up after runs that were killed.
enum Sweep {
    Stale,
    Nothing,
}

/// Where scenarios run.
pub enum Substrate {
    Local(Local),
    Cluster(Box<ClusterSubstrate>),
}

pub struct ClusterSubstrate {
    pub cluster: Cluster,
    /// The NIC version scenarios' `requires.nic` is compared with.
    pub nic_version: String,
    /// A scenario failed: the run's end collects cluster-wide logs.
    failed: AtomicBool,
}

pub struct Engine {
    pub substrate: Substrate,
    pub openssl: PathBuf,
    pub keys: KeyPool,
    run_dir: RunDir,
    next: AtomicUsize,
    /// What the stale-run sweep removed, for the log.
    pub swept: Vec<String>,
    /// How long bringing the substrate itself up took (cluster, installs, image).
    pub setup: Phases,
    /// Which checks `run` reports (all by default).
    pub selection: crate::selection::Selection,
    /// Per scenario, its certificates issued and steps run once (local), for
    /// the mutations that change only what NIC reads.
    prepared: std::sync::Mutex<BTreeMap<String, PreparedCell>>,
}

/// A scenario prepared once, or why it could not be.
type PreparedCell = Arc<tokio::sync::OnceCell<Result<Arc<Prepared>, String>>>;

impl Engine {
    /// An engine on the local substrate: finds nginx and openssl, cleans up after
    /// runs that were killed, creates this run's private folder.
    ///
    /// # Errors
    /// When nginx or openssl is missing, or the run folder cannot be made.
    pub fn local() -> Result<Engine, EngineError> {
        Engine::local_with(Sweep::Stale)
    }

    /// The same, sweeping nothing: for `plan`, which starts nothing and so
    /// must change nothing either.
    pub(crate) fn local_for_plan() -> Result<Engine, EngineError> {
        Engine::local_with(Sweep::Nothing)
    }

    fn local_with(sweep: Sweep) -> Result<Engine, EngineError> {
        let swept = match sweep {
            Sweep::Stale => rundir::sweep_stale(),
            Sweep::Nothing => Vec::new(),
        };
        let nginx = NginxBinary::find().map_err(EngineError::Environment)?;
        let openssl = find_openssl()?;
        let run_dir = RunDir::create().map_err(EngineError::RunDir)?;
        let keys = KeyPool::new();
        Ok(Engine {
            substrate: Substrate::Local(Local {
                nginx,
                openssl: openssl.clone(),
                keys: keys.clone(),
            }),
            openssl,
            keys,
            run_dir,
            next: AtomicUsize::new(1),
            swept,
            setup: Phases::default(),
            selection: crate::selection::Selection::default(),
            prepared: std::sync::Mutex::default(),
        })
    }

    /// An engine on a cluster: runs the preflight first (nothing is done
    /// when anything is missing, and all of it is listed), then ensures the
    /// kind cluster, installs cert-manager and NIC and loads our image
    /// (kind), or reaches the NIC the preflight found (existing).
    /// `scenarios` are those the run will bring up (an existing cluster's NIC
    /// must watch their namespaces); `binary` is the `mtls-e2e` executable
    /// the image is built from. Each phase is a span (`preflight`, `cluster`,
    /// `install`, `image`) its `tracing` events are in.
    ///
    /// # Errors
    /// When the preflight finds anything missing, or a cluster step fails or times out.
    pub async fn cluster(
        options: ClusterOptions,
        scenarios: &[&Scenario],
        binary: &Path,
    ) -> Result<Engine, EngineError> {
        let ready = cluster::preflight::run(&options, scenarios)
            .instrument(tracing::info_span!("preflight"))
            .await?;
        let openssl = ready.openssl.clone();
        let existing_nic = ready.nic_version.clone();
        // How the image is made is decided before any cluster exists: a
        // machine that cannot make it stops here, not after `kind create`.
        let image_source = if options.is_kind() {
            let forced = std::env::var("MTLS_E2E_IMAGE_FROM").is_ok_and(|v| v == "dockerfile");
            Some(cluster::image::decide(forced)?)
        } else {
            None
        };
        let run_dir = RunDir::create().map_err(EngineError::RunDir)?;
        let swept = rundir::sweep_stale();
        let mut setup = Phases::default();
        let mut clock = Instant::now();
        let cluster = Cluster::connect(options, ready)
            .instrument(tracing::info_span!("cluster"))
            .await?;
        setup.record("cluster", &mut clock);
        let prepared = async {
            let nic_version = match &cluster.options.mode {
                Mode::Kind { name, .. } => {
                    let image = cluster.options.image.clone();
                    let (name, binary) = (name.clone(), binary.to_path_buf());
                    let source = image_source.unwrap_or(cluster::image::ImageSource::HostBinary);
                    // Its own thread: the span goes along by hand.
                    let span = tracing::info_span!("image", what = image.as_str());
                    let load = tokio::task::spawn_blocking(move || {
                        let _entered = span.enter();
                        match source {
                            cluster::image::ImageSource::HostBinary => tracing::info!(
                                "building image {image} from {} (nothing is pulled)",
                                binary.display()
                            ),
                            cluster::image::ImageSource::Dockerfile => tracing::info!(
                                "building image {image} with docker build from the repository's Dockerfile (this binary cannot run in the kind node)"
                            ),
                        }
                        cluster::image::build_with(source, &image, &binary)?;
                        tracing::info!("loading {image} into kind cluster {name}");
                        cluster::kind::load_image(&name, &image)
                    });
                    let install = cluster::install::install(&cluster)
                        .instrument(tracing::info_span!("install"));
                    let (installed, loaded) = tokio::join!(install, load);
                    installed?;
                    loaded
                        .map_err(|e| ClusterError::Failed(format!("building the image: {e}")))??;
                    cluster
                        .options
                        .nic
                        .clone()
                        .unwrap_or_else(|| cluster::install::DEFAULT_NIC.to_string())
                }
                Mode::Existing { .. } => existing_nic.ok_or_else(|| {
                    ClusterError::Failed("the preflight found no NIC version".into())
                })?,
            };
            Ok::<String, ClusterError>(nic_version)
        }
        .await;
        let nic_version = match prepared {
            Ok(v) => v,
            Err(e) => {
                tracing::info!("setting the cluster up failed: {e}");
                if let Some(dir) = cluster::artifacts::collect_cluster(&cluster).await {
                    tracing::info!("cluster logs: {}", dir.display());
                }
                if let Err(f) = cluster.finish() {
                    tracing::warn!("could not clean up: {f}");
                }
                return Err(e.into());
            }
        };
        setup.record("installs and image", &mut clock);
        let keys = KeyPool::new();
        Ok(Engine {
            substrate: Substrate::Cluster(Box::new(ClusterSubstrate {
                cluster,
                nic_version,
                failed: AtomicBool::new(false),
            })),
            openssl,
            keys,
            run_dir,
            next: AtomicUsize::new(1),
            swept,
            setup,
            selection: crate::selection::Selection::default(),
            prepared: std::sync::Mutex::default(),
        })
    }

    /// The substrate's name, as the report gives it.
    pub(crate) fn substrate_name(&self) -> &'static str {
        match &self.substrate {
            Substrate::Local(_) => "local",
            Substrate::Cluster(c) => c.cluster.options.label(),
        }
    }

    /// One line about what runs the scenarios.
    pub(crate) fn describe(&self) -> String {
        match &self.substrate {
            Substrate::Local(l) => format!(
                "local substrate (nginx {}, {})",
                l.nginx.version_text(),
                self.openssl.display()
            ),
            Substrate::Cluster(c) => {
                let context = c.cluster.context.as_deref().unwrap_or("current context");
                format!(
                    "{} substrate ({context}, NGINX Ingress Controller {})",
                    c.cluster.options.label(),
                    c.nic_version
                )
            }
        }
    }

    /// Why a scenario is skipped here, if it is: it needs a newer NIC than the
    /// cluster runs. (The local substrate renders as NIC 5.5 does.)
    pub(crate) fn skip_reason(&self, scenario: &Scenario) -> Option<String> {
        if let Some(why) = scenario.substrate_skip(self.substrate_name()) {
            return Some(why);
        }
        let Substrate::Cluster(c) = &self.substrate else {
            return None;
        };
        cluster::skip_reason(scenario, &c.nic_version)
    }

    /// Finish the run: on a cluster, collect cluster-wide logs if anything
    /// failed, and delete the kind cluster if this run created it (unless --keep).
    pub async fn close(self) {
        if let Substrate::Cluster(c) = &self.substrate {
            if c.failed.load(Ordering::Relaxed)
                && let Some(dir) = cluster::artifacts::collect_cluster(&c.cluster).await
            {
                tracing::info!("cluster logs: {}", dir.display());
            }
            let finished = tracing::info_span!("teardown").in_scope(|| c.cluster.finish());
            if let Err(e) = finished {
                tracing::warn!("could not clean up the cluster: {e}");
            }
            c.cluster.stop_forwards();
        }
    }

    /// This run's private folder (removed when the engine is dropped).
    pub(crate) fn run_path(&self) -> &std::path::Path {
        self.run_dir.path()
    }

    /// The local substrate, for what only it can do (plans, mutations).
    pub fn local_substrate(&self) -> Option<&Local> {
        match &self.substrate {
            Substrate::Local(l) => Some(l),
            Substrate::Cluster(_) => None,
        }
    }

    /// Start generating every RSA key these scenarios will need, on all cores,
    /// so that key generation stays off the critical path.
    pub fn prefetch_keys(&self, scenarios: &[&Scenario]) {
        let mut counts: BTreeMap<String, (KeyAlgorithm, usize)> = BTreeMap::new();
        // On a cluster cert-manager makes the certificates' keys; the steps' are ours.
        let local = self.local_substrate().is_some();
        for s in scenarios {
            let issued = if local {
                certmanager::keys_needed(&s.objects)
            } else {
                Vec::new()
            };
            for alg in issued.into_iter().chain(steps::rsa_keys_needed(s)) {
                counts.entry(alg.describe()).or_insert((alg, 0)).1 += 1;
            }
        }
        for (alg, n) in counts.into_values() {
            if matches!(alg, KeyAlgorithm::Rsa(_)) {
                self.keys.prefetch(alg, n);
            }
        }
    }

    /// A private folder for one scenario.
    ///
    /// # Errors
    /// When the folder cannot be created (it is never reused).
    pub fn scenario_dir(&self, scenario: &Scenario) -> std::io::Result<PathBuf> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let short: String = scenario
            .name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(24)
            .collect();
        self.run_dir.subdir(&format!("{n:02}-{short}"))
    }

    /// Bring a scenario up: the objects applied, cert-manager's certificates
    /// issued, the tutorial's steps run, the controller's states reached, and
    /// the identities the checks use resolved.
    ///
    /// # Errors
    /// When the scenario is invalid for the substrate, or bringing it up fails.
    pub async fn up(&self, scenario: &Scenario, strict: bool) -> Result<Live, SubstrateError> {
        let started = Instant::now();
        let dir = self
            .scenario_dir(scenario)
            .map_err(|e| SubstrateError::Failed(e.to_string()))?;
        let (deployment, secrets, workdir) = match &self.substrate {
            Substrate::Local(local) => {
                let prepared = local.prepare(scenario, &dir).await?;
                let workdir = prepared.workdir.clone();
                let secrets = prepared.secrets.clone();
                (
                    Deployment::Local(Box::new(local.start(prepared, &dir, strict).await?)),
                    secrets,
                    workdir,
                )
            }
            Substrate::Cluster(c) => {
                let workdir = dir.join("work");
                std::fs::create_dir_all(&workdir)
                    .map_err(|e| SubstrateError::Failed(e.to_string()))?;
                let deployment =
                    cluster::apply::up(&c.cluster, scenario, &workdir, &self.keys, &self.openssl)
                        .await?;
                let secrets = deployment.probe_secrets.clone();
                (Deployment::Cluster(Box::new(deployment)), secrets, workdir)
            }
        };
        self.with_identities(deployment, scenario, &secrets, &workdir, dir, started)
            .await
    }

    /// A deployment made live: the identities its checks present resolved
    /// into `dir/probes` (taken down again when that fails).
    async fn with_identities(
        &self,
        deployment: Deployment,
        scenario: &Scenario,
        secrets: &BTreeMap<crate::manifest::NamespacedName, crate::scenario::steps::SecretData>,
        workdir: &Path,
        dir: PathBuf,
        started: Instant,
    ) -> Result<Live, SubstrateError> {
        let mut clock = Instant::now();
        let probe_dir = dir.join("probes");
        let resolved = std::fs::create_dir_all(&probe_dir)
            .map_err(|e| SubstrateError::Failed(e.to_string()))
            .and_then(|()| {
                identities::resolve(scenario, secrets, workdir, &probe_dir).map_err(Into::into)
            });
        let probes = match resolved {
            Ok(p) => p,
            Err(e) => {
                self.finish(deployment).await;
                return Err(e);
            }
        };
        let mut phases = deployment.phases();
        phases.record("identities", &mut clock);
        Ok(Live::new(
            deployment,
            probes,
            crate::probe::millis(started.elapsed()),
            phases,
            dir,
        ))
    }

    /// Take a scenario down: stop its processes (local), or delete its
    /// namespaces and cluster-scoped objects (cluster, unless --keep).
    pub async fn finish(&self, deployment: Deployment) {
        match deployment {
            Deployment::Local(d) => d.stop().await,
            Deployment::Cluster(mut d) => {
                d.stop();
                if let Substrate::Cluster(c) = &self.substrate {
                    self.take_down(&c.cluster, &d.scenario).await;
                }
            }
        }
    }

    async fn take_down(&self, cluster: &Cluster, scenario: &Scenario) {
        if cluster.options.keep {
            return;
        }
        let down = cluster::apply::down(cluster, scenario)
            .instrument(tracing::info_span!("teardown"))
            .await;
        if let Err(e) = down {
            tracing::warn!("{}: could not delete its objects: {e}", scenario.name);
        }
    }

    /// Run one check against a live scenario. A check that shares state with
    /// others (see `hazard`) gets the verdict it had when its whole group ran,
    /// one check at a time in the scenario's order; the group runs once.
    pub async fn check(&self, live: &Live, check: &Check) -> CheckReport {
        let Some(group) = live.group_of(&check.name) else {
            return self.check_alone(live, check).await;
        };
        let reports = live.group_runs[group]
            .get_or_init(|| async {
                let mut reports = Vec::new();
                for name in &live.shared[group].checks {
                    if let Some(member) = live.deployment.scenario().check(name) {
                        let mut report = self.check_alone(live, member).await;
                        report.shared_state = Some(live.shared[group].explain(name));
                        reports.push(report);
                    }
                }
                reports
            })
            .await;
        match reports.iter().find(|r| r.name == check.name) {
            Some(r) => r.clone(),
            None => self.check_alone(live, check).await,
        }
    }

    /// Run one check now, its `after` checks' requests first.
    async fn check_alone(&self, live: &Live, check: &Check) -> CheckReport {
        let mut retries = Vec::new();
        for name in &check.after {
            if let Some(first) = live.deployment.scenario().check(name) {
                retries.extend(self.observe(live, first).await.1);
            }
        }
        let (observation, own) = self.observe(live, check).await;
        retries.extend(own);
        let failures = check::evaluate(&check.expect, check.trust.as_deref(), &observation);
        let failed = !failures.is_empty();
        let nginx_log = failed
            .then(|| live.deployment.log_of(observation.client.as_deref()))
            .flatten();
        let reached = failed
            .then(|| live.deployment.reached_by(observation.client.as_deref()))
            .flatten();
        CheckReport {
            name: check.name.clone(),
            passed: !failed,
            why: check.why.clone(),
            origin: check.origin.to_string(),
            expected: check.expect.clone(),
            failures,
            controller: failed.then(|| live.controller_view(check)).flatten(),
            observation,
            nginx_log,
            reached,
            shared_state: None,
            retries,
        }
    }

    /// Probe as `check` says and record what was seen; on a cluster a
    /// connection-level failure is tried again (`retry`), each retry recorded.
    async fn observe(&self, live: &Live, check: &Check) -> (Observation, Vec<crate::retry::Retry>) {
        let tries = match &self.substrate {
            Substrate::Local(_) => crate::retry::LOCAL_TRIES,
            Substrate::Cluster(_) => crate::retry::CLUSTER_TRIES,
        };
        let mut retries = Vec::new();
        let mut attempt = 1;
        loop {
            let seen = self.observe_once(live, check).await;
            tracing::debug!(
                check = %check.name,
                attempt,
                target = %seen.target,
                client = ?seen.client,
                status = ?seen.response.as_ref().map(|r| r.status),
                alert = ?seen.alert,
                error = ?seen.error,
                "probed"
            );
            let passes = check::evaluate(&check.expect, check.trust.as_deref(), &seen).is_empty();
            if !crate::retry::try_again(&seen, passes, attempt, tries) {
                return (seen, retries);
            }
            retries.extend(crate::retry::record(&check.name, attempt, &seen));
            // The next try, not a synchronisation: the tries are bounded.
            tokio::time::sleep(crate::retry::PAUSE).await;
            attempt += 1;
        }
    }

    async fn observe_once(&self, live: &Live, check: &Check) -> Observation {
        let (identity, trust, target) = live.inputs(check);
        match live.deployment.address(target) {
            Err(e) => Observation {
                target: describe(target),
                error: Some(e),
                ..Observation::default()
            },
            Ok(addr) => match &check.probe {
                Probe::Http {
                    method,
                    url,
                    json,
                    headers,
                } => {
                    let body = json
                        .as_ref()
                        .map(|j| Bytes::from(serde_json::to_vec(j).unwrap_or_default()));
                    let tls = url.https.then(|| TlsOptions {
                        server_name: url.target.host().to_string(),
                        identity,
                        trust,
                    });
                    let request = HttpRequest {
                        addr,
                        tls,
                        method: method.as_str(),
                        host: url.target.host().to_string(),
                        path: url.path.clone(),
                        headers: headers.clone(),
                        body,
                        display: url.display(),
                        source: live.deployment.source_for(addr),
                    };
                    probe::http(&request).await
                }
                Probe::OpenSsl { servername, .. } => {
                    let send = check.openssl_send().unwrap_or_default();
                    probe::openssl::s_client(
                        &self.openssl,
                        addr,
                        servername,
                        identity,
                        trust,
                        &send,
                    )
                    .await
                }
            },
        }
    }

    /// Run `checks` of a live scenario concurrently, in scenario order.
    pub(crate) async fn checks(&self, live: &Live, checks: &[&Check]) -> Vec<CheckReport> {
        let mut reports = Vec::with_capacity(checks.len());
        // Probes are independent connections; running them together keeps a run short.
        let futures: Vec<_> = checks.iter().map(|c| self.check(live, c)).collect();
        for report in join_all(futures).await {
            reports.push(report);
        }
        reports
    }

    /// Bring a scenario up, run all its checks, tear it down. On a cluster, a
    /// failure leaves its evidence in the artifacts folder first.
    pub(crate) async fn run_scenario(&self, scenario: &Scenario) -> ScenarioReport {
        let mut report = ScenarioReport {
            name: scenario.name.clone(),
            dir: scenario.dir.display().to_string(),
            outcome: ScenarioOutcome::Ran,
            setup_ms: 0,
            setup_phases: Phases::default(),
            resources: Vec::new(),
            not_started: Vec::new(),
            checks: Vec::new(),
            artifacts: None,
            mutations: Vec::new(),
            mutation_score: None,
        };
        if let Some(reason) = self.skip_reason(scenario) {
            report.outcome = ScenarioOutcome::Skipped(reason);
            return report;
        }
        let up = self
            .up(scenario, true)
            .instrument(tracing::info_span!("apply"))
            .await;
        match up {
            Err(e) => {
                report.outcome = ScenarioOutcome::SetupFailed {
                    error: e.to_string(),
                    exit: crate::error::Error::from(&e).exit(),
                };
                if let Substrate::Cluster(c) = &self.substrate {
                    report.artifacts = Some(self.collect(c, scenario, &e.to_string()).await);
                    self.take_down(&c.cluster, scenario).await;
                }
            }
            Ok(live) => {
                report.setup_ms = live.setup_ms;
                report.setup_phases = live.phases.clone();
                report.resources = live.deployment.states().to_vec();
                report.not_started = live.deployment.not_started();
                let checks: Vec<&Check> = scenario
                    .checks
                    .iter()
                    .filter(|c| self.selection.includes(&scenario.name, &c.name))
                    .collect();
                report.checks = self
                    .checks(&live, &checks)
                    .instrument(tracing::info_span!("probe"))
                    .await;
                if let Substrate::Cluster(c) = &self.substrate {
                    let failed: Vec<&str> = report
                        .checks
                        .iter()
                        .filter(|r| !r.passed)
                        .map(|r| r.name.as_str())
                        .collect();
                    if !failed.is_empty() {
                        let why = format!("failed checks: {}", failed.join(", "));
                        report.artifacts = Some(self.collect(c, scenario, &why).await);
                    }
                }
                self.finish(live.deployment).await;
            }
        }
        report
    }

    async fn collect(&self, c: &ClusterSubstrate, scenario: &Scenario, why: &str) -> String {
        c.failed.store(true, Ordering::Relaxed);
        let dir = cluster::artifacts::collect(&c.cluster, scenario, why).await;
        tracing::info!("{}: artifacts in {}", scenario.name, dir.display());
        dir.display().to_string()
    }

    /// Run every scenario concurrently.
    pub(crate) async fn run(
        &self,
        scenarios: &[Scenario],
        on_done: impl Fn(&ScenarioReport),
    ) -> Report {
        let started = Instant::now();
        self.prefetch_keys(&scenarios.iter().collect::<Vec<_>>());
        // A span per scenario: with -v every log line says which scenario it is about.
        let futures: Vec<_> = scenarios
            .iter()
            .map(|s| {
                self.run_scenario(s)
                    .instrument(tracing::info_span!("scenario", name = %s.name))
            })
            .collect();
        let mut reports = Vec::new();
        for r in join_all(futures).await {
            on_done(&r);
            reports.push(r);
        }
        Report::new(
            self.substrate_name(),
            reports,
            crate::probe::millis(started.elapsed()),
        )
    }

    /// Run the mutations of every scenario that ran (`baseline`), a few at a
    /// time, as results in scenario order: the hand-written ones, then the
    /// built-in ones of scenarios that came up.
    pub(crate) async fn mutations(
        &self,
        scenarios: &[Scenario],
        baseline: &Report,
        kinds: MutationKinds,
    ) -> Vec<(String, MutationReport)> {
        type Job<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = MutationReport> + 'a>>;
        // Bring-ups are CPU-bound (keys, TLS, nginx): one per core; twice as
        // many measured no faster on two cores.
        let limit = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let permits = tokio::sync::Semaphore::new(limit);
        let permits = &permits;
        // Each job's scenario, by name, in the order of `jobs`.
        let mut names = Vec::new();
        let mut jobs: Vec<Job<'_>> = Vec::new();
        let mut brought_up = Vec::new();
        for s in scenarios {
            let Some(ran) = baseline.scenarios.iter().find(|r| r.name == s.name) else {
                continue;
            };
            if matches!(ran.outcome, ScenarioOutcome::Skipped(_)) {
                continue;
            }
            if kinds.declared {
                for m in &s.spec.mutations {
                    names.push(s.name.clone());
                    brought_up.push(s);
                    jobs.push(Box::pin(async move {
                        let _permit = permits.acquire().await;
                        self.declared_mutation(s, m).await
                    }));
                }
            }
            if kinds.builtin && ran.outcome == ScenarioOutcome::Ran {
                let passed: std::sync::Arc<std::collections::BTreeSet<String>> =
                    std::sync::Arc::new(
                        ran.checks
                            .iter()
                            .filter(|c| c.passed)
                            .map(|c| c.name.clone())
                            .collect(),
                    );
                // One preparation for the scenario, one per mutation of what
                // cert-manager or the steps read (see `mutant`).
                brought_up.push(s);
                for m in &s.builtin {
                    if s.builtin_exception(&m.name).is_none() && !read_by_nic_only(&m.patch.object)
                    {
                        brought_up.push(s);
                    }
                    names.push(s.name.clone());
                    let passed = passed.clone();
                    jobs.push(Box::pin(async move {
                        let _permit = permits.acquire().await;
                        self.builtin_mutation(s, m, &passed).await
                    }));
                }
            }
        }
        self.prefetch_keys(&brought_up);
        names.into_iter().zip(join_all(jobs).await).collect()
    }

    /// A hand-written mutation: killed when every check it names is red.
    async fn declared_mutation(
        &self,
        s: &Scenario,
        m: &crate::scenario::spec::MutationSpec,
    ) -> MutationReport {
        let mut report = MutationReport {
            name: m.name.clone(),
            why: m.why.clone(),
            object: m.patch.object.clone(),
            patch: m.patch.merge.clone(),
            breaks: m.breaks.clone(),
            killed: false,
            survivors: Vec::new(),
            setup_error: None,
            checks: Vec::new(),
            builtin: false,
            outcome: MutationOutcome::Survived,
            killed_by: Vec::new(),
            not_applied: None,
        };
        match self.run_mutation(s, m).await {
            Err(e) => {
                report.setup_error = Some(e.to_string());
                report.outcome = MutationOutcome::SetupFailed;
            }
            Ok(checks) => {
                report.survivors = checks
                    .iter()
                    .filter(|c| c.passed)
                    .map(|c| c.name.clone())
                    .collect();
                report.killed = report.survivors.is_empty();
                if report.killed {
                    report.outcome = MutationOutcome::Killed;
                    report.killed_by.clone_from(&report.breaks);
                }
                report.checks = checks;
            }
        }
        report
    }

    /// A built-in mutation (see `scenario::operators`): killed when a check
    /// that passed without it (`passed`) turns red, or a resource's state is
    /// not the one the scenario declares (a plain run would stop on it). NIC
    /// rendering the same configuration makes it equivalent; a scenario that
    /// does not come up with it, and shows no changed state, is not a kill.
    pub async fn builtin_mutation(
        &self,
        scenario: &Scenario,
        mutation: &crate::scenario::spec::MutationSpec,
        passed: &std::collections::BTreeSet<String>,
    ) -> MutationReport {
        let mut report = MutationReport {
            name: mutation.name.clone(),
            why: mutation.why.clone(),
            object: mutation.patch.object.clone(),
            patch: mutation.patch.merge.clone(),
            breaks: Vec::new(),
            killed: false,
            survivors: Vec::new(),
            setup_error: None,
            checks: Vec::new(),
            builtin: true,
            outcome: MutationOutcome::Survived,
            killed_by: Vec::new(),
            not_applied: None,
        };
        if let Some(skip) = scenario.builtin_exception(&mutation.name) {
            report.outcome = MutationOutcome::Excepted;
            report.not_applied = Some(skip.why.split_whitespace().collect::<Vec<_>>().join(" "));
            return report;
        }
        let states = match self.mutant(scenario, mutation).await {
            Mutant::Equivalent => {
                report.outcome = MutationOutcome::Equivalent;
                report.not_applied = Some(crate::substrate::local::EQUIVALENT.into());
                return report;
            }
            Mutant::Failed { error, states } => {
                report.setup_error = Some(error);
                states
            }
            Mutant::Ran { checks, states } => {
                report.killed_by = checks
                    .iter()
                    .filter(|c| !c.passed && passed.contains(&c.name))
                    .map(|c| c.name.clone())
                    .collect();
                report.survivors = checks
                    .iter()
                    .filter(|c| c.passed)
                    .map(|c| c.name.clone())
                    .collect();
                report.checks = checks;
                states
            }
        };
        report.killed_by.extend(states);
        report.killed = !report.killed_by.is_empty();
        report.outcome = match (report.killed, &report.setup_error) {
            (true, _) => MutationOutcome::Killed,
            (false, Some(_)) => MutationOutcome::SetupFailed,
            (false, None) => MutationOutcome::Survived,
        };
        report
    }

    /// Bring `scenario` up with `mutation` applied, on the local substrate,
    /// and run its selected checks; unless NIC renders it exactly as the
    /// scenario (a Policy, `VirtualServer` or Ingress change that changes nothing).
    async fn mutant(
        &self,
        scenario: &Scenario,
        mutation: &crate::scenario::spec::MutationSpec,
    ) -> Mutant {
        let failed = |error: String| Mutant::Failed {
            error,
            states: Vec::new(),
        };
        let started = Instant::now();
        let Some(local) = self.local_substrate() else {
            return failed("mutations run on the local substrate only".into());
        };
        let mutated = match scenario.mutated(mutation) {
            Ok(m) => m,
            Err(e) => return failed(e.to_string()),
        };
        let dir = match self.scenario_dir(&mutated) {
            Ok(d) => d,
            Err(e) => return failed(e.to_string()),
        };
        let planned_dir = dir.join("nginx");
        let nic_only = crate::scenario::spec::parse_object_ref(&mutation.patch.object)
            .ok()
            .filter(|id| read_by_nic_only(&id.to_string()))
            .and_then(|id| mutated.object(&id).map(|o| (id, o.clone())));
        let prepared = match &nic_only {
            // Only NIC reads the changed object: the scenario's certificates,
            // steps and pods, prepared once, with that object swapped in.
            Some((id, changed)) => {
                let base = match self.prepared_once(local, scenario).await {
                    Ok(base) => base,
                    Err(e) => return failed(e),
                };
                let mut prepared = (*base).clone();
                prepared.scenario = mutated.clone();
                if let Some(slot) = prepared.objects.iter_mut().find(|o| &o.id == id) {
                    *slot = changed.clone();
                }
                // The same render is the same behaviour.
                let before = local.planned(&base, &base.objects, &planned_dir);
                let after = local.planned(&prepared, &prepared.objects, &planned_dir);
                if let (Ok(before), Ok(after)) = (&before, &after)
                    && renders_alike(before, after)
                {
                    return Mutant::Equivalent;
                }
                prepared
            }
            None => match local.prepare(&mutated, &dir).await {
                Ok(p) => p,
                Err(e) => return failed(e.to_string()),
            },
        };
        let planned = match local.planned(&prepared, &prepared.objects, &planned_dir) {
            Ok(out) => out,
            Err(e) => return failed(e.to_string()),
        };
        let planned_states = changed_states(&mutated, &planned.states);
        let (secrets, workdir) = (prepared.secrets.clone(), prepared.workdir.clone());
        let deployment = match local.start(prepared, &dir, false).await {
            Ok(d) => Deployment::Local(Box::new(d)),
            Err(e) => {
                return Mutant::Failed {
                    error: e.to_string(),
                    states: planned_states,
                };
            }
        };
        let live = match self
            .with_identities(deployment, &mutated, &secrets, &workdir, dir, started)
            .await
        {
            Ok(live) => live,
            Err(e) => {
                return Mutant::Failed {
                    error: e.to_string(),
                    states: planned_states,
                };
            }
        };
        let states = changed_states(&mutated, live.deployment.states());
        let checks: Vec<&Check> = mutated
            .checks
            .iter()
            .filter(|c| self.selection.includes(&scenario.name, &c.name))
            .collect();
        let checks = self.checks(&live, &checks).await;
        let dir = live.dir.clone();
        self.finish(live.deployment).await;
        // Removed now rather than with the run's folder: hundreds of mutants
        // leave thousands of files, and this overlaps with the other mutants.
        if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
            tracing::debug!("could not remove {}: {e}", dir.display());
        }
        Mutant::Ran { checks, states }
    }

    /// `scenario` prepared on the local substrate, once per engine.
    async fn prepared_once(
        &self,
        local: &Local,
        scenario: &Scenario,
    ) -> Result<Arc<Prepared>, String> {
        let cell = self
            .prepared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(scenario.name.clone())
            .or_default()
            .clone();
        cell.get_or_init(|| async {
            let dir = self.scenario_dir(scenario).map_err(|e| e.to_string())?;
            local
                .prepare(scenario, &dir)
                .await
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .await
        .clone()
    }

    /// Check that each mutation breaks the checks it names. Returns, per
    /// mutation, the named checks that still passed (an empty list is good).
    ///
    /// # Errors
    /// When the mutation's patch does not apply to the scenario.
    pub async fn run_mutation(
        &self,
        scenario: &Scenario,
        mutation: &crate::scenario::spec::MutationSpec,
    ) -> Result<Vec<CheckReport>, SubstrateError> {
        let mutated = scenario.mutated(mutation)?;
        let live = self.up(&mutated, false).await?;
        let checks: Vec<&Check> = mutated
            .checks
            .iter()
            .filter(|c| mutation.breaks.contains(&c.name))
            .collect();
        let reports = self.checks(&live, &checks).await;
        self.finish(live.deployment).await;
        Ok(reports)
    }
}

/// Whether `Kind ns/name` names an object only NIC reads.
fn read_by_nic_only(object: &str) -> bool {
    crate::scenario::spec::parse_object_ref(object)
        .is_ok_and(|id| crate::substrate::local::read_by_nic_only(id.kind))
}

/// Which mutations `run --mutations` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MutationKinds {
    /// The scenario's `mutations:`.
    pub declared: bool,
    /// The ones the operators derive from its objects.
    pub builtin: bool,
}

/// A scenario brought up with a mutation, or why not.
enum Mutant {
    /// NIC renders it as without the mutation.
    Equivalent,
    Ran {
        checks: Vec<CheckReport>,
        /// Resources not in the state the scenario declares.
        states: Vec<String>,
    },
    Failed {
        error: String,
        /// Resources not in the declared state, as NIC would render them.
        states: Vec<String>,
    },
}

/// `Kind ns/name is Valid, not the declared Warning`, for each resource whose
/// state the scenario does not expect.
fn changed_states(scenario: &Scenario, states: &[ResourceState]) -> Vec<String> {
    unexpected_states(scenario, states)
        .into_iter()
        .map(|s| {
            format!(
                "the state of {}: {}, not the declared {}",
                s.id(),
                s.state,
                scenario.expected_state(&s.id())
            )
        })
        .collect()
}

/// The command a person would type for `check` against a live scenario
/// (`curl --connect-to`, or `openssl s_client`), to reproduce it by hand.
pub(crate) fn by_hand(live: &Live, check: &Check) -> String {
    let (identity, trust, target) = live.inputs(check);
    let addr = match live.deployment.address(target) {
        Ok(a) => a,
        Err(e) => return format!("# {}: {e}", check.name),
    };
    let mut words: Vec<String> = Vec::new();
    match &check.probe {
        Probe::Http {
            method,
            url,
            json,
            headers,
        } => {
            words.extend(["curl".into(), "-sS".into(), "-i".into()]);
            words.push(format!(
                "--connect-to {}:{}:{}:{}",
                url.target.host(),
                url.target.port(),
                addr.ip(),
                addr.port()
            ));
            if let Some(id) = identity {
                words.push(format!(
                    "--cert {} --key {}",
                    id.cert_path.display(),
                    id.key_path.display()
                ));
            }
            match trust {
                Some(t) => words.push(format!("--cacert {}", t.path.display())),
                None if url.https => words.push("-k".into()),
                None => {}
            }
            if *method == crate::scenario::Method::Post {
                words.push("-X POST".into());
            }
            for (k, v) in headers {
                words.push(format!("-H '{k}: {v}'"));
            }
            if let Some(j) = json {
                words.push(format!("-H 'content-type: application/json' -d '{j}'"));
            }
            words.push(url.display());
        }
        Probe::OpenSsl { servername, .. } => {
            // What the probe sends, on stdin, escapes kept for printf.
            let escaped = check
                .openssl_send()
                .unwrap_or_default()
                .replace('\\', "\\\\")
                .replace('\r', "\\r")
                .replace('\n', "\\n")
                .replace('\'', "'\\''");
            words.push(format!("printf '%b' '{escaped}' | openssl"));
            words.extend(probe::openssl::s_client_args(
                addr, servername, identity, trust,
            ));
        }
    }
    format!(
        "# {}
{}",
        check.name,
        words.join(" ")
    )
}

fn describe(target: &Target) -> String {
    match target {
        Target::Ingress { host, port } => format!("{host}:{port} through the ingress controller"),
        Target::Service { service, .. } => format!("Service {service}"),
    }
}

fn find_openssl() -> Result<PathBuf, EngineError> {
    find_program("openssl", "MTLS_E2E_OPENSSL").ok_or_else(|| {
        EngineError::Environment(
            "openssl was not found on PATH; install it with `sudo apt-get install openssl` (Debian/Ubuntu), \
             or point MTLS_E2E_OPENSSL at an openssl binary"
                .into(),
        )
    })
}

/// Await futures concurrently on the current task, keeping their order.
pub(crate) async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in futures.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => outputs[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
