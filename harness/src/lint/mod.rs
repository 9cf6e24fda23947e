//! `mtls-e2e lint`: the traps of an mTLS setup, found in the manifests alone,
//! without running anything.
//!
//! A folder is linted as the local substrate would configure NIC from it: the
//! placement of policies, their secrets and defaults are NIC's own decisions
//! as `substrate::local::nic` models them (the same functions the renderer
//! calls), so what lint reports and what the local substrate renders agree by
//! construction. Every finding names a shipped scenario that shows, on the
//! local substrate, what the trap costs.

mod findings;
mod sarif;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::Error;
use crate::manifest::{self, Kind, Object};
use crate::scenario::{self, Scenario};
use crate::yaml::{self, Origin};

pub(crate) use sarif::sarif;

/// How much a finding matters; `--deny` fails the run at or above one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Level {
    /// Worth knowing; what to check is said.
    Note,
    /// Likely a mistake, or a weakness an attacker can use.
    Warning,
    /// NIC answers 500, refuses the configuration, or mTLS is not enforced.
    Error,
}

impl Level {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Level::Note => "note",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// One kind of finding: its stable id, level, what it is, the fix, and the
/// shipped scenario that shows what it costs.
#[derive(Debug, Serialize)]
pub(crate) struct Rule {
    pub id: &'static str,
    pub level: Level,
    pub what: &'static str,
    pub fix: &'static str,
    pub scenario: &'static str,
}

/// Every finding lint reports (the README's "Lint" table is this list).
pub(crate) const RULES: &[Rule] = &[
    Rule {
        id: "plain-http-bypasses-mtls",
        level: Level::Error,
        what: "a host whose HTTPS side requires client certificates also serves plain HTTP on port 80, where nginx asks for none",
        fix: "VirtualServer: `spec.tls.redirect: {enable: true}` (based on the scheme, not `x-forwarded-proto`); Ingress: leave `nginx.org/ssl-redirect` at its default `true`",
        scenario: "plain-http-port-80",
    },
    Rule {
        id: "ingress-mtls-not-on-server",
        level: Level::Error,
        what: "an ingressMTLS policy on a VirtualServer route, a VirtualServerRoute subroute or a minion Ingress: NIC refuses it there and that location answers 500",
        fix: "reference the ingressMTLS policy in the VirtualServer's `spec.policies` (or on the master / standard Ingress)",
        scenario: "policy-errors",
    },
    Rule {
        id: "ingress-mtls-without-tls",
        level: Level::Error,
        what: "an ingressMTLS policy on a VirtualServer or Ingress without TLS: NIC answers 500 for every request",
        fix: "give the resource TLS (`spec.tls.secret`, or an Ingress `spec.tls` entry for the host)",
        scenario: "ingress-mtls-annotation",
    },
    Rule {
        id: "ingress-mtls-ignored-for-host",
        level: Level::Error,
        what: "an Ingress with ingressMTLS and `spec.tls`, but not for this host: NIC ignores the policy there and serves the host without mTLS",
        fix: "list the host in a `spec.tls` entry (with its certificate), or move it to its own Ingress",
        scenario: "ingress-mtls-annotation",
    },
    Rule {
        id: "secret-wrong-type",
        level: Level::Error,
        what: "a policy's Secret is of a type NIC refuses there (`nginx.org/ca` for clientCertSecret and trustedCertSecret, `kubernetes.io/tls` for tlsSecret): NIC answers 500",
        fix: "make a Secret of the right type (for a CA: `type: nginx.org/ca` holding only `ca.crt`, as tutorial 000's jq step does) and reference it",
        scenario: "policy-errors",
    },
    Rule {
        id: "policy-invalid",
        level: Level::Error,
        what: "NIC rejects the Policy (status Invalid); every resource referencing it answers 500",
        fix: "fix the field NIC names",
        scenario: "policy-errors",
    },
    Rule {
        id: "policy-answers-500",
        level: Level::Error,
        what: "NIC throws away the policies of this context and answers 500 for another reason it names (a Secret's data it refuses, a policy type Ingress does not support)",
        fix: "fix what NIC names",
        scenario: "policy-errors",
    },
    Rule {
        id: "reference-not-found",
        level: Level::Warning,
        what: "a Policy or Secret that is named but not among the linted manifests (nor made by a scenario step or a cert-manager Certificate): unless it exists in the cluster, NIC answers 500",
        fix: "create it in the namespace NIC looks in (a Policy's Secrets live in the Policy's namespace), or lint the folder that holds it too",
        scenario: "policy-errors",
    },
    Rule {
        id: "policy-ignored",
        level: Level::Warning,
        what: "NIC ignores a policy of this context with a warning (a second ingressMTLS or egressMTLS policy, deny rules overridden by allow rules)",
        fix: "keep one policy of each kind per context",
        scenario: "policy-errors",
    },
    Rule {
        id: "crl-file-not-created",
        level: Level::Warning,
        what: "`crlFileName` names a file in NIC's own /etc/nginx/secrets, which NIC never writes: unless you mount it there, nginx refuses to load the configuration and the host is not served",
        fix: "put the CRL in the CA Secret as `ca.crl` and drop `crlFileName`, or mount the file into NIC's pod",
        scenario: "policy-errors",
    },
    Rule {
        id: "verify-server-without-ssl-name",
        level: Level::Error,
        what: "egressMTLS `verifyServer` without `sslName`: NIC checks the upstream's certificate against `$proxy_host`, the name of its generated upstream block, which no certificate carries (502)",
        fix: "set `sslName` to a DNS name in the upstream's certificate (and `serverName: true` to send it as SNI)",
        scenario: "egress-mtls-traps",
    },
    Rule {
        id: "egress-protocols-without-tls13",
        level: Level::Warning,
        what: "egressMTLS `protocols` without TLSv1.3 (NIC's default is `TLSv1 TLSv1.1 TLSv1.2`): a TLS 1.3-only upstream such as the AI gateway refuses the handshake (502)",
        fix: "`protocols: TLSv1.3` (or `TLSv1.2 TLSv1.3`)",
        scenario: "egress-mtls-traps",
    },
    Rule {
        id: "egress-without-server-verification",
        level: Level::Warning,
        what: "egressMTLS without `verifyServer`: NGINX does not check the upstream's certificate, so whoever answers on the upstream's address gets the requests, the client certificate's sessions and the prompts",
        fix: "`verifyServer: true` with `trustedCertSecret` (an `nginx.org/ca` Secret) and `sslName`",
        scenario: "egress-without-verification",
    },
    Rule {
        id: "session-reuse-masks-verification",
        level: Level::Warning,
        what: "routes proxy to one upstream with different egress TLS settings and session reuse on: a route resumes the TLS session another route verified, and its own trusted CA is never checked",
        fix: "give each route its own upstream, or `sessionReuse: false` on the routes' egress policies",
        scenario: "egress-mtls-traps",
    },
    Rule {
        id: "plain-http-to-tls-upstream",
        level: Level::Error,
        what: "egress mTLS (or an upstream port named `https`) toward an upstream NGINX talks plain HTTP to: egressMTLS does not switch the upstream to TLS, so no certificate is presented or checked",
        fix: "Ingress: name the service in `nginx.org/ssl-services` (on the minion, for a mergeable Ingress); VirtualServer: `upstreams[].tls.enable: true`",
        scenario: "ingress-egress-mtls",
    },
    Rule {
        id: "optional-verification-unchecked",
        level: Level::Note,
        what: "`verifyClient: optional` or `optional_no_ca` and nothing passes `$ssl_client_verify` to the app: requests without a certificate (and, with optional_no_ca, with one from any CA) reach the app as if verified",
        fix: "pass `${ssl_client_verify}` in the route's `action.proxy.requestHeaders` and have the app refuse anything but SUCCESS, or use `verifyClient: \"on\"`",
        scenario: "client-verification",
    },
    Rule {
        id: "not-linted",
        level: Level::Note,
        what: "an object or field lint does not read, so nothing there is checked",
        fix: "check it by hand, or run the scenario on kind",
        scenario: "",
    },
];

pub(crate) fn rule(id: &str) -> &'static Rule {
    RULES
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("lint rule `{id}` is not in RULES"))
}

