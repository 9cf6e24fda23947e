//! Where scenarios run. `local`: the embedded default (no cluster). The kind and
//! existing-cluster substrates live beside it and share the scenario format,
//! the steps, the identities and the checks.

pub mod cluster;
pub(crate) mod identities;
pub mod local;
pub(crate) mod rundir;

use crate::manifest::ManifestError;
use crate::scenario::steps::StepError;

/// Why a scenario could not be brought up.
#[derive(Debug, thiserror::Error)]
pub enum SubstrateError {
    /// The scenario's files are wrong (exit code 2).
    #[error("{0}")]
    Input(#[from] ManifestError),
    /// A tutorial step failed (exit code 2, or 3 when a tool is missing).
    #[error("{0}")]
    Step(#[from] StepError),
    /// Something the machine lacks (exit code 3).
    #[error("{0}")]
    Environment(String),
    /// The substrate itself failed (exit code 4).
    #[error("{0}")]
    Failed(String),
}

/// NIC's port 80 or 443, wherever a substrate exposes them.
pub(crate) fn ingress_address(
    port: u16,
    http: std::net::SocketAddr,
    https: std::net::SocketAddr,
) -> Result<std::net::SocketAddr, String> {
    match port {
        80 => Ok(http),
        443 => Ok(https),
        other => Err(format!(
            "the ingress controller listens on 80 and 443, not {other}"
        )),
    }
}
