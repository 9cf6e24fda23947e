//! Checks whose verdicts shared state can influence, found in the configuration
//! nginx actually runs.
//!
//! The one piece of state that outlives a request is NGINX's upstream TLS
//! session cache: with `proxy_ssl_session_reuse on` (nginx's default) the
//! session is kept per upstream server, and any location proxying to that
//! upstream resumes it, whatever its own `proxy_ssl_*` settings. A location
//! that trusts the wrong CA then skips verification because another location
//! verified the session (the `egress-mtls-traps` finding). Two checks reaching
//! one upstream through locations whose TLS settings differ can therefore
//! change each other's verdict, depending on which ran first.
//!
//! Such checks form a group, and a group runs one check at a time, in the
//! order the scenario declares them, starting from a cache no check of the
//! group has touched: the verdict is the same on every run, every substrate,
//! and whichever subset of checks is asked for. (The probes themselves never
//! resume a session, and the mocks keep no other state between requests.)

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::scenario::{Check, Probe, Scenario, Target};
use crate::substrate::local::nic::routing::{Egress, Routing};

/// The `proxy_ssl_*` settings of one location, by directive.
type TlsSettings = BTreeMap<String, String>;

/// Checks that share an upstream's TLS session cache through locations with
/// different TLS settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SharedState {
    /// The upstreams whose session cache the checks share.
    pub upstreams: Vec<String>,
    /// The checks, in the order they run (the scenario's order).
    pub checks: Vec<String>,
}

impl SharedState {
    /// For a check's evidence: what it shares and what ran before it.
    pub(crate) fn explain(&self, check: &str) -> String {
        let before: Vec<&str> = self
            .checks
            .iter()
            .take_while(|c| *c != check)
            .map(String::as_str)
            .collect();
        format!(
            "shares the TLS session cache of upstream {} (proxy_ssl_session_reuse on) with {} through locations \
             whose proxy_ssl settings differ, so NGINX may resume a session another location verified; \
             these checks run one at a time in the scenario's order, and before this one ran: {}",
            self.upstreams.join(", "),
            self.checks
                .iter()
                .filter(|c| *c != check)
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            if before.is_empty() {
                "none (it started from an empty cache)".to_string()
            } else {
                before.join(", ")
            }
        )
    }
}

/// The egress a check's own request takes, if it goes through the ingress
/// controller to a TLS upstream that resumes sessions.
fn resuming_egress(routing: &Routing, check: &Check) -> Option<Egress> {
    let (target, tls, path) = match &check.probe {
        Probe::Http { url, .. } => (&url.target, url.https, url.path.as_str()),
        // s_client sends whatever `send` holds; it reaches only the handshake's
        // server, or a location we cannot tell from here: judge it by `/`.
        Probe::OpenSsl { target, .. } => (target, true, "/"),
    };
    let Target::Ingress { host, .. } = target else {
        return None;
    };
    routing
        .route(host, tls, path)?
        .egress
        .filter(|e| e.tls && e.session_reuse)
}

