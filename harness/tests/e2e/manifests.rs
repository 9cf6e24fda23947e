//! Every manifest the kind path would apply, validated here as the API server
//! would with `--validate=strict`: custom resources against the real CRD
//! schemas (../shared/crds: cert-manager v1.19, NIC 5.5.4), core objects
//! against the Kubernetes types.
//!
//! - `manifests/<scenario>`: the scenario's objects as sent (namespace explicit,
//!   our image), the Secrets its tutorial steps create, and the Secrets
//!   cert-manager would write.
//! - `manifests/installs`: cert-manager's release manifest and NIC's manifests
//!   with our kind patch, for each pinned NIC release.
//!   They come from the download cache (sha256-verified); not cached: ignored.
//! - `manifests/scenarios-on-nic-5.3.4`: the scenarios that run on NIC 5.3.4,
//!   against that release's own CRDs (from the cache).
//!
//! Without ../shared/crds the scenario trials are ignored and say so.

use std::path::{Path, PathBuf};

use crate::validate::Schemas;
use libtest_mimic::{Failed, Trial};
use mtls_e2e::engine::Engine;
use mtls_e2e::scenario::Scenario;
use mtls_e2e::substrate::cluster::{self, apply, download, image, install};
use serde_json::Value;

fn crds_dir() -> PathBuf {
    std::env::var_os("MTLS_E2E_CRDS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/crds"),
        PathBuf::from,
    )
}

pub fn trials(scenarios: &[Scenario]) -> Vec<Trial> {
    let crds = crds_dir();
    let have_crds = crds.is_dir();
    if !have_crds {
        eprintln!(
            "note: {} is absent: custom resources cannot be validated against the CRD schemas; the manifests/* trials are ignored",
            crds.display()
        );
    }
    let mut trials = Vec::new();
    for s in scenarios {
        let (scenario, crds) = (s.clone(), crds.clone());
        trials.push(
            Trial::test(format!("manifests/{}", s.name), move || {
                validate_all(shared_schemas(&crds)?, &scenario_manifests(&scenario)?)
            })
            .with_ignored_flag(!have_crds),
        );
    }
    let cache = cluster::default_cache();
    let cached = |d: &download::Download| {
        std::fs::read(d.cached(&cache)).is_ok_and(|b| download::sha256_hex(&b) == d.sha256)
    };
    let mut needed = vec![install::cert_manager()];
    for r in install::NIC_RELEASES {
        needed.extend(install::nic_downloads(r.version).unwrap_or_default());
    }
    let missing: Vec<String> = needed
        .iter()
        .filter(|d| !cached(d))
        .map(|d| d.url.clone())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "note: manifests/installs and manifests/scenarios-on-nic-5.3.4 are ignored: {} pinned download(s) are not in {} \
             (one `mtls-e2e run --substrate kind` fills it; or place the files there, named as `mtls-e2e plan --substrate kind` shows)",
            missing.len(),
            cache.join("downloads").display()
        );
    }
    let ready = missing.is_empty() && have_crds;
    let (c, k) = (cache.clone(), crds.clone());
    trials.push(
        Trial::test("manifests/installs", move || installs(&c, &k)).with_ignored_flag(!ready),
    );
    let on_534: Vec<Scenario> = scenarios
        .iter()
        .filter(|s| cluster::skip_reason(s, "5.3.4").is_none())
        .cloned()
        .collect();
    trials.push(
        Trial::test("manifests/scenarios-on-nic-5.3.4", move || {
            let mut schemas = Schemas::load_dir(&crds)?;
            let nic = install::nic_downloads("5.3.4").map_err(|e| e.to_string())?;
            let bytes = std::fs::read(nic[0].cached(&cache)).map_err(|e| e.to_string())?;
            schemas.add_documents(
                &install::documents(&bytes, &nic[0].name).map_err(|e| e.to_string())?,
            )?;
            let mut all = Vec::new();
            for s in &on_534 {
                all.extend(scenario_manifests(s)?);
            }
            validate_all(&schemas, &all)
        })
        .with_ignored_flag(!ready),
    );
    trials
}

/// ../shared/crds, loaded once for all trials.
fn shared_schemas(dir: &Path) -> Result<&'static Schemas, Failed> {
    static SCHEMAS: std::sync::OnceLock<Result<Schemas, String>> = std::sync::OnceLock::new();
    SCHEMAS
        .get_or_init(|| Schemas::load_dir(dir))
        .as_ref()
        .map_err(|e| Failed::from(e.as_str()))
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

fn validate_all(schemas: &Schemas, manifests: &[(String, Value)]) -> Result<(), Failed> {
    let mut problems = Vec::new();
    for (origin, manifest) in manifests {
        match schemas.validate(manifest) {
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
            "{} problem(s), as the API server would refuse them:\n  {}",
            problems.len(),
            problems.join("\n  ")
        )
        .into())
    }
}

fn installs(cache: &Path, crds: &Path) -> Result<(), Failed> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let quiet = |_: &str| {};
    let mut manifests = Vec::new();
    let cm = runtime
        .block_on(install::cert_manager_set(cache, &quiet))
        .map_err(|e| e.to_string())?;
    manifests.extend(cm.objects);
    for r in install::NIC_RELEASES {
        let nic = runtime
            .block_on(install::nic_set(r.version, cache, &quiet))
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
    validate_all(shared_schemas(crds)?, &labelled)
}
