//! Secrets at rest: AES-256-GCM under a key-encryption key (KEK) kept outside the database.
//!
//! A sealed value is `version (1) || nonce (12) || ciphertext || tag (16)`. The associated data
//! names the record the secret belongs to (e.g. `bootstrap-token:<UDID>`), so a ciphertext copied
//! onto another row fails to open. A database dump alone reveals no secret.

use openssl::rand::rand_bytes;
use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};
use secrecy::SecretString;
use std::fmt;
use std::path::Path;
use zeroize::Zeroize;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
pub const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("sealed secret is malformed")]
    Malformed,
    #[error("sealed secret does not open under this key-encryption key (wrong key or tampered)")]
    Open,
    #[error("crypto failure: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
    #[error("key-encryption key: {0}")]
    Key(String),
}

/// Every kind of secret Russet seals, named by the record it belongs to. The associated data
/// built from it ([`Sealed::aad`]) is a stored format: a changed string makes every value
/// sealed under the old one unreadable, so the list lives here, once, and a test pins it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealed<'a> {
    /// A lock or wipe PIN in the escrow table, by its command.
    UnlockPin { command_uuid: &'a str },
    /// A queued command payload that carries a secret (a PIN, an attached profile, a
    /// password hash), by its command.
    CommandPayload { command_uuid: &'a str },
    /// A bootstrap token escrowed by a Mac (`SetBootstrapToken`), by its device.
    BootstrapToken { device_id: &'a str },
    /// An `UnlockToken` from a TokenUpdate, by its enrollment.
    UnlockToken { enrollment_id: &'a str },
    /// Russet's setup for a DEP profile (attached profile, AccountConfiguration).
    DepProfileSetup { profile_uuid: &'a str },
    /// The private key of a DEP link (its token is encrypted to it).
    DepLinkKey { link: &'a str },
    /// A DEP link's OAuth tokens, decrypted from the server token file.
    DepLinkToken { link: &'a str },
    /// The private key of an imported push certificate, by its topic.
    PushCertificateKey { topic: &'a str },
    /// The key of a pending push CSR, by the CSR's own text: a sealed key moved to another
    /// CSR row won't open.
    PushCsrKey { csr_pem: &'a str },
    /// The SCEP CA's private key (one per database).
    ScepCaKey,
    /// One version of an uploaded configuration profile, the whole `.mobileconfig` (it may
    /// hold passwords), by its identifier and version number.
    ProfileVersion { identifier: &'a str, version: i64 },
    /// The private key of a FileVault escrow key pair, by its certificate's SHA-256 (hex).
    FileVaultEscrowKey { id: &'a str },
    /// An escrowed FileVault personal recovery key, by its row.
    FileVaultRecoveryKey { id: &'a str },
    /// The envelope a FileVault key arrived in, kept as received, by its row.
    FileVaultEnvelope { id: &'a str },
    /// A Recovery Lock password in the escrow table, by the SetRecoveryLock that sets it.
    RecoveryLockPassword { command_uuid: &'a str },
    /// A group's Parallels Desktop license key (issue 15), by the group's name.
    ParallelsLicenseKey { group: &'a str },
}

impl Sealed<'_> {
    /// The AES-GCM associated data.
    pub fn aad(&self) -> String {
        match self {
            Sealed::UnlockPin { command_uuid } => format!("unlock-pin:{command_uuid}"),
            Sealed::CommandPayload { command_uuid } => format!("command-payload:{command_uuid}"),
            Sealed::BootstrapToken { device_id } => format!("bootstrap-token:{device_id}"),
            Sealed::UnlockToken { enrollment_id } => format!("unlock-token:{enrollment_id}"),
            Sealed::DepProfileSetup { profile_uuid } => format!("dep-profile-setup:{profile_uuid}"),
            Sealed::DepLinkKey { link } => format!("dep-link-key:{link}"),
            Sealed::DepLinkToken { link } => format!("dep-link-token:{link}"),
            Sealed::PushCertificateKey { topic } => format!("push-certificate-key:{topic}"),
            Sealed::PushCsrKey { csr_pem } => format!(
                "push-csr-key:{}",
                hex::encode(openssl::sha::sha256(csr_pem.as_bytes()))
            ),
            Sealed::ScepCaKey => "scep-ca:1:key".to_string(),
            Sealed::ProfileVersion {
                identifier,
                version,
            } => format!("profile-version:{identifier}:{version}"),
            Sealed::FileVaultEscrowKey { id } => format!("filevault-escrow-key:{id}"),
            Sealed::FileVaultRecoveryKey { id } => format!("filevault-recovery-key:{id}"),
            Sealed::FileVaultEnvelope { id } => format!("filevault-envelope:{id}"),
            Sealed::RecoveryLockPassword { command_uuid } => {
                format!("recovery-lock-password:{command_uuid}")
            }
            Sealed::ParallelsLicenseKey { group } => format!("parallels-license-key:{group}"),
        }
    }
}

/// The key-encryption key. Never printed: `Debug` is redacted.
pub struct SecretBox {
    key: [u8; KEY_LEN],
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBox(<redacted>)")
    }
}

impl Drop for SecretBox {
    fn drop(&mut self) {
        // Don't leave the KEK in freed memory.
        self.key.zeroize();
    }
}

/// A secret shown to an admin (a PIN, a recovery key, a password) as a [`SecretString`]:
/// redacted in `Debug`, wiped when dropped. The `String` it came in is wiped here too (the copy
/// is made at its exact length, so no reallocation leaves another copy behind).
pub fn secret_text(mut text: String) -> SecretString {
    let secret = SecretString::from(text.as_str());
    text.zeroize();
    secret
}

/// Plaintext opened from the vault, as a [`secret_text`]; the buffer is wiped either way.
pub fn secret_utf8(mut bytes: Vec<u8>) -> Result<SecretString, SecretError> {
    let secret = std::str::from_utf8(&bytes)
        .map(SecretString::from)
        .map_err(|_| SecretError::Malformed);
    bytes.zeroize();
    secret
}

impl SecretBox {
    pub fn from_key(key: [u8; KEY_LEN]) -> Self {
        SecretBox { key }
    }

    pub fn generate() -> Result<Self, SecretError> {
        let mut key = [0u8; KEY_LEN];
        rand_bytes(&mut key)?;
        Ok(SecretBox { key })
    }

    /// Parse the KEK from its text form: 64 hex characters (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self, SecretError> {
        let bytes = hex::decode(text.trim()).map_err(|_| SecretError::Key("not hex".into()))?;
        let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| {
            SecretError::Key(format!("must be {KEY_LEN} bytes (64 hex characters)"))
        })?;
        Ok(SecretBox { key })
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.key)
    }

    /// Load the KEK from `path`, creating it (mode 0600) if it does not exist.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), SecretError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((Self::from_hex(&text)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let kek = Self::generate()?;
                crate::fsutil::write_private(path, kek.to_hex().as_bytes())
                    .map_err(|e| SecretError::Key(format!("writing {}: {e}", path.display())))?;
                Ok((kek, true))
            }
            Err(e) => Err(SecretError::Key(format!("reading {}: {e}", path.display()))),
        }
    }

    /// Seal a secret for the record `what` names.
    pub fn seal(&self, what: Sealed<'_>, plaintext: &[u8]) -> Result<Vec<u8>, SecretError> {
        let aad = what.aad();
        let mut nonce = [0u8; NONCE_LEN];
        rand_bytes(&mut nonce)?;
        let mut tag = [0u8; TAG_LEN];
        let ct = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(&nonce),
            aad.as_bytes(),
            plaintext,
            &mut tag,
        )?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len() + TAG_LEN);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Open a secret sealed for the record `what` names.
    pub fn open(&self, what: Sealed<'_>, sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
        let aad = what.aad();
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != VERSION {
            return Err(SecretError::Malformed);
        }
        let nonce = &sealed[1..1 + NONCE_LEN];
        let (ct, tag) = sealed[1 + NONCE_LEN..].split_at(sealed.len() - 1 - NONCE_LEN - TAG_LEN);
        decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(nonce),
            aad.as_bytes(),
            ct,
            tag,
        )
        .map_err(|_| SecretError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Sealed<'static> = Sealed::UnlockPin { command_uuid: "a" };
    const B: Sealed<'static> = Sealed::UnlockPin { command_uuid: "b" };

    #[test]
    fn seal_then_open_round_trips_and_hides_plaintext() {
        let kek = SecretBox::generate().expect("kek");
        let sealed = kek
            .seal(Sealed::BootstrapToken { device_id: "ABC" }, b"secret token")
            .expect("seal");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            kek.open(Sealed::BootstrapToken { device_id: "ABC" }, &sealed)
                .expect("open"),
            b"secret token"
        );
    }

    #[test]
    fn other_record_other_key_or_tampering_fail_to_open() {
        let kek = SecretBox::generate().expect("kek");
        let sealed = kek.seal(A, b"x").expect("seal");
        assert!(matches!(kek.open(B, &sealed), Err(SecretError::Open)));
        let other = SecretBox::generate().expect("kek");
        assert!(matches!(other.open(A, &sealed), Err(SecretError::Open)));
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(kek.open(A, &bad), Err(SecretError::Open)));
        assert!(matches!(
            kek.open(A, &sealed[..5]),
            Err(SecretError::Malformed)
        ));
    }

    #[test]
    fn key_text_form_round_trips_and_rejects_garbage() {
        let kek = SecretBox::generate().expect("kek");
        let again = SecretBox::from_hex(&format!(" {}\n", kek.to_hex())).expect("parse");
        let sealed = kek.seal(A, b"x").expect("seal");
        assert_eq!(again.open(A, &sealed).expect("open"), b"x");
        assert!(SecretBox::from_hex("zz").is_err());
        assert!(SecretBox::from_hex("abcd").is_err());
        assert_eq!(format!("{kek:?}"), "SecretBox(<redacted>)");
    }

    /// The associated data is a stored format: these exact strings open every secret already
    /// sealed in databases in the field.
    #[test]
    fn associated_data_strings_are_stable() {
        let cases = [
            (Sealed::UnlockPin { command_uuid: "C" }, "unlock-pin:C"),
            (
                Sealed::CommandPayload { command_uuid: "C" },
                "command-payload:C",
            ),
            (
                Sealed::BootstrapToken { device_id: "D" },
                "bootstrap-token:D",
            ),
            (Sealed::UnlockToken { enrollment_id: "E" }, "unlock-token:E"),
            (
                Sealed::DepProfileSetup { profile_uuid: "P" },
                "dep-profile-setup:P",
            ),
            (Sealed::DepLinkKey { link: "L" }, "dep-link-key:L"),
            (Sealed::DepLinkToken { link: "L" }, "dep-link-token:L"),
            (
                Sealed::PushCertificateKey { topic: "T" },
                "push-certificate-key:T",
            ),
            (
                Sealed::PushCsrKey { csr_pem: "x" },
                "push-csr-key:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881",
            ),
            (Sealed::ScepCaKey, "scep-ca:1:key"),
            (
                Sealed::ProfileVersion {
                    identifier: "com.acme.wifi",
                    version: 3,
                },
                "profile-version:com.acme.wifi:3",
            ),
            (
                Sealed::FileVaultEscrowKey { id: "K" },
                "filevault-escrow-key:K",
            ),
            (
                Sealed::FileVaultRecoveryKey { id: "R" },
                "filevault-recovery-key:R",
            ),
            (
                Sealed::FileVaultEnvelope { id: "R" },
                "filevault-envelope:R",
            ),
            (
                Sealed::RecoveryLockPassword { command_uuid: "C" },
                "recovery-lock-password:C",
            ),
            (
                Sealed::ParallelsLicenseKey { group: "G" },
                "parallels-license-key:G",
            ),
        ];
        for (what, aad) in cases {
            assert_eq!(what.aad(), aad, "{what:?}");
        }
    }
}
