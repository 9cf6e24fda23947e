//! A scenario: a folder of plain Kubernetes manifests plus `scenario.yaml`
//! (what it reproduces, the components, identities, manual steps and checks).

pub(crate) mod operators;
pub(crate) mod spec;
pub(crate) mod steps;

use crate::manifest::ServicePort;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::manifest::{self, ManifestError, Object, ObjectRef};
use crate::yaml::{self, Document, Origin};
pub use spec::MutationSpec;
pub(crate) use spec::{Expect, ScenarioFile};

/// Our mock components' manifests, kept once in `manifests/components/` and
/// built into the binary so a scenario folder anywhere can use them.
pub(crate) const COMPONENTS: &[(&str, &str)] = &[
    (
        "webui",
        include_str!("../../../manifests/components/webui.yaml"),
    ),
    (
        "aigw",
        include_str!("../../../manifests/components/aigw.yaml"),
    ),
    (
        "ollama",
        include_str!("../../../manifests/components/ollama.yaml"),
    ),
];

pub(crate) const SCENARIO_FILE: &str = "scenario.yaml";

/// Any problem with a scenario's files. Always located.
pub(crate) type ScenarioError = ManifestError;

/// A loaded, validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub dir: PathBuf,
    pub spec: ScenarioFile,
    pub doc: Document,
    /// Manifests then components, in apply order.
    pub objects: Vec<Object>,
    pub checks: Vec<Check>,
    /// The mutations the operators derive from the objects (`operators`).
    pub builtin: Vec<spec::MutationSpec>,
}

/// A validated check.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub why: Option<String>,
    /// Checks whose probes run first (see `CheckSpec::after`).
    pub after: Vec<String>,
    pub probe: Probe,
    pub identity: Option<String>,
    /// The server chain must verify against this bundle, unless `expect`
    /// says what verification shows or that the server refuses us.
    pub trust: Option<String>,
    /// The server is deliberately not verified (`insecure: true`).
    pub insecure: bool,
    pub expect: Expect,
    pub origin: Origin,
}

/// The substrates a scenario can name in `requires.substrate`.
pub(crate) const SUBSTRATES: [&str; 3] = ["local", "kind", "existing"];

impl Scenario {
    /// The check named `name`.
    pub(crate) fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// The scenario applies `id`: one of its objects, or a Secret one of its
    /// steps makes.
    pub(crate) fn declares(&self, id: &crate::manifest::ObjectRef) -> bool {
        let step_secret = |ns_name: &str| {
            id.kind == crate::manifest::Kind::Secret
                && ns_name.split_once('/')
                    == id.namespace.as_deref().map(|ns| (ns, id.name.as_str()))
        };
        self.objects.iter().any(|o| o.id == *id)
            || self.spec.steps.iter().any(|step| {
                step.create_secret
                    .as_ref()
                    .is_some_and(|c| step_secret(&c.name))
                    || step
                        .copy_secret
                        .as_ref()
                        .is_some_and(|c| step_secret(&c.to))
            })
    }

    /// Why the scenario does not run on `substrate`, if it declares that it
    /// needs another (`requires.substrate`).
    #[must_use]
    pub fn substrate_skip(&self, substrate: &str) -> Option<String> {
        let wanted = &self.spec.requires.substrate;
        (!wanted.is_empty() && !wanted.iter().any(|w| w == substrate)).then(|| {
            format!(
                "runs on the {} substrate only (requires.substrate), not on {substrate}",
                wanted.join(" or ")
            )
        })
    }
}

impl Check {
    /// What an `openssl` check sends once connected: its `send`, or a GET of `/`.
    pub(crate) fn openssl_send(&self) -> Option<String> {
        match &self.probe {
            Probe::OpenSsl {
                servername, send, ..
            } => Some(
                send.clone()
                    .unwrap_or_else(|| crate::probe::openssl::default_send(servername)),
            ),
            Probe::Http { .. } => None,
        }
    }

