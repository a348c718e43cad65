//! APNs for MDM: the exact request Apple expects for an MDM wake-up push, what each answer
//! means for the device, and the HTTP/2 client that sends them.
//!
//! Apple: `POST /3/device/<token as lowercase hex>`, body exactly `{"mdm":"<PushMagic>"}` (no
//! `aps`), TLS client certificate = the MDM push certificate, `apns-topic` = its UID.
//!
//! With the `fake` feature, [`fake`] is an APNs stand-in for tests and demos.

pub mod cert;
pub mod client;
pub mod notification;
pub mod outcome;

#[cfg(feature = "fake")]
pub mod fake;

pub use cert::{CertificateError, PushCertificate};
pub use client::{ApnsClient, ApnsConfig, ClientError, LATENCY_METRIC, RetryPolicy};
pub use notification::MdmPush;
pub use outcome::{PushOutcome, classify};
