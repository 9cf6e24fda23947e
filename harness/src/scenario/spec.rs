//! The scenario file (`scenario.yaml`) as written by users, and its validation
//! into the typed form the engine runs.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::manifest::{Kind, ObjectRef};

/// `scenario.yaml` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScenarioFile {
    /// Defaults to the folder name.
    pub name: Option<String>,
    /// What the scenario reproduces, for people: tutorial, rule, finding.
    pub reproduces: String,
    /// The tutorial file it follows (informational).
    pub tutorial: Option<String>,
    #[serde(default)]
    pub requires: Requires,
    /// Our mock components to deploy, from `manifests/components/`.
    #[serde(default)]
    pub components: Vec<ComponentRef>,
    /// Manifest files, relative to the scenario folder. Default: every `*.yaml`
    /// file beside `scenario.yaml`, in name order (as `kubectl apply -f DIR`).
    pub manifests: Option<Vec<String>>,
    /// Client identities the probes can present.
    #[serde(default)]
    pub identities: BTreeMap<String, IdentitySpec>,
    /// CA bundles the probes verify servers against.
    #[serde(default)]
    pub trust: BTreeMap<String, TrustSpec>,
    /// What the tutorial does by hand, in order, after the manifests are applied.
    #[serde(default)]
    pub steps: Vec<StepSpec>,
    pub checks: Vec<CheckSpec>,
    /// Controller states the scenario expects, `Kind ns/name: Valid|Warning|Invalid`.
    /// Every `VirtualServer` and Policy not listed is expected Valid; any other state
    /// stops the run with the controller's message.
    #[serde(default)]
    pub resource_states: BTreeMap<String, String>,
    /// Deliberate breakages that prove the checks can fail.
    #[serde(default)]
    pub mutations: Vec<MutationSpec>,
    /// Built-in mutations (`run --mutations`) the scenario does not run, each
    /// with the reason no check can notice it.
    #[serde(default)]
    pub skip_builtin_mutations: Vec<SkipSpec>,
}

/// An exception to the built-in mutations: `name` is a mutation's name
/// (`builtin/verify-client-off/ns/policy`) or a glob matching several.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipSpec {
    pub name: String,
    pub why: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requires {
    /// Lowest NGINX Ingress Controller version the scenario needs (e.g. "5.5").
    pub nic: Option<String>,
    /// The substrates the scenario can run on (`local`, `kind`, `existing`);
    /// empty: all. Elsewhere it is skipped, with the reason.
    #[serde(default)]
    pub substrate: Vec<String>,
}

