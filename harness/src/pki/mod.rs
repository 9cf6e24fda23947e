//! Test PKI generated in code: the certificates cert-manager would issue, and the
//! client identities the probes present (good, expired, another CA, chains).

mod der;
pub(crate) mod inspect;
pub(crate) mod keys;

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use time::OffsetDateTime;

pub use inspect::CertInfo;
pub use keys::{KeyAlgorithm, KeyEncoding, KeyPool, encode_key};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("key: {0}")]
    Key(String),
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("invalid PEM: {0}")]
    Pem(String),
}

/// The subject fields cert-manager knows (`commonName` plus `subject`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subject {
    pub common_name: Option<String>,
    pub organizations: Vec<String>,
    pub organizational_units: Vec<String>,
    pub countries: Vec<String>,
    pub provinces: Vec<String>,
    pub localities: Vec<String>,
    pub street_addresses: Vec<String>,
    pub postal_codes: Vec<String>,
    pub serial_number: Option<String>,
}

/// Key usage and extended key usage, named as cert-manager names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    DigitalSignature,
    ContentCommitment,
    KeyEncipherment,
    DataEncipherment,
    KeyAgreement,
    CertSign,
    CrlSign,
    EncipherOnly,
    DecipherOnly,
    Any,
    ServerAuth,
    ClientAuth,
    CodeSigning,
    EmailProtection,
    Timestamping,
    OcspSigning,
}

impl Usage {
    /// Parse a cert-manager `usages` entry.
    pub(crate) fn from_cert_manager(name: &str) -> Option<Usage> {
        Some(match name {
            "signing" | "digital signature" => Usage::DigitalSignature,
            "content commitment" => Usage::ContentCommitment,
            "key encipherment" => Usage::KeyEncipherment,
            "data encipherment" => Usage::DataEncipherment,
            "key agreement" => Usage::KeyAgreement,
            "cert sign" => Usage::CertSign,
            "crl sign" => Usage::CrlSign,
            "encipher only" => Usage::EncipherOnly,
            "decipher only" => Usage::DecipherOnly,
            "any" => Usage::Any,
            "server auth" => Usage::ServerAuth,
            "client auth" => Usage::ClientAuth,
            "code signing" => Usage::CodeSigning,
            "email protection" | "s/mime" => Usage::EmailProtection,
            "timestamping" => Usage::Timestamping,
            "ocsp signing" => Usage::OcspSigning,
            _ => return None,
        })
    }
}

/// What to put in a certificate.
#[derive(Debug, Clone)]
pub struct CertSpec {
    pub subject: Subject,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    pub email_addresses: Vec<String>,
    pub uris: Vec<String>,
    pub is_ca: bool,
    pub usages: Vec<Usage>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub serial: Option<u64>,
}

impl CertSpec {
    /// A spec valid from now for `lifetime`, with nothing else set.
    #[must_use]
    pub fn new(common_name: &str, lifetime: time::Duration) -> Self {
        let now = OffsetDateTime::now_utc();
        CertSpec {
            subject: Subject {
                common_name: Some(common_name.to_string()),
                ..Subject::default()
            },
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            email_addresses: Vec::new(),
            uris: Vec::new(),
            is_ca: false,
            usages: Vec::new(),
            not_before: now,
            not_after: now + lifetime,
            serial: None,
        }
    }

