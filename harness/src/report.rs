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
    /// Mutations applied (`run --mutations`), and how many of them were
    /// killed: every check a hand-written one names turned red, or (a built-in
    /// one) any check or resource state did.
    pub mutations: usize,
    pub mutations_killed: usize,
    /// Built-in mutations not applied: NIC renders them the same, or the
    /// scenario declares why no check can notice them.
    pub mutations_equivalent: usize,
    pub mutations_excepted: usize,
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
            let score = MutationScore::of(&s.mutations);
            summary.mutations += score.applied;
            summary.mutations_killed += score.killed;
            summary.mutations_equivalent += score.equivalent;
            summary.mutations_excepted += score.excepted;
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
    /// Killed of applied mutations, when they ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mutation_score: Option<MutationScore>,
}

/// A scenario's mutation score: `killed` of `applied` (killed, survived, or
/// could not be set up); equivalent and excepted mutations are not applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct MutationScore {
    pub killed: usize,
    pub applied: usize,
    pub equivalent: usize,
    pub excepted: usize,
}

impl MutationScore {
    pub(crate) fn of(mutations: &[MutationReport]) -> MutationScore {
        let mut score = MutationScore::default();
        for m in mutations {
            match m.outcome {
                MutationOutcome::Killed => {
                    score.killed += 1;
                    score.applied += 1;
                }
                MutationOutcome::Survived | MutationOutcome::SetupFailed => score.applied += 1,
                MutationOutcome::Equivalent => score.equivalent += 1,
                MutationOutcome::Excepted => score.excepted += 1,
            }
        }
        score
    }

    /// `7 of 8 mutations killed (87%)`, rounded down so that only all is 100%.
    pub(crate) fn describe(&self) -> String {
        let mut text = match (self.killed * 100).checked_div(self.applied) {
            Some(percent) => format!(
                "{} of {} mutations killed ({percent}%)",
                self.killed, self.applied
            ),
            None => "no mutation applied".to_string(),
        };
        let mut aside = Vec::new();
        if self.equivalent > 0 {
            aside.push(format!("{} equivalent", self.equivalent));
        }
        if self.excepted > 0 {
            aside.push(format!("{} excepted in scenario.yaml", self.excepted));
        }
        if !aside.is_empty() {
            let _ = write!(text, "; not applied: {}", aside.join(", "));
        }
        text
    }
}

/// What became of a mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MutationOutcome {
    /// The checks noticed it.
    Killed,
    /// No check noticed it.
    Survived,
    /// The mutated scenario could not be brought up, and no check or
    /// resource state showed the change.
    SetupFailed,
    /// NIC renders the same configuration with it as without: nothing a probe
    /// sees can differ (built-in mutations only).
    Equivalent,
    /// The scenario declares why no check can notice it (`skipBuiltinMutations`).
    Excepted,
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
pub struct MutationReport {
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
    /// The named checks as they ran on the mutated scenario (a built-in
    /// mutation: every check).
    pub checks: Vec<CheckReport>,
    /// Derived from the scenario's objects (`builtin/...`): killed when any
    /// check that passed without it turns red, or a resource state changes.
    pub builtin: bool,
    pub outcome: MutationOutcome,
    /// What noticed it: checks turned red, resource states not as declared.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub killed_by: Vec<String>,
    /// Why it was not applied (equivalent or excepted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_applied: Option<String>,
}

