//! cert-manager's issuance, played by the local substrate: selfSigned and CA
//! issuers, Certificate defaults (RSA 2048, PKCS#1, 90 days, usages that
//! replace the default list), and the Secret it writes (tls.crt without the
//! self-signed root, tls.key, ca.crt). Source: cert-manager v1.19 (see notes).

use crate::manifest::NamespacedName;
use crate::scenario::steps::Secrets;
use std::collections::BTreeMap;
use std::net::IpAddr;

use base64::Engine;
use serde::Serialize;
use serde_json::json;

use crate::manifest::kinds::{Certificate, CertificateSpec, Issuer};
use crate::manifest::{Kind, ManifestError, Object};
use crate::pki::{
    self, Authority, CertInfo, CertSpec, KeyAlgorithm, KeyEncoding, KeyPool, Subject, Usage,
};
use crate::scenario::steps::SecretData;

/// cert-manager's cluster resource namespace in the static manifest.
pub(crate) const CLUSTER_RESOURCE_NAMESPACE: &str = "cert-manager";

/// What was issued, for plans and reports.
#[derive(Debug, Clone, Serialize)]
pub struct Issued {
    pub certificate: String,
    pub secret: NamespacedName,
    pub issuer: String,
    pub info: CertInfo,
}

/// Keys the Certificates in `objects` will need, so the pool can start early.
pub(crate) fn keys_needed(objects: &[Object]) -> Vec<KeyAlgorithm> {
    objects
        .iter()
        .filter(|o| o.id.kind == Kind::Certificate)
        .filter_map(|o| o.parse::<Certificate>().ok())
        .filter_map(|c| {
            let pk = c.spec.private_key.as_ref();
            KeyAlgorithm::from_cert_manager(
                pk.and_then(|p| p.algorithm.as_deref()),
                pk.and_then(|p| p.size),
            )
            .ok()
        })
        .collect()
}

/// Issue every Certificate whose issuer is ready, until nothing changes.
/// `secrets` is the store's view of Secrets; new Secret objects are returned.
pub(crate) fn reconcile(
    objects: &[Object],
    secrets: &Secrets,
    done: &mut BTreeMap<String, Issued>,
    keys: &KeyPool,
) -> Result<Vec<Object>, ManifestError> {
    let mut created = Vec::new();
    let mut view = secrets.clone();
    loop {
        let mut progressed = false;
        for object in objects.iter().filter(|o| o.id.kind == Kind::Certificate) {
            if done.contains_key(&object.id.key()) {
                continue;
            }
            let spec = object.parse::<Certificate>()?.spec;
            validate(object, &spec)?;
            let Some(signer) = signer(object, &spec, objects, &view)? else {
                continue;
            };
            let (secret, issued) = issue(object, &spec, signer, keys)?;
            view.insert(issued.secret.clone(), secret_data(&secret)?);
            done.insert(object.id.key(), issued);
            created.push(secret);
            progressed = true;
        }
        if !progressed {
            return Ok(created);
        }
    }
}

/// Certificates that could not be issued, and why (cert-manager would leave them
/// not Ready forever).
pub(crate) fn pending(
    objects: &[Object],
    done: &BTreeMap<String, Issued>,
    secrets: &Secrets,
) -> Vec<ManifestError> {
    objects
        .iter()
        .filter(|o| o.id.kind == Kind::Certificate && !done.contains_key(&o.id.key()))
        .map(|o| {
            let reason = match o.parse::<Certificate>() {
                Ok(c) => match signer(o, &c.spec, objects, secrets) {
                    Err(e) => e.message,
                    Ok(_) => why_not_ready(o, &c.spec, objects),
                },
                Err(e) => e.message,
            };
            o.error(
                "spec.issuerRef",
                format!(
                    "Certificate {} would never become Ready: {reason}",
                    o.id.key()
                ),
            )
        })
        .collect()
}

fn why_not_ready(o: &Object, spec: &CertificateSpec, objects: &[Object]) -> String {
    match find_issuer(o, spec, objects) {
        None => format!(
            "{} {} does not exist",
            issuer_kind(spec),
            spec.issuer_ref.name
        ),
        Some((issuer, parsed)) => match &parsed.spec.ca {
            Some(ca) => {
                let ns = secret_namespace(issuer);
                format!(
                    "{} {} is not ready: its CA Secret {ns}/{} does not exist",
                    issuer.id.kind,
                    issuer.id.key(),
                    ca.secret_name
                )
            }
            None => "its issuer is not ready".into(),
        },
    }
}

