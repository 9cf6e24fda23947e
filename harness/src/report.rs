//! Results: a stable machine-readable report (`mtls-e2e.report/v2`) and the
//! human view (a line per check, and the evidence of every failure).

use std::fmt::Write;

use serde::Serialize;

use crate::exit::Exit;
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
        let ms = crate::probe::millis(since.elapsed());
        tracing::debug!(phase = name, ms, "phase done");
        self.0.push((name.to_string(), ms));
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
            match s.outcome {
                ScenarioOutcome::Ran => {}
                ScenarioOutcome::Skipped(_) => summary.skipped += 1,
                ScenarioOutcome::SetupFailed { .. } => summary.setup_failed += 1,
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
    /// Ran, skipped or not set up (JSON: `skipped`, `setup_error`, `setup_exit_code`).
    #[serde(flatten)]
    pub outcome: ScenarioOutcome,
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

/// How far a scenario got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScenarioOutcome {
    /// Brought up; its checks ran (each with its own verdict).
    Ran,
    /// Not run here, and why (e.g. it needs a newer NIC).
    Skipped(String),
    /// Could not be brought up, so no check ran; `exit` is what that failure maps to.
    SetupFailed { error: String, exit: Exit },
}

impl ScenarioOutcome {
    pub(crate) fn skipped(&self) -> Option<&str> {
        match self {
            ScenarioOutcome::Skipped(why) => Some(why),
            _ => None,
        }
    }

