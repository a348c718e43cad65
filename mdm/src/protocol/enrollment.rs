//! Enrollment (channel) identifiers and their normalization.
//!
//! Every check-in and command report names its channel with `UDID` or `EnrollmentID`, plus
//! user-channel keys. Russet normalizes them the way NanoMDM does (`mdm/type.go`: `UDID`,
//! `UDID:UserID`, `EnrollmentID`) so one string identifies a channel everywhere.

use super::ProtocolError;
use super::values::Fields;

/// `UserID` Apple sends for the user channel of a Shared iPad (A:token-update): the
/// channel is then named by `UserShortName` (the Managed Apple Account).
pub const SHARED_IPAD_USER_ID: &str = "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF";

/// Longest accepted identifier part. UDIDs are 36–40 characters and EnrollmentIDs similar;
/// the bound keeps hostile bodies from filling storage keys.
pub const MAX_ID_LEN: usize = 256;

/// The kind of channel, named as NanoMDM names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnrollmentType {
    Device,
    User,
    SharedIPadUser,
    UserEnrollmentDevice,
    UserEnrollmentUser,
}

impl EnrollmentType {
    pub fn as_str(&self) -> &'static str {
        match self {
            EnrollmentType::Device => "Device",
            EnrollmentType::User => "User",
            EnrollmentType::SharedIPadUser => "SharedIPadUser",
            EnrollmentType::UserEnrollmentDevice => "UserEnrollmentDevice",
            EnrollmentType::UserEnrollmentUser => "UserEnrollmentUser",
        }
    }

    /// True for the user channels (which ride on their device channel's identity).
    pub fn is_user_channel(&self) -> bool {
        matches!(
            self,
            EnrollmentType::User
                | EnrollmentType::SharedIPadUser
                | EnrollmentType::UserEnrollmentUser
        )
    }
}

/// The channel a message came from, with its normalized ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    /// Normalized channel ID: `UDID`, `UDID:UserID`, `UDID:UserShortName` (Shared iPad),
    /// `EnrollmentID` or `EnrollmentID:EnrollmentUserID`.
    pub id: String,
    /// ID of the device channel this channel belongs to (equal to `id` for device channels).
    pub device_id: String,
    pub kind: EnrollmentType,
    pub udid: Option<String>,
    pub enrollment_id: Option<String>,
    pub user_id: Option<String>,
    pub user_short_name: Option<String>,
    pub user_long_name: Option<String>,
    pub enrollment_user_id: Option<String>,
    pub not_on_console: bool,
}

impl Enrollment {
    /// Reads the channel keys of a check-in or report dictionary and normalizes them.
    pub(super) fn from_fields(f: &Fields<'_>) -> Result<Enrollment, ProtocolError> {
        // Apple never sends empty identifiers; NanoMDM treats "" as absent, and so do we.
        let non_empty = |v: Option<String>| v.filter(|s| !s.is_empty());
        let udid = non_empty(f.opt_str("UDID")?);
        let enrollment_id = non_empty(f.opt_str("EnrollmentID")?);
        let user_id = non_empty(f.opt_str("UserID")?);
        let user_short_name = non_empty(f.opt_str("UserShortName")?);
        let user_long_name = f.opt_str("UserLongName")?;
        let enrollment_user_id = non_empty(f.opt_str("EnrollmentUserID")?);
        let not_on_console = f.opt_bool("NotOnConsole")?.unwrap_or(false);

        if let Some(name) = &user_long_name {
            check_text("UserLongName", name)?;
        }

        let (id, device_id, kind) = if let Some(udid) = &udid {
            check_id_part("UDID", udid)?;
            match &user_id {
                None => (udid.clone(), udid.clone(), EnrollmentType::Device),
                Some(uid) if uid.eq_ignore_ascii_case(SHARED_IPAD_USER_ID) => {
                    let short = user_short_name.as_deref().ok_or_else(|| {
                        ProtocolError::Malformed(
                            "Shared iPad user channel without UserShortName".into(),
                        )
                    })?;
                    check_id_part("UserShortName", short)?;
                    (
                        format!("{udid}:{short}"),
                        udid.clone(),
                        EnrollmentType::SharedIPadUser,
                    )
                }
                Some(uid) => {
                    check_id_part("UserID", uid)?;
                    (format!("{udid}:{uid}"), udid.clone(), EnrollmentType::User)
                }
            }
        } else if let Some(eid) = &enrollment_id {
            // User Enrollment: UDID is forbidden, EnrollmentID names the device (DM
            // mdm/checkin/authenticate.yaml).
            check_id_part("EnrollmentID", eid)?;
            match &enrollment_user_id {
                None => (
                    eid.clone(),
                    eid.clone(),
                    EnrollmentType::UserEnrollmentDevice,
                ),
                Some(euid) => {
                    check_id_part("EnrollmentUserID", euid)?;
                    (
                        format!("{eid}:{euid}"),
                        eid.clone(),
                        EnrollmentType::UserEnrollmentUser,
                    )
                }
            }
        } else {
            return Err(ProtocolError::Malformed(
                "neither UDID nor EnrollmentID is present".into(),
            ));
        };

        Ok(Enrollment {
            id,
            device_id,
            kind,
            udid,
            enrollment_id,
            user_id,
            user_short_name,
            user_long_name,
            enrollment_user_id,
            not_on_console,
        })
    }
}

