//! Typed views of the kinds the harness interprets.
//!
//! Fields of custom resources that the local substrate interprets are listed
//! exhaustively (`deny_unknown_fields`): a field it does not model must stop the
//! run rather than be silently ignored. Core kinds keep only what is used.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;

/// A YAML value that is an integer or a string (`targetPort`, `port`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub(crate) enum IntOrString {
    Int(i64),
    Str(String),
}

impl std::fmt::Display for IntOrString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntOrString::Int(i) => write!(f, "{i}"),
            IntOrString::Str(s) => f.write_str(s),
        }
    }
}

// ---------------------------------------------------------------- core/v1

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Secret {
    #[serde(rename = "type", default = "opaque")]
    pub type_: String,
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    #[serde(default)]
    pub string_data: BTreeMap<String, String>,
}

fn opaque() -> String {
    "Opaque".into()
}

impl Secret {
    /// Decoded data, with `stringData` merged over `data` as the API server does.
    pub(crate) fn decoded(&self) -> Result<BTreeMap<String, Vec<u8>>, String> {
        let mut out = BTreeMap::new();
        for (key, value) in &self.data {
            let clean: String = value.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(clean)
                .map_err(|e| format!("data.{key} is not valid base64: {e}"))?;
            out.insert(key.clone(), bytes);
        }
        for (key, value) in &self.string_data {
            out.insert(key.clone(), value.clone().into_bytes());
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConfigMap {
    #[serde(default)]
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Service {
    pub spec: ServiceSpec,
}

#[allow(
    dead_code,
    reason = "read so that a manifest using it parses as the API server reads it; the local render does not need it"
)]
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServiceSpec {
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
    #[serde(default)]
    pub ports: Vec<ServicePort>,
    #[serde(rename = "type")]
    pub type_: Option<String>,
}

#[allow(
    dead_code,
    reason = "read so that a manifest using it parses as the API server reads it; the local render does not need it"
)]
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServicePort {
    pub name: Option<String>,
    pub port: u16,
    pub target_port: Option<IntOrString>,
    pub protocol: Option<String>,
}

// ------------------------------------------------------------- apps/v1

