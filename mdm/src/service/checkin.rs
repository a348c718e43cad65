//! Check-in messages (`PUT /mdm/checkin`): one function per `MessageType`, each doing three
//! things — check the identity against the enrollment, log one line, call the store.

use super::{
    AppliedMessage, DeviceChange, DeviceIdentity, MdmService, MessageKind, SETTING_PUSH_TOPIC,
    ServiceError, UserAuthenticateMode,
};
use crate::protocol::checkin::{
    Authenticate, CheckOut, CheckinMessage, DeclarativeManagement, GetBootstrapToken, GetToken,
    SetBootstrapToken, TokenUpdate, UserAuthenticate,
};
use crate::secrets::Sealed;
use crate::store::{AuthenticateRecord, StoreError, TokenUpdateRecord};
use crate::timefmt::now_ms;

/// What to send back for a check-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckinResponse {
    /// `200` with an empty body.
    Empty,
    /// `200` with an XML plist body.
    Plist(Vec<u8>),
    /// `200` with a JSON body (Declarative Management).
    Json(Vec<u8>),
    /// `410 Gone` (refuses a `UserAuthenticate`).
    Gone,
}

impl MdmService {
    /// Apply one decoded check-in message from a device whose identity was verified, counted
    /// per message type and outcome (a counter increment: no query).
    pub async fn checkin(
        &self,
        identity: &DeviceIdentity,
        raw: &[u8],
        msg: CheckinMessage,
    ) -> Result<CheckinResponse, ServiceError> {
        let message_type = msg.message_type();
        // Kept only when a recorder will want it (the message is consumed below).
        let enrollment = self.records_messages().then(|| msg.enrollment().clone());
        let mut answer = self.apply_checkin(identity, raw, msg).await;
        if let (Ok(_), Some(enrollment)) = (&answer, &enrollment) {
            let recorded = self
                .record(AppliedMessage {
                    kind: MessageKind::Checkin { message_type },
                    enrollment,
                    raw,
                })
                .await;
            if let Err(e) = recorded {
                answer = Err(e);
            }
        }
        crate::telemetry::checkin(message_type, answer.is_ok());
        answer
    }

    async fn apply_checkin(
        &self,
        identity: &DeviceIdentity,
        raw: &[u8],
        msg: CheckinMessage,
    ) -> Result<CheckinResponse, ServiceError> {
        let enrollment = msg.enrollment();
        tracing::info!(
            message_type = msg.message_type(),
            enrollment_id = %enrollment.id,
            "check-in"
        );
        // Authenticate binds the certificate; every other message must already carry it.
        if !matches!(msg, CheckinMessage::Authenticate(_)) {
            self.require_bound(identity, &enrollment.device_id).await?;
        }
        match msg {
            CheckinMessage::Authenticate(m) => self.authenticate(identity, raw, m).await,
            CheckinMessage::TokenUpdate(m) => self.token_update(m).await,
            CheckinMessage::CheckOut(m) => self.check_out(m).await,
            CheckinMessage::UserAuthenticate(m) => Ok(self.user_authenticate(&m)),
            CheckinMessage::SetBootstrapToken(m) => self.set_bootstrap_token(m).await,
            CheckinMessage::GetBootstrapToken(m) => self.get_bootstrap_token(m).await,
            CheckinMessage::DeclarativeManagement(m) => match self.declarative_channel() {
                Some(channel) => {
                    channel
                        .answer(&m.enrollment, &m.endpoint, m.data.as_deref())
                        .await
                }
                None => declarative_management(&m),
            },
            CheckinMessage::GetToken(m) => self.get_token(&m).await,
        }
    }

    /// Every message but `Authenticate` must come with the certificate bound to its device at
    /// `Authenticate` (NanoMDM's certauth rule); user channels use the device's identity.
    pub(crate) async fn require_bound(
        &self,
        identity: &DeviceIdentity,
        device_id: &str,
    ) -> Result<(), ServiceError> {
        if self.cached_binding_is(&identity.cert_sha256, device_id) {
            return Ok(());
        }
        match self.store.identity_owner(&identity.cert_sha256).await? {
            Some(owner) if owner == device_id => {
                self.remember_binding(&identity.cert_sha256, device_id);
                Ok(())
            }
            _ => Err(ServiceError::IdentityMismatch(device_id.to_string())),
        }
    }

