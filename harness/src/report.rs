//! Results: a stable machine-readable report (`mtls-e2e.report/v2`) and the
//! human view (a line per check, and the evidence of every failure).

use std::fmt::Write;

use serde::Serialize;

use crate::manifest::Object;
use crate::probe::Observation;
use crate::scenario::Expect;
use crate::yaml::Origin;

pub(crate) use crate::manifest::ControllerState;

pub(crate) const SCHEMA: &str = "mtls-e2e.report/v2";

/// A resource's status as the controller reports it (`VirtualServer` and `Policy`
/// status, `Ingress` events).
#[derive(Debug, Clone, Serialize)]
pub struct ResourceState {
    pub kind: String,
    pub key: String,
    pub state: ControllerState,
    pub reason: String,
    pub message: String,
    pub warnings: Vec<String>,
    #[serde(skip)]
    pub origin: Origin,
}

impl ResourceState {
    pub(crate) fn new(
        object: &Object,
        state: ControllerState,
        reason: &str,
        message: String,
        warnings: Vec<String>,
    ) -> Self {
        ResourceState {
            kind: object.id.kind.to_string(),
            key: object.id.key(),
            state,
            reason: reason.into(),
            message,
            warnings,
            origin: object.origin(),
        }
    }

    /// `Kind ns/name`, as scenario files name resources.
    pub(crate) fn id(&self) -> String {
        format!("{} {}", self.kind, self.key)
    }
}

/// How long each part of bringing a scenario up took.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Phases(pub Vec<(String, u64)>);

impl Phases {
    pub(crate) fn record(&mut self, name: &str, since: &mut std::time::Instant) {
        self.0
            .push((name.to_string(), crate::probe::millis(since.elapsed())));
        *since = std::time::Instant::now();
    }

