use crate::filter::FilterError;
use crate::protocol::ProtocolError;
use crate::secrets::SecretError;
use crate::store::StoreError;

/// Everything the service can refuse, in protocol terms. The HTTP layer maps each variant to a
/// status code in one place; none of them is ever a 401 to a device (that would unenroll it).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The body is not a message we understand.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The identity certificate belongs to another enrollment, or to none.
    #[error("identity certificate is not bound to enrollment {0}")]
    IdentityMismatch(String),
    /// A message other than Authenticate from a device we don't know (or that checked out).
    #[error("enrollment {0} is unknown or not enrolled")]
    NotEnrolled(String),
    /// A push certificate is configured and the message names another topic.
    #[error("topic {got} does not match the push certificate topic")]
    WrongTopic { got: String },
    /// GetToken for a service type Russet does not serve.
    #[error("unsupported token service type {0}")]
    UnsupportedTokenService(String),
    /// Admin input that is well-formed but not allowed.
    #[error("{0}")]
    Refused(String),
    /// Malformed admin input.
    #[error("{0}")]
    BadRequest(String),
    /// A device filter that does not parse: where, and what was expected there.
    #[error(transparent)]
    InvalidFilter(#[from] FilterError),
    /// The request conflicts with the device's state (e.g. a wipe already sent).
    #[error("{0}")]
    Conflict(String),
    /// A cancel came too late: the device already received the command (the text says when).
    #[error("{0}")]
    AlreadyDelivered(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// APNs declared the device's push token dead; it is pushed again after its next
    /// TokenUpdate.
    #[error(
        "APNs reported this device's token dead: {0}; it is pushed again after its next TokenUpdate"
    )]
    PushBlocked(String),
    #[error("no push certificate is configured (russet apns import)")]
    NoPushCertificate,
    /// This server does not run the CSR-signing broker.
    #[error("this server has no vendor credentials (--vendor-cert, --vendor-key)")]
    VendorNotConfigured,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// Russet's own stored data is unusable (a bug or a damaged database).
    #[error("internal error: {0}")]
    Internal(String),
}
