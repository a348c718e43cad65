//! Device identity on every device request, checked before the body is parsed.
//!
//! Three sources, as Apple and NanoMDM define them: the TLS client certificate when Russet
//! terminates TLS itself (taken first, from the connection's `TlsInfo` extension), the
//! `Mdm-Signature` header (detached CMS over
//! the exact body, when the MDM payload has `SignMessage`), or the TLS client certificate as
//! forwarded by a trusted TLS-terminating proxy (`--client-cert-header`). Either way the
//! certificate must chain to a trusted device CA.

use super::{AppState, DeviceError};
use crate::service::{CertDigest, DeviceIdentity, cert_digest};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderName};
use russet_certs::{DeviceCertificate, DeviceTrust, MdmSigner};
use std::collections::HashMap;
use std::sync::RwLock;

pub struct IdentityVerifier {
    /// Russet's SCEP CA, plus any `--device-ca`.
    trust: DeviceTrust,
    client_cert_header: Option<HeaderName>,
    /// Certificates whose chain already verified (SHA-256 → notAfter, Unix seconds). The chain
    /// check is the costly part of a request and gives the same answer until the certificate
    /// expires; the signature over each body is still checked every time.
    trusted: RwLock<HashMap<CertDigest, i64>>,
}

const MAX_TRUSTED_CACHE: usize = 200_000;

impl IdentityVerifier {
    pub fn new(trust: DeviceTrust, client_cert_header: Option<HeaderName>) -> Self {
        IdentityVerifier {
            trust,
            client_cert_header,
            trusted: RwLock::new(HashMap::new()),
        }
    }

    pub fn client_cert_header(&self) -> Option<&HeaderName> {
        self.client_cert_header.as_ref()
    }

    /// The CAs whose identities are accepted (also the TLS listener's client-CA list).
    pub fn trusted_cas(&self) -> &[openssl::x509::X509] {
        self.trust.cas()
    }

    /// Find, verify and return the identity of the device that sent `body`: the TLS client
    /// certificate (DER) of the connection, if any and trusted, else the `Mdm-Signature` or the
    /// proxy's header. A TLS client identity that is not trusted falls back to the others.
    pub fn verify(
        &self,
        peer: Option<&[u8]>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<DeviceIdentity, DeviceError> {
        let trust = &self.trust;
        let mut tls_error = None;
        if let Some(der) = peer {
            match DeviceCertificate::from_der(der)
                .map(MdmSigner::from)
                .and_then(|c| self.check_trust(trust, &c).map(|()| c))
            {
                Ok(cert) => return Ok(identity_of(cert)),
                Err(e) => tls_error = Some(e),
            }
        }
        let cert = match self.certificate(headers, body) {
            Ok(c) => c,
            Err(e) => return Err(tls_error.map(DeviceError::from).unwrap_or(e)),
        };
        self.check_trust(trust, &cert)?;
        Ok(identity_of(cert))
    }

    /// Chain check, remembered per certificate until it expires.
    fn check_trust(
        &self,
        trust: &DeviceTrust,
        cert: &MdmSigner,
    ) -> Result<(), russet_certs::IdentityError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let key = cert_digest(&cert.sha256_hex);
        let known = key.is_some_and(|key| {
            self.trusted
                .read()
                .ok()
                .and_then(|m| m.get(&key).copied())
                .is_some_and(|not_after| not_after > now)
        });
        if !known {
            // Parsed in full (both parsers, canonical DER) only when the chain is checked.
            trust.verify(&DeviceCertificate::from_der(&cert.der)?)?;
            if let (Some(key), Ok(mut m)) = (key, self.trusted.write()) {
                if m.len() >= MAX_TRUSTED_CACHE {
                    m.clear();
                }
                m.insert(key, cert.not_after_unix);
            }
        }
        Ok(())
    }

    fn certificate(&self, headers: &HeaderMap, body: &[u8]) -> Result<MdmSigner, DeviceError> {
        if let Some(sig) = headers.get("mdm-signature") {
            let sig = sig
                .to_str()
                .map_err(|_| DeviceError::NoIdentity("Mdm-Signature is not ASCII"))?;
            return Ok(russet_certs::verify_mdm_signature_fast(sig, body)?);
        }
        if let Some(name) = &self.client_cert_header
            && let Some(value) = headers.get(name)
        {
            let value = value
                .to_str()
                .map_err(|_| DeviceError::NoIdentity("client certificate header is not ASCII"))?;
            return Ok(russet_certs::parse_client_cert_header(value)?.into());
        }
        Err(DeviceError::NoIdentity(
            "the request carries neither Mdm-Signature nor a forwarded client certificate",
        ))
    }
}

fn identity_of(cert: MdmSigner) -> DeviceIdentity {
    DeviceIdentity {
        cert_sha256: cert.sha256_hex,
        not_after: Some(cert.not_after_unix.saturating_mul(1000)),
    }
}

/// A device request body whose sender's identity has been verified. Extracting it reads the
/// body (bounded by the router's body limit) and checks the identity; the handler then parses.
pub struct VerifiedBody {
    pub identity: DeviceIdentity,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl FromRequest<AppState> for VerifiedBody {
    type Rejection = DeviceError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, DeviceError> {
        let headers = req.headers().clone();
        let peer: Option<Vec<u8>> = req
            .extensions()
            .get::<super::tls::PeerCertificate>()
            .and_then(|p| p.0.clone());
        let body = Bytes::from_request(req, state).await?;
        let identity = state.identity.verify(peer.as_deref(), &headers, &body)?;
        Ok(VerifiedBody {
            identity,
            headers,
            body,
        })
    }
}
