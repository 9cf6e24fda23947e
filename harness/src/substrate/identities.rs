//! The scenario's client identities and trust bundles, made concrete: read from
//! Secrets or step files, or issued by the harness (expired, another CA, through
//! an intermediate). Same code for every substrate; only the Secrets differ.

use crate::manifest::NamespacedName;
use crate::scenario::steps::Secrets;
use std::collections::BTreeMap;
use std::path::Path;

use crate::manifest::ManifestError;
use crate::pki::{self, Authority, CertSpec, KeyAlgorithm, KeyEncoding, Usage};
use crate::probe::{Identity, Trust};
use crate::scenario::Scenario;
use crate::scenario::spec::{CertFiles, IssueSpec, split_key};
use crate::scenario::steps::SecretData;
use crate::sys::write_private;

pub struct Probes {
    pub identities: BTreeMap<String, Identity>,
    pub trust: BTreeMap<String, Trust>,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// Resolve every identity and trust of `scenario`, writing their files under `out`.
pub(crate) fn resolve(
    scenario: &Scenario,
    secrets: &Secrets,
    workdir: &Path,
    out: &Path,
) -> Result<Probes, ManifestError> {
    let mut identities = BTreeMap::new();
    for (name, spec) in &scenario.spec.identities {
        let path = format!("identities.{name}");
        let err = |m: String| scenario.error(&path, format!("identity `{name}`: {m}"));
        let (chain_pem, key_pem) = if let Some(key) = &spec.secret {
            cert_and_key(secrets, key).map_err(err)?
        } else if let Some(files) = &spec.files {
            read_files(workdir, files).map_err(err)?
        } else if let Some(issue) = &spec.issue {
            issue_identity(issue, secrets, workdir).map_err(err)?
        } else {
            return Err(err("no source".into()));
        };
        let cert_path = out.join(format!("{name}.crt"));
        let key_path = out.join(format!("{name}.key"));
        std::fs::write(&cert_path, &chain_pem).map_err(|e| err(e.to_string()))?;
        write_private(&key_path, key_pem.as_bytes()).map_err(|e| err(e.to_string()))?;
        identities.insert(
            name.clone(),
            Identity {
                name: name.clone(),
                chain_pem,
                key_pem,
                cert_path,
                key_path,
            },
        );
    }
    let mut trust = BTreeMap::new();
    for (name, spec) in &scenario.spec.trust {
        let err =
            |m: String| scenario.error(&format!("trust.{name}"), format!("trust `{name}`: {m}"));
        let pem = if let Some(key) = &spec.secret {
            let secret = lookup(secrets, key).map_err(err)?;
            let field = spec.key.as_deref().unwrap_or("ca.crt");
            secret
                .data
                .get(field)
                .map(|b| text(b))
                .ok_or_else(|| err(format!("Secret {key} has no {field}")))?
        } else if let Some(file) = &spec.file {
            std::fs::read_to_string(workdir.join(file))
                .map_err(|e| err(format!("cannot read {file}: {e}")))?
        } else {
            return Err(err("no source".into()));
        };
        let path = out.join(format!("{name}.ca.pem"));
        std::fs::write(&path, &pem).map_err(|e| err(e.to_string()))?;
        trust.insert(
            name.clone(),
            Trust {
                name: name.clone(),
                pem,
                path,
            },
        );
    }
    Ok(Probes { identities, trust })
}

fn lookup<'a>(secrets: &'a Secrets, key: &str) -> Result<&'a SecretData, String> {
    let (namespace, name) = split_key(key)?;
    secrets
        .get(&NamespacedName::new(namespace, name))
        .ok_or_else(|| format!("Secret {key} does not exist"))
}

/// `tls.crt` and `tls.key` of a Secret.
fn cert_and_key(secrets: &Secrets, key: &str) -> Result<(String, String), String> {
    let secret = lookup(secrets, key)?;
    let get = |k: &str| {
        secret
            .data
            .get(k)
            .map(|b| text(b))
            .ok_or_else(|| format!("Secret {key} has no {k}"))
    };
    Ok((get("tls.crt")?, get("tls.key")?))
}

fn read_files(workdir: &Path, files: &CertFiles) -> Result<(String, String), String> {
    let read = |f: &str| {
        std::fs::read_to_string(workdir.join(f)).map_err(|e| format!("cannot read {f}: {e}"))
    };
    Ok((read(&files.cert)?, read(&files.key)?))
}

fn issue_identity(
    issue: &IssueSpec,
    secrets: &Secrets,
    workdir: &Path,
) -> Result<(String, String), String> {
    let e = |x: pki::PkiError| x.to_string();
    let signer = &issue.signed_by;
    let authority = if let Some(key) = &signer.secret {
        let (cert, key) = cert_and_key(secrets, key)?;
        Authority::from_pem(&cert, &key).map_err(e)?
    } else if let Some(files) = &signer.files {
        let (cert, key) = read_files(workdir, files)?;
        Authority::from_pem(&cert, &key).map_err(e)?
    } else {
        let cn = signer.new_ca.as_deref().unwrap_or("mtls-e2e untrusted CA");
        new_ca(cn, None)?
    };
    let (signing, intermediate_pem) = if issue.via_intermediate {
        let intermediate = new_ca(
            &format!("{} intermediate", issue.common_name),
            Some(&authority),
        )?;
        let pem = intermediate.cert_pem.clone();
        (intermediate, Some(pem))
    } else {
        (authority, None)
    };
    let now = time::OffsetDateTime::now_utc();
    let (not_before, not_after) = if issue.expired {
        (
            now - time::Duration::days(2),
            now - time::Duration::hours(1),
        )
    } else if issue.not_yet_valid {
        (now + time::Duration::days(1), now + time::Duration::days(2))
    } else {
        (
            now - time::Duration::minutes(5),
            now + time::Duration::days(1),
        )
    };
    let mut spec = CertSpec::new(&issue.common_name, time::Duration::days(1));
    spec.subject.organizations.clone_from(&issue.organizations);
    spec.not_before = not_before;
    spec.not_after = not_after;
    spec.serial = issue.serial;
    spec.usages = match &issue.usages {
        Some(list) => list
            .iter()
            .map(|u| Usage::from_cert_manager(u).ok_or_else(|| format!("unknown usage `{u}`")))
            .collect::<Result<_, _>>()?,
        None => vec![
            Usage::DigitalSignature,
            Usage::KeyEncipherment,
            Usage::ClientAuth,
        ],
    };
    let key = KeyAlgorithm::Ecdsa(256).generate().map_err(e)?;
    let leaf = pki::issue(&spec, key, Some(&signing)).map_err(e)?;
    let mut chain = leaf.cert_pem.clone();
    if let Some(pem) = intermediate_pem {
        chain.push_str(&pem);
    }
    Ok((
        chain,
        pki::encode_key(&leaf.key, KeyEncoding::Pkcs8).map_err(e)?,
    ))
}

fn new_ca(common_name: &str, parent: Option<&Authority>) -> Result<Authority, String> {
    let mut spec = CertSpec::new(common_name, time::Duration::days(2));
    spec.not_before = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
    spec.is_ca = true;
    spec.usages = vec![Usage::DigitalSignature, Usage::CertSign, Usage::CrlSign];
    let key = KeyAlgorithm::Ecdsa(256)
        .generate()
        .map_err(|e| e.to_string())?;
    let issued = pki::issue(&spec, key, parent).map_err(|e| e.to_string())?;
    Ok(Authority {
        cert_pem: issued.cert_pem,
        key: issued.key,
    })
}
