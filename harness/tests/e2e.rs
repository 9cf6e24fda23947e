//! The end-to-end suite: one trial per scenario check (`scenario/check`), one per
//! mutation (`scenario/mutation/name`: the named checks must fail), one per
//! built-in mutation (`scenario/mutation/builtin/...`: some check must fail),
//! and the command-line cases in `e2e/cli.rs`. Filter like any test:
//! `cargo test --test e2e -- aigw`.
//!
//! Scenarios run on the local substrate. Under `cargo test` each scenario is
//! brought up once and shared by its trials; under nextest (a process per
//! trial) each trial brings up its own. `--list` starts nothing.
//!
//! Opt-in, the same check trials run on a cluster: `MTLS_E2E_SUBSTRATE=kind`
//! (with `MTLS_E2E_K8S_VERSION`, `MTLS_E2E_NIC_VERSION`, `MTLS_E2E_CLUSTER`,
//! `MTLS_E2E_KEEP=1`) or `MTLS_E2E_SUBSTRATE=existing` (with `MTLS_E2E_CONTEXT`,
//! `MTLS_E2E_IMAGE`, `MTLS_E2E_NIC_VERSION`, `MTLS_E2E_NIC_NAMESPACE`,
//! `MTLS_E2E_CERT_MANAGER_NAMESPACE`). Mutations stay local-only, and
//! scenarios needing a newer NIC are ignored.

use std::fmt::Write as _;
#[path = "e2e/cli.rs"]
mod cli;
#[path = "e2e/container.rs"]
mod container;
#[path = "e2e/init.rs"]
mod init;
#[path = "e2e/manifests.rs"]
mod manifests;
#[path = "e2e/ports.rs"]
mod ports;
#[path = "e2e/validate.rs"]
mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use libtest_mimic::{Arguments, Failed, Trial};
use mtls_e2e::app;
use mtls_e2e::engine::{Engine, Live};
use mtls_e2e::report;
use mtls_e2e::scenario::Scenario;
use mtls_e2e::substrate::cluster::{self, ClusterOptions, Mode, install};

fn scenarios_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// What the trials share: the runtime, the engine (made on first use) and the
/// scenarios brought up so far.
struct Suite {
    runtime: tokio::runtime::Runtime,
    engine: OnceLock<Result<Engine, String>>,
    /// `None`: the local substrate.
    cluster: Option<ClusterOptions>,
    /// Scenarios some unfiltered trial needs, for key prefetching.
    wanted: Vec<Scenario>,
    live: Mutex<BTreeMap<String, LiveCell>>,
}

/// A scenario brought up once, or why it could not be.
type LiveCell = Arc<tokio::sync::OnceCell<Result<Arc<Live>, String>>>;

impl Suite {
    fn engine(&self) -> Result<&Engine, Failed> {
        let engine = self.engine.get_or_init(|| {
            let engine = match &self.cluster {
                None => Engine::local().map_err(|e| e.to_string())?,
                Some(options) => {
                    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_mtls-e2e"));
                    // The cluster's steps take minutes: what they say goes to stderr.
                    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("mtls_e2e=info"));
                    let _ = tracing_subscriber::fmt()
                        .with_env_filter(filter)
                        .with_writer(std::io::stderr)
                        .try_init();
                    let wanted: Vec<&Scenario> = self.wanted.iter().collect();
                    self.runtime
                        .block_on(Engine::cluster(options.clone(), &wanted, binary))
                        .map_err(|e| e.to_string())?
                }
            };
            engine.prefetch_keys(&self.wanted.iter().collect::<Vec<_>>());
            Ok(engine)
        });
        engine.as_ref().map_err(|e| Failed::from(e.as_str()))
    }

    fn live(&self, scenario: &Scenario) -> Result<Arc<Live>, Failed> {
        let engine = self.engine()?;
        let cell = {
            let mut map = self
                .live
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.entry(scenario.name.clone()).or_default().clone()
        };
        let result = self.runtime.block_on(cell.get_or_init(|| async {
            engine
                .up(scenario, true)
                .await
                .map(Arc::new)
                .map_err(|e| format!("{} could not be set up: {e}", scenario.name))
        }));
        result.clone().map_err(Failed::from)
    }

    /// Stop every scenario brought up (the trials are done, so we own them again).
    fn shutdown(&self) {
        let cells: Vec<_> = std::mem::take(
            &mut *self
                .live
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_values()
        .collect();
        let Some(Ok(engine)) = self.engine.get() else {
            return;
        };
        for cell in cells {
            let Ok(cell) = Arc::try_unwrap(cell) else {
                continue;
            };
            if let Some(Ok(live)) = cell.into_inner() {
                match Arc::try_unwrap(live) {
                    Ok(live) => self.runtime.block_on(engine.finish(live.deployment)),
                    // Still shared: dropping it kills its nginx group anyway.
                    Err(shared) => drop(shared),
                }
            }
        }
    }
}

