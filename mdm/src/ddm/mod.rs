//! Declarative Device Management (issue 17): the DDM channel and what is built on it.
//!
//! - `declarations.rs`: a Mac's declaration set, its tokens and Apple's JSON answers (pure);
//! - `channel.rs`: the core's `DeclarativeChannel` (`tokens`, `declaration-items`,
//!   `declaration/<kind>/<identifier>`, `status`) and the `DeviceObserver` that queues the
//!   `DeclarativeManagement` command when a Mac's set changes;
//! - `status.rs`: status reports read and bounded (pure);
//! - `os_updates.rs`, `os_update_input.rs`: OS updates enforced per group with
//!   `com.apple.configuration.softwareupdate.enforcement.specific`, and each Mac's state;
//! - `uploads.rs`: declarations an admin uploads for a group, checked against Apple's
//!   declarative schemas (`protocol::declaration`);
//! - `views.rs`: JSON shapes.
//!
//! Storage `store/ddm.rs` (migration 0020), routes `http/os_updates.rs`, CLI
//! `cli/os_update.rs`. Apple's schemas: `declarative/` in Apple's device-management repository.

mod channel;
pub mod declarations;
pub mod os_update_input;
pub mod os_updates;
pub mod status;
mod uploads;
pub mod views;

pub use channel::DeviceDdm;

use crate::service::MdmService;
use crate::store::Store;
use std::sync::Arc;

pub struct DdmService {
    store: Arc<dyn Store>,
    /// The core: group memberships, and where the DeclarativeManagement command is queued.
    service: Arc<MdmService>,
}

impl DdmService {
    pub fn new(store: Arc<dyn Store>, service: Arc<MdmService>) -> Self {
        DdmService { store, service }
    }
}
