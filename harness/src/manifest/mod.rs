//! Kubernetes objects as a scenario declares them: parsed from YAML with their
//! origin (<file:line>), typed where the harness interprets them.
//!
//! The same objects are applied to a real cluster by the kind substrate and
//! interpreted by the local substrate, so nothing here knows about either.

pub(crate) mod kinds;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;

mod crd_fields;

use crate::yaml::{self, Document, Node, Origin, YamlError};
use std::fmt::Write as _;

/// The three states NIC reports for its resources (`status.state`, and the
/// state an Ingress event stands for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ControllerState {
    Valid,
    Warning,
    Invalid,
}

impl ControllerState {
    pub(crate) const ALL: [ControllerState; 3] = [Self::Valid, Self::Warning, Self::Invalid];

    /// NIC's word for it (as in `status.state`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "Valid",
            Self::Warning => "Warning",
            Self::Invalid => "Invalid",
        }
    }

    /// Read NIC's word (`None` for anything else, e.g. no status yet).
    pub(crate) fn parse(text: &str) -> Option<ControllerState> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for ControllerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A manifest problem, located.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct ManifestError {
    pub origin: Origin,
    pub message: String,
}

impl ManifestError {
    /// Several problems as one error: the first where it is, then each other
    /// on its own line with its own file and line, so a user fixes them all
    /// in one pass. `None` when there are none.
    pub(crate) fn all(mut problems: Vec<ManifestError>) -> Option<ManifestError> {
        if problems.is_empty() {
            return None;
        }
        let mut first = problems.remove(0);
        if !problems.is_empty() {
            let count = problems.len() + 1;
            for p in problems {
                let _ = write!(first.message, "\n{}: {}", p.origin, p.message);
            }
            let _ = write!(
                first.message,
                "\n({count} problems, each with its file and line)"
            );
        }
        Some(first)
    }
}

impl From<YamlError> for ManifestError {
    fn from(e: YamlError) -> Self {
        ManifestError {
            origin: e.origin,
            message: e.message,
        }
    }
}

/// The kinds the harness knows. Anything else is refused with a clear error:
/// the local substrate could not honour it, and a typo should not pass silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Namespace,
    Secret,
    ConfigMap,
    Service,
    Deployment,
    Ingress,
    ClusterIssuer,
    Issuer,
    Certificate,
    Policy,
    VirtualServer,
    VirtualServerRoute,
}

impl Kind {
    pub(crate) const ALL: [Kind; 12] = [
        Kind::Namespace,
        Kind::Secret,
        Kind::ConfigMap,
        Kind::Service,
        Kind::Deployment,
        Kind::Ingress,
        Kind::ClusterIssuer,
        Kind::Issuer,
        Kind::Certificate,
        Kind::Policy,
        Kind::VirtualServer,
        Kind::VirtualServerRoute,
    ];

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::Secret => "Secret",
            Kind::ConfigMap => "ConfigMap",
            Kind::Service => "Service",
            Kind::Deployment => "Deployment",
            Kind::Ingress => "Ingress",
            Kind::ClusterIssuer => "ClusterIssuer",
            Kind::Issuer => "Issuer",
            Kind::Certificate => "Certificate",
            Kind::Policy => "Policy",
            Kind::VirtualServer => "VirtualServer",
            Kind::VirtualServerRoute => "VirtualServerRoute",
        }
    }

    /// The apiVersion(s) the kind is served at.
    pub(crate) fn api_versions(&self) -> &'static [&'static str] {
        match self {
            Kind::Namespace | Kind::Secret | Kind::ConfigMap | Kind::Service => &["v1"],
            Kind::Deployment => &["apps/v1"],
            Kind::Ingress => &["networking.k8s.io/v1"],
            Kind::ClusterIssuer | Kind::Issuer | Kind::Certificate => &["cert-manager.io/v1"],
            Kind::Policy => &["k8s.nginx.org/v1"],
            Kind::VirtualServer | Kind::VirtualServerRoute => &["k8s.nginx.org/v1"],
        }
    }

    pub(crate) fn namespaced(&self) -> bool {
        !matches!(self, Kind::Namespace | Kind::ClusterIssuer)
    }

    pub(crate) fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A namespaced object's name, `namespace/name` (Kubernetes' `NamespacedName`):
/// the key of every map of objects, so no key is built by formatting strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NamespacedName {
    pub namespace: String,
    pub name: String,
}

