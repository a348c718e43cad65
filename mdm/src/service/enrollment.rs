//! Enrollment: who may download the enrollment profile, the one-time SCEP challenge in each
//! profile, and the SCEP PKIOperation (PKCSReq, RenewalReq) that issues device identities.

use super::profile::{self, ProfileParams};
use crate::store::{ChallengeUse, IssuedCertificate, LinkUse, NewEnrollLink, Store, StoreError};
use crate::timefmt::{now_ms, rfc3339_opt};
use openssl::hash::{MessageDigest, hash};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use russet_certs::ca::{CaError, CertificateAuthority};
use russet_certs::machine_info::MachineInfoTrust;
use russet_certs::scep::{self, FailInfo, MessageType, PkiMessage};
use russet_certs::{DeviceCertificate, DeviceTrust};
use std::sync::Arc;
use std::time::Duration;

/// Settings key of the placeholder push topic (used until a push certificate is imported).
pub const SETTING_PLACEHOLDER_TOPIC: &str = "enrollment.placeholder_topic";

/// The warning logged at every profile download (and shown by `doctor` and the device view)
/// while no push certificate is configured: the topic in an installed MDM payload cannot
/// change, so these Macs must re-enroll once a real certificate arrives.
pub const PLACEHOLDER_TOPIC_WARNING: &str = "no push certificate is configured: enrollment \
     profiles carry a placeholder push topic; Macs enrolled now cannot be woken by push and \
     must re-enroll once a push certificate is imported";

pub struct EnrollmentOptions {
    /// Base URL written into profiles, without a trailing slash.
    pub public_url: String,
    pub identity_validity: Duration,
    /// How long a profile's challenge stays valid, in milliseconds.
    pub challenge_ttl_ms: i64,
    pub static_challenge: Option<String>,
    pub open_enrollment: bool,
    /// Root certificate to put in the profile (private TLS chain).
    pub trust_root: Option<X509>,
    /// Who may sign an ADE MachineInfo: Apple's device CA unless `--ade-device-ca` says
    /// otherwise.
    pub machine_info_trust: MachineInfoTrust,
}

/// Who signs enrollment profiles: a certificate, its key and intermediates to embed.
pub struct ProfileSigner {
    pub cert: X509,
    pub key: PKey<Private>,
    pub chain: Vec<X509>,
}

pub struct EnrollmentService {
    store: Arc<dyn Store>,
    ca: Arc<CertificateAuthority>,
    /// Only Russet's CA: a RenewalReq must be signed by an identity it issued.
    own_trust: DeviceTrust,
    signer: ProfileSigner,
    options: EnrollmentOptions,
}

/// Why a profile download is refused (403 to the browser, never 401).
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("{0}")]
    Forbidden(&'static str),
    /// Admin input that breaks a rule (e.g. an enrollment link with zero uses).
    #[error("{0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("building the profile failed: {0}")]
    Internal(String),
}

/// The answer to a PKIOperation.
#[derive(Debug)]
pub enum ScepOutcome {
    /// A CertRep (success or failure), DER.
    CertRep(Vec<u8>),
    /// Not a PKIMessage we can answer with a CertRep at all (HTTP 400).
    Malformed(String),
}

/// A new enrollment link.
#[derive(Debug, Clone)]
pub struct CreatedLink {
    pub url: String,
    pub token: String,
    pub uses: Option<i64>,
    pub expires_at: Option<i64>,
}

/// 32 random bytes as hex.
pub fn random_token() -> Result<String, openssl::error::ErrorStack> {
    let mut b = [0u8; 32];
    openssl::rand::rand_bytes(&mut b)?;
    Ok(hex::encode(b))
}

/// SHA-256 of a token. Tokens are 32 random bytes, so a plain hash is enough to store them.
pub fn token_hash(token: &str) -> Vec<u8> {
    hash(MessageDigest::sha256(), token.as_bytes())
        .map(|d| d.to_vec())
        .unwrap_or_default()
}

