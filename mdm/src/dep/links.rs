//! DEP links: the key pair whose certificate an admin uploads to Apple, the token Apple hands
//! back (decrypted, sealed at rest) and the account it belongs to.

use super::{DepOpError, DepResult, DepService};
use crate::secrets::Sealed;
use crate::store::dep::{DepLinkRecord, DepTokenUpdate};
use crate::timefmt::now_ms;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use russet_dep::{AccountDetail, DepClient, OAuthTokens, decrypt_token, generate_link_keypair};
use serde_json::json;

/// What setting a token came to.
#[derive(Debug)]
pub struct TokenOutcome {
    pub link: DepLinkRecord,
    /// `/session` + `/account` worked; otherwise the error (the token is stored anyway: the
    /// usual cause, T_C_NOT_SIGNED, is fixed in Apple's portal, not with a new token).
    pub connection: Result<AccountDetail, DepOpError>,
}

fn check_name(name: &str) -> DepResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(DepOpError::BadRequest(
            "a DEP link name is 1–64 characters of letters, digits, '-', '_' or '.'".into(),
        ))
    }
}

/// Whether a link holds a token that still works, as far as Russet knows.
pub(crate) fn has_working_token(link: &DepLinkRecord, now: i64) -> bool {
    link.token_sealed.is_some()
        && link.token_expiry.is_some_and(|e| e > now)
        && !matches!(
            link.last_error_code.as_deref(),
            Some("ACCESS_DENIED" | "UNAUTHORIZED")
        )
}

impl DepService {
    /// `dep link create`: a new key pair and self-signed certificate. Re-creating a link that
    /// has a working token breaks that token, so it needs `force`. Audited.
    pub async fn create_link(
        &self,
        name: &str,
        force: bool,
        actor: &str,
    ) -> DepResult<DepLinkRecord> {
        check_name(name)?;
        let now = now_ms();
        let existing = self.store.dep_link(name).await?;
        if let Some(link) = &existing
            && !force
        {
            let why = if has_working_token(link, now) {
                format!(
                    "DEP link {name} exists and has a working token (organisation {}); a new \
                     key pair makes that token useless until you upload the new certificate \
                     to Apple and download a new token: pass --force (\"force\": true) to do it",
                    link.org_name.as_deref().unwrap_or("unknown")
                )
            } else {
                format!(
                    "DEP link {name} exists; pass --force (\"force\": true) to replace its key pair"
                )
            };
            return Err(DepOpError::Conflict(why));
        }
        let (cert, key) = generate_link_keypair(&format!("russet-dep-{name}"))?;
        let cert_pem = pem_text(cert.to_pem())?;
        let key_pem = key
            .private_key_to_pem_pkcs8()
            .map_err(|e| DepOpError::Internal(format!("encoding the link key: {e}")))?;
        let key_sealed = self
            .vault
            .seal(Sealed::DepLinkKey { link: name }, &key_pem)?;
        if existing.is_some() {
            self.store
                .replace_dep_link_key(name, &cert_pem, &key_sealed, now)
                .await?;
        } else {
            let rec = DepLinkRecord::new(name, cert_pem, key_sealed, now);
            if !self.store.insert_dep_link(&rec).await? {
                return Err(DepOpError::Conflict(format!(
                    "DEP link {name} was created concurrently"
                )));
            }
        }
        self.audit(actor, "dep.link.create", name, json!({"force": force}))
            .await?;
        self.link(name).await
    }

    pub async fn link(&self, name: &str) -> DepResult<DepLinkRecord> {
        self.store
            .dep_link(name)
            .await?
            .ok_or_else(|| DepOpError::NotFound(format!("no DEP link named {name}")))
    }

