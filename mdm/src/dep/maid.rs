//! `GetToken` for `com.apple.maid` (protocol reference §1.2): an RS256 JWT signed with the DEP
//! link's private key, `iss` = the link's `server_uuid` from `/account` (NanoDEP
//! `cryptoutil/maidjwt.go`). Apple checks it against the certificate uploaded for that link.

use super::key_aad;
use crate::secrets::SecretBox;
use crate::store::Store;
use crate::store::dep::DepLinkRecord;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

pub const SERVICE_TYPE: &str = "com.apple.maid";

#[derive(Debug, thiserror::Error)]
pub enum MaidError {
    /// No DEP link can vouch for this device (none, or several and the serial is unknown).
    #[error("{0}")]
    NoLink(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
    #[error("signing the token: {0}")]
    Sign(String),
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    iss: &'a str,
    iat: i64,
    jti: String,
    service_type: &'static str,
}

/// The link of a device: the one its serial's DEP record names, else the only link.
async fn link_for(store: &dyn Store, serial: Option<&str>) -> Result<DepLinkRecord, MaidError> {
    if let Some(s) = serial
        && let Some(rec) = store.dep_device(s).await?
        && let Some(link) = store.dep_link(&rec.link).await?
    {
        return Ok(link);
    }
    let mut links = store.dep_links().await?;
    if links.len() == 1 {
        return Ok(links.remove(0));
    }
    Err(MaidError::NoLink(format!(
        "{SERVICE_TYPE} needs a DEP link for this device ({} links, serial {})",
        links.len(),
        serial.unwrap_or("unknown")
    )))
}

/// The JWT (`TokenData`) for a device.
pub async fn token(
    store: &dyn Store,
    vault: &SecretBox,
    serial: Option<&str>,
) -> Result<String, MaidError> {
    let link = link_for(store, serial).await?;
    let iss = link.server_uuid.as_deref().ok_or_else(|| {
        MaidError::NoLink(format!(
            "DEP link {} has no server_uuid yet (set its token so Russet can read /account)",
            link.name
        ))
    })?;
    let key_pem = vault.open(&key_aad(&link.name), &link.key_sealed)?;
    let key = EncodingKey::from_rsa_pem(&key_pem).map_err(|e| MaidError::Sign(e.to_string()))?;
    let claims = Claims {
        iss,
        iat: time::OffsetDateTime::now_utc().unix_timestamp(),
        jti: uuid::Uuid::new_v4().to_string(),
        service_type: SERVICE_TYPE,
    };
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key)
        .map_err(|e| MaidError::Sign(e.to_string()))
}
