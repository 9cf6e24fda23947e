//! Manifests validated as the API server would with `--validate=strict`:
//! custom resources against the real CRD schemas (cert-manager v1.19, NIC
//! v5.5.4), built-in kinds against the Kubernetes types. Used by the
//! `manifests/*` trials; lives with the tests because only they use it.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use k8s_openapi::Resource;
use k8s_openapi::api::admissionregistration::v1 as admission;
use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::batch::v1 as batch;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::networking::v1 as networking;
use k8s_openapi::api::policy::v1 as policy;
use k8s_openapi::api::rbac::v1 as rbac;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use libtest_mimic::{Completion, Failed, Trial};
use mtls_e2e::substrate::cluster::install;
use regex::Regex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// One problem, at a path such as `.spec.template.spec.containers[0].image`.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub path: String,
    pub message: String,
}

impl Violation {
    fn new(path: &str, message: impl Into<String>) -> Self {
        Violation {
            path: if path.is_empty() { "." } else { path }.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// (group, version, kind); the core group is "".
type Gvk = (String, String, String);

fn gvk(api_version: &str, kind: &str) -> Gvk {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    (group.to_string(), version.to_string(), kind.to_string())
}

/// CRD schemas keyed by (group, version, kind), plus the regexes their `pattern`s need.
#[derive(Default)]
pub struct Schemas {
    schemas: HashMap<Gvk, Value>,
    patterns: HashMap<String, Regex>,
}

impl Schemas {
    pub fn new() -> Schemas {
        Schemas::default()
    }

    /// Add every apiextensions.k8s.io/v1 `CustomResourceDefinition` in `docs` (other
    /// documents are ignored), one schema per served version. Returns how many versions
    /// were added. A version added twice keeps the last schema.
    pub fn add_documents(&mut self, docs: &[Value]) -> Result<usize, String> {
        let mut added = 0;
        for doc in docs {
            if doc.get("kind").and_then(Value::as_str) != Some("CustomResourceDefinition") {
                continue;
            }
            let name = doc
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("<unnamed>");
            let fail = |what: &str| format!("CustomResourceDefinition {name}: {what}");
            if doc.get("apiVersion").and_then(Value::as_str) != Some("apiextensions.k8s.io/v1") {
                // v1beta1 keeps its schema elsewhere and is no longer served by Kubernetes.
                return Err(fail("only apiextensions.k8s.io/v1 is supported"));
            }
            let str_at = |pointer: &str| {
                doc.pointer(pointer)
                    .and_then(Value::as_str)
                    .ok_or_else(|| fail(&format!("{pointer} is missing")))
            };
            let group = str_at("/spec/group")?;
            let kind = str_at("/spec/names/kind")?;
            let versions = doc
                .pointer("/spec/versions")
                .and_then(Value::as_array)
                .ok_or_else(|| fail("/spec/versions is missing"))?;
            for version in versions {
                if version.get("served").and_then(Value::as_bool) != Some(true) {
                    continue;
                }
                let version_name = version
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| fail("a version has no name"))?;
                let schema = version
                    .pointer("/schema/openAPIV3Schema")
                    .cloned()
                    // No schema: the API server keeps whatever it is given.
                    .unwrap_or_else(|| {
                        serde_json::json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
                    });
                self.compile_patterns(&schema)
                    .map_err(|e| fail(&format!("version {version_name}: {e}")))?;
                self.schemas.insert(
                    (
                        group.to_string(),
                        version_name.to_string(),
                        kind.to_string(),
                    ),
                    schema,
                );
                added += 1;
            }
        }
        Ok(added)
    }

    /// True when `validate` has a schema for this apiVersion/kind: a loaded CRD or a
    /// core type known to [`validate_core`].
    pub fn knows(&self, api_version: &str, kind: &str) -> bool {
        self.schemas.contains_key(&gvk(api_version, kind))
            || core_checker(api_version, kind).is_some()
    }

    /// Validate one manifest: against its CRD schema if loaded, else as a core type.
    /// Err when the manifest has no apiVersion/kind or no schema is known for them.
    pub fn validate(&self, manifest: &Value) -> Result<Vec<Violation>, String> {
        let field = |name: &str| {
            manifest
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("manifest has no string `{name}`"))
        };
        let (api_version, kind) = (field("apiVersion")?, field("kind")?);
        if let Some(schema) = self.schemas.get(&gvk(api_version, kind)) {
            let mut checker = Checker {
                patterns: &self.patterns,
                out: Vec::new(),
            };
            if manifest.get("metadata").is_none() {
                checker.fail(".metadata", "required field missing");
            }
            checker.check(schema, manifest, "", true);
            return Ok(checker.out);
        }
        validate_core(api_version, kind, manifest)
            .ok_or_else(|| format!("no schema for {api_version} {kind}"))
    }

    /// Number of CEL rules (`x-kubernetes-validations` entries) in the loaded schemas;
    /// they are never evaluated.
    pub fn cel_rules_skipped(&self) -> usize {
        let mut count = 0;
        for schema in self.schemas.values() {
            walk_schema(schema, &mut |s| {
                count += s
                    .get("x-kubernetes-validations")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
            });
        }
        count
    }

    fn compile_patterns(&mut self, schema: &Value) -> Result<(), String> {
        let mut patterns = Vec::new();
        walk_schema(schema, &mut |s| {
            if let Some(p) = s.get("pattern").and_then(Value::as_str) {
                patterns.push(p.to_string());
            }
        });
        for p in patterns {
            if let std::collections::hash_map::Entry::Vacant(slot) = self.patterns.entry(p) {
                let re =
                    Regex::new(slot.key()).map_err(|e| format!("pattern {:?}: {e}", slot.key()))?;
                slot.insert(re);
            }
        }
        Ok(())
    }
}

/// Call `visit` on `schema` and every sub-schema (properties, items, combinators...),
/// but not on `default`/`enum`/`example` values, which are data.
fn walk_schema(schema: &Value, visit: &mut dyn FnMut(&Map<String, Value>)) {
    let Some(s) = schema.as_object() else { return };
    visit(s);
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        props.values().for_each(|p| walk_schema(p, visit));
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(sub) = s.get(key) {
            walk_schema(sub, visit);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(subs) = s.get(key).and_then(Value::as_array) {
            for sub in subs {
                walk_schema(sub, visit);
            }
        }
    }
}

fn flag(schema: &Map<String, Value>, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool) == Some(true)
}

