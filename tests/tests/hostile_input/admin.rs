//! What an admin (or a stolen admin token) uploads or types: `.mobileconfig` profiles (XML or
//! CMS-signed), device filters, golden image names/URLs/checksums, and DEP server token files
//! (Apple's S/MIME or the JSON form). Properties: no panic, bounded time and heap, and each
//! parser's own promises — an accepted profile is stored byte for byte, an accepted value
//! is a fixed point of its check, an accepted URL is one the downloader can fetch, the
//! version order used in memory is the one the database index sorts by.

use std::sync::OnceLock;

use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::X509;
use proptest::prelude::*;
use russet_dep::token::{decrypt_token, generate_link_keypair};
use russet_mdm::filter::{self, Fact, Facts, compare_versions, version_key};
use russet_mdm::protocol::mobileconfig::{self, UploadRules};
use russet_mdm::service::golden_image_input as golden;

use crate::device::PLIST_TOKENS;
use crate::engine::{CI_CASES, bounded, config, fixtures, mutated, mutated_text};

fn rules() -> UploadRules<'static> {
    UploadRules {
        reserved_identifiers: &["org.russet.enrollment"],
        mdm_scep_url: Some("https://mdm.example.test/scep"),
        russet_escrow: false,
    }
}

fn profile_seeds() -> Vec<Vec<u8>> {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS
        .get_or_init(|| {
            let mut seeds = fixtures("mdm/testdata/profiles");
            // One CMS-signed upload (the signer is the Mac's to judge; the signature must hold).
            let ca = russet_certs::testing::TestCa::new("Hostile Profile Signer");
            let signer = ca.issue_device_identity("profile-signer");
            seeds.push(signer.sign_attached(&seeds[0]));
            // Apple's payload schemas load on first use: load them before the heap is counted.
            for seed in &seeds {
                let _ = mobileconfig::parse(seed, &rules());
            }
            seeds
        })
        .clone()
}

const FILTER_TOKENS: &[&[u8]] = &[
    b" and ",
    b" AND ",
    b" or ",
    b"=",
    b"!=",
    b"<=",
    b">=",
    b"<",
    b">",
    b"~",
    b"'",
    b"\"",
    b"\\",
    b"app_version",
    b"app",
    b"group",
    b"console_user",
    b"os_version",
    b"enrolled",
    b"true",
    b"14.10.1",
    b"99999999999999999999999999",
    b"\xc3\xa9",
    b"\xe2\x80\xae",
    b"\t",
];

const FILTER_SEEDS: &[&str] = &[
    "  OS_Version < 15 and Model ~ 'Mac14'  ",
    "app = com.microsoft.Excel and app_version < 16.80 and app_version >= 16",
    "app ~ micro and app != com.apple.Safari",
    "group = Finance and console_user != ana",
    "model=Mac14,2 and enrolled=true",
    r#"device_name = "Ana's \"work\" Mac""#,
    r"device_name ~ 'Ana\'s'",
    "dep_profile = \"\" and apple_silicon != false",
    "os_version = 14.10.1.0 and build_version >= 23K100",
];

/// A Mac whose every fact is `value` (text fields) or true (booleans), in one of two groups.
struct AnyMac<'a>(&'a str);

impl Facts for AnyMac<'_> {
    fn fact(&self, field: &str) -> Fact<'_> {
        match filter::field(field).map(|f| f.kind) {
            Some(filter::FieldKind::Bool) => Fact::Bool(true),
            _ => Fact::Text(self.0.into()),
        }
    }
}

const VERSION_SEEDS: &[&str] = &[
    "14.10.1",
    "14.9",
    "15",
    "15.0.0",
    "10a",
    "24B83",
    "15.0b1",
    "16.80 (20101)",
    "1.0.0-beta.2",
    "2024.11",
    "",
];

const URL_SEEDS: &[&str] = &[
    "https://cdn.example.com/images/Sonoma-14.4.dmg",
    "http://10.0.0.5:8080/mac/arm64.ipsw?token=x#frag",
    "HTTPS://[2001:db8::1]:8443/a",
    "https://files_internal.corp.example/%41.dmg",
];

const SHA_SEEDS: &[&str] = &[
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08  Sonoma.dmg\n",
    "SHA256 (Sonoma.dmg) = 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "\u{feff}\\9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 *a\\nb",
];

const TEXT_TOKENS: &[&[u8]] = &[
    b"://",
    b"@",
    b":",
    b"[",
    b"]",
    b"%",
    b"=",
    b"(",
    b")",
    b" ",
    b"\n",
    b"\r",
    b"\0",
    b"\\",
    b"\xef\xbb\xbf",
    b"\xe2\x80\xae",
    b"\xc2\x85",
    b"0",
    b"9",
    b".",
];

pub struct DepLink {
    pub cert: X509,
    pub key: PKey<Private>,
    pub smime: Vec<u8>,
    json: Vec<u8>,
}

