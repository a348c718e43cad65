//! PKI and CMS for Russet: pure functions over bytes, no I/O.
//!
//! * [`identity`]: who sent a device request (`Mdm-Signature`, proxy-forwarded client
//!   certificate) and whether that certificate is an accepted device identity.
//! * [`ca`]: Russet's RSA certificate authority (device identities, dev TLS certificate).
//! * [`scep`]: the SCEP message layer (PKIOperation parse/decrypt, CertRep) and a client.
//! * [`machine_info`]: the Apple-signed MachineInfo an ADE Mac posts during Setup Assistant.
//! * [`profile_sign`]: attached CMS signing of configuration profiles.
//! * [`escrow`]: the FileVault escrow key pair and the envelopes Macs encrypt to it.
//! * `testing` (feature `test-util`): a fake device CA and devices for tests and load harnesses.

pub mod ca;
pub mod escrow;
mod fast_cms;
pub mod identity;
pub mod machine_info;
pub mod profile_sign;
pub mod pushcert;
pub mod scep;
mod signer;
mod signer_cache;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;

pub use identity::{
    DeviceCertificate, DeviceTrust, IdentityError, MAX_CLIENT_CERT_HEADER, MAX_SIGNATURE_DER,
    MdmSigner, parse_client_cert_header, verify_mdm_signature, verify_mdm_signature_fast,
};