fn schema_flag(schema: &Value, key: &str) -> bool {
    schema.as_object().is_some_and(|s| flag(s, key))
}

/// Kubernetes accepts an integral float (`1.0`) where an integer is expected.
fn is_integer(v: &Value) -> bool {
    v.is_i64()
        || v.is_u64()
        || v.as_f64()
            .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) if is_integer(v) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(expected: &str, v: &Value) -> bool {
    match expected {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => is_integer(v),
        "number" => v.is_number(),
        _ => true,
    }
}

/// Walks a structural schema over a value, collecting violations.
struct Checker<'a> {
    patterns: &'a HashMap<String, Regex>,
    out: Vec<Violation>,
}

impl Checker<'_> {
    fn fail(&mut self, path: &str, message: impl Into<String>) {
        self.out.push(Violation::new(path, message));
    }

    /// `strict` is false inside allOf/anyOf/oneOf/not: in a structural schema those
    /// branches carry value validations only, so a field they don't list is not unknown.
    fn check(&mut self, schema: &Value, value: &Value, path: &str, strict: bool) {
        let Some(schema) = schema.as_object() else {
            return;
        };
        if value.is_null() {
            if !flag(schema, "nullable")
                && (schema.contains_key("type") || flag(schema, "x-kubernetes-int-or-string"))
            {
                self.fail(path, "must not be null");
            }
            return;
        }
        let type_error = if flag(schema, "x-kubernetes-int-or-string") {
            (!is_integer(value) && !value.is_string()).then(|| "an integer or a string".to_string())
        } else {
            let expected = schema.get("type").and_then(Value::as_str);
            expected
                .filter(|t| !type_matches(t, value))
                .map(|t| format!("of type {t}"))
        };
        if let Some(expected) = type_error {
            self.fail(
                path,
                format!("must be {expected}, got {}", type_name(value)),
            );
            return;
        }
        self.check_value(schema, value, path);
        match value {
            Value::Object(map) => self.check_object(schema, map, path, strict),
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(item_schema, item, &format!("{path}[{i}]"), strict);
                    }
                }
            }
            _ => {}
        }
        self.check_combinators(schema, value, path);
    }

    /// enum, pattern, lengths, bounds and sizes.
    fn check_value(&mut self, schema: &Map<String, Value>, value: &Value, path: &str) {
        let number = |key: &str| schema.get(key).and_then(Value::as_f64);
        let count = |key: &str| schema.get(key).and_then(Value::as_u64).map(|n| n as usize);
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
            let list = list.join(", ");
            self.fail(
                path,
                format!("unsupported value {value}: supported values: {list}"),
            );
        }
        match value {
            Value::String(s) => {
                if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
                    match self.patterns.get(p) {
                        Some(re) if re.is_match(s) => {}
                        Some(_) => self.fail(path, format!("{value} does not match pattern {p:?}")),
                        None => self.fail(path, format!("pattern {p:?} was not compiled")),
                    }
                }
                let len = s.chars().count();
                if let Some(min) = count("minLength").filter(|&m| len < m) {
                    self.fail(path, format!("must be at least {min} characters long"));
                }
                if let Some(max) = count("maxLength").filter(|&m| len > m) {
                    self.fail(path, format!("must be at most {max} characters long"));
                }
            }
            Value::Number(n) => {
                let v = n.as_f64().unwrap_or(f64::NAN);
                if let Some(min) = number("minimum") {
                    if flag(schema, "exclusiveMinimum") && v <= min {
                        self.fail(path, format!("must be greater than {min}"));
                    } else if v < min {
                        self.fail(path, format!("must be greater than or equal to {min}"));
                    }
                }
                if let Some(max) = number("maximum") {
                    if flag(schema, "exclusiveMaximum") && v >= max {
                        self.fail(path, format!("must be less than {max}"));
                    } else if v > max {
                        self.fail(path, format!("must be less than or equal to {max}"));
                    }
                }
            }
            Value::Array(items) => {
                if let Some(min) = count("minItems").filter(|&m| items.len() < m) {
                    self.fail(path, format!("must have at least {min} items"));
                }
                if let Some(max) = count("maxItems").filter(|&m| items.len() > m) {
                    self.fail(path, format!("must have at most {max} items"));
                }
            }
            Value::Object(map) => {
                if let Some(min) = count("minProperties").filter(|&m| map.len() < m) {
                    self.fail(path, format!("must have at least {min} properties"));
                }
                if let Some(max) = count("maxProperties").filter(|&m| map.len() > m) {
                    self.fail(path, format!("must have at most {max} properties"));
                }
            }
            _ => {}
        }
    }

    fn check_object(
        &mut self,
        schema: &Map<String, Value>,
        map: &Map<String, Value>,
        path: &str,
        strict: bool,
    ) {
        let props = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields")
            || additional.and_then(Value::as_bool) == Some(true);
        // The root of a custom resource and embedded resources carry apiVersion/kind/metadata.
        let resource =
            strict && (path.is_empty() || flag(schema, "x-kubernetes-embedded-resource"));
        for (key, child) in map {
            let child_path = format!("{path}.{key}");
            if resource && key == "metadata" {
                self.check_metadata(child, &child_path, path.is_empty());
                // Value rules a CRD may add (e.g. a maxLength on name); fields are ObjectMeta's.
                if let Some(s) = props.and_then(|p| p.get(key)) {
                    self.check(s, child, &child_path, false);
                }
                continue;
            }
            let child_schema = props
                .and_then(|p| p.get(key))
                .or_else(|| additional.filter(|a| a.is_object()));
            match child_schema {
                // The API server prunes a null that is not nullable, as if the field were absent.
                Some(s) if child.is_null() && !schema_flag(s, "nullable") => {}
                Some(s) => self.check(s, child, &child_path, strict),
                None if !strict || preserve => {}
                None if resource && (key == "apiVersion" || key == "kind") => {}
                None => self.fail(&child_path, format!("unknown field \"{key}\"")),
            }
        }
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(name) = name.as_str() else { continue };
            let prop = props.and_then(|p| p.get(name));
            let present = map
                .get(name)
                .is_some_and(|v| !v.is_null() || prop.is_some_and(|s| schema_flag(s, "nullable")));
            // A missing field with a default is filled in before validation.
            let defaulted = prop.is_some_and(|s| s.get("default").is_some());
            if !present && !defaulted {
                self.fail(&format!("{path}.{name}"), "required field missing");
            }
        }
    }

    /// `ObjectMeta` is not in the CRD schema (it says only `type: object`): check it as
    /// the typed `ObjectMeta`; the resource root also needs a name.
    fn check_metadata(&mut self, meta: &Value, path: &str, needs_name: bool) {
        self.out.extend(typed_violations::<ObjectMeta>(meta, path));
        if needs_name && meta.is_object() && !has_name(meta) {
            self.fail(&format!("{path}.name"), "required field missing");
        }
    }

    fn check_combinators(&mut self, schema: &Map<String, Value>, value: &Value, path: &str) {
        let branches = |key: &str| {
            schema
                .get(key)
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[])
        };
        for branch in branches("allOf") {
            self.check(branch, value, path, false);
        }
        let any = branches("anyOf");
        if !any.is_empty() {
            let failures: Vec<Vec<Violation>> =
                any.iter().map(|b| self.branch(b, value, path)).collect();
            if failures.iter().all(|f| !f.is_empty()) {
                let reasons: Vec<String> = failures
                    .iter()
                    .flatten()
                    .map(|v| v.message.clone())
                    .collect();
                self.fail(
                    path,
                    format!("matches none of the anyOf schemas ({})", reasons.join("; ")),
                );
            }
        }
        let one = branches("oneOf");
        if !one.is_empty() {
            let matched = one
                .iter()
                .filter(|b| self.branch(b, value, path).is_empty())
                .count();
            if matched != 1 {
                self.fail(
                    path,
                    format!("must match exactly one of the oneOf schemas, matches {matched}"),
                );
            }
        }
        if let Some(not) = schema.get("not")
            && self.branch(not, value, path).is_empty()
        {
            self.fail(path, "must not match the schema in \"not\"");
        }
    }

    /// Violations of one combinator branch, kept apart from the main list.
    fn branch(&self, schema: &Value, value: &Value, path: &str) -> Vec<Violation> {
        let mut sub = Checker {
            patterns: self.patterns,
            out: Vec::new(),
        };
        sub.check(schema, value, path, false);
        sub.out
    }
}

