//! SCEP client side: what a Mac's `mdmclient` does, for tests, the load harness and simulated
//! Macs. Build a PKCSReq/RenewalReq PKIMessage, then read the CA's CertRep.

use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkcs7::Pkcs7;
use openssl::pkey::{Id, PKey, PKeyRef, Private};
use openssl::sign::Signer;
use openssl::x509::{X509, X509Builder, X509Name, X509Ref};

use cms::cert::x509::der::asn1::{BitString, SetOfVec};
use cms::cert::x509::der::{Any, Decode, Encode};
use cms::cert::x509::name::Name;
use cms::cert::x509::request::{CertReq, CertReqInfo, Version};
use cms::cert::x509::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::asn1;
use super::server::{decrypt_envelope, encrypt_envelope, open_signed};
use super::{ContentCipher, FailInfo, MessageType, PkiStatus, ScepDigest, ScepError};
use crate::ca::{random_serial, time_from_now};

/// How the client builds its request.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Digest of the outer SignedData.
    pub digest: ScepDigest,
    /// Content-encryption algorithm of the envelope to the CA.
    pub cipher: ContentCipher,
    /// [`MessageType::PkcsReq`] or [`MessageType::RenewalReq`].
    pub message_type: MessageType,
    /// Who signs the request: `None` = a throwaway self-signed certificate for the CSR key
    /// (PKCSReq); `Some` = an existing identity (RenewalReq).
    pub signer: Option<(X509, PKey<Private>)>,
}

impl Default for ClientOptions {
    /// What current macOS sends: SHA-512, 3DES, PKCSReq.
    fn default() -> Self {
        ClientOptions {
            digest: ScepDigest::Sha512,
            cipher: ContentCipher::Des3,
            message_type: MessageType::PkcsReq,
            signer: None,
        }
    }
}

/// A built PKIOperation request and what the client must keep to read the answer.
#[derive(Debug, Clone)]
pub struct ScepRequest {
    /// The PKIMessage, DER (the PKIOperation POST body).
    pub der: Vec<u8>,
    /// transactionID: hex SHA-256 of the CSR's SubjectPublicKeyInfo.
    pub transaction_id: String,
    /// senderNonce (16 random bytes); the CertRep's recipientNonce must equal it.
    pub sender_nonce: Vec<u8>,
    /// Certificate that signed the request; the CertRep is encrypted to it.
    pub signer_cert: X509,
    /// Its key (decrypts the CertRep).
    pub signer_key: PKey<Private>,
}

/// A parsed CertRep.
#[derive(Debug, Clone)]
pub struct CertRepResult {
    /// pkiStatus.
    pub status: PkiStatus,
    /// failInfo, when the status is FAILURE.
    pub fail_info: Option<FailInfo>,
    /// The issued certificate, when the status is SUCCESS.
    pub issued: Option<X509>,
    /// transactionID echoed by the CA.
    pub transaction_id: String,
    /// recipientNonce: must equal the request's senderNonce (the caller checks).
    pub recipient_nonce: Vec<u8>,
    /// The certificate that signed the CertRep (the caller checks it is the expected CA).
    pub signer_cert: X509,
    /// The CertRep's digest algorithm.
    pub digest_algorithm: Option<ScepDigest>,
}

/// Build a PKCS#10 request for `key` with subject `CN=<subject_cn>` and an optional
/// challengePassword, signed SHA-256 with RSA. Returns DER.
pub fn build_csr(
    key: &PKeyRef<Private>,
    subject_cn: &str,
    challenge: Option<&str>,
) -> Result<Vec<u8>, ScepError> {
    if key.id() != Id::RSA {
        return Err(ScepError::UnsupportedKey(
            "SCEP client keys must be RSA".into(),
        ));
    }
    let name = cn_name(subject_cn)?;
    let subject = Name::from_der(&name.to_der()?).map_err(asn1::der_err)?;
    let public_key =
        SubjectPublicKeyInfoOwned::from_der(&key.public_key_to_der()?).map_err(asn1::der_err)?;
    let mut attrs = Vec::new();
    if let Some(challenge) = challenge {
        attrs.push(asn1::text_attr(asn1::CHALLENGE_PASSWORD, challenge)?);
    }
    let info = CertReqInfo {
        version: Version::V1,
        subject,
        public_key,
        attributes: SetOfVec::try_from(attrs).map_err(asn1::der_err)?,
    };
    let tbs = info.to_der().map_err(asn1::der_err)?;
    let mut signer = Signer::new(MessageDigest::sha256(), key)?;
    signer.update(&tbs)?;
    let signature = signer.sign_to_vec()?;
    CertReq {
        info,
        algorithm: AlgorithmIdentifierOwned {
            oid: asn1::SHA256_WITH_RSA,
            parameters: Some(Any::null()),
        },
        signature: BitString::from_bytes(&signature).map_err(asn1::der_err)?,
    }
    .to_der()
    .map_err(asn1::der_err)
}