    /// `certificates 210 ms, steps 80 ms, ...`
    pub(crate) fn describe(&self) -> String {
        self.0
            .iter()
            .map(|(n, ms)| format!("{n} {ms} ms"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub schema: &'static str,
    pub substrate: String,
    pub elapsed_ms: u64,
    /// Set when the run ended before any scenario could report: the
    /// substrate could not be set up (preflight, cluster, installs), the
    /// scenarios could not be loaded, or the run was interrupted.
    pub setup_error: Option<String>,
    /// The exit code that failure maps to.
    pub setup_exit_code: Option<u8>,
    pub scenarios: Vec<ScenarioReport>,
    pub summary: Summary,
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Summary {
    pub scenarios: usize,
    pub checks: usize,
    pub passed: usize,
    pub failed: usize,
    /// Scenarios that could not be brought up.
    pub setup_failed: usize,
    /// Scenarios skipped (a newer NIC needed), with no checks run.
    pub skipped: usize,
    /// Mutations applied (`run --mutations`), and how many of them turned
    /// every check they name red.
    pub mutations: usize,
    pub mutations_killed: usize,
}

impl Summary {
    fn of(scenarios: &[ScenarioReport]) -> Summary {
        let mut summary = Summary {
            scenarios: scenarios.len(),
            ..Summary::default()
        };
        for s in scenarios {
            if s.setup_error.is_some() {
                summary.setup_failed += 1;
            }
            if s.skipped.is_some() {
                summary.skipped += 1;
            }
            summary.checks += s.checks.len();
            summary.passed += s.checks.iter().filter(|c| c.passed).count();
            summary.failed += s.checks.iter().filter(|c| !c.passed).count();
            summary.mutations += s.mutations.len();
            summary.mutations_killed += s.mutations.iter().filter(|m| m.killed).count();
        }
        summary
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ScenarioReport {
    pub name: String,
    pub dir: String,
    /// Why the scenario did not run here (e.g. it needs a newer NIC).
    pub skipped: Option<String>,
    /// Set when the scenario could not be brought up; no check ran.
    pub setup_error: Option<String>,
    /// The exit code that setup failure maps to (2, 3 or 4).
    pub setup_exit_code: Option<u8>,
    pub setup_ms: u64,
    pub setup_phases: Phases,
    /// Resource states as the controller reports them.
    pub resources: Vec<ResourceState>,
    /// Pods that could not start, and why.
    pub not_started: Vec<String>,
    pub checks: Vec<CheckReport>,
    /// Where the evidence of a failure was collected (cluster substrates).
    pub artifacts: Option<String>,
    /// The scenario's mutations, when they ran (`run --mutations`).
    pub mutations: Vec<MutationReport>,
}

/// One deliberate breakage and whether the checks noticed it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MutationReport {
    pub name: String,
    pub why: Option<String>,
    /// `Kind ns/name` the patch is applied to, and the RFC 7386 merge patch.
    pub object: String,
    pub patch: serde_json::Value,
    /// The checks that must fail once the patch is applied.
    pub breaks: Vec<String>,
    /// Every named check failed: the checks can tell the difference.
    pub killed: bool,
    /// Named checks that still passed on the mutated scenario.
    pub survivors: Vec<String>,
    /// The mutated scenario could not be brought up.
    pub setup_error: Option<String>,
    /// The named checks as they ran on the mutated scenario.
    pub checks: Vec<CheckReport>,
}

impl MutationReport {
    /// `PASS scenario/mutation/name (breaks a, b)`, or why it failed.
    pub(crate) fn line(&self, scenario: &str) -> String {
        let name = format!("{scenario}/mutation/{}", self.name);
        match (&self.setup_error, self.killed) {
            (Some(e), _) => format!("FAIL {name}: could not be set up: {e}"),
            (None, true) => format!("PASS {name} (breaks {})", self.breaks.join(", ")),
            (None, false) => format!(
                "FAIL {name}: with the patch on {}, these checks still pass, so they cannot tell the difference: {}",
                self.object,
                self.survivors.join(", ")
            ),
        }
    }

    /// What each surviving check saw on the mutated scenario.
    pub(crate) fn details(&self) -> String {
        let mut out = String::new();
        for c in self.checks.iter().filter(|c| c.passed) {
            let _ = writeln!(out, "    still passing: {}", c.name);
            out.push_str(&failure_details(c));
        }
        out
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub name: String,
    pub passed: bool,
    pub why: Option<String>,
    /// `file:line` of the check in scenario.yaml.
    pub origin: String,
    pub expected: Expect,
    pub failures: Vec<String>,
    /// The controller's state for the resource serving the probed host (failed checks).
    pub controller: Option<String>,
    pub observation: Observation,
    /// nginx's error log lines written during a failing check (local substrate).
    pub nginx_log: Option<String>,
    /// State this check shares with others (see `hazard`), and what ran before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_state: Option<String>,
}

impl Report {
    pub(crate) fn new(substrate: &str, scenarios: Vec<ScenarioReport>, elapsed_ms: u64) -> Report {
        let summary = Summary::of(&scenarios);
        Report {
            schema: SCHEMA,
            substrate: substrate.into(),
            elapsed_ms,
            setup_error: None,
            setup_exit_code: None,
            scenarios,
            summary,
        }
    }

    /// The report of a run that ended before any scenario reported, with why.
    pub(crate) fn not_run(substrate: &str, error: &str, exit_code: u8, elapsed_ms: u64) -> Report {
        Report {
            setup_error: Some(error.to_string()),
            setup_exit_code: Some(exit_code),
            ..Report::new(substrate, Vec::new(), elapsed_ms)
        }
    }

    /// Add each scenario's mutation results (by scenario name) and count them.
    pub(crate) fn add_mutations(&mut self, results: Vec<(String, MutationReport)>) {
        for (scenario, m) in results {
            if let Some(s) = self.scenarios.iter_mut().find(|s| s.name == scenario) {
                s.mutations.push(m);
            }
        }
        self.summary = Summary::of(&self.scenarios);
    }

    pub(crate) fn ok(&self) -> bool {
        let s = &self.summary;
        self.setup_error.is_none()
            && s.failed == 0
            && s.setup_failed == 0
            && s.mutations_killed == s.mutations
            && (s.checks > 0 || s.skipped > 0)
    }

    pub(crate) fn summary_line(&self) -> String {
        let s = &self.summary;
        let mut line = format!(
            "{} {} checks in {} scenarios: {} passed, {} failed",
            if self.ok() { "ok:" } else { "FAILED:" },
            s.checks,
            s.scenarios,
            s.passed,
            s.failed
        );
        if s.setup_failed > 0 {
            let _ = write!(line, ", {} scenarios could not be set up", s.setup_failed);
        }
        if s.skipped > 0 {
            let _ = write!(line, ", {} scenarios skipped", s.skipped);
        }
        if s.mutations > 0 {
            let _ = write!(
                line,
                "; mutations: {} of {} break their checks",
                s.mutations_killed, s.mutations
            );
        }
        let _ = write!(
            line,
            " ({} substrate, {:.2} s)",
            self.substrate,
            self.elapsed_ms as f64 / 1000.0
        );
        line
    }
}

/// One line for a check: `PASS scenario/check (12 ms)`.
pub(crate) fn check_line(scenario: &str, check: &CheckReport) -> String {
    format!(
        "{} {scenario}/{} ({} ms)",
        if check.passed { "PASS" } else { "FAIL" },
        check.name,
        check.observation.elapsed_ms
    )
}

/// The evidence of a failed check, for humans.
#[must_use]
pub fn failure_details(check: &CheckReport) -> String {
    let mut out = String::new();
    let o = &check.observation;
    let _ = writeln!(out, "    at {}", check.origin);
    if let Some(why) = &check.why {
        let _ = writeln!(out, "    why: {}", why.trim());
    }
    let _ = writeln!(out, "    probe: {}", o.target);
    if let Some(cmd) = &o.command {
        let _ = writeln!(out, "    command: {cmd}");
    }
    for f in &check.failures {
        let _ = writeln!(out, "    ✗ {f}");
    }
    let _ = writeln!(out, "    evidence:");
    if let Some(r) = &o.response {
        let _ = writeln!(
            out,
            "      status {}; body {}",
            r.status,
            crate::check::excerpt(&r.body)
        );
    }
    if let Some(t) = &o.tls {
        let _ = writeln!(
            out,
            "      TLS {} {}; verification: {}; client cert requested: {}{}",
            t.protocol.as_deref().unwrap_or("?"),
            t.cipher.as_deref().unwrap_or(""),
            t.verification,
            if t.client_cert_requested { "yes" } else { "no" },
            if t.acceptable_ca_names.is_empty() {
                String::new()
            } else {
                format!(" (CAs: {})", t.acceptable_ca_names.join("; "))
            }
        );
        if !t.peer_chain.is_empty() {
            let _ = writeln!(out, "      server chain: {}", t.peer_chain.join(" <- "));
        }
        if let Some(sent) = &t.client_cert_sent {
            let _ = writeln!(out, "      client certificate sent: {sent}");
        }
    }
    if o.rejected {
        let _ = writeln!(
            out,
            "      refused at the TLS layer{}",
            o.alert
                .as_deref()
                .map(|a| format!(": {a}"))
                .unwrap_or_default()
        );
    }
    if let Some(e) = &o.error {
        let _ = writeln!(out, "      error: {e}");
    }
    if let Some(t) = &o.transcript {
        let lines: Vec<&str> = t.lines().take(25).collect();
        let _ = writeln!(
            out,
            "      openssl said:\n        {}",
            lines.join("\n        ")
        );
    }
    if let Some(view) = &check.controller {
        let _ = writeln!(out, "      controller: {view}");
    }
    if let Some(shared) = &check.shared_state {
        let _ = writeln!(out, "      shared state: {shared}");
    }
    if let Some(log) = check.nginx_log.as_deref().filter(|l| !l.trim().is_empty()) {
        let _ = writeln!(
            out,
            "      nginx error.log:\n        {}",
            log.lines().collect::<Vec<_>>().join("\n        ")
        );
    }
    out
}

/// The whole human report: per-scenario setup problems, a line per check, the
/// evidence of each failure, and the summary.
pub(crate) fn render_human(report: &Report) -> String {
    let mut out = String::new();
    for s in &report.scenarios {
        if let Some(why) = &s.skipped {
            let _ = writeln!(out, "SKIP {}: {why}", s.name);
            continue;
        }
        if let Some(e) = &s.setup_error {
            let _ = writeln!(out, "SETUP FAILED {}: {e}", s.name);
            if let Some(dir) = &s.artifacts {
                let _ = writeln!(out, "    artifacts: {dir}");
            }
            continue;
        }
        for c in &s.checks {
            let _ = writeln!(out, "{}", check_line(&s.name, c));
            if !c.passed {
                out.push_str(&failure_details(c));
            }
        }
        for m in &s.mutations {
            let _ = writeln!(out, "{}", m.line(&s.name));
            out.push_str(&m.details());
        }
    }
    for s in &report.scenarios {
        if let (Some(dir), None) = (&s.artifacts, &s.setup_error) {
            let _ = writeln!(out, "artifacts of {}: {dir}", s.name);
        }
    }
    let _ = writeln!(out, "{}", report.summary_line());
    out
}

/// The report as `JUnit` XML (a testsuite per scenario, a testcase per check),
/// for CI systems that show test results.
pub(crate) fn junit(report: &Report) -> Result<String, quick_junit::SerializeError> {
    use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
    let seconds = |ms: u64| std::time::Duration::from_millis(ms);
    let mut out = quick_junit::Report::new(format!("mtls-e2e ({})", report.substrate));
    out.set_time(seconds(report.elapsed_ms));
    if let Some(e) = &report.setup_error {
        let mut suite = TestSuite::new("setup");
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status
            .set_message(e.lines().next().unwrap_or_default())
            .set_description(e.as_str());
        let mut case = TestCase::new(format!("the {} substrate", report.substrate), status);
        case.set_classname("setup");
        case.set_time(seconds(report.elapsed_ms));
        suite.add_test_case(case);
        out.add_test_suite(suite);
    }
    for scenario in &report.scenarios {
        let name = scenario.name.as_str();
        let mut suite = TestSuite::new(name);
        suite.set_time(seconds(
            scenario.setup_ms
                + scenario
                    .checks
                    .iter()
                    .map(|c| c.observation.elapsed_ms)
                    .sum::<u64>(),
        ));
        let case = |case_name: &str, status: TestCaseStatus| {
            let mut case = TestCase::new(case_name, status);
            case.set_classname(name);
            case
        };
        if let Some(why) = &scenario.skipped {
            let mut status = TestCaseStatus::skipped();
            status.set_message(why.as_str());
            suite.add_test_case(case(name, status));
        }
        if let Some(e) = &scenario.setup_error {
            let mut text = e.clone();
            if let Some(dir) = &scenario.artifacts {
                let _ = write!(text, "\nartifacts: {dir}");
            }
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status
                .set_message(e.lines().next().unwrap_or_default())
                .set_description(text);
            let mut setup = case("setup", status);
            setup.set_time(seconds(scenario.setup_ms));
            suite.add_test_case(setup);
        }
        for c in &scenario.checks {
            let status = if c.passed {
                TestCaseStatus::success()
            } else {
                let mut details = failure_details(c);
                if let Some(dir) = &scenario.artifacts {
                    let _ = writeln!(details, "    artifacts: {dir}");
                }
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status
                    .set_message(c.failures.first().map_or("failed", String::as_str))
                    .set_description(details);
                status
            };
            let mut check = case(&c.name, status);
            check.set_time(seconds(c.observation.elapsed_ms));
            suite.add_test_case(check);
        }
        for m in &scenario.mutations {
            let status = if m.killed {
                TestCaseStatus::success()
            } else {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status
                    .set_message(m.line(&scenario.name))
                    .set_description(m.details());
                status
            };
            suite.add_test_case(case(&format!("mutation/{}", m.name), status));
        }
        out.add_test_suite(suite);
    }
    out.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(name: &str) -> ScenarioReport {
        ScenarioReport {
            name: name.into(),
            dir: String::new(),
            skipped: None,
            setup_error: None,
            setup_exit_code: None,
            setup_ms: 5,
            setup_phases: Phases::default(),
            resources: Vec::new(),
            not_started: Vec::new(),
            checks: Vec::new(),
            artifacts: None,
            mutations: Vec::new(),
        }
    }

    #[test]
    fn a_surviving_mutation_is_a_failure_everywhere() {
        let mut s = scenario("openwebui-ingress-mtls");
        let survivor = MutationReport {
            name: "verify-client-off".into(),
            why: None,
            object: "Policy open-webui/open-webui-mtls".into(),
            patch: serde_json::json!({"spec": {"ingressMTLS": {"verifyClient": "off"}}}),
            breaks: vec!["no-cert-400".into()],
            killed: false,
            survivors: vec!["no-cert-400".into()],
            setup_error: None,
            checks: Vec::new(),
        };
        let killed = MutationReport {
            name: "other".into(),
            killed: true,
            survivors: Vec::new(),
            ..survivor.clone()
        };
        s.mutations = vec![survivor, killed];
        let report = Report::new("local", vec![s], 10);
        assert!(!report.ok());
        assert_eq!(
            (report.summary.mutations, report.summary.mutations_killed),
            (2, 1)
        );
        assert!(
            report
                .summary_line()
                .contains("mutations: 1 of 2 break their checks"),
            "{}",
            report.summary_line()
        );
        let json = serde_json::to_value(&report).expect("json");
        assert_eq!(json["schema"], "mtls-e2e.report/v2");
        assert_eq!(
            json["scenarios"][0]["mutations"][0]["survivors"][0],
            "no-cert-400"
        );
        let xml_text = junit(&report).expect("junit");
        let parsed = quick_junit::Report::deserialize_from_str(&xml_text).expect("parse");
        let suite = &parsed.test_suites[0];
        assert_eq!((suite.tests, suite.failures), (2, 1), "{xml_text}");
        let status = |case: &str| {
            suite
                .test_cases
                .iter()
                .find(|c| c.name.as_str() == case)
                .map(|c| c.status.clone())
        };
        assert!(
            matches!(
                status("mutation/verify-client-off"),
                Some(quick_junit::TestCaseStatus::NonSuccess {
                    kind: quick_junit::NonSuccessKind::Failure,
                    ..
                })
            ),
            "{xml_text}"
        );
        assert!(
            matches!(
                status("mutation/other"),
                Some(quick_junit::TestCaseStatus::Success { .. })
            ),
            "{xml_text}"
        );
        assert!(
            render_human(&report)
                .contains("FAIL openwebui-ingress-mtls/mutation/verify-client-off")
        );
    }

    #[test]
    fn junit_counts_skips_and_setup_errors_and_escapes() {
        let mut skipped = scenario("ingress-mergeable");
        skipped.skipped =
            Some("needs NGINX Ingress Controller 5.5 or newer; the cluster runs 5.3.4".into());
        let mut broken = scenario("a<b");
        broken.setup_error = Some("Policy \"x\" & friends".into());
        broken.artifacts = Some("/tmp/artifacts/a<b".into());
        let report = Report::new("kind", vec![skipped, broken], 1200);
        let xml_text = junit(&report).expect("junit");
        assert!(xml_text.contains("skipped=\"1\""));
        assert!(xml_text.contains("errors=\"1\""));
        assert!(xml_text.contains("<skipped message=\"needs NGINX Ingress Controller 5.5"));
        assert!(xml_text.contains("name=\"a&lt;b\""));
        assert!(xml_text.contains("Policy &quot;x&quot; &amp; friends"));
        assert!(!report.ok());
        let only_skipped = Report::new(
            "kind",
            vec![scenario("x")]
                .into_iter()
                .map(|mut s| {
                    s.skipped = Some("old".into());
                    s
                })
                .collect(),
            1,
        );
        assert!(only_skipped.ok());
    }

    /// A run that could not start still reports, with why and its exit code,
    /// and is red everywhere.
    #[test]
    fn a_run_that_could_not_start_reports_why() {
        let report = Report::not_run(
            "kind",
            "the kind substrate cannot start:\n  - (exit 3) kind is not on PATH",
            3,
            40,
        );
        assert!(!report.ok());
        let json = serde_json::to_value(&report).expect("json");
        assert_eq!(json["setup_exit_code"], 3);
        assert!(
            json["setup_error"]
                .as_str()
                .is_some_and(|e| e.contains("kind is not on PATH"))
        );
        let xml_text = junit(&report).expect("junit");
        let parsed = quick_junit::Report::deserialize_from_str(&xml_text).expect("parse");
        assert_eq!(parsed.test_suites[0].errors, 1, "{xml_text}");
        assert!(xml_text.contains("kind is not on PATH"), "{xml_text}");
        let fine = Report::new("kind", Vec::new(), 1);
        assert!(serde_json::to_value(&fine).expect("json")["setup_error"].is_null());
    }
}
