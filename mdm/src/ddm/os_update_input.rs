//! What an admin may give for an OS update, checked and normalised: pure, no store. Each
//! refusal names its field (`target_os_version`, `deadline`, …) so the 400 says what to fix.
//!
//! Apple's `com.apple.configuration.softwareupdate.enforcement.specific`: `TargetOSVersion`
//! ("the OS version number, for example, '16.1'"), `TargetBuildVersion` ("for example,
//! '20A242'… can include a supplemental version identifier, for example, '20A242a'"),
//! `TargetLocalDateTime` ("the format 'yyyy-mm-ddThh:mm:ss', … doesn't include a time zone
//! offset"), `DetailsURL`.

use crate::service::golden_image_input::{FieldError, url};
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

/// A checked OS update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsUpdateInput {
    pub target_os_version: String,
    pub target_build_version: Option<String>,
    /// `YYYY-MM-DDTHH:MM:SS`.
    pub deadline: String,
    pub details_url: Option<String>,
}

fn refuse<T>(field: &str, message: impl Into<String>) -> Result<T, FieldError> {
    Err(FieldError {
        field: field.to_owned(),
        message: message.into(),
    })
}

/// `14`, `14.7`, `15.1.1`: one to three numbers of at most three digits, joined by dots.
pub fn os_version(raw: &str) -> Result<String, FieldError> {
    let v = raw.trim();
    let parts: Vec<&str> = v.split('.').collect();
    let ok = (1..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    if !ok {
        return refuse(
            "target_os_version",
            format!("{v:?} is not a macOS version (like 14, 14.7 or 15.1.1)"),
        );
    }
    Ok(v.to_string())
}

/// `24B83`, `23H222`, `20A242a`: two digits, a capital letter, digits, and an optional
/// lowercase letter.
pub fn build_version(raw: &str) -> Result<String, FieldError> {
    let v = raw.trim();
    let b = v.as_bytes();
    let digits = b.iter().skip(3).take_while(|c| c.is_ascii_digit()).count();
    let rest = b.get(3 + digits..).unwrap_or_default();
    let ok = b.len() <= 12
        && b.len() >= 4
        && b[..2].iter().all(u8::is_ascii_digit)
        && b[2].is_ascii_uppercase()
        && digits >= 1
        && (rest.is_empty() || (rest.len() == 1 && rest[0].is_ascii_lowercase()));
    if !ok {
        return refuse(
            "target_build_version",
            format!("{v:?} is not a macOS build (like 24B83 or 20A242a)"),
        );
    }
    Ok(v.to_string())
}

/// `YYYY-MM-DDTHH:MM[:SS]`, no zone: the Mac's local time. Refused when it has passed
/// everywhere (local times run from UTC−12 to UTC+14): earlier than `now` − 12 h, read as UTC.
pub fn deadline(raw: &str, now: OffsetDateTime) -> Result<String, FieldError> {
    let v = raw.trim();
    let long = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let short = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let parsed = PrimitiveDateTime::parse(v, long)
        .or_else(|_| PrimitiveDateTime::parse(v, short))
        .or_else(|_| {
            refuse(
                "deadline",
                format!("{v:?} is not a local date-time YYYY-MM-DDTHH:MM[:SS] (no time zone)"),
            )
        })?;
    let earliest = now - Duration::hours(12);
    if parsed.assume_utc() <= earliest {
        return refuse(
            "deadline",
            format!("{v} has passed: give a future date-time"),
        );
    }
    match parsed.format(long) {
        Ok(text) => Ok(text),
        Err(e) => refuse("deadline", e.to_string()),
    }
}

/// Check everything an admin sent.
pub fn check(
    target_os_version: &str,
    target_build_version: Option<&str>,
    deadline_raw: &str,
    details_url: Option<&str>,
    now: OffsetDateTime,
) -> Result<OsUpdateInput, FieldError> {
    Ok(OsUpdateInput {
        target_os_version: os_version(target_os_version)?,
        target_build_version: target_build_version.map(build_version).transpose()?,
        deadline: deadline(deadline_raw, now)?,
        details_url: details_url.map(|u| url("details_url", u)).transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-04 20:00 UTC);

    #[test]
    fn versions_like_apple_writes_them() {
        for v in ["14", "14.7", "15.1.1", " 26.0 "] {
            assert!(os_version(v).is_ok(), "{v}");
        }
        for v in [
            "", "14.", ".14", "14.7.1.2", "fourteen", "14.a", "1000", "14 .7",
        ] {
            let e = os_version(v).expect_err(v);
            assert_eq!(e.field, "target_os_version");
        }
        for b in ["24B83", "23H222", "20A242a", "24C5057p"] {
            assert!(build_version(b).is_ok(), "{b}");
        }
        for b in ["", "24b83", "2B83", "24B", "24B83AA", "24B83-", "ABCDE"] {
            assert!(build_version(b).is_err(), "{b}");
        }
    }

    #[test]
    fn deadlines_are_local_and_in_the_future() {
        assert_eq!(
            deadline("2026-12-20T18:00", NOW).as_deref(),
            Ok("2026-12-20T18:00:00")
        );
        assert_eq!(
            deadline("2026-12-20T18:00:30", NOW).as_deref(),
            Ok("2026-12-20T18:00:30")
        );
        // Still ahead somewhere west of UTC.
        assert!(deadline("2026-12-04T12:00", NOW).is_ok());
        for bad in [
            "2020-01-01T00:00",
            "2026-12-04T07:59",
            "2026-12-20",
            "2026-12-20T18:00Z",
            "2026-12-20T18:00:00+01:00",
            "2026-13-01T00:00",
            "tomorrow",
        ] {
            let e = deadline(bad, NOW).expect_err(bad);
            assert_eq!(e.field, "deadline");
        }
    }

    #[test]
    fn the_details_url_is_checked() {
        let ok = check(
            "15.1",
            Some("24B83"),
            "2026-12-20T18:00",
            Some("https://it.example.com/macos"),
            NOW,
        )
        .expect("valid");
        assert_eq!(
            ok.details_url.as_deref(),
            Some("https://it.example.com/macos")
        );
        let e = check("15.1", None, "2026-12-20T18:00", Some("ftp://x"), NOW).expect_err("ftp");
        assert_eq!(e.field, "details_url");
    }
}
