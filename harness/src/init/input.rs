//! Reading a user's manifests for `init`: folders, files, multi-document files,
//! `kubectl get -o yaml` dumps (`kind: List` with `items:`) and `helm template`
//! output. Objects of kinds the harness models become [`Object`]s; everything
//! else is set aside and listed, never silently dropped.

use std::path::{Path, PathBuf};

use crate::manifest::{Kind, ManifestError, Object};
use crate::yaml::{self, Document, Node, Origin, Value};

/// An object of the input that the scenario will not hold, and why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SetAside {
    pub origin: Origin,
    /// `Kind name` (or `Kind ns/name`) as far as the document says.
    pub what: String,
    pub why: String,
}

/// One object kept for the scenario, with what its output file needs.
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    pub object: Object,
    /// The object as it will be written (server-set fields removed).
    pub json: serde_json::Value,
    /// It came from a `kubectl get` dump (a List item or server-set fields).
    pub cleaned: bool,
}

/// One input file and what became of its documents.
#[derive(Debug, Clone)]
pub(crate) struct InputFile {
    pub path: PathBuf,
    pub kept: Vec<Kept>,
    pub set_aside: Vec<SetAside>,
    /// Every document of the file is kept as written: the file can be used (or
    /// copied) unchanged.
    pub usable_as_is: bool,
}

/// Images other than ours run only on a cluster; `init` keeps such a
/// Deployment aside (the local substrate would refuse it) and says so.
fn foreign_image(object: &Object) -> Option<String> {
    let deployment = object.parse::<crate::manifest::kinds::Deployment>().ok()?;
    deployment
        .spec
        .template
        .spec
        .containers
        .iter()
        .map(|c| c.image.clone())
        .find(|image| !crate::substrate::local::pods::is_our_image(image))
}

/// The files `paths` name: a folder's `*.yaml`/`*.yml` (not `scenario.yaml`)
/// in name order, as `kubectl apply -f DIR` takes them, or the file itself.
pub(crate) fn files_of(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ManifestError> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|e| ManifestError {
                origin: Origin::file(path),
                message: format!("cannot list: {e}"),
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                        && p.file_name()
                            .is_some_and(|n| n != crate::scenario::SCENARIO_FILE)
                })
                .collect();
            found.sort();
            out.extend(found);
        } else if path.is_file() {
            out.push(path.clone());
        } else {
            return Err(ManifestError {
                origin: Origin::file(path),
                message: "no such file or folder".into(),
            });
        }
    }
    Ok(out)
}

/// Read every file: each document (or List item) is kept or set aside.
pub(crate) fn read(files: &[PathBuf]) -> Result<Vec<InputFile>, ManifestError> {
    let mut out = Vec::new();
    for path in files {
        let docs = yaml::load_file(path)?;
        let mut file = InputFile {
            path: path.clone(),
            kept: Vec::new(),
            set_aside: Vec::new(),
            usable_as_is: true,
        };
        for doc in docs {
            match list_items(&doc) {
                Some(items) => {
                    file.usable_as_is = false;
                    for item in items {
                        let item_doc = Document {
                            file: doc.file.clone(),
                            index: doc.index,
                            root: item.clone(),
                        };
                        classify(item_doc, true, &mut file)?;
                    }
                }
                None => classify(doc, false, &mut file)?,
            }
        }
        out.push(file);
    }
    let cert_manager_secrets = certificate_secrets(&out);
    for file in &mut out {
        let mut kept = Vec::new();
        for k in std::mem::take(&mut file.kept) {
            match written_by_cert_manager(&k.object, &cert_manager_secrets) {
                Some(why) => {
                    file.usable_as_is = false;
                    file.set_aside.push(SetAside {
                        origin: k.object.origin(),
                        what: k.object.id.to_string(),
                        why,
                    });
                }
                None => kept.push(k),
            }
        }
        file.kept = kept;
    }
    Ok(out)
}

