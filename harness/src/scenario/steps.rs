//! The tutorial's manual steps: openssl commands, `kubectl create secret`, and
//! the jq step that turns a cert-manager Secret into an `nginx.org/ca` Secret.
//!
//! Steps run in a private work folder and produce Secrets; each substrate
//! applies them its own way (an in-memory store, or the cluster).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use serde_json::json;

use super::Scenario;
use super::spec::{CopySecret, CreateSecret, StepSpec, split_key};
use crate::manifest::{ManifestError, Object};
use crate::pki::{KeyAlgorithm, KeyEncoding, KeyPool, encode_key};
use crate::yaml::Origin;

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("{origin}: {message}")]
    Invalid { origin: Origin, message: String },
    #[error("{origin}: `openssl {args}` failed ({status}): {stderr}")]
    Openssl {
        origin: Origin,
        args: String,
        status: String,
        stderr: String,
    },
    #[error("{origin}: {message}")]
    Environment { origin: Origin, message: String },
    /// The substrate could not do what the step needs: on a cluster, the wait
    /// for cert-manager's Secret timed out or the cluster refused the read; a
    /// tool that is there did not finish (exit 4, not 3: nothing is missing).
    #[error("{origin}: {message}")]
    Substrate { origin: Origin, message: String },
}

impl From<ManifestError> for StepError {
    fn from(e: ManifestError) -> Self {
        StepError::Invalid {
            origin: e.origin,
            message: e.message,
        }
    }
}

/// A Secret as a step reads it.
#[derive(Debug, Clone)]
pub struct SecretData {
    pub type_: String,
    pub data: BTreeMap<String, Vec<u8>>,
}

/// Secrets by namespace and name: what the local substrate holds, and what a
/// cluster run reads back for the probes.
pub type Secrets = BTreeMap<crate::manifest::NamespacedName, SecretData>;

/// Where `copySecret` reads its source from (the in-memory store, or the cluster,
/// which may have to wait for cert-manager).
pub(crate) trait SecretSource {
    fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<SecretData>, String>> + Send;
}

/// Runs steps for one scenario.
pub(crate) struct StepRunner<'a> {
    pub scenario: &'a Scenario,
    pub workdir: &'a Path,
    pub keys: &'a KeyPool,
    pub openssl: &'a Path,
}

