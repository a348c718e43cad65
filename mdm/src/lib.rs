//! Russet: an Apple MDM + DEP server. The binary `russet` is `main.rs`; this library holds
//! everything so the end-to-end tests can start the real server in-process.

pub mod cli;
pub mod config;
pub mod console;
pub mod ddm;
pub mod dep;
pub mod filter;
pub mod fsutil;
pub mod http;
pub mod inventory;
pub mod profiles;
pub mod protocol;
pub mod push;
pub mod secrets;
pub mod server;
pub mod service;
pub mod store;
pub mod telemetry;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
pub mod timefmt;
pub mod views;
pub mod webhooks;
