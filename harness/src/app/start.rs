//! Starting the chosen substrate, and cleaning a cluster up after an interrupt.

use crate::engine::{Engine, Substrate};
use crate::error::Error;
use crate::scenario::Scenario;
use crate::substrate::cluster::{self, ClusterOptions, Mode};

use super::signals::Stop;

/// The engine for the chosen substrate (`None`: local).
pub(crate) async fn engine(
    options: Option<&ClusterOptions>,
    scenarios: &[Scenario],
    stop: &mut Stop,
) -> Result<Engine, Error> {
    let Some(options) = options else {
        return Engine::local().map_err(|e| Error::from(&e));
    };
    let binary = std::env::current_exe()
        .map_err(|e| Error::Substrate(format!("cannot find this binary: {e}")))?;
    tracing::info!("preparing the {} substrate", options.label());
    let scenarios: Vec<&Scenario> = scenarios.iter().collect();
    tokio::select! {
        engine = Engine::cluster(options.clone(), &scenarios, &binary) => engine.map_err(|e| Error::from(&e)),
        () = stop.wait() => {
            tracing::warn!("interrupted while preparing the cluster");
            cluster::stop_running_tools();
            if let Mode::Kind { name, .. } = &options.mode {
                let (name, cache) = (name.clone(), options.cache.clone());
                let _ = tokio::task::spawn_blocking(move || {
                    cluster::kind::cleanup_interrupted(&name, &cache);
                })
                .await;
            }
            Err(Error::Interrupted)
        }
    }
}

/// After an interrupt on a cluster: the scenarios' objects are deleted (unless
/// --keep).
pub(crate) async fn cleanup_after_interrupt(engine: &Engine, scenarios: &[Scenario]) {
    if let Substrate::Cluster(c) = &engine.substrate {
        if c.cluster.options.keep {
            return;
        }
        for s in scenarios {
            let _ = cluster::apply::down(&c.cluster, s).await;
        }
    }
}