/// One finding: where, what NIC does (in its words where it has them), and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    pub id: &'static str,
    pub level: Level,
    pub origin: Origin,
    /// `Kind ns/name` of the object it is in.
    pub object: String,
    /// Why it matters, for this object.
    pub message: String,
    pub fix: String,
}

impl Finding {
    pub(crate) fn new(id: &'static str, origin: Origin, object: String, message: String) -> Self {
        let rule = rule(id);
        Finding {
            id,
            level: rule.level,
            origin,
            object,
            message,
            fix: rule.fix.to_string(),
        }
    }

    #[must_use]
    pub(crate) fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = fix.into();
        self
    }
}

/// What is linted together: one scenario, or one folder of manifests.
#[derive(Debug)]
pub(crate) struct Unit {
    pub name: String,
    pub dir: PathBuf,
    pub scenario: bool,
    pub objects: Vec<Object>,
    /// Secrets known by type only (`ns/name` → type): made by a step or by cert-manager.
    pub typed_secrets: BTreeMap<String, String>,
    /// Documents that are not objects lint knows, as `not-linted` findings.
    pub skipped: Vec<Finding>,
}

impl Unit {
    fn of_scenario(s: Scenario) -> Unit {
        let mut typed_secrets = BTreeMap::new();
        for step in &s.spec.steps {
            if let Some(c) = &step.create_secret {
                typed_secrets.insert(c.name.clone(), c.type_.clone());
            }
            if let Some(c) = &step.copy_secret {
                typed_secrets.insert(c.to.clone(), c.type_.clone());
            }
        }
        let mut unit = Unit {
            name: s.name,
            dir: s.dir,
            scenario: true,
            objects: s.objects,
            typed_secrets,
            skipped: Vec::new(),
        };
        unit.add_certificate_secrets();
        unit
    }

