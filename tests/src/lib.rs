//! Support for Russet's end-to-end tests: a real server on loopback ([`TestServer`]), simulated
//! Macs that sign their messages ([`SimMac`]), and throw-away PostgreSQL databases.

pub mod bench;
pub mod db;
pub mod server;
pub mod sim_mac;

pub use db::Backend;
pub use server::TestServer;
pub use sim_mac::{Reply, SimMac};