impl NamespacedName {
    pub(crate) fn new(namespace: &str, name: &str) -> Self {
        NamespacedName {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

/// Serialized as it is written, `namespace/name`.
impl serde::Serialize for NamespacedName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for NamespacedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One port of a Service: what a port-forward or an upstream points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServicePort {
    pub service: NamespacedName,
    pub port: u16,
}

impl ServicePort {
    pub(crate) fn new(namespace: &str, name: &str, port: u16) -> Self {
        ServicePort {
            service: NamespacedName::new(namespace, name),
            port,
        }
    }
}

impl fmt::Display for ServicePort {
    /// `namespace/name:port`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.service, self.port)
    }
}

/// `kind namespace/name`, the identity of an object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    pub kind: Kind,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub(crate) fn new(kind: Kind, namespace: &str, name: &str) -> Self {
        let namespace = kind.namespaced().then(|| namespace.to_string());
        ObjectRef {
            kind,
            namespace,
            name: name.to_string(),
        }
    }

    /// The object's `NamespacedName` (an empty namespace for cluster-scoped kinds).
    pub(crate) fn namespaced_name(&self) -> NamespacedName {
        NamespacedName::new(self.namespace.as_deref().unwrap_or(""), &self.name)
    }

    /// `ns/name` (or `name` for cluster-scoped kinds).
    pub(crate) fn key(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.key())
    }
}

/// One object: its identity, its full YAML tree (for kubectl-style apply and
/// schema validation) and where it came from.
#[derive(Debug, Clone)]
pub struct Object {
    pub id: ObjectRef,
    pub api_version: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub doc: Arc<Document>,
}

impl Object {
    #[must_use]
    pub fn origin(&self) -> Origin {
        self.doc.origin()
    }

    pub(crate) fn origin_of(&self, path: &str) -> Origin {
        self.doc.origin_of(path)
    }

    pub(crate) fn namespace(&self) -> &str {
        self.id.namespace.as_deref().unwrap_or("")
    }

    #[must_use]
    pub fn name(&self) -> &str {
        &self.id.name
    }

    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        self.doc.to_json()
    }

    /// The typed view of this object; errors name the offending line.
    /// The object as `T`. A field `T` does not have but the kind's published
    /// CRD schema does is one the local substrate does not render: the message
    /// says so and where to run it, instead of reading like a typo.
    pub(crate) fn parse<T: DeserializeOwned>(&self) -> Result<T, ManifestError> {
        self.doc.parse().map_err(|e: YamlError| {
            let mut error = ManifestError::from(e);
            let known = crd_fields::spec_fields(self.id.kind.name()).unwrap_or_default();
            if let Some(field) = yaml::unknown_field(&error.message)
                && known.contains(&field)
            {
                let at = error
                    .message
                    .split_once(" (at `")
                    .map(|(_, at)| format!(" (at `{at}"))
                    .unwrap_or_default();
                error.message = format!(
                    "`{field}` is a field of {} that the local substrate does not render{at}; \
                     run this scenario on kind (`--substrate kind`) to test it with the real controller",
                    self.id.kind.name()
                );
            }
            error
        })
    }

    pub(crate) fn error(&self, path: &str, message: impl Into<String>) -> ManifestError {
        ManifestError {
            origin: self.origin_of(path),
            message: message.into(),
        }
    }

    /// Build an object from a parsed document, defaulting the namespace like
    /// `kubectl apply -n <default_namespace>`.
    pub(crate) fn from_document(
        doc: Document,
        default_namespace: &str,
    ) -> Result<Object, ManifestError> {
        let err = |path: &str, message: String| ManifestError {
            origin: doc.origin_of(path),
            message,
        };
        let root = &doc.root;
        let text = |node: Option<&Node>| match node.map(|n| &n.value) {
            Some(yaml::Value::Str(s)) => Some(s.clone()),
            _ => None,
        };
        let api_version = text(root.get("apiVersion"))
            .ok_or_else(|| err("apiVersion", "every object needs `apiVersion`".into()))?;
        let kind_name = text(root.get("kind"))
            .ok_or_else(|| err("kind", "every object needs `kind`".into()))?;
        let kind = Kind::from_name(&kind_name).ok_or_else(|| {
            let known: Vec<_> = Kind::ALL.iter().map(Kind::name).collect();
            err(
                "kind",
                format!(
                    "unknown kind `{kind_name}`: mtls-e2e knows {}; anything else would be ignored \
                     by the local substrate, so it is refused",
                    known.join(", ")
                ),
            )
        })?;
        if !kind.api_versions().contains(&api_version.as_str()) {
            return Err(err(
                "apiVersion",
                format!(
                    "{kind} is served as apiVersion {}, not `{api_version}`",
                    kind.api_versions().join(" or ")
                ),
            ));
        }
        let metadata: Metadata = match root.get("metadata") {
            Some(node) => node.parse(&doc.file).map_err(|e| ManifestError {
                origin: e.origin,
                message: format!("metadata: {}", e.message),
            })?,
            None => return Err(err("metadata", "every object needs `metadata.name`".into())),
        };
        let name = metadata
            .name
            .ok_or_else(|| err("metadata", "every object needs `metadata.name`".into()))?;
        validate_name(&name).map_err(|m| err("metadata.name", m))?;
        let namespace = metadata
            .namespace
            .unwrap_or_else(|| default_namespace.to_string());
        if kind.namespaced() {
            validate_name(&namespace).map_err(|m| err("metadata.namespace", m))?;
        }
        Ok(Object {
            id: ObjectRef::new(kind, &namespace, &name),
            api_version,
            labels: metadata.labels,
            annotations: metadata.annotations,
            doc: Arc::new(doc),
        })
    }

    /// Build an object from JSON produced by the harness itself (a step's Secret,
    /// a patched copy); every node takes the line of `origin`.
    pub(crate) fn from_json(
        value: &serde_json::Value,
        origin: &Origin,
        default_namespace: &str,
    ) -> Result<Object, ManifestError> {
        let text = serde_json::to_string(value).map_err(|e| ManifestError {
            origin: origin.clone(),
            message: e.to_string(),
        })?;
        // JSON is YAML; parse it so the object looks like any other.
        let mut docs = yaml::parse_documents(&text, &origin.file)?;
        let mut doc = docs.pop().ok_or_else(|| ManifestError {
            origin: origin.clone(),
            message: "empty object".into(),
        })?;
        set_lines(&mut doc.root, origin.line.unwrap_or(1));
        Object::from_document(doc, default_namespace)
    }

    /// A copy with a new tree (a patched object), keeping its origin and namespace.
    pub(crate) fn with_json(&self, value: &serde_json::Value) -> Result<Object, ManifestError> {
        Object::from_json(value, &self.origin(), self.namespace())
    }
}