    /// The probe talks TLS to the server (https, or openssl `s_client`).
    pub(crate) fn uses_tls(&self) -> bool {
        match &self.probe {
            Probe::Http { url, .. } => url.https,
            Probe::OpenSsl { .. } => true,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Probe {
    Http {
        method: Method,
        url: Url,
        json: Option<serde_json::Value>,
        headers: BTreeMap<String, String>,
    },
    OpenSsl {
        target: Target,
        servername: String,
        send: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// Where a probe connects: the ingress controller (by host) or a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Through the ingress controller's port 80 or 443, with SNI and Host = `host`.
    Ingress { host: String, port: u16 },
    /// Straight to a Service port, as a pod in the cluster would.
    Service { service: ServicePort, host: String },
}

impl Target {
    /// `<svc>.<ns>.svc.cluster.local` (or `.svc`) is a Service; anything else
    /// is a host served by the ingress controller.
    pub(crate) fn parse(host: &str, port: u16) -> Target {
        let trimmed = host
            .strip_suffix(".svc.cluster.local")
            .or_else(|| host.strip_suffix(".svc"));
        if let Some((name, namespace)) = trimmed.and_then(|t| t.split_once('.'))
            && !namespace.contains('.')
        {
            return Target::Service {
                service: ServicePort::new(namespace, name, port),
                host: host.into(),
            };
        }
        Target::Ingress {
            host: host.into(),
            port,
        }
    }

    pub(crate) fn host(&self) -> &str {
        match self {
            Target::Ingress { host, .. } | Target::Service { host, .. } => host,
        }
    }

    pub(crate) fn port(&self) -> u16 {
        match self {
            Target::Ingress { port, .. } => *port,
            Target::Service { service, .. } => service.port,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    pub target: Target,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    pub(crate) fn parse(text: &str) -> Result<Url, String> {
        let u = crate::net::HttpUrl::parse(text)?;
        Ok(Url {
            https: u.https,
            target: Target::parse(&u.host, u.port),
            path: u.path,
        })
    }

    pub(crate) fn display(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let default = if self.https { 443 } else { 80 };
        let port = self.target.port();
        if port == default {
            format!("{scheme}://{}{}", self.target.host(), self.path)
        } else {
            format!("{scheme}://{}:{port}{}", self.target.host(), self.path)
        }
    }
}

/// `host:port` (or `host`, for `default_port`).
pub(crate) fn split_host_port(text: &str, default_port: u16) -> Result<(String, u16), String> {
    let authority: http::uri::Authority = text
        .parse()
        .map_err(|e| format!("`{text}` is not host:port: {e}"))?;
    let (host, port) = crate::net::host_port(&authority, default_port)?;
    Ok((host.to_string(), port))
}

impl Scenario {
    /// The state the scenario expects for a resource (`Kind ns/name`).
    /// (`resourceStates` values are checked when the scenario loads.)
    pub(crate) fn expected_state(&self, id: &str) -> crate::manifest::ControllerState {
        self.spec
            .resource_states
            .get(id)
            .and_then(|s| crate::manifest::ControllerState::parse(s))
            .unwrap_or(crate::manifest::ControllerState::Valid)
    }

    pub(crate) fn origin_of(&self, path: &str) -> Origin {
        self.doc.origin_of(path)
    }

    pub(crate) fn error(&self, path: &str, message: impl Into<String>) -> ScenarioError {
        ManifestError {
            origin: self.origin_of(path),
            message: message.into(),
        }
    }

    pub(crate) fn object(&self, id: &ObjectRef) -> Option<&Object> {
        self.objects.iter().find(|o| &o.id == id)
    }

    /// Load a scenario folder.
    ///
    /// # Errors
    /// The first problem found, with its file and line.
    pub fn load(dir: &Path) -> Result<Scenario, ScenarioError> {
        let file = dir.join(SCENARIO_FILE);
        if !file.is_file() {
            return Err(ManifestError {
                origin: Origin::file(dir),
                message: format!("not a scenario folder: {SCENARIO_FILE} is missing"),
            });
        }
        let mut docs = yaml::load_file(&file)?;
        if docs.len() != 1 {
            // Point at the second document (or the file, when there is none).
            let origin = match docs.get(1) {
                Some(second) => Origin::at(&file, second.root.line),
                None => Origin::file(&file),
            };
            return Err(ManifestError {
                origin,
                message: format!(
                    "scenario.yaml must hold exactly one YAML document, found {}; put manifests in their own files beside it",
                    docs.len()
                ),
            });
        }
        let doc = docs.remove(0);
        let spec: ScenarioFile = doc.parse()?;
        let folder_name = dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
            .unwrap_or_else(|| "scenario".into());
        let name = spec.name.clone().unwrap_or(folder_name);
        let err = |path: &str, message: String| ManifestError {
            origin: doc.origin_of(path),
            message,
        };
        if !valid_slug(&name) {
            return Err(err(
                "name",
                format!("scenario name `{name}` must use a-z, 0-9 and '-'"),
            ));
        }

        let objects = load_objects(dir, &doc, &spec)?;
        let mut scenario = Scenario {
            name,
            dir: dir.to_path_buf(),
            spec,
            doc,
            objects,
            checks: Vec::new(),
            builtin: Vec::new(),
        };
        scenario.checks = validate(&scenario)?;
        scenario.builtin = builtin_mutations(&scenario.objects, &scenario.spec.steps);
        validate_skips(&scenario)?;
        Ok(scenario)
    }

    /// Why the scenario does not run the built-in mutation `name`, if it
    /// declares so (`skipBuiltinMutations`).
    #[must_use]
    pub fn builtin_exception(&self, name: &str) -> Option<&spec::SkipSpec> {
        self.spec
            .skip_builtin_mutations
            .iter()
            .find(|skip| skip_matcher(&skip.name).is_ok_and(|m| m.is_match(name)))
    }

    /// Apply a mutation's patch, giving a scenario whose `breaks` checks must fail.
    pub(crate) fn mutated(&self, mutation: &spec::MutationSpec) -> Result<Scenario, ScenarioError> {
        let id = spec::parse_object_ref(&mutation.patch.object)
            .map_err(|m| self.error("mutations", m))?;
        let mut copy = self.clone();
        let Some(slot) = copy.objects.iter_mut().find(|o| o.id == id) else {
            return Err(self.error(
                "mutations",
                format!("mutation `{}`: no {id} in the scenario", mutation.name),
            ));
        };
        let mut json = slot.to_json();
        manifest::merge_patch(&mut json, &mutation.patch.merge);
        *slot = slot.with_json(&json)?;
        copy.name = format!("{}~{}", self.name, mutation.name);
        Ok(copy)
    }
}

/// The built-in mutations of a scenario's objects (its manifests and
/// components) and steps: what `run --mutations` applies, `list` and `plan`
/// show, and `init` tries on its own model of the world.
pub(crate) fn builtin_mutations(
    objects: &[Object],
    steps: &[spec::StepSpec],
) -> Vec<spec::MutationSpec> {
    operators::derive(objects, &ca_secrets(objects, steps))
}

/// The `nginx.org/ca` Secrets a scenario makes, from its manifests and its
/// steps, each with where its CA comes from.
fn ca_secrets(objects: &[Object], steps: &[spec::StepSpec]) -> Vec<operators::CaSecret> {
    let mut found = operators::ca_secrets_of(objects);
    for step in steps {
        let made = match (&step.copy_secret, &step.create_secret) {
            (Some(copy), _) if copy.type_ == operators::CA_SECRET_TYPE => {
                let source = spec::split_key(&copy.from).map_or_else(
                    |_| copy.from.clone(),
                    |(ns, name)| operators::copied_from(ns, name),
                );
                Some((copy.to.as_str(), source))
            }
            (_, Some(create)) if create.type_ == operators::CA_SECRET_TYPE => Some((
                create.name.as_str(),
                format!(
                    "file {}",
                    create.from_files.get("ca.crt").map_or("", String::as_str)
                ),
            )),
            _ => None,
        };
        if let Some((key, source)) = made
            && let Ok((namespace, name)) = spec::split_key(key)
        {
            found.push(operators::CaSecret {
                namespace: namespace.into(),
                name: name.into(),
                source,
            });
        }
    }
    found
}

/// A `skipBuiltinMutations` name: the mutation's name, or a glob (`*`, `?`, `[]`).
fn skip_matcher(name: &str) -> Result<globset::GlobMatcher, globset::Error> {
    globset::Glob::new(name).map(|g| g.compile_matcher())
}

/// Every exception names built-in mutations the scenario has, and says why;
/// hand-written mutations leave the `builtin/` names to the operators.
fn validate_skips(s: &Scenario) -> Result<(), ScenarioError> {
    for (i, m) in s.spec.mutations.iter().enumerate() {
        if m.name.starts_with(operators::PREFIX) {
            return Err(s.error(
                &format!("mutations[{i}].name"),
                format!(
                    "`{}`: names starting with `{}` belong to the built-in mutations; choose another",
                    m.name,
                    operators::PREFIX
                ),
            ));
        }
    }
    for (i, skip) in s.spec.skip_builtin_mutations.iter().enumerate() {
        let path = format!("skipBuiltinMutations[{i}]");
        let matcher = skip_matcher(&skip.name).map_err(|e| {
            s.error(
                &format!("{path}.name"),
                format!("`{}` is not a mutation name or glob: {e}", skip.name),
            )
        })?;
        if !s.builtin.iter().any(|m| matcher.is_match(&m.name)) {
            return Err(s.error(
                &format!("{path}.name"),
                format!(
                    "no built-in mutation of this scenario is named `{}`; `mtls-e2e list` shows them",
                    skip.name
                ),
            ));
        }
        if skip.why.trim().is_empty() {
            return Err(s.error(
                &format!("{path}.why"),
                "say why no check can notice this mutation",
            ));
        }
    }
    Ok(())
}

pub(crate) fn valid_slug(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn load_objects(
    dir: &Path,
    doc: &Document,
    spec: &ScenarioFile,
) -> Result<Vec<Object>, ScenarioError> {
    let files: Vec<PathBuf> = if let Some(list) = &spec.manifests {
        list.iter().map(|f| dir.join(f)).collect()
    } else {
        manifest_files(dir)?
    };
    let mut objects = Vec::new();
    for file in &files {
        if !file.is_file() {
            return Err(ManifestError {
                origin: doc.origin_of("manifests"),
                message: format!("manifest file {} does not exist", file.display()),
            });
        }
        objects.extend(manifest::load_file(file, "default")?);
    }
    for (i, component) in spec.components.iter().enumerate() {
        let path = format!("components[{i}]");
        let Some((_, text)) = COMPONENTS.iter().find(|(n, _)| *n == component.name) else {
            let known: Vec<_> = COMPONENTS.iter().map(|(n, _)| *n).collect();
            return Err(ManifestError {
                origin: doc.origin_of(&path),
                message: format!(
                    "unknown component `{}` (known: {})",
                    component.name,
                    known.join(", ")
                ),
            });
        };
        let virtual_path = PathBuf::from(format!("manifests/components/{}.yaml", component.name));
        for object in manifest::load_text(text, &virtual_path, &component.namespace)? {
            objects.push(with_env(object, &component.env)?);
        }
    }
    let mut seen: BTreeMap<ObjectRef, Origin> = BTreeMap::new();
    for object in &objects {
        if let Some(first) = seen.get(&object.id) {
            return Err(ManifestError {
                origin: object.origin(),
                message: format!("{} is declared twice (first at {first})", object.id),
            });
        }
        seen.insert(object.id.clone(), object.origin());
    }
    Ok(objects)
}

/// The manifests of a folder as `kubectl apply -f DIR` takes them: every
/// `*.yaml`/`*.yml` file but `scenario.yaml`, in name order.
pub(crate) fn manifest_files(dir: &Path) -> Result<Vec<PathBuf>, ScenarioError> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| ManifestError {
            origin: Origin::file(dir),
            message: format!("cannot list: {e}"),
        })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            let is_yaml = matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
            is_yaml && p.file_name().is_some_and(|n| n != SCENARIO_FILE)
        })
        .collect();
    found.sort();
    Ok(found)
}

/// A component's Deployment with extra container environment.
fn with_env(object: Object, env: &BTreeMap<String, String>) -> Result<Object, ScenarioError> {
    if env.is_empty() || object.id.kind != crate::manifest::Kind::Deployment {
        return Ok(object);
    }
    let mut json = object.to_json();
    let Some(container) = json.pointer_mut("/spec/template/spec/containers/0") else {
        return Err(object.error(
            "spec.template.spec.containers",
            "a component Deployment needs a container",
        ));
    };
    let vars = container
        .as_object_mut()
        .map(|c| c.entry("env").or_insert_with(|| serde_json::json!([])));
    if let Some(serde_json::Value::Array(list)) = vars {
        for (name, value) in env {
            list.retain(|v| v.get("name").and_then(|n| n.as_str()) != Some(name.as_str()));
            list.push(serde_json::json!({"name": name, "value": value}));
        }
    }
    object.with_json(&json)
}

fn validate(s: &Scenario) -> Result<Vec<Check>, ScenarioError> {
    let spec = &s.spec;
    for (name, identity) in &spec.identities {
        let path = format!("identities.{name}");
        let sources = [
            identity.secret.is_some(),
            identity.files.is_some(),
            identity.issue.is_some(),
        ];
        if sources.iter().filter(|x| **x).count() != 1 {
            return Err(s.error(
                &path,
                format!("identity `{name}` needs exactly one of secret, files, issue"),
            ));
        }
        if let Some(secret) = &identity.secret {
            spec::split_key(secret).map_err(|m| s.error(&format!("{path}.secret"), m))?;
        }
        if let Some(issue) = &identity.issue {
            let signer = &issue.signed_by;
            let n = [
                signer.secret.is_some(),
                signer.files.is_some(),
                signer.new_ca.is_some(),
            ];
            if n.iter().filter(|x| **x).count() != 1 {
                return Err(s.error(
                    &format!("{path}.issue.signedBy"),
                    "signedBy needs exactly one of secret, files, newCa",
                ));
            }
            if issue.expired && issue.not_yet_valid {
                return Err(s.error(
                    &format!("{path}.issue"),
                    "an identity cannot be both expired and not yet valid",
                ));
            }
        }
    }
    if let Some(nic) = &spec.requires.nic
        && let Err(e) = spec::nic_requirement(nic)
    {
        return Err(s.error(
            "requires.nic",
            format!("`{nic}` is not a version like 5.5 ({e})"),
        ));
    }
    for (i, name) in spec.requires.substrate.iter().enumerate() {
        if !SUBSTRATES.contains(&name.as_str()) {
            return Err(s.error(
                &format!("requires.substrate[{i}]"),
                format!("`{name}` is not a substrate; use {}", SUBSTRATES.join(", ")),
            ));
        }
    }
    for (name, trust) in &spec.trust {
        if trust.secret.is_some() == trust.file.is_some() {
            return Err(s.error(
                &format!("trust.{name}"),
                format!("trust `{name}` needs exactly one of secret, file"),
            ));
        }
    }
    for (i, step) in spec.steps.iter().enumerate() {
        let n = [
            step.openssl.is_some(),
            step.write_file.is_some(),
            step.create_secret.is_some(),
            step.copy_secret.is_some(),
        ];
        if n.iter().filter(|x| **x).count() != 1 {
            return Err(s.error(
                &format!("steps[{i}]"),
                "a step needs exactly one of openssl, writeFile, createSecret, copySecret",
            ));
        }
    }

    let mut checks = Vec::new();
    let mut names = BTreeSet::new();
    for (i, c) in spec.checks.iter().enumerate() {
        let path = format!("checks[{i}]");
        let err = |field: &str, m: String| s.error(&format!("{path}{field}"), m);
        if !valid_check_name(&c.name) {
            return Err(err(
                ".name",
                format!("check name `{}` must use a-z, 0-9, '-' and '_'", c.name),
            ));
        }
        if !names.insert(c.name.clone()) {
            return Err(err(".name", format!("two checks are named `{}`", c.name)));
        }
        let verbs = [c.get.is_some(), c.post.is_some(), c.openssl.is_some()];
        if verbs.iter().filter(|x| **x).count() != 1 {
            return Err(err(
                "",
                format!("check `{}` needs exactly one of get, post, openssl", c.name),
            ));
        }
        for (what, reference, known) in [
            (
                "identity",
                &c.identity,
                spec.identities
                    .contains_key(c.identity.as_deref().unwrap_or("")),
            ),
            (
                "trust",
                &c.trust,
                spec.trust.contains_key(c.trust.as_deref().unwrap_or("")),
            ),
        ] {
            if let Some(r) = reference
                && !known
            {
                return Err(err(
                    &format!(".{what}"),
                    format!("no {what} named `{r}` in this scenario"),
                ));
            }
        }
        if c.expect.is_empty() {
            return Err(err(
                ".expect",
                format!("check `{}` expects nothing, so it could never fail", c.name),
            ));
        }
        let probe = if let Some(target) = &c.openssl {
            let (host, port) = split_host_port(target, 443).map_err(|m| err(".openssl", m))?;
            if c.json.is_some() || !c.headers.is_empty() {
                return Err(err(
                    "",
                    "json and headers go with get/post; openssl sends `send`".into(),
                ));
            }
            Probe::OpenSsl {
                target: Target::parse(&host, port),
                servername: c.servername.clone().unwrap_or(host),
                send: c.send.clone(),
            }
        } else {
            let (method, text, field) = match (&c.get, &c.post) {
                (Some(u), _) => (Method::Get, u, ".get"),
                (_, Some(u)) => (Method::Post, u, ".post"),
                _ => unreachable!("exactly one verb was checked above"),
            };
            let url = Url::parse(text).map_err(|m| err(field, m))?;
            if c.servername.is_some() || c.send.is_some() {
                return Err(err("", "servername and send go with openssl".into()));
            }
            if method == Method::Get && c.json.is_some() {
                return Err(err(".json", "a GET carries no body".into()));
            }
            Probe::Http {
                method,
                url,
                json: c.json.clone(),
                headers: c.headers.clone(),
            }
        };
        let check = Check {
            name: c.name.clone(),
            why: c.why.clone(),
            after: c.after.clone(),
            probe,
            identity: c.identity.clone(),
            trust: c.trust.clone(),
            insecure: c.insecure,
            expect: c.expect.clone(),
            origin: s.origin_of(&path),
        };
        check_trust(&check).map_err(|(field, m)| err(field, m))?;
        checks.push(check);
    }

    for (i, c) in spec.checks.iter().enumerate() {
        for a in &c.after {
            let earlier = spec.checks[..i].iter().any(|e| &e.name == a);
            if !earlier {
                return Err(s.error(
                    &format!("checks[{i}].after"),
                    format!("`{a}` must name a check listed before `{}`", c.name),
                ));
            }
        }
    }
    for (key, state) in &spec.resource_states {
        let path = format!("resourceStates.{key}");
        let id = spec::parse_object_ref(key).map_err(|e| s.error(&path, e))?;
        if s.object(&id).is_none() {
            return Err(s.error(&path, format!("no {id} in this scenario")));
        }
        if crate::manifest::ControllerState::parse(state).is_none() {
            return Err(s.error(
                &path,
                format!("state `{state}` is not Valid, Warning or Invalid"),
            ));
        }
    }
    for (i, m) in spec.mutations.iter().enumerate() {
        let path = format!("mutations[{i}]");
        let id = spec::parse_object_ref(&m.patch.object)
            .map_err(|e| s.error(&format!("{path}.patch.object"), e))?;
        if s.object(&id).is_none() {
            return Err(s.error(
                &format!("{path}.patch.object"),
                format!("no {id} in this scenario"),
            ));
        }
        if m.breaks.is_empty() {
            return Err(s.error(
                &format!("{path}.breaks"),
                "a mutation must name the checks it breaks",
            ));
        }
        for b in &m.breaks {
            if !names.contains(b) {
                return Err(s.error(&format!("{path}.breaks"), format!("no check named `{b}`")));
            }
        }
    }
    Ok(checks)
}

/// A TLS check says how the server is verified: `trust` (the chain must
/// verify) or `insecure: true` (it is not, as `curl -k`); never neither, never
/// both. A plain-HTTP check has no server certificate to verify.
fn check_trust(c: &Check) -> Result<(), (&'static str, String)> {
    let name = &c.name;
    match (c.uses_tls(), c.trust.is_some(), c.insecure) {
        (true, false, false) => Err((
            "",
            format!(
                "check `{name}` talks TLS but names no `trust`: name the CA bundle the server must verify against, \
                 or write `insecure: true` to probe without verifying the server (as `curl -k`)"
            ),
        )),
        (_, true, true) => Err((
            ".insecure",
            format!("check `{name}` names a `trust` and `insecure: true`; keep one"),
        )),
        (false, true, _) | (false, _, true) => Err((
            "",
            format!(
                "check `{name}` is plain HTTP, so there is no server certificate: remove `trust` and `insecure`"
            ),
        )),
        _ => Ok(()),
    }
}

fn valid_check_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Every scenario folder under `root` (folders holding a scenario.yaml), by name.
pub(crate) fn discover(root: &Path) -> Result<Vec<PathBuf>, ScenarioError> {
    let entries = std::fs::read_dir(root).map_err(|e| ManifestError {
        origin: Origin::file(root),
        message: format!("cannot list scenarios: {e}"),
    })?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(SCENARIO_FILE).is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_dns_names_are_services() {
        assert_eq!(
            Target::parse("aigw.ai-gateway.svc.cluster.local", 80),
            Target::Service {
                service: ServicePort::new("ai-gateway", "aigw", 80),
                host: "aigw.ai-gateway.svc.cluster.local".into()
            }
        );
        assert!(matches!(
            Target::parse("open-webui.example.com", 443),
            Target::Ingress { .. }
        ));
    }

    #[test]
    fn the_repository_scenarios_load() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let dirs = discover(&root).expect("scenarios");
        assert!(dirs.len() >= 2);
        for dir in dirs {
            let s = Scenario::load(&dir).unwrap_or_else(|e| panic!("{e}"));
            assert!(!s.checks.is_empty(), "{}", s.name);
        }
    }

    #[test]
    fn urls() {
        let u = Url::parse("https://open-webui.example.com/api/config").expect("url");
        assert!(u.https);
        assert_eq!(u.target.port(), 443);
        assert_eq!(u.path, "/api/config");
        let u = Url::parse("https://aigw.ai-gateway.svc.cluster.local:80").expect("url");
        assert_eq!(u.path, "/");
        assert!(matches!(
            u.target,
            Target::Service {
                service: ServicePort { port: 80, .. },
                ..
            }
        ));
        assert!(Url::parse("ftp://x").is_err());
    }
}
