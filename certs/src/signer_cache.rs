//! The certificates of recent `Mdm-Signature` signers, already read.
//!
//! Reading the embedded certificate (the `x509-cert` decode, the canonical-encoding check, its
//! SHA-256) and building its OpenSSL RSA key — OpenSSL 3 also exports a new key to its provider
//! on first use — cost more than half of a signature check that is not the RSA operation
//! itself (callgrind: ~110k instructions for the key, ~140k for the decode and the BER copy,
//! of ~540k per verification; docs/benchmarks.md). A Mac signs every request of a check-in
//! session with the same identity, so what its first request read serves the rest. Keyed by
//! the certificate's own DER, so an entry can only ever stand for exactly those bytes; what it
//! holds is derived from them alone (no verification outcome is cached: every body's
//! signature is still checked).
//!
//! Bounded: two generations of at most [`GENERATION`] certificates each; when the current one
//! is full it becomes the previous one and the oldest is dropped. A certificate used again is
//! moved to the current generation, so a busy Mac's stays.

use crate::signer::MdmSigner;
use cms::cert::x509::name::Name;
use cms::cert::x509::serial_number::SerialNumber;
use openssl::pkey::Public;
use openssl::rsa::Rsa;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Certificates per generation (~4 KiB each with OpenSSL's key).
const GENERATION: usize = 512;

/// What a request needs of a signer certificate, read once.
pub(crate) struct KnownCertificate {
    /// Issuer and serial number, to match the SignerInfo's `IssuerAndSerialNumber`.
    pub issuer: Name,
    pub serial: SerialNumber,
    /// The RSA public key, when the certificate has one (the fast path handles only RSA).
    pub rsa_key: Option<Rsa<Public>>,
    /// The identity the request is then known by (DER, SHA-256, notAfter).
    pub signer: MdmSigner,
}

struct Generations<V> {
    limit: usize,
    current: HashMap<Vec<u8>, V>,
    previous: HashMap<Vec<u8>, V>,
}

impl<V: Clone> Generations<V> {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            current: HashMap::new(),
            previous: HashMap::new(),
        }
    }

    fn get(&mut self, key: &[u8]) -> Option<V> {
        if let Some(v) = self.current.get(key) {
            return Some(v.clone());
        }
        let v = self.previous.remove(key)?;
        self.insert(key, v.clone());
        Some(v)
    }

    fn insert(&mut self, key: &[u8], value: V) {
        if self.current.len() >= self.limit {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key.to_vec(), value);
    }
}

type Cache = Mutex<Generations<Arc<KnownCertificate>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(Generations::new(GENERATION)))
}

/// The certificate whose DER is `der`, read by `read` if it is not cached. `None` when `read`
/// cannot (the caller then leaves the message to OpenSSL); such certificates are not cached.
pub(crate) fn certificate(
    der: &[u8],
    read: impl FnOnce() -> Option<KnownCertificate>,
) -> Option<Arc<KnownCertificate>> {
    if let Some(c) = cache().lock().ok().and_then(|mut g| g.get(der)) {
        return Some(c);
    }
    // Read outside the lock: two threads may read the same certificate once each, which is
    // harmless.
    let known = Arc::new(read()?);
    if let Ok(mut g) = cache().lock() {
        g.insert(der, known.clone());
    }
    Some(known)
}

/// Is the certificate with this DER cached (tests)?
#[cfg(test)]
pub(crate) fn cached(der: &[u8]) -> bool {
    cache()
        .lock()
        .map(|g| g.current.contains_key(der) || g.previous.contains_key(der))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_used_again_stay_and_the_oldest_go() {
        let mut g = Generations::new(2);
        for name in [&b"a"[..], b"b", b"c"] {
            g.insert(name, name.to_vec());
        }
        // "c" filled a new generation; "a" and "b" are the previous one.
        assert_eq!(
            g.get(b"a").as_deref(),
            Some(&b"a"[..]),
            "a used again: moved to the current generation"
        );
        g.insert(b"d", b"d".to_vec()); // current {c, a} is full: it becomes the previous one
        assert!(g.get(b"b").is_none(), "b, not used again, is gone");
        for name in [&b"a"[..], b"c", b"d"] {
            assert_eq!(g.get(name).as_deref(), Some(name));
        }
        assert!(g.current.len() <= 2 && g.previous.len() <= 2);
    }
}