    fn to_params(&self) -> Result<CertificateParams, PkiError> {
        let err = |e: rcgen::Error| PkiError::Certificate(e.to_string());
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        let s = &self.subject;
        for c in &s.countries {
            dn.push(DnType::CountryName, c.as_str());
        }
        for p in &s.provinces {
            dn.push(DnType::StateOrProvinceName, p.as_str());
        }
        for l in &s.localities {
            dn.push(DnType::LocalityName, l.as_str());
        }
        for street in &s.street_addresses {
            dn.push(DnType::CustomDnType(vec![2, 5, 4, 9]), street.as_str());
        }
        for code in &s.postal_codes {
            dn.push(DnType::CustomDnType(vec![2, 5, 4, 17]), code.as_str());
        }
        for o in &s.organizations {
            dn.push(DnType::OrganizationName, o.as_str());
        }
        for ou in &s.organizational_units {
            dn.push(DnType::OrganizationalUnitName, ou.as_str());
        }
        if let Some(serial) = &s.serial_number {
            dn.push(DnType::CustomDnType(vec![2, 5, 4, 5]), serial.as_str());
        }
        if let Some(cn) = &s.common_name {
            dn.push(DnType::CommonName, cn.as_str());
        }
        params.distinguished_name = dn;
        for name in &self.dns_names {
            params
                .subject_alt_names
                .push(SanType::DnsName(name.clone().try_into().map_err(err)?));
        }
        for ip in &self.ip_addresses {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        for email in &self.email_addresses {
            params
                .subject_alt_names
                .push(SanType::Rfc822Name(email.clone().try_into().map_err(err)?));
        }
        for uri in &self.uris {
            params
                .subject_alt_names
                .push(SanType::URI(uri.clone().try_into().map_err(err)?));
        }
        params.is_ca = if self.is_ca {
            IsCa::Ca(BasicConstraints::Unconstrained)
        } else {
            IsCa::ExplicitNoCa
        };
        for usage in &self.usages {
            match usage {
                Usage::DigitalSignature => {
                    params.key_usages.push(KeyUsagePurpose::DigitalSignature);
                }
                Usage::ContentCommitment => {
                    params.key_usages.push(KeyUsagePurpose::ContentCommitment);
                }
                Usage::KeyEncipherment => params.key_usages.push(KeyUsagePurpose::KeyEncipherment),
                Usage::DataEncipherment => {
                    params.key_usages.push(KeyUsagePurpose::DataEncipherment);
                }
                Usage::KeyAgreement => params.key_usages.push(KeyUsagePurpose::KeyAgreement),
                Usage::CertSign => params.key_usages.push(KeyUsagePurpose::KeyCertSign),
                Usage::CrlSign => params.key_usages.push(KeyUsagePurpose::CrlSign),
                Usage::EncipherOnly => params.key_usages.push(KeyUsagePurpose::EncipherOnly),
                Usage::DecipherOnly => params.key_usages.push(KeyUsagePurpose::DecipherOnly),
                Usage::Any => params
                    .extended_key_usages
                    .push(ExtendedKeyUsagePurpose::Any),
                Usage::ServerAuth => params
                    .extended_key_usages
                    .push(ExtendedKeyUsagePurpose::ServerAuth),
                Usage::ClientAuth => params
                    .extended_key_usages
                    .push(ExtendedKeyUsagePurpose::ClientAuth),
                Usage::CodeSigning => params
                    .extended_key_usages
                    .push(ExtendedKeyUsagePurpose::CodeSigning),
                Usage::EmailProtection => params
                    .extended_key_usages
                    .push(ExtendedKeyUsagePurpose::EmailProtection),
                Usage::Timestamping => params
                    .extended_key_usages
                    .push(ExtendedKeyUsagePurpose::TimeStamping),
                Usage::OcspSigning => params
                    .extended_key_usages
                    .push(ExtendedKeyUsagePurpose::OcspSigning),
            }
        }
        params.not_before = self.not_before;
        params.not_after = self.not_after;
        params.serial_number = Some(match self.serial {
            Some(n) => SerialNumber::from_slice(&n.to_be_bytes()),
            None => random_serial()?,
        });
        params.use_authority_key_identifier_extension = true;
        Ok(params)
    }
}

/// A 128-bit positive serial number, as cert-manager draws them.
fn random_serial() -> Result<SerialNumber, PkiError> {
    use aws_lc_rs::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PkiError::Certificate("no randomness for a serial number".into()))?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

/// A CA that can sign: its certificate and its key.
pub struct Authority {
    pub cert_pem: String,
    pub key: KeyPair,
}

impl Authority {
    /// Load a CA from PEM (as found in a `kubernetes.io/tls` Secret).
    ///
    /// # Errors
    /// When either PEM does not parse or the key does not match.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| PkiError::Key(e.to_string()))?;
        // Check the certificate parses before anyone signs with it.
        Issuer::from_ca_cert_pem(cert_pem, &key)
            .map_err(|e| PkiError::Certificate(e.to_string()))?;
        let first = pem::parse(cert_pem).map_err(|e| PkiError::Pem(e.to_string()))?;
        Ok(Authority {
            cert_pem: pem::encode(&first),
            key,
        })
    }
}

/// A freshly issued certificate.
pub struct Issued {
    pub cert_pem: String,
    pub key: KeyPair,
}

/// Sign `spec` for `key`: self-signed when `issuer` is `None`.
///
/// # Errors
/// When the spec cannot be encoded as a certificate.
pub fn issue(
    spec: &CertSpec,
    key: KeyPair,
    issuer: Option<&Authority>,
) -> Result<Issued, PkiError> {
    let params = spec.to_params()?;
    let err = |e: rcgen::Error| PkiError::Certificate(e.to_string());
    let cert = match issuer {
        None => params.self_signed(&key).map_err(err)?,
        Some(ca) => {
            let signer = Issuer::from_ca_cert_pem(&ca.cert_pem, &ca.key).map_err(err)?;
            params.signed_by(&key, &signer).map_err(err)?
        }
    };
    Ok(Issued {
        cert_pem: cert.pem(),
        key,
    })
}

/// Split a PEM bundle into its certificates (other blocks are skipped).
pub(crate) fn split_certs(bundle: &str) -> Result<Vec<Vec<u8>>, PkiError> {
    let blocks = pem::parse_many(bundle).map_err(|e| PkiError::Pem(e.to_string()))?;
    Ok(blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(pem::Pem::into_contents)
        .collect())
}

pub(crate) fn der_to_pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_signs_a_leaf_that_chains_back() {
        let ca_key = KeyAlgorithm::Ecdsa(256).generate().expect("key");
        let mut ca_spec = CertSpec::new("test CA", time::Duration::days(1));
        ca_spec.is_ca = true;
        ca_spec.usages = vec![
            Usage::DigitalSignature,
            Usage::KeyEncipherment,
            Usage::CertSign,
        ];
        let ca = issue(&ca_spec, ca_key, None).expect("ca");
        let key_pem = encode_key(&ca.key, KeyEncoding::Pkcs1).expect("pem");
        let authority = Authority::from_pem(&ca.cert_pem, &key_pem).expect("authority");

        let mut leaf = CertSpec::new("client-1", time::Duration::hours(1));
        leaf.usages = vec![Usage::DigitalSignature, Usage::ClientAuth];
        leaf.dns_names = vec!["client.example.com".into()];
        let issued = issue(
            &leaf,
            KeyAlgorithm::Ecdsa(256).generate().expect("key"),
            Some(&authority),
        )
        .expect("leaf");
        let info = CertInfo::from_pem(&issued.cert_pem).expect("info");
        assert_eq!(info.subject, "CN = client-1");
        assert_eq!(info.issuer, "CN = test CA");
        assert_eq!(info.sans, vec!["DNS:client.example.com".to_string()]);
        assert!(
            info.ext_key_usages
                .contains(&"TLS Web Client Authentication".to_string())
        );
        assert!(!info.is_ca);
    }
}
