//! Decides, at build time, which end-to-end tests are compiled as ignored: libtest can only
//! ignore a test at compile time, and a test that returns early would read as a pass.
//!
//! - `cfg(russet_skip_postgres)`: `RUSSET_TEST_SKIP_POSTGRES=1`, the explicit opt-out of the
//!   PostgreSQL cases (see `russet_mdm::testing`).
//! - `cfg(russet_no_scepclient)`: Debian's `scepclient` (package `scep`) is not on `PATH`, so
//!   the SCEP interop test cannot run. The probe reruns when `PATH` or one of its directories
//!   changes, so installing `scepclient` (as `.ci/run` does) brings the test back.
//! - `cfg(russet_no_browser)`: Debian's `chromedriver` (package `chromium-driver`, which
//!   brings `chromium`) is not on `PATH`, so the console's browser tests cannot run; found
//!   the same way as `scepclient`.

use std::env;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(russet_skip_postgres)");
    println!("cargo::rerun-if-env-changed=RUSSET_TEST_SKIP_POSTGRES");
    // The same rule as `russet_mdm::testing::skip_postgres`.
    if env::var("RUSSET_TEST_SKIP_POSTGRES").is_ok_and(|v| !v.is_empty() && v != "0") {
        println!("cargo::rustc-cfg=russet_skip_postgres");
    }

    println!("cargo::rustc-check-cfg=cfg(russet_no_scepclient)");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rustc-check-cfg=cfg(russet_no_browser)");
    let mut found = false;
    let mut browser = false;
    for dir in env::split_paths(&env::var_os("PATH").unwrap_or_default()) {
        if !dir.is_absolute() || !dir.is_dir() {
            continue;
        }
        // A directory's mtime changes when a file is added to or removed from it.
        println!("cargo::rerun-if-changed={}", dir.display());
        found |= dir.join("scepclient").is_file();
        browser |= dir.join("chromedriver").is_file();
    }
    if !found {
        println!("cargo::rustc-cfg=russet_no_scepclient");
    }
    if !browser {
        println!("cargo::rustc-cfg=russet_no_browser");
    }
}