fn issuer_kind(spec: &CertificateSpec) -> &str {
    spec.issuer_ref.kind.as_deref().unwrap_or("Issuer")
}

fn find_issuer<'a>(
    o: &Object,
    spec: &CertificateSpec,
    objects: &'a [Object],
) -> Option<(&'a Object, Issuer)> {
    let (kind, namespace) = match issuer_kind(spec) {
        "ClusterIssuer" => (Kind::ClusterIssuer, ""),
        _ => (Kind::Issuer, o.namespace()),
    };
    objects
        .iter()
        .find(|i| {
            i.id.kind == kind
                && i.name() == spec.issuer_ref.name
                && (namespace.is_empty() || i.namespace() == namespace)
        })
        .and_then(|i| i.parse::<Issuer>().ok().map(|p| (i, p)))
}

fn secret_namespace(issuer: &Object) -> &str {
    if issuer.id.kind == Kind::ClusterIssuer {
        CLUSTER_RESOURCE_NAMESPACE
    } else {
        issuer.namespace()
    }
}

/// The webhook's checks that matter here.
fn validate(o: &Object, spec: &CertificateSpec) -> Result<(), ManifestError> {
    if let Some(cn) = &spec.common_name
        && cn.len() > 64
    {
        return Err(o.error(
            "spec.commonName",
            format!(
                "spec.commonName: Too long: may not be longer than 64 (it has {})",
                cn.len()
            ),
        ));
    }
    let has_identity = spec.common_name.is_some()
        || !spec.dns_names.is_empty()
        || !spec.ip_addresses.is_empty()
        || !spec.email_addresses.is_empty()
        || !spec.uris.is_empty();
    if !has_identity {
        return Err(o.error("spec", "at least one of commonName, dnsNames, uriSANs, ipAddresses, emailSANs or otherNames must be set"));
    }
    if let Some(kind) = spec.issuer_ref.kind.as_deref()
        && !matches!(kind, "Issuer" | "ClusterIssuer")
    {
        return Err(o.error(
            "spec.issuerRef.kind",
            format!(
                "issuer kind `{kind}` is not one the local substrate plays (Issuer, ClusterIssuer)"
            ),
        ));
    }
    if let Some(group) = spec.issuer_ref.group.as_deref()
        && group != "cert-manager.io"
    {
        return Err(o.error(
            "spec.issuerRef.group",
            format!("external issuers (group `{group}`) are not played by the local substrate"),
        ));
    }
    let duration = duration_of(o, spec)?;
    if duration < time::Duration::hours(1) {
        return Err(o.error(
            "spec.duration",
            "certificate duration must be greater than 1h0m0s",
        ));
    }
    if let Some(usages) = &spec.usages {
        for (i, u) in usages.iter().enumerate() {
            if Usage::from_cert_manager(u).is_none() {
                return Err(o.error(&format!("spec.usages[{i}]"), format!("unknown usage `{u}`")));
            }
        }
    }
    Ok(())
}

fn duration_of(o: &Object, spec: &CertificateSpec) -> Result<time::Duration, ManifestError> {
    match &spec.duration {
        None => Ok(time::Duration::hours(2160)),
        Some(text) => parse_go_duration(text).ok_or_else(|| {
            o.error(
                "spec.duration",
                format!("`{text}` is not a Go duration like 2160h or 90m"),
            )
        }),
    }
}

/// Go's `time.ParseDuration` (`2160h`, `1h30m`, `90s`, `1.5h`).
pub(crate) fn parse_go_duration(text: &str) -> Option<time::Duration> {
    let mut total = 0f64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    Some(time::Duration::seconds_f64(total))
}

enum Signer {
    SelfSigned,
    Ca {
        issuer: String,
        authority: Box<Authority>,
        chain: Vec<Vec<u8>>,
        ca_crt: String,
    },
}

