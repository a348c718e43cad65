//! Web console sessions (issue 18): signing in with an admin token, the session a cookie
//! names, signing out. The cookie's value is random and stored nowhere, only its SHA-256
//! (`store::console`); a session lasts [`SESSION_LIFETIME`] and ends at once when its admin
//! is revoked. The console's CSRF token is derived from the cookie value ([`csrf_token`]), so
//! a page from one session is no good in another and the database holds nothing to forge it.

use super::admins::{AdminIdentity, AuthError, Role};
use super::{MdmService, ServiceError, audit};
use crate::timefmt::now_ms;
use base64::Engine;
use openssl::rand::rand_bytes;
use openssl::sha::sha256;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::net::IpAddr;
use std::time::Duration;

/// How long a console session lasts from sign-in: a working day. There is no sliding renewal:
/// an admin signs in again the next morning.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// A session just opened: the cookie value (shown to the browser only), who it is for and
/// when it ends (Unix ms).
pub struct SignedIn {
    pub cookie_value: SecretString,
    pub admin: AdminIdentity,
    pub expires_at: i64,
}

/// The CSRF token of the session whose cookie value is `cookie_value`: a one-way function of
/// it, so a page's token neither reveals the cookie nor works for another session.
pub fn csrf_token(cookie_value: &str) -> String {
    let mut input = b"russet-console-csrf\0".to_vec();
    input.extend_from_slice(cookie_value.as_bytes());
    hex::encode(sha256(&input))
}

/// Whether `presented` is the CSRF token of the session `cookie_value`, compared in constant
/// time.
pub fn csrf_matches(cookie_value: &str, presented: &str) -> bool {
    let expected = csrf_token(cookie_value);
    expected.len() == presented.len()
        && openssl::memcmp::eq(expected.as_bytes(), presented.as_bytes())
}

fn id_hash(cookie_value: &str) -> [u8; 32] {
    sha256(cookie_value.as_bytes())
}

impl MdmService {
    /// Sign in to the console with an admin token (the same check, rate limit included, as
    /// the API's bearer token), open a session and audit it.
    pub async fn console_sign_in(
        &self,
        token: &str,
        from: Option<IpAddr>,
    ) -> Result<SignedIn, AuthError> {
        let admin = self.authenticate_admin(Some(token), from).await?;
        let mut bytes = [0u8; 32];
        rand_bytes(&mut bytes).map_err(|e| {
            tracing::error!(error = %e, "no random bytes for a console session");
            AuthError::Unauthenticated
        })?;
        let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let now = now_ms();
        let expires_at = now + SESSION_LIFETIME.as_millis() as i64;
        self.store()
            .create_console_session(&id_hash(&value), &admin.name, now, expires_at)
            .await?;
        audit::record(
            self.store().as_ref(),
            &admin.name,
            "console.sign_in",
            &admin.name,
            json!({"expires_at": expires_at}),
        )
        .await?;
        Ok(SignedIn {
            cookie_value: SecretString::from(value),
            admin,
            expires_at,
        })
    }

    /// The admin whose live session `cookie_value` names; `None` when it is unknown, expired,
    /// signed out, or its admin was revoked.
    pub async fn console_session(
        &self,
        cookie_value: &str,
    ) -> Result<Option<AdminIdentity>, ServiceError> {
        let Some(rec) = self
            .store()
            .console_session(&id_hash(cookie_value), now_ms())
            .await?
        else {
            return Ok(None);
        };
        match Role::parse(&rec.role) {
            Some(role) => Ok(Some(AdminIdentity {
                name: rec.admin_name,
                role,
            })),
            None => {
                tracing::error!(admin = %rec.admin_name, role = %rec.role, "stored admin role is unknown");
                Ok(None)
            }
        }
    }

    /// Sign out: the session is forgotten on every server sharing the database, and audited.
    pub async fn console_sign_out(
        &self,
        cookie_value: &SecretString,
        admin: &AdminIdentity,
    ) -> Result<(), ServiceError> {
        let hash = id_hash(cookie_value.expose_secret());
        if self.store().delete_console_session(&hash).await? {
            audit::record(
                self.store().as_ref(),
                &admin.name,
                "console.sign_out",
                &admin.name,
                json!({}),
            )
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csrf_token_belongs_to_one_session() {
        let a = csrf_token("session-a");
        assert_eq!(a.len(), 64);
        assert!(csrf_matches("session-a", &a));
        assert!(!csrf_matches("session-b", &a));
        assert!(!csrf_matches("session-a", ""));
        assert!(!csrf_matches("session-a", &a[..63]));
        assert!(!a.contains("session-a"));
    }
}