/// Build a PKCSReq or RenewalReq PKIMessage: a CSR for `key` (subject `CN=<subject_cn>`,
/// optional challenge) encrypted to `ca_cert` with `opts.cipher`, signed with `opts.digest` by a
/// throwaway self-signed certificate for `key` (PKCSReq) or by `opts.signer` (RenewalReq).
pub fn build_pkcs_req(
    ca_cert: &X509Ref,
    key: &PKeyRef<Private>,
    subject_cn: &str,
    challenge: Option<&str>,
    opts: ClientOptions,
) -> Result<ScepRequest, ScepError> {
    if !matches!(
        opts.message_type,
        MessageType::PkcsReq | MessageType::RenewalReq
    ) {
        return Err(ScepError::Malformed(
            "build_pkcs_req builds PKCSReq or RenewalReq only".into(),
        ));
    }
    let csr = build_csr(key, subject_cn, challenge)?;
    let (signer_cert, signer_key) = match opts.signer {
        Some(signer) => signer,
        None => {
            let owned = PKey::private_key_from_der(&key.private_key_to_der()?)?;
            (self_signed(&owned, subject_cn)?, owned)
        }
    };
    let transaction_id = hex::encode(openssl::hash::hash(
        MessageDigest::sha256(),
        &key.public_key_to_der()?,
    )?);
    let mut sender_nonce = vec![0u8; 16];
    openssl::rand::rand_bytes(&mut sender_nonce)?;

    let enveloped = encrypt_envelope(&csr, ca_cert, opts.cipher)?;
    let attrs = vec![
        asn1::printable_attr(asn1::MESSAGE_TYPE, &opts.message_type.code().to_string())?,
        asn1::text_attr(asn1::TRANSACTION_ID, &transaction_id)?,
        asn1::octets_attr(asn1::SENDER_NONCE, &sender_nonce)?,
    ];
    let der = asn1::sign_with_attributes(
        &signer_cert,
        &signer_key,
        opts.digest,
        Some(&enveloped),
        attrs,
    )?;
    Ok(ScepRequest {
        der,
        transaction_id,
        sender_nonce,
        signer_cert,
        signer_key,
    })
}

/// Read a CertRep: verify its signature with the embedded signer certificate (compare
/// [`CertRepResult::signer_cert`] with the CA yourself), read the status attributes and, on
/// SUCCESS, decrypt the envelope with the requester's key and take the first certificate of the
/// degenerate PKCS#7 inside.
pub fn parse_cert_rep(
    der: &[u8],
    requester_cert: &X509Ref,
    requester_key: &PKeyRef<Private>,
) -> Result<CertRepResult, ScepError> {
    let opened = open_signed(der)?;
    let attrs = &opened.parts.attrs;
    let code = asn1::attr_number(attrs, &asn1::MESSAGE_TYPE)?
        .ok_or_else(|| ScepError::Malformed("missing messageType".into()))?;
    if MessageType::from_code(code) != Some(MessageType::CertRep) {
        return Err(ScepError::Malformed(format!(
            "messageType {code} is not CertRep"
        )));
    }
    let status = asn1::attr_number(attrs, &asn1::PKI_STATUS)?
        .and_then(PkiStatus::from_code)
        .ok_or_else(|| ScepError::Malformed("missing or unknown pkiStatus".into()))?;
    let fail_info = match asn1::attr_number(attrs, &asn1::FAIL_INFO)? {
        Some(code) => Some(
            FailInfo::from_code(code)
                .ok_or_else(|| ScepError::Malformed(format!("unknown failInfo {code}")))?,
        ),
        None => None,
    };
    let transaction_id = asn1::attr_string(attrs, &asn1::TRANSACTION_ID)?
        .ok_or_else(|| ScepError::Malformed("missing transactionID".into()))?;
    let recipient_nonce = asn1::attr_octets(attrs, &asn1::RECIPIENT_NONCE)?
        .ok_or_else(|| ScepError::Malformed("missing recipientNonce".into()))?;

    let issued = if status == PkiStatus::Success {
        let enveloped = opened
            .content
            .as_deref()
            .ok_or_else(|| ScepError::Malformed("SUCCESS CertRep without content".into()))?;
        let degenerate = decrypt_envelope(enveloped, requester_key, requester_cert)?;
        let p7 = Pkcs7::from_der(&degenerate)
            .map_err(|e| ScepError::Malformed(format!("degenerate PKCS#7: {e}")))?;
        let cert = p7
            .signed()
            .and_then(|s| s.certificates())
            .and_then(|certs| certs.iter().next().map(|c| c.to_owned()))
            .ok_or_else(|| ScepError::Malformed("no certificate in CertRep".into()))?;
        Some(cert)
    } else {
        None
    };
    Ok(CertRepResult {
        status,
        fail_info,
        issued,
        transaction_id,
        recipient_nonce,
        signer_cert: opened.signer,
        digest_algorithm: opened.parts.digest,
    })
}

fn cn_name(cn: &str) -> Result<X509Name, ScepError> {
    let mut name = X509Name::builder()?;
    name.append_entry_by_nid(Nid::COMMONNAME, cn)
        .map_err(|e| ScepError::Malformed(format!("subject CN: {e}")))?;
    Ok(name.build())
}

/// The throwaway self-signed signer certificate a PKCSReq is signed with.
fn self_signed(key: &PKeyRef<Private>, cn: &str) -> Result<X509, ScepError> {
    let name = cn_name(cn)?;
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    let serial = random_serial()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(key)?;
    let not_before = time_from_now(-300)?;
    b.set_not_before(&not_before)?;
    let not_after = time_from_now(7 * 24 * 3600)?;
    b.set_not_after(&not_after)?;
    b.sign(key, MessageDigest::sha256())?;
    Ok(b.build())
}