/// The signer for a Certificate, or `None` while its issuer is not ready.
fn signer(
    o: &Object,
    spec: &CertificateSpec,
    objects: &[Object],
    secrets: &Secrets,
) -> Result<Option<(String, Signer)>, ManifestError> {
    let Some((issuer, parsed)) = find_issuer(o, spec, objects) else {
        return Ok(None);
    };
    let label = format!("{} {}", issuer.id.kind, issuer.id.key());
    let s = &parsed.spec;
    if s.acme.is_some() || s.vault.is_some() || s.venafi.is_some() {
        return Err(issuer.error(
            "spec",
            "ACME, Vault and Venafi issuers are not played by the local substrate",
        ));
    }
    if s.self_signed.is_some() {
        return Ok(Some((label, Signer::SelfSigned)));
    }
    let Some(ca) = &s.ca else {
        return Err(issuer.error("spec", "an issuer needs selfSigned or ca"));
    };
    let key = NamespacedName::new(secret_namespace(issuer), &ca.secret_name);
    let Some(secret) = secrets.get(&key) else {
        return Ok(None);
    };
    let text = |k: &str| {
        secret
            .data
            .get(k)
            .map(|b| String::from_utf8_lossy(b).to_string())
    };
    let (Some(crt), Some(tls_key)) = (text("tls.crt"), text("tls.key")) else {
        return Err(issuer.error(
            "spec.ca.secretName",
            format!("Error getting keypair for CA issuer: Secret {key} has no tls.crt/tls.key"),
        ));
    };
    let chain = pki::split_certs(&crt).map_err(|e| {
        issuer.error(
            "spec.ca.secretName",
            format!("Error getting keypair for CA issuer: {e}"),
        )
    })?;
    let first = chain.first().ok_or_else(|| {
        issuer.error(
            "spec.ca.secretName",
            "Error getting keypair for CA issuer: no certificate",
        )
    })?;
    let info =
        CertInfo::from_der(first).map_err(|e| issuer.error("spec.ca.secretName", e.to_string()))?;
    if !info.is_ca {
        return Err(issuer.error(
            "spec.ca.secretName",
            "Error getting keypair for CA issuer: certificate is not a CA",
        ));
    }
    let authority = Authority::from_pem(&crt, &tls_key).map_err(|e| {
        issuer.error(
            "spec.ca.secretName",
            format!("Error getting keypair for CA issuer: {e}"),
        )
    })?;
    let ca_crt = text("ca.crt").unwrap_or_else(|| pki::der_to_pem(chain.last().unwrap_or(first)));
    Ok(Some((
        label,
        Signer::Ca {
            issuer: key.to_string(),
            authority: Box::new(authority),
            chain,
            ca_crt,
        },
    )))
}

