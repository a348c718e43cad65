//! APNs in the server: the dispatcher that wakes devices when they have work, the push
//! certificate lifecycle (CSR, import, renewal, status), and the admin's push service.

pub mod certificate;
pub mod dispatcher;
mod service;

pub use dispatcher::{Dispatcher, DispatcherSettings};
pub use service::PushService;

/// Settings key holding the last APNs refusal of the push certificate (403 and friends), shown
/// in `russet apns status` until a new certificate is imported.
pub const SETTING_PUSH_ALERT: &str = "apns.alert";