impl MutationReport {
    /// `PASS scenario/mutation/name (breaks a, b)`, or why it failed.
    #[must_use]
    pub fn line(&self, scenario: &str) -> String {
        let name = format!("{scenario}/mutation/{}", self.name);
        let does = self.why.as_deref().unwrap_or(&self.object);
        let not_applied = self.not_applied.as_deref().unwrap_or_default();
        match (self.outcome, self.builtin) {
            (MutationOutcome::SetupFailed, _) => format!(
                "FAIL {name}: could not be set up: {}",
                self.setup_error.as_deref().unwrap_or_default()
            ),
            (MutationOutcome::Killed, false) => {
                format!("PASS {name} (breaks {})", self.breaks.join(", "))
            }
            (MutationOutcome::Killed, true) => {
                format!("PASS {name} (killed by {})", self.killed_by.join(", "))
            }
            (MutationOutcome::Survived, false) => format!(
                "FAIL {name}: with the patch on {}, these checks still pass, so they cannot tell the difference: {}",
                self.object,
                self.survivors.join(", ")
            ),
            (MutationOutcome::Survived, true) => {
                format!("FAIL {name}: no check notices when {does}")
            }
            (MutationOutcome::Equivalent, _) => format!("SKIP {name}: equivalent: {not_applied}"),
            (MutationOutcome::Excepted, _) => {
                format!("SKIP {name}: not run, as scenario.yaml says: {not_applied}")
            }
        }
    }

    /// What each surviving check saw on the mutated scenario; for a built-in
    /// mutation no check noticed, the mutation to paste.
    #[must_use]
    pub fn details(&self) -> String {
        let mut out = String::new();
        if self.builtin {
            if self.outcome == MutationOutcome::Survived {
                out.push_str(&self.to_paste());
            }
            return out;
        }
        for c in self.checks.iter().filter(|c| c.passed) {
            let _ = writeln!(out, "    still passing: {}", c.name);
            out.push_str(&failure_details(c));
        }
        out
    }