    /// The link named, or the only one when none is named.
    pub async fn resolve_link(&self, name: Option<&str>) -> DepResult<DepLinkRecord> {
        if let Some(n) = name {
            return self.link(n).await;
        }
        let mut all = self.store.dep_links().await?;
        match all.len() {
            0 => Err(DepOpError::NotFound(
                "no DEP link yet (russet dep link create NAME)".into(),
            )),
            1 => Ok(all.remove(0)),
            _ => Err(DepOpError::BadRequest(
                "several DEP links exist: name one (--link / \"link\")".into(),
            )),
        }
    }

    pub(crate) fn link_key(&self, link: &DepLinkRecord) -> DepResult<(X509, PKey<Private>)> {
        let pem = self
            .vault
            .open(Sealed::DepLinkKey { link: &link.name }, &link.key_sealed)?;
        let key = PKey::private_key_from_pem(&pem)
            .map_err(|e| DepOpError::Internal(format!("link key: {e}")))?;
        let cert = X509::from_pem(link.cert_pem.as_bytes())
            .map_err(|e| DepOpError::Internal(format!("link certificate: {e}")))?;
        Ok((cert, key))
    }

    /// A DEP API client with the link's token.
    pub(crate) fn client(&self, link: &DepLinkRecord) -> DepResult<DepClient> {
        let sealed = link.token_sealed.as_ref().ok_or_else(|| {
            DepOpError::Conflict(format!(
                "DEP link {} has no token yet (russet dep link token {} FILE)",
                link.name, link.name
            ))
        })?;
        let json = self
            .vault
            .open(Sealed::DepLinkToken { link: &link.name }, sealed)?;
        let tokens = OAuthTokens::from_json(&json)?;
        Ok(DepClient::new(self.settings.dep_url.clone(), tokens, "")?)
    }

    /// `dep link token`: decrypt Apple's `_smime.p7m` (or a JSON token), store it sealed, then
    /// test it with `/session` + `/account`. Replacing a working token needs `force`. Audited.
    pub async fn set_token(
        &self,
        name: &str,
        file: &[u8],
        force: bool,
        actor: &str,
    ) -> DepResult<TokenOutcome> {
        let link = self.link(name).await?;
        let now = now_ms();
        if has_working_token(&link, now) && !force {
            return Err(DepOpError::Conflict(format!(
                "DEP link {name} already has a working token (organisation {}, server {}); \
                 pass --force (\"force\": true) to replace it",
                link.org_name.as_deref().unwrap_or("unknown"),
                link.server_name.as_deref().unwrap_or("unknown"),
            )));
        }
        let (cert, key) = self.link_key(&link)?;
        let tokens = decrypt_token(file, &cert, &key)?;
        let token_sealed = self.vault.seal(
            Sealed::DepLinkToken { link: name },
            tokens.to_json().as_bytes(),
        )?;
        let expiry_ms = (tokens.access_token_expiry.unix_timestamp_nanos() / 1_000_000) as i64;
        let client = DepClient::new(self.settings.dep_url.clone(), tokens, "")?;
        let account = client.account().await;
        let mut update = DepTokenUpdate {
            token_sealed,
            token_expiry: expiry_ms,
            server_uuid: None,
            server_name: None,
            org_name: None,
            admin_id: None,
            account_json: "{}".into(),
            now,
        };
        if let Ok(a) = &account {
            update.server_uuid = a.server_uuid.clone();
            update.server_name = a.server_name.clone();
            update.org_name = a.org_name.clone();
            update.admin_id = a.admin_id.clone();
            update.account_json = serde_json::to_string(a).unwrap_or_else(|_| "{}".into());
        }
        self.store.set_dep_link_token(name, &update).await?;
        let connection = self.note(name, account).await;
        self.audit(actor, "dep.link.token", name, json!({"force": force}))
            .await?;
        Ok(TokenOutcome {
            link: self.link(name).await?,
            connection,
        })
    }
}

fn pem_text(pem: Result<Vec<u8>, openssl::error::ErrorStack>) -> DepResult<String> {
    let bytes = pem.map_err(|e| DepOpError::Internal(format!("PEM: {e}")))?;
    String::from_utf8(bytes).map_err(|e| DepOpError::Internal(format!("PEM: {e}")))
}
