//! `mtls-e2e run`: scenarios, their checks and mutations, and the reports.

use std::path::Path;

use crate::engine::{Engine, MutationKinds};
use crate::error::Error;
use crate::exit::Exit;
use crate::report::{self, Report, ScenarioOutcome};
use crate::scenario::Scenario;
use crate::selection::Selection;
use crate::substrate::cluster::{self, ClusterOptions};

use super::args::{MutationsArg, RunArgs, check_writable};
use super::signals::Stop;
use super::{load, start};

pub(crate) async fn command(args: RunArgs, stop: &mut Stop) -> Result<Exit, Error> {
    let selection = Selection::new(&args.check, &args.skip)
        .map_err(|e| Error::Input(format!("--check/--skip: {e}")))?;
    let options = args.substrate.cluster_options()?;
    if args.mutations.is_some() && options.is_some() {
        return Err(Error::Input(
            "--mutations runs on the local substrate only (each mutation is a fresh bring-up)"
                .into(),
        ));
    }
    // Found out now, not after every check has run.
    for (flag, path) in [("--report", &args.report), ("--junit", &args.junit)] {
        if let Some(path) = path {
            check_writable(path)
                .map_err(|e| Error::Input(format!("{flag} {}: {e}", path.display())))?;
        }
    }
    let started = std::time::Instant::now();
    let (json, junit) = (args.report.as_deref(), args.junit.as_deref());
    match load_and_run(&args, options.as_ref(), selection, stop).await {
        Ok(report) => {
            write_outputs(&report, json, junit)?;
            Ok(exit_of(&report))
        }
        // Whatever ended the run, the reports say so (CI uploads them).
        Err(e) => {
            let substrate = options.as_ref().map_or("local", ClusterOptions::label);
            let report = Report::not_run(
                substrate,
                &e.to_string(),
                e.exit().code(),
                crate::probe::millis(started.elapsed()),
            );
            if let Err(w) = write_outputs(&report, json, junit) {
                tracing::warn!("{w}");
            }
            Err(e)
        }
    }
}

/// Load the scenarios, bring the substrate up, run: the report, or what
/// kept the run from giving one.
async fn load_and_run(
    args: &RunArgs,
    options: Option<&ClusterOptions>,
    selection: Selection,
    stop: &mut Stop,
) -> Result<Report, Error> {
    let mut scenarios = load::scenarios(&args.dirs)?;
    // Scenarios none of whose checks are selected are not brought up.
    scenarios.retain(|s| {
        s.checks
            .iter()
            .any(|c| selection.includes(&s.name, &c.name))
    });
    if scenarios.is_empty() {
        return Err(Error::Input(
            "--check/--skip select no check; names read `scenario/check` (see `mtls-e2e list`)"
                .into(),
        ));
    }
    load::check_for_cluster(options, &scenarios)?;
    let mut engine = start::engine(options, &scenarios, stop).await?;
    engine.selection = selection;
    for s in &engine.swept {
        tracing::info!("cleaned up {s}");
    }
    let result = tokio::select! {
        result = run(&engine, &scenarios, args.mutations.map(MutationsArg::kinds)) => result,
        () = stop.wait() => {
            tracing::warn!("interrupted: stopping everything this run started");
            cluster::stop_running_tools();
            Err(Error::Interrupted)
        }
    };
    if matches!(result, Err(Error::Interrupted)) {
        start::cleanup_after_interrupt(&engine, &scenarios).await;
    }
    engine.close().await;
    result
}

async fn run(
    engine: &Engine,
    scenarios: &[Scenario],
    mutations: Option<MutationKinds>,
) -> Result<Report, Error> {
    tracing::info!(
        "running {} scenarios on the {}",
        scenarios.len(),
        engine.describe()
    );
    if !engine.setup.0.is_empty() {
        tracing::info!("substrate ready ({})", engine.setup.describe());
    }
    let mut report = engine
        .run(scenarios, |s| match &s.outcome {
            ScenarioOutcome::Skipped(why) => tracing::info!("{}: skipped: {why}", s.name),
            // The error itself is in the results below: printed once.
            ScenarioOutcome::SetupFailed { .. } => {
                tracing::warn!("{}: could not be set up (why: in the results)", s.name);
            }
            ScenarioOutcome::Ran => tracing::info!(
                "{}: set up in {} ms ({})",
                s.name,
                s.setup_ms,
                s.setup_phases.describe()
            ),
        })
        .await;
    if let Some(kinds) = mutations {
        let started = std::time::Instant::now();
        let results = engine.mutations(scenarios, &report, kinds).await;
        tracing::info!(
            "{} mutations in {:.1} s",
            results.len(),
            started.elapsed().as_secs_f64()
        );
        report.add_mutations(results);
    }
    print!("{}", report::render_human(&report));
    Ok(report)
}

/// The paths were checked before the run; a write that fails now is still
/// the path the user gave (exit 2), never "the substrate failed".
fn write_outputs(report: &Report, json: Option<&Path>, junit: Option<&Path>) -> Result<(), Error> {
    let write = |path: &Path, text: String| {
        std::fs::write(path, text)
            .map_err(|e| Error::Input(format!("writing {}: {e}", path.display())))
    };
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(report)
            .map_err(|e| Error::Substrate(format!("serialising the report: {e}")))?;
        write(path, text)?;
    }
    if let Some(path) = junit {
        let xml = report::junit(report)
            .map_err(|e| Error::Substrate(format!("writing the JUnit XML: {e}")))?;
        write(path, xml)?;
    }
    Ok(())
}

/// A setup failure's code wins (the lowest: bad input before a missing tool
/// before a failed substrate); then whether every check passed.
fn exit_of(report: &Report) -> Exit {
    let setup = report
        .scenarios
        .iter()
        .filter_map(|s| match s.outcome {
            ScenarioOutcome::SetupFailed { exit, .. } => Some(exit),
            _ => None,
        })
        .min_by_key(|exit| exit.code());
    match setup {
        Some(exit) => exit,
        None if report.ok() => Exit::Ok,
        None => Exit::ChecksFailed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report that cannot be written is the path the user gave (exit 2),
    /// not a failed substrate (exit 4).
    #[test]
    fn an_unwritable_report_is_bad_input() {
        let report = Report::new("local", Vec::new(), 0);
        let gone = Path::new("/nonexistent-folder-of-mtls-e2e/report.json");
        let e = write_outputs(&report, Some(gone), None).expect_err("no such folder");
        assert_eq!(e.exit(), Exit::BadInput, "{e}");
        let e = write_outputs(&report, None, Some(gone)).expect_err("no such folder");
        assert_eq!(e.exit(), Exit::BadInput, "{e}");
    }
}