    /// The mutation as scenario.yaml's `mutations:` takes it, and as
    /// `kubectl patch` applies it to a cluster.
    pub(crate) fn to_paste(&self) -> String {
        let patch = serde_json::to_string(&self.patch).unwrap_or_default();
        let name = self
            .name
            .strip_prefix(crate::scenario::operators::PREFIX)
            .unwrap_or(&self.name)
            .replace('/', "-");
        let mut out = String::new();
        let _ = writeln!(
            out,
            "    add a check that fails with this change; then keep it under `mutations:` in scenario.yaml:"
        );
        let _ = writeln!(out, "      - name: {name}");
        let _ = writeln!(out, "        patch:");
        let _ = writeln!(out, "          object: {}", self.object);
        let _ = writeln!(out, "          merge: {patch}");
        let _ = writeln!(out, "        breaks: [THE-NEW-CHECK]");
        if let Some((kind, key)) = self.object.split_once(' ') {
            let (namespace, object) = key.split_once('/').unwrap_or(("", key));
            let namespace = if namespace.is_empty() {
                String::new()
            } else {
                format!(" -n {namespace}")
            };
            let _ = writeln!(
                out,
                "    or try it on a cluster: kubectl patch {} {object}{namespace} --type merge -p '{}'",
                kind.to_lowercase(),
                patch.replace('\'', "'\\''")
            );
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

    /// Add each scenario's mutation results (by scenario name), score them
    /// and count them.
    pub(crate) fn add_mutations(&mut self, results: Vec<(String, MutationReport)>) {
        for (scenario, m) in results {
            if let Some(s) = self.scenarios.iter_mut().find(|s| s.name == scenario) {
                s.mutations.push(m);
            }
        }
        for s in &mut self.scenarios {
            if !s.mutations.is_empty() {
                s.mutation_score = Some(MutationScore::of(&s.mutations));
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
        let not_applied = s.mutations_equivalent + s.mutations_excepted;
        if not_applied > 0 {
            let _ = write!(
                line,
                " ({not_applied} built-in ones not applied: {} equivalent, {} excepted)",
                s.mutations_equivalent, s.mutations_excepted
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
        if let Some(score) = &s.mutation_score {
            let _ = writeln!(out, "SCORE {}: {}", s.name, score.describe());
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
            let status = match m.outcome {
                MutationOutcome::Killed => TestCaseStatus::success(),
                MutationOutcome::Equivalent | MutationOutcome::Excepted => {
                    let mut status = TestCaseStatus::skipped();
                    status.set_message(m.line(&scenario.name));
                    status
                }
                MutationOutcome::Survived | MutationOutcome::SetupFailed => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status
                        .set_message(m.line(&scenario.name))
                        .set_description(m.details());
                    status
                }
            };
            suite.add_test_case(case(&format!("mutation/{}", m.name), status));
        }
        if let Some(score) = &scenario.mutation_score {
            suite.add_property(quick_junit::Property::new(
                "mutation-score",
                format!("{}/{}", score.killed, score.applied),
            ));
            suite.add_property(quick_junit::Property::new(
                "mutation-score-text",
                score.describe(),
            ));
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
            mutation_score: None,
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
            builtin: false,
            outcome: MutationOutcome::Survived,
            killed_by: Vec::new(),
            not_applied: None,
        }];
        let builtin = MutationReport {
            name: "builtin/verify-client-optional/open-webui/open-webui-mtls".into(),
            why: Some("Policy open-webui/open-webui-mtls sets ingressMTLS verifyClient `optional` instead of `on`".into()),
            object: "Policy open-webui/open-webui-mtls".into(),
            patch: serde_json::json!({"spec": {"ingressMTLS": {"verifyClient": "optional"}}}),
            breaks: Vec::new(),
            killed: true,
            survivors: Vec::new(),
            setup_error: None,
            checks: Vec::new(),
            builtin: true,
            outcome: MutationOutcome::Killed,
            killed_by: vec![
                "no-cert-400".into(),
                "the state of VirtualServer open-webui/webui: Warning, not the declared Valid".into(),
            ],
            not_applied: None,
        };
        full.mutations.push(builtin.clone());
        full.mutations.push(MutationReport {
            name: "builtin/tls-removed/open-webui/webui".into(),
            why: Some("VirtualServer open-webui/webui has no spec.tls".into()),
            object: "VirtualServer open-webui/webui".into(),
            patch: serde_json::json!({"spec": {"tls": null}}),
            killed: false,
            killed_by: Vec::new(),
            outcome: MutationOutcome::Excepted,
            not_applied: Some("why no check can notice it".into()),
            ..builtin
        });
        full.mutation_score = Some(MutationScore::of(&full.mutations));
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
            builtin: false,
            outcome: MutationOutcome::Survived,
            killed_by: Vec::new(),
            not_applied: None,
        };
        let killed = MutationReport {
            name: "other".into(),
            killed: true,
            survivors: Vec::new(),
            outcome: MutationOutcome::Killed,
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

    fn builtin(name: &str, outcome: MutationOutcome) -> MutationReport {
        MutationReport {
            name: format!("builtin/{name}/open-webui/open-webui-mtls"),
            why: Some(
                "Policy open-webui/open-webui-mtls sets ingressMTLS verifyDepth 0 instead of 1"
                    .into(),
            ),
            object: "Policy open-webui/open-webui-mtls".into(),
            patch: serde_json::json!({"spec": {"ingressMTLS": {"verifyDepth": 0}}}),
            breaks: Vec::new(),
            killed: outcome == MutationOutcome::Killed,
            survivors: Vec::new(),
            setup_error: None,
            checks: Vec::new(),
            builtin: true,
            outcome,
            killed_by: if outcome == MutationOutcome::Killed {
                vec!["no-cert-400".into()]
            } else {
                Vec::new()
            },
            not_applied: matches!(
                outcome,
                MutationOutcome::Equivalent | MutationOutcome::Excepted
            )
            .then(|| "the reason".to_string()),
        }
    }

    /// Killed of applied: equivalent and excepted mutations are not applied,
    /// one that could not be set up is (and is not killed).
    #[test]
    fn the_mutation_score_counts_applied_mutations_only() {
        let mut s = scenario("openwebui-ingress-mtls");
        s.mutations = vec![
            builtin("killed", MutationOutcome::Killed),
            builtin("survived", MutationOutcome::Survived),
            builtin("equivalent", MutationOutcome::Equivalent),
            builtin("excepted", MutationOutcome::Excepted),
            MutationReport {
                setup_error: Some("nginx did not start".into()),
                ..builtin("broken", MutationOutcome::SetupFailed)
            },
        ];
        let mut report = Report::new("local", vec![s], 10);
        report.add_mutations(Vec::new());
        let score = report.scenarios[0].mutation_score.expect("scored");
        assert_eq!(
            score,
            MutationScore {
                killed: 1,
                applied: 3,
                equivalent: 1,
                excepted: 1
            }
        );
        assert_eq!(
            score.describe(),
            "1 of 3 mutations killed (33%); not applied: 1 equivalent, 1 excepted in scenario.yaml"
        );
        assert_eq!(
            (
                report.summary.mutations,
                report.summary.mutations_killed,
                report.summary.mutations_equivalent,
                report.summary.mutations_excepted
            ),
            (3, 1, 1, 1)
        );
        assert!(!report.ok());
        let json = serde_json::to_value(&report).expect("json");
        assert_eq!(json["scenarios"][0]["mutation_score"]["applied"], 3);
        assert_eq!(json["scenarios"][0]["mutations"][1]["outcome"], "survived");
        assert_eq!(
            json["scenarios"][0]["mutations"][2]["outcome"],
            "equivalent"
        );
        assert_eq!(
            json["scenarios"][0]["mutations"][0]["killed_by"][0],
            "no-cert-400"
        );
        let human = render_human(&report);
        for line in [
            "PASS openwebui-ingress-mtls/mutation/builtin/killed/open-webui/open-webui-mtls (killed by no-cert-400)",
            "FAIL openwebui-ingress-mtls/mutation/builtin/survived/open-webui/open-webui-mtls: no check notices when Policy open-webui/open-webui-mtls sets ingressMTLS verifyDepth 0 instead of 1",
            "SKIP openwebui-ingress-mtls/mutation/builtin/equivalent/open-webui/open-webui-mtls: equivalent: the reason",
            "SKIP openwebui-ingress-mtls/mutation/builtin/excepted/open-webui/open-webui-mtls: not run, as scenario.yaml says: the reason",
            "FAIL openwebui-ingress-mtls/mutation/builtin/broken/open-webui/open-webui-mtls: could not be set up: nginx did not start",
            "SCORE openwebui-ingress-mtls: 1 of 3 mutations killed (33%)",
        ] {
            assert!(human.contains(line), "{line}\n{human}");
        }
        let xml_text = junit(&report).expect("junit");
        let parsed = quick_junit::Report::deserialize_from_str(&xml_text).expect("parse");
        let suite = &parsed.test_suites[0];
        assert_eq!(
            (suite.tests, suite.failures, suite.skipped),
            (5, 2, 2),
            "{xml_text}"
        );
        assert!(
            suite
                .properties
                .iter()
                .any(|p| p.name.as_str() == "mutation-score" && p.value.as_str() == "1/3"),
            "{xml_text}"
        );
    }

    /// A survivor is shown as the mutation a user can paste: under
    /// `mutations:` in scenario.yaml, and as `kubectl patch`.
    #[test]
    fn a_builtin_survivor_shows_its_patch_to_paste() {
        let survivor = builtin("verify-depth-lowered", MutationOutcome::Survived);
        let text = survivor.details();
        let yaml_part: String = text
            .lines()
            .skip(1)
            .take(5)
            .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
            .collect();
        assert_eq!(
            yaml_part,
            "  - name: verify-depth-lowered-open-webui-open-webui-mtls\n    patch:\n      object: Policy open-webui/open-webui-mtls\n      merge: {\"spec\":{\"ingressMTLS\":{\"verifyDepth\":0}}}\n    breaks: [THE-NEW-CHECK]\n"
        );
        // What the user pastes is a mutation scenario.yaml accepts.
        let pasted: Vec<crate::scenario::spec::MutationSpec> =
            crate::yaml::parse_one(&yaml_part, std::path::Path::new("scenario.yaml"))
                .expect("yaml");
        assert_eq!(pasted[0].patch.merge, survivor.patch);
        assert!(
            text.contains(
                "kubectl patch policy open-webui-mtls -n open-webui --type merge -p '{\"spec\":{\"ingressMTLS\":{\"verifyDepth\":0}}}'"
            ),
            "{text}"
        );
        // A killed one shows nothing more than its line.
        assert!(builtin("x", MutationOutcome::Killed).details().is_empty());
    }
}
