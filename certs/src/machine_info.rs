//! The signature on an ADE `MachineInfo` (Apple, Device Management: MachineInfo).
//!
//! During Setup Assistant a Mac POSTs to the DEP profile's `url` a DER CMS SignedData whose
//! content is the MachineInfo plist, signed with the device identity Apple gave it. That
//! identity is issued by "Apple iPhone Device CA" (RSA 1024, SHA-1, expired in 2014) under the
//! "Apple iPhone Certification Authority" and "Apple Root CA". Apple says to ignore the
//! validity dates of that chain, so the dates are not checked here; the chain and the
//! signature are. The three certificates are bundled (`src/apple/`).
//!
//! This proves the request comes from a genuine Apple device, not which one: the serial number
//! inside is the device's own claim (see Duo's "MDM Me Maybe"). Russet therefore only answers
//! serials it knows from DEP.

use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509, X509StoreContext};

/// Largest signed MachineInfo accepted. A real one is about 3 KiB (a small plist and a
/// two-certificate chain).
pub const MAX_MACHINE_INFO_DER: usize = 64 * 1024;

const APPLE_ROOT_CA: &[u8] = include_bytes!("apple/AppleRootCA.pem");
const APPLE_IPHONE_CA: &[u8] = include_bytes!("apple/AppleiPhoneCA.pem");
const APPLE_IPHONE_DEVICE_CA: &[u8] = include_bytes!("apple/AppleiPhoneDeviceCA.pem");

/// Why a signed MachineInfo was refused. The text is for logs and never echoes the input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MachineInfoError {
    #[error("MachineInfo is {len} bytes, limit {limit}")]
    TooLarge { len: usize, limit: usize },
    #[error("malformed signed MachineInfo: {0}")]
    Malformed(String),
    #[error("the MachineInfo signature does not verify")]
    BadSignature,
    #[error("the MachineInfo signer is not an Apple device identity: {0}")]
    Untrusted(String),
    #[error("invalid MachineInfo trust anchor: {0}")]
    BadTrustAnchor(String),
    #[error("internal crypto error: {0}")]
    Internal(String),
}

fn internal(e: openssl::error::ErrorStack) -> MachineInfoError {
    MachineInfoError::Internal(e.to_string())
}

/// The CAs a MachineInfo signer must chain to: Apple's by default.
pub struct MachineInfoTrust {
    store: X509Store,
    subjects: Vec<String>,
}

impl std::fmt::Debug for MachineInfoTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MachineInfoTrust")
            .field("anchors", &self.subjects)
            .finish()
    }
}

/// The verified content of a signed MachineInfo.
#[derive(Debug, Clone)]
pub struct SignedMachineInfo {
    /// The MachineInfo plist, as signed.
    pub content: Vec<u8>,
    /// The signer certificate's subject, for logs.
    pub signer_subject: String,
}

impl MachineInfoTrust {
    /// Apple's chain: Apple Root CA → Apple iPhone Certification Authority → Apple iPhone
    /// Device CA.
    pub fn apple() -> Result<Self, MachineInfoError> {
        let mut pem = Vec::new();
        for part in [APPLE_ROOT_CA, APPLE_IPHONE_CA, APPLE_IPHONE_DEVICE_CA] {
            pem.extend_from_slice(part);
        }
        Self::from_pem(&pem)
    }

    /// Other anchors instead of Apple's (a lab, or tests that cannot sign as Apple). Each
    /// certificate in the bundle is an anchor on its own (an intermediate may be given alone).
    pub fn from_pem(pem: &[u8]) -> Result<Self, MachineInfoError> {
        let cas = X509::stack_from_pem(pem)
            .map_err(|e| MachineInfoError::BadTrustAnchor(format!("not PEM: {e}")))?;
        if cas.is_empty() {
            return Err(MachineInfoError::BadTrustAnchor(
                "no CERTIFICATE block in the bundle".into(),
            ));
        }
        let mut builder = X509StoreBuilder::new().map_err(internal)?;
        let mut subjects = Vec::new();
        for ca in cas {
            subjects.push(subject_text(&ca));
            builder
                .add_cert(ca)
                .map_err(|e| MachineInfoError::BadTrustAnchor(e.to_string()))?;
        }
        // NO_CHECK_TIME: Apple's device CA expired in 2014 and device certificates are
        // evaluated without their dates (Apple, "Over-the-Air Profile Delivery"; MicroMDM's
        // VerifyFromAppleDeviceCA skips them too). PARTIAL_CHAIN: an anchor may be an
        // intermediate. No purpose: Apple's device certificates carry no S/MIME usage.
        builder
            .set_flags(X509VerifyFlags::NO_CHECK_TIME | X509VerifyFlags::PARTIAL_CHAIN)
            .map_err(internal)?;
        Ok(MachineInfoTrust {
            store: builder.build(),
            subjects,
        })
    }

    /// Subjects of the anchors, for logs and `doctor`.
    pub fn anchors(&self) -> &[String] {
        &self.subjects
    }

