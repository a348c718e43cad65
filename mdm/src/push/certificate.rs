//! The push certificate lifecycle: a CSR whose key never leaves Russet, import (PEM, PKCS#12,
//! or the Apple portal's certificate alone for a pending CSR), renewal that keeps the topic,
//! status with expiry warnings, and the vendor's CSR-signing service.
//!
//! The topic cannot change in an installed MDM payload: a certificate with another topic cuts
//! off every enrolled Mac until it re-enrolls, so import refuses it unless forced.

use super::SETTING_PUSH_ALERT;
use crate::secrets::{Sealed, SecretBox};
use crate::service::{SETTING_PUSH_TOPIC, ServiceError};
use crate::store::{PushCertificateRecord, Store};
use crate::timefmt::now_ms;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use russet_apns::PushCertificate;
use russet_certs::pushcert::{self, PushCsrSubject};

/// Days before expiry at which status warns.
pub const WARN_DAYS: [i64; 3] = [30, 14, 7];

/// What an admin uploads.
pub enum ImportInput {
    /// Certificate PEM (the portal's `MDM_….pem`), with the key PEM or alone (then the key is
    /// the one Russet generated for its pending CSR).
    Pem {
        cert_pem: Vec<u8>,
        key_pem: Option<Vec<u8>>,
    },
    /// PKCS#12 / PFX with its password.
    Pkcs12 { der: Vec<u8>, password: String },
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PushCertStatus {
    pub topic: String,
    pub subject: String,
    pub not_after: String,
    pub days_left: i64,
    /// "expired", "expires in N days" at 30/14/7 days, or none.
    pub warning: Option<String>,
    /// The last time APNs refused this certificate, if it did.
    pub alert: Option<String>,
    pub imported_at: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportOutcome {
    pub status: PushCertStatus,
    /// The topic changed (only with `force_new_topic`): every enrolled Mac must re-enroll.
    pub topic_changed_from: Option<String>,
}

fn bad(msg: impl Into<String>) -> ServiceError {
    ServiceError::BadRequest(msg.into())
}

/// Generate an RSA 2048 key (sealed, stored, never exported) and a CSR for it.
pub async fn create_csr(
    store: &dyn Store,
    vault: &SecretBox,
    subject: &PushCsrSubject,
) -> Result<String, ServiceError> {
    let (key, csr) = pushcert::generate_push_csr(subject).map_err(|e| bad(e.to_string()))?;
    let csr_pem = String::from_utf8(csr.to_pem().map_err(crate::secrets::SecretError::from)?)
        .map_err(|_| bad("CSR is not text"))?;
    let key_pem = key
        .private_key_to_pem_pkcs8()
        .map_err(crate::secrets::SecretError::from)?;
    let sealed = vault.seal(Sealed::PushCsrKey { csr_pem: &csr_pem }, &key_pem)?;
    store
        .insert_push_csr_key(&sealed, &csr_pem, now_ms())
        .await?;
    Ok(csr_pem)
}

/// Import a push certificate and make it the active one.
pub async fn import(
    store: &dyn Store,
    vault: &SecretBox,
    input: ImportInput,
    force_new_topic: bool,
) -> Result<ImportOutcome, ServiceError> {
    let (cert, key) = read_input(store, vault, input).await?;
    let cert_pem = cert.to_pem().map_err(crate::secrets::SecretError::from)?;
    let key_pem = key
        .private_key_to_pem_pkcs8()
        .map_err(crate::secrets::SecretError::from)?;
    let push = PushCertificate::from_pem(&cert_pem, &key_pem).map_err(|e| bad(e.to_string()))?;
    let now = now_ms();
    if push.not_after_unix().saturating_mul(1000) <= now {
        return Err(bad(format!(
            "the push certificate expired on {}",
            crate::timefmt::rfc3339(push.not_after_unix().saturating_mul(1000))
        )));
    }
    let topic = push.topic().to_string();
    let previous = store.active_push_certificate().await?;
    let topic_changed_from = match &previous {
        Some(p) if p.topic != topic => {
            if !force_new_topic {
                return Err(ServiceError::Conflict(format!(
                    "this certificate's topic {topic} differs from the current {}: every enrolled \
                     Mac would stop receiving pushes until it re-enrolls (for DEP Macs, usually a \
                     wipe). Renew the existing certificate in Apple's portal with the same Apple \
                     Account instead, or import with force_new_topic if you really mean it",
                    p.topic
                )));
            }
            tracing::warn!(old = %p.topic, new = %topic, "push topic changed: every enrolled Mac must re-enroll");
            Some(p.topic.clone())
        }
        _ => None,
    };
    let subject = subject_line(&cert);
    let rec = PushCertificateRecord {
        id: 0,
        topic: topic.clone(),
        subject,
        cert_pem: String::from_utf8(cert_pem).map_err(|_| bad("certificate is not text"))?,
        key_sealed: vault.seal(Sealed::PushCertificateKey { topic: &topic }, &key_pem)?,
        not_after: push.not_after_unix().saturating_mul(1000),
        created_at: now,
    };
    store.insert_push_certificate(&rec).await?;
    store.set_setting(SETTING_PUSH_TOPIC, &topic).await?;
    // A new certificate starts with a clean slate.
    store.set_setting(SETTING_PUSH_ALERT, "").await?;
    let status = status(store)
        .await?
        .ok_or_else(|| bad("certificate vanished"))?;
    Ok(ImportOutcome {
        status,
        topic_changed_from,
    })
}

async fn read_input(
    store: &dyn Store,
    vault: &SecretBox,
    input: ImportInput,
) -> Result<(X509, PKey<Private>), ServiceError> {
    match input {
        ImportInput::Pkcs12 { der, password } => {
            russet_certs::scep::ensure_legacy_provider(); // old RC2-40 .p12 files
            let parsed = Pkcs12::from_der(&der)
                .and_then(|p| p.parse2(&password))
                .map_err(|_| bad("not a PKCS#12 file, or the password is wrong"))?;
            match (parsed.cert, parsed.pkey) {
                (Some(c), Some(k)) => Ok((c, k)),
                _ => Err(bad(
                    "the PKCS#12 file must hold a certificate and its private key",
                )),
            }
        }
        ImportInput::Pem { cert_pem, key_pem } => {
            let certs = pushcert::load_pem_certs(&cert_pem).map_err(|e| bad(e.to_string()))?;
            let cert = certs
                .into_iter()
                .next()
                .ok_or_else(|| bad("no certificate in the PEM"))?;
            // A combined PEM (what `openssl pkcs12 -nodes` writes: certificate and key in one
            // file) carries its own key; only a certificate alone is matched to a pending CSR.
            let key = match key_pem.as_deref().or_else(|| holds_private_key(&cert_pem)) {
                Some(k) => read_pem_key(k)?,
                None => pending_csr_key(store, vault, &cert).await?,
            };
            if !pushcert::public_key_matches(&cert, &key) {
                return Err(bad("the private key does not belong to the certificate"));
            }
            Ok((cert, key))
        }
    }
}

/// `pem` itself when it holds a private key block beside its certificate(s).
fn holds_private_key(pem: &[u8]) -> Option<&[u8]> {
    pem.windows(b"PRIVATE KEY-----".len())
        .any(|w| w == b"PRIVATE KEY-----")
        .then_some(pem)
}

/// The first private key in a PEM file (other blocks, such as certificates and the "Bag
/// Attributes" text `openssl pkcs12` writes, are skipped by OpenSSL's PEM reader).
fn read_pem_key(pem: &[u8]) -> Result<PKey<Private>, ServiceError> {
    if pem
        .windows(b"ENCRYPTED PRIVATE KEY".len())
        .any(|w| w == b"ENCRYPTED PRIVATE KEY")
        || pem
            .windows(b"Proc-Type: 4,ENCRYPTED".len())
            .any(|w| w == b"Proc-Type: 4,ENCRYPTED")
    {
        return Err(bad(
            "the private key is encrypted: export it unencrypted (`openssl pkcs12 -nodes`) or \
             import the PKCS#12 file with its password",
        ));
    }
    // An empty passphrase instead of OpenSSL's default callback, which would prompt on the
    // server's terminal for an encrypted key that slipped past the check above.
    PKey::private_key_from_pem_passphrase(pem, b"")
        .map_err(|_| bad("the key is not an unencrypted PEM private key"))
}

/// The key of the pending CSR this certificate was issued for.
async fn pending_csr_key(
    store: &dyn Store,
    vault: &SecretBox,
    cert: &X509,
) -> Result<PKey<Private>, ServiceError> {
    for pending in store.push_csr_keys().await? {
        let key_pem = vault.open(
            Sealed::PushCsrKey {
                csr_pem: &pending.csr_pem,
            },
            &pending.key_sealed,
        )?;
        if let Ok(key) = PKey::private_key_from_pem(&key_pem)
            && pushcert::public_key_matches(cert, &key)
        {
            return Ok(key);
        }
    }
    Err(bad(
        "no key given, and the certificate matches no CSR generated by Russet: import it with its \
         private key (PEM or PKCS#12)",
    ))
}

fn subject_line(cert: &X509) -> String {
    cert.subject_name()
        .entries()
        .filter_map(|e| {
            let name = e.object().nid().short_name().ok()?;
            Some(format!("{name}={}", e.data().to_string().ok()?))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Status of the active push certificate, if there is one.
pub async fn status(store: &dyn Store) -> Result<Option<PushCertStatus>, ServiceError> {
    let Some(rec) = store.active_push_certificate().await? else {
        return Ok(None);
    };
    let alert = store
        .setting(SETTING_PUSH_ALERT)
        .await?
        .filter(|a| !a.is_empty());
    let days_left = (rec.not_after - now_ms()).div_euclid(86_400_000);
    Ok(Some(PushCertStatus {
        warning: expiry_warning(days_left),
        topic: rec.topic,
        subject: rec.subject,
        not_after: crate::timefmt::rfc3339(rec.not_after),
        days_left,
        alert,
        imported_at: crate::timefmt::rfc3339(rec.created_at),
    }))
}

/// Warn from 30 days out, louder at 14 and 7 (Apple certificates last one year).
pub fn expiry_warning(days_left: i64) -> Option<String> {
    if days_left < 0 {
        return Some("expired: pushes fail until it is renewed".into());
    }
    WARN_DAYS
        .iter()
        .rev()
        .find(|d| days_left <= **d)
        .map(|d| format!("expires in {days_left} days (under {d}): renew it in Apple's portal with the same Apple Account"))
}

/// An MDM vendor's signing credentials (the "MDM CSR" certificate and key, plus Apple's chain).
pub struct VendorSigner {
    cert: X509,
    key: PKey<Private>,
    chain: Vec<X509>,
}

impl VendorSigner {
    pub fn load(cert_pem: &[u8], key_pem: &[u8], chain_pem: &[u8]) -> anyhow::Result<Self> {
        let cert = pushcert::load_pem_certs(cert_pem)?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("no certificate in the vendor certificate file"))?;
        let key = PKey::private_key_from_pem(key_pem)
            .map_err(|_| anyhow::anyhow!("the vendor key is not an unencrypted PEM private key"))?;
        if !pushcert::public_key_matches(&cert, &key) {
            anyhow::bail!("the vendor key does not match the vendor certificate");
        }
        let chain = if chain_pem.iter().all(u8::is_ascii_whitespace) {
            Vec::new()
        } else {
            pushcert::load_pem_certs(chain_pem)?
        };
        Ok(VendorSigner { cert, key, chain })
    }

    /// Sign a customer's CSR: the base64 upload file for Apple's Push Certificates Portal.
    pub fn sign(&self, csr: &[u8]) -> Result<String, ServiceError> {
        pushcert::vendor_sign(csr, &self.cert, &self.key, &self.chain)
            .map(|s| s.upload_file)
            .map_err(|e| bad(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::expiry_warning;

    #[test]
    fn warnings_at_30_14_and_7_days() {
        assert_eq!(expiry_warning(200), None);
        assert_eq!(expiry_warning(31), None);
        assert!(expiry_warning(30).is_some_and(|w| w.contains("under 30")));
        assert!(expiry_warning(14).is_some_and(|w| w.contains("under 14")));
        assert!(expiry_warning(3).is_some_and(|w| w.contains("under 7")));
        assert!(expiry_warning(-1).is_some_and(|w| w.starts_with("expired")));
    }
}