/// `kind: List` (what `kubectl get -o yaml` prints for several objects).
fn list_items(doc: &Document) -> Option<&[Node]> {
    let kind = doc.root.get("kind")?;
    if !matches!(&kind.value, Value::Str(k) if k == "List" || k.ends_with("List")) {
        return None;
    }
    match &doc.root.get("items")?.value {
        Value::Seq(items) => Some(items),
        _ => None,
    }
}

fn text_of<'a>(node: &'a Node, key: &str) -> Option<&'a str> {
    match &node.get(key)?.value {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

fn classify(doc: Document, from_list: bool, file: &mut InputFile) -> Result<(), ManifestError> {
    let kind = text_of(&doc.root, "kind").unwrap_or_default().to_string();
    let api_version = text_of(&doc.root, "apiVersion")
        .unwrap_or_default()
        .to_string();
    let name = doc
        .root
        .get("metadata")
        .and_then(|m| text_of(m, "name"))
        .unwrap_or("(no name)")
        .to_string();
    let known = Kind::from_name(&kind).filter(|k| k.api_versions().contains(&api_version.as_str()));
    let Some(_) = known else {
        file.usable_as_is = false;
        file.set_aside.push(SetAside {
            origin: doc.origin(),
            what: format!("{kind} {name} ({api_version})"),
            why: "mtls-e2e does not model this kind; it is not part of the mTLS chain the scenario tests"
                .into(),
        });
        return Ok(());
    };
    let object = Object::from_document(doc, "default")?;
    if let Some(image) = foreign_image(&object) {
        file.usable_as_is = false;
        file.set_aside.push(SetAside {
            origin: object.origin(),
            what: object.id.to_string(),
            why: format!(
                "it runs `{image}`; the local substrate runs only the mtls-e2e image (its stand-ins, see `components:`)"
            ),
        });
        return Ok(());
    }
    if object.id.kind == Kind::Secret
        && secret_type(&object).as_deref() == Some("helm.sh/release.v1")
    {
        file.usable_as_is = false;
        file.set_aside.push(SetAside {
            origin: object.origin(),
            what: object.id.to_string(),
            why: "Helm's release record, not part of the mTLS chain".into(),
        });
        return Ok(());
    }
    let mut json = object.to_json();
    let cleaned = remove_server_fields(&mut json) || from_list;
    if cleaned {
        file.usable_as_is = false;
    }
    file.kept.push(Kept {
        object,
        json,
        cleaned,
    });
    Ok(())
}

fn secret_type(object: &Object) -> Option<String> {
    object
        .parse::<crate::manifest::kinds::Secret>()
        .ok()
        .map(|s| s.type_)
}

/// Fields the API server sets; applied again they conflict or mean nothing.
/// Returns whether any was present.
fn remove_server_fields(json: &mut serde_json::Value) -> bool {
    let mut removed = false;
    if let Some(map) = json.as_object_mut() {
        removed |= map.remove("status").is_some();
    }
    if let Some(meta) = json.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        for field in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
            "selfLink",
            "ownerReferences",
        ] {
            removed |= meta.remove(field).is_some();
        }
        if let Some(annotations) = meta.get_mut("annotations").and_then(|a| a.as_object_mut()) {
            removed |= annotations
                .remove("kubectl.kubernetes.io/last-applied-configuration")
                .is_some();
            removed |= annotations
                .remove("deployment.kubernetes.io/revision")
                .is_some();
            if annotations.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    if let Some(spec) = json.get_mut("spec").and_then(|s| s.as_object_mut()) {
        // A Service's addresses are the cluster's, not the user's intent.
        for field in ["clusterIP", "clusterIPs"] {
            removed |= spec.remove(field).is_some();
        }
    }
    removed
}

/// `ns/name` of every Secret a Certificate of the input writes.
fn certificate_secrets(files: &[InputFile]) -> Vec<(String, String)> {
    files
        .iter()
        .flat_map(|f| &f.kept)
        .filter(|k| k.object.id.kind == Kind::Certificate)
        .filter_map(|k| {
            let spec = k
                .object
                .parse::<crate::manifest::kinds::Certificate>()
                .ok()?
                .spec;
            Some((
                format!("{}/{}", k.object.namespace(), spec.secret_name),
                k.object.id.key(),
            ))
        })
        .collect()
}

/// A dumped Secret that a Certificate of the input writes: the harness (or
/// cert-manager on a cluster) issues it anew, so the dump's copy is set aside.
fn written_by_cert_manager(object: &Object, written: &[(String, String)]) -> Option<String> {
    if object.id.kind != Kind::Secret {
        return None;
    }
    let key = object.id.key();
    written
        .iter()
        .find(|(secret, _)| *secret == key)
        .map(|(_, certificate)| {
            format!("cert-manager writes it from Certificate {certificate}, which the scenario issues anew")
        })
}

/// The path of `file` relative to `base` when inside it (for messages and lists).
pub(crate) fn relative(file: &Path, base: &Path) -> String {
    file.strip_prefix(base)
        .unwrap_or(file)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn a_kubectl_list_is_split_and_cleaned_and_unknown_kinds_are_set_aside() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = write(
            dir.path(),
            "dump.yaml",
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata:\n    name: app\n    uid: 1234\n    resourceVersion: \"9\"\n  status: {phase: Active}\n- apiVersion: v1\n  kind: ServiceAccount\n  metadata: {name: sa, namespace: app}\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: web, namespace: app}\n  spec:\n    template:\n      spec:\n        containers: [{name: web, image: ghcr.io/open-webui/open-webui:main}]\n",
        );
        let files = read(&[path]).expect("reads");
        let file = &files[0];
        assert!(!file.usable_as_is);
        assert_eq!(file.kept.len(), 1);
        assert_eq!(file.kept[0].object.id.to_string(), "Namespace app");
        assert_eq!(
            file.kept[0].json,
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "app"}})
        );
        let aside: Vec<(&str, Option<usize>)> = file
            .set_aside
            .iter()
            .map(|s| (s.what.as_str(), s.origin.line))
            .collect();
        assert_eq!(
            aside,
            [
                ("ServiceAccount sa (v1)", Some(11)),
                ("Deployment app/web", Some(14))
            ]
        );
        assert!(file.set_aside[1].why.contains("ghcr.io/open-webui"));
    }

    #[test]
    fn helm_output_keeps_modelled_objects_and_a_clean_file_is_usable_as_is() {
        let dir = tempfile::tempdir().expect("tmp");
        let helm = write(
            dir.path(),
            "helm.yaml",
            "---\n# Source: chart/templates/sa.yaml\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa}\n---\n# Source: chart/templates/svc.yaml\napiVersion: v1\nkind: Service\nmetadata: {name: open-webui}\nspec:\n  selector: {app: x}\n  ports: [{port: 80}]\n",
        );
        let plain = write(
            dir.path(),
            "plain.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n",
        );
        let files = read(&files_of(&[dir.path().to_path_buf()]).expect("files")).expect("reads");
        assert_eq!(files[0].path, helm);
        assert!(!files[0].usable_as_is);
        assert_eq!(files[0].kept[0].object.id.key(), "default/open-webui");
        assert!(!files[0].kept[0].cleaned);
        assert_eq!(files[1].path, plain);
        assert!(files[1].usable_as_is);
    }

    #[test]
    fn a_dumped_secret_that_a_certificate_writes_is_set_aside() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = write(
            dir.path(),
            "all.yaml",
            "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: ca, namespace: a}\nspec:\n  isCA: true\n  commonName: ca\n  secretName: ca-secret\n  issuerRef: {name: x}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: ca-secret, namespace: a}\ntype: kubernetes.io/tls\ndata: {}\n",
        );
        let files = read(&[path]).expect("reads");
        assert_eq!(files[0].kept.len(), 1);
        assert!(
            files[0].set_aside[0].why.contains("Certificate a/ca"),
            "{:?}",
            files[0].set_aside
        );
    }
}
