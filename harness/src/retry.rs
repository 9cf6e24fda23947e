//! Which probes a check tries again. On a cluster every endpoint change is a
//! full nginx reload shared by every scenario running at the time, and a
//! request that lands on a worker being recycled loses its connection: NIC's
//! own e2e suite retries exactly that one request on a connection error
//! (`tests/suite/FLAKY_RELOAD_REQUESTS.md`, added after v5.5.4, and its
//! `retry_get_until_body_contains`). So: only a connection-level failure
//! (refused, reset, closed before any response) that fails the check is tried
//! again, at most [`CLUSTER_TRIES`] times in all; an answer (a status, a body,
//! a TLS alert) never is, whatever it says. The local substrate reloads
//! nothing while checks run: one try.

use std::time::Duration;

use serde::Serialize;

use crate::net::ConnectionFailure;
use crate::probe::Observation;

/// Tries per probe on a cluster.
pub(crate) const CLUSTER_TRIES: u32 = 3;
/// Tries per probe on the local substrate.
pub(crate) const LOCAL_TRIES: u32 = 1;
/// Between tries: the interval NIC's suite waits (`wait_before_test(1)`),
/// longer than a reload of our scenarios' configuration takes.
pub(crate) const PAUSE: Duration = Duration::from_secs(1);

/// One try that was not taken as the answer, as the report shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Retry {
    /// The check whose request it was (a check's `after` requests are tried too).
    pub check: String,
    /// Which try (1 = the first).
    pub attempt: u32,
    pub failure: ConnectionFailure,
    /// The probe's error.
    pub error: String,
}

/// Try again after `attempt` tries (1-based) of `tries`? Only when the
/// observation fails the check (`passes` false) for want of any answer at the
/// connection level.
pub(crate) fn try_again(observation: &Observation, passes: bool, attempt: u32, tries: u32) -> bool {
    let answered = observation.response.is_some() || observation.alert.is_some();
    !passes && attempt < tries && !answered && observation.connection.is_some()
}

/// The record of a try that is tried again.
pub(crate) fn record(check: &str, attempt: u32, observation: &Observation) -> Option<Retry> {
    Some(Retry {
        check: check.to_string(),
        attempt,
        failure: observation.connection?,
        error: observation.error.clone().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::HttpFacts;

    fn dropped() -> Observation {
        Observation {
            error: Some("connection closed before message completed".into()),
            connection: Some(ConnectionFailure::Dropped),
            ..Observation::default()
        }
    }

    /// A status or body that does not match is the server's answer: never
    /// tried again, not even once, on any substrate.
    #[test]
    fn a_mismatch_is_never_retried() {
        let mismatch = Observation {
            response: Some(HttpFacts {
                status: 502,
                body: "502 Bad Gateway".into(),
                ..HttpFacts::default()
            }),
            ..Observation::default()
        };
        for attempt in 1..=CLUSTER_TRIES {
            assert!(!try_again(&mismatch, false, attempt, CLUSTER_TRIES));
        }
        // Even if the connection failed after the response arrived.
        let mut late = mismatch.clone();
        late.connection = Some(ConnectionFailure::Dropped);
        assert!(!try_again(&late, false, 1, CLUSTER_TRIES));
    }

    #[test]
    fn a_tls_alert_is_an_answer_not_a_connection_failure() {
        let mut alert = dropped();
        alert.alert = Some("certificate required".into());
        alert.rejected = true;
        assert!(!try_again(&alert, false, 1, CLUSTER_TRIES));
    }

    #[test]
    fn connection_failures_are_retried_a_bounded_number_of_times() {
        let refused = Observation {
            connection: Some(ConnectionFailure::Refused),
            ..Observation::default()
        };
        for o in [dropped(), refused] {
            assert!(try_again(&o, false, 1, CLUSTER_TRIES));
            assert!(try_again(&o, false, 2, CLUSTER_TRIES));
            assert!(!try_again(&o, false, 3, CLUSTER_TRIES), "bounded");
            assert!(!try_again(&o, false, 1, LOCAL_TRIES), "local: one try");
            assert!(
                !try_again(&o, true, 1, CLUSTER_TRIES),
                "what passes is kept"
            );
        }
        let timeout = Observation {
            error: Some("no answer within 10s".into()),
            ..Observation::default()
        };
        assert!(!try_again(&timeout, false, 1, CLUSTER_TRIES));
        let r = record("c", 1, &dropped()).expect("a record");
        assert_eq!((r.attempt, r.failure), (1, ConnectionFailure::Dropped));
    }
}
