//! `mtls-e2e`: the command line over the engine. Exit codes are documented in
//! the README and in `mtls_e2e::exit`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use mtls_e2e::engine::{Deployment, Engine, Substrate};
use mtls_e2e::error::Error;
use mtls_e2e::exit::Exit;
use mtls_e2e::mock::ServeArgs;
use mtls_e2e::report::{self, Report};
use mtls_e2e::scenario::{self, Scenario, Target};
use mtls_e2e::substrate::cluster::{self, ClusterOptions, Mode};

#[derive(Parser)]
#[command(
    name = "mtls-e2e",
    version,
    about = "End-to-end tests for mTLS chains in front of AI inference"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios and their checks (default: every scenario under ./scenarios).
    Run {
        /// Scenario folders, or folders of scenarios.
        dirs: Vec<PathBuf>,
        /// Also prove the checks bite: run each scenario's mutations (local substrate).
        #[arg(long)]
        mutations: bool,
        /// Write the machine-readable report (JSON) here.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Write the results as JUnit XML here (for CI).
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Report only checks whose `scenario/check` matches (a substring, or a glob
        /// with * ? [ ]); repeatable. Checks that share state still run with their group.
        #[arg(long = "check", value_name = "PATTERN")]
        check: Vec<String>,
        /// Leave out checks whose `scenario/check` matches; repeatable.
        #[arg(long = "skip", value_name = "PATTERN")]
        skip: Vec<String>,
        #[command(flatten)]
        substrate: SubstrateArgs,
    },
    /// List scenarios and their checks.
    List { dirs: Vec<PathBuf> },
    /// Print what a run would do, without doing it. Local: objects, certificates,
    /// steps, states, nginx.conf. kind/existing: every command, download and manifest.
    Plan {
        dirs: Vec<PathBuf>,
        #[command(flatten)]
        substrate: SubstrateArgs,
    },
    /// Bring one scenario up and keep it running until Ctrl-C, printing how to
    /// reproduce each check by hand.
    Up {
        dir: PathBuf,
        #[command(flatten)]
        substrate: SubstrateArgs,
    },
    /// Build the container image of this binary (what the kind substrate loads),
    /// without pulling anything; push it yourself for `--substrate existing`.
    Image {
        #[arg(long, default_value = cluster::image::DEFAULT_IMAGE)]
        tag: String,
    },
    /// Serve one of our mock components (what the container image runs).
    Serve {
        #[command(subcommand)]
        what: ServeArgs,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SubstrateName {
    /// No cluster: real nginx and TLS, the harness plays cert-manager and NIC.
    Local,
    /// A kind cluster the harness creates and installs.
    Kind,
    /// A cluster from your kubeconfig, with cert-manager and NIC installed.
    Existing,
}

#[derive(clap::Args)]
struct SubstrateArgs {
    #[arg(long, value_enum, default_value = "local")]
    substrate: SubstrateName,
    /// kind: the cluster's name (reused when it exists and answers).
    #[arg(long, default_value = "mtls-e2e")]
    cluster: String,
    /// kind: the Kubernetes version (a node image pinned by digest).
    #[arg(long, default_value = cluster::kind::DEFAULT_K8S)]
    k8s_version: String,
    /// kind: the NIC release to install (5.5.4, 5.3.4); existing: override the
    /// version read from NIC's image.
    #[arg(long)]
    nic_version: Option<String>,
    /// existing: the kubeconfig context (default: the current one).
    #[arg(long)]
    context: Option<String>,
    /// existing: the namespace NIC runs in.
    #[arg(long, default_value = cluster::install::NIC_NAMESPACE)]
    nic_namespace: String,
    /// The image our Deployments run (kind: built here and loaded; existing:
    /// one your cluster can pull).
    #[arg(long, default_value = cluster::image::DEFAULT_IMAGE)]
    image: String,
    /// Keep the kind cluster and the scenarios' objects at the end.
    #[arg(long)]
    keep: bool,
    /// kind, existing: let the run overwrite this object of someone else's
    /// (Kind/name or Kind/namespace/name); it is never deleted. Repeatable.
    #[arg(long, value_name = "KIND/[NAMESPACE/]NAME")]
    adopt: Vec<String>,
    /// Where failing scenarios' evidence goes (cluster substrates).
    #[arg(long, default_value = "mtls-e2e-artifacts")]
    artifacts: PathBuf,
    /// Downloads, kubeconfigs and cluster markers (default: ~/.cache/mtls-e2e).
    #[arg(long)]
    cache: Option<PathBuf>,
}

impl SubstrateArgs {
    /// The cluster options, or `None` for the local substrate. Options that do
    /// not apply to the chosen substrate are refused rather than ignored.
    fn cluster_options(&self) -> anyhow::Result<Option<ClusterOptions>> {
        let kind_only = [
            ("--cluster", self.cluster != "mtls-e2e"),
            (
                "--k8s-version",
                self.k8s_version != cluster::kind::DEFAULT_K8S,
            ),
        ];
        let existing_only = [
            ("--context", self.context.is_some()),
            (
                "--nic-namespace",
                self.nic_namespace != cluster::install::NIC_NAMESPACE,
            ),
        ];
        let cluster_only = [
            ("--nic-version", self.nic_version.is_some()),
            ("--image", self.image != cluster::image::DEFAULT_IMAGE),
            ("--keep", self.keep),
            ("--adopt", !self.adopt.is_empty()),
            ("--cache", self.cache.is_some()),
            (
                "--artifacts",
                self.artifacts != std::path::Path::new("mtls-e2e-artifacts"),
            ),
        ];
        let refuse = |flags: &[(&str, bool)], what: &str| -> anyhow::Result<()> {
            if let Some((flag, _)) = flags.iter().find(|(_, set)| *set) {
                anyhow::bail!("{flag} applies to {what} only");
            }
            Ok(())
        };
        let mode = match self.substrate {
            SubstrateName::Local => {
                refuse(&kind_only, "--substrate kind")?;
                refuse(&existing_only, "--substrate existing")?;
                refuse(&cluster_only, "--substrate kind or existing")?;
                return Ok(None);
            }
            SubstrateName::Kind => {
                refuse(&existing_only, "--substrate existing")?;
                if !self.cluster.starts_with(cluster::kind::CLUSTER_PREFIX) {
                    anyhow::bail!(
                        "--cluster must start with `{}` so that the stale-cluster sweep can tell our clusters from yours",
                        cluster::kind::CLUSTER_PREFIX
                    );
                }
                cluster::kind::node_image(&self.k8s_version)?;
                if let Some(v) = &self.nic_version {
                    cluster::install::nic_release(v)?;
                }
                Mode::Kind {
                    name: self.cluster.clone(),
                    k8s: self.k8s_version.clone(),
                }
            }
            SubstrateName::Existing => {
                refuse(&kind_only, "--substrate kind")?;
                Mode::Existing {
                    context: self.context.clone(),
                    nic_namespace: self.nic_namespace.clone(),
                }
            }
        };
        let artifacts = if self.artifacts.is_absolute() {
            self.artifacts.clone()
        } else {
            std::env::current_dir()
                .context("reading the current folder")?
                .join(&self.artifacts)
        };
        Ok(Some(ClusterOptions {
            mode,
            nic: self.nic_version.clone(),
            image: self.image.clone(),
            keep: self.keep,
            adopt: self
                .adopt
                .iter()
                .map(|a| cluster::ownership::parse_adopt(a))
                .collect::<Result<_, _>>()
                .map_err(anyhow::Error::msg)?,
            artifacts,
            cache: self.cache.clone().unwrap_or_else(cluster::default_cache),
        }))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(Exit::Substrate.code());
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(Exit::Substrate.code())
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<u8> {
    // Listen for Ctrl-C and SIGTERM before anything starts, so that no signal
    // can arrive in a window where it would kill us and leave nginx behind.
    let mut stop = Stop::install()?;
    match command {
        Command::Run {
            dirs,
            mutations,
            report,
            junit,
            check,
            skip,
            substrate,
        } => {
            let selection = match mtls_e2e::selection::Selection::new(&check, &skip) {
                Ok(s) => s,
                Err(e) => return Ok(bad_input(anyhow::anyhow!("--check/--skip: {e}"))),
            };
            let options = match substrate.cluster_options() {
                Ok(o) => o,
                Err(e) => return Ok(bad_input(e)),
            };
            if mutations && options.is_some() {
                eprintln!(
                    "error: --mutations runs on the local substrate only (each mutation is a fresh bring-up)"
                );
                return Ok(Exit::BadInput.code());
            }
            // Found out now, not after every check has run.
            for (flag, path) in [("--report", &report), ("--junit", &junit)] {
                if let Some(path) = path
                    && let Err(e) = check_writable(path)
                {
                    return Ok(bad_input(anyhow::anyhow!("{flag} {}: {e}", path.display())));
                }
            }
            let mut scenarios = match load(&dirs) {
                Ok(s) => s,
                Err(code) => return Ok(code),
            };
            // Scenarios none of whose checks are selected are not brought up.
            scenarios.retain(|s| {
                s.checks
                    .iter()
                    .any(|c| selection.includes(&s.name, &c.name))
            });
            if scenarios.is_empty() {
                return Ok(bad_input(anyhow::anyhow!(
                    "--check/--skip select no check; names read `scenario/check` (see `mtls-e2e list`)"
                )));
            }
            if options.is_some() {
                let refs: Vec<&Scenario> = scenarios.iter().collect();
                if let Err(e) = cluster::check_shareable(&refs) {
                    eprintln!("error: {e}");
                    return Ok(Exit::BadInput.code());
                }
            }
            if let Err(code) = check_adopted(options.as_ref(), &scenarios) {
                return Ok(code);
            }
            let mut engine = match make_engine(options.as_ref(), &mut stop).await {
                Ok(e) => e,
                Err(code) => return Ok(code),
            };
            engine.selection = selection;
            for s in &engine.swept {
                eprintln!("cleaned up {s}");
            }
            let outputs = Outputs { report, junit };
            let code = tokio::select! {
                result = run(&engine, &scenarios, mutations, &outputs) => result,
                _ = stop.wait() => {
                    eprintln!("interrupted: stopping everything this run started");
                    cluster::stop_running_tools();
                    Ok(Exit::Interrupted.code())
                }
            };
            if code.as_ref().is_ok_and(|c| *c == Exit::Interrupted.code()) {
                interrupted_cleanup(&engine, &scenarios).await;
            }
            engine.close().await;
            code
        }
        Command::List { dirs } => {
            let scenarios = match load(&dirs) {
                Ok(s) => s,
                Err(code) => return Ok(code),
            };
            for s in &scenarios {
                let needs = s
                    .spec
                    .requires
                    .nic
                    .as_deref()
                    .map(|v| format!(", needs NIC {v}"))
                    .unwrap_or_default();
                println!("{}  ({}{needs})", s.name, s.dir.display());
                println!(
                    "    {}",
                    s.spec
                        .reproduces
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                );
                for c in &s.checks {
                    println!("    {}/{}", s.name, c.name);
                }
                for m in &s.spec.mutations {
                    println!(
                        "    {}/mutation/{} (breaks {})",
                        s.name,
                        m.name,
                        m.breaks.join(", ")
                    );
                }
            }
            Ok(Exit::Ok.code())
        }
        Command::Plan { dirs, substrate } => {
            let options = match substrate.cluster_options() {
                Ok(o) => o,
                Err(e) => return Ok(bad_input(e)),
            };
            let scenarios = match load(&dirs) {
                Ok(s) => s,
                Err(code) => return Ok(code),
            };
            if let Err(code) = check_adopted(options.as_ref(), &scenarios) {
                return Ok(code);
            }
            if let Some(options) = options {
                let refs: Vec<&Scenario> = scenarios.iter().collect();
                let text = cluster::check_shareable(&refs)
                    .and_then(|_| mtls_e2e::plan::cluster(&options, &refs));
                return Ok(match text {
                    Ok(text) => {
                        print!("{text}");
                        Exit::Ok.code()
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        Error::from(&e).exit().code()
                    }
                });
            }
            let engine = match Engine::local_for_plan() {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(Error::from(&e).exit().code());
                }
            };
            for scenario in &scenarios {
                match mtls_e2e::plan::local(&engine, scenario).await {
                    Ok(text) => print!("{text}"),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return Ok(Error::from(&e).exit().code());
                    }
                }
            }
            Ok(Exit::Ok.code())
        }
        Command::Up { dir, substrate } => {
            let options = match substrate.cluster_options() {
                Ok(o) => o,
                Err(e) => return Ok(bad_input(e)),
            };
            let scenario = match Scenario::load(&dir) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(Exit::BadInput.code());
                }
            };
            if let Err(code) = check_adopted(options.as_ref(), std::slice::from_ref(&scenario)) {
                return Ok(code);
            }
            let engine = match make_engine(options.as_ref(), &mut stop).await {
                Ok(e) => e,
                Err(code) => return Ok(code),
            };
            let code = up(&engine, &scenario, &mut stop).await;
            engine.close().await;
            Ok(code)
        }
        Command::Image { tag } => {
            let binary = std::env::current_exe().context("finding this binary")?;
            match cluster::image::build(&tag, &binary) {
                Ok(()) => {
                    println!(
                        "built {tag} from {} (nothing pulled); push it where your cluster can pull it",
                        binary.display()
                    );
                    Ok(Exit::Ok.code())
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(Error::from(&e).exit().code())
                }
            }
        }
        Command::Serve { what } => {
            tokio::select! {
                result = mtls_e2e::mock::serve_standalone(&what) => result.map(|_| Exit::Ok.code()).map_err(Into::into),
                _ = stop.wait() => Ok(Exit::Interrupted.code()),
            }
        }
    }
}