fn has_name(meta: &Value) -> bool {
    ["name", "generateName"].iter().any(|k| {
        meta.get(k)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    })
}

/// Deserialise `value` as `T` (type errors, bad base64), then serialise it back and
/// compare keys: an input field gone after the round trip is unknown to `T`, and a field
/// that appeared was required and missing (k8s-openapi fills those with defaults).
fn typed_violations<T: DeserializeOwned + Serialize>(
    value: &Value,
    prefix: &str,
) -> Vec<Violation> {
    let typed: T = match serde_path_to_error::deserialize(value) {
        Ok(typed) => typed,
        Err(err) => {
            let at = err.path().to_string();
            let path = if at == "." {
                prefix.to_string()
            } else {
                format!("{prefix}.{at}")
            };
            return vec![Violation::new(&path, err.into_inner().to_string())];
        }
    };
    match serde_json::to_value(&typed) {
        Ok(back) => {
            let mut out = Vec::new();
            compare_keys(value, &back, prefix, &mut out);
            out
        }
        Err(e) => vec![Violation::new(
            prefix,
            format!("cannot serialise back: {e}"),
        )],
    }
}

/// Compare the keys of `input` and its round trip `output`. Scalars are not compared:
/// Quantity and int-or-string values may be normalised. A null counts as absent, as
/// the API server reads it.
fn compare_keys(input: &Value, output: &Value, path: &str, out: &mut Vec<Violation>) {
    match (input, output) {
        (Value::Object(i), Value::Object(o)) => {
            for (key, v) in i {
                let p = format!("{path}.{key}");
                match o.get(key) {
                    Some(back) => compare_keys(v, back, &p, out),
                    None if v.is_null() => {}
                    None => out.push(Violation::new(&p, format!("unknown field \"{key}\""))),
                }
            }
            for key in o.keys() {
                if i.get(key).is_none_or(Value::is_null) {
                    out.push(Violation::new(
                        &format!("{path}.{key}"),
                        "required field missing",
                    ));
                }
            }
        }
        (Value::Array(i), Value::Array(o)) => {
            for (idx, (v, back)) in i.iter().zip(o).enumerate() {
                compare_keys(v, back, &format!("{path}[{idx}]"), out);
            }
        }
        _ => {}
    }
}

