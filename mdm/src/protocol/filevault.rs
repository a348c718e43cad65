//! What FileVault escrow reads from a Mac's answers, and the profile that turns FileVault on
//! and names the escrow certificate. Apple's schemas: `information.security.yaml`
//! (`FDE_Enabled`, `FDE_HasPersonalRecoveryKey`, `FDE_PersonalRecoveryKeyCMS`,
//! `FDE_PersonalRecoveryKeyDeviceKey`), `rotate.file.vault.key.yaml`
//! (`RotateResult.EncryptedNewRecoveryKey`), and the payloads `com.apple.MCX.FileVault2`,
//! `com.apple.security.FDERecoveryKeyEscrow`, `com.apple.security.pkcs1` and `com.apple.MCX`
//! (`dontAllowFDEDisable`).

use super::ProtocolError;
use super::guard::parse_dict;
use plist::{Dictionary, Value};

/// The profile Russet builds for FileVault (one for the fleet: settings change it as a new
/// version, groups are assigned to it).
pub const FILEVAULT_PROFILE: &str = "org.russet.filevault";

/// What a `SecurityInfo` answer says about FileVault and its personal recovery key (PRK).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileVaultReport {
    pub enabled: Option<bool>,
    pub has_personal_recovery_key: Option<bool>,
    pub has_institutional_recovery_key: Option<bool>,
    /// The PRK, CMS-enveloped to the escrow certificate (macOS 10.13+).
    pub recovery_key_envelope: Option<Vec<u8>>,
    /// `FDE_PersonalRecoveryKeyDeviceKey`: the Mac's serial number, as the escrow payload's
    /// `DeviceKey` defaults to.
    pub device_key: Option<String>,
}

/// FileVault's part of a `SecurityInfo` result.
pub fn decode_security_info(body: &[u8]) -> Result<FileVaultReport, ProtocolError> {
    let mut report = parse_dict(body)?;
    let Some(Value::Dictionary(s)) = report.remove("SecurityInfo") else {
        return Err(ProtocolError::Malformed(
            "the result has no SecurityInfo dictionary".into(),
        ));
    };
    let flag = |k: &str| s.get(k).and_then(Value::as_boolean);
    Ok(FileVaultReport {
        enabled: flag("FDE_Enabled"),
        has_personal_recovery_key: flag("FDE_HasPersonalRecoveryKey"),
        has_institutional_recovery_key: flag("FDE_HasInstitutionalRecoveryKey"),
        recovery_key_envelope: s
            .get("FDE_PersonalRecoveryKeyCMS")
            .and_then(Value::as_data)
            .filter(|d| !d.is_empty())
            .map(<[u8]>::to_vec),
        device_key: s
            .get("FDE_PersonalRecoveryKeyDeviceKey")
            .and_then(Value::as_string)
            .map(|k| k.chars().take(64).collect()),
    })
}

/// The new PRK of a `RotateFileVaultKey` result (`RotateResult.EncryptedNewRecoveryKey`), if
/// the Mac sent one.
pub fn decode_rotate_result(body: &[u8]) -> Result<Option<Vec<u8>>, ProtocolError> {
    let report = parse_dict(body)?;
    Ok(report
        .get("RotateResult")
        .and_then(Value::as_dictionary)
        .and_then(|r| r.get("EncryptedNewRecoveryKey"))
        .and_then(Value::as_data)
        .filter(|d| !d.is_empty())
        .map(<[u8]>::to_vec))
}

/// A FileVault personal recovery key as macOS shows it: six groups of four upper-case letters
/// and digits joined by hyphens. What a Mac sends is checked against this before it is called
/// escrowed; anything else is kept too, flagged.
pub fn is_recovery_key_shape(key: &str) -> bool {
    let groups: Vec<&str> = key.split('-').collect();
    groups.len() == 6
        && groups.iter().all(|g| {
            g.len() == 4
                && g.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        })
}