fn main() -> std::process::ExitCode {
    // The port squatter of the `ports/*` cases is this binary.
    if let Ok(spec) = std::env::var(ports::SQUATTER_ENV) {
        return ports::squat(&spec);
    }
    let args = Arguments::from_args();
    let scenarios = match load_scenarios() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot load the scenarios: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start tokio: {e}");
            return std::process::ExitCode::from(2);
        }
    };

    let names = trial_names(&scenarios);
    let wanted: BTreeSet<String> = names
        .iter()
        .filter(|(name, _)| !args.is_filtered_out(&Trial::test(name.clone(), || Ok(()))))
        .map(|(_, scenario)| scenario.clone())
        .collect();
    let cluster = match cluster_from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    // On a cluster: which NIC the scenarios are measured against, when it is known before connecting.
    let nic: Option<String> = cluster.as_ref().and_then(|o| match o.mode {
        Mode::Kind { .. } => Some(
            o.nic
                .clone()
                .unwrap_or_else(|| install::DEFAULT_NIC.to_string()),
        ),
        Mode::Existing { .. } => o.nic.clone(),
    });
    let on_cluster = cluster.is_some();
    let cluster_label = cluster
        .as_ref()
        .map(mtls_e2e::substrate::cluster::ClusterOptions::label);
    let suite = Arc::new(Suite {
        runtime,
        engine: OnceLock::new(),
        cluster,
        wanted: scenarios
            .iter()
            .filter(|s| wanted.contains(&s.name))
            .cloned()
            .collect(),
        live: Mutex::new(BTreeMap::new()),
    });

    let mut trials = Vec::new();
    for s in &scenarios {
        let substrate = cluster_label.unwrap_or("local");
        let skipped = s
            .substrate_skip(substrate)
            .or_else(|| nic.as_deref().and_then(|v| cluster::skip_reason(s, v)));
        if let Some(reason) = &skipped {
            eprintln!("note: {} is ignored: {reason}", s.name);
        }
        for check in &s.checks {
            let (suite, scenario, name) = (suite.clone(), s.clone(), check.name.clone());
            trials.push(
                Trial::test(format!("{}/{}", s.name, check.name), move || {
                    let live = suite.live(&scenario)?;
                    let engine = suite.engine()?;
                    let check = scenario
                        .checks
                        .iter()
                        .find(|c| c.name == name)
                        .ok_or("check vanished")?;
                    let report = suite.runtime.block_on(engine.check(&live, check));
                    if report.passed {
                        Ok(())
                    } else {
                        Err(report::failure_details(&report).into())
                    }
                })
                .with_ignored_flag(skipped.is_some()),
            );
        }
        for m in &s.spec.mutations {
            let (suite, scenario, mutation) = (suite.clone(), s.clone(), m.clone());
            trials.push(Trial::test(format!("{}/mutation/{}", s.name, m.name), move || {
                let engine = suite.engine()?;
                let reports = suite
                    .runtime
                    .block_on(engine.run_mutation(&scenario, &mutation))
                    .map_err(|e| format!("the mutated scenario could not be set up: {e}"))?;
                let survivors: Vec<_> = reports.iter().filter(|r| r.passed).collect();
                if survivors.is_empty() {
                    return Ok(());
                }
                let mut message = format!(
                    "patching {} should break {}, but these checks still pass, so they cannot tell the difference:\n",
                    mutation.patch.object,
                    mutation.breaks.join(", ")
                );
                for r in survivors {
                    let _ = write!(message, "  {}/{}\n{}", scenario.name, r.name, report::failure_details(r));
                }
                Err(message.into())
            }).with_ignored_flag(on_cluster || skipped.is_some()));
        }
        for m in &s.builtin {
            let (suite, scenario, mutation) = (suite.clone(), s.clone(), m.clone());
            // A declared exception is a verdict, not a skip: its trial runs the
            // mutation anyway and passes only if no check notices it, as the
            // scenario's why says (so a stale or wrong exception fails).
            let excepted = s
                .builtin_exception(&m.name)
                .map(|e| e.why.trim().to_string());
            trials.push(
                Trial::test(
                    format!("{}/mutation/{}", s.name, m.name),
                    move || match &excepted {
                        Some(why) if why.is_empty() => Err("an exception without a why".into()),
                        Some(why) => excepted_mutation(&suite, &scenario, &mutation, why),
                        None => builtin_mutation(&suite, &scenario, &mutation),
                    },
                )
                .with_ignored_flag(on_cluster || skipped.is_some()),
            );
        }
    }
    if !on_cluster {
        let suite = suite.clone();
        let traps = scenarios
            .iter()
            .find(|s| s.name == "egress-mtls-traps")
            .cloned();
        trials.push(Trial::test(
            "order/shared-upstream-verdicts-do-not-depend-on-order",
            move || {
                shared_upstream_order(
                    &suite,
                    traps.as_ref().ok_or("no egress-mtls-traps scenario")?,
                )
            },
        ));
    }
    trials.extend(cli::trials());
    trials.extend(init::trials());
    trials.extend(ports::trials());
    trials.extend(container::trials());
    trials.extend(manifests::trials(&scenarios));
    trials.extend(validate::trials());

    let conclusion = libtest_mimic::run(&args, trials);
    suite.shutdown();
    // The trials are gone, so the suite is ours again: close the engine (on kind,
    // this deletes the cluster the run created, unless MTLS_E2E_KEEP=1).
    if let Ok(Suite {
        runtime, engine, ..
    }) = Arc::try_unwrap(suite)
        && let Some(Ok(engine)) = engine.into_inner()
    {
        runtime.block_on(engine.close());
    }
    conclusion.exit_code()
}