type CoreCheck = fn(&Value) -> Vec<Violation>;

/// The checker for a built-in apiVersion/kind, if it is one we know.
fn core_checker(api_version: &str, kind: &str) -> Option<CoreCheck> {
    macro_rules! known {
        ($($t:ty),* $(,)?) => {
            $(
                if api_version == <$t as Resource>::API_VERSION && kind == <$t as Resource>::KIND {
                    return Some(check_core::<$t>);
                }
            )*
        };
    }
    known!(
        core::ConfigMap,
        core::Namespace,
        core::PersistentVolumeClaim,
        core::Pod,
        core::Secret,
        core::Service,
        core::ServiceAccount,
        apps::DaemonSet,
        apps::Deployment,
        apps::StatefulSet,
        batch::CronJob,
        batch::Job,
        networking::Ingress,
        networking::IngressClass,
        networking::NetworkPolicy,
        policy::PodDisruptionBudget,
        rbac::ClusterRole,
        rbac::ClusterRoleBinding,
        rbac::Role,
        rbac::RoleBinding,
        CustomResourceDefinition,
        admission::MutatingWebhookConfiguration,
        admission::ValidatingWebhookConfiguration,
    );
    None
}

fn check_core<T: Resource + DeserializeOwned + Serialize>(manifest: &Value) -> Vec<Violation> {
    let mut out = typed_violations::<T>(manifest, "");
    // serde's base64 message ("Invalid symbol 33, offset 3.") does not say what was expected.
    let base64_field = match T::KIND {
        "Secret" => Some(".data."),
        "ConfigMap" => Some(".binaryData."),
        _ => None,
    };
    for v in &mut out {
        if base64_field.is_some_and(|prefix| v.path.starts_with(prefix)) {
            v.message = format!("invalid base64: {}", v.message);
        }
    }
    // A missing `metadata` is reported by the round trip (ObjectMeta is required).
    if let Some(meta) = manifest.get("metadata")
        && meta.is_object()
        && !has_name(meta)
    {
        out.push(Violation::new(".metadata.name", "required field missing"));
    }
    out
}

