//! The application behind the command line: `main.rs` only calls [`main`].
//! Every command returns its outcome (`Exit`) or an [`Error`], printed once
//! here; [`Error::exit`] is the only mapping from a failure to an exit code.

pub mod args;
mod download;
pub mod load;
mod logs;
mod run;
mod signals;
mod start;
mod up;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::engine::Engine;
use crate::error::Error;
use crate::exit::Exit;
use crate::substrate::cluster;

use args::{Cli, Command, SubstrateArgs};
use signals::Stop;

/// Parse the command line, run the command, print its error (if any) and
/// give its exit code.
#[must_use]
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let on_cluster = match &cli.command {
        Command::Run(args) => args.substrate.is_cluster(),
        Command::Up { substrate, .. } => substrate.is_cluster(),
        _ => false,
    };
    logs::init(cli.verbose, cli.quiet, on_cluster);
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Substrate(format!("cannot start the async runtime: {e}")))
        .and_then(|runtime| runtime.block_on(dispatch(cli.command)));
    let exit = match outcome {
        Ok(exit) => exit,
        Err(e) => {
            eprintln!("{}", e.render());
            e.exit()
        }
    };
    ExitCode::from(exit.code())
}

async fn dispatch(command: Command) -> Result<Exit, Error> {
    // Listen for Ctrl-C and SIGTERM before anything starts, so that no signal
    // can arrive in a window where it would kill us and leave nginx behind.
    let mut stop = Stop::install()?;
    match command {
        Command::Run(args) => run::command(args, &mut stop).await,
        Command::List { dirs } => list(&dirs),
        Command::Plan { dirs, substrate } => plan(&dirs, &substrate).await,
        Command::Up {
            dir,
            mutation,
            substrate,
        } => up::command(&dir, mutation.as_deref(), &substrate, &mut stop).await,
        Command::Lint(args) => lint(&args),
        Command::Image { tag, in_docker } => {
            let binary = std::env::current_exe()
                .map_err(|e| Error::Substrate(format!("finding this binary: {e}")))?;
            let source = cluster::image::decide(in_docker).map_err(|e| Error::from(&e))?;
            cluster::image::build_with(source, &tag, &binary).map_err(|e| Error::from(&e))?;
            match source {
                cluster::image::ImageSource::HostBinary => println!(
                    "built {tag} from {} (nothing pulled); push it where your cluster can pull it",
                    binary.display()
                ),
                cluster::image::ImageSource::Dockerfile => println!(
                    "built {tag} with docker build from the repository's Dockerfile; push it where your cluster can pull it"
                ),
            }
            Ok(Exit::Ok)
        }
        Command::Init { dir, from } => crate::init::run(&dir, &from).map(|summary| {
            print!("{summary}");
            Exit::Ok
        }),
        Command::Download { cache } => download::command(cache).await,
        Command::Serve { what } => tokio::select! {
            result = crate::mock::serve_standalone(&what) => result
                .map(|()| Exit::Ok)
                .map_err(|e| Error::Substrate(format!("{e:#}"))),
            () = stop.wait() => Ok(Exit::Interrupted),
        },
    }
}

/// `lint`: the findings of every unit, printed in the chosen format; exit 1
/// when one is at or above `--deny`.
fn lint(args: &args::LintArgs) -> Result<Exit, Error> {
    use crate::lint;
    let linted: Vec<lint::Linted> = lint::units(&args.dirs)?.iter().map(lint::lint).collect();
    let text = match args.format {
        args::LintFormat::Human => lint::human(&linted, args.deny),
        args::LintFormat::Json => pretty(&lint::json(&linted, args.deny))?,
        args::LintFormat::Sarif => pretty(&lint::sarif(&linted))?,
    };
    print!("{text}");
    Ok(if lint::denied(&linted, args.deny) {
        Exit::ChecksFailed
    } else {
        Exit::Ok
    })
}

fn pretty(value: &impl serde::Serialize) -> Result<String, Error> {
    serde_json::to_string_pretty(value)
        .map(|mut text| {
            text.push('\n');
            text
        })
        .map_err(|e| Error::Substrate(format!("writing the output: {e}")))
}

fn list(dirs: &[PathBuf]) -> Result<Exit, Error> {
    for s in &load::scenarios(dirs)? {
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
        for m in &s.builtin {
            let does = m.why.as_deref().unwrap_or_default();
            match s.builtin_exception(&m.name) {
                Some(skip) => println!(
                    "    {}/mutation/{} (not run: {})",
                    s.name,
                    m.name,
                    skip.why.split_whitespace().collect::<Vec<_>>().join(" ")
                ),
                None => println!("    {}/mutation/{} ({does})", s.name, m.name),
            }
        }
    }
    Ok(Exit::Ok)
}

async fn plan(dirs: &[PathBuf], substrate: &SubstrateArgs) -> Result<Exit, Error> {
    let options = substrate.cluster_options()?;
    let scenarios = load::scenarios(dirs)?;
    load::check_for_cluster(options.as_ref(), &scenarios)?;
    if let Some(options) = options {
        let refs: Vec<_> = scenarios.iter().collect();
        print!(
            "{}",
            crate::plan::cluster(&options, &refs).map_err(|e| Error::from(&e))?
        );
        return Ok(Exit::Ok);
    }
    let engine = Engine::local_for_plan().map_err(|e| Error::from(&e))?;
    for scenario in &scenarios {
        print!(
            "{}",
            crate::plan::local(&engine, scenario)
                .await
                .map_err(|e| Error::from(&e))?
        );
    }
    Ok(Exit::Ok)
}
