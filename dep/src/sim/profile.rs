//! Apple's define-profile validation, as the simulator applies it.

use super::fail::ApiFail;
use crate::error::codes;
use crate::types::Profile;

fn too_long(s: &Option<String>, max: usize) -> bool {
    s.as_ref().is_some_and(|s| s.chars().count() > max)
}

/// Apple's define-profile validation (Apple, Device Assignment: Define a Profile).
pub(crate) fn validate_profile(p: &Profile) -> Result<(), ApiFail> {
    let fail = |code: &str| Err(ApiFail::new(400, code));
    if p.profile_name.trim().is_empty() {
        return fail(codes::CONFIG_NAME_REQUIRED);
    }
    if p.profile_name.chars().count() > 125 {
        return fail(codes::CONFIG_NAME_INVALID);
    }
    if p.url.trim().is_empty() {
        return fail(codes::CONFIG_URL_REQUIRED);
    }
    let url_ok = p.url.len() <= 2000
        && (p.url.starts_with("https://") || p.url.starts_with("http://"))
        && !p.url.contains(char::is_whitespace);
    if !url_ok {
        return fail(codes::CONFIG_URL_INVALID);
    }
    if too_long(&p.department, 125) {
        return fail(codes::DEPARTMENT_INVALID);
    }
    if p.is_mdm_removable == Some(false) && p.is_supervised != Some(true) {
        return fail(codes::FLAGS_INVALID);
    }
    if too_long(&p.org_magic, 256) {
        return fail(codes::MAGIC_INVALID);
    }
    if too_long(&p.support_email_address, 250)
        || p.support_email_address
            .as_ref()
            .is_some_and(|e| !e.is_empty() && !e.contains('@'))
    {
        return fail(codes::SUPPORT_EMAIL_INVALID);
    }
    if too_long(&p.support_phone_number, 50) {
        return fail(codes::SUPPORT_PHONE_INVALID);
    }
    let alpha = |s: &Option<String>, lens: &[usize]| {
        s.as_ref()
            .is_none_or(|s| lens.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphabetic()))
    };
    if !alpha(&p.language, &[2, 3]) || !alpha(&p.region, &[2]) {
        return fail("LOCALE_INVALID");
    }
    Ok(())
}
