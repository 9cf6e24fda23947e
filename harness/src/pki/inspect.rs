//! Read a certificate the way `openssl x509 -text` and `s_client` show it, for
//! plans, reports and assertions.

use ::time::OffsetDateTime;
use serde::Serialize;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{ExtendedKeyUsage, GeneralName, KeyUsage, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

use super::PkiError;

/// What a person checks when reading a certificate.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CertInfo {
    /// X.509 version as printed (1 or 3).
    pub version: u32,
    /// openssl one-line form: `CN = aigw.ai-gateway.svc.cluster.local`.
    pub subject: String,
    pub issuer: String,
    /// RFC 2253 form, as nginx's `$ssl_client_s_dn` prints it: `CN=a,O=b`.
    pub subject_rfc2253: String,
    pub serial: String,
    #[serde(with = "::time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "::time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub sans: Vec<String>,
    pub key: String,
    pub signature_algorithm: String,
    pub is_ca: bool,
    pub key_usages: Vec<String>,
    pub ext_key_usages: Vec<String>,
    pub sha256: String,
}

impl CertInfo {
    pub(crate) fn from_pem(pem_text: &str) -> Result<Self, PkiError> {
        let block = ::pem::parse(pem_text).map_err(|e| PkiError::Pem(e.to_string()))?;
        Self::from_der(block.contents())
    }

    pub(crate) fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| PkiError::Certificate(e.to_string()))?;
        let mut sans = Vec::new();
        let mut is_ca = false;
        let mut key_usages = Vec::new();
        let mut ext_key_usages = Vec::new();
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        sans.push(match name {
                            GeneralName::DNSName(d) => format!("DNS:{d}"),
                            GeneralName::RFC822Name(e) => format!("email:{e}"),
                            GeneralName::URI(u) => format!("URI:{u}"),
                            GeneralName::IPAddress(bytes) => {
                                format!("IP Address:{}", ip_text(bytes))
                            }
                            other => format!("{other:?}"),
                        });
                    }
                }
                ParsedExtension::BasicConstraints(bc) => is_ca = bc.ca,
                ParsedExtension::KeyUsage(ku) => key_usages = key_usage_names(ku),
                ParsedExtension::ExtendedKeyUsage(eku) => ext_key_usages = eku_names(eku),
                _ => {}
            }
        }
        Ok(CertInfo {
            version: cert.version().0 + 1,
            subject: oneline(cert.subject()),
            issuer: oneline(cert.issuer()),
            subject_rfc2253: rfc2253(cert.subject()),
            serial: cert.raw_serial_as_string().replace(':', "").to_uppercase(),
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            sans,
            key: key_description(&cert),
            signature_algorithm: signature_name(&cert.signature_algorithm.algorithm.to_id_string()),
            is_ca,
            key_usages,
            ext_key_usages,
            sha256: hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der).as_ref()),
        })
    }

    /// One line for plans and reports.
    pub(crate) fn summary(&self) -> String {
        let mut parts = vec![
            format!("subject \"{}\"", self.subject),
            format!("issuer \"{}\"", self.issuer),
            format!("v{}", self.version),
            self.key.clone(),
            self.signature_algorithm.clone(),
            format!(
                "valid {} .. {}",
                openssl_date(self.not_before),
                openssl_date(self.not_after)
            ),
        ];
        if self.is_ca {
            parts.push("CA".into());
        }
        if !self.sans.is_empty() {
            parts.push(format!("SAN {}", self.sans.join(",")));
        }
        if !self.key_usages.is_empty() {
            parts.push(format!("usage {}", self.key_usages.join(",")));
        }
        if !self.ext_key_usages.is_empty() {
            parts.push(format!("EKU {}", self.ext_key_usages.join(",")));
        }
        parts.join("; ")
    }
}

/// `May 13 01:58:11 2025 GMT`, as openssl prints validity dates.
pub(crate) fn openssl_date(t: OffsetDateTime) -> String {
    let format = ::time::macros::format_description!(
        "[month repr:short] [day padding:space] [hour]:[minute]:[second] [year] GMT"
    );
    t.format(&format).unwrap_or_else(|_| t.to_string())
}

fn attr_short_name(oid: &str) -> &str {
    match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.5" => "serialNumber",
        "2.5.4.17" => "postalCode",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        other => other,
    }
}