/// Validate a built-in kind; None when `api_version`/`kind` is not one we know.
pub fn validate_core(api_version: &str, kind: &str, manifest: &Value) -> Option<Vec<Violation>> {
    core_checker(api_version, kind).map(|check| check(manifest))
}

/// The command that puts the pinned release files (and so the CRD schemas)
/// into the download cache.
pub const DOWNLOAD: &str = "cargo run -p mtls-e2e -- download";

/// The CRD schemas custom resources are validated against, and where they came from.
pub struct Crds {
    /// Where they were read, for messages.
    pub from: String,
    /// Each CustomResourceDefinition, with where it came from.
    pub documents: Vec<(String, Value)>,
    pub schemas: Schemas,
}

impl Crds {
    fn new(from: String, documents: Vec<(String, Value)>) -> Result<Crds, String> {
        let mut schemas = Schemas::new();
        let crds: Vec<Value> = documents.iter().map(|(_, d)| d.clone()).collect();
        schemas
            .add_documents(&crds)
            .map_err(|e| format!("{from}: {e}"))?;
        Ok(Crds {
            from,
            documents,
            schemas,
        })
    }

    /// Every `*.yaml` / `*.yml` file of a folder (files without CRDs add nothing).
    fn from_dir(dir: &Path) -> Result<Crds, String> {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut files = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
            let ext = path.extension().and_then(|e| e.to_str());
            if matches!(ext, Some("yaml" | "yml")) && path.is_file() {
                files.push(path);
            }
        }
        files.sort(); // deterministic: on a duplicate, the later file wins
        let mut documents = Vec::new();
        for file in files {
            let docs = mtls_e2e::yaml::load_file(&file).map_err(|e| e.to_string())?;
            documents.extend(
                docs.iter()
                    .map(|d| (file.display().to_string(), d.to_json())),
            );
        }
        Crds::new(dir.display().to_string(), documents)
    }
}

/// Where the CRD schemas are looked for, best first.
pub struct CrdPlaces {
    /// `MTLS_E2E_CRDS`: a folder the user named.
    pub named: Option<PathBuf>,
    /// The download cache (`mtls-e2e download` fills it): cert-manager's
    /// release manifest and NIC's `deploy/crds.yaml`, each sha256-checked.
    pub cache: PathBuf,
    /// `../shared/crds` beside the clone: the offline fallback.
    pub shared: PathBuf,
}

impl CrdPlaces {
    /// Where this machine keeps them.
    pub fn here() -> CrdPlaces {
        CrdPlaces {
            named: std::env::var_os("MTLS_E2E_CRDS")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            cache: mtls_e2e::substrate::cluster::default_cache(),
            shared: Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/crds"),
        }
    }

    /// The schemas for NIC `nic`: from the named folder, else the cache, else
    /// `../shared/crds`; `None` when none has them. A cached file with another
    /// digest than the pinned one is refused (an error), never passed over.
    pub fn find(&self, nic: &str) -> Result<Option<Crds>, String> {
        if let Some(dir) = &self.named {
            return Crds::from_dir(dir).map(Some);
        }
        let cached = install::pinned_crds(nic, &self.cache).map_err(|e| e.to_string())?;
        if let Some(documents) = cached {
            let from = format!(
                "the pinned release files in {}",
                self.cache.join("downloads").display()
            );
            let documents = documents.into_iter().map(|d| (from.clone(), d)).collect();
            return Crds::new(from, documents).map(Some);
        }
        if self.shared.is_dir() {
            return Crds::from_dir(&self.shared).map(Some);
        }
        Ok(None)
    }

    /// Why trials needing the schemas cannot run, and the one command that un-skips them.
    pub fn absent(&self) -> String {
        format!(
            "no CRD schemas: neither the download cache ({}) nor {} has them; `{DOWNLOAD}` fetches them",
            self.cache.join("downloads").display(),
            self.shared.display()
        )
    }
}

/// Which `MTLS_E2E_REQUIRE_*=1` makes a missing prerequisite fail the
/// suite rather than ignore the trials that need it: `require` itself, or
/// `MTLS_E2E_REQUIRE_DOWNLOADS=1` (ci.yml, after `mtls-e2e download`), which
/// implies the CRD schemas too.
pub fn required_by(require: &'static str) -> Option<&'static str> {
    let set = |name: &str| std::env::var(name).as_deref() == Ok("1");
    ["MTLS_E2E_REQUIRE_DOWNLOADS", require]
        .into_iter()
        .find(|name| set(name))
}

/// A trial skipped at run time, saying why and how to un-skip it; a failure
/// instead when `require` (an `MTLS_E2E_REQUIRE_*` name) is set.
pub fn unavailable(why: &str, require: &'static str) -> Result<Completion, Failed> {
    match required_by(require) {
        Some(name) => Err(format!("{why} ({name}=1 makes that a failure)").into()),
        None => Ok(Completion::ignored_with(why)),
    }
}

/// The schemas for NIC 5.5.4 (what the local substrate renders), found once for all trials.
pub fn default_crds() -> Result<Option<&'static Crds>, Failed> {
    static CRDS: std::sync::OnceLock<Result<Option<Crds>, String>> = std::sync::OnceLock::new();
    CRDS.get_or_init(|| CrdPlaces::here().find(install::DEFAULT_NIC))
        .as_ref()
        .map(Option::as_ref)
        .map_err(|e| Failed::from(e.as_str()))
}