/// `requires.nic` (`5.5`) as the semver requirement `>=5.5`.
pub(crate) fn nic_requirement(need: &str) -> Result<semver::VersionReq, semver::Error> {
    semver::VersionReq::parse(&format!(">={}", need.trim_start_matches('v')))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentRef {
    pub name: String,
    pub namespace: String,
    /// Environment for the component's container, added to the manifest's
    /// (e.g. `WEBUI_AUTH_TRUSTED_EMAIL_HEADER` for the Open `WebUI` stand-in).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// A client identity: exactly one of `secret`, `files`, `issue`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentitySpec {
    /// `ns/name` of a `kubernetes.io/tls` Secret (tls.crt + tls.key).
    pub secret: Option<String>,
    /// Files written by the scenario's steps.
    pub files: Option<CertFiles>,
    /// A certificate the harness issues for the probe.
    pub issue: Option<IssueSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertFiles {
    pub cert: String,
    pub key: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IssueSpec {
    pub common_name: String,
    #[serde(default)]
    pub organizations: Vec<String>,
    /// Who signs: `{secret: ns/name}` (a CA Secret with tls.key), `{files: ...}`,
    /// or `{newCa: "CN"}` for a CA nobody trusts.
    pub signed_by: SignerSpec,
    /// Valid in the past only (expired an hour ago).
    #[serde(default)]
    pub expired: bool,
    /// Valid only from tomorrow.
    #[serde(default)]
    pub not_yet_valid: bool,
    /// Insert an intermediate CA between the signer and the leaf; the identity
    /// presents leaf + intermediate.
    #[serde(default)]
    pub via_intermediate: bool,
    /// cert-manager-style usages; default `digital signature, key encipherment, client auth`.
    pub usages: Option<Vec<String>>,
    /// Serial number (decimal), for CRL scenarios.
    pub serial: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignerSpec {
    pub secret: Option<String>,
    pub files: Option<CertFiles>,
    pub new_ca: Option<String>,
}

/// A CA bundle: exactly one of `secret` (with `key`, default `ca.crt`) or `file`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustSpec {
    pub secret: Option<String>,
    pub key: Option<String>,
    pub file: Option<String>,
}

/// One manual step of the tutorial: exactly one field set.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepSpec {
    /// Arguments to the real `openssl`, run in the scenario's private work
    /// folder (`genrsa` keys come from the harness's key pool, same format).
    pub openssl: Option<String>,
    /// Write a file into the work folder (an openssl extension file).
    pub write_file: Option<WriteFile>,
    /// `kubectl create secret` from work-folder files.
    pub create_secret: Option<CreateSecret>,
    /// The tutorial's jq step: a new Secret made from keys of an existing one.
    pub copy_secret: Option<CopySecret>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteFile {
    pub path: String,
    pub content: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateSecret {
    /// `ns/name`.
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    /// Secret key → work-folder file.
    #[serde(default)]
    pub from_files: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopySecret {
    /// `ns/name` of the source Secret.
    pub from: String,
    /// `ns/name` of the new Secret.
    pub to: String,
    #[serde(rename = "type")]
    pub type_: String,
    /// New key → source key.
    pub data: BTreeMap<String, String>,
}

/// One check: a probe and what it must observe.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckSpec {
    pub name: String,
    /// Why the check exists (printed on failure).
    pub why: Option<String>,
    /// Checks whose requests are sent first, in order, on the same scenario (to
    /// prime state such as nginx's upstream TLS session cache); their outcomes
    /// are judged by their own checks, not here.
    #[serde(default)]
    pub after: Vec<String>,
    /// URL for a GET. Hosts under `.svc.cluster.local` go to that Service;
    /// any other host goes through the ingress controller, with SNI = Host.
    pub get: Option<String>,
    pub post: Option<String>,
    /// `host:port` for a real `openssl s_client`.
    pub openssl: Option<String>,
    /// SNI for `openssl` (default: the host).
    pub servername: Option<String>,
    /// What `openssl` sends once connected (default: `GET /` for the host).
    pub send: Option<String>,
    /// JSON body for `post`.
    pub json: Option<serde_json::Value>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub identity: Option<String>,
    /// The CA bundle the server's chain must verify against (a TLS check needs
    /// this or `insecure`).
    pub trust: Option<String>,
    /// Do not verify the server (as `curl -k`); the check says so explicitly.
    #[serde(default)]
    pub insecure: bool,
    pub expect: Expect,
}

/// What a check expects. Every field set must hold; a check must set at least one.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expect {
    pub status: Option<u16>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub body_contains: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub body_excludes: Vec<String>,
    /// JSON path (`choices[0].message.role`) → exact value.
    #[serde(default)]
    pub json: BTreeMap<String, serde_json::Value>,
    /// JSON path with `[]` (`data[].id`) → values that must all be present.
    #[serde(default)]
    pub json_includes: BTreeMap<String, Vec<serde_json::Value>>,
    /// Response header → substring of its value.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `TLSv1.2` or `TLSv1.3`.
    pub protocol: Option<String>,
    pub client_cert_requested: Option<bool>,
    /// The CA names of the `CertificateRequest`, in openssl's form (`CN = x`).
    pub acceptable_ca_names: Option<Vec<String>>,
    /// `OK`, or a substring of the verification error.
    pub verification: Option<String>,
    /// Subjects of the chain the server sent, leaf first.
    pub peer_chain: Option<Vec<String>>,
    /// Subjects of the verified chain (`openssl` only), leaf first.
    pub verified_chain: Option<Vec<String>>,
    /// The server refused the client at the TLS layer (an alert or a reset).
    pub rejected: Option<bool>,
    /// Substring of the TLS alert the server sent.
    pub alert: Option<String>,
}

impl Expect {
    pub(crate) fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.body_contains.is_empty()
            && self.body_excludes.is_empty()
            && self.json.is_empty()
            && self.json_includes.is_empty()
            && self.headers.is_empty()
            && self.protocol.is_none()
            && self.client_cert_requested.is_none()
            && self.acceptable_ca_names.is_none()
            && self.verification.is_none()
            && self.peer_chain.is_none()
            && self.verified_chain.is_none()
            && self.rejected.is_none()
            && self.alert.is_none()
    }

    /// Fields that only an HTTP response can satisfy.
    pub(crate) fn needs_http(&self) -> bool {
        self.status.is_some()
            || !self.body_contains.is_empty()
            || !self.body_excludes.is_empty()
            || !self.json.is_empty()
            || !self.json_includes.is_empty()
            || !self.headers.is_empty()
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MutationSpec {
    pub name: String,
    pub why: Option<String>,
    pub patch: PatchSpec,
    /// Checks that must fail once the patch is applied (a built-in mutation
    /// names none: any check turning red kills it).
    pub breaks: Vec<String>,
    /// Derived from the scenario's objects (`scenario::operators`), not written.
    #[serde(skip)]
    pub builtin: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchSpec {
    /// `Kind ns/name` (or `Kind name` for cluster-scoped kinds).
    pub object: String,
    /// RFC 7386 merge patch.
    pub merge: serde_json::Value,
}

/// Parse `Kind ns/name`.
pub(crate) fn parse_object_ref(text: &str) -> Result<ObjectRef, String> {
    let (kind, key) = text
        .split_once(' ')
        .ok_or_else(|| format!("`{text}` should read `Kind namespace/name`"))?;
    let kind = Kind::from_name(kind.trim()).ok_or_else(|| format!("unknown kind `{kind}`"))?;
    let key = key.trim();
    if kind.namespaced() {
        let (ns, name) = split_key(key)?;
        Ok(ObjectRef::new(kind, ns, name))
    } else {
        Ok(ObjectRef::new(kind, "", key))
    }
}

/// Split `ns/name`.
pub(crate) fn split_key(key: &str) -> Result<(&str, &str), String> {
    match key.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns, name))
        }
        _ => Err(format!("`{key}` should read `namespace/name`")),
    }
}
