//! Build-time steps of `russet-mdm`:
//!
//! - `RUSSET_TEST_SKIP_POSTGRES=1` opts out of the store's PostgreSQL conformance cases: they
//!   are compiled as ignored (`cfg(russet_skip_postgres)`), since libtest can only ignore a
//!   test at compile time and a case that returns early would read as a pass. See
//!   `src/testing.rs`.
//! - Apple's payload schemas (`src/protocol/schema/profiles/*.yaml`, copied unmodified from
//!   apple/device-management) are embedded as a table of `include_str!`s, so a schema file
//!   added to that folder is picked up without editing a list by hand.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(russet_skip_postgres)");
    println!("cargo::rerun-if-env-changed=RUSSET_TEST_SKIP_POSTGRES");
    // The same rule as `russet_mdm::testing::skip_postgres`.
    if std::env::var("RUSSET_TEST_SKIP_POSTGRES").is_ok_and(|v| !v.is_empty() && v != "0") {
        println!("cargo::rustc-cfg=russet_skip_postgres");
    }
    profile_schemas();
}

/// Writes `$OUT_DIR/profile_schemas.rs`: `PROFILE_SCHEMA_FILES: &[(file name, text)]`.
fn profile_schemas() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let dir = manifest.join("src/protocol/schema/profiles");
    println!("cargo::rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("src/protocol/schema/profiles is readable")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    let mut out = String::from("pub(super) const PROFILE_SCHEMA_FILES: &[(&str, &str)] = &[\n");
    for name in &names {
        let path = dir.join(name);
        writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .expect("writing to a String");
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    std::fs::write(out_dir.join("profile_schemas.rs"), out).expect("OUT_DIR is writable");
}