/// `--adopt` names objects the scenarios declare (exit 2 otherwise).
fn check_adopted(options: Option<&ClusterOptions>, scenarios: &[Scenario]) -> Result<(), u8> {
    let Some(options) = options else {
        return Ok(());
    };
    cluster::ownership::check_adopt(&options.adopt, |id| {
        scenarios.iter().any(|s| s.declares(id))
    })
    .map_err(|e| bad_input(anyhow::Error::msg(e)))
}

/// `up`: one scenario running until Ctrl-C, with the commands to poke at it.
async fn up(engine: &Engine, scenario: &Scenario, stop: &mut Stop) -> u8 {
    engine.prefetch_keys(&[scenario]);
    if let Some(reason) = engine.skip_reason(scenario) {
        eprintln!("error: {} cannot run here: {reason}", scenario.name);
        return Exit::BadInput.code();
    }
    let live = tokio::select! {
        live = engine.up(scenario, true) => match live {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: {e}");
                return Error::from(&e).exit().code();
            }
        },
        _ = stop.wait() => {
            cluster::stop_running_tools();
            interrupted_cleanup(engine, std::slice::from_ref(scenario)).await;
            return Exit::Interrupted.code();
        }
    };
    println!(
        "{} is up on the {} ({} ms).",
        scenario.name,
        engine.describe(),
        live.setup_ms
    );
    let http = live.deployment.address(&Target::Ingress {
        host: String::new(),
        port: 80,
    });
    let https = live.deployment.address(&Target::Ingress {
        host: String::new(),
        port: 443,
    });
    if let (Ok(http), Ok(https)) = (http, https) {
        println!("ingress controller: port 80 -> {http}, port 443 -> {https}");
    }
    match &live.deployment {
        Deployment::Local(d) => println!("nginx configuration: {}", d.dir.join("nginx").display()),
        Deployment::Cluster(d) => {
            for ((ns, name, port), f) in &d.services {
                println!("Service {ns}/{name}:{port} -> {} (port-forward)", f.local);
            }
        }
    }
    for (name, id) in &live.probes.identities {
        println!(
            "identity {name}: --cert {} --key {}",
            id.cert_path.display(),
            id.key_path.display()
        );
    }
    for (name, t) in &live.probes.trust {
        println!("trust {name}: {}", t.path.display());
    }
    println!("\nEach check, by hand:");
    for c in &scenario.checks {
        println!("{}", mtls_e2e::engine::by_hand(&live, c));
    }
    println!("\nPress Ctrl-C to stop and clean up.");
    stop.wait().await;
    engine.finish(live.deployment).await;
    eprintln!("stopped; removed {}", engine.run_path().display());
    Exit::Interrupted.code()
}

