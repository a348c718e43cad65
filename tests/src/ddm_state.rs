//! What a simulated Mac keeps of Declarative Device Management (the client itself is
//! `ddm_mac.rs`; the state lives apart so `managed_mac.rs` holds it without importing the
//! client, which extends `ManagedMac`).

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// What the Mac keeps of DDM.
#[derive(Debug, Clone, Default)]
pub struct DdmState {
    /// The `DeclarationsToken` of the declarations it holds.
    pub token: Option<String>,
    /// The `SyncTokens` of a `DeclarativeManagement` command not yet acted on.
    pub sync_due: Option<Value>,
    /// The `Data` of every `DeclarativeManagement` command received, in order.
    pub commands: Vec<Value>,
    /// Installed declarations by identifier: the declaration JSON as fetched.
    pub declarations: BTreeMap<String, Value>,
    /// Syncs that fetched `declaration-items`.
    pub item_fetches: usize,
    /// Declarations fetched one by one (every `declaration/…` request).
    pub declaration_fetches: usize,
    /// `softwareupdate.install-state`: none, downloading, prepared, installing, failed.
    pub install_state: String,
    pub failure_reason: Option<String>,
    /// Identifiers the Mac finds invalid (reported `valid: invalid`, never active).
    pub refuse: BTreeSet<String>,
}
