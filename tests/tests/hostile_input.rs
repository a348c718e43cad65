//! Hostile input, proven (issue 20): every parser that takes outside bytes, fuzzed on the stable
//! toolchain. Each target starts from real inputs (the project's fixtures, messages the test CA
//! signs), mutates them, and checks no panic, bounded time and heap, and the parser's own
//! consistency properties.
//!
//! `cargo test -p russet-tests --test hostile_input` runs `engine::CI_CASES` cases per target
//! (part of `cargo test --workspace`). A long campaign:
//!
//! ```text
//! RUSSET_FUZZ_CASES=200000 cargo test --release -p russet-tests --test hostile_input
//! ```
//!
//! A failure prints the shrunk input; what a campaign finds becomes a named test in
//! `regressions` (and a fix).

#[path = "hostile_input/admin.rs"]
mod admin;
#[path = "hostile_input/device.rs"]
mod device;
#[path = "hostile_input/engine.rs"]
mod engine;
#[path = "hostile_input/regressions.rs"]
mod regressions;
#[path = "hostile_input/signatures.rs"]
mod signatures;

#[global_allocator]
static ALLOC: engine::CountingAlloc = engine::CountingAlloc;