fn issue(
    o: &Object,
    spec: &CertificateSpec,
    (issuer_label, signer): (String, Signer),
    keys: &KeyPool,
) -> Result<(Object, Issued), ManifestError> {
    let err = |path: &str, e: String| o.error(path, e);
    let pk = spec.private_key.as_ref();
    let algorithm = KeyAlgorithm::from_cert_manager(
        pk.and_then(|p| p.algorithm.as_deref()),
        pk.and_then(|p| p.size),
    )
    .map_err(|e| err("spec.privateKey", e))?;
    let encoding = match pk.and_then(|p| p.encoding.as_deref()) {
        None | Some("PKCS1") => KeyEncoding::Pkcs1,
        Some("PKCS8") => KeyEncoding::Pkcs8,
        Some(other) => {
            return Err(err(
                "spec.privateKey.encoding",
                format!("`{other}` is not PKCS1 or PKCS8"),
            ));
        }
    };
    let subject = spec.subject.clone().unwrap_or_default();
    let mut usages: Vec<Usage> = match &spec.usages {
        Some(list) => list
            .iter()
            .filter_map(|u| Usage::from_cert_manager(u))
            .collect(),
        None => vec![Usage::DigitalSignature, Usage::KeyEncipherment],
    };
    if spec.is_ca && !usages.contains(&Usage::CertSign) {
        usages.push(Usage::CertSign);
    }
    let now = time::OffsetDateTime::now_utc();
    let mut not_after = now + duration_of(o, spec)?;
    let mut ip_addresses = Vec::new();
    for (i, ip) in spec.ip_addresses.iter().enumerate() {
        ip_addresses.push(ip.parse::<IpAddr>().map_err(|_| {
            err(
                &format!("spec.ipAddresses[{i}]"),
                format!("`{ip}` is not an IP address"),
            )
        })?);
    }
    if let Signer::Ca { chain, .. } = &signer {
        // cert-manager never issues beyond its CA's own expiry.
        if let Some(ca_end) = chain
            .first()
            .and_then(|d| CertInfo::from_der(d).ok())
            .map(|i| i.not_after)
        {
            not_after = not_after.min(ca_end);
        }
    }
    let cert_spec = CertSpec {
        subject: Subject {
            common_name: spec.common_name.clone(),
            organizations: subject.organizations,
            organizational_units: subject.organizational_units,
            countries: subject.countries,
            provinces: subject.provinces,
            localities: subject.localities,
            street_addresses: subject.street_addresses,
            postal_codes: subject.postal_codes,
            serial_number: subject.serial_number,
        },
        dns_names: spec.dns_names.clone(),
        ip_addresses,
        email_addresses: spec.email_addresses.clone(),
        uris: spec.uris.clone(),
        is_ca: spec.is_ca,
        usages,
        not_before: now,
        not_after,
        serial: None,
    };
    let key = keys
        .take(algorithm)
        .map_err(|e| err("spec.privateKey", e.to_string()))?;
    let (issued, tls_crt, ca_crt) = match &signer {
        Signer::SelfSigned => {
            let issued =
                pki::issue(&cert_spec, key, None).map_err(|e| err("spec", e.to_string()))?;
            let pem = issued.cert_pem.clone();
            (issued, pem.clone(), pem)
        }
        Signer::Ca {
            authority,
            chain,
            ca_crt,
            ..
        } => {
            let issued = pki::issue(&cert_spec, key, Some(authority))
                .map_err(|e| err("spec", e.to_string()))?;
            // tls.crt: the leaf and the CA's chain, without self-signed roots.
            let mut tls_crt = issued.cert_pem.clone();
            for der in chain {
                let self_signed = CertInfo::from_der(der).is_ok_and(|i| i.subject == i.issuer);
                if !self_signed {
                    tls_crt.push_str(&pki::der_to_pem(der));
                }
            }
            (issued, tls_crt, ca_crt.clone())
        }
    };
    let key_pem = pki::encode_key(&issued.key, encoding)
        .map_err(|e| err("spec.privateKey", e.to_string()))?;
    let info = CertInfo::from_pem(&issued.cert_pem).map_err(|e| err("spec", e.to_string()))?;

    let b64 = base64::engine::general_purpose::STANDARD;
    let template = spec.secret_template.clone().unwrap_or_default();
    let mut annotations = template.annotations.clone();
    annotations.insert("cert-manager.io/certificate-name".into(), o.name().into());
    annotations.insert(
        "cert-manager.io/issuer-name".into(),
        spec.issuer_ref.name.clone(),
    );
    annotations.insert(
        "cert-manager.io/issuer-kind".into(),
        issuer_kind(spec).into(),
    );
    annotations.insert(
        "cert-manager.io/issuer-group".into(),
        spec.issuer_ref
            .group
            .clone()
            .unwrap_or_else(|| "cert-manager.io".into()),
    );
    if let Some(cn) = &spec.common_name {
        annotations.insert("cert-manager.io/common-name".into(), cn.clone());
    }
    annotations.insert("cert-manager.io/alt-names".into(), spec.dns_names.join(","));
    annotations.insert(
        "cert-manager.io/ip-sans".into(),
        spec.ip_addresses.join(","),
    );
    annotations.insert("cert-manager.io/uri-sans".into(), spec.uris.join(","));
    let mut metadata =
        json!({"name": spec.secret_name, "namespace": o.namespace(), "annotations": annotations});
    if !template.labels.is_empty() {
        metadata["labels"] = json!(template.labels);
    }
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": b64.encode(tls_crt.as_bytes()),
            "tls.key": b64.encode(key_pem.as_bytes()),
            "ca.crt": b64.encode(ca_crt.as_bytes()),
        }
    });
    let object = Object::from_json(&secret, &o.origin(), o.namespace())?;
    let issuer_text = match &signer {
        Signer::SelfSigned => issuer_label,
        Signer::Ca { issuer, .. } => format!("{issuer_label} (CA Secret {issuer})"),
    };
    let record = Issued {
        certificate: o.id.key(),
        secret: NamespacedName::new(o.namespace(), &spec.secret_name),
        issuer: issuer_text,
        info,
    };
    Ok((object, record))
}

/// Decode a Secret object.
pub(crate) fn secret_data(object: &Object) -> Result<SecretData, ManifestError> {
    let secret = object.parse::<crate::manifest::kinds::Secret>()?;
    let data = secret.decoded().map_err(|m| object.error("data", m))?;
    Ok(SecretData {
        type_: secret.type_,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(
            parse_go_duration("2160h"),
            Some(time::Duration::hours(2160))
        );
        assert_eq!(
            parse_go_duration("1h30m"),
            Some(time::Duration::minutes(90))
        );
        assert_eq!(parse_go_duration("90d"), None);
        assert_eq!(parse_go_duration(""), None);
    }
}
