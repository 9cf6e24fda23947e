//! The engine: bring scenarios up on a substrate, run their checks, tear them
//! down, and report. The CLI and the test binary are thin layers over it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;

use crate::check;
use crate::pki::{KeyAlgorithm, KeyPool};
use crate::probe::{self, HttpRequest, Identity, Observation, TlsOptions, Trust};
use crate::report::{CheckReport, Phases, Report, ScenarioReport};
use crate::scenario::{Check, Probe, Scenario, Target, steps};
use crate::substrate::SubstrateError;
use crate::substrate::identities::{self, Probes};
use crate::substrate::local::nginx::{NginxBinary, find_program};
use crate::substrate::local::{Local, LocalDeployment, certmanager};
use crate::substrate::rundir::{self, RunDir};

/// Documented exit codes (see the README).
pub mod exit {
    /// Every check passed.
    pub const OK: u8 = 0;
    /// At least one check failed.
    pub const CHECKS_FAILED: u8 = 1;
    /// A scenario or manifest is invalid (file and line are printed).
    pub const BAD_INPUT: u8 = 2;
    /// A tool the substrate needs is missing (nginx, openssl, kind, ...).
    pub const ENVIRONMENT: u8 = 3;
    /// The substrate failed (nginx would not start, a cluster step failed).
    pub const SUBSTRATE: u8 = 4;
    /// Interrupted (Ctrl-C); everything started was stopped.
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Environment(String),
    #[error("cannot create the run folder: {0}")]
    RunDir(std::io::Error),
}

/// A scenario that is up, with its identities resolved.
pub struct Live {
    pub deployment: LocalDeployment,
    pub probes: Probes,
    pub setup_ms: u64,
    pub phases: Phases,
}

impl Live {
    /// What the controller reports for the resource serving a check's host, for
    /// the evidence of a failed check.
    pub fn controller_view(&self, check: &Check) -> Option<String> {
        let (_, _, target) = self.inputs(check);
        let Target::Ingress { host, .. } = target else {
            return None;
        };
        let nic = &self.deployment.nic;
        let Some(owner) = nic.hosts.get(host) else {
            return Some(format!(
                "no resource serves host {host}; NIC's default server answers"
            ));
        };
        let state = nic.states.iter().find(|s| &s.id() == owner)?;
        Some(format!("{owner}: {} ({})", state.state, state.message))
    }

    /// A check's identity, trust and target, resolved for this scenario.
    pub fn inputs<'a>(
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

pub struct Engine {
    pub local: Local,
    run_dir: RunDir,
    next: AtomicUsize,
    /// What the stale-run sweep removed, for the log.
    pub swept: Vec<String>,
}

impl Engine {
    /// An engine on the local substrate: finds nginx and openssl, cleans up after
    /// runs that were killed, creates this run's private folder.
    pub fn local() -> Result<Engine, EngineError> {
        let swept = rundir::sweep_stale();
        let nginx = NginxBinary::find().map_err(EngineError::Environment)?;
        let openssl = find_program("openssl", "MTLS_E2E_OPENSSL").ok_or_else(|| {
            EngineError::Environment(
                "openssl was not found on PATH; install it with `sudo apt-get install openssl` (Debian/Ubuntu), \
                 or point MTLS_E2E_OPENSSL at an openssl binary"
                    .into(),
            )
        })?;
        let run_dir = RunDir::create().map_err(EngineError::RunDir)?;
        Ok(Engine {
            local: Local {
                nginx,
                openssl,
                keys: KeyPool::new(),
            },
            run_dir,
            next: AtomicUsize::new(1),
            swept,
        })
    }

    /// This run's private folder (removed when the engine is dropped).
    pub fn run_path(&self) -> &std::path::Path {
        self.run_dir.path()
    }

    pub fn nginx_version(&self) -> String {
        self.local.nginx.version_text()
    }

    /// Start generating every RSA key these scenarios will need, on all cores,
    /// so that key generation stays off the critical path.
    pub fn prefetch_keys(&self, scenarios: &[&Scenario]) {
        let mut counts: BTreeMap<String, (KeyAlgorithm, usize)> = BTreeMap::new();
        for s in scenarios {
            for alg in certmanager::keys_needed(&s.objects)
                .into_iter()
                .chain(steps::rsa_keys_needed(s))
            {
                counts.entry(alg.describe()).or_insert((alg, 0)).1 += 1;
            }
        }
        for (alg, n) in counts.into_values() {
            if matches!(alg, KeyAlgorithm::Rsa(_)) {
                self.local.keys.prefetch(alg, n);
            }
        }
    }

    /// A private folder for one scenario.
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

    /// Bring a scenario up on the local substrate.
    pub async fn up(&self, scenario: &Scenario, strict: bool) -> Result<Live, SubstrateError> {
        let started = Instant::now();
        let dir = self
            .scenario_dir(scenario)
            .map_err(|e| SubstrateError::Failed(e.to_string()))?;
        let prepared = self.local.prepare(scenario, &dir).await?;
        let workdir = prepared.workdir.clone();
        let secrets = prepared.secrets.clone();
        let deployment = self.local.start(prepared, &dir, strict).await?;
        let probe_dir = dir.join("probes");
        std::fs::create_dir_all(&probe_dir).map_err(|e| SubstrateError::Failed(e.to_string()))?;
        let mut clock = Instant::now();
        let probes = match identities::resolve(scenario, &secrets, &workdir, &probe_dir) {
            Ok(p) => p,
            Err(e) => {
                deployment.stop().await;
                return Err(e.into());
            }
        };
        let mut phases = deployment.phases.clone();
        phases.record("identities", &mut clock);
        Ok(Live {
            deployment,
            probes,
            setup_ms: started.elapsed().as_millis() as u64,
            phases,
        })
    }