#[derive(Debug, Clone, Deserialize)]
pub struct Deployment {
    pub spec: DeploymentSpec,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct DeploymentSpec {
    pub replicas: Option<u32>,
    pub template: PodTemplate,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PodTemplate {
    #[serde(default)]
    pub metadata: PodMetadata,
    pub spec: PodSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct PodMetadata {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PodSpec {
    pub containers: Vec<Container>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
}

#[allow(
    dead_code,
    reason = "read so that a manifest using it parses as the API server reads it; the local render does not need it"
)]
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Container {
    pub name: String,
    pub image: String,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<EnvVar>,
    #[serde(default)]
    pub ports: Vec<ContainerPort>,
    #[serde(default)]
    pub volume_mounts: Vec<VolumeMount>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct EnvVar {
    pub name: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ContainerPort {
    pub name: Option<String>,
    pub container_port: u16,
}

#[allow(
    dead_code,
    reason = "read so that a manifest using it parses as the API server reads it; the local render does not need it"
)]
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VolumeMount {
    pub name: String,
    pub mount_path: String,
    #[serde(default)]
    pub read_only: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Volume {
    pub name: String,
    pub secret: Option<SecretVolume>,
    pub config_map: Option<ConfigMapVolume>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SecretVolume {
    pub secret_name: String,
    #[serde(default)]
    pub items: Vec<KeyToPath>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ConfigMapVolume {
    pub name: String,
    #[serde(default)]
    pub items: Vec<KeyToPath>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct KeyToPath {
    pub key: String,
    pub path: String,
}

// ------------------------------------------------- networking.k8s.io/v1

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Ingress {
    pub spec: IngressSpec,
}

/// An empty list as the API server stores it: absent.
fn empty_list_as_none<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.filter(|list| !list.is_empty()))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct IngressSpec {
    pub ingress_class_name: Option<String>,
    pub default_backend: Option<IngressBackend>,
    /// `tls: []` reads back from the API server as no `tls` at all (an empty
    /// list is not stored), which is what NIC then sees: "TLS must be enabled".
    #[serde(default, deserialize_with = "empty_list_as_none")]
    pub tls: Option<Vec<IngressTls>>,
    #[serde(default)]
    pub rules: Vec<IngressRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct IngressTls {
    #[serde(default)]
    pub hosts: Vec<String>,
    pub secret_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IngressRule {
    #[serde(default)]
    pub host: String,
    pub http: Option<IngressRuleHttp>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IngressRuleHttp {
    pub paths: Vec<IngressPath>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct IngressPath {
    #[serde(default)]
    pub path: String,
    pub path_type: String,
    pub backend: IngressBackend,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IngressBackend {
    pub service: IngressServiceBackend,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IngressServiceBackend {
    pub name: String,
    pub port: IngressServicePort,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IngressServicePort {
    pub number: Option<u16>,
    pub name: Option<String>,
}

// -------------------------------------------------- cert-manager.io/v1

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Issuer {
    pub spec: IssuerSpec,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct IssuerSpec {
    pub self_signed: Option<SelfSignedIssuer>,
    pub ca: Option<CaIssuer>,
    pub acme: Option<serde_json::Value>,
    pub vault: Option<serde_json::Value>,
    pub venafi: Option<serde_json::Value>,
}

#[allow(
    dead_code,
    reason = "read so that a manifest using it parses as the API server reads it; the local render does not need it"
)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SelfSignedIssuer {
    #[serde(default)]
    pub crl_distribution_points: Vec<String>,
}

#[allow(
    dead_code,
    reason = "read so that a manifest using it parses as the API server reads it; the local render does not need it"
)]
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CaIssuer {
    pub secret_name: String,
    #[serde(default)]
    pub crl_distribution_points: Vec<String>,
    #[serde(default)]
    pub ocsp_servers: Vec<String>,
    #[serde(default, rename = "issuingCertificateURLs")]
    pub issuing_certificate_urls: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Certificate {
    pub spec: CertificateSpec,
}

#[allow(
    dead_code,
    reason = "read so that a manifest using it parses as the API server reads it; the local render does not need it"
)]
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CertificateSpec {
    pub secret_name: String,
    pub issuer_ref: IssuerRef,
    pub common_name: Option<String>,
    #[serde(default)]
    pub dns_names: Vec<String>,
    #[serde(default)]
    pub ip_addresses: Vec<String>,
    #[serde(default)]
    pub email_addresses: Vec<String>,
    #[serde(default)]
    pub uris: Vec<String>,
    pub duration: Option<String>,
    pub renew_before: Option<String>,
    pub renew_before_percentage: Option<u32>,
    #[serde(default, rename = "isCA")]
    pub is_ca: bool,
    pub usages: Option<Vec<String>>,
    pub private_key: Option<PrivateKeySpec>,
    pub subject: Option<X509Subject>,
    pub secret_template: Option<SecretTemplate>,
    pub revision_history_limit: Option<u32>,
    pub encode_usages_in_request: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IssuerRef {
    pub name: String,
    pub kind: Option<String>,
    pub group: Option<String>,
}

#[allow(
    dead_code,
    reason = "read so that a manifest using it parses as the API server reads it; the local render does not need it"
)]
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PrivateKeySpec {
    pub algorithm: Option<String>,
    pub size: Option<u32>,
    pub encoding: Option<String>,
    pub rotation_policy: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct X509Subject {
    #[serde(default)]
    pub organizations: Vec<String>,
    #[serde(default)]
    pub countries: Vec<String>,
    #[serde(default)]
    pub organizational_units: Vec<String>,
    #[serde(default)]
    pub localities: Vec<String>,
    #[serde(default)]
    pub provinces: Vec<String>,
    #[serde(default)]
    pub street_addresses: Vec<String>,
    #[serde(default)]
    pub postal_codes: Vec<String>,
    pub serial_number: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecretTemplate {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

// ---------------------------------------------------- k8s.nginx.org/v1

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Policy {
    #[serde(default)]
    pub spec: PolicySpec,
}

/// A Policy spec. NIC requires exactly one policy type; the types the local
/// substrate does not render are kept opaque (a scenario using one is refused).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PolicySpec {
    pub ingress_class_name: Option<String>,
    #[serde(rename = "ingressMTLS")]
    pub ingress_mtls: Option<IngressMtls>,
    #[serde(rename = "egressMTLS")]
    pub egress_mtls: Option<EgressMtls>,
    pub access_control: Option<AccessControl>,
    pub rate_limit: Option<serde_json::Value>,
    pub basic_auth: Option<serde_json::Value>,
    pub api_key: Option<serde_json::Value>,
    pub cache: Option<serde_json::Value>,
    pub cors: Option<serde_json::Value>,
    pub external_auth: Option<serde_json::Value>,
    pub jwt: Option<serde_json::Value>,
    pub oidc: Option<serde_json::Value>,
    pub waf: Option<serde_json::Value>,
}

impl PolicySpec {
    /// Policy types the local substrate renders as NIC does.
    pub(crate) const RENDERED: [&'static str; 3] = ["accessControl", "ingressMTLS", "egressMTLS"];

    /// The policy types present, named as in the CRD.
    pub(crate) fn types(&self) -> Vec<&'static str> {
        let present = [
            (self.access_control.is_some(), "accessControl"),
            (self.rate_limit.is_some(), "rateLimit"),
            (self.ingress_mtls.is_some(), "ingressMTLS"),
            (self.egress_mtls.is_some(), "egressMTLS"),
            (self.basic_auth.is_some(), "basicAuth"),
            (self.api_key.is_some(), "apiKey"),
            (self.cache.is_some(), "cache"),
            (self.cors.is_some(), "cors"),
            (self.external_auth.is_some(), "externalAuth"),
            (self.jwt.is_some(), "jwt"),
            (self.oidc.is_some(), "oidc"),
            (self.waf.is_some(), "waf"),
        ];
        present
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| n)
            .collect()
    }
}

/// `spec.accessControl`: IPs or CIDRs allowed, or denied.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessControl {
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct IngressMtls {
    pub client_cert_secret: Option<String>,
    pub crl_file_name: Option<String>,
    pub verify_client: Option<String>,
    pub verify_depth: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct EgressMtls {
    pub tls_secret: Option<String>,
    pub trusted_cert_secret: Option<String>,
    pub verify_server: Option<bool>,
    pub verify_depth: Option<i64>,
    pub protocols: Option<String>,
    pub ciphers: Option<String>,
    pub session_reuse: Option<bool>,
    pub server_name: Option<bool>,
    pub ssl_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct VirtualServer {
    pub spec: VirtualServerSpec,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct VirtualServerSpec {
    /// Empty when missing: NIC says "spec.host: Required value".
    #[serde(default)]
    pub host: String,
    pub ingress_class_name: Option<String>,
    pub tls: Option<VsTls>,
    #[serde(default)]
    pub policies: Vec<PolicyRef>,
    #[serde(default)]
    pub upstreams: Vec<Upstream>,
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Read for `enable` only: NIC without `-enable-external-dns` rejects an
    /// enabled one and ignores a disabled one.
    #[serde(rename = "externalDNS")]
    pub external_dns: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct VsTls {
    pub secret: Option<String>,
    pub redirect: Option<TlsRedirect>,
    /// Kept only to be rejected as NIC does without `-enable-cert-manager`.
    #[serde(rename = "cert-manager")]
    pub cert_manager: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct TlsRedirect {
    #[serde(default)]
    pub enable: bool,
    /// Any integer (the CRD's type); NIC rejects all but 301, 302, 307 and 308.
    pub code: Option<i64>,
    pub based_on: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyRef {
    pub name: String,
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct Upstream {
    // Missing fields read as Go's zero values, which NIC's validation rejects in its words.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub port: u16,
    pub tls: Option<UpstreamTls>,
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub lb_method: Option<String>,
    pub fail_timeout: Option<String>,
    // Integers as the CRD types them: NIC rejects negatives in its words.
    pub max_fails: Option<i64>,
    pub max_conns: Option<i64>,
    pub keepalive: Option<i64>,
    pub connect_timeout: Option<String>,
    pub read_timeout: Option<String>,
    pub send_timeout: Option<String>,
    pub next_upstream: Option<String>,
    pub next_upstream_timeout: Option<String>,
    pub next_upstream_tries: Option<i64>,
    pub client_max_body_size: Option<String>,
    pub client_body_buffer_size: Option<String>,
    pub buffering: Option<bool>,
    pub buffer_size: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpstreamTls {
    #[serde(default)]
    pub enable: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Route {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub policies: Vec<PolicyRef>,
    pub action: Option<Action>,
    pub route: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Action {
    pub pass: Option<String>,
    pub proxy: Option<ProxyAction>,
    #[serde(rename = "return")]
    pub return_: Option<ReturnAction>,
    pub redirect: Option<RedirectAction>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ProxyAction {
    #[serde(default)]
    pub upstream: String,
    pub request_headers: Option<RequestHeaders>,
    pub response_headers: Option<ResponseHeaders>,
    pub rewrite_path: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestHeaders {
    pub pass: Option<bool>,
    #[serde(default)]
    pub set: Vec<Header>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResponseHeaders {
    #[serde(default)]
    pub hide: Vec<String>,
    #[serde(default)]
    pub pass: Vec<String>,
    #[serde(default)]
    pub ignore: Vec<String>,
    #[serde(default)]
    pub add: Vec<AddHeader>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Header {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddHeader {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub always: bool,
}

#[allow(
    dead_code,
    reason = "read so that a manifest using it parses as the API server reads it; the local render does not need it"
)]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReturnAction {
    pub code: Option<u16>,
    #[serde(rename = "type")]
    pub type_: Option<String>,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub headers: Vec<Header>,
}

#[allow(
    dead_code,
    reason = "read so that a manifest using it parses as the API server reads it; the local render does not need it"
)]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RedirectAction {
    #[serde(default)]
    pub url: String,
    pub code: Option<u16>,
}
