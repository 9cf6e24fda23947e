//! `mtls-e2e init DIR [--from FILES...]`: a scenario from a user's manifests.
//!
//! [`derive`] is the pure part (objects in, scenario text out): it reads the
//! objects, adds what the scenario needs around them (stand-ins, namespaces,
//! the jq steps), lets the local substrate's cert-manager and NIC renderer
//! build the world, and writes the checks that world implies. [`run`] is the
//! thin writer around it: it refuses to overwrite, writes only files it
//! creates, and reads the result back as `run` will.

mod checks;
mod derive;
mod emit;
mod input;
mod mutations;
mod world;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::manifest::{ManifestError, Object};
use crate::scenario::{SCENARIO_FILE, Scenario};
use input::{InputFile, SetAside};

/// What `init` derived: the scenario's text and the summary for people.
#[derive(Debug, Clone)]
pub(crate) struct Derived {
    pub scenario: String,
    pub checks: usize,
    pub identities: usize,
    /// Built-in mutations the run derives, and those declared indistinguishable.
    pub mutations: usize,
    pub exceptions: usize,
    pub notes: Vec<String>,
}

/// One file `init` writes.
#[derive(Debug, Clone)]
struct OutFile {
    name: String,
    content: String,
}

/// The objects of `files`, in apply order.
fn objects_of(files: &[InputFile]) -> Vec<Object> {
    files
        .iter()
        .flat_map(|f| f.kept.iter().map(|k| k.object.clone()))
        .collect()
}

/// Derive the scenario for `objects` (the pure part). `manifests` are the
/// files `scenario.yaml` will list; an error is what would stop a local run.
pub(crate) fn derive(
    objects: &[Object],
    name: Option<String>,
    manifests: &[String],
    set_aside: &[SetAside],
    sources: &str,
) -> Result<Derived, ManifestError> {
    let mut seen = std::collections::BTreeMap::new();
    for o in objects {
        if let Some(first) = seen.insert(o.id.clone(), o.origin()) {
            return Err(o.error(
                "metadata",
                format!("{} is declared twice (first at {first})", o.id),
            ));
        }
    }
    let setup = world::setup(objects);
    let world = world::build(objects, &setup)?;
    let mut plan = derive::plan(&world, &setup);
    plan.name = name;
    plan.reproduces = format!(
        "The manifests of {sources}, as `mtls-e2e init` reads them: for every host, the answers its \
         policies imply (ingressMTLS with each identity and none, the handshake's CA names, every \
         route, plain HTTP on port 80)."
    );
    // The built-in mutations the run will derive from what it reads: the
    // objects, the components and the steps written.
    let first = derive::text(&plan, &setup, manifests, set_aside);
    let file: crate::scenario::spec::ScenarioFile =
        crate::yaml::parse_one(&first, std::path::Path::new(SCENARIO_FILE))?;
    let builtin =
        crate::scenario::builtin_mutations(&world::scenario_objects(objects, &setup)?, &file.steps);
    plan.exceptions = mutations::exceptions(objects, &setup, &world, &builtin);
    let text = derive::text(&plan, &setup, manifests, set_aside);
    Ok(Derived {
        scenario: text,
        checks: plan.checks.len(),
        identities: plan.identities.len(),
        mutations: builtin.len(),
        exceptions: plan.exceptions.len(),
        notes: plan.notes,
    })
}

fn namespace_file(namespaces: &[String]) -> String {
    let mut t = String::from(
        "# Written by `mtls-e2e init`: namespaces the manifests use but do not declare\n\
         # (`kubectl apply` would fail with namespaces \"...\" not found).\n",
    );
    for (i, ns) in namespaces.iter().enumerate() {
        if i > 0 {
            t.push_str("---\n");
        }
        let _ = writeln!(
            t,
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {}",
            emit::scalar(ns)
        );
    }
    t
}

fn object_file(kept: &input::Kept) -> String {
    let mut t = format!(
        "# Written by `mtls-e2e init` from {}{}.\n",
        kept.object.origin(),
        if kept.cleaned {
            " (fields the API server sets were removed)"
        } else {
            ""
        }
    );
    emit::value(&mut t, &kept.json, 0);
    t
}

