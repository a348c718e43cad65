//! Apple's DEP (Automated Device Enrollment) API: typed records, server tokens, the OAuth1
//! client, the database-independent sync loop, and a DEP simulator for tests and `russet dep-sim`.

pub mod client;
pub mod cursor;
pub mod error;
mod retry;
pub mod sim;
pub mod sync;
pub mod token;
pub mod types;

pub use client::{DEFAULT_BASE_URL, DEFAULT_PROTOCOL_VERSION, DepClient, RetryPolicy};
pub use cursor::CursorStore;
pub use error::DepError;
pub use sync::{
    DeviceSink, SyncError, SyncOptions, SyncPhase, SyncProgress, SyncReport, sync_once,
    sync_once_with,
};
pub use token::{OAuthTokens, TokenError, decrypt_token, generate_link_keypair};
pub use types::{
    AccountDetail, ActivationLockRequest, ActivationLockResponse, AssignProfileResponse,
    DefineProfileResponse, DepDevice, DeviceDetailsResponse, DeviceStatus, DeviceStatusResponse,
    FetchResponse, OpType, Profile, ProfileStatus,
};