impl EnrollmentService {
    pub fn new(
        store: Arc<dyn Store>,
        ca: Arc<CertificateAuthority>,
        signer: ProfileSigner,
        options: EnrollmentOptions,
    ) -> anyhow::Result<Self> {
        let own_trust = DeviceTrust::from_pem(&ca.cert_pem()?)?;
        Ok(EnrollmentService {
            store,
            ca,
            own_trust,
            signer,
            options,
        })
    }

    pub fn ca(&self) -> &CertificateAuthority {
        &self.ca
    }

    pub fn machine_info_trust(&self) -> &MachineInfoTrust {
        &self.options.machine_info_trust
    }

    /// The private root written into profiles (and DEP profiles' `anchor_certs`), if any.
    pub fn trust_root(&self) -> Option<&X509> {
        self.options.trust_root.as_ref()
    }

    pub fn public_url(&self) -> &str {
        &self.options.public_url
    }

    /// The push topic to write into profiles: the push certificate's, or the stored placeholder
    /// (`true` = placeholder).
    pub async fn topic(&self) -> Result<(String, bool), StoreError> {
        if let Some(cert) = self.store.active_push_certificate().await? {
            return Ok((cert.topic, false));
        }
        let fresh = format!(
            "com.apple.mgmt.External.{}",
            uuid::Uuid::new_v4().to_string().to_lowercase()
        );
        let topic = self
            .store
            .setting_insert_if_absent(SETTING_PLACEHOLDER_TOPIC, &fresh)
            .await?;
        Ok((topic, true))
    }

    /// `GET /mdm/enroll`: check the link token (unless enrollment is open), issue a one-time
    /// challenge and return the signed profile (DER CMS).
    pub async fn profile(&self, token: Option<&str>) -> Result<Vec<u8>, EnrollError> {
        let now = now_ms();
        if !self.options.open_enrollment {
            let token = token
                .filter(|t| !t.is_empty())
                .ok_or(EnrollError::Forbidden(
                    "an enrollment link is required: ask your administrator for one",
                ))?;
            if token.len() > 256 {
                return Err(EnrollError::Forbidden("unknown enrollment link"));
            }
            match self.store.use_enroll_link(&token_hash(token), now).await? {
                LinkUse::Accepted => {}
                LinkUse::Exhausted => {
                    return Err(EnrollError::Forbidden(
                        "this enrollment link has been used up",
                    ));
                }
                LinkUse::Expired => {
                    return Err(EnrollError::Forbidden("this enrollment link has expired"));
                }
                LinkUse::Unknown => return Err(EnrollError::Forbidden("unknown enrollment link")),
            }
        }
        self.issue_profile().await
    }

    /// A signed enrollment profile with a fresh one-time challenge, for a requester already
    /// let in (an enrollment link, open enrollment, or an Apple-signed MachineInfo).
    pub async fn issue_profile(&self) -> Result<Vec<u8>, EnrollError> {
        let now = now_ms();
        let (topic, placeholder) = self.topic().await?;
        if placeholder {
            tracing::warn!(topic = %topic, "{PLACEHOLDER_TOPIC_WARNING}");
        }
        let challenge = random_token().map_err(|e| EnrollError::Internal(e.to_string()))?;
        self.store
            .insert_challenge(
                &token_hash(&challenge),
                now.saturating_add(self.options.challenge_ttl_ms),
                now,
            )
            .await?;
        let root_der = match &self.options.trust_root {
            Some(c) => Some(
                c.to_der()
                    .map_err(|e| EnrollError::Internal(e.to_string()))?,
            ),
            None => None,
        };
        let xml = profile::build(&ProfileParams {
            public_url: &self.options.public_url,
            topic: &topic,
            challenge: &challenge,
            trust_root_der: root_der.as_deref(),
        })
        .map_err(|e| EnrollError::Internal(e.to_string()))?;
        let signed = self.sign_profile(&xml)?;
        tracing::info!(placeholder_topic = placeholder, "enrollment profile served");
        Ok(signed)
    }