impl StepRunner<'_> {
    fn origin(&self, index: usize) -> Origin {
        self.scenario.origin_of(&format!("steps[{index}]"))
    }

    fn invalid(&self, index: usize, message: impl Into<String>) -> StepError {
        StepError::Invalid {
            origin: self.origin(index),
            message: message.into(),
        }
    }

    /// Run step `index`; returns the objects it creates.
    pub(crate) async fn run(
        &self,
        index: usize,
        source: &impl SecretSource,
    ) -> Result<Vec<Object>, StepError> {
        let step = &self.scenario.spec.steps[index];
        if let Some(args) = &step.openssl {
            self.openssl(index, args).await?;
            return Ok(Vec::new());
        }
        if let Some(write) = &step.write_file {
            let path = self.work_path(index, &write.path)?;
            std::fs::write(&path, &write.content).map_err(|e| {
                self.invalid(index, format!("cannot write {}: {e}", path.display()))
            })?;
            return Ok(Vec::new());
        }
        if let Some(create) = &step.create_secret {
            return Ok(vec![self.create_secret(index, create)?]);
        }
        if let Some(copy) = &step.copy_secret {
            return Ok(vec![self.copy_secret(index, copy, source).await?]);
        }
        Err(self.invalid(index, "empty step"))
    }

    /// A path inside the work folder; anything escaping it is refused.
    fn work_path(&self, index: usize, relative: &str) -> Result<PathBuf, StepError> {
        let p = Path::new(relative);
        if p.is_absolute() || p.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(self.invalid(
                index,
                format!("`{relative}` must be a plain file name in the work folder"),
            ));
        }
        Ok(self.workdir.join(p))
    }

    async fn openssl(&self, index: usize, args_text: &str) -> Result<(), StepError> {
        let args = shell_words(args_text).map_err(|m| self.invalid(index, m))?;
        if args.first().map(String::as_str) == Some("genrsa") {
            return self.genrsa(index, &args[1..]).await;
        }
        let run = tokio::process::Command::new(self.openssl)
            .args(&args)
            .process_group(0)
            .current_dir(self.workdir)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .map_err(|_| StepError::Substrate {
                origin: self.origin(index),
                message: format!("`openssl {args_text}` did not finish within 30 s"),
            })?
            .map_err(|e| StepError::Environment {
                origin: self.origin(index),
                message: format!("cannot run {}: {e}", self.openssl.display()),
            })?;
        if !output.status.success() {
            return Err(StepError::Openssl {
                origin: self.origin(index),
                args: args_text.to_string(),
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        restrict_keys(self.workdir);
        Ok(())
    }

    /// `openssl genrsa -out FILE [BITS]` from the key pool: the same PKCS#8 PEM
    /// that OpenSSL 3 writes, without the wait.
    async fn genrsa(&self, index: usize, args: &[String]) -> Result<(), StepError> {
        let mut out = None;
        let mut bits = 2048u32;
        let mut i = 0;
        while i < args.len() {
            match args[i].as_str() {
                "-out" => {
                    out = args.get(i + 1).cloned();
                    i += 2;
                }
                b if b.parse::<u32>().is_ok() && i == args.len() - 1 => {
                    bits = b.parse().unwrap_or(2048);
                    i += 1;
                }
                other => {
                    return Err(self.invalid(
                        index,
                        format!("openssl genrsa: option `{other}` is not supported here"),
                    ));
                }
            }
        }
        let out = out.ok_or_else(|| self.invalid(index, "openssl genrsa needs -out FILE"))?;
        let path = self.work_path(index, &out)?;
        let key = self
            .keys
            .take(KeyAlgorithm::Rsa(bits))
            .map_err(|e| self.invalid(index, e.to_string()))?;
        let pem =
            encode_key(&key, KeyEncoding::Pkcs8).map_err(|e| self.invalid(index, e.to_string()))?;
        crate::sys::write_private(&path, pem.as_bytes())
            .map_err(|e| self.invalid(index, format!("cannot write {out}: {e}")))
    }

    fn create_secret(&self, index: usize, create: &CreateSecret) -> Result<Object, StepError> {
        let (namespace, name) = split_key(&create.name).map_err(|m| self.invalid(index, m))?;
        let mut data = BTreeMap::new();
        for (key, file) in &create.from_files {
            let path = self.work_path(index, file)?;
            let bytes = std::fs::read(&path)
                .map_err(|e| self.invalid(index, format!("cannot read {file}: {e}")))?;
            data.insert(key.clone(), bytes);
        }
        if create.type_ == "kubernetes.io/tls" {
            check_tls_pair(&data).map_err(|m| self.invalid(index, m))?;
        }
        secret_object(
            namespace,
            name,
            &create.type_,
            &data,
            &create.labels,
            &self.origin(index),
        )
    }

    async fn copy_secret(
        &self,
        index: usize,
        copy: &CopySecret,
        source: &impl SecretSource,
    ) -> Result<Object, StepError> {
        let (from_ns, from_name) = split_key(&copy.from).map_err(|m| self.invalid(index, m))?;
        let (to_ns, to_name) = split_key(&copy.to).map_err(|m| self.invalid(index, m))?;
        let found = source
            .secret(from_ns, from_name)
            .await
            .map_err(|m| StepError::Substrate {
                origin: self.origin(index),
                message: m,
            })?
            .ok_or_else(|| self.invalid(index, format!("Secret {} does not exist", copy.from)))?;
        let mut data = BTreeMap::new();
        for (new_key, old_key) in &copy.data {
            let value = found.data.get(old_key).ok_or_else(|| {
                let have: Vec<_> = found.data.keys().cloned().collect();
                self.invalid(
                    index,
                    format!(
                        "Secret {} has no key `{old_key}` (it has: {})",
                        copy.from,
                        have.join(", ")
                    ),
                )
            })?;
            data.insert(new_key.clone(), value.clone());
        }
        secret_object(
            to_ns,
            to_name,
            &copy.type_,
            &data,
            &BTreeMap::new(),
            &self.origin(index),
        )
    }
}

/// What a step does, as the command a person would type.
pub(crate) fn describe(step: &StepSpec) -> String {
    if let Some(args) = &step.openssl {
        return format!("openssl {args}");
    }
    if let Some(w) = &step.write_file {
        return format!("cat > {} <<'EOF'\n{}EOF", w.path, w.content);
    }
    if let Some(c) = &step.create_secret {
        let (ns, name) = split_key(&c.name).unwrap_or(("?", &c.name));
        let mut cmd = match (
            c.type_.as_str(),
            c.from_files.get("tls.crt"),
            c.from_files.get("tls.key"),
        ) {
            ("kubernetes.io/tls", Some(cert), Some(key)) if c.from_files.len() == 2 => {
                format!("kubectl create secret tls {name} --cert={cert} --key={key} -n {ns}")
            }
            _ => {
                let files: Vec<_> = c
                    .from_files
                    .iter()
                    .map(|(k, f)| format!("--from-file={k}={f}"))
                    .collect();
                format!(
                    "kubectl create secret generic {name} --type={} {} -n {ns}",
                    c.type_,
                    files.join(" ")
                )
            }
        };
        if !c.labels.is_empty() {
            let labels: Vec<_> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = write!(
                cmd,
                "\nkubectl label secrets {name} {} -n {ns}",
                labels.join(" ")
            );
        }
        return cmd;
    }
    if let Some(c) = &step.copy_secret {
        let (from_ns, from_name) = split_key(&c.from).unwrap_or(("?", &c.from));
        let (to_ns, to_name) = split_key(&c.to).unwrap_or(("?", &c.to));
        let data: Vec<_> = c
            .data
            .iter()
            .map(|(k, v)| format!("\"{k}\": .data.\"{v}\""))
            .collect();
        return format!(
            "kubectl get secret {from_name} -n {from_ns} -o json | jq '.type=\"{}\" | .data={{{}}} | \
             .metadata={{\"name\": \"{to_name}\", \"namespace\": \"{to_ns}\"}}' | kubectl apply -f -",
            c.type_,
            data.join(", ")
        );
    }
    "(empty step)".into()
}

/// The `genrsa` keys a scenario's steps will ask for, so the pool can start early.
pub(crate) fn rsa_keys_needed(scenario: &Scenario) -> Vec<KeyAlgorithm> {
    scenario
        .spec
        .steps
        .iter()
        .filter_map(|s| s.openssl.as_deref())
        .filter_map(|args| shell_words(args).ok())
        .filter(|w| w.first().map(String::as_str) == Some("genrsa"))
        .map(|w| {
            let bits = w.last().and_then(|b| b.parse().ok()).unwrap_or(2048);
            KeyAlgorithm::Rsa(bits)
        })
        .collect()
}

fn secret_object(
    namespace: &str,
    name: &str,
    type_: &str,
    data: &BTreeMap<String, Vec<u8>>,
    labels: &BTreeMap<String, String>,
    origin: &Origin,
) -> Result<Object, StepError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let encoded: serde_json::Map<String, serde_json::Value> = data
        .iter()
        .map(|(k, v)| (k.clone(), json!(b64.encode(v))))
        .collect();
    let mut metadata = json!({"name": name, "namespace": namespace});
    if !labels.is_empty() {
        metadata["labels"] = json!(labels);
    }
    let value = json!({"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": type_, "data": encoded});
    Ok(Object::from_json(&value, origin, namespace)?)
}

/// `kubectl create secret tls` refuses a certificate and key that do not match.
pub(crate) fn check_tls_pair(data: &BTreeMap<String, Vec<u8>>) -> Result<(), String> {
    let cert = data
        .get("tls.crt")
        .ok_or("a kubernetes.io/tls Secret needs tls.crt")?;
    let key = data
        .get("tls.key")
        .ok_or("a kubernetes.io/tls Secret needs tls.key")?;
    let cert = String::from_utf8_lossy(cert);
    let key = String::from_utf8_lossy(key);
    let key =
        rcgen::KeyPair::from_pem(&key).map_err(|e| format!("tls.key is not a private key: {e}"))?;
    let leaf = crate::pki::split_certs(&cert).map_err(|e| e.to_string())?;
    let leaf = leaf.first().ok_or("tls.crt holds no certificate")?;
    let spki = crate::pki::inspect::public_key_bits(leaf).map_err(|e| e.to_string())?;
    if spki != key.public_key_raw() {
        return Err("tls.crt and tls.key do not match".into());
    }
    Ok(())
}

/// Make every `*.key` file in `dir` private (openssl writes with the umask).
fn restrict_keys(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "key") {
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
            }
        }
    }
}

