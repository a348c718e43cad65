//! Russet's SCEP CA: imported from the operator's PEM files, or generated once and kept in the
//! database with its key sealed, so every node of a PostgreSQL cluster serves the same CA.

use crate::secrets::{Sealed, SecretBox};
use crate::store::Store;
use crate::timefmt::now_ms;
use anyhow::Context;
use russet_certs::ca::CertificateAuthority;
use std::path::Path;

/// The CA to use: the imported one when both files are given, else the stored one, else a new
/// one (RSA 3072: SCEP clients encrypt their request to the CA with RSA key transport, so
/// the SCEP CA cannot be EC) stored with `INSERT … ON CONFLICT DO NOTHING` and read back, so
/// concurrent first starts agree on one CA.
pub async fn load_or_create(
    store: &dyn Store,
    vault: &SecretBox,
    import: Option<(&Path, &Path)>,
) -> anyhow::Result<CertificateAuthority> {
    if let Some((cert, key)) = import {
        let cert_pem = std::fs::read(cert)
            .with_context(|| format!("reading --scep-ca-cert {}", cert.display()))?;
        let key_pem = std::fs::read(key)
            .with_context(|| format!("reading --scep-ca-key {}", key.display()))?;
        let ca = CertificateAuthority::from_pem(&cert_pem, &key_pem)
            .context("--scep-ca-cert / --scep-ca-key")?;
        tracing::info!(ca = ?ca, "using the imported SCEP CA");
        return Ok(ca);
    }
    let stored = match store.scep_ca().await? {
        Some(s) => s,
        None => {
            let ca = tokio::task::spawn_blocking(|| {
                CertificateAuthority::generate("Russet Device CA", "Russet")
            })
            .await
            .context("generating the CA")??;
            let cert_pem = String::from_utf8(ca.cert_pem()?).context("CA PEM")?;
            let sealed = vault.seal(Sealed::ScepCaKey, &ca.key_pem()?)?;
            let stored = store
                .insert_scep_ca_if_absent(&cert_pem, &sealed, now_ms())
                .await?;
            if stored.cert_pem == cert_pem {
                tracing::info!("generated the SCEP CA (RSA 3072) and stored it in the database");
            }
            stored
        }
    };
    let key_pem = vault
        .open(Sealed::ScepCaKey, &stored.key_sealed)
        .context("unsealing the CA key: is this the key-encryption key the CA was created with?")?;
    CertificateAuthority::from_pem(stored.cert_pem.as_bytes(), &key_pem)
        .context("the stored SCEP CA is unusable")
}
