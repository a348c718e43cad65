//! APNs in the server: the dispatcher that wakes devices when they have work, and the push
//! certificate lifecycle (CSR, import, renewal, status).

pub mod certificate;
pub mod dispatcher;

pub use dispatcher::{Dispatcher, DispatcherSettings};

/// Settings key holding the last APNs refusal of the push certificate (403 and friends), shown
/// in `russet apns status` until a new certificate is imported.
pub const SETTING_PUSH_ALERT: &str = "apns.alert";