/// After an interrupt on a cluster: the scenarios' objects are deleted (unless
/// --keep); a kind cluster this run was still creating is deleted.
async fn interrupted_cleanup(engine: &Engine, scenarios: &[Scenario]) {
    if let Substrate::Cluster(c) = &engine.substrate {
        if c.cluster.options.keep {
            return;
        }
        for s in scenarios {
            let _ = cluster::apply::down(&c.cluster, s).await;
        }
    }
}

struct Outputs {
    report: Option<PathBuf>,
    junit: Option<PathBuf>,
}

/// Whether the run will be able to write `path`: an existing file it may
/// open for writing, or a new file in an existing folder it may write in.
/// Nothing is created or changed.
fn check_writable(path: &std::path::Path) -> Result<(), String> {
    if path.is_dir() {
        return Err("is a folder; give a file name".into());
    }
    if path.exists() {
        return std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(|_| ())
            .map_err(|e| format!("cannot be written: {e}"));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    if !parent.is_dir() {
        return Err(format!("the folder {} does not exist", parent.display()));
    }
    // A probe file in the same folder, removed again at once.
    tempfile::NamedTempFile::new_in(parent)
        .map(drop)
        .map_err(|e| format!("cannot create a file in {}: {e}", parent.display()))
}

/// The engine for the chosen substrate, or the exit code (message printed).
async fn make_engine(options: Option<&ClusterOptions>, stop: &mut Stop) -> Result<Engine, u8> {
    let Some(options) = options else {
        return local_engine();
    };
    let binary = std::env::current_exe().map_err(|e| {
        eprintln!("error: cannot find this binary: {e}");
        Exit::Substrate.code()
    })?;
    let progress: mtls_e2e::engine::Progress = Arc::new(|m: &str| eprintln!("[{}] {m}", clock()));
    eprintln!("[{}] preparing the {} substrate", clock(), options.label());
    tokio::select! {
        engine = Engine::cluster(options.clone(), &binary, progress.clone()) => engine.map_err(|e| {
            eprintln!("error: {e}");
            Error::from(&e).exit().code()
        }),
        _ = stop.wait() => {
            eprintln!("interrupted while preparing the cluster");
            cluster::stop_running_tools();
            if let Mode::Kind { name, .. } = &options.mode {
                let (name, cache) = (name.clone(), options.cache.clone());
                let _ = tokio::task::spawn_blocking(move || {
                    cluster::kind::cleanup_interrupted(&name, &cache, &|m: &str| eprintln!("{m}"))
                })
                .await;
            }
            Err(Exit::Interrupted.code())
        }
    }
}

/// Wall-clock time for progress lines (UTC, seconds).
fn clock() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!("{:02}:{:02}:{:02}", now.hour(), now.minute(), now.second())
}

