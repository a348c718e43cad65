//! Apple MDM wire types: check-in messages, command reports, enrollment IDs and command
//! builders validated against Apple's own schemas (apple/device-management).
//!
//! Decoding and encoding only: no HTTP, no SQL, no policy. Every `decode_*` function runs the
//! nesting-depth guard ([`guard::check_plist`]) before the bytes reach the `plist` crate.

pub mod builders;
pub mod checkin;
pub mod command;
pub mod convert;
pub mod declaration;
pub mod enrollment;
pub mod filevault;
pub mod guard;
pub mod inventory;
pub mod machine_info;
pub mod mobileconfig;
pub mod profile_list;
pub mod report;
pub mod schema;
mod values;

pub use builders::{FileVaultKeyType, ObliterationBehavior};
pub use checkin::{
    Authenticate, CheckOut, CheckinMessage, DeclarativeManagement, GetBootstrapToken, GetToken,
    SetBootstrapToken, TokenUpdate, UserAuthenticate, decode_checkin,
};
pub use command::{Command, SUPPORTED_REQUEST_TYPES};
pub use convert::plist_to_json;
pub use enrollment::{Enrollment, EnrollmentType};
pub use guard::{MAX_BODY_BYTES, MAX_DEPTH, check_plist};
pub use report::{CommandReport, ErrorChainItem, ReportStatus, decode_report};

/// Everything that can go wrong turning bytes into Apple's types (or Russet's commands into
/// bytes). Messages name the offending key so an operator can act on them.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProtocolError {
    /// The plist nests deeper than [`MAX_DEPTH`]; refused before parsing (the `plist` crate
    /// recurses without a limit and would overflow the stack).
    #[error("plist nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// The body is larger than [`MAX_BODY_BYTES`].
    #[error("plist body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    /// Not a plist, wrong value types, or a required key is missing.
    #[error("malformed plist: {0}")]
    Malformed(String),
    /// A check-in `MessageType` this server does not know.
    #[error("unknown check-in MessageType {0:?}")]
    UnknownMessageType(String),
    /// A command `RequestType` outside [`SUPPORTED_REQUEST_TYPES`].
    #[error("unsupported command RequestType {0:?}")]
    UnsupportedRequestType(String),
    /// The command breaks Apple's schema (or a Russet rule); every problem is listed.
    #[error("invalid command: {0}")]
    Invalid(String),
}