    /// Sign a profile (attached CMS) with the identity that signs enrollment profiles, so
    /// System Settings shows it as verified.
    pub fn sign_profile(&self, xml: &[u8]) -> Result<Vec<u8>, EnrollError> {
        russet_certs::profile_sign::sign_profile(
            &self.signer.cert,
            &self.signer.key,
            &self.signer.chain,
            xml,
        )
        .map_err(|e| EnrollError::Internal(e.to_string()))
    }

    /// Create an enrollment link: `uses` (None = unlimited), `expires_in` seconds (None = never);
    /// audited.
    pub async fn create_link(
        &self,
        uses: Option<i64>,
        expires_in: Option<i64>,
        created_by: &str,
    ) -> Result<CreatedLink, EnrollError> {
        if uses.is_some_and(|u| u < 1) {
            return Err(EnrollError::Invalid("\"uses\" must be at least 1"));
        }
        if expires_in.is_some_and(|s| s < 1) {
            return Err(EnrollError::Invalid(
                "\"expires_in\" must be positive seconds",
            ));
        }
        let token = random_token().map_err(|e| EnrollError::Internal(e.to_string()))?;
        let now = now_ms();
        let expires_at = expires_in.map(|s| now.saturating_add(s.saturating_mul(1000)));
        self.store
            .insert_enroll_link(&NewEnrollLink {
                hash: token_hash(&token),
                uses,
                expires_at,
                created_by: created_by.to_string(),
                now,
            })
            .await?;
        super::audit::record(
            self.store.as_ref(),
            created_by,
            "enroll_link.create",
            "enroll-link",
            serde_json::json!({"uses": uses, "expires_at": rfc3339_opt(expires_at)}),
        )
        .await?;
        Ok(CreatedLink {
            url: format!("{}/mdm/enroll?token={token}", self.options.public_url),
            token,
            uses,
            expires_at,
        })
    }

