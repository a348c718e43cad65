//! Password generation and checks, and which Macs can take Recovery Lock.

use super::*;

#[test]
fn generated_passwords_are_four_groups_of_five_and_vary() {
    let all: std::collections::HashSet<String> = (0..200)
        .map(|_| generate_password().expect("password"))
        .collect();
    assert_eq!(all.len(), 200, "100 random bits never collide in 200 draws");
    for p in &all {
        let groups: Vec<&str> = p.split('-').collect();
        assert_eq!(groups.len(), 4, "{p}");
        assert!(groups.iter().all(|g| g.len() == 5), "{p}");
        assert!(
            groups
                .iter()
                .flat_map(|g| g.bytes())
                .all(|b| ALPHABET.contains(&b)),
            "{p}"
        );
        assert!(!p.contains(['0', 'O', '1', 'I']), "{p}");
        assert!(
            check_password(p).is_ok(),
            "a generated password is a valid one"
        );
    }
}

#[test]
fn given_passwords_are_printable_ascii_of_a_sensible_length() {
    for good in ["correct horse", "Tr0ub4dor&3", "12345678", &"x".repeat(64)] {
        assert!(check_password(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "short",
        " leading",
        "trailing ",
        "tab\tinside",
        "newline\n1234",
        "pässwort1",
        "パスワードです長い",
        &"x".repeat(65),
    ] {
        let err = check_password(bad).expect_err(bad);
        assert!(matches!(err, ServiceError::BadRequest(_)), "{bad}");
        if bad.len() >= 4 {
            assert!(
                !err.to_string().contains(bad),
                "the refusal never echoes it"
            );
        }
    }
}

fn mac(silicon: Option<bool>, os: Option<&str>) -> DeviceView {
    DeviceView {
        udid: "U".into(),
        enrollment_type: "Device".into(),
        serial_number: None,
        model: None,
        model_name: None,
        device_name: None,
        os_version: os.map(str::to_string),
        build_version: None,
        product_name: None,
        topic: None,
        enrolled: true,
        awaiting_configuration: false,
        push_token: None,
        has_push_magic: false,
        token_update_count: 0,
        identity_cert_sha256: None,
        identity_not_after: None,
        pin_required_for_lock: None,
        pin_required_for_erase: None,
        is_apple_silicon: silicon,
        authenticated_at: None,
        last_token_update_at: None,
        last_seen_at: None,
        checked_out_at: None,
        last_push_at: None,
        last_push_result: None,
        push_blocked: None,
        created_at: 0,
        updated_at: 0,
        user_channels: Vec::new(),
    }
}

#[test]
fn intel_and_macos_before_11_5_are_refused_unknown_is_allowed() {
    assert!(check_eligible(&mac(Some(true), Some("15.1"))).is_ok());
    assert!(check_eligible(&mac(None, None)).is_ok());
    assert!(check_eligible(&mac(Some(true), Some("11.5"))).is_ok());
    assert!(check_eligible(&mac(Some(true), Some("11.10"))).is_ok());
    for refused in [mac(Some(false), Some("15.1")), mac(None, Some("11.4.1"))] {
        assert!(matches!(
            check_eligible(&refused),
            Err(ServiceError::Refused(_))
        ));
    }
}
