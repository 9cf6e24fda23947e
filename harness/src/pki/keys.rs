//! Private keys: generation off the critical path, and the PEM encodings that
//! cert-manager and openssl write.
//!
//! RSA-2048 generation costs 25–150 ms per key; a run needs a dozen. A [`KeyPool`]
//! starts generating as soon as a run knows how many it will need, on every core,
//! while scenarios are being parsed and nginx is starting.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};

use rcgen::{
    KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519, PKCS_RSA_SHA256,
};
use rcgen::{PKCS_ECDSA_P521_SHA512, RsaKeySize};

use super::PkiError;
use super::der;

/// A key type as cert-manager's `privateKey` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    Rsa(u32),
    Ecdsa(u32),
    Ed25519,
}

impl KeyAlgorithm {
    /// cert-manager's rules: RSA 2048/4096/8192 (default 2048), ECDSA 256/384/521
    /// (default 256), Ed25519 ignores the size.
    pub(crate) fn from_cert_manager(
        algorithm: Option<&str>,
        size: Option<u32>,
    ) -> Result<Self, String> {
        match algorithm.unwrap_or("RSA") {
            "RSA" => match size.unwrap_or(2048) {
                s @ (2048 | 3072 | 4096) => Ok(KeyAlgorithm::Rsa(s)),
                8192 => Err(
                    "RSA 8192 is valid for cert-manager but the local substrate's \
                             key generator stops at 4096"
                        .into(),
                ),
                s => Err(format!("RSA key size {s} is not one of 2048, 4096, 8192")),
            },
            "ECDSA" => match size.unwrap_or(256) {
                s @ (256 | 384 | 521) => Ok(KeyAlgorithm::Ecdsa(s)),
                s => Err(format!("ECDSA key size {s} is not one of 256, 384, 521")),
            },
            "Ed25519" => Ok(KeyAlgorithm::Ed25519),
            other => Err(format!(
                "unknown private key algorithm `{other}` (RSA, ECDSA or Ed25519)"
            )),
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            KeyAlgorithm::Rsa(bits) => format!("RSA {bits}"),
            KeyAlgorithm::Ecdsa(bits) => format!("ECDSA P-{bits}"),
            KeyAlgorithm::Ed25519 => "Ed25519".into(),
        }
    }

    /// A new key of this algorithm.
    ///
    /// # Errors
    /// When the crypto library refuses to generate it.
    pub fn generate(&self) -> Result<KeyPair, PkiError> {
        let key = match self {
            KeyAlgorithm::Rsa(bits) => {
                let size = match bits {
                    2048 => RsaKeySize::_2048,
                    3072 => RsaKeySize::_3072,
                    4096 => RsaKeySize::_4096,
                    other => return Err(PkiError::Key(format!("unsupported RSA size {other}"))),
                };
                KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, size)
            }
            KeyAlgorithm::Ecdsa(256) => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256),
            KeyAlgorithm::Ecdsa(384) => KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384),
            KeyAlgorithm::Ecdsa(521) => KeyPair::generate_for(&PKCS_ECDSA_P521_SHA512),
            KeyAlgorithm::Ecdsa(other) => {
                return Err(PkiError::Key(format!("unsupported ECDSA size {other}")));
            }
            KeyAlgorithm::Ed25519 => KeyPair::generate_for(&PKCS_ED25519),
        };
        key.map_err(|e| PkiError::Key(e.to_string()))
    }
}

/// How a private key is written to PEM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyEncoding {
    /// `BEGIN PRIVATE KEY`: what `openssl genrsa` (3.x) writes.
    Pkcs8,
    /// `BEGIN RSA PRIVATE KEY` / `BEGIN EC PRIVATE KEY`: cert-manager's default.
    Pkcs1,
}

/// Encode `key` as PEM. Ed25519 is always PKCS#8, as in cert-manager.
///
/// # Errors
/// When the key cannot be serialised in that encoding.
pub fn encode_key(key: &KeyPair, encoding: KeyEncoding) -> Result<String, PkiError> {
    let pkcs8 = key.serialize_der();
    let (label, body) = match encoding {
        KeyEncoding::Pkcs8 => ("PRIVATE KEY", pkcs8),
        KeyEncoding::Pkcs1 => match der::pkcs8_to_traditional(&pkcs8)? {
            Some(traditional) => traditional,
            None => ("PRIVATE KEY", pkcs8),
        },
    };
    Ok(pem::encode(&pem::Pem::new(label, body)))
}