    /// Run one check against a live scenario.
    pub async fn check(&self, live: &Live, check: &Check) -> CheckReport {
        for name in &check.after {
            if let Some(first) = live
                .deployment
                .prepared
                .scenario
                .checks
                .iter()
                .find(|c| &c.name == name)
            {
                self.observe(live, first).await;
            }
        }
        let observation = self.observe(live, check).await;
        let failures = check::evaluate(&check.expect, &observation);
        let failed = !failures.is_empty();
        CheckReport {
            name: check.name.clone(),
            passed: !failed,
            why: check.why.clone(),
            origin: check.origin.to_string(),
            expected: check.expect.clone(),
            failures,
            controller: failed.then(|| live.controller_view(check)).flatten(),
            observation,
            nginx_log: failed.then(|| live.deployment.error_log_tail(8)),
        }
    }

    /// Probe once, as `check` says, and record what was seen.
    async fn observe(&self, live: &Live, check: &Check) -> Observation {
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
                    };
                    probe::http(&request).await
                }
                Probe::OpenSsl {
                    servername, send, ..
                } => {
                    let send = send
                        .clone()
                        .unwrap_or_else(|| probe::openssl::default_send(servername));
                    probe::openssl::s_client(
                        &self.local.openssl,
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
    pub async fn checks(&self, live: &Live, checks: &[&Check]) -> Vec<CheckReport> {
        let mut reports = Vec::with_capacity(checks.len());
        // Probes are independent connections; running them together keeps a run short.
        let futures: Vec<_> = checks.iter().map(|c| self.check(live, c)).collect();
        for report in join_all(futures).await {
            reports.push(report);
        }
        reports
    }

    /// Bring a scenario up, run all its checks, tear it down.
    pub async fn run_scenario(&self, scenario: &Scenario) -> ScenarioReport {
        let mut report = ScenarioReport {
            name: scenario.name.clone(),
            dir: scenario.dir.display().to_string(),
            setup_error: None,
            setup_exit_code: None,
            setup_ms: 0,
            setup_phases: Phases::default(),
            resources: Vec::new(),
            not_started: Vec::new(),
            checks: Vec::new(),
        };
        match self.up(scenario, true).await {
            Err(e) => {
                report.setup_exit_code = Some(setup_exit_code(&e));
                report.setup_error = Some(e.to_string());
            }
            Ok(live) => {
                report.setup_ms = live.setup_ms;
                report.setup_phases = live.phases.clone();
                report.resources = live.deployment.nic.states.clone();
                report.not_started = live
                    .deployment
                    .pods
                    .not_started
                    .iter()
                    .map(|n| format!("{}: {}", n.deployment, n.reason))
                    .collect();
                let checks: Vec<&Check> = scenario.checks.iter().collect();
                report.checks = self.checks(&live, &checks).await;
                live.deployment.stop().await;
            }
        }
        report
    }

    /// Run every scenario concurrently.
    pub async fn run(&self, scenarios: &[Scenario], on_done: impl Fn(&ScenarioReport)) -> Report {
        let started = Instant::now();
        self.prefetch_keys(&scenarios.iter().collect::<Vec<_>>());
        let futures: Vec<_> = scenarios.iter().map(|s| self.run_scenario(s)).collect();
        let mut reports = Vec::new();
        for r in join_all(futures).await {
            on_done(&r);
            reports.push(r);
        }
        Report::new("local", reports, started.elapsed().as_millis() as u64)
    }

    /// Check that each mutation breaks the checks it names. Returns, per
    /// mutation, the named checks that still passed (an empty list is good).
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
        live.deployment.stop().await;
        Ok(reports)
    }
}

/// The command a person would type for `check` against a live scenario
/// (`curl --connect-to`, or `openssl s_client`), to reproduce it by hand.
pub fn by_hand(live: &Live, check: &Check) -> String {
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
            words.push(format!(
                "openssl s_client -connect {addr} -servername {servername}"
            ));
            if let Some(id) = identity {
                words.push(format!(
                    "-cert {} -key {}",
                    id.cert_path.display(),
                    id.key_path.display()
                ));
            }
            if let Some(t) = trust {
                words.push(format!("-CAfile {}", t.path.display()));
            }
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
        Target::Service {
            namespace,
            name,
            port,
            ..
        } => format!("Service {namespace}/{name}:{port}"),
    }
}

/// Await futures concurrently on the current task, keeping their order.
pub async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
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

/// Exit code for a setup failure.
pub fn setup_exit_code(error: &SubstrateError) -> u8 {
    match error {
        SubstrateError::Input(_) => exit::BAD_INPUT,
        SubstrateError::Step(crate::scenario::steps::StepError::Environment { .. }) => {
            exit::ENVIRONMENT
        }
        SubstrateError::Step(_) => exit::BAD_INPUT,
        SubstrateError::Environment(_) => exit::ENVIRONMENT,
        SubstrateError::Failed(_) => exit::SUBSTRATE,
    }
}