    /// Once a push certificate is configured, its topic is the only one a device may use: a
    /// device bound to another topic could never be woken.
    async fn check_topic(&self, topic: &str) -> Result<(), ServiceError> {
        match self.store.setting(SETTING_PUSH_TOPIC).await? {
            Some(expected) if expected != topic => Err(ServiceError::WrongTopic {
                got: topic.to_string(),
            }),
            _ => Ok(()),
        }
    }

    async fn authenticate(
        &self,
        identity: &DeviceIdentity,
        raw: &[u8],
        m: Authenticate,
    ) -> Result<CheckinResponse, ServiceError> {
        self.check_topic(&m.topic).await?;
        let rec = AuthenticateRecord {
            device_id: m.enrollment.device_id.clone(),
            enrollment_type: m.enrollment.kind.as_str().to_string(),
            cert_hash: identity.cert_sha256.clone(),
            cert_not_after: identity.not_after,
            topic: m.topic,
            serial_number: m.serial_number,
            model: m.model,
            model_name: m.model_name,
            device_name: m.device_name,
            os_version: m.os_version,
            build_version: m.build_version,
            product_name: m.product_name,
            raw: raw.to_vec(),
            now: now_ms(),
        };
        match self.store.authenticate(&rec).await {
            Ok(()) => {
                self.remember_binding(&rec.cert_hash, &rec.device_id);
                // The queue was just cleared, setup commands included.
                self.store.rearm_ade_setup(&rec.device_id).await?;
                Ok(CheckinResponse::Empty)
            }
            Err(StoreError::IdentityConflict) => Err(ServiceError::IdentityMismatch(rec.device_id)),
            Err(e) => Err(e.into()),
        }
    }

    async fn token_update(&self, m: TokenUpdate) -> Result<CheckinResponse, ServiceError> {
        self.check_topic(&m.topic).await?;
        let e = &m.enrollment;
        let unlock_token_sealed = match &m.unlock_token {
            Some(t) if !t.is_empty() => Some(self.vault.seal(
                Sealed::UnlockToken {
                    enrollment_id: &e.id,
                },
                t,
            )?),
            _ => None,
        };
        let rec = TokenUpdateRecord {
            enrollment_id: e.id.clone(),
            device_id: e.device_id.clone(),
            enrollment_type: e.kind.as_str().to_string(),
            user_id: e.user_id.clone(),
            user_short_name: e.user_short_name.clone(),
            user_long_name: e.user_long_name.clone(),
            topic: m.topic,
            token: m.token,
            push_magic: m.push_magic,
            unlock_token_sealed,
            awaiting_configuration: m.awaiting_configuration,
            now: now_ms(),
        };
        if self.store.token_update(&rec).await? {
            // Only the device channel configures the Mac; user channels never await it.
            if rec.awaiting_configuration && rec.user_id.is_none() {
                self.awaiting_configuration(&rec.device_id).await?;
            }
            self.devices_changed(std::slice::from_ref(&rec.device_id), DeviceChange::Enrolled)
                .await;
            Ok(CheckinResponse::Empty)
        } else {
            Err(ServiceError::NotEnrolled(rec.enrollment_id))
        }
    }

    async fn check_out(&self, m: CheckOut) -> Result<CheckinResponse, ServiceError> {
        self.store.check_out(&m.enrollment.id, now_ms()).await?;
        Ok(CheckinResponse::Empty)
    }