    /// SCEP PKIOperation. Refusals that can still be answered are CertReps with failInfo;
    /// bodies that are not a signed PKIMessage at all are `Malformed` (HTTP 400).
    pub async fn pki_operation(&self, body: &[u8]) -> Result<ScepOutcome, StoreError> {
        let msg = match scep::parse_pki_message(body) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "SCEP: unreadable PKIOperation");
                crate::telemetry::scep("malformed");
                return Ok(ScepOutcome::Malformed(e.to_string()));
            }
        };
        let refuse = |fail: FailInfo, why: &str| -> ScepOutcome {
            crate::telemetry::scep("refused");
            tracing::warn!(
                transaction_id = %msg.transaction_id,
                fail_info = ?fail,
                "SCEP request refused: {why}"
            );
            match scep::cert_rep_failure(&self.ca, &msg, fail) {
                Ok(der) => ScepOutcome::CertRep(der),
                Err(e) => ScepOutcome::Malformed(e.to_string()),
            }
        };
        if !matches!(
            msg.message_type,
            MessageType::PkcsReq | MessageType::RenewalReq
        ) {
            return Ok(refuse(FailInfo::BadRequest, "unsupported messageType"));
        }
        let csr = match scep::decrypt_csr(&self.ca, &msg) {
            Ok(c) => c,
            Err(e) => return Ok(refuse(e.fail_info(), &e.to_string())),
        };
        if !csr.signature_valid {
            return Ok(refuse(
                FailInfo::BadMessageCheck,
                "the CSR's self-signature does not verify",
            ));
        }
        if csr.public_key_bits < 2048 {
            return Ok(refuse(FailInfo::BadRequest, "key smaller than 2048 bits"));
        }
        let now = now_ms();
        let mut renewed_from = None;
        match msg.message_type {
            MessageType::RenewalReq => match self.renewal_signer(&msg) {
                Ok(hash) => renewed_from = Some(hash),
                Err(why) => return Ok(refuse(FailInfo::BadRequest, why)),
            },
            _ => {
                let Some(challenge) = csr.challenge_password.as_deref() else {
                    return Ok(refuse(FailInfo::BadRequest, "no challengePassword"));
                };
                if let Err(why) = self.check_challenge(challenge, now).await? {
                    return Ok(refuse(FailInfo::BadRequest, why));
                }
            }
        }
        let req = match csr.request() {
            Ok(r) => r,
            Err(e) => return Ok(refuse(FailInfo::BadRequest, &e.to_string())),
        };
        let issued =
            match self
                .ca
                .issue_device_certificate(&req, None, self.options.identity_validity)
            {
                Ok(c) => c,
                Err(CaError::InvalidRequest(why)) => return Ok(refuse(FailInfo::BadRequest, &why)),
                Err(e) => return Ok(refuse(FailInfo::BadRequest, &e.to_string())),
            };
        let info = match DeviceCertificate::from_x509(&issued) {
            Ok(i) => i,
            Err(e) => return Ok(refuse(FailInfo::BadRequest, &e.to_string())),
        };
        let not_after = info.not_after_unix.saturating_mul(1000);
        let serial = issued
            .serial_number()
            .to_bn()
            .and_then(|bn| bn.to_hex_str().map(|s| s.to_string()))
            .unwrap_or_default();
        self.store
            .record_issued_certificate(&IssuedCertificate {
                serial: serial.clone(),
                sha256: info.sha256_hex.clone(),
                subject: csr.subject.clone(),
                message_type: if renewed_from.is_some() {
                    "RenewalReq".into()
                } else {
                    "PKCSReq".into()
                },
                renewed_from: renewed_from.clone(),
                not_after,
                issued_at: now,
            })
            .await?;
        if let Some(old) = &renewed_from {
            // The renewed identity works at once for the same enrollment: no new Authenticate.
            let device = self
                .store
                .bind_renewed_identity(old, &info.sha256_hex, not_after, now)
                .await?;
            tracing::info!(device = ?device, serial = %serial, "SCEP: identity renewed");
            crate::telemetry::scep("renewed");
        } else {
            tracing::info!(subject = %csr.subject, serial = %serial, "SCEP: identity issued");
            crate::telemetry::scep("issued");
        }
        Ok(match scep::cert_rep_success(&self.ca, &msg, &issued) {
            Ok(der) => ScepOutcome::CertRep(der),
            Err(e) => {
                tracing::error!(error = %e, "SCEP: building the CertRep failed");
                ScepOutcome::Malformed("internal error".into())
            }
        })
    }

    /// A RenewalReq must be signed by a current identity issued by Russet's CA.
    fn renewal_signer(&self, msg: &PkiMessage) -> Result<String, &'static str> {
        let cert = DeviceCertificate::from_x509(&msg.signer_cert)
            .map_err(|_| "unreadable signer certificate")?;
        self.own_trust
            .verify(&cert)
            .map_err(|_| "RenewalReq not signed by a valid identity issued by this CA")?;
        Ok(cert.sha256_hex)
    }

    /// The static challenge (constant-time comparison), else a one-time challenge (consumed).
    async fn check_challenge(
        &self,
        presented: &str,
        now: i64,
    ) -> Result<Result<(), &'static str>, StoreError> {
        if let Some(expected) = &self.options.static_challenge
            && expected.len() == presented.len()
            && openssl::memcmp::eq(expected.as_bytes(), presented.as_bytes())
        {
            return Ok(Ok(()));
        }
        if presented.len() > 256 {
            return Ok(Err("unknown challenge"));
        }
        Ok(
            match self
                .store
                .consume_challenge(&token_hash(presented), now)
                .await?
            {
                ChallengeUse::Consumed => Ok(()),
                ChallengeUse::AlreadyUsed => Err("challenge already used"),
                ChallengeUse::Expired => Err("challenge expired"),
                ChallengeUse::Unknown => Err("unknown challenge"),
            },
        )
    }
}