    pub(crate) fn setup_error(&self) -> Option<&str> {
        match self {
            ScenarioOutcome::SetupFailed { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// As the v2 report has it: three fields, of which at most one pair is set.
impl Serialize for ScenarioOutcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Fields<'a> {
            skipped: Option<&'a str>,
            setup_error: Option<&'a str>,
            setup_exit_code: Option<u8>,
        }
        let exit = match self {
            ScenarioOutcome::SetupFailed { exit, .. } => Some(exit.code()),
            _ => None,
        };
        Fields {
            skipped: self.skipped(),
            setup_error: self.setup_error(),
            setup_exit_code: exit,
        }
        .serialize(serializer)
    }
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
    /// The pods the failing request reached, with what each answered, or that
    /// none did (local substrate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reached: Option<String>,
    /// State this check shares with others (see `hazard`), and what ran before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_state: Option<String>,
    /// Tries of its requests that failed at the connection level and were
    /// tried again (clusters only; see `retry`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retries: Vec<crate::retry::Retry>,
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

/// One line for a check: `PASS scenario/check (12 ms)`, and how often its
/// requests were tried again.
pub(crate) fn check_line(scenario: &str, check: &CheckReport) -> String {
    let retried = match check.retries.len() {
        0 => String::new(),
        1 => "; 1 retry after a connection failure".to_string(),
        n => format!("; {n} retries after connection failures"),
    };
    format!(
        "{} {scenario}/{} ({} ms{retried})",
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
    if let Some(reached) = &check.reached {
        let _ = writeln!(out, "      reached: {reached}");
    }
    for r in &check.retries {
        let _ = writeln!(
            out,
            "      retried: {} try {} ({:?}): {}",
            r.check, r.attempt, r.failure, r.error
        );
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
        if let Some(why) = s.outcome.skipped() {
            let _ = writeln!(out, "SKIP {}: {why}", s.name);
            continue;
        }
        if let Some(e) = s.outcome.setup_error() {
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
        if let (Some(dir), None) = (&s.artifacts, s.outcome.setup_error()) {
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
        if let Some(why) = scenario.outcome.skipped() {
            let mut status = TestCaseStatus::skipped();
            status.set_message(why);
            suite.add_test_case(case(name, status));
        }
        if let Some(e) = scenario.outcome.setup_error() {
            let mut text = e.to_string();
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
            outcome: ScenarioOutcome::Ran,
            setup_ms: 5,
            setup_phases: Phases::default(),
            resources: Vec::new(),
            not_started: Vec::new(),
            checks: Vec::new(),
            artifacts: None,
            mutations: Vec::new(),
        }
    }

    /// A report with every field set once: its JSON is the schema users parse.
    fn every_field() -> Report {
        let expect: Expect = serde_json::from_value(serde_json::json!({
            "status": 400, "bodyContains": ["No required SSL certificate"],
            "clientCertRequested": true, "acceptableCaNames": ["CN = client-ca"]
        }))
        .expect("expect");
        let observation = Observation {
            target: "GET https://webui.example.com/ via 127.0.0.1:4443".into(),
            tls: Some(crate::probe::TlsFacts {
                protocol: Some("TLSv1.3".into()),
                cipher: Some("TLS_AES_256_GCM_SHA384".into()),
                client_cert_requested: true,
                acceptable_ca_names: vec!["CN = client-ca".into()],
                peer_chain: vec!["CN = webui.example.com".into(), "CN = server-ca".into()],
                verified_chain: vec!["CN = webui.example.com".into()],
                verification: "OK".into(),
                client_cert_sent: Some("CN = good-client".into()),
            }),
            response: Some(crate::probe::HttpFacts {
                status: 200,
                headers: [("content-type".to_string(), "text/html".to_string())].into(),
                body: "<html>Open WebUI</html>".into(),
            }),
            rejected: false,
            alert: Some("unknown ca".into()),
            error: Some("connection reset".into()),
            command: Some("openssl s_client -connect 127.0.0.1:4443".into()),
            transcript: Some("CONNECTED(00000003)".into()),
            elapsed_ms: 12,
            client: Some("127.1.0.7:40000".into()),
            connection: Some(crate::net::ConnectionFailure::Dropped),
        };
        let check = CheckReport {
            name: "good-client-200".into(),
            passed: false,
            why: Some("a client of the trusted CA gets in".into()),
            origin: "scenarios/x/scenario.yaml:12".into(),
            expected: expect,
            failures: vec!["status: expected 400, got 200".into()],
            controller: Some("VirtualServer open-webui/webui: Valid".into()),
            observation,
            nginx_log: Some("client SSL certificate verify error".into()),
            reached: Some("Deployment open-webui/open-webui: GET / for=127.1.0.7 -> 200".into()),
            shared_state: Some("nginx's TLS session cache".into()),
            retries: vec![crate::retry::Retry {
                check: "good-client-200".into(),
                attempt: 1,
                failure: crate::net::ConnectionFailure::Refused,
                error: "connection refused".into(),
            }],
        };
        let mut full = scenario("openwebui-ingress-mtls");
        full.dir = "scenarios/openwebui-ingress-mtls".into();
        full.setup_phases = Phases(vec![("certificates".into(), 3), ("nginx".into(), 2)]);
        full.resources = vec![ResourceState {
            kind: "VirtualServer".into(),
            key: "open-webui/webui".into(),
            state: ControllerState::Warning,
            reason: "AddedOrUpdatedWithWarning".into(),
            message: "Configuration was added or updated with warning(s)".into(),
            warnings: vec!["policy open-webui/x is missing".into()],
            origin: Origin::file(std::path::Path::new("virtualserver.yaml")),
        }];
        full.not_started = vec!["aigw: no Secret internal-ca".into()];
        full.checks = vec![check.clone()];
        full.artifacts = Some("mtls-e2e-artifacts/openwebui-ingress-mtls".into());
        full.mutations = vec![MutationReport {
            name: "verify-client-off".into(),
            why: Some("without verification anyone gets in".into()),
            object: "Policy open-webui/open-webui-mtls".into(),
            patch: serde_json::json!({"spec": {"ingressMTLS": {"verifyClient": "off"}}}),
            breaks: vec!["good-client-200".into()],
            killed: false,
            survivors: vec!["good-client-200".into()],
            setup_error: None,
            checks: vec![check],
        }];
        let mut skipped = scenario("ingress-mergeable");
        skipped.outcome =
            ScenarioOutcome::Skipped("needs NGINX Ingress Controller 5.5 or newer".into());
        let mut broken = scenario("policy-errors");
        broken.outcome = ScenarioOutcome::SetupFailed {
            error: "nginx would not start".into(),
            exit: Exit::Substrate,
        };
        Report::new("local", vec![full, skipped, broken], 1234)
    }

    /// The JSON report is an interface: a change to it shows here first
    /// (`MTLS_E2E_UPDATE_GOLDEN=1` rewrites the file; bump `SCHEMA` when a
    /// field changes meaning or goes away).
    #[test]
    fn the_json_report_is_pinned_by_its_golden_file() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/report-v2.json");
        let now = serde_json::to_string_pretty(&every_field()).expect("json") + "\n";
        if std::env::var("MTLS_E2E_UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
            std::fs::write(&path, &now).expect("write golden");
        }
        let golden = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (MTLS_E2E_UPDATE_GOLDEN=1 writes it)",
                path.display()
            )
        });
        assert_eq!(
            golden,
            now,
            "the report JSON changed; see {}",
            path.display()
        );
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

    /// Every retry shows: on the check's line, in its evidence, in the JSON.
    #[test]
    fn retries_show_in_the_line_the_evidence_and_the_json() {
        let retry = crate::retry::Retry {
            check: "good-cert-200".into(),
            attempt: 1,
            failure: crate::net::ConnectionFailure::Dropped,
            error: "connection closed before message completed".into(),
        };
        let check = CheckReport {
            name: "good-cert-200".into(),
            passed: false,
            why: None,
            origin: "scenario.yaml:3".into(),
            expected: Expect::default(),
            failures: vec!["status 502, expected 200".into()],
            controller: None,
            observation: Observation::default(),
            nginx_log: None,
            reached: None,
            shared_state: None,
            retries: vec![retry],
        };
        assert!(
            check_line("s", &check).ends_with("; 1 retry after a connection failure)"),
            "{}",
            check_line("s", &check)
        );
        assert!(
            failure_details(&check).contains(
                "retried: good-cert-200 try 1 (Dropped): connection closed before message completed"
            ),
            "{}",
            failure_details(&check)
        );
        let json = serde_json::to_value(&check).expect("json");
        assert_eq!(json["retries"][0]["failure"], "dropped");
        let mut clean = check.clone();
        clean.retries.clear();
        assert!(
            serde_json::to_value(&clean)
                .expect("json")
                .get("retries")
                .is_none()
        );
        assert!(!check_line("s", &clean).contains("retr"));
    }

    #[test]
    fn junit_counts_skips_and_setup_errors_and_escapes() {
        let mut skipped = scenario("ingress-mergeable");
        skipped.outcome = ScenarioOutcome::Skipped(
            "needs NGINX Ingress Controller 5.5 or newer; the cluster runs 5.3.4".into(),
        );
        let mut broken = scenario("a<b");
        broken.outcome = ScenarioOutcome::SetupFailed {
            error: "Policy \"x\" & friends".into(),
            exit: Exit::BadInput,
        };
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
                    s.outcome = ScenarioOutcome::Skipped("old".into());
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
