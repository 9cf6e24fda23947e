//! Just enough DER to turn a PKCS#8 key into the "traditional" PEM forms
//! (`RSA PRIVATE KEY`, `EC PRIVATE KEY`) that cert-manager writes by default.

use super::PkiError;

const SEQUENCE: u8 = 0x30;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const INTEGER: u8 = 0x02;
const CONTEXT_0: u8 = 0xa0;

const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
}

fn bad(what: &str) -> PkiError {
    PkiError::Key(format!("malformed PKCS#8 key: {what}"))
}

/// Read one TLV from the front of `input`, returning it and the rest.
fn read(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), PkiError> {
    let (&tag, rest) = input.split_first().ok_or_else(|| bad("truncated"))?;
    let (&first, rest) = rest.split_first().ok_or_else(|| bad("truncated length"))?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return Err(bad("bad length"));
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(bad("content shorter than its length"));
    }
    Ok((
        Tlv {
            tag,
            content: &rest[..len],
        },
        &rest[len..],
    ))
}

fn read_all(mut input: &[u8]) -> Result<Vec<Tlv<'_>>, PkiError> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (tlv, rest) = read(input)?;
        out.push(tlv);
        input = rest;
    }
    Ok(out)
}

fn write(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// PKCS#8 → (PEM label, DER) in the traditional form, or `None` for key types
/// that have no traditional form (Ed25519).
pub(crate) fn pkcs8_to_traditional(
    pkcs8: &[u8],
) -> Result<Option<(&'static str, Vec<u8>)>, PkiError> {
    let (outer, _) = read(pkcs8)?;
    if outer.tag != SEQUENCE {
        return Err(bad("not a SEQUENCE"));
    }
    let fields = read_all(outer.content)?;
    let [version, algorithm, key, ..] = fields.as_slice() else {
        return Err(bad("missing fields"));
    };
    if version.tag != INTEGER || algorithm.tag != SEQUENCE || key.tag != OCTET_STRING {
        return Err(bad("unexpected field types"));
    }
    let algorithm = read_all(algorithm.content)?;
    let Some(oid) = algorithm.first().filter(|t| t.tag == OID) else {
        return Err(bad("no algorithm OID"));
    };
    if oid.content == RSA_ENCRYPTION {
        // The OCTET STRING holds the PKCS#1 RSAPrivateKey as is.
        return Ok(Some(("RSA PRIVATE KEY", key.content.to_vec())));
    }
    if oid.content == EC_PUBLIC_KEY {
        let curve = algorithm
            .get(1)
            .filter(|t| t.tag == OID)
            .ok_or_else(|| bad("no curve"))?;
        // SEC1 ECPrivateKey { version, privateKey, [0] parameters, [1] publicKey }:
        // PKCS#8 leaves out the parameters; OpenSSL needs them in the SEC1 form.
        let (ec, _) = read(key.content)?;
        let parts = read_all(ec.content)?;
        let mut body = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            if part.tag == CONTEXT_0 {
                continue;
            }
            body.extend(write(part.tag, part.content));
            if i == 1 {
                body.extend(write(CONTEXT_0, &write(OID, curve.content)));
            }
        }
        return Ok(Some(("EC PRIVATE KEY", write(SEQUENCE, &body))));
    }
    Ok(None)
}
