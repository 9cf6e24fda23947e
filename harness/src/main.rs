//! `mtls-e2e`: the command line over the engine. Exit codes are documented in
//! the README and in `mtls_e2e::engine::exit`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use mtls_e2e::engine::{Engine, exit, setup_exit_code};
use mtls_e2e::mock::ServeArgs;
use mtls_e2e::report::{self, Report};
use mtls_e2e::scenario::{self, Scenario};

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
        /// Also prove the checks bite: run each scenario's mutations.
        #[arg(long)]
        mutations: bool,
        /// Write the machine-readable report (JSON) here.
        #[arg(long)]
        report: Option<PathBuf>,
        #[arg(long, default_value = "local")]
        substrate: String,
    },
    /// List scenarios and their checks.
    List { dirs: Vec<PathBuf> },
    /// Print what a run would do: objects, certificates, steps, states, nginx.conf.
    Plan {
        dir: PathBuf,
        #[arg(long, default_value = "local")]
        substrate: String,
    },
    /// Bring one scenario up and keep it running until Ctrl-C, printing how to
    /// reproduce each check by hand.
    Up {
        dir: PathBuf,
        #[arg(long, default_value = "local")]
        substrate: String,
    },
    /// Serve one of our mock components (what the container image runs).
    Serve {
        #[command(subcommand)]
        what: ServeArgs,
    },
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
            return ExitCode::from(exit::SUBSTRATE);
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::SUBSTRATE)
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
            substrate,
        } => {
            check_substrate(&substrate)?;
            let scenarios = match load(&dirs) {
                Ok(s) => s,
                Err(code) => return Ok(code),
            };
            let engine = match local_engine() {
                Ok(e) => e,
                Err(code) => return Ok(code),
            };
            for s in &engine.swept {
                eprintln!("cleaned up {s}");
            }
            tokio::select! {
                result = run(&engine, &scenarios, mutations, report.as_deref()) => result,
                _ = stop.wait() => {
                    eprintln!("interrupted: stopping everything this run started");
                    Ok(exit::INTERRUPTED)
                }
            }
        }
        Command::List { dirs } => {
            let scenarios = match load(&dirs) {
                Ok(s) => s,
                Err(code) => return Ok(code),
            };
            for s in &scenarios {
                println!("{}  ({})", s.name, s.dir.display());
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
            Ok(exit::OK)
        }
        Command::Plan { dir, substrate } => {
            check_substrate(&substrate)?;
            let (scenario, engine) = match scenario_and_engine(&dir) {
                Ok(pair) => pair,
                Err(code) => return Ok(code),
            };
            match mtls_e2e::plan::local(&engine, &scenario).await {
                Ok(text) => {
                    print!("{text}");
                    Ok(exit::OK)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(setup_exit_code(&e))
                }
            }
        }
        Command::Up { dir, substrate } => {
            check_substrate(&substrate)?;
            let (scenario, engine) = match scenario_and_engine(&dir) {
                Ok(pair) => pair,
                Err(code) => return Ok(code),
            };
            engine.prefetch_keys(&[&scenario]);
            let live = tokio::select! {
                live = engine.up(&scenario, true) => match live {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return Ok(setup_exit_code(&e));
                    }
                },
                _ = stop.wait() => return Ok(exit::INTERRUPTED),
            };
            let d = &live.deployment;
            println!(
                "{} is up on the local substrate ({} ms).",
                scenario.name, live.setup_ms
            );
            println!(
                "ingress controller: port 80 -> {}, port 443 -> {}",
                d.http, d.https
            );
            println!("nginx configuration: {}", d.dir.join("nginx").display());
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
            live.deployment.stop().await;
            eprintln!("stopped; removed {}", d_dir(&engine));
            Ok(exit::OK)
        }
        Command::Serve { what } => {
            tokio::select! {
                result = mtls_e2e::mock::serve_standalone(&what) => result.map(|_| exit::OK).map_err(Into::into),
                _ = stop.wait() => Ok(exit::OK),
            }
        }
    }
}