    /// Folders and files of a user's manifests, read as `kubectl apply -f A
    /// -f B` reads them (a folder: its `*.yaml`), all linted together. Documents
    /// of kinds the harness does not model are kept aside as `not-linted`
    /// findings instead of stopping the lint.
    fn of_manifests(paths: &[PathBuf]) -> Result<Unit, Error> {
        let mut files = Vec::new();
        for path in paths {
            if path.is_dir() {
                let found =
                    scenario::manifest_files(path).map_err(|e| Error::Input(e.to_string()))?;
                if found.is_empty() {
                    return Err(Error::Input(format!(
                        "{}: no scenario.yaml and no *.yaml manifests here or in its subfolders",
                        path.display()
                    )));
                }
                files.extend(found);
            } else {
                files.push(path.clone());
            }
        }
        let path = paths.first().cloned().unwrap_or_default();
        let mut objects = Vec::new();
        let mut skipped = Vec::new();
        for file in &files {
            for doc in yaml::load_file(file).map_err(|e| Error::Input(e.to_string()))? {
                let kind = match doc.root.get("kind").map(|n| &n.value) {
                    Some(yaml::Value::Str(k)) => Some(k.clone()),
                    _ => None,
                };
                if let Some(kind) = kind.filter(|k| Kind::from_name(k).is_none()) {
                    skipped.push(Finding::new(
                        "not-linted",
                        doc.origin(),
                        kind.clone(),
                        format!("lint does not read {kind} objects"),
                    ));
                    continue;
                }
                objects.push(
                    Object::from_document(doc, "default")
                        .map_err(|e| Error::Input(e.to_string()))?,
                );
            }
        }
        let name = path
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
            .unwrap_or_else(|| path.display().to_string());
        let mut unit = Unit {
            name,
            dir: path.clone(),
            scenario: false,
            objects,
            typed_secrets: BTreeMap::new(),
            skipped,
        };
        unit.add_certificate_secrets();
        Ok(unit)
    }

    /// cert-manager writes each Certificate's `kubernetes.io/tls` Secret.
    fn add_certificate_secrets(&mut self) {
        for o in self
            .objects
            .iter()
            .filter(|o| o.id.kind == Kind::Certificate)
        {
            if let Ok(c) = o.parse::<manifest::kinds::Certificate>() {
                self.typed_secrets.insert(
                    format!("{}/{}", o.namespace(), c.spec.secret_name),
                    crate::substrate::local::nic::secrets::TYPE_TLS.into(),
                );
            }
        }
    }
}

