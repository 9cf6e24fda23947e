//! Every failure the tool reports, by what the person can do about it. Each
//! library error converts into [`Error`], and [`Error::exit`] is the only
//! mapping from a failure to an exit code. (The engine, above this module,
//! converts its own error in engine.rs, so nothing here depends on it.)

use crate::exit::Exit;
use crate::scenario::steps::StepError;
use crate::substrate::SubstrateError;
use crate::substrate::cluster::ClusterError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Fix the scenario, a manifest or an option (exit 2).
    #[error("{0}")]
    Input(String),
    /// Install what is missing (exit 3).
    #[error("{0}")]
    Environment(String),
    /// The substrate failed (exit 4).
    #[error("{0}")]
    Substrate(String),
    /// Ctrl-C or SIGTERM (exit 130): not a failure of the run, but it ends it.
    #[error("interrupted; everything this run started was stopped and removed")]
    Interrupted,
}

impl Error {
    pub(crate) fn exit(&self) -> Exit {
        match self {
            Error::Input(_) => Exit::BadInput,
            Error::Environment(_) => Exit::Environment,
            Error::Substrate(_) => Exit::Substrate,
            Error::Interrupted => Exit::Interrupted,
        }
    }

    /// The message as the command line prints it.
    pub(crate) fn render(&self) -> String {
        match self {
            Error::Interrupted => self.to_string(),
            _ => format!("error: {self}"),
        }
    }
}

impl From<&SubstrateError> for Error {
    fn from(e: &SubstrateError) -> Self {
        let text = e.to_string();
        match e {
            SubstrateError::Input(_) => Error::Input(text),
            SubstrateError::Step(StepError::Environment { .. }) => Error::Environment(text),
            SubstrateError::Step(StepError::Substrate { .. }) => Error::Substrate(text),
            SubstrateError::Step(_) => Error::Input(text),
            SubstrateError::Environment(_) => Error::Environment(text),
            SubstrateError::Failed(_) => Error::Substrate(text),
        }
    }
}

impl From<SubstrateError> for Error {
    fn from(e: SubstrateError) -> Self {
        Error::from(&e)
    }
}

impl From<&ClusterError> for Error {
    fn from(e: &ClusterError) -> Self {
        let text = e.to_string();
        match e {
            ClusterError::Missing(_) => Error::Environment(text),
            ClusterError::Input(_) => Error::Input(text),
            ClusterError::Failed(_) => Error::Substrate(text),
            // Each problem with its own code; the whole is the lowest of them
            // (bad input before a missing tool before a failed substrate).
            ClusterError::Preflight {
                substrate,
                problems,
            } => {
                let each: Vec<Error> = problems.iter().map(Error::from).collect();
                let mut text = format!(
                    "the {substrate} substrate cannot start ({} problem(s), in the order the run needs them):",
                    each.len()
                );
                for problem in &each {
                    text.push_str(&format!("\n  - (exit {}) {problem}", problem.exit().code()));
                }
                match each.iter().map(Error::exit).min_by_key(|e| e.code()) {
                    Some(Exit::BadInput) => Error::Input(text),
                    Some(Exit::Environment) => Error::Environment(text),
                    _ => Error::Substrate(text),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineError;

    /// Every kind of failure and the exit code it gives, as a table.
    #[test]
    fn one_mapping_from_failure_to_exit_code() {
        let manifest = || crate::manifest::ManifestError {
            origin: crate::yaml::Origin::file(std::path::Path::new("scenario.yaml")),
            message: "bad".into(),
        };
        let cases: Vec<(Error, u8)> = vec![
            (SubstrateError::Input(manifest()).into(), 2),
            (
                SubstrateError::Step(StepError::Environment {
                    origin: crate::yaml::Origin::file(std::path::Path::new("scenario.yaml")),
                    message: "no openssl".into(),
                })
                .into(),
                3,
            ),
            (
                SubstrateError::Step(StepError::Substrate {
                    origin: crate::yaml::Origin::file(std::path::Path::new("scenario.yaml")),
                    message: "Secret team/s: not reached within 180s".into(),
                })
                .into(),
                4,
            ),
            (SubstrateError::Environment("x".into()).into(), 3),
            (SubstrateError::Failed("x".into()).into(), 4),
            ((&ClusterError::Missing("kind".into())).into(), 3),
            ((&ClusterError::Input("flag".into())).into(), 2),
            ((&ClusterError::Failed("apply".into())).into(), 4),
            ((&EngineError::Environment("nginx".into())).into(), 3),
            (Error::Interrupted, 130),
            (
                (&EngineError::RunDir(std::io::Error::other("full"))).into(),
                4,
            ),
            (
                (&EngineError::Cluster(ClusterError::Missing("docker".into()))).into(),
                3,
            ),
            (
                (&ClusterError::Preflight {
                    substrate: "existing",
                    problems: vec![
                        ClusterError::Failed("NIC has no pod".into()),
                        ClusterError::Missing("kubectl".into()),
                    ],
                })
                    .into(),
                3,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.exit().code(), code, "{error:?}");
        }
    }

    /// A preflight lists every problem with its own exit code, in order.
    #[test]
    fn a_preflight_lists_each_problem_with_its_exit_code() {
        let e = Error::from(&ClusterError::Preflight {
            substrate: "kind",
            problems: vec![
                ClusterError::Missing("kind is not on PATH".into()),
                ClusterError::Input("namespace x is not watched".into()),
            ],
        });
        assert_eq!(e.exit(), Exit::BadInput);
        let text = e.to_string();
        assert!(
            text.contains(
                "  - (exit 3) kind is not on PATH\n  - (exit 2) namespace x is not watched"
            ),
            "{text}"
        );
    }

    /// The README's exit-code table is this enum.
    #[test]
    fn the_readme_documents_every_exit_code() {
        let readme = include_str!("../../README.md");
        for exit in Exit::ALL {
            let row = format!("| {} | {} |", exit.code(), exit.meaning());
            assert!(readme.contains(&row), "README lacks `{row}`");
        }
    }
}
