//! Admin API tokens: random, shown once, stored only as a SHA-256 hash, compared in constant
//! time. A token is high-entropy, so a fast hash is enough (no password stretching needed).

use crate::store::AdminTokenRecord;
use base64::Engine;
use openssl::rand::rand_bytes;
use openssl::sha::sha256;

const PREFIX: &str = "russet_";

/// A fresh token: `russet_` + 32 random bytes in URL-safe base64.
pub fn generate() -> Result<String, openssl::error::ErrorStack> {
    let mut bytes = [0u8; 32];
    rand_bytes(&mut bytes)?;
    Ok(format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

pub fn hash(token: &str) -> [u8; 32] {
    sha256(token.as_bytes())
}

/// The stored token matching `presented`, comparing every stored hash in constant time so the
/// answer's timing says nothing about how close a guess was.
pub fn find<'a>(tokens: &'a [AdminTokenRecord], presented: &str) -> Option<&'a AdminTokenRecord> {
    let h = hash(presented);
    let mut found = None;
    for t in tokens {
        if t.hash.len() == h.len() && openssl::memcmp::eq(&t.hash, &h) && found.is_none() {
            found = Some(t);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_matches() {
        let token = generate().expect("token");
        assert!(token.starts_with(PREFIX) && token.len() > 40);
        let rec = AdminTokenRecord {
            id: 1,
            name: "admin".into(),
            role: "admin".into(),
            hash: hash(&token).to_vec(),
        };
        assert_eq!(find(std::slice::from_ref(&rec), &token), Some(&rec));
        assert_eq!(find(std::slice::from_ref(&rec), &format!("{token}x")), None);
        assert_eq!(find(std::slice::from_ref(&rec), ""), None);
        assert_ne!(generate().expect("a"), generate().expect("b"));
    }
}
