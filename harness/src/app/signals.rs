//! Ctrl-C and SIGTERM. Stopping is dropping: the futures holding nginx and the
//! mocks are dropped, which stops them, and the run folder goes with the engine.

use crate::error::Error;

pub(crate) struct Stop {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Stop {
    /// Installed before any work, so that no signal arrives in a window where
    /// it would kill us and leave nginx behind.
    pub(crate) fn install() -> Result<Stop, Error> {
        use tokio::signal::unix::{SignalKind, signal};
        let handler = |kind: SignalKind, what: &str| {
            signal(kind)
                .map_err(|e| Error::Substrate(format!("installing the {what} handler: {e}")))
        };
        Ok(Stop {
            interrupt: handler(SignalKind::interrupt(), "Ctrl-C")?,
            terminate: handler(SignalKind::terminate(), "SIGTERM")?,
        })
    }

    pub(crate) async fn wait(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