    /// Verify a DER CMS SignedData carrying a MachineInfo: one signer, its signature over the
    /// embedded content, its certificate chained (through certificates carried in the
    /// message) to an anchor. Returns the content.
    pub fn verify(&self, der: &[u8]) -> Result<SignedMachineInfo, MachineInfoError> {
        if der.len() > MAX_MACHINE_INFO_DER {
            return Err(MachineInfoError::TooLarge {
                len: der.len(),
                limit: MAX_MACHINE_INFO_DER,
            });
        }
        let p7 = Pkcs7::from_der(der)
            .map_err(|_| MachineInfoError::Malformed("not a DER CMS structure".into()))?;
        let Some(signed) = p7.signed() else {
            return Err(MachineInfoError::Malformed("not a CMS SignedData".into()));
        };
        let no_certs = Stack::<X509>::new().map_err(internal)?;
        let signers = p7
            .signers(&no_certs, Pkcs7Flags::empty())
            .map_err(|_| MachineInfoError::Malformed("no signer certificate embedded".into()))?;
        if signers.len() != 1 {
            return Err(MachineInfoError::Malformed(format!(
                "exactly one signer expected, found {}",
                signers.len()
            )));
        }
        let signer = signers
            .get(0)
            .ok_or_else(|| MachineInfoError::Malformed("no signer".into()))?
            .to_owned();

        // The signature over the embedded content first (NOVERIFY: the chain is checked below,
        // with the dates ignored). A detached signature carries no content and fails here.
        let empty_store = X509StoreBuilder::new().map_err(internal)?.build();
        let mut content = Vec::new();
        p7.verify(
            &no_certs,
            &empty_store,
            None,
            Some(&mut content),
            Pkcs7Flags::NOVERIFY | Pkcs7Flags::BINARY,
        )
        .map_err(|_| MachineInfoError::BadSignature)?;

        let mut untrusted = Stack::<X509>::new().map_err(internal)?;
        for c in signed.certificates().into_iter().flatten() {
            untrusted.push(c.to_owned()).map_err(internal)?;
        }
        let mut ctx = X509StoreContext::new().map_err(internal)?;
        let (ok, reason) = ctx
            .init(&self.store, &signer, &untrusted, |c| {
                let ok = c.verify_cert()?;
                Ok((ok, c.error().error_string().to_owned()))
            })
            .map_err(internal)?;
        if !ok {
            return Err(MachineInfoError::Untrusted(reason));
        }
        Ok(SignedMachineInfo {
            content,
            signer_subject: subject_text(&signer),
        })
    }
}

fn subject_text(cert: &X509) -> String {
    cert.subject_name()
        .entries()
        .filter_map(|e| e.data().to_string().ok())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{IssueOptions, TestCa};

    #[test]
    fn the_bundled_apple_chain_links_up() {
        // The bundled certificates are Apple's: the device CA verifies under the iPhone CA and
        // the root (which is what a transcription error would break).
        let trust = MachineInfoTrust::from_pem(APPLE_ROOT_CA).unwrap();
        let device_ca = X509::from_pem(APPLE_IPHONE_DEVICE_CA).unwrap();
        let mut untrusted = Stack::new().unwrap();
        untrusted
            .push(X509::from_pem(APPLE_IPHONE_CA).unwrap())
            .unwrap();
        let mut ctx = X509StoreContext::new().unwrap();
        let ok = ctx
            .init(&trust.store, &device_ca, &untrusted, |c| c.verify_cert())
            .unwrap();
        assert!(ok);
        let apple = MachineInfoTrust::apple().unwrap();
        assert_eq!(apple.anchors().len(), 3);
        assert!(apple.anchors()[2].contains("Apple iPhone Device CA"));
        let sha = openssl::sha::sha256(&X509::from_pem(APPLE_ROOT_CA).unwrap().to_der().unwrap());
        assert_eq!(
            hex::encode(sha),
            "b0b1730ecbc7ff4505142c49f1295e6eda6bcaed7e2c68c5be91b5a11001f024"
        );
    }

    #[test]
    fn an_apple_like_chain_verifies_and_others_do_not() {
        let ca = TestCa::legacy_device_ca("Apple iPhone Device CA (test)");
        let mac = ca.issue_with("mac", IssueOptions::legacy());
        let info = b"<plist><dict><key>SERIAL</key><string>C02TEST</string></dict></plist>";
        let der = mac.sign_attached(info);

        let trust = MachineInfoTrust::from_pem(&ca.cert_pem()).unwrap();
        let ok = trust.verify(&der).unwrap();
        assert_eq!(ok.content, info);
        assert!(ok.signer_subject.contains("mac"));

        // Apple's anchors refuse a signer Apple did not issue.
        let apple = MachineInfoTrust::apple().unwrap();
        assert!(matches!(
            apple.verify(&der),
            Err(MachineInfoError::Untrusted(_))
        ));
        // A detached signature has no content: refused.
        let detached = mac.sign_detached_der(info);
        assert!(trust.verify(&detached).is_err());
    }

    #[test]
    fn tampered_and_garbage_inputs_are_refused() {
        let ca = TestCa::legacy_device_ca("Apple iPhone Device CA (test)");
        let mac = ca.issue_with("mac", IssueOptions::legacy());
        let trust = MachineInfoTrust::from_pem(&ca.cert_pem()).unwrap();
        let info = b"<plist><dict><key>SERIAL</key><string>C02TEST</string></dict></plist>";
        let mut der = mac.sign_attached(info);
        let at = der
            .windows(7)
            .position(|w| w == b"C02TEST")
            .expect("content embedded");
        der[at] = b'X';
        assert!(matches!(
            trust.verify(&der),
            Err(MachineInfoError::BadSignature)
        ));
        assert!(matches!(
            trust.verify(b"not cms"),
            Err(MachineInfoError::Malformed(_))
        ));
        assert!(matches!(
            trust.verify(&vec![0u8; MAX_MACHINE_INFO_DER + 1]),
            Err(MachineInfoError::TooLarge { .. })
        ));
        assert!(MachineInfoTrust::from_pem(b"nothing").is_err());
    }
}