    fn user_authenticate(&self, m: &UserAuthenticate) -> CheckinResponse {
        match (self.options.user_authenticate, &m.digest_response) {
            (UserAuthenticateMode::Refuse, _) => CheckinResponse::Gone,
            // An empty challenge tells macOS no authentication is needed (Apple, UserAuthenticate).
            (UserAuthenticateMode::ZeroLengthChallenge, None) => CheckinResponse::Plist(
                plist_dict(&[("DigestChallenge", plist::Value::String(String::new()))]),
            ),
            // We never issued a challenge, so there is nothing a response could match: an empty
            // AuthToken means "authentication failed".
            (UserAuthenticateMode::ZeroLengthChallenge, Some(_)) => CheckinResponse::Plist(
                plist_dict(&[("AuthToken", plist::Value::String(String::new()))]),
            ),
        }
    }

    async fn set_bootstrap_token(
        &self,
        m: SetBootstrapToken,
    ) -> Result<CheckinResponse, ServiceError> {
        let device_id = &m.enrollment.device_id;
        let sealed = match &m.bootstrap_token {
            Some(token) => Some(
                self.vault
                    .seal(Sealed::BootstrapToken { device_id }, token)?,
            ),
            None => None,
        };
        self.store
            .set_bootstrap_token(device_id, sealed.as_deref(), now_ms())
            .await?;
        Ok(CheckinResponse::Empty)
    }

    async fn get_bootstrap_token(
        &self,
        m: GetBootstrapToken,
    ) -> Result<CheckinResponse, ServiceError> {
        let device_id = &m.enrollment.device_id;
        match self.store.bootstrap_token(device_id).await? {
            Some(sealed) => {
                let token = self
                    .vault
                    .open(Sealed::BootstrapToken { device_id }, &sealed)?;
                Ok(CheckinResponse::Plist(plist_dict(&[(
                    "BootstrapToken",
                    plist::Value::Data(token),
                )])))
            }
            // NanoMDM answers an empty body when nothing is escrowed; the Mac then proceeds
            // without one.
            None => Ok(CheckinResponse::Empty),
        }
    }
}

/// Declarative Management without a DDM channel plugged in (`crate::ddm`): no declarations, a
/// stable sync token, status reports accepted.
fn declarative_management(m: &DeclarativeManagement) -> Result<CheckinResponse, ServiceError> {
    const TOKEN: &str = "russet-empty-v1";
    let body = match m.endpoint.as_str() {
        "tokens" => serde_json::json!({
            "SyncTokens": {"DeclarationsToken": TOKEN, "Timestamp": "2026-01-01T00:00:00Z"}
        }),
        "declaration-items" => serde_json::json!({
            "Declarations": {"Activations": [], "Assets": [], "Configurations": [], "Management": []},
            "DeclarationsToken": TOKEN
        }),
        "status" => return Ok(CheckinResponse::Empty),
        other => {
            return Err(ServiceError::NotFound(format!(
                "declarative management endpoint {other}"
            )));
        }
    };
    Ok(CheckinResponse::Json(body.to_string().into_bytes()))
}

impl MdmService {
    /// `GetToken`: answered by the issuer plugged in for its service type (DEP's
    /// `com.apple.maid`); Apple says to answer 400 for a service type the server does not
    /// provide.
    async fn get_token(&self, m: &GetToken) -> Result<CheckinResponse, ServiceError> {
        let issuer = self
            .token_issuers
            .iter()
            .find(|i| i.service_type() == m.token_service_type)
            .ok_or_else(|| ServiceError::UnsupportedTokenService(m.token_service_type.clone()))?;
        let serial = self
            .store
            .device(&m.enrollment.device_id)
            .await?
            .and_then(|d| d.serial_number);
        let token = issuer.token(serial.as_deref()).await?;
        Ok(CheckinResponse::Plist(plist_dict(&[(
            "TokenData",
            plist::Value::Data(token),
        )])))
    }
}

pub(crate) fn plist_dict(entries: &[(&str, plist::Value)]) -> Vec<u8> {
    let mut dict = plist::Dictionary::new();
    for (k, v) in entries {
        dict.insert((*k).to_string(), v.clone());
    }
    let mut out = Vec::new();
    // Writing a plist of strings and data to a Vec cannot fail.
    if plist::Value::Dictionary(dict)
        .to_writer_xml(&mut out)
        .is_err()
    {
        out.clear();
    }
    out
}