/// Every group of `scenario`'s checks whose verdicts a shared upstream TLS
/// session can influence, in the configuration `routing` describes.
pub(crate) fn find(scenario: &Scenario, routing: &Routing) -> Vec<SharedState> {
    let by_name: BTreeMap<&str, &Check> = scenario
        .checks
        .iter()
        .map(|c| (c.name.as_str(), c))
        .collect();
    // upstream -> (check -> the TLS settings of every location it reaches there)
    let mut users: BTreeMap<String, BTreeMap<&str, Vec<TlsSettings>>> = BTreeMap::new();
    for check in &scenario.checks {
        // A check's requests: those of the checks it is primed with, then its own.
        let requests = check
            .after
            .iter()
            .filter_map(|a| by_name.get(a.as_str()).copied())
            .chain(std::iter::once(check));
        for request in requests {
            if let Some(e) = resuming_egress(routing, request) {
                users
                    .entry(e.upstream)
                    .or_default()
                    .entry(check.name.as_str())
                    .or_default()
                    .push(e.ssl_settings);
            }
        }
    }
    let mut groups: Vec<(BTreeSet<String>, BTreeSet<&str>)> = Vec::new();
    for (upstream, checks) in users {
        let settings: BTreeSet<&BTreeMap<String, String>> = checks.values().flatten().collect();
        if settings.len() < 2 {
            continue;
        }
        let members: BTreeSet<&str> = checks.keys().copied().collect();
        // Merge with every group that shares a check.
        let mut merged = (BTreeSet::from([upstream]), members);
        groups.retain(|(ups, chs)| {
            if chs.is_disjoint(&merged.1) {
                true
            } else {
                merged.0.extend(ups.iter().cloned());
                merged.1.extend(chs.iter().copied());
                false
            }
        });
        groups.push(merged);
    }
    let order = |name: &str| scenario.checks.iter().position(|c| c.name == name);
    let mut out: Vec<SharedState> = groups
        .into_iter()
        .map(|(upstreams, checks)| {
            let mut checks: Vec<String> = checks.into_iter().map(String::from).collect();
            checks.sort_by_key(|c| order(c));
            SharedState {
                upstreams: upstreams.into_iter().collect(),
                checks,
            }
        })
        .collect();
    out.sort_by_key(|g| g.checks.first().and_then(|c| order(c)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_upstream_with_other_tls_settings_is_a_hazard() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/egress-mtls-traps");
        let scenario = Scenario::load(&dir).expect("egress-mtls-traps loads");
        // Two locations on one upstream, one trusting the right CA, one not.
        let conf = r"
            upstream vs_traps_gw { server 127.0.0.1:1; }
            upstream vs_traps_own { server 127.0.0.1:2; }
            server {
                listen 443 ssl; server_name HOST;
                location / { proxy_ssl_trusted_certificate good.crt; proxy_pass https://vs_traps_gw; }
                location /wrong { proxy_ssl_trusted_certificate other.crt; proxy_pass https://vs_traps_gw; }
                location /alone { proxy_ssl_trusted_certificate other.crt; proxy_pass https://vs_traps_own; }
            }";
        let check = |name: &str, path: &str| Check {
            name: name.into(),
            probe: Probe::Http {
                method: crate::scenario::Method::Get,
                url: crate::scenario::Url::parse(&format!("https://HOST{path}")).unwrap(),
                json: None,
                headers: BTreeMap::default(),
            },
            after: Vec::new(),
            ..scenario.checks[0].clone()
        };
        let mut s = scenario.clone();
        s.checks = vec![
            check("good", "/"),
            check("wrong", "/wrong"),
            check("alone", "/alone"),
        ];
        let found = find(&s, &Routing::parse([conf]));
        assert_eq!(
            found,
            vec![SharedState {
                upstreams: vec!["vs_traps_gw".into()],
                checks: vec!["good".into(), "wrong".into()],
            }]
        );
        assert!(
            found[0]
                .explain("wrong")
                .ends_with("before this one ran: good")
        );
        // The same settings everywhere: resuming changes nothing.
        let same = conf.replace(
            "other.crt; proxy_pass https://vs_traps_gw",
            "good.crt; proxy_pass https://vs_traps_gw",
        );
        assert!(find(&s, &Routing::parse([same.as_str()])).is_empty());
        // Session reuse off on one side: that location neither reads nor fills the cache.
        let off = conf.replace(
            "other.crt; proxy_pass https://vs_traps_gw",
            "other.crt; proxy_ssl_session_reuse off; proxy_pass https://vs_traps_gw",
        );
        assert!(find(&s, &Routing::parse([off.as_str()])).is_empty());
        // Priming a check with another's request makes it reach that upstream too.
        s.checks[2].after = vec!["good".into()];
        let primed = find(&s, &Routing::parse([conf]));
        assert_eq!(primed[0].checks, ["good", "wrong", "alone"]);
    }
}