/// The recovery key inside an opened envelope: the key's text (what macOS sends), or a
/// property list dictionary with a `RecoveryKey` string, tolerated in case a macOS version
/// wraps it. Surrounding whitespace and NULs are not part of the key.
pub fn recovery_key_text(opened: &[u8]) -> Option<String> {
    if opened.starts_with(b"<?xml") || opened.starts_with(b"bplist") {
        let d = parse_dict(opened).ok()?;
        return d
            .get("RecoveryKey")
            .and_then(Value::as_string)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
    }
    let text = std::str::from_utf8(opened).ok()?;
    let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    (!text.is_empty()).then(|| text.to_string())
}

/// The FileVault settings an admin chooses (contract v2, `POST /api/v1/filevault/enforce`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileVaultPolicy {
    /// `Defer`: enable at the next logout instead of now (the user is asked at logout).
    pub defer: bool,
    /// `DeferForceAtUserLoginMaxBypassAttempts`: logins the user may skip before it is
    /// forced; `None` leaves it out (never forced at login), 0 forces at the next login.
    pub max_bypass_attempts: Option<i64>,
    /// `Location` of the escrow payload, shown to the user ("Contact IT …").
    pub location: String,
    /// An institutional recovery key (FileVaultMaster) certificate, DER: the FileVault2
    /// payload's `Certificate`. Intel Macs only; Apple silicon ignores it.
    pub institutional_certificate: Option<Vec<u8>>,
    /// `ForceEnableInSetupAssistant` (macOS 14+, ADE Macs during Setup Assistant).
    pub force_in_setup_assistant: bool,
}

/// The default `Location` text.
pub const DEFAULT_LOCATION: &str = "Your organization's IT department (Russet MDM)";

/// A UUID derived from `seed`, so the same settings build the same bytes (and no new version).
fn uuid_for(seed: &str) -> String {
    let digest = openssl::sha::sha256(seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes)
        .into_uuid()
        .to_string()
        .to_uppercase()
}

fn payload(payload_type: &str, suffix: &str, name: &str, seed: &str) -> Dictionary {
    let mut d = Dictionary::new();
    d.insert("PayloadType".into(), payload_type.into());
    d.insert("PayloadVersion".into(), Value::Integer(1.into()));
    d.insert(
        "PayloadIdentifier".into(),
        format!("{FILEVAULT_PROFILE}.{suffix}").into(),
    );
    d.insert(
        "PayloadUUID".into(),
        uuid_for(&format!("{seed}:{suffix}")).into(),
    );
    d.insert("PayloadDisplayName".into(), name.into());
    d
}

