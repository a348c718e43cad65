//! Support for Russet's end-to-end tests: a real server on loopback ([`TestServer`]), simulated
//! Macs that sign their messages ([`SimMac`]), and the database each test server runs on
//! ([`Backend`]); a headless Chromium on the web console ([`browser::Browser`]).

pub mod browser;
pub mod console_http;
pub mod db;
pub mod ddm_mac;
pub mod ddm_state;
pub mod dep;
pub mod managed_mac;
pub mod server;
pub mod sim_mac;

pub use db::Backend;
pub use managed_mac::ManagedMac;
pub use server::TestServer;
pub use sim_mac::{Reply, SimMac};

/// Instantiate each `async fn(Backend)` scenario as a test on SQLite and on PostgreSQL
/// (`mod sqlite { … }`, `mod postgres { … }`). `multi_thread:` first runs them on a
/// multi-threaded runtime (4 workers) instead of tokio's default current-thread one.
///
/// The PostgreSQL tests are compiled as ignored under `cfg(russet_skip_postgres)`, which
/// `build.rs` sets when `RUSSET_TEST_SKIP_POSTGRES=1`; that cfg comes from the build script of
/// the package whose tests expand this macro, so it is meant for `russet-tests` only.
#[macro_export]
macro_rules! on_both_backends {
    (multi_thread: $($name:ident),* $(,)?) => {
        $crate::on_both_backends!(@test tokio::test(flavor = "multi_thread", worker_threads = 4); $($name),*);
    };
    (@test $test:meta; $($name:ident),*) => {
        mod sqlite {
            $(
                #[$test]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[$test]
                #[cfg_attr(russet_skip_postgres, ignore = "RUSSET_TEST_SKIP_POSTGRES is set")]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        $crate::on_both_backends!(@test tokio::test; $($name),*);
    };
}
