//! NIC v5.5.4's `internal/k8s/secrets/validation_test.go`: one test per NIC
//! test function, each row named as NIC names it. The fixtures are made as
//! NIC's `hack/secrets-gen/embed-gen.go` makes them: a self-signed ECDSA P-256
//! CA for `cafe.example.com` with its key as `EC PRIVATE KEY`, and empty
//! `CERTIFICATE` / `EC PRIVATE KEY` blocks as the invalid ones. NIC's tests
//! check only that an error is returned; the texts asserted here are the ones
//! NIC's functions return, which the harness shows in NIC's warnings.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::fidelity_tests::{policy_object, render_nic, self_signed_ca, warnings_of};
use super::secrets::{self, SUPPORTED, SecretStore};
use crate::pki::{self, KeyEncoding};
use crate::scenario::steps::SecretData;

/// `validCert` and `validKey` (`embeds-ca.crt`, `embeds-ca.key`).
fn valid() -> &'static (Vec<u8>, Vec<u8>) {
    static PAIR: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    PAIR.get_or_init(|| {
        let ca = self_signed_ca("cafe.example.com");
        let key = pki::encode_key(&ca.key, KeyEncoding::Pkcs1).expect("pem");
        assert!(key.starts_with("-----BEGIN EC PRIVATE KEY-----"), "{key}");
        (ca.cert_pem.into_bytes(), key.into_bytes())
    })
}

/// `invalidCert` (`embeds-empty-ca.crt`): a CERTIFICATE block with no bytes.
const INVALID_CERT: &[u8] = b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
/// `invalidKey` (`embeds-empty-ca.key`): an EC PRIVATE KEY block with no bytes.
const INVALID_KEY: &[u8] = b"-----BEGIN EC PRIVATE KEY-----\n-----END EC PRIVATE KEY-----\n";

