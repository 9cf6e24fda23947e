//! `lint --format sarif`: SARIF 2.1.0, as GitHub code scanning reads it (one
//! run, every rule with its default level and help, each finding a result
//! with a physical location relative to the folder `lint` ran in).

use serde_sarif::sarif::{
    ArtifactLocation, Location, Message, MultiformatMessageString, PhysicalLocation, Region,
    ReportingConfiguration, ReportingDescriptor, Result as SarifResult, ResultLevel, Run, Sarif,
    Tool, ToolComponent,
};

use super::{Level, Linted, RULES};

fn level(level: Level) -> ResultLevel {
    match level {
        Level::Note => ResultLevel::Note,
        Level::Warning => ResultLevel::Warning,
        Level::Error => ResultLevel::Error,
    }
}

fn text(text: &str) -> MultiformatMessageString {
    MultiformatMessageString::builder()
        .text(text.to_string())
        .build()
}

/// A file as a SARIF URI: relative to the current folder when it is inside
/// it (what code scanning matches against the repository), with `/`.
fn uri(file: &std::path::Path) -> String {
    let relative = std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            file.strip_prefix(cwd)
                .ok()
                .map(std::path::Path::to_path_buf)
        })
        .unwrap_or_else(|| file.to_path_buf());
    let text = relative.to_string_lossy().replace('\\', "/");
    text.strip_prefix("./").map(str::to_string).unwrap_or(text)
}

/// The SARIF log of `linted`.
pub(crate) fn sarif(linted: &[Linted]) -> Sarif {
    let rules: Vec<ReportingDescriptor> = RULES
        .iter()
        .map(|r| {
            let help = if r.scenario.is_empty() {
                format!("Fix: {}", r.fix)
            } else {
                format!(
                    "Fix: {}. Scenario `scenarios/{}` shows what it costs (`mtls-e2e run scenarios/{}`).",
                    r.fix, r.scenario, r.scenario
                )
            };
            ReportingDescriptor::builder()
                .id(r.id.to_string())
                .name(r.id.to_string())
                .short_description(text(r.what))
                .full_description(text(r.what))
                .help(text(&help))
                .default_configuration(
                    ReportingConfiguration::builder()
                        .level(serde_json::json!(r.level.as_str()))
                        .build(),
                )
                .build()
        })
        .collect();
    let results: Vec<SarifResult> = linted
        .iter()
        .flat_map(|l| &l.findings)
        .map(|f| {
            let index = RULES.iter().position(|r| r.id == f.id).unwrap_or_default();
            let mut region = Region::builder().build();
            region.start_line = f.origin.line.and_then(|l| i64::try_from(l).ok());
            let location = Location::builder()
                .physical_location(
                    PhysicalLocation::builder()
                        .artifact_location(
                            ArtifactLocation::builder().uri(uri(&f.origin.file)).build(),
                        )
                        .region(region)
                        .build(),
                )
                .build();
            SarifResult::builder()
                .rule_id(f.id.to_string())
                .rule_index(i64::try_from(index).unwrap_or_default())
                .level(level(f.level))
                .message(
                    Message::builder()
                        .text(format!("{}: {} Fix: {}", f.object, f.message, f.fix))
                        .build(),
                )
                .locations(vec![location])
                .build()
        })
        .collect();
    let driver = ToolComponent::builder()
        .name("mtls-e2e".to_string())
        .version(env!("CARGO_PKG_VERSION").to_string())
        .rules(rules)
        .build();
    Sarif::builder()
        .schema(serde_sarif::sarif::SCHEMA_URL.to_string())
        .version(serde_json::json!("2.1.0"))
        .runs(vec![
            Run::builder()
                .tool(Tool::builder().driver(driver).build())
                .results(results)
                .build(),
        ])
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::{Finding, Linted};
    use crate::yaml::Origin;

    fn linted() -> Vec<Linted> {
        let finding = |id, line| {
            Finding::new(
                id,
                Origin::at(std::path::Path::new("scenarios/x/20-mtls.yaml"), line),
                "VirtualServer a/vs".into(),
                "why".into(),
            )
        };
        vec![Linted {
            name: "x".into(),
            dir: "scenarios/x".into(),
            scenario: true,
            findings: vec![
                finding("plain-http-bypasses-mtls", 3),
                finding("optional-verification-unchecked", 7),
            ],
        }]
    }

    /// The log validates against the SARIF 2.1.0 JSON schema (OASIS's, as
    /// serde-sarif ships it, with the `language` pattern's stray `]` fixed as
    /// OASIS later fixed it: the regex did not compile), and carries what GitHub
    /// code scanning needs.
    #[test]
    fn the_log_is_sarif_2_1_0() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("sarif-schema-2.1.0.json")).expect("schema");
        let log = serde_json::to_value(sarif(&linted())).expect("json");
        let validator = jsonschema::validator_for(&schema).expect("validator");
        let errors: Vec<String> = validator
            .iter_errors(&log)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        assert_eq!(log["version"], "2.1.0");
        let run = &log["runs"][0];
        assert_eq!(run["tool"]["driver"]["name"], "mtls-e2e");
        let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
        assert_eq!(rules.len(), RULES.len());
        let result = &run["results"][0];
        assert_eq!(result["ruleId"], "plain-http-bypasses-mtls");
        assert_eq!(result["level"], "error");
        let index = usize::try_from(result["ruleIndex"].as_u64().expect("index")).expect("usize");
        assert_eq!(rules[index]["id"], "plain-http-bypasses-mtls");
        let location = &result["locations"][0]["physicalLocation"];
        assert_eq!(
            location["artifactLocation"]["uri"],
            "scenarios/x/20-mtls.yaml"
        );
        assert_eq!(location["region"]["startLine"], 3);
        assert_eq!(run["results"][1]["level"], "note");
        assert!(
            result["message"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("why"))
        );
    }

    /// A schema check that passes everything proves nothing: a log missing a
    /// required field must fail it.
    #[test]
    fn the_schema_check_bites() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("sarif-schema-2.1.0.json")).expect("schema");
        let mut log = serde_json::to_value(sarif(&linted())).expect("json");
        if let Some(result) = log["runs"][0]["results"][0].as_object_mut() {
            result.remove("message");
        }
        let validator = jsonschema::validator_for(&schema).expect("validator");
        assert!(!validator.is_valid(&log));
    }
}
