//! The RSA public keys of recent `Mdm-Signature` signers, already built.
//!
//! Building an OpenSSL key from a modulus and exponent, and OpenSSL 3 exporting it to its
//! provider on the first verification, cost about a quarter of a signature check (~110k of
//! ~455k instructions per RSA-2048 verification, callgrind; docs/benchmarks.md). A Mac signs
//! every request of a check-in session with the same identity, so the key of its first
//! request serves the rest. Keyed by the key's own bytes (the SubjectPublicKeyInfo's
//! `RSAPublicKey`), so an entry can only ever stand for exactly that key.
//!
//! Bounded: two generations of at most [`GENERATION`] keys each; when the current one is
//! full it becomes the previous one and the oldest is dropped. A key used again is moved to
//! the current generation, so a busy Mac's key stays.

use openssl::pkey::{PKey, Public};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Keys per generation (~1–2 KiB each with OpenSSL's provider copy).
const GENERATION: usize = 1024;

struct Generations {
    limit: usize,
    current: HashMap<Vec<u8>, PKey<Public>>,
    previous: HashMap<Vec<u8>, PKey<Public>>,
}

impl Generations {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            current: HashMap::new(),
            previous: HashMap::new(),
        }
    }

    fn get(&mut self, key_der: &[u8]) -> Option<PKey<Public>> {
        if let Some(k) = self.current.get(key_der) {
            return Some(k.clone());
        }
        let k = self.previous.remove(key_der)?;
        self.insert(key_der, k.clone());
        Some(k)
    }

    fn insert(&mut self, key_der: &[u8], key: PKey<Public>) {
        if self.current.len() >= self.limit {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key_der.to_vec(), key);
    }
}

fn cache() -> &'static Mutex<Generations> {
    static CACHE: OnceLock<Mutex<Generations>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(Generations::new(GENERATION)))
}

/// The key whose DER `RSAPublicKey` is `key_der`, built by `build` if it is not cached.
pub(crate) fn rsa_key(
    key_der: &[u8],
    build: impl FnOnce() -> Option<PKey<Public>>,
) -> Option<PKey<Public>> {
    if let Some(k) = cache().lock().ok().and_then(|mut g| g.get(key_der)) {
        return Some(k);
    }
    // Built outside the lock: two threads may build the same key once each, which is harmless.
    let key = build()?;
    if let Ok(mut g) = cache().lock() {
        g.insert(key_der, key.clone());
    }
    Some(key)
}

/// Is the key with these bytes cached (tests)?
#[cfg(test)]
pub(crate) fn cached(key_der: &[u8]) -> bool {
    cache()
        .lock()
        .map(|g| g.current.contains_key(key_der) || g.previous.contains_key(key_der))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::rsa::Rsa;

    #[test]
    fn keys_used_again_stay_and_the_oldest_go() {
        let key = PKey::public_key_from_der(
            &Rsa::generate(1024)
                .and_then(|r| r.public_key_to_der())
                .expect("key"),
        )
        .expect("public key");
        let mut g = Generations::new(2);
        for name in [&b"a"[..], b"b", b"c"] {
            g.insert(name, key.clone());
        }
        // "c" filled a new generation; "a" and "b" are the previous one.
        assert!(
            g.get(b"a").is_some(),
            "a used again: moved to the current generation"
        );
        g.insert(b"d", key.clone()); // current {c, a} is full: it becomes the previous one
        assert!(g.get(b"b").is_none(), "b, not used again, is gone");
        for name in [&b"a"[..], b"c", b"d"] {
            assert!(g.get(name).is_some());
        }
        assert!(g.current.len() <= 2 && g.previous.len() <= 2);
    }
}