fn set_lines(node: &mut Node, line: usize) {
    node.line = line;
    match &mut node.value {
        yaml::Value::Seq(items) => items.iter_mut().for_each(|n| set_lines(n, line)),
        yaml::Value::Map(entries) => entries.iter_mut().for_each(|(_, n)| set_lines(n, line)),
        _ => {}
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    name: Option<String>,
    namespace: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Kubernetes object names: DNS-1123 subdomains.
pub(crate) fn validate_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid Kubernetes name (lower-case letters, digits, '-' and '.', \
             starting and ending with a letter or digit)"
        ))
    }
}

/// Load every object in a YAML file.
pub(crate) fn load_file(
    path: &Path,
    default_namespace: &str,
) -> Result<Vec<Object>, ManifestError> {
    let docs = yaml::load_file(path)?;
    docs.into_iter()
        .map(|d| Object::from_document(d, default_namespace))
        .collect()
}

/// Load objects from YAML text (embedded component manifests).
pub(crate) fn load_text(
    text: &str,
    file: &Path,
    default_namespace: &str,
) -> Result<Vec<Object>, ManifestError> {
    let docs = yaml::parse_documents(text, file)?;
    docs.into_iter()
        .map(|d| Object::from_document(d, default_namespace))
        .collect()
}

/// RFC 7386 JSON merge patch, as `kubectl patch --type merge` applies it.
pub(crate) fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    use serde_json::Value;
    match patch {
        Value::Object(fields) => {
            if !target.is_object() {
                *target = Value::Object(serde_json::Map::default());
            }
            if let Value::Object(map) = target {
                for (key, value) in fields {
                    if value.is_null() {
                        map.remove(key);
                    } else {
                        merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_kind_is_refused_with_its_line() {
        let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\n";
        let err = load_text(text, Path::new("m.yaml"), "default").unwrap_err();
        assert_eq!(err.origin.line, Some(6), "{err}");
        assert!(err.message.contains("unknown kind `Pod`"), "{err}");
    }

    #[test]
    fn namespace_defaults_like_kubectl() {
        let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\n---\napiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata: {name: b}\n";
        let objects = load_text(text, Path::new("m.yaml"), "open-webui").expect("loads");
        assert_eq!(objects[0].id.key(), "open-webui/a");
        assert_eq!(objects[1].id.key(), "b");
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut v = serde_json::json!({"spec": {"a": 1, "b": {"c": 2}}});
        merge_patch(
            &mut v,
            &serde_json::json!({"spec": {"a": null, "b": {"d": 3}}}),
        );
        assert_eq!(v, serde_json::json!({"spec": {"b": {"c": 2, "d": 3}}}));
    }
}