fn secret(type_: &str, data: &[(&str, &[u8])]) -> SecretData {
    SecretData {
        type_: type_.into(),
        data: data
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// `TestValidateCASecret`.
#[test]
fn validate_ca_secret() {
    let s = secret("nginx.org/ca", &[("ca.crt", &valid().0)]);
    assert_eq!(secrets::validate_ca(&s), Ok(()));
}

/// `TestValidateCASecretFails`.
#[test]
fn validate_ca_secret_fails() {
    let cert = &valid().0;
    for (msg, s, error) in [
        (
            "Incorrect type for CA secret",
            secret("some-type", &[("ca.crt", cert)]),
            "CA secret must be of the type nginx.org/ca",
        ),
        (
            "Missing ca.crt for CA secret",
            secret("nginx.org/ca", &[]),
            "CA secret must have the data field ca.crt",
        ),
        (
            "Invalid cert with no PEM block",
            secret("nginx.org/ca", &[("ca.crt", b"")]),
            "the data field ca.crt must hold a valid CERTIFICATE PEM block",
        ),
        (
            "Invalid cert with wrong PEM block",
            secret("nginx.org/ca", &[("ca.crt", INVALID_KEY)]),
            "the data field ca.crt must hold a valid CERTIFICATE PEM block, but got 'EC PRIVATE KEY'",
        ),
        (
            "Invalid cert",
            secret("nginx.org/ca", &[("ca.crt", INVALID_CERT)]),
            "failed to validate certificate: x509: malformed certificate",
        ),
    ] {
        assert_eq!(secrets::validate_ca(&s), Err(error.to_string()), "{msg}");
    }
}

/// `TestValidateTLSSecret`: NIC's key is SEC1 (`EC PRIVATE KEY`), as cert-manager writes PKCS#1/SEC1 by default.
#[test]
fn validate_tls_secret() {
    let (cert, key) = valid();
    let s = secret("kubernetes.io/tls", &[("tls.crt", cert), ("tls.key", key)]);
    assert!(secrets::validate_tls(&s).is_ok());
}

/// `TestValidateTLSSecretFails`.
#[test]
fn validate_tls_secret_fails() {
    let (cert, key) = valid();
    for (msg, s, error) in [
        (
            "Wrong type",
            secret("some type", &[]),
            "TLS Secret must be of the type kubernetes.io/tls",
        ),
        (
            "Invalid cert",
            secret(
                "kubernetes.io/tls",
                &[("tls.crt", INVALID_CERT), ("tls.key", key)],
            ),
            "failed to validate TLS cert and key: x509: malformed certificate",
        ),
        (
            "Invalid key",
            secret(
                "kubernetes.io/tls",
                &[("tls.crt", cert), ("tls.key", INVALID_KEY)],
            ),
            "failed to validate TLS cert and key: tls: failed to parse private key",
        ),
    ] {
        assert_eq!(
            secrets::validate_tls(&s).map(|_| ()),
            Err(error.to_string()),
            "{msg}"
        );
    }
}

/// `TestValidateSecret`.
#[test]
fn validate_secret() {
    let (cert, key) = valid();
    for (msg, s) in [
        (
            "Valid TLS secret",
            secret("kubernetes.io/tls", &[("tls.crt", cert), ("tls.key", key)]),
        ),
        (
            "Valid CA secret",
            secret("nginx.org/ca", &[("ca.crt", cert)]),
        ),
        ("Valid JWK secret", secret("nginx.org/jwk", &[("jwk", b"")])),
        (
            "Valid Htpasswd secret",
            secret("nginx.org/htpasswd", &[("htpasswd", b"")]),
        ),
        (
            "Valid OIDC secret",
            secret("nginx.org/oidc", &[("client-secret", b"")]),
        ),
        (
            "Valid API Key secret",
            secret("nginx.org/apikey", &[("client1", b"cGFzc3dvcmQ=")]),
        ),
    ] {
        assert_eq!(secrets::validate(&s), Ok(()), "{msg}");
    }
}

/// `TestValidateSecretFails`.
#[test]
fn validate_secret_fails() {
    let (cert, key) = valid();
    for (msg, s, error) in [
        (
            "Missing type for TLS secret",
            secret("", &[("tls.crt", cert), ("tls.key", key)]),
            "secret is of the unsupported type ",
        ),
        (
            "Missing ca.crt for CA secret",
            secret("nginx.org/ca", &[]),
            "CA secret must have the data field ca.crt",
        ),
        (
            "Missing jwk for JWK secret",
            secret("nginx.org/jwk", &[]),
            "JWK secret must have the data field jwk",
        ),
        (
            "Missing htpasswd for Htpasswd secret",
            secret("nginx.org/htpasswd", &[]),
            "htpasswd secret must have the data field htpasswd",
        ),
        (
            "duplicated API Keys in API Key secret",
            secret(
                "nginx.org/apikey",
                &[("client1", b"cGFzc3dvcmQ="), ("client2", b"cGFzc3dvcmQ=")],
            ),
            "API Keys cannot be repeated",
        ),
    ] {
        assert_eq!(secrets::validate(&s), Err(error.to_string()), "{msg}");
    }
}

/// `TestHasCorrectSecretType` (`IsSupportedSecretType`), and what the store
/// makes of an unsupported type: NIC never sees the Secret.
#[test]
fn has_correct_secret_type() {
    for (type_, expected) in [
        ("kubernetes.io/tls", true),
        ("nginx.org/ca", true),
        ("nginx.org/jwk", true),
        ("nginx.org/oidc", true),
        ("nginx.org/htpasswd", true),
        ("nginx.org/apikey", true),
        ("some-type", false),
    ] {
        assert_eq!(SUPPORTED.contains(&type_), expected, "{type_}");
    }
    // IsSupportedSecretType also keeps the Plus license Secret.
    assert!(SUPPORTED.contains(&"nginx.com/license"));
    let secrets = crate::scenario::steps::Secrets::from([(
        crate::manifest::NamespacedName::new("default", "s"),
        secret("some-type", &[("ca.crt", &valid().0)]),
    )]);
    let store = SecretStore::new(&secrets, "/etc/nginx/secrets");
    let r = store.get(&crate::manifest::NamespacedName::new("default", "s"));
    assert_eq!(r.type_, None);
    assert_eq!(
        r.error.as_deref(),
        Some("secret doesn't exist or of an unsupported type")
    );
}

/// NIC's invalid CA fixture behind an ingressMTLS Policy: the warning carries
/// `ValidateCASecret`'s words (policy.go `addIngressMTLSConfig`).
#[test]
fn invalid_ca_fixture_in_an_ingress_mtls_warning() {
    let yaml = format!(
        "{}{}",
        policy_object("p", "{ingressMTLS: {clientCertSecret: ca}}"),
        "apiVersion: k8s.nginx.org/v1\nkind: VirtualServer\nmetadata: {name: cafe}\nspec:\n  host: cafe.example.com\n  \
         tls: {secret: tls}\n  policies: [{name: p}]\n  upstreams: [{name: tea, service: tea-svc, port: 80}]\n  \
         routes: [{path: /, action: {pass: tea}}]\n"
    );
    let (cert, key) = valid();
    let out = render_nic(
        &yaml,
        &[
            (
                "default/tls",
                secret("kubernetes.io/tls", &[("tls.crt", cert), ("tls.key", key)]),
            ),
            (
                "default/ca",
                secret("nginx.org/ca", &[("ca.crt", INVALID_CERT)]),
            ),
        ],
    );
    assert_eq!(
        warnings_of(&out, "default/cafe"),
        [
            "IngressMTLS policy \"default/p\" references an invalid secret default/ca: failed to validate certificate: x509: malformed certificate"
        ]
    );
}
