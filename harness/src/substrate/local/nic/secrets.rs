//! NIC's secret store (`internal/k8s/secrets`): which Secrets it accepts, how it
//! validates them, and the files it writes under `/etc/nginx/secrets`.

use crate::manifest::NamespacedName;
use crate::scenario::steps::Secrets;
use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::scenario::steps::SecretData;

pub(crate) const TYPE_TLS: &str = "kubernetes.io/tls";
pub(crate) const TYPE_CA: &str = "nginx.org/ca";
/// Types NIC's informer keeps; anything else is invisible to it
/// (`IsSupportedSecretType`, internal/k8s/secrets/validation.go).
pub(crate) const SUPPORTED: &[&str] = &[
    TYPE_TLS,
    TYPE_CA,
    "nginx.org/jwk",
    "nginx.org/htpasswd",
    "nginx.org/oidc",
    "nginx.org/apikey",
    "nginx.com/license",
];

/// What NIC's `GetSecret` returns.
#[derive(Debug, Clone)]
pub(crate) struct SecretRef {
    /// The Secret's type, when NIC can see the Secret.
    pub type_: Option<String>,
    /// For TLS: the combined file; for CA: `"<crt> <crl>"`, as NIC keeps it.
    pub path: String,
    pub error: Option<String>,
    pub has_crl: bool,
}

/// A file NIC would write, relative to its secrets folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFile {
    pub name: String,
    pub content: Vec<u8>,
    pub private: bool,
}

/// Secrets as NIC sees them, recording the files it writes.
pub(crate) struct SecretStore<'a> {
    secrets: &'a Secrets,
    /// Secrets known only by their type (`ns/name` → type): what `lint` knows
    /// of a Secret cert-manager or a step will make. Their data is taken as valid.
    typed_only: BTreeMap<NamespacedName, String>,
    dir: &'a str,
    written: RefCell<BTreeMap<String, SecretFile>>,
}

impl<'a> SecretStore<'a> {
    pub(crate) fn new(secrets: &'a Secrets, dir: &'a str) -> Self {
        SecretStore {
            secrets,
            typed_only: BTreeMap::new(),
            dir,
            written: RefCell::new(BTreeMap::new()),
        }
    }

    /// Also Secrets of which only the type is known (`ns/name` → type), as NIC
    /// would see them once they exist with valid data.
    pub(crate) fn with_typed_only(mut self, typed_only: BTreeMap<NamespacedName, String>) -> Self {
        self.typed_only = typed_only;
        self
    }

    /// Whether the controller has written the secrets-folder file `name`.
    pub(crate) fn has_file(&self, name: &str) -> bool {
        self.written.borrow().contains_key(name)
    }

    pub(crate) fn files(&self) -> Vec<SecretFile> {
        self.written.borrow().values().cloned().collect()
    }