fn d_dir(engine: &Engine) -> String {
    engine.run_path().display().to_string()
}

/// One scenario and a local engine, or the exit code (message printed).
fn scenario_and_engine(dir: &Path) -> Result<(Scenario, Engine), u8> {
    let scenario = Scenario::load(dir).map_err(|e| {
        eprintln!("error: {e}");
        exit::BAD_INPUT
    })?;
    Ok((scenario, local_engine()?))
}

fn local_engine() -> Result<Engine, u8> {
    Engine::local().map_err(|e| {
        eprintln!("error: {e}");
        exit::ENVIRONMENT
    })
}

fn check_substrate(name: &str) -> anyhow::Result<()> {
    match name {
        "local" => Ok(()),
        other => anyhow::bail!("unknown substrate `{other}` (known: local)"),
    }
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
            return Err(exit::BAD_INPUT);
        }
        vec![default]
    } else {
        dirs.to_vec()
    };
    let mut folders = Vec::new();
    for dir in &dirs {
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
                    return Err(exit::BAD_INPUT);
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return Err(exit::BAD_INPUT);
                }
            }
        } else {
            eprintln!("error: {}: no such folder", dir.display());
            return Err(exit::BAD_INPUT);
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
                    return Err(exit::BAD_INPUT);
                }
                scenarios.push(s)
            }
            Err(e) => {
                eprintln!("error: {e}");
                return Err(exit::BAD_INPUT);
            }
        }
    }
    Ok(scenarios)
}

async fn run(
    engine: &Engine,
    scenarios: &[Scenario],
    mutations: bool,
    report_path: Option<&Path>,
) -> anyhow::Result<u8> {
    eprintln!(
        "running {} scenarios on the local substrate (nginx {}, {})",
        scenarios.len(),
        engine.nginx_version(),
        engine.local.openssl.display()
    );
    let report = engine
        .run(scenarios, |s| match &s.setup_error {
            Some(e) => eprintln!("error: {}: could not be set up: {e}", s.name),
            None => eprintln!(
                "{}: set up in {} ms ({})",
                s.name,
                s.setup_ms,
                s.setup_phases.describe()
            ),
        })
        .await;
    print!("{}", report::render_human(&report));
    let mut code = exit_code(&report);
    if mutations {
        let bitten = run_mutations(engine, scenarios).await;
        if !bitten && code == exit::OK {
            code = exit::CHECKS_FAILED;
        }
    }
    if let Some(path) = report_path {
        let json = serde_json::to_string_pretty(&report).context("serialising the report")?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(code)
}

/// Each mutation must make every check it names fail. Prints a line per mutation.
async fn run_mutations(engine: &Engine, scenarios: &[Scenario]) -> bool {
    let mut all = true;
    for s in scenarios {
        for m in &s.spec.mutations {
            match engine.run_mutation(s, m).await {
                Err(e) => {
                    all = false;
                    println!(
                        "FAIL {}/mutation/{}: could not be set up: {e}",
                        s.name, m.name
                    );
                }
                Ok(reports) => {
                    let survivors: Vec<&str> = reports
                        .iter()
                        .filter(|r| r.passed)
                        .map(|r| r.name.as_str())
                        .collect();
                    if survivors.is_empty() {
                        println!(
                            "PASS {}/mutation/{} (breaks {})",
                            s.name,
                            m.name,
                            m.breaks.join(", ")
                        );
                    } else {
                        all = false;
                        println!(
                            "FAIL {}/mutation/{}: still passing: {}",
                            s.name,
                            m.name,
                            survivors.join(", ")
                        );
                    }
                }
            }
        }
    }
    all
}

fn exit_code(report: &Report) -> u8 {
    let setup = report
        .scenarios
        .iter()
        .filter_map(|s| s.setup_exit_code)
        .min();
    match setup {
        Some(code) => code,
        None if report.ok() => exit::OK,
        None => exit::CHECKS_FAILED,
    }
}
