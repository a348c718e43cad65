//! Apple's DEP (Automated Device Enrollment) API: typed records, the sync cursor contract, and
//! Apple's error codes. The OAuth1 client, the sync loop and the simulator build on these.

pub mod cursor;
pub mod types;

pub use cursor::CursorStore;
pub use types::{DepDevice, FetchResponse, OpType, ProfileStatus};