    /// `ns/name` → reference, writing its files on first use (as NIC does).
    pub(crate) fn get(&self, key: &NamespacedName) -> SecretRef {
        let base = format!("{}-{}", key.namespace, key.name);
        let missing = SecretRef {
            type_: None,
            path: String::new(),
            error: Some("secret doesn't exist or of an unsupported type".into()),
            has_crl: false,
        };
        let Some(secret) = self.secrets.get(key) else {
            return match self.typed_only.get(key) {
                Some(type_) if SUPPORTED.contains(&type_.as_str()) => {
                    let path = match type_.as_str() {
                        TYPE_TLS => format!("{}/{base}", self.dir),
                        TYPE_CA => {
                            format!("{dir}/{base}-ca.crt {dir}/{base}-ca.crl", dir = self.dir)
                        }
                        _ => String::new(),
                    };
                    SecretRef {
                        type_: Some(type_.clone()),
                        path,
                        error: None,
                        has_crl: false,
                    }
                }
                _ => missing,
            };
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
            TYPE_CA => {
                if let Err(e) = validate_ca(secret) {
                    SecretRef {
                        type_,
                        path: String::new(),
                        error: Some(e),
                        has_crl: false,
                    }
                } else {
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
            }
            // The other types NIC keeps are validated too (`ValidateSecret`);
            // their files are not rendered by the local substrate.
            _ => SecretRef {
                type_,
                path: String::new(),
                error: validate(secret).err(),
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
pub(crate) fn validate_tls(secret: &SecretData) -> Result<(&Vec<u8>, &Vec<u8>), String> {
    if secret.type_ != TYPE_TLS {
        return Err(format!("TLS Secret must be of the type {TYPE_TLS}"));
    }
    let failed = |e: String| format!("failed to validate TLS cert and key: {e}");
    // The API server insists on both keys in a kubernetes.io/tls Secret.
    let (Some(cert), Some(key)) = (secret.data.get("tls.crt"), secret.data.get("tls.key")) else {
        return Err(failed(x509_key_pair(b"", b"").err().unwrap_or_default()));
    };
    x509_key_pair(cert, key).map_err(failed)?;
    Ok((cert, key))
}

/// What Go's `tls.X509KeyPair` checks, and its error texts (NIC's
/// `ValidateTLSSecret` wraps them): certificate PEM blocks first, then a
/// `PRIVATE KEY` block, the leaf parsed, the key parsed, and the two matching.
fn x509_key_pair(cert: &[u8], key: &[u8]) -> Result<(), String> {
    let blocks = |bytes: &[u8]| pem::parse_many(bytes).unwrap_or_default();
    let go_list = |types: &[String]| format!("[{}]", types.join(" "));
    let cert_blocks = blocks(cert);
    let Some(leaf) = cert_blocks.iter().find(|b| b.tag() == "CERTIFICATE") else {
        let skipped: Vec<String> = cert_blocks.iter().map(|b| b.tag().to_string()).collect();
        return Err(match skipped.as_slice() {
            [] => "tls: failed to find any PEM data in certificate input".into(),
            [one] if one.ends_with("PRIVATE KEY") => {
                "tls: failed to find certificate PEM data in certificate input, \
                 but did find a private key; PEM inputs may have been switched"
                    .into()
            }
            many => format!(
                "tls: failed to find \"CERTIFICATE\" PEM block in certificate input after skipping PEM blocks of the following types: {}",
                go_list(many)
            ),
        });
    };
    let key_blocks = blocks(key);
    let is_key = |tag: &str| tag == "PRIVATE KEY" || tag.ends_with(" PRIVATE KEY");
    let Some(key_block) = key_blocks.iter().find(|b| is_key(b.tag())) else {
        let skipped: Vec<String> = key_blocks.iter().map(|b| b.tag().to_string()).collect();
        return Err(match skipped.as_slice() {
            [] => "tls: failed to find any PEM data in key input".into(),
            [one] if one == "CERTIFICATE" => {
                "tls: found a certificate rather than a key in the PEM for the private key".into()
            }
            many => format!(
                "tls: failed to find PEM block with type ending in \"PRIVATE KEY\" in key input after skipping PEM blocks of the following types: {}",
                go_list(many)
            ),
        });
    };
    let cert_spki = crate::pki::inspect::spki_der(leaf.contents())
        .map_err(|_| "x509: malformed certificate".to_string())?;
    let key_pem = pem::encode(key_block);
    let pair = rcgen::KeyPair::from_pem(&key_pem)
        .map_err(|_| "tls: failed to parse private key".to_string())?;
    let key_spki = pem::parse(pair.public_key_pem())
        .map(pem::Pem::into_contents)
        .unwrap_or_default();
    if key_spki == cert_spki {
        return Ok(());
    }
    let algorithm = |spki: &[u8]| {
        use x509_parser::prelude::FromDer;
        x509_parser::x509::SubjectPublicKeyInfo::from_der(spki)
            .map(|(_, info)| info.algorithm.algorithm.to_id_string())
            .ok()
    };
    if algorithm(&key_spki) == algorithm(&cert_spki) {
        Err("tls: private key does not match public key".into())
    } else {
        Err("tls: private key type does not match public key type".into())
    }
}

/// `ValidateCASecret`: `ca.crt` holding a CERTIFICATE PEM block that parses.
pub(crate) fn validate_ca(secret: &SecretData) -> Result<(), String> {
    if secret.type_ != TYPE_CA {
        return Err(format!("CA secret must be of the type {TYPE_CA}"));
    }
    let Some(ca) = secret.data.get("ca.crt") else {
        return Err("CA secret must have the data field ca.crt".into());
    };
    let Some(block) = first_pem_block(ca) else {
        return Err("the data field ca.crt must hold a valid CERTIFICATE PEM block".into());
    };
    if block.tag() != "CERTIFICATE" {
        return Err(format!(
            "the data field ca.crt must hold a valid CERTIFICATE PEM block, but got '{}'",
            block.tag()
        ));
    }
    // Go's x509.ParseCertificate says this of a DER that does not parse at all
    // (an empty CERTIFICATE block, NIC's own invalid fixture).
    crate::pki::CertInfo::from_der(block.contents())
        .map_err(|_| "failed to validate certificate: x509: malformed certificate".to_string())?;
    Ok(())
}

/// Go's `pem.Decode`: the first well-formed PEM block, wherever it starts.
fn first_pem_block(bytes: &[u8]) -> Option<pem::Pem> {
    pem::parse_many(bytes).ok()?.into_iter().next()
}

/// `ValidateSecret`: each type NIC keeps, by its own rules
/// (internal/k8s/secrets/validation.go).
pub(crate) fn validate(secret: &SecretData) -> Result<(), String> {
    let has = |key: &str| secret.data.contains_key(key);
    match secret.type_.as_str() {
        TYPE_TLS => validate_tls(secret).map(|_| ()),
        TYPE_CA => validate_ca(secret),
        "nginx.org/jwk" if !has("jwk") => Err("JWK secret must have the data field jwk".into()),
        "nginx.org/htpasswd" if !has("htpasswd") => {
            Err("htpasswd secret must have the data field htpasswd".into())
        }
        "nginx.org/oidc" => match secret.data.get("client-secret") {
            None => Err("OIDC secret must have the data field client-secret".into()),
            Some(value) if !valid_client_secret(value) => Err(
                "OIDC client secret is invalid: It must contain valid ASCII characters, must have all '\"' escaped \
                 and must not contain any '$' or whitespaces ('\\n', '\\t' etc.) or end with an unescaped '\\'"
                    .into(),
            ),
            Some(_) => Ok(()),
        },
        "nginx.org/apikey" => {
            let mut seen = std::collections::BTreeSet::new();
            if secret.data.values().all(|v| seen.insert(v)) {
                Ok(())
            } else {
                Err("API Keys cannot be repeated".into())
            }
        }
        "nginx.com/license" if !has("license.jwt") => {
            Err("license secret must have the data field license.jwt".into())
        }
        "nginx.org/jwk" | "nginx.org/htpasswd" | "nginx.com/license" => Ok(()),
        other => Err(format!("secret is of the unsupported type {other}")),
    }
}

/// `isValidClientSecretValue`: `^([^"$\\\s]|\\[^$])*$`.
fn valid_client_secret(value: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(value) else {
        return false;
    };
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') | None => return false,
                Some(_) => {}
            },
            '"' | '$' => return false,
            '\t' | '\n' | '\x0c' | '\r' | ' ' => return false, // RE2's \s
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::x509_key_pair;

    fn pair() -> (String, String) {
        let key = crate::pki::KeyAlgorithm::Ecdsa(256)
            .generate()
            .expect("key");
        let key_pem = key.serialize_pem();
        let cert = crate::pki::issue(
            &crate::pki::CertSpec::new("x", time::Duration::days(1)),
            key,
            None,
        )
        .expect("cert");
        (cert.cert_pem, key_pem)
    }

    /// Go's `tls.X509KeyPair` texts, which NIC puts in a `VirtualServer`'s warning.
    #[test]
    fn go_words_for_each_broken_pair() {
        let (cert, key) = pair();
        let (_, other_key) = pair();
        let (rsa_cert, ()) = {
            let key = crate::pki::KeyAlgorithm::Rsa(2048).generate().expect("rsa");
            let cert = crate::pki::issue(
                &crate::pki::CertSpec::new("r", time::Duration::days(1)),
                key,
                None,
            )
            .expect("cert");
            (cert.cert_pem, ())
        };
        assert_eq!(x509_key_pair(cert.as_bytes(), key.as_bytes()), Ok(()));
        let garbage_key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let cases: [(&str, &str, &str); 7] = [
            (
                "",
                &key,
                "tls: failed to find any PEM data in certificate input",
            ),
            (
                &key,
                &key,
                "tls: failed to find certificate PEM data in certificate input, but did find a private key; PEM inputs may have been switched",
            ),
            (&cert, "", "tls: failed to find any PEM data in key input"),
            (
                &cert,
                &cert,
                "tls: found a certificate rather than a key in the PEM for the private key",
            ),
            (
                &cert,
                &other_key,
                "tls: private key does not match public key",
            ),
            (
                &rsa_cert,
                &key,
                "tls: private key type does not match public key type",
            ),
            (&cert, garbage_key, "tls: failed to parse private key"),
        ];
        for (c, k, want) in cases {
            assert_eq!(
                x509_key_pair(c.as_bytes(), k.as_bytes()),
                Err(want.to_string()),
                "{want}"
            );
        }
    }
}