/// Split a command line as a POSIX shell would (quotes and backslashes, no expansion).
pub(crate) fn shell_words(text: &str) -> Result<Vec<String>, String> {
    // The crate's only error is a quote left open.
    shell_words::split(text).map_err(|_| format!("unclosed quote in `{text}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source whose Secret never comes (a cluster wait that timed out).
    struct TimedOut;

    impl SecretSource for TimedOut {
        async fn secret(&self, namespace: &str, name: &str) -> Result<Option<SecretData>, String> {
            Err(format!(
                "Secret {namespace}/{name}: not reached within 180s; last observed: does not exist yet"
            ))
        }
    }

    /// The jq step's Secret that never comes is the substrate's failure (exit
    /// 4), not a missing tool (exit 3).
    #[tokio::test]
    async fn a_secret_the_substrate_cannot_give_is_a_substrate_failure() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/openwebui-ingress-mtls");
        let scenario = Scenario::load(&dir).expect("scenario");
        let index = scenario
            .spec
            .steps
            .iter()
            .position(|s| s.copy_secret.is_some())
            .expect("a copySecret step");
        let work = tempfile::tempdir().expect("tempdir");
        let keys = KeyPool::new();
        let runner = StepRunner {
            scenario: &scenario,
            workdir: work.path(),
            keys: &keys,
            openssl: Path::new("openssl"),
        };
        let e = runner.run(index, &TimedOut).await.expect_err("no Secret");
        assert!(matches!(e, StepError::Substrate { .. }), "{e:?}");
        let exit = crate::error::Error::from(crate::substrate::SubstrateError::Step(e)).exit();
        assert_eq!(exit.code(), 4);
    }

    #[test]
    fn shell_words_handle_the_tutorial_commands() {
        let w = shell_words(r#"req -x509 -new -nodes -key ca.key -sha256 -days 365 -out ca.crt -subj "/CN=Internal CA""#)
            .expect("words");
        assert_eq!(w.last().map(String::as_str), Some("/CN=Internal CA"));
        assert_eq!(w.len(), 13);
        assert_eq!(
            shell_words("a 'b c' d\\ e").expect("words"),
            vec!["a", "b c", "d e"]
        );
        assert!(shell_words("a \"b").is_err());
    }
}
