//! Scenarios from the folders a user names, and the checks that depend on the
//! substrate; the binary and the test suite load through here.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::scenario::{self, Scenario};
use crate::substrate::cluster::{self, ClusterOptions};

/// Load scenarios from folders: a scenario folder (or its `scenario.yaml`), or
/// a folder holding scenarios; none given means `./scenarios`.
///
/// # Errors
/// [`Error::Input`] naming the file and line of the first scenario that does not load.
pub fn scenarios(dirs: &[PathBuf]) -> Result<Vec<Scenario>, Error> {
    let dirs: Vec<PathBuf> = if dirs.is_empty() {
        let default = PathBuf::from("scenarios");
        if !default.is_dir() {
            return Err(Error::Input(
                "no ./scenarios folder here; pass scenario folders, e.g. `mtls-e2e run path/to/scenario`"
                    .into(),
            ));
        }
        vec![default]
    } else {
        dirs.to_vec()
    };
    let mut folders = Vec::new();
    for dir in &dirs {
        let dir = folder_of(dir);
        if dir.join(scenario::SCENARIO_FILE).is_file() {
            folders.push(dir);
        } else if dir.is_dir() {
            let found = scenario::discover(&dir).map_err(|e| Error::Input(e.to_string()))?;
            if found.is_empty() {
                return Err(Error::Input(format!(
                    "{}: no scenario.yaml here or in its subfolders",
                    dir.display()
                )));
            }
            folders.extend(found);
        } else {
            return Err(Error::Input(format!("{}: no such folder", dir.display())));
        }
    }
    let mut scenarios: Vec<Scenario> = Vec::new();
    for folder in folders {
        let s = one(&folder)?;
        if let Some(other) = scenarios.iter().find(|o| o.name == s.name) {
            return Err(Error::Input(format!(
                "two scenarios are named `{}`: {} and {}",
                s.name,
                other.dir.display(),
                s.dir.display()
            )));
        }
        scenarios.push(s);
    }
    Ok(scenarios)
}

/// One scenario folder (or its `scenario.yaml`).
pub(crate) fn one(dir: &Path) -> Result<Scenario, Error> {
    let scenario = Scenario::load(&folder_of(dir)).map_err(|e| Error::Input(e.to_string()))?;
    // Refused on every substrate: NIC's choice between two claimants of one
    // host is not the same on each.
    if let Some(conflict) = crate::substrate::local::nic::host_conflict(&scenario.objects) {
        return Err(Error::Input(conflict.to_string()));
    }
    Ok(scenario)
}

/// `run path/to/scenario.yaml` means its folder.
fn folder_of(dir: &Path) -> PathBuf {
    match dir.file_name() {
        Some(name) if name == scenario::SCENARIO_FILE && dir.is_file() => dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), PathBuf::from),
        _ => dir.to_path_buf(),
    }
}

/// What a cluster substrate needs of the scenarios before anything starts:
/// they can share one cluster, and `--adopt` names objects they declare.
pub(crate) fn check_for_cluster(
    options: Option<&ClusterOptions>,
    scenarios: &[Scenario],
) -> Result<(), Error> {
    let Some(options) = options else {
        return Ok(());
    };
    let refs: Vec<&Scenario> = scenarios.iter().collect();
    cluster::check_shareable(&refs).map_err(|e| Error::from(&e))?;
    cluster::ownership::check_adopt(&options.adopt, |id| {
        scenarios.iter().any(|s| s.declares(id))
    })
    .map_err(Error::Input)
}