/// A built-in mutation must be killed (some check that passes on the scenario
/// turns red, or a resource state changes) or be equivalent (NIC renders the
/// same configuration).
fn builtin_mutation(
    suite: &Suite,
    scenario: &Scenario,
    mutation: &mtls_e2e::scenario::MutationSpec,
) -> Result<(), Failed> {
    let report = run_builtin_mutation(suite, scenario, scenario, mutation)?;
    match report.outcome {
        report::MutationOutcome::Killed | report::MutationOutcome::Equivalent => Ok(()),
        _ => Err(format!("{}\n{}", report.line(&scenario.name), report.details()).into()),
    }
}

/// A built-in mutation the scenario excepts, run as if it did not: no check
/// may notice it (it survives, or NIC renders it alike), or the exception's
/// why is wrong.
fn excepted_mutation(
    suite: &Suite,
    scenario: &Scenario,
    mutation: &mtls_e2e::scenario::MutationSpec,
    why: &str,
) -> Result<(), Failed> {
    let mut unexcepted = scenario.clone();
    unexcepted.spec.skip_builtin_mutations.clear();
    let report = run_builtin_mutation(suite, scenario, &unexcepted, mutation)?;
    match report.outcome {
        report::MutationOutcome::Survived | report::MutationOutcome::Equivalent => Ok(()),
        _ => Err(format!(
            "scenario.yaml excepts {} saying: {why}\nyet run, it is not a survivor:\n{}\n{}",
            mutation.name,
            report.line(&scenario.name),
            report.details()
        )
        .into()),
    }
}