/// The units `lint` reads from the paths a user names: a scenario folder (or
/// its `scenario.yaml`), a folder of scenarios, or a folder or file of plain
/// manifests; none given means `./scenarios`.
pub(crate) fn units(paths: &[PathBuf]) -> Result<Vec<Unit>, Error> {
    let paths: Vec<PathBuf> = if paths.is_empty() {
        let default = PathBuf::from("scenarios");
        if !default.is_dir() {
            return Err(Error::Input(
                "no ./scenarios folder here; pass folders to lint, e.g. `mtls-e2e lint path/to/manifests`".into(),
            ));
        }
        vec![default]
    } else {
        paths.to_vec()
    };
    let mut units = Vec::new();
    let mut manifests = Vec::new();
    for path in &paths {
        let scenario_file = path.join(scenario::SCENARIO_FILE);
        let is_scenario_file = path
            .file_name()
            .is_some_and(|n| n == scenario::SCENARIO_FILE)
            && path.is_file();
        if is_scenario_file || scenario_file.is_file() {
            let dir = if is_scenario_file {
                path.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
            } else {
                path.clone()
            };
            units.push(Unit::of_scenario(load_scenario(&dir)?));
        } else if path.is_dir() {
            let found = scenario::discover(path).map_err(|e| Error::Input(e.to_string()))?;
            if found.is_empty() {
                manifests.push(path.clone());
            }
            for dir in found {
                units.push(Unit::of_scenario(load_scenario(&dir)?));
            }
        } else if path.is_file() {
            manifests.push(path.clone());
        } else {
            return Err(Error::Input(format!(
                "{}: no such file or folder",
                path.display()
            )));
        }
    }
    if !manifests.is_empty() {
        units.push(Unit::of_manifests(&manifests)?);
    }
    Ok(units)
}

fn load_scenario(dir: &Path) -> Result<Scenario, Error> {
    Scenario::load(dir).map_err(|e| Error::Input(e.to_string()))
}

/// One unit's findings, in file and line order.
pub(crate) struct Linted {
    pub name: String,
    pub dir: PathBuf,
    pub scenario: bool,
    pub findings: Vec<Finding>,
}

/// Lint one unit.
pub(crate) fn lint(unit: &Unit) -> Linted {
    let mut found = unit.skipped.clone();
    found.extend(findings::find(&unit.objects, &unit.typed_secrets));
    let mut findings: Vec<Finding> = Vec::new();
    for f in found {
        if !findings.contains(&f) {
            findings.push(f);
        }
    }
    findings.sort_by(|a, b| {
        (&a.origin.file, a.origin.line, a.id).cmp(&(&b.origin.file, b.origin.line, b.id))
    });
    Linted {
        name: unit.name.clone(),
        dir: unit.dir.clone(),
        scenario: unit.scenario,
        findings,
    }
}

/// Whether any finding is at or above `deny`.
pub(crate) fn denied(linted: &[Linted], deny: Level) -> bool {
    linted
        .iter()
        .flat_map(|l| &l.findings)
        .any(|f| f.level >= deny)
}

fn counts(linted: &[Linted]) -> BTreeMap<Level, usize> {
    let mut counts = BTreeMap::new();
    for f in linted.iter().flat_map(|l| &l.findings) {
        *counts.entry(f.level).or_insert(0) += 1;
    }
    counts
}

/// For people: a finding per two lines (`file:line: level[id] object: why`,
/// then the fix), then a summary.
pub(crate) fn human(linted: &[Linted], deny: Level) -> String {
    let mut out = String::new();
    for f in linted.iter().flat_map(|l| &l.findings) {
        let _ = writeln!(
            out,
            "{}: {}[{}] {}: {}",
            f.origin,
            f.level.as_str(),
            f.id,
            f.object,
            f.message
        );
        let _ = writeln!(out, "    fix: {}", f.fix);
    }
    let counts = counts(linted);
    let total: usize = counts.values().sum();
    let by_level: Vec<String> = [Level::Error, Level::Warning, Level::Note]
        .into_iter()
        .map(|level| {
            let n = counts.get(&level).copied().unwrap_or(0);
            format!("{n} {}{}", level.as_str(), if n == 1 { "" } else { "s" })
        })
        .collect();
    let verdict = if denied(linted, deny) {
        format!("findings at or above {}", deny.as_str())
    } else {
        format!("none at or above {}", deny.as_str())
    };
    let _ = writeln!(
        out,
        "lint: {total} finding{} in {} folder{} ({}): {verdict}",
        if total == 1 { "" } else { "s" },
        linted.len(),
        if linted.len() == 1 { "" } else { "s" },
        by_level.join(", ")
    );
    out
}

/// The JSON schema version of `lint --format json`.
pub(crate) const JSON_SCHEMA: &str = "mtls-e2e.lint/v1";

