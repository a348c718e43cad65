//! Check-in messages (PUT to CheckInURL, `application/x-apple-aspen-mdm-checkin`).
//!
//! Like NanoMDM (NM `mdm/checkin.go`) we read `MessageType` first, then the typed message.
//! Key names and required keys follow Apple's schemas in DM `mdm/checkin/*.yaml`; keys
//! Apple marks required only for some platforms (e.g. `DeviceName` on macOS) are optional.

use plist::Dictionary;

use super::ProtocolError;
use super::enrollment::Enrollment;
use super::guard::parse_dict;
use super::values::Fields;

/// DM `authenticate.yaml`. Sent while the MDM payload installs; not yet an enrollment.
#[derive(Debug, Clone, PartialEq)]
pub struct Authenticate {
    pub enrollment: Enrollment,
    pub topic: String,
    pub serial_number: Option<String>,
    /// Required on macOS only.
    pub model: Option<String>,
    /// Required on macOS only.
    pub model_name: Option<String>,
    /// Required on macOS only.
    pub device_name: Option<String>,
    pub os_version: Option<String>,
    pub build_version: Option<String>,
    pub product_name: Option<String>,
    pub imei: Option<String>,
    pub meid: Option<String>,
}

/// DM `tokenupdate.yaml`. The first one makes the channel pushable.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenUpdate {
    pub enrollment: Enrollment,
    pub topic: String,
    /// APNs device token (raw bytes; hex-encode for APNs).
    pub token: Vec<u8>,
    pub push_magic: String,
    /// iOS-family only; kept for ClearPasscode.
    pub unlock_token: Option<Vec<u8>>,
    /// True while the device waits in Setup Assistant for DeviceConfigured.
    pub awaiting_configuration: bool,
}

/// DM `checkout.yaml`. Only sent if `CheckOutWhenRemoved`, and only attempted once.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOut {
    pub enrollment: Enrollment,
    pub topic: String,
}

/// DM `userauthenticate.yaml`. The first request has no `DigestResponse`.
#[derive(Debug, Clone, PartialEq)]
pub struct UserAuthenticate {
    pub enrollment: Enrollment,
    pub digest_response: Option<String>,
}

/// DM `setbootstraptoken.yaml`. A missing or empty token means "delete the escrowed one".
#[derive(Debug, Clone, PartialEq)]
pub struct SetBootstrapToken {
    pub enrollment: Enrollment,
    pub bootstrap_token: Option<Vec<u8>>,
    pub awaiting_configuration: bool,
}

/// DM `getbootstraptoken.yaml`.
#[derive(Debug, Clone, PartialEq)]
pub struct GetBootstrapToken {
    pub enrollment: Enrollment,
    pub awaiting_configuration: bool,
}

/// DM `declarativemanagement.yaml`: `Endpoint` is `tokens`, `declaration-items`, `status`
/// or `declaration/<type>/<identifier>`; `Data` carries JSON (e.g. a status report).
#[derive(Debug, Clone, PartialEq)]
pub struct DeclarativeManagement {
    pub enrollment: Enrollment,
    pub endpoint: String,
    pub data: Option<Vec<u8>>,
}

/// DM `gettoken.yaml`: `TokenServiceType` is e.g. `com.apple.maid`.
#[derive(Debug, Clone, PartialEq)]
pub struct GetToken {
    pub enrollment: Enrollment,
    pub token_service_type: String,
    pub token_parameters: Option<Dictionary>,
}

/// One decoded check-in message.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckinMessage {
    Authenticate(Authenticate),
    TokenUpdate(TokenUpdate),
    CheckOut(CheckOut),
    UserAuthenticate(UserAuthenticate),
    SetBootstrapToken(SetBootstrapToken),
    GetBootstrapToken(GetBootstrapToken),
    DeclarativeManagement(DeclarativeManagement),
    GetToken(GetToken),
}

impl CheckinMessage {
    pub fn enrollment(&self) -> &Enrollment {
        match self {
            CheckinMessage::Authenticate(m) => &m.enrollment,
            CheckinMessage::TokenUpdate(m) => &m.enrollment,
            CheckinMessage::CheckOut(m) => &m.enrollment,
            CheckinMessage::UserAuthenticate(m) => &m.enrollment,
            CheckinMessage::SetBootstrapToken(m) => &m.enrollment,
            CheckinMessage::GetBootstrapToken(m) => &m.enrollment,
            CheckinMessage::DeclarativeManagement(m) => &m.enrollment,
            CheckinMessage::GetToken(m) => &m.enrollment,
        }
    }