/// The system-scope profile: FileVault on (`com.apple.MCX.FileVault2`), the PRK escrowed to
/// `escrow_certificate` (DER; `com.apple.security.FDERecoveryKeyEscrow` pointing at a
/// `com.apple.security.pkcs1` payload by `EncryptCertPayloadUUID`), and FileVault kept on
/// (`com.apple.MCX` `dontAllowFDEDisable`). The recovery key is never shown to the user
/// (`ShowRecoveryKey` false): Russet holds it.
pub fn build_profile(
    policy: &FileVaultPolicy,
    escrow_certificate: &[u8],
) -> Result<Vec<u8>, ProtocolError> {
    // The payload UUIDs follow from the escrow certificate: a new escrow key is a new profile.
    let seed = format!(
        "russet-filevault:{}",
        hex::encode(openssl::sha::sha256(escrow_certificate))
    );
    let mut cert = payload(
        "com.apple.security.pkcs1",
        "escrow-certificate",
        "FileVault recovery key escrow certificate",
        &seed,
    );
    cert.insert(
        "PayloadCertificateFileName".into(),
        "russet-filevault-escrow.cer".into(),
    );
    cert.insert(
        "PayloadContent".into(),
        Value::Data(escrow_certificate.to_vec()),
    );
    let cert_uuid = cert
        .get("PayloadUUID")
        .and_then(Value::as_string)
        .unwrap_or_default()
        .to_string();

    let mut fv = payload("com.apple.MCX.FileVault2", "filevault2", "FileVault", &seed);
    fv.insert("Enable".into(), "On".into());
    fv.insert("Defer".into(), Value::Boolean(policy.defer));
    fv.insert("UseRecoveryKey".into(), Value::Boolean(true));
    fv.insert("ShowRecoveryKey".into(), Value::Boolean(false));
    if let Some(n) = policy.max_bypass_attempts {
        fv.insert(
            "DeferForceAtUserLoginMaxBypassAttempts".into(),
            Value::Integer(n.into()),
        );
    }
    if policy.force_in_setup_assistant {
        fv.insert("ForceEnableInSetupAssistant".into(), Value::Boolean(true));
    }
    if let Some(c) = &policy.institutional_certificate {
        fv.insert("Certificate".into(), Value::Data(c.clone()));
    }

    let mut escrow = payload(
        "com.apple.security.FDERecoveryKeyEscrow",
        "escrow",
        "FileVault recovery key escrow",
        &seed,
    );
    escrow.insert("Location".into(), policy.location.clone().into());
    escrow.insert("EncryptCertPayloadUUID".into(), cert_uuid.into());

    let mut mcx = payload("com.apple.MCX", "keep-on", "Keep FileVault on", &seed);
    mcx.insert("dontAllowFDEDisable".into(), Value::Boolean(true));

    let mut top = Dictionary::new();
    top.insert("PayloadType".into(), "Configuration".into());
    top.insert("PayloadVersion".into(), Value::Integer(1.into()));
    top.insert("PayloadIdentifier".into(), FILEVAULT_PROFILE.into());
    top.insert("PayloadUUID".into(), uuid_for(&seed).into());
    top.insert("PayloadDisplayName".into(), "FileVault (Russet)".into());
    top.insert(
        "PayloadDescription".into(),
        "Turns FileVault on and escrows the personal recovery key with your organization.".into(),
    );
    top.insert("PayloadScope".into(), "System".into());
    top.insert(
        "PayloadContent".into(),
        Value::Array(
            [cert, fv, escrow, mcx]
                .into_iter()
                .map(Value::Dictionary)
                .collect(),
        ),
    );
    let mut out = Vec::new();
    Value::Dictionary(top)
        .to_writer_xml(&mut out)
        .map_err(|e| ProtocolError::Malformed(format!("writing the FileVault profile: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::mobileconfig::{self, UploadRules};

    fn security_info(extra: &[(&str, Value)]) -> Vec<u8> {
        let mut s = Dictionary::new();
        for (k, v) in extra {
            s.insert((*k).into(), v.clone());
        }
        let mut d = Dictionary::new();
        d.insert("Status".into(), "Acknowledged".into());
        d.insert("UDID".into(), "U".into());
        d.insert("CommandUUID".into(), "C".into());
        d.insert("SecurityInfo".into(), Value::Dictionary(s));
        let mut out = Vec::new();
        Value::Dictionary(d).to_writer_xml(&mut out).unwrap();
        out
    }

    #[test]
    fn a_real_macos_answer_without_filevault_has_no_key() {
        let r = decode_security_info(include_bytes!(
            "../../testdata/devices/SecurityInfo/macOS-10.13.1.xml"
        ))
        .unwrap();
        assert_eq!(r.enabled, Some(false));
        assert_eq!(r.recovery_key_envelope, None);
    }

    #[test]
    fn the_envelope_and_device_key_are_read_and_bad_shapes_are_errors() {
        let r = decode_security_info(&security_info(&[
            ("FDE_Enabled", Value::Boolean(true)),
            ("FDE_HasPersonalRecoveryKey", Value::Boolean(true)),
            ("FDE_PersonalRecoveryKeyCMS", Value::Data(vec![1, 2, 3])),
            ("FDE_PersonalRecoveryKeyDeviceKey", "C02XK0AAJG5J".into()),
        ]))
        .unwrap();
        assert_eq!(r.recovery_key_envelope, Some(vec![1, 2, 3]));
        assert_eq!(r.device_key.as_deref(), Some("C02XK0AAJG5J"));
        // An empty envelope, or one of the wrong type, is no envelope.
        for v in [Value::Data(vec![]), Value::String("AAAA".into())] {
            let r =
                decode_security_info(&security_info(&[("FDE_PersonalRecoveryKeyCMS", v)])).unwrap();
            assert_eq!(r.recovery_key_envelope, None);
        }
        assert!(decode_security_info(b"<plist><dict></dict></plist>").is_err());
        assert!(decode_security_info(b"garbage").is_err());
        assert_eq!(decode_rotate_result(&security_info(&[])).unwrap(), None);
    }

    #[test]
    fn recovery_keys_have_apples_shape() {
        assert!(is_recovery_key_shape("ABCD-EFGH-2345-JKLM-NPQR-STUV"));
        for bad in [
            "",
            "ABCD-EFGH",
            "abcd-efgh-2345-jklm-npqr-stuv",
            "ABCD-EFGH-2345-JKLM-NPQR-STU!",
            "ABCDE-FGH-2345-JKLM-NPQR-STUV",
        ] {
            assert!(!is_recovery_key_shape(bad), "{bad}");
        }
        assert_eq!(
            recovery_key_text(b" ABCD-EFGH \n\0").as_deref(),
            Some("ABCD-EFGH")
        );
        let mut d = Dictionary::new();
        d.insert("RecoveryKey".into(), "WXYZ-2345".into());
        let mut xml = Vec::new();
        Value::Dictionary(d).to_writer_xml(&mut xml).unwrap();
        assert_eq!(recovery_key_text(&xml).as_deref(), Some("WXYZ-2345"));
        assert_eq!(recovery_key_text(b"\xff\xfe"), None);
        assert_eq!(recovery_key_text(b"  "), None);
    }

    #[test]
    fn the_profile_passes_apples_schemas_and_points_at_its_certificate() {
        let (cert, _) = russet_certs::escrow::generate_escrow_key("Escrow").unwrap();
        let policy = FileVaultPolicy {
            defer: true,
            max_bypass_attempts: Some(2),
            location: DEFAULT_LOCATION.into(),
            institutional_certificate: None,
            force_in_setup_assistant: true,
        };
        let bytes = build_profile(&policy, &cert).unwrap();
        assert_eq!(bytes, build_profile(&policy, &cert).unwrap(), "stable");
        let parsed = mobileconfig::parse(
            &bytes,
            &UploadRules {
                reserved_identifiers: &[],
                mdm_scep_url: None,
                russet_escrow: true,
            },
        )
        .unwrap();
        assert_eq!(parsed.identifier, FILEVAULT_PROFILE);
        let top: Dictionary = plist::from_bytes(&bytes).unwrap();
        let payloads = top.get("PayloadContent").and_then(Value::as_array).unwrap();
        let find = |t: &str| {
            payloads
                .iter()
                .filter_map(Value::as_dictionary)
                .find(|p| p.get("PayloadType").and_then(Value::as_string) == Some(t))
                .unwrap()
        };
        let pkcs1 = find("com.apple.security.pkcs1");
        assert_eq!(
            find("com.apple.security.FDERecoveryKeyEscrow").get("EncryptCertPayloadUUID"),
            pkcs1.get("PayloadUUID")
        );
        assert_eq!(
            pkcs1.get("PayloadContent").and_then(Value::as_data),
            Some(&cert[..])
        );
        let fv = find("com.apple.MCX.FileVault2");
        assert_eq!(fv.get("Enable").and_then(Value::as_string), Some("On"));
        assert_eq!(fv.get("ShowRecoveryKey"), Some(&Value::Boolean(false)));
        assert_eq!(
            find("com.apple.MCX").get("dontAllowFDEDisable"),
            Some(&Value::Boolean(true))
        );
        assert_eq!(
            top.get("PayloadScope").and_then(Value::as_string),
            Some("System")
        );
    }
}