/// The checks that pass on `scenario`, then `mutation` of `mutated` judged by them.
fn run_builtin_mutation(
    suite: &Suite,
    scenario: &Scenario,
    mutated: &Scenario,
    mutation: &mtls_e2e::scenario::MutationSpec,
) -> Result<report::MutationReport, Failed> {
    let engine = suite.engine()?;
    let live = suite.live(scenario)?;
    let passed: BTreeSet<String> = scenario
        .checks
        .iter()
        .filter(|c| suite.runtime.block_on(engine.check(&live, c)).passed)
        .map(|c| c.name.clone())
        .collect();
    Ok(suite
        .runtime
        .block_on(engine.builtin_mutation(mutated, mutation, &passed)))
}

/// Ask for the shared-upstream checks in the worst order (the good route first,
/// then the route that must be refused before any session exists), on a fresh
/// scenario of its own: each verdict must be the one the scenario's order gives,
/// never the one the asking order would.
fn shared_upstream_order(suite: &Suite, scenario: &Scenario) -> Result<(), Failed> {
    let engine = suite.engine()?;
    let live = suite
        .runtime
        .block_on(engine.up(scenario, true))
        .map_err(|e| format!("egress-mtls-traps could not be set up: {e}"))?;
    let mut problems = Vec::new();
    for name in [
        "shared-good-200",
        "shared-wrong-ca-masked-after-a-good-session",
        "shared-wrong-ca-502-before-any-session",
    ] {
        let Some(check) = scenario.checks.iter().find(|c| c.name == name) else {
            problems.push(format!("no check {name}"));
            continue;
        };
        let report = suite.runtime.block_on(engine.check(&live, check));
        if !report.passed {
            problems.push(report::failure_details(&report));
        } else if report.shared_state.is_none() {
            problems.push(format!("{name}: its report does not say what it shares"));
        }
    }
    suite.runtime.block_on(engine.finish(live.deployment));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// The scenarios, loaded as `mtls-e2e run scenarios` loads them.
fn load_scenarios() -> Result<Vec<Scenario>, String> {
    app::load::scenarios(&[scenarios_root()]).map_err(|e| e.to_string())
}

/// (trial name, scenario name) for every scenario trial.
fn trial_names(scenarios: &[Scenario]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for s in scenarios {
        out.extend(
            s.checks
                .iter()
                .map(|c| (format!("{}/{}", s.name, c.name), s.name.clone())),
        );
        out.extend(
            s.spec
                .mutations
                .iter()
                .chain(&s.builtin)
                .map(|m| (format!("{}/mutation/{}", s.name, m.name), s.name.clone())),
        );
    }
    out
}

/// The opt-in cluster substrate, from the environment (see the top of this
/// file): the command line's own options, with the command line's validation,
/// so a bad version is refused before any cluster exists.
fn cluster_from_env() -> Result<Option<ClusterOptions>, String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut words = Vec::new();
    let mut flag = |name: &str, env: &str| {
        if let Some(value) = var(env) {
            words.extend([name.to_string(), value]);
        }
    };
    flag("--substrate", "MTLS_E2E_SUBSTRATE");
    flag("--k8s-version", "MTLS_E2E_K8S_VERSION");
    flag("--cluster", "MTLS_E2E_CLUSTER");
    flag("--nic-version", "MTLS_E2E_NIC_VERSION");
    flag("--context", "MTLS_E2E_CONTEXT");
    flag("--nic-namespace", "MTLS_E2E_NIC_NAMESPACE");
    flag(
        "--cert-manager-namespace",
        "MTLS_E2E_CERT_MANAGER_NAMESPACE",
    );
    flag("--image", "MTLS_E2E_IMAGE");
    if var("MTLS_E2E_KEEP").as_deref() == Some("1") {
        words.push("--keep".into());
    }
    if var("MTLS_E2E_SUBSTRATE").is_some_and(|s| s != "local") {
        let artifacts =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/mtls-e2e-artifacts");
        words.extend(["--artifacts".to_string(), artifacts.display().to_string()]);
    }
    app::args::cluster_options_from_words(&words).map_err(|e| format!("MTLS_E2E_*: {e}"))
}
