//! The exit codes the README documents: the one place they are numbered.

/// How a command ended, as its exit code tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Every check passed.
    Ok,
    /// At least one check failed, or a mutation did not break its checks, or
    /// (`lint`) a finding is at or above `--deny`.
    ChecksFailed,
    /// A scenario, manifest or option is invalid (file and line are printed).
    BadInput,
    /// A tool the substrate needs is missing (nginx, openssl, kind, ...).
    Environment,
    /// The substrate failed (nginx would not start, a cluster step failed).
    Substrate,
    /// Interrupted (Ctrl-C or SIGTERM); everything started was stopped.
    Interrupted,
}

impl Exit {
    #[cfg(test)]
    pub(crate) const ALL: [Exit; 6] = [
        Exit::Ok,
        Exit::ChecksFailed,
        Exit::BadInput,
        Exit::Environment,
        Exit::Substrate,
        Exit::Interrupted,
    ];

    pub(crate) fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::ChecksFailed => 1,
            Exit::BadInput => 2,
            Exit::Environment => 3,
            Exit::Substrate => 4,
            Exit::Interrupted => 130,
        }
    }

    /// The README's words for the code (its "Exit codes" table).
    #[cfg(test)]
    pub(crate) fn meaning(self) -> &'static str {
        match self {
            Exit::Ok => "every check passed (`lint`: no finding at or above `--deny`)",
            Exit::ChecksFailed => {
                "at least one check failed (or, with `--mutations`, a mutation did not break its checks; `lint`: a finding at or above `--deny`)"
            }
            Exit::BadInput => {
                "bad input: a scenario or manifest is invalid; the message names the file and line"
            }
            Exit::Environment => {
                "a tool is missing (nginx, openssl; kind, docker, kubectl; cert-manager or NIC on an existing cluster); the message says how to get it"
            }
            Exit::Substrate => {
                "the substrate failed (nginx would not start, a cluster step failed or timed out, a download did not match its sha256)"
            }
            Exit::Interrupted => {
                "interrupted (Ctrl-C or SIGTERM); everything the run started was stopped and removed"
            }
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}
