//! NIC's secret store (`internal/k8s/secrets`): which Secrets it accepts, how it
//! validates them, and the files it writes under `/etc/nginx/secrets`.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::scenario::steps::SecretData;

pub const TYPE_TLS: &str = "kubernetes.io/tls";
pub const TYPE_CA: &str = "nginx.org/ca";
/// Types NIC's informer keeps; anything else is invisible to it.
const SUPPORTED: &[&str] = &[
    TYPE_TLS,
    TYPE_CA,
    "nginx.org/jwk",
    "nginx.org/htpasswd",
    "nginx.org/oidc",
    "nginx.org/apikey",
];

/// What NIC's `GetSecret` returns.
#[derive(Debug, Clone)]
pub struct SecretRef {
    /// The Secret's type, when NIC can see the Secret.
    pub type_: Option<String>,
    /// For TLS: the combined file; for CA: `"<crt> <crl>"`, as NIC keeps it.
    pub path: String,
    pub error: Option<String>,
    pub has_crl: bool,
}

/// A file NIC would write, relative to its secrets folder.
#[derive(Debug, Clone)]
pub struct SecretFile {
    pub name: String,
    pub content: Vec<u8>,
    pub private: bool,
}

/// Secrets as NIC sees them, recording the files it writes.
pub struct SecretStore<'a> {
    secrets: &'a BTreeMap<String, SecretData>,
    dir: &'a str,
    written: RefCell<BTreeMap<String, SecretFile>>,
}

impl<'a> SecretStore<'a> {
    pub fn new(secrets: &'a BTreeMap<String, SecretData>, dir: &'a str) -> Self {
        SecretStore {
            secrets,
            dir,
            written: RefCell::new(BTreeMap::new()),
        }
    }

    pub fn files(&self) -> Vec<SecretFile> {
        self.written.borrow().values().cloned().collect()
    }

    /// `ns/name` → reference, writing its files on first use (as NIC does).
    pub fn get(&self, key: &str) -> SecretRef {
        let base = key.replacen('/', "-", 1);
        let missing = SecretRef {
            type_: None,
            path: String::new(),
            error: Some("secret doesn't exist or of an unsupported type".into()),
            has_crl: false,
        };
        let Some(secret) = self.secrets.get(key) else {
            return missing;
        };
        if !SUPPORTED.contains(&secret.type_.as_str()) {
            return missing;
        }
        let type_ = Some(secret.type_.clone());
        match secret.type_.as_str() {
            TYPE_TLS => match validate_tls(secret) {
                Err(e) => SecretRef {
                    type_,
                    path: String::new(),
                    error: Some(e),
                    has_crl: false,
                },
                Ok((cert, key_pem)) => {
                    let mut content = cert.clone();
                    content.push(b'\n');
                    content.extend_from_slice(key_pem);
                    self.write(&base, content, true);
                    SecretRef {
                        type_,
                        path: format!("{}/{base}", self.dir),
                        error: None,
                        has_crl: false,
                    }
                }
            },
            TYPE_CA => match validate_ca(secret) {
                Err(e) => SecretRef {
                    type_,
                    path: String::new(),
                    error: Some(e),
                    has_crl: false,
                },
                Ok(()) => {
                    let crt = format!("{base}-ca.crt");
                    let crl = format!("{base}-ca.crl");
                    self.write(
                        &crt,
                        secret.data.get("ca.crt").cloned().unwrap_or_default(),
                        false,
                    );
                    // The .crl file is written even when the Secret has no ca.crl.
                    self.write(
                        &crl,
                        secret.data.get("ca.crl").cloned().unwrap_or_default(),
                        false,
                    );
                    SecretRef {
                        type_,
                        path: format!("{dir}/{crt} {dir}/{crl}", dir = self.dir),
                        error: None,
                        has_crl: secret.data.contains_key("ca.crl"),
                    }
                }
            },
            _ => SecretRef {
                type_,
                path: String::new(),
                error: None,
                has_crl: false,
            },
        }
    }

    fn write(&self, name: &str, content: Vec<u8>, private: bool) {
        self.written.borrow_mut().insert(
            name.into(),
            SecretFile {
                name: name.into(),
                content,
                private,
            },
        );
    }
}

/// `ValidateTLSSecret`: a certificate and key that load as a pair.
fn validate_tls(secret: &SecretData) -> Result<(&Vec<u8>, &Vec<u8>), String> {
    let cert = secret.data.get("tls.crt");
    let key = secret.data.get("tls.key");
    let (Some(cert), Some(key)) = (cert, key) else {
        return Err("failed to validate TLS cert and key: tls: failed to find any PEM data in certificate input".into());
    };
    crate::scenario::steps::check_tls_pair(&secret.data)
        .map_err(|e| format!("failed to validate TLS cert and key: {e}"))?;
    Ok((cert, key))
}

/// `ValidateCASecret`: `ca.crt` holding a CERTIFICATE PEM block that parses.
fn validate_ca(secret: &SecretData) -> Result<(), String> {
    let Some(ca) = secret.data.get("ca.crt") else {
        return Err("CA secret must have the data field ca.crt".into());
    };
    let text = String::from_utf8_lossy(ca);
    let block = pem::parse(text.as_bytes())
        .map_err(|_| "the data field ca.crt must hold a valid CERTIFICATE PEM block".to_string())?;
    if block.tag() != "CERTIFICATE" {
        return Err(format!(
            "the data field ca.crt must hold a valid CERTIFICATE PEM block, but got '{}'",
            block.tag()
        ));
    }
    crate::pki::CertInfo::from_der(block.contents())
        .map_err(|e| format!("failed to validate certificate: {e}"))?;
    Ok(())
}