/// `--format json`: versioned, every finding with its rule's level and fix.
pub(crate) fn json(linted: &[Linted], deny: Level) -> serde_json::Value {
    let counts = counts(linted);
    let units: Vec<serde_json::Value> = linted
        .iter()
        .map(|l| {
            serde_json::json!({
                "name": l.name,
                "dir": l.dir.display().to_string(),
                "kind": if l.scenario { "scenario" } else { "manifests" },
                "findings": l.findings.iter().map(|f| serde_json::json!({
                    "id": f.id,
                    "level": f.level,
                    "file": f.origin.file.display().to_string(),
                    "line": f.origin.line,
                    "object": f.object,
                    "message": f.message,
                    "fix": f.fix,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "schema": JSON_SCHEMA,
        "deny": deny,
        "denied": denied(linted, deny),
        "summary": {
            "findings": counts.values().sum::<usize>(),
            "error": counts.get(&Level::Error).copied().unwrap_or(0),
            "warning": counts.get(&Level::Warning).copied().unwrap_or(0),
            "note": counts.get(&Level::Note).copied().unwrap_or(0),
        },
        "rules": RULES,
        "units": units,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's "Lint" table is this list, row for row.
    #[test]
    fn the_readme_lists_every_rule() {
        let readme = include_str!("../../../README.md");
        let cell = |text: &str| text.replace('|', "\\|");
        for r in RULES {
            let scenario = if r.scenario.is_empty() {
                "—".to_string()
            } else {
                format!("`{}`", r.scenario)
            };
            let row = format!(
                "| `{}` | {} | {} | {} | {scenario} |",
                r.id,
                r.level.as_str(),
                cell(r.what),
                cell(r.fix)
            );
            assert!(readme.contains(&row), "README lacks the row\n{row}");
        }
    }

    /// Every rule but `not-linted` names a shipped scenario that shows what it costs.
    #[test]
    fn every_rule_has_a_scenario() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        for r in RULES.iter().filter(|r| r.id != "not-linted") {
            assert!(
                root.join(r.scenario)
                    .join(scenario::SCENARIO_FILE)
                    .is_file(),
                "{}: no scenario {}",
                r.id,
                r.scenario
            );
        }
    }
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    /// A plain folder of a user's manifests (no scenario.yaml): every `*.yaml`,
    /// kinds lint does not know kept aside as `not-linted`, the rest linted.
    #[test]
    fn a_folder_of_plain_manifests() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("app.yaml"),
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {}\n---\n\
             apiVersion: k8s.nginx.org/v1\nkind: Policy\nmetadata: {name: egress, namespace: a}\n\
             spec:\n  egressMTLS: {tlsSecret: client, protocols: TLSv1.3}\n",
        )
        .expect("write");
        let units = units(&[dir.path().to_path_buf()]).expect("units");
        assert_eq!(units.len(), 1);
        assert!(!units[0].scenario);
        let linted = lint(&units[0]);
        let ids: Vec<&str> = linted.findings.iter().map(|f| f.id).collect();
        assert!(ids.contains(&"not-linted"), "{ids:?}");
        assert!(
            ids.contains(&"egress-without-server-verification"),
            "{ids:?}"
        );
        assert!(ids.contains(&"reference-not-found"), "{ids:?}");
        let pod = linted
            .findings
            .iter()
            .find(|f| f.id == "not-linted")
            .expect("pod");
        assert_eq!(pod.origin.line, Some(1));
        assert!(pod.message.contains("Pod"), "{}", pod.message);
    }

    #[test]
    fn nothing_to_lint_is_bad_input() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            units(&[dir.path().to_path_buf()]),
            Err(Error::Input(_))
        ));
        assert!(matches!(
            units(&[dir.path().join("missing")]),
            Err(Error::Input(_))
        ));
    }

    #[test]
    fn deny_levels() {
        let linted = vec![Linted {
            name: "x".into(),
            dir: "x".into(),
            scenario: false,
            findings: vec![Finding::new(
                "egress-without-server-verification",
                Origin::file(Path::new("x.yaml")),
                "Policy a/p".into(),
                "why".into(),
            )],
        }];
        assert!(!denied(&linted, Level::Error));
        assert!(denied(&linted, Level::Warning));
        assert!(denied(&linted, Level::Note));
        let json = json(&linted, Level::Error);
        assert_eq!(json["schema"], JSON_SCHEMA);
        assert_eq!(json["summary"]["warning"], 1);
        assert_eq!(json["units"][0]["findings"][0]["level"], "warning");
    }
}
