//! `GetToken` for `com.apple.maid` (Apple, "Get Token" check-in): an RS256 JWT signed with the DEP
//! link's private key, `iss` = the link's `server_uuid` from `/account` (NanoDEP
//! `cryptoutil/maidjwt.go`). Apple checks it against the certificate uploaded for that link.

use crate::secrets::{Sealed, SecretBox};
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
    let key_pem = vault.open(Sealed::DepLinkKey { link: &link.name }, &link.key_sealed)?;
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

/// DEP's `GetToken` answer, plugged into the MDM core at start-up.
#[async_trait::async_trait]
impl crate::service::TokenIssuer for super::DepService {
    fn service_type(&self) -> &str {
        SERVICE_TYPE
    }

    async fn token(&self, serial: Option<&str>) -> Result<Vec<u8>, crate::service::ServiceError> {
        use crate::service::ServiceError;
        match token(self.store.as_ref(), &self.vault, serial).await {
            Ok(jwt) => Ok(jwt.into_bytes()),
            Err(MaidError::Store(e)) => Err(ServiceError::Store(e)),
            Err(MaidError::Secret(e)) => Err(ServiceError::Secret(e)),
            // No link can vouch for this Mac: to the device that is a service Russet does not
            // provide for it (400), with the reason.
            Err(other) => Err(ServiceError::UnsupportedTokenService(format!(
                "{SERVICE_TYPE} ({other})"
            ))),
        }
    }
}