/// A trial that needs the default CRD schemas: ignored, saying why and how to
/// un-skip it, when no place has them.
pub fn with_crds(
    name: impl Into<String>,
    run: impl FnOnce(&Crds) -> Result<(), Failed> + Send + 'static,
) -> Trial {
    Trial::ignorable_test(name, move || match default_crds()? {
        Some(crds) => run(crds).map(|()| Completion::Completed),
        None => unavailable(&CrdPlaces::here().absent(), "MTLS_E2E_REQUIRE_CRDS"),
    })
}

/// The validator's own trials (`validate/*`); those that need the CRD schemas
/// are ignored when none is found (saying so), unless `MTLS_E2E_REQUIRE_CRDS=1`.
pub(crate) fn trials() -> Vec<Trial> {
    let with = |name: &str, f: fn(&Crds)| {
        with_crds(format!("validate/{name}"), move |crds| {
            f(crds);
            Ok(())
        })
    };
    let without = |name: &str, f: fn()| {
        Trial::test(format!("validate/{name}"), move || {
            f();
            Ok(())
        })
    };
    vec![
        with(
            "loads_all_served_versions",
            cases::loads_all_served_versions,
        ),
        without(
            "add_documents_counts_versions",
            cases::add_documents_counts_versions,
        ),
        with("certificate", cases::certificate),
        with("nic_policy", cases::nic_policy),
        with("nic_virtual_server", cases::nic_virtual_server),
        with(
            "crd_files_are_valid_core_objects",
            cases::crd_files_are_valid_core_objects,
        ),
        with(
            "the_webhook_probe_passes_the_schema",
            cases::the_webhook_probe_passes_the_schema,
        ),
        without(
            "crd_places_refuse_a_wrong_cache",
            cases::crd_places_refuse_a_wrong_cache,
        ),
        without("core_deployment", cases::core_deployment),
        without("core_kinds_pass", cases::core_kinds_pass),
        without("core_secret_bad_base64", cases::core_secret_bad_base64),
        without("core_required_fields", cases::core_required_fields),
        without("core_missing_name", cases::core_missing_name),
    ]
}

mod cases {
    use super::{CrdPlaces, Crds, Path, Schemas, Value, Violation, validate_core};

    fn doc(yaml: &str) -> Value {
        let docs =
            mtls_e2e::yaml::parse_documents(yaml, Path::new("test.yaml")).expect("valid YAML");
        docs[0].to_json()
    }

    fn paths(violations: &[Violation]) -> Vec<&str> {
        violations.iter().map(|v| v.path.as_str()).collect()
    }

    fn assert_valid(schemas: &Schemas, yaml: &str) {
        let violations = schemas.validate(&doc(yaml)).expect("known kind");
        assert!(violations.is_empty(), "unexpected: {violations:?}");
    }

    fn assert_fails_at(schemas: &Schemas, yaml: &str, path: &str) {
        let violations = schemas.validate(&doc(yaml)).expect("known kind");
        assert!(
            paths(&violations).contains(&path),
            "expected {path}, got {violations:?}"
        );
    }

    const CERTIFICATE: &str = "
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: client
  namespace: default
spec:
  secretName: client-tls
  commonName: client
  isCA: true
  issuerRef:
    name: ca-issuer
    kind: Issuer
  privateKey:
    algorithm: RSA
    size: 2048
  usages: [\"client auth\"]
";

    pub(super) fn loads_all_served_versions(crds: &Crds) {
        let s = &crds.schemas;
        assert!(s.knows("cert-manager.io/v1", "Certificate"));
        assert!(s.knows("k8s.nginx.org/v1", "VirtualServerRoute"));
        assert!(s.knows("apps/v1", "Deployment"));
        assert!(!s.knows("example.com/v1", "Thing"));
        assert!(s.cel_rules_skipped() > 0);
        let err = s.validate(&doc("apiVersion: example.com/v1\nkind: Thing\n"));
        assert_eq!(err, Err("no schema for example.com/v1 Thing".to_string()));
    }

    pub(super) fn add_documents_counts_versions() {
        let crd = doc("
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: things.example.com}
spec:
  group: example.com
  names: {kind: Thing, plural: things}
  scope: Namespaced
  versions:
  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, properties: {spec: {type: object, properties: {count: {type: integer, minimum: 1}}}}}}}
  - {name: v2, served: true, storage: false, schema: {openAPIV3Schema: {type: object}}}
  - {name: v0, served: false, storage: false}