pub fn dep_link() -> &'static DepLink {
    static LINK: OnceLock<DepLink> = OnceLock::new();
    LINK.get_or_init(|| {
        let (cert, key) = generate_link_keypair("hostile-input").expect("link key pair");
        let json = br#"{"consumer_key":"CK_3a","consumer_secret":"CS_9f","access_token":"AT_77","access_secret":"AS_12","access_token_expiry":"2027-01-01T00:00:00Z"}"#.to_vec();
        // Apple's token file: an S/MIME EnvelopedData to the link's certificate, around a
        // MIME entity whose MESSAGE block is the JSON.
        let mut plain = b"Content-Type: text/plain;charset=UTF-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n-----BEGIN MESSAGE-----\n".to_vec();
        plain.extend_from_slice(&json);
        plain.extend_from_slice(b"\n-----END MESSAGE-----\n");
        let mut certs = Stack::new().expect("stack");
        certs.push(cert.clone()).expect("push");
        let p7 = Pkcs7::encrypt(&certs, &plain, Cipher::aes_256_cbc(), Pkcs7Flags::BINARY)
            .expect("encrypt");
        let smime = p7.to_smime(b"", Pkcs7Flags::BINARY).expect("smime");
        DepLink {
            cert,
            key,
            smime,
            json,
        }
    })
}

const SMIME_TOKENS: &[&[u8]] = &[
    b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=\"smime.p7m\"\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"MIME-Version: 1.0\r\n",
    b"\r\n\r\n",
    b"{",
    b"}",
    b"\"access_token_expiry\":\"9999-99-99T99:99:99Z\"",
    b"\"consumer_key\":null",
    b"\"consumer_key\":\" \"",
    b"====",
    b"-----BEGIN MESSAGE-----",
];

proptest! {
    #![proptest_config(config(CI_CASES))]

    /// An uploaded profile: read, checked against Apple's schemas, and stored unchanged.
    #[test]
    fn mobileconfig_upload(bytes in mutated(profile_seeds(), PLIST_TOKENS)) {
        let parsed = bounded("mobileconfig::parse", bytes.len(), || mobileconfig::parse(&bytes, &rules()));
        if let Ok(profile) = parsed {
            prop_assert_eq!(&profile.body[..], &bytes[..]);
            prop_assert!(!profile.identifier.is_empty());
            prop_assert!(!profile.identifier.starts_with("org.russet.enrollment"));
        }
    }

    /// A device filter: parsed; an accepted one parses the same from its own text and
    /// evaluates without panicking; a refusal points inside the text.
    #[test]
    fn device_filter(text in mutated_text(FILTER_SEEDS, FILTER_TOKENS), fact in mutated_text(VERSION_SEEDS, TEXT_TOKENS)) {
        match bounded("filter::parse", text.len(), || filter::parse(&text)) {
            Ok(parsed) => {
                let again = filter::parse(parsed.text());
                prop_assert_eq!(again.as_ref(), Ok(&parsed));
                bounded("Filter::matches", text.len() + fact.len(), || parsed.matches(&AnyMac(&fact)));
            }
            Err(e) => prop_assert!(e.position <= text.len(), "{e}"),
        }
    }

    /// Versions as Macs report them: the order is total, and the database key sorts the same.
    #[test]
    fn version_order_and_index_key(
        a in mutated_text(VERSION_SEEDS, TEXT_TOKENS),
        b in mutated_text(VERSION_SEEDS, TEXT_TOKENS),
    ) {
        let ab = compare_versions(&a, &b);
        prop_assert_eq!(ab, compare_versions(&b, &a).reverse());
        let by_key = version_key(&a).as_bytes().cmp(version_key(&b).as_bytes());
        prop_assert_eq!(ab, by_key, "keys {:?} {:?}", version_key(&a), version_key(&b));
    }

    /// A golden image's name, description, URL and checksum.
    #[test]
    fn golden_image_input(
        url in mutated_text(URL_SEEDS, TEXT_TOKENS),
        sha in mutated_text(SHA_SEEDS, TEXT_TOKENS),
        name in mutated_text(&["Sonoma 14.4 (arm64)", " Café\tprod "], TEXT_TOKENS),
    ) {
        if let Ok(accepted) = bounded("golden url", url.len(), || golden::url("arm64.url", &url)) {
            let again = golden::url("arm64.url", &accepted);
            prop_assert_eq!(again.as_ref(), Ok(&accepted));
            let parsed = reqwest::Url::parse(&accepted);
            prop_assert!(parsed.is_ok(), "accepted {:?}, which the downloader cannot parse: {:?}", accepted, parsed);
            let parsed = parsed.expect("checked");
            prop_assert!(matches!(parsed.scheme(), "http" | "https"));
            prop_assert!(parsed.username().is_empty() && parsed.password().is_none());
        }
        if let Ok(hex) = bounded("golden sha256", sha.len(), || golden::sha256("arm64.sha256", &sha)) {
            prop_assert!(hex.len() == 64 && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
            let again = golden::sha256("arm64.sha256", &hex);
            prop_assert_eq!(again.as_ref(), Ok(&hex));
        }
        if let Ok(n) = golden::name(&name) {
            let again = golden::name(&n);
            prop_assert_eq!(again.as_ref(), Ok(&n));
        }
        if let Ok(Some(d)) = golden::description(Some(&name)) {
            let again = golden::description(Some(&d));
            prop_assert_eq!(again, Ok(Some(d.clone())));
        }
    }

    /// A DEP server token file, as uploaded: Apple's S/MIME or the JSON form.
    #[test]
    fn dep_token_file(bytes in mutated(vec![dep_link().smime.clone(), dep_link().json.clone()], SMIME_TOKENS)) {
        let link = dep_link();
        let tokens = bounded("decrypt_token", bytes.len(), || decrypt_token(&bytes, &link.cert, &link.key));
        if let Ok(t) = tokens {
            for field in [&t.consumer_key, &t.consumer_secret, &t.access_token, &t.access_secret] {
                prop_assert!(!field.trim().is_empty());
            }
        }
    }
}
