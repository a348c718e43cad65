//! Support for Russet's end-to-end tests: a real server on loopback ([`TestServer`]), simulated
//! Macs that sign their messages ([`SimMac`]), and throw-away PostgreSQL databases.

pub mod bench;
pub mod db;
pub mod dep;
pub mod server;
pub mod sim_mac;

pub use db::Backend;
pub use server::TestServer;
pub use sim_mac::{Reply, SimMac};

/// Instantiate each `async fn(Backend)` scenario as a test on SQLite and on PostgreSQL
/// (`mod sqlite { … }`, `mod postgres { … }`); PostgreSQL cases skip themselves when
/// `RUSSET_TEST_DATABASE_URL` is unset.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $(#[tokio::test] async fn $name() { super::$name($crate::Backend::Sqlite).await } )* }
        mod postgres { $(#[tokio::test] async fn $name() { super::$name($crate::Backend::Postgres).await } )* }
    };
}
