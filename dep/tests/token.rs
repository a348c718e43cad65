//! Token files built with the openssl CLI, exactly as Apple's `_smime.p7m` is shaped.

use std::path::Path;
use std::process::Command;

use russet_dep::token::{TokenError, decrypt_token, generate_link_keypair};

const TOKEN_JSON: &str = r#"{"consumer_key":"CK_3a1b2c","consumer_secret":"CS_9f8e7d","access_token":"AT_O123456","access_secret":"AS_abcdef","access_token_expiry":"2027-05-17T19:51:08Z"}"#;

fn mime_wrapped(json: &str, markers: bool) -> String {
    let body = if markers {
        format!("-----BEGIN MESSAGE-----\r\n{json}\r\n-----END MESSAGE-----\r\n")
    } else {
        format!("{json}\r\n")
    };
    format!(
        "Content-Type: text/plain;charset=UTF-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n{body}"
    )
}

/// `openssl smime -encrypt -aes256 -in <wrapped> -out token_smime.p7m <cert.pem>`
fn encrypt_with_cli(dir: &Path, cert_pem: &[u8], wrapped: &str) -> Vec<u8> {
    let cert = dir.join("link_cert.pem");
    let input = dir.join("token.txt");
    let out = dir.join("token_smime.p7m");
    std::fs::write(&cert, cert_pem).expect("write cert");
    std::fs::write(&input, wrapped).expect("write input");
    let status = Command::new("openssl")
        .arg("smime")
        .arg("-encrypt")
        .arg("-aes256")
        .arg("-in")
        .arg(&input)
        .arg("-out")
        .arg(&out)
        .arg(&cert)
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl smime failed");
    std::fs::read(&out).expect("read p7m")
}

#[test]
fn decrypts_a_token_encrypted_by_the_openssl_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = generate_link_keypair("russet-dep-link").expect("keypair");
    let p7m = encrypt_with_cli(
        dir.path(),
        &cert.to_pem().expect("pem"),
        &mime_wrapped(TOKEN_JSON, true),
    );
    assert!(String::from_utf8_lossy(&p7m).contains("application/x-pkcs7-mime"));
    let tokens = decrypt_token(&p7m, &cert, &key).expect("decrypts");
    assert_eq!(tokens.consumer_key, "CK_3a1b2c");
    assert_eq!(tokens.consumer_secret, "CS_9f8e7d");
    assert_eq!(tokens.access_token, "AT_O123456");
    assert_eq!(tokens.access_secret, "AS_abcdef");
    assert_eq!(tokens.access_token_expiry.year(), 2027);
    let debug = format!("{tokens:?}");
    assert!(!debug.contains("CS_9f8e7d") && !debug.contains("AS_abcdef"));
    // Round trip through the JSON token file.
    let again = decrypt_token(tokens.to_json().as_bytes(), &cert, &key).expect("json");
    assert_eq!(again, tokens);
}

#[test]
fn a_token_for_another_certificate_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = generate_link_keypair("ours").expect("keypair");
    let (other, _) = generate_link_keypair("theirs").expect("keypair");
    let p7m = encrypt_with_cli(
        dir.path(),
        &other.to_pem().expect("pem"),
        &mime_wrapped(TOKEN_JSON, true),
    );
    let err = decrypt_token(&p7m, &cert, &key).expect_err("refused");
    assert!(matches!(err, TokenError::WrongCertificate), "{err:?}");
    assert!(err.to_string().contains("different certificate"));
}

#[test]
fn decrypted_content_without_message_block_or_with_bad_json_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = generate_link_keypair("ours").expect("keypair");
    let pem = cert.to_pem().expect("pem");
    let p7m = encrypt_with_cli(dir.path(), &pem, &mime_wrapped(TOKEN_JSON, false));
    assert!(matches!(
        decrypt_token(&p7m, &cert, &key),
        Err(TokenError::NoMessageBlock)
    ));
    let p7m = encrypt_with_cli(dir.path(), &pem, &mime_wrapped("{\"consumer_key\":", true));
    assert!(matches!(
        decrypt_token(&p7m, &cert, &key),
        Err(TokenError::BadJson(_))
    ));
    let p7m = encrypt_with_cli(
        dir.path(),
        &pem,
        &mime_wrapped(r#"{"consumer_key":"CK_1","consumer_secret":"CS_1"}"#, true),
    );
    assert!(matches!(
        decrypt_token(&p7m, &cert, &key),
        Err(TokenError::MissingField(f)) if f == "access_token"
    ));
}

#[test]
fn garbage_is_not_smime() {
    let (cert, key) = generate_link_keypair("ours").expect("keypair");
    for junk in [
        &b""[..],
        b"\x00\x01\x02",
        b"Content-Type: application/pkcs7-mime\r\n\r\n!!!not base64!!!",
        b"-----BEGIN PKCS7-----\nAAAA\n-----END PKCS7-----\n",
    ] {
        let err = decrypt_token(junk, &cert, &key).expect_err("refused");
        assert!(matches!(err, TokenError::NotSmime), "{err:?}");
    }
}