    /// Apple's `MessageType` string.
    pub fn message_type(&self) -> &'static str {
        match self {
            CheckinMessage::Authenticate(_) => "Authenticate",
            CheckinMessage::TokenUpdate(_) => "TokenUpdate",
            CheckinMessage::CheckOut(_) => "CheckOut",
            CheckinMessage::UserAuthenticate(_) => "UserAuthenticate",
            CheckinMessage::SetBootstrapToken(_) => "SetBootstrapToken",
            CheckinMessage::GetBootstrapToken(_) => "GetBootstrapToken",
            CheckinMessage::DeclarativeManagement(_) => "DeclarativeManagement",
            CheckinMessage::GetToken(_) => "GetToken",
        }
    }
}

/// Decodes a check-in body. Runs the nesting guard first.
pub fn decode_checkin(body: &[u8]) -> Result<CheckinMessage, ProtocolError> {
    let dict = parse_dict(body)?;
    let f = Fields(&dict);
    let message_type = f.req_str("MessageType")?;
    // Reject unknown types before the channel keys: they say more about the sender.
    let decode: fn(&Fields<'_>, Enrollment) -> Result<CheckinMessage, ProtocolError> =
        match message_type.as_str() {
            "Authenticate" => authenticate,
            "TokenUpdate" => token_update,
            "CheckOut" => |f, enrollment| {
                Ok(CheckinMessage::CheckOut(CheckOut {
                    enrollment,
                    topic: f.req_str("Topic")?,
                }))
            },
            "UserAuthenticate" => |f, enrollment| {
                // Only macOS user channels authenticate users (DM userauthenticate.yaml:
                // UDID and UserID are required).
                if enrollment.user_id.is_none() {
                    return Err(ProtocolError::Malformed(
                        "UserAuthenticate requires UserID".into(),
                    ));
                }
                Ok(CheckinMessage::UserAuthenticate(UserAuthenticate {
                    enrollment,
                    digest_response: f.opt_str("DigestResponse")?,
                }))
            },
            "SetBootstrapToken" => |f, enrollment| {
                Ok(CheckinMessage::SetBootstrapToken(SetBootstrapToken {
                    enrollment,
                    bootstrap_token: f.opt_data("BootstrapToken")?.filter(|t| !t.is_empty()),
                    awaiting_configuration: f.opt_bool("AwaitingConfiguration")?.unwrap_or(false),
                }))
            },
            "GetBootstrapToken" => |f, enrollment| {
                Ok(CheckinMessage::GetBootstrapToken(GetBootstrapToken {
                    enrollment,
                    awaiting_configuration: f.opt_bool("AwaitingConfiguration")?.unwrap_or(false),
                }))
            },
            "DeclarativeManagement" => |f, enrollment| {
                Ok(CheckinMessage::DeclarativeManagement(
                    DeclarativeManagement {
                        enrollment,
                        endpoint: f.req_str("Endpoint")?,
                        data: f.opt_data("Data")?,
                    },
                ))
            },
            "GetToken" => |f, enrollment| {
                Ok(CheckinMessage::GetToken(GetToken {
                    enrollment,
                    token_service_type: f.req_str("TokenServiceType")?,
                    token_parameters: f.opt_dict("TokenParameters")?,
                }))
            },
            _ => return Err(ProtocolError::UnknownMessageType(message_type)),
        };
    let enrollment = Enrollment::from_fields(&f)?;
    decode(&f, enrollment)
}

fn authenticate(f: &Fields<'_>, enrollment: Enrollment) -> Result<CheckinMessage, ProtocolError> {
    Ok(CheckinMessage::Authenticate(Authenticate {
        enrollment,
        topic: f.req_str("Topic")?,
        serial_number: f.opt_str("SerialNumber")?,
        model: f.opt_str("Model")?,
        model_name: f.opt_str("ModelName")?,
        device_name: f.opt_str("DeviceName")?,
        os_version: f.opt_str("OSVersion")?,
        build_version: f.opt_str("BuildVersion")?,
        product_name: f.opt_str("ProductName")?,
        imei: f.opt_str("IMEI")?,
        meid: f.opt_str("MEID")?,
    }))
}

fn token_update(f: &Fields<'_>, enrollment: Enrollment) -> Result<CheckinMessage, ProtocolError> {
    Ok(CheckinMessage::TokenUpdate(TokenUpdate {
        enrollment,
        topic: f.req_str("Topic")?,
        token: f.req_data("Token")?,
        push_magic: f.req_str("PushMagic")?,
        unlock_token: f.opt_data("UnlockToken")?,
        awaiting_configuration: f.opt_bool("AwaitingConfiguration")?.unwrap_or(false),
    }))
}

#[cfg(test)]
#[path = "checkin_tests.rs"]
mod tests;