fn slug(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// The folder's scenario name: its folder name, when that is a valid name.
fn scenario_name(dir: &Path) -> Option<String> {
    let folder = std::path::absolute(dir)
        .ok()?
        .file_name()?
        .to_string_lossy()
        .to_string();
    (!crate::scenario::valid_slug(&folder)).then(|| {
        let s = slug(&folder).trim_matches('-').to_string();
        if s.is_empty() { "scenario".into() } else { s }
    })
}

/// `init DIR [--from FILES...]`: write the scenario, or say what stops it.
///
/// # Errors
/// Bad input (exit 2): `DIR/scenario.yaml` exists, a file it would write
/// exists, a manifest is invalid, or an object stops the local substrate.
pub fn run(dir: &Path, from: &[PathBuf]) -> Result<String, Error> {
    let scenario_file = dir.join(SCENARIO_FILE);
    if scenario_file.exists() {
        return Err(Error::Input(format!(
            "{} exists; init never overwrites it: remove it (or choose another DIR) and run init again",
            scenario_file.display()
        )));
    }
    let in_place = from.is_empty();
    let sources: Vec<PathBuf> = if in_place {
        vec![dir.to_path_buf()]
    } else {
        from.to_vec()
    };
    let input_error = |e: ManifestError| Error::Input(e.to_string());
    let paths = input::files_of(&sources).map_err(input_error)?;
    if paths.is_empty() {
        return Err(Error::Input(format!(
            "no manifests (*.yaml, *.yml) in {}",
            sources
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let files = input::read(&paths).map_err(input_error)?;
    let objects = objects_of(&files);
    // `run` refuses it on every substrate (see `host_conflict`): say so now.
    if let Some(conflict) = crate::substrate::local::nic::host_conflict(&objects) {
        return Err(Error::Input(format!(
            "{conflict}\ninit wrote nothing: a scenario with these manifests would be refused on every substrate"
        )));
    }
    let set_aside: Vec<SetAside> = files.iter().flat_map(|f| f.set_aside.clone()).collect();

    // The files the scenario lists, in apply order, and the ones to write.
    let setup = world::setup(&objects);
    let mut out: Vec<OutFile> = Vec::new();
    let mut manifests: Vec<String> = Vec::new();
    if !setup.namespaces.is_empty() {
        let name = "00-init-namespaces.yaml".to_string();
        out.push(OutFile {
            name: name.clone(),
            content: namespace_file(&setup.namespaces),
        });
        manifests.push(name);
    }
    for (i, file) in files.iter().enumerate() {
        let base = file
            .path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let stem = base.rsplit_once('.').map_or(base.as_str(), |(s, _)| s);
        if file.usable_as_is {
            if in_place {
                manifests.push(input::relative(&file.path, dir));
            } else {
                let name = format!("{:02}-{base}", i + 1);
                let content = std::fs::read_to_string(&file.path).map_err(|e| {
                    Error::Input(format!("cannot read {}: {e}", file.path.display()))
                })?;
                out.push(OutFile {
                    name: name.clone(),
                    content,
                });
                manifests.push(name);
            }
            continue;
        }
        for (j, kept) in file.kept.iter().enumerate() {
            let kind = slug(kept.object.id.kind.name());
            let prefix = if in_place {
                format!("init-{stem}")
            } else {
                format!("{:02}-{stem}", i + 1)
            };
            let name = format!("{prefix}-{:02}-{kind}-{}.yaml", j + 1, kept.object.name());
            out.push(OutFile {
                name: name.clone(),
                content: object_file(kept),
            });
            manifests.push(name);
        }
    }
    let source_text = sources
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let derived = derive(
        &objects,
        scenario_name(dir),
        &manifests,
        &set_aside,
        &source_text,
    )
    .map_err(|e| {
        Error::Input(format!(
            "{e}\ninit wrote nothing: this object stops the local substrate, so no scenario derived from these manifests could pass there"
        ))
    })?;
    out.push(OutFile {
        name: SCENARIO_FILE.into(),
        content: derived.scenario.clone(),
    });

    // Touch only what init creates: every file must be new.
    for f in &out {
        let path = dir.join(&f.name);
        if path.exists() {
            return Err(Error::Input(format!(
                "{} exists; init never overwrites: remove it or choose another DIR",
                path.display()
            )));
        }
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Input(format!("cannot create {}: {e}", dir.display())))?;
    let mut written = Vec::new();
    for f in &out {
        let path = dir.join(&f.name);
        let result = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut file| std::io::Write::write_all(&mut file, f.content.as_bytes()));
        if let Err(e) = result {
            remove(&written);
            return Err(Error::Input(format!(
                "cannot write {}: {e}",
                path.display()
            )));
        }
        written.push(path);
    }
    // Read back as `run` will: a scenario init wrote must load.
    if let Err(e) = Scenario::load(dir) {
        remove(&written);
        return Err(Error::Substrate(format!(
            "init wrote a scenario that does not load ({e}); nothing is left behind: this is a bug of init, please report it"
        )));
    }
    let mut summary = format!(
        "wrote {} ({} checks, {} identities; of {} built-in mutations, {} no request tells apart, declared under skipBuiltinMutations) and {} manifest file(s) in {}\n",
        SCENARIO_FILE,
        derived.checks,
        derived.identities,
        derived.mutations,
        derived.exceptions,
        out.len() - 1,
        dir.display()
    );
    for s in &set_aside {
        let _ = writeln!(summary, "set aside: {}: {}: {}", s.origin, s.what, s.why);
    }
    for n in &derived.notes {
        let _ = writeln!(summary, "not derived: {n}");
    }
    let _ = writeln!(summary, "next: mtls-e2e run {}", dir.display());
    Ok(summary)
}

fn remove(paths: &[PathBuf]) {
    for p in paths {
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use crate::manifest::Object;
    use crate::scenario::spec::ScenarioFile;

    /// A shipped scenario's manifests, as `init` reads its folder (without its scenario.yaml).
    pub(crate) fn manifests_of(scenario: &str) -> Vec<Object> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios")
            .join(scenario);
        let files = super::input::files_of(&[dir]).expect("manifests");
        super::objects_of(&super::input::read(&files).expect("read"))
    }

    /// What `init` derives from `objects`, and that text read back as `scenario.yaml`.
    pub(crate) fn derived(objects: &[Object]) -> (String, ScenarioFile) {
        let d = super::derive(objects, None, &["in.yaml".into()], &[], "in.yaml").expect("derives");
        let file: ScenarioFile =
            crate::yaml::parse_one(&d.scenario, std::path::Path::new("scenario.yaml"))
                .unwrap_or_else(|e| panic!("{e}\n{}", d.scenario));
        (d.scenario, file)
    }
}
