//! `mtls-e2e up`: one scenario running until Ctrl-C, with the commands to poke at it.

use std::path::Path;

use crate::engine::{self, Deployment, Engine};
use crate::error::Error;
use crate::exit::Exit;
use crate::scenario::{Scenario, Target};
use crate::substrate::cluster;

use super::args::SubstrateArgs;
use super::signals::Stop;
use super::{load, start};

pub(crate) async fn command(
    dir: &Path,
    mutation: Option<&str>,
    substrate: &SubstrateArgs,
    stop: &mut Stop,
) -> Result<Exit, Error> {
    let options = substrate.cluster_options()?;
    let scenario = load::one(dir)?;
    let (scenario, breaks) = match mutation {
        None => (scenario, Vec::new()),
        Some(name) => mutated(&scenario, name)?,
    };
    load::check_for_cluster(options.as_ref(), std::slice::from_ref(&scenario))?;
    let engine = start::engine(options.as_ref(), std::slice::from_ref(&scenario), stop).await?;
    let result = up(&engine, &scenario, &breaks, stop).await;
    engine.close().await;
    result
}

/// The scenario with its mutation `name` (hand-written or built-in) applied,
/// and the checks it must break (a built-in one names none: any may turn red).
fn mutated(scenario: &Scenario, name: &str) -> Result<(Scenario, Vec<String>), Error> {
    let Some(mutation) = scenario
        .spec
        .mutations
        .iter()
        .chain(&scenario.builtin)
        .find(|m| m.name == name)
    else {
        let known: Vec<&str> = scenario
            .spec
            .mutations
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        return Err(Error::Input(format!(
            "{}: no mutation `{name}`; it has {}{}",
            scenario.name,
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            },
            if scenario.builtin.is_empty() {
                String::new()
            } else {
                format!(
                    ", and {} built-in ones (`mtls-e2e list` names them)",
                    scenario.builtin.len()
                )
            }
        )));
    };
    let mutated = scenario
        .mutated(mutation)
        .map_err(|e| Error::Input(e.to_string()))?;
    println!(
        "mutation {name}: {} patched with {}",
        mutation.patch.object, mutation.patch.merge
    );
    Ok((mutated, mutation.breaks.clone()))
}

async fn up(
    engine: &Engine,
    scenario: &Scenario,
    breaks: &[String],
    stop: &mut Stop,
) -> Result<Exit, Error> {
    engine.prefetch_keys(&[scenario]);
    if let Some(reason) = engine.skip_reason(scenario) {
        return Err(Error::Input(format!(
            "{} cannot run here: {reason}",
            scenario.name
        )));
    }
    let live = tokio::select! {
        live = engine.up(scenario, true) => live.map_err(|e| Error::from(&e))?,
        () = stop.wait() => {
            cluster::stop_running_tools();
            start::cleanup_after_interrupt(engine, std::slice::from_ref(scenario)).await;
            return Err(Error::Interrupted);
        }
    };
    println!(
        "{} is up on the {} ({} ms).",
        scenario.name,
        engine.describe(),
        live.setup_ms
    );
    let address = |port| {
        live.deployment.address(&Target::Ingress {
            host: String::new(),
            port,
        })
    };
    if let (Ok(http), Ok(https)) = (address(80), address(443)) {
        println!("ingress controller: port 80 -> {http}, port 443 -> {https}");
    }
    match &live.deployment {
        Deployment::Local(d) => println!("nginx configuration: {}", d.dir.join("nginx").display()),
        Deployment::Cluster(d) => {
            for (service, f) in &d.services {
                println!("Service {service} -> {} (port-forward)", f.local);
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
        if breaks.contains(&c.name) {
            println!("# the mutation must turn `{}` red:", c.name);
        }
        println!("{}", engine::by_hand(&live, c));
    }
    println!("\nPress Ctrl-C to stop and clean up.");
    stop.wait().await;
    engine.finish(live.deployment).await;
    tracing::info!("stopped; removed {}", engine.run_path().display());
    Ok(Exit::Interrupted)
}