#[derive(Default)]
struct PoolState {
    ready: HashMap<KeyAlgorithm, Vec<KeyPair>>,
    /// Keys scheduled on a worker but not produced yet.
    pending: HashMap<KeyAlgorithm, usize>,
    failures: Vec<String>,
}

/// Keys generated ahead of need on background threads.
#[derive(Clone, Default)]
pub struct KeyPool {
    state: Arc<(Mutex<PoolState>, Condvar)>,
}

impl KeyPool {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Start generating `count` keys of `algorithm` on up to one thread per core.
    pub(crate) fn prefetch(&self, algorithm: KeyAlgorithm, count: usize) {
        if count == 0 {
            return;
        }
        {
            let mut state = lock(&self.state.0);
            *state.pending.entry(algorithm).or_default() += count;
        }
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let workers = cores.min(count);
        let per_worker = count.div_ceil(workers);
        let mut left = count;
        for _ in 0..workers {
            let mine = per_worker.min(left);
            left -= mine;
            let pool = self.clone();
            std::thread::spawn(move || {
                for _ in 0..mine {
                    let result = algorithm.generate();
                    let (lock_, cond) = &*pool.state;
                    let mut state = lock(lock_);
                    if let Some(n) = state.pending.get_mut(&algorithm) {
                        *n = n.saturating_sub(1);
                    }
                    match result {
                        Ok(key) => state.ready.entry(algorithm).or_default().push(key),
                        Err(e) => state.failures.push(e.to_string()),
                    }
                    cond.notify_all();
                }
            });
        }
    }

    /// A key of `algorithm`: a ready one, one that is being generated, or a new one.
    pub(crate) fn take(&self, algorithm: KeyAlgorithm) -> Result<KeyPair, PkiError> {
        let (lock_, cond) = &*self.state;
        let mut state = lock(lock_);
        loop {
            if let Some(key) = state.ready.get_mut(&algorithm).and_then(Vec::pop) {
                return Ok(key);
            }
            if state.pending.get(&algorithm).copied().unwrap_or(0) == 0 {
                break;
            }
            state = cond
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        drop(state);
        algorithm.generate()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cert_manager_key_defaults() {
        assert_eq!(
            KeyAlgorithm::from_cert_manager(None, None),
            Ok(KeyAlgorithm::Rsa(2048))
        );
        assert_eq!(
            KeyAlgorithm::from_cert_manager(Some("ECDSA"), None),
            Ok(KeyAlgorithm::Ecdsa(256))
        );
        assert!(KeyAlgorithm::from_cert_manager(Some("RSA"), Some(1024)).is_err());
        assert!(KeyAlgorithm::from_cert_manager(Some("DSA"), None).is_err());
    }

    #[test]
    fn pool_hands_out_prefetched_and_fresh_keys() {
        let pool = KeyPool::new();
        pool.prefetch(KeyAlgorithm::Ecdsa(256), 3);
        let keys: Vec<_> = (0..5)
            .map(|_| pool.take(KeyAlgorithm::Ecdsa(256)).expect("key"))
            .collect();
        let distinct: std::collections::HashSet<_> =
            keys.iter().map(|k| k.public_key_raw().to_vec()).collect();
        assert_eq!(distinct.len(), 5);
    }

    #[test]
    fn pkcs1_encodings_load_back_in_openssl_forms() {
        for alg in [
            KeyAlgorithm::Ecdsa(256),
            KeyAlgorithm::Ecdsa(384),
            KeyAlgorithm::Rsa(2048),
        ] {
            let key = alg.generate().expect("key");
            let pem = encode_key(&key, KeyEncoding::Pkcs1).expect("encode");
            let expected = if matches!(alg, KeyAlgorithm::Rsa(_)) {
                "RSA PRIVATE KEY"
            } else {
                "EC PRIVATE KEY"
            };
            assert!(pem.contains(&format!("BEGIN {expected}")), "{pem}");
            let back = KeyPair::from_pem(&pem).expect("reloads");
            assert_eq!(back.public_key_raw(), key.public_key_raw());
        }
    }
}