");
        let mut s = Schemas::new();
        assert_eq!(s.add_documents(&[crd, doc("kind: Other\n")]), Ok(2));
        assert!(!s.knows("example.com/v0", "Thing"));
        assert_valid(
            &s,
            "apiVersion: example.com/v1\nkind: Thing\nmetadata: {name: t}\nspec: {count: 2}\n",
        );
        assert_fails_at(
            &s,
            "apiVersion: example.com/v1\nkind: Thing\nmetadata: {name: t}\nspec: {count: 0}\n",
            ".spec.count",
        );
        assert_fails_at(
            &s,
            "apiVersion: example.com/v1\nkind: Thing\nmetadata: {labels: {}}\n",
            ".metadata.name",
        );
        assert_fails_at(
            &s,
            "apiVersion: example.com/v1\nkind: Thing\nmetadata: {name: t, labelz: {}}\n",
            ".metadata.labelz",
        );
        assert_fails_at(
            &s,
            "apiVersion: example.com/v1\nkind: Thing\nmetadata: {name: t}\nextra: 1\n",
            ".extra",
        );
    }

    pub(super) fn certificate(crds: &Crds) {
        let s = &crds.schemas;
        assert_valid(s, CERTIFICATE);
        let bad_usage = CERTIFICATE.replace("client auth", "client-auth");
        assert_fails_at(s, &bad_usage, ".spec.usages[0]");
        let unknown = CERTIFICATE.replace("secretName", "secretname");
        let violations = s.validate(&doc(&unknown)).expect("known kind");
        assert!(
            paths(&violations).contains(&".spec.secretname"),
            "{violations:?}"
        );
        // secretName is required too.
        assert!(
            paths(&violations).contains(&".spec.secretName"),
            "{violations:?}"
        );
    }

    const INGRESS_MTLS: &str = "
apiVersion: k8s.nginx.org/v1
kind: Policy
metadata: {name: ingress-mtls}
spec:
  ingressMTLS:
    clientCertSecret: ca-secret
    verifyClient: \"on\"
    verifyDepth: 1
";

    pub(super) fn nic_policy(crds: &Crds) {
        let s = &crds.schemas;
        assert_valid(s, INGRESS_MTLS);
        assert_valid(
            s,
            "
apiVersion: k8s.nginx.org/v1
kind: Policy
metadata: {name: egress-mtls}
spec:
  egressMTLS:
    tlsSecret: client-tls
    trustedCertSecret: ca-secret
    verifyServer: on
    serverName: true
    sslName: x
",
        );
        let string_depth = INGRESS_MTLS.replace("verifyDepth: 1", "verifyDepth: \"1\"");
        assert_fails_at(s, &string_depth, ".spec.ingressMTLS.verifyDepth");
    }

    const VIRTUAL_SERVER: &str = "
apiVersion: k8s.nginx.org/v1
kind: VirtualServer
metadata: {name: app}
spec:
  host: app.example.com
  tls:
    secret: app-tls
  policies:
  - name: ingress-mtls
  upstreams:
  - name: backend
    service: backend-svc
    port: 8080
    tls:
      enable: true
  routes:
  - path: /
    action:
      pass: backend
";

    pub(super) fn nic_virtual_server(crds: &Crds) {
        let s = &crds.schemas;
        assert_valid(s, VIRTUAL_SERVER);
        let string_port = VIRTUAL_SERVER.replace("port: 8080", "port: \"8080\"");
        assert_fails_at(s, &string_port, ".spec.upstreams[0].port");
    }

    pub(super) fn crd_files_are_valid_core_objects(crds: &Crds) {
        for (from, crd) in &crds.documents {
            let violations = crds.schemas.validate(crd).expect("CRD is a core kind");
            assert!(violations.is_empty(), "{from}: {violations:?}");
        }
    }

    /// The readiness probe must pass the CRD's schema, so that only
    /// cert-manager's webhook can refuse it (the refusal is the sign it serves).
    pub(super) fn the_webhook_probe_passes_the_schema(crds: &Crds) {
        let probe = mtls_e2e::substrate::cluster::install::webhook_probe();
        let violations = crds.schemas.validate(&probe).expect("a cert-manager kind");
        assert!(violations.is_empty(), "{probe}: {violations:?}");
    }

    /// Where the schemas are looked for: a cached file with another digest is
    /// refused, even with `../shared/crds` there (it is never passed over); an
    /// empty cache falls back to the shared folder; neither is `None`, and the
    /// message names the command that fills the cache.
    pub(super) fn crd_places_refuse_a_wrong_cache() {
        use mtls_e2e::substrate::cluster::install;
        let cache = tempfile::tempdir().expect("tempdir");
        let shared = tempfile::tempdir().expect("tempdir");
        let places = CrdPlaces {
            named: None,
            cache: cache.path().to_path_buf(),
            shared: shared.path().join("crds"),
        };
        assert!(matches!(places.find(install::DEFAULT_NIC), Ok(None)));
        assert!(
            places.absent().contains(super::DOWNLOAD),
            "{}",
            places.absent()
        );
        std::fs::create_dir(&places.shared).expect("mkdir");
        std::fs::write(
            places.shared.join("things.yaml"),
            "
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: things.example.com}
spec:
  group: example.com
  names: {kind: Thing, plural: things}
  scope: Namespaced
  versions:
  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}
