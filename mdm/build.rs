//! `RUSSET_TEST_SKIP_POSTGRES=1` opts out of the store's PostgreSQL conformance cases: they are
//! compiled as ignored (`cfg(russet_skip_postgres)`), since libtest can only ignore a test at
//! compile time and a case that returns early would read as a pass. See `src/testing.rs`.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(russet_skip_postgres)");
    println!("cargo::rerun-if-env-changed=RUSSET_TEST_SKIP_POSTGRES");
    // The same rule as `russet_mdm::testing::skip_postgres`.
    if std::env::var("RUSSET_TEST_SKIP_POSTGRES").is_ok_and(|v| !v.is_empty() && v != "0") {
        println!("cargo::rustc-cfg=russet_skip_postgres");
    }
}
