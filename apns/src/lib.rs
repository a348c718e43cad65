//! APNs for MDM: the exact request Apple expects for an MDM wake-up push, and what each answer
//! means for the device. The HTTP/2 client and the fake APNs server build on these.
//!
//! Apple: `POST /3/device/<token as lowercase hex>`, body exactly `{"mdm":"<PushMagic>"}` (no
//! `aps`), TLS client certificate = the MDM push certificate, `apns-topic` = its UID.

pub mod notification;
pub mod outcome;

pub use notification::MdmPush;
pub use outcome::{PushOutcome, classify};
