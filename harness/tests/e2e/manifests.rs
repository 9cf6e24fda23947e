//! Every manifest the kind path would apply, validated here as the API server
//! would with `--validate=strict`: custom resources against the real CRD
//! schemas, core objects against the Kubernetes types.
//!
//! - `manifests/<scenario>`: the scenario's objects as sent (namespace explicit,
//!   our image), the Secrets its tutorial steps create, and the Secrets
//!   cert-manager would write.
//! - `manifests/installs`: cert-manager's release manifest and NIC's manifests
//!   with our kind patch, for each pinned NIC release.
//! - `manifests/scenarios-on-nic-5.3.4`: the scenarios that run on NIC 5.3.4,
//!   against that release's own CRDs.
//!
//! The schemas come from the pinned, sha256-checked release files in the
//! download cache (`mtls-e2e download` fills it), else `../shared/crds`; the
//! last two trials need the release files themselves. A trial whose inputs
//! are absent is ignored, saying which and the command that un-skips it.

use std::path::Path;

use crate::validate::{self, CrdPlaces, Crds};
use libtest_mimic::{Completion, Failed, Trial};
use mtls_e2e::engine::Engine;
use mtls_e2e::scenario::Scenario;
use mtls_e2e::substrate::cluster::{self, apply, download, image, install};
use serde_json::Value;

pub fn trials(scenarios: &[Scenario]) -> Vec<Trial> {
    let places = CrdPlaces::here();
    // Said once up front too: each ignored trial also says why on its line.
    if matches!(validate::default_crds(), Ok(None)) {
        eprintln!(
            "note: the manifests/* and validate/* trials that need CRD schemas are ignored: {}",
            places.absent()
        );
    }
    let mut trials = Vec::new();
    for s in scenarios {
        let scenario = s.clone();
        trials.push(validate::with_crds(
            format!("manifests/{}", s.name),
            move |crds| validate_all(crds, &scenario_manifests(&scenario)?),
        ));
    }
    let cache = places.cache.clone();
    let missing = missing_downloads(&cache);
    if let Ok(Some(why)) = &missing {
        eprintln!(
            "note: manifests/installs and manifests/scenarios-on-nic-5.3.4 are ignored: {why}"
        );
    }
    let c = cache.clone();
    let absent = missing.clone();
    trials.push(Trial::ignorable_test("manifests/installs", move || {
        if let Some(why) = absent? {
            return validate::unavailable(&why, "MTLS_E2E_REQUIRE_DOWNLOADS");
        }
        let crds = validate::default_crds()?.ok_or("the cached CRDs vanished")?;
        installs(&c, crds).map(|()| Completion::Completed)
    }));
    let on_534: Vec<Scenario> = scenarios
        .iter()
        .filter(|s| cluster::skip_reason(s, "5.3.4").is_none())
        .cloned()
        .collect();
    trials.push(Trial::ignorable_test(
        "manifests/scenarios-on-nic-5.3.4",
        move || {
            if let Some(why) = missing? {
                return validate::unavailable(&why, "MTLS_E2E_REQUIRE_DOWNLOADS");
            }
            let on_cache = CrdPlaces {
                named: None,
                ..CrdPlaces::here()
            };
            let crds = on_cache.find("5.3.4")?.ok_or("the cached CRDs vanished")?;
            let mut all = Vec::new();
            for s in &on_534 {
                all.extend(scenario_manifests(s)?);
            }
            validate_all(&crds, &all).map(|()| Completion::Completed)
        },
    ));
    trials
}

/// Why the trials that read the release files themselves cannot run: the
/// pinned files not in the cache (`None`: all there, each with its digest).
/// A cached file with another digest is refused (an error), never skipped.
fn missing_downloads(cache: &Path) -> Result<Option<String>, String> {
    let mut missing = 0;
    for d in install::pinned_downloads() {
        if download::read_cached(&d, cache)
            .map_err(|e| e.to_string())?
            .is_none()
        {
            missing += 1;
        }
    }
    Ok((missing > 0).then(|| {
        format!(
            "{missing} of the pinned release files are not in {}; `{}` fetches them",
            cache.join("downloads").display(),
            validate::DOWNLOAD
        )
    }))
}

/// (where it comes from, manifest) for everything a scenario sends a cluster.
fn scenario_manifests(scenario: &Scenario) -> Result<Vec<(String, Value)>, Failed> {
    let mut out: Vec<(String, Value)> = apply::ordered(&scenario.objects)
        .into_iter()
        .map(|o| {
            (
                format!("{} ({})", o.id, o.origin()),
                apply::manifest_json(o, image::DEFAULT_IMAGE),
            )
        })
        .collect();
    // The steps' Secrets, made as the local substrate makes them (same code as on a cluster).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let engine = Engine::local().map_err(|e| e.to_string())?;
    let local = engine.local_substrate().ok_or("no local substrate")?;
    let dir = engine.scenario_dir(scenario).map_err(|e| e.to_string())?;
    let prepared = runtime
        .block_on(local.prepare(scenario, &dir))
        .map_err(|e| e.to_string())?;
    for o in &prepared.objects {
        if !scenario.objects.iter().any(|s| s.id == o.id) {
            out.push((
                format!("{} (made by a step or cert-manager)", o.id),
                apply::manifest_json(o, image::DEFAULT_IMAGE),
            ));
        }
    }
    Ok(out)
}

fn validate_all(crds: &Crds, manifests: &[(String, Value)]) -> Result<(), Failed> {
    let mut problems = Vec::new();
    for (origin, manifest) in manifests {
        match crds.schemas.validate(manifest) {
            Ok(v) if v.is_empty() => {}
            Ok(violations) => {
                for v in violations {
                    problems.push(format!("{origin}: {v}"));
                }
            }
            Err(e) => problems.push(format!("{origin}: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} problem(s), as the API server would refuse them (CRD schemas from {}):\n  {}",
            problems.len(),
            crds.from,
            problems.join("\n  ")
        )
        .into())
    }
}

fn installs(cache: &Path, crds: &Crds) -> Result<(), Failed> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut manifests = Vec::new();
    let cm = runtime
        .block_on(install::cert_manager_set(cache))
        .map_err(|e| e.to_string())?;
    manifests.extend(cm.objects);
    for r in install::NIC_RELEASES {
        let nic = runtime
            .block_on(install::nic_set(r.version, cache))
            .map_err(|e| e.to_string())?;
        manifests.extend(
            nic.objects
                .into_iter()
                .map(|(from, o)| (format!("NIC {}: {from}", r.version), o)),
        );
    }
    manifests.push((
        "the webhook readiness probe".into(),
        install::webhook_probe(),
    ));
    let labelled: Vec<(String, Value)> = manifests
        .into_iter()
        .map(|(from, o)| {
            let id = format!(
                "{} {}",
                o["kind"].as_str().unwrap_or("?"),
                o.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
            );
            (format!("{id} from {from}"), o)
        })
        .collect();
    validate_all(crds, &labelled)
}