fn attributes(name: &X509Name<'_>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for rdn in name.iter_rdn() {
        for attr in rdn.iter() {
            let key = attr_short_name(&attr.attr_type().to_id_string()).to_string();
            let value = attr
                .as_str()
                .map_or_else(|_| "<binary>".into(), str::to_string);
            out.push((key, value));
        }
    }
    out
}

/// openssl's one-line name form, in certificate order: `C = US, O = x, CN = y`.
pub(crate) fn oneline(name: &X509Name<'_>) -> String {
    attributes(name)
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// RFC 2253 (reverse order, escaped), as nginx prints `$ssl_client_s_dn`.
pub(crate) fn rfc2253(name: &X509Name<'_>) -> String {
    let escape = |v: &str| {
        let mut out = String::new();
        for (i, c) in v.chars().enumerate() {
            let needs = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
                || (i == 0 && (c == '#' || c == ' '))
                || (i == v.chars().count() - 1 && c == ' ');
            if needs {
                out.push('\\');
            }
            out.push(c);
        }
        out
    };
    attributes(name)
        .iter()
        .rev()
        .map(|(k, v)| format!("{k}={}", escape(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// A DER-encoded name (as in a `CertificateRequest`'s CA list), in openssl's form.
pub(crate) fn oneline_from_der(der: &[u8]) -> String {
    match X509Name::from_der(der) {
        Ok((_, name)) => oneline(&name),
        Err(_) => format!("<undecodable name, {} bytes>", der.len()),
    }
}

fn key_description(cert: &X509Certificate<'_>) -> String {
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => format!("RSA {}", rsa.key_size()),
        Ok(x509_parser::public_key::PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => "EC P-256".into(),
                Some("1.3.132.0.34") => "EC P-384".into(),
                Some("1.3.132.0.35") => "EC P-521".into(),
                other => format!("EC {}", other.unwrap_or("?")),
            }
        }
        _ => match spki.algorithm.algorithm.to_id_string().as_str() {
            "1.3.101.112" => "Ed25519".into(),
            other => other.to_string(),
        },
    }
}

fn signature_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "rsassaPss",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.3.101.112" => "ED25519",
        other => other,
    }
    .to_string()
}

fn key_usage_names(ku: &KeyUsage) -> Vec<String> {
    let flags = [
        (ku.digital_signature(), "Digital Signature"),
        (ku.non_repudiation(), "Non Repudiation"),
        (ku.key_encipherment(), "Key Encipherment"),
        (ku.data_encipherment(), "Data Encipherment"),
        (ku.key_agreement(), "Key Agreement"),
        (ku.key_cert_sign(), "Certificate Sign"),
        (ku.crl_sign(), "CRL Sign"),
        (ku.encipher_only(), "Encipher Only"),
        (ku.decipher_only(), "Decipher Only"),
    ];
    flags
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| n.to_string())
        .collect()
}

fn eku_names(eku: &ExtendedKeyUsage<'_>) -> Vec<String> {
    let flags = [
        (eku.any, "Any Extended Key Usage"),
        (eku.server_auth, "TLS Web Server Authentication"),
        (eku.client_auth, "TLS Web Client Authentication"),
        (eku.code_signing, "Code Signing"),
        (eku.email_protection, "E-mail Protection"),
        (eku.time_stamping, "Time Stamping"),
        (eku.ocsp_signing, "OCSP Signing"),
    ];
    flags
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| n.to_string())
        .collect()
}

fn ip_text(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string(),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(bytes);
            std::net::Ipv6Addr::from(a).to_string()
        }
        _ => hex(bytes),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The subject public key bits of a DER certificate (for matching a key to it).
pub(crate) fn public_key_bits(der: &[u8]) -> Result<Vec<u8>, PkiError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| PkiError::Certificate(e.to_string()))?;
    Ok(cert.public_key().subject_public_key.data.to_vec())
}

/// The `SubjectPublicKeyInfo` DER of a DER certificate.
pub(crate) fn spki_der(der: &[u8]) -> Result<Vec<u8>, PkiError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| PkiError::Certificate(e.to_string()))?;
    Ok(cert.public_key().raw.to_vec())
}