",
        )
        .expect("write");
        let found = places
            .find(install::DEFAULT_NIC)
            .expect("the shared folder")
            .expect("found");
        assert!(found.schemas.knows("example.com/v1", "Thing"));
        let cert_manager = install::cert_manager();
        let cached = cert_manager.cached(&places.cache);
        std::fs::create_dir_all(cached.parent().expect("parent")).expect("mkdir");
        std::fs::write(&cached, "not cert-manager's manifest\n").expect("write");
        let refused = places.find(install::DEFAULT_NIC).err().expect("refused");
        assert!(
            refused.contains(cert_manager.sha256) && refused.contains("mtls-e2e download"),
            "{refused}"
        );
    }

    const DEPLOYMENT: &str = "
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
  creationTimestamp: null
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      volumes: []
      containers:
      - name: web
        image: nginx:1.27
        imagePullPolicy: IfNotPresent
        ports:
        - containerPort: 80
        resources:
          limits: {cpu: 0.5, memory: 128Mi}
";

    fn core(yaml: &str) -> Vec<Violation> {
        let v = doc(yaml);
        let api_version = v["apiVersion"].as_str().expect("apiVersion");
        let kind = v["kind"].as_str().expect("kind");
        validate_core(api_version, kind, &v).expect("core kind")
    }

    pub(super) fn core_deployment() {
        assert_eq!(core(DEPLOYMENT), vec![]);
        let typo = DEPLOYMENT.replace("imagePullPolicy", "imagePullPolicyy");
        assert_eq!(
            core(&typo),
            vec![Violation::new(
                ".spec.template.spec.containers[0].imagePullPolicyy",
                "unknown field \"imagePullPolicyy\""
            )]
        );
        let wrong_type = DEPLOYMENT.replace("replicas: 2", "replicas: two");
        assert_eq!(paths(&core(&wrong_type)), vec![".spec.replicas"]);
        assert!(validate_core("apps/v1", "Deplyment", &doc(DEPLOYMENT)).is_none());
    }

    pub(super) fn core_kinds_pass() {
        let manifests = [
            "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  selector: {app: web}\n  ports:\n  - {name: http, port: 80, targetPort: 8080}\n  - {name: https, port: 443, targetPort: https}\n",
            "apiVersion: v1\nkind: Secret\nmetadata: {name: tls}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: aGVsbG8=\n  tls.key: d29ybGQ=\n",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {key: value, enabled: \"true\"}\n",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n",
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: i\n  annotations: {cert-manager.io/cluster-issuer: ca}\nspec:\n  ingressClassName: nginx\n  tls:\n  - hosts: [a.example.com]\n    secretName: a-tls\n  rules:\n  - host: a.example.com\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend:\n          service: {name: web, port: {number: 80}}\n",
        ];
        for m in manifests {
            assert_eq!(core(m), vec![], "{m}");
        }
    }

    pub(super) fn core_secret_bad_base64() {
        let violations = core(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {tls.crt: not-base64!}\n",
        );
        assert_eq!(paths(&violations), vec![".data.tls.crt"]);
        assert!(
            violations[0].message.starts_with("invalid base64"),
            "{violations:?}"
        );
    }

    pub(super) fn core_required_fields() {
        let role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r}\nrules: [{apiGroups: [\"\"], verbs: null}]\n";
        assert_eq!(paths(&core(role)), vec![".rules[0].verbs"]);
        let no_name = DEPLOYMENT.replace("- name: web", "- env: []");
        assert_eq!(
            paths(&core(&no_name)),
            vec![".spec.template.spec.containers[0].name"]
        );
        let no_metadata = "apiVersion: v1\nkind: ConfigMap\ndata: {a: b}\n";
        assert_eq!(paths(&core(no_metadata)), vec![".metadata"]);
    }

    pub(super) fn core_missing_name() {
        let violations = core("apiVersion: v1\nkind: Namespace\nmetadata: {labels: {a: b}}\n");
        assert_eq!(paths(&violations), vec![".metadata.name"]);
    }
}