fn bad_input(e: anyhow::Error) -> u8 {
    eprintln!("error: {e:#}");
    Exit::BadInput.code()
}

fn local_engine() -> Result<Engine, u8> {
    Engine::local().map_err(|e| {
        eprintln!("error: {e}");
        Error::from(&e).exit().code()
    })
}

/// Ctrl-C and SIGTERM. Stopping is dropping: the futures holding nginx and the
/// mocks are dropped, which stops them, and the run folder goes with the engine.
struct Stop {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Stop {
    fn install() -> anyhow::Result<Stop> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Stop {
            interrupt: signal(SignalKind::interrupt()).context("installing the Ctrl-C handler")?,
            terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// Load scenarios from folders: a scenario folder, or a folder holding scenarios.
/// Errors are printed with file and line; the `Err` is the exit code.
fn load(dirs: &[PathBuf]) -> Result<Vec<Scenario>, u8> {
    let dirs: Vec<PathBuf> = if dirs.is_empty() {
        let default = PathBuf::from("scenarios");
        if !default.is_dir() {
            eprintln!(
                "error: no ./scenarios folder here; pass scenario folders, e.g. `mtls-e2e run path/to/scenario`"
            );
            return Err(Exit::BadInput.code());
        }
        vec![default]
    } else {
        dirs.to_vec()
    };
    let mut folders = Vec::new();
    for dir in &dirs {
        // `run path/to/scenario.yaml` means its folder.
        let dir = &match dir.file_name() {
            Some(name) if name == scenario::SCENARIO_FILE && dir.is_file() => dir
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".")),
            _ => dir.clone(),
        };
        if dir.join(scenario::SCENARIO_FILE).is_file() {
            folders.push(dir.clone());
        } else if dir.is_dir() {
            match scenario::discover(dir) {
                Ok(found) if !found.is_empty() => folders.extend(found),
                Ok(_) => {
                    eprintln!(
                        "error: {}: no scenario.yaml here or in its subfolders",
                        dir.display()
                    );
                    return Err(Exit::BadInput.code());
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return Err(Exit::BadInput.code());
                }
            }
        } else {
            eprintln!("error: {}: no such folder", dir.display());
            return Err(Exit::BadInput.code());
        }
    }
    let mut scenarios: Vec<Scenario> = Vec::new();
    for folder in folders {
        match Scenario::load(&folder) {
            Ok(s) => {
                if let Some(other) = scenarios.iter().find(|o| o.name == s.name) {
                    eprintln!(
                        "error: two scenarios are named `{}`: {} and {}",
                        s.name,
                        other.dir.display(),
                        s.dir.display()
                    );
                    return Err(Exit::BadInput.code());
                }
                scenarios.push(s)
            }
            Err(e) => {
                eprintln!("error: {e}");
                return Err(Exit::BadInput.code());
            }
        }
    }
    Ok(scenarios)
}

async fn run(
    engine: &Engine,
    scenarios: &[Scenario],
    mutations: bool,
    outputs: &Outputs,
) -> anyhow::Result<u8> {
    eprintln!(
        "running {} scenarios on the {}",
        scenarios.len(),
        engine.describe()
    );
    if !engine.setup.0.is_empty() {
        eprintln!("substrate ready ({})", engine.setup.describe());
    }
    let report = engine
        .run(scenarios, |s| match (&s.skipped, &s.setup_error) {
            (Some(why), _) => eprintln!("{}: skipped: {why}", s.name),
            (None, Some(e)) => eprintln!("error: {}: could not be set up: {e}", s.name),
            (None, None) => eprintln!(
                "{}: set up in {} ms ({})",
                s.name,
                s.setup_ms,
                s.setup_phases.describe()
            ),
        })
        .await;
    let mut report = report;
    if mutations {
        report.add_mutations(engine.mutations(scenarios).await);
    }
    print!("{}", report::render_human(&report));
    let code = exit_code(&report);
    if let Some(path) = &outputs.report {
        let json = serde_json::to_string_pretty(&report).context("serialising the report")?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &outputs.junit {
        std::fs::write(path, report::junit(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(code)
}

fn exit_code(report: &Report) -> u8 {
    let setup = report
        .scenarios
        .iter()
        .filter_map(|s| s.setup_exit_code)
        .min();
    match setup {
        Some(code) => code,
        None if report.ok() => Exit::Ok.code(),
        None => Exit::ChecksFailed.code(),
    }
}
