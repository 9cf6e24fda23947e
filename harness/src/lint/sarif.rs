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