/// An ID part must be short, free of control characters, and free of ':' (the separator of
/// normalized IDs; a ':' inside a part would let one channel impersonate another).
fn check_id_part(key: &str, value: &str) -> Result<(), ProtocolError> {
    check_text(key, value)?;
    if value.contains(':') {
        return Err(ProtocolError::Malformed(format!(
            "{key} must not contain ':'"
        )));
    }
    Ok(())
}

fn check_text(key: &str, value: &str) -> Result<(), ProtocolError> {
    if value.chars().count() > MAX_ID_LEN {
        return Err(ProtocolError::Malformed(format!(
            "{key} is longer than {MAX_ID_LEN} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(ProtocolError::Malformed(format!(
            "{key} contains control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use plist::{Dictionary, Value};

    fn enroll(pairs: &[(&str, &str)]) -> Result<Enrollment, ProtocolError> {
        let mut d = Dictionary::new();
        for (k, v) in pairs {
            d.insert((*k).into(), Value::String((*v).into()));
        }
        Enrollment::from_fields(&Fields(&d))
    }

    #[test]
    fn normalizes_each_channel_kind_like_nanomdm() {
        let e = enroll(&[("UDID", "U1")]).expect("device");
        assert_eq!((e.id.as_str(), e.device_id.as_str()), ("U1", "U1"));
        assert_eq!(e.kind.as_str(), "Device");

        let e = enroll(&[("UDID", "U1"), ("UserID", "G1"), ("UserShortName", "jo")]).expect("user");
        assert_eq!((e.id.as_str(), e.device_id.as_str()), ("U1:G1", "U1"));
        assert_eq!(e.kind, EnrollmentType::User);

        let e = enroll(&[
            ("UDID", "U1"),
            ("UserID", SHARED_IPAD_USER_ID),
            ("UserShortName", "kid@school.example"),
        ])
        .expect("shared ipad");
        assert_eq!(e.id, "U1:kid@school.example");
        assert_eq!(e.kind.as_str(), "SharedIPadUser");

        let e = enroll(&[("EnrollmentID", "E1")]).expect("ue device");
        assert_eq!(e.id, "E1");
        assert_eq!(e.kind.as_str(), "UserEnrollmentDevice");

        let e = enroll(&[("EnrollmentID", "E1"), ("EnrollmentUserID", "EU")]).expect("ue user");
        assert_eq!((e.id.as_str(), e.device_id.as_str()), ("E1:EU", "E1"));
        assert_eq!(e.kind.as_str(), "UserEnrollmentUser");
        assert!(e.kind.is_user_channel());
    }

    #[test]
    fn refuses_missing_or_hostile_ids() {
        let malformed = |r: Result<Enrollment, ProtocolError>| {
            assert!(matches!(r, Err(ProtocolError::Malformed(_))), "{r:?}");
        };
        malformed(enroll(&[("Topic", "t")]));
        malformed(enroll(&[("UDID", "")]));
        malformed(enroll(&[("UDID", "A:B")]));
        malformed(enroll(&[("UDID", "U1"), ("UserID", "x:y")]));
        malformed(enroll(&[("UDID", "U\n1")]));
        malformed(enroll(&[("UDID", &"A".repeat(MAX_ID_LEN + 1))]));
        malformed(enroll(&[("UDID", "U1"), ("UserID", SHARED_IPAD_USER_ID)]));
        malformed(enroll(&[
            ("EnrollmentID", "E1"),
            ("EnrollmentUserID", "a:b"),
        ]));
        assert!(enroll(&[("UDID", &"A".repeat(MAX_ID_LEN))]).is_ok());
    }
}
