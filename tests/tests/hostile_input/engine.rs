//! The mutation engine every target shares: real inputs (the project's fixtures, and messages
//! built by the test CA), changed the way coverage fuzzers change them — bit flips, bytes set to
//! boundary values, inserted format tokens, deletions, duplicated and spliced runs, truncation —
//! plus some plain random bytes. `proptest` drives it on the stable toolchain and shrinks a
//! failing input to a small one.
//!
//! Each case also checks two bounds on the parser: time (`RUSSET_FUZZ_CASE_MS`, 5 s by default:
//! a hang or a quadratic blow-up, not a benchmark) and memory (the peak of the Rust heap
//! allocated while parsing, counted by the test binary's allocator: 1 MiB + 256 × the input).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::Config;

/// Cases each target runs when `RUSSET_FUZZ_CASES` is not set: what `cargo test` runs in CI.
pub const CI_CASES: u32 = 256;

/// How many cases a target runs: `RUSSET_FUZZ_CASES` (a long campaign) or `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("RUSSET_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The runner's configuration: no regression files written (findings become named tests).
pub fn config(default: u32) -> Config {
    Config {
        cases: cases(default),
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..Config::default()
    }
}

fn case_limit() -> Duration {
    let ms = std::env::var("RUSSET_FUZZ_CASE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    Duration::from_millis(ms)
}

/// Runs one parser call on `input`, checking the time and heap bounds.
pub fn bounded<T>(what: &str, input_len: usize, f: impl FnOnce() -> T) -> T {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let start = Instant::now();
    let out = f();
    let elapsed = start.elapsed();
    let peak = usize::try_from(PEAK.with(Cell::get) - base).unwrap_or(0);
    assert!(
        elapsed < case_limit(),
        "{what} took {elapsed:?} on a {input_len}-byte input"
    );
    let limit = (1 << 20) + 256 * input_len;
    assert!(
        peak <= limit,
        "{what} allocated {peak} bytes at its peak on a {input_len}-byte input (limit {limit})"
    );
    out
}

/// A position in an input as a fraction of its length (`raw / 2^64`), so a mutation means the
/// same place whatever the earlier mutations did to the length; shrinks toward the start.
pub type Pos = usize;

fn pick(raw: Pos, len: usize) -> usize {
    ((len as u128 * raw as u128) >> usize::BITS) as usize
}

/// A change to an input.
#[derive(Debug, Clone)]
pub enum Mutation {
    FlipBit(Pos, u8),
    SetByte(Pos, u8),
    Boundary(Pos, Pos),
    Insert(Pos, Vec<u8>),
    Token(Pos, Pos),
    Delete(Pos, usize),
    Duplicate(Pos, Pos, usize),
    Splice(Pos, Pos, Pos, usize),
    Truncate(Pos),
}

const BOUNDARY: &[u8] = &[0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0x84, 0xfe, 0xff];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Pos>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        2 => (any::<Pos>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        2 => (any::<Pos>(), any::<Pos>()).prop_map(|(i, b)| Mutation::Boundary(i, b)),
        1 => (any::<Pos>(), vec(any::<u8>(), 1..16)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        3 => (any::<Pos>(), any::<Pos>()).prop_map(|(i, t)| Mutation::Token(i, t)),
        2 => (any::<Pos>(), 1usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
        1 => (any::<Pos>(), any::<Pos>(), 1usize..512)
            .prop_map(|(a, b, n)| Mutation::Duplicate(a, b, n)),
        1 => (any::<Pos>(), any::<Pos>(), any::<Pos>(), 1usize..512)
            .prop_map(|(s, a, b, n)| Mutation::Splice(s, a, b, n)),
        1 => any::<Pos>().prop_map(Mutation::Truncate),
    ]
}

/// `data` with `mutations` applied in order; `tokens` are the format's words (`<dict>`, a DER
/// indefinite length, ` and `…), `seeds` the inputs a splice takes runs from.
pub fn apply(
    mut data: Vec<u8>,
    mutations: &[Mutation],
    tokens: &[&[u8]],
    seeds: &[Vec<u8>],
) -> Vec<u8> {
    for m in mutations {
        let len = data.len();
        match m {
            Mutation::FlipBit(i, bit) if len > 0 => data[pick(*i, len)] ^= 1 << bit,
            Mutation::SetByte(i, b) if len > 0 => data[pick(*i, len)] = *b,
            Mutation::Boundary(i, b) if len > 0 => {
                data[pick(*i, len)] = BOUNDARY[pick(*b, BOUNDARY.len())]
            }
            Mutation::Insert(i, bytes) => {
                let at = pick(*i, len + 1);
                data.splice(at..at, bytes.iter().copied());
            }
            Mutation::Token(i, t) if !tokens.is_empty() => {
                let at = pick(*i, len + 1);
                data.splice(at..at, tokens[pick(*t, tokens.len())].iter().copied());
            }
            Mutation::Delete(i, n) if len > 0 => {
                let at = pick(*i, len);
                data.drain(at..(at + n).min(len));
            }
            Mutation::Duplicate(from, to, n) if len > 0 => {
                let a = pick(*from, len);
                let run: Vec<u8> = data[a..(a + n).min(len)].to_vec();
                let at = pick(*to, len + 1);
                data.splice(at..at, run);
            }
            Mutation::Splice(s, from, to, n) if !seeds.is_empty() => {
                let other = &seeds[pick(*s, seeds.len())];
                if !other.is_empty() {
                    let a = pick(*from, other.len());
                    let run = other[a..(a + n).min(other.len())].to_vec();
                    let at = pick(*to, len + 1);
                    data.splice(at..at, run);
                }
            }
            Mutation::Truncate(i) if len > 0 => data.truncate(pick(*i, len)),
            _ => {}
        }
    }
    data
}

/// A generated input: bytes that print as an escaped byte string when a case fails.
#[derive(Clone, PartialEq, Eq)]
pub struct Input(pub Vec<u8>);

impl std::ops::Deref for Input {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes: b\"{}\"", self.0.len(), self.0.escape_ascii())
    }
}

/// Inputs for a target: a seed with 1–8 mutations (nine in ten), or random bytes.
pub fn mutated(seeds: Vec<Vec<u8>>, tokens: &'static [&'static [u8]]) -> BoxedStrategy<Input> {
    assert!(!seeds.is_empty(), "a fuzz target needs seeds");
    let pool = seeds.clone();
    prop_oneof![
        9 => (select(seeds), vec(mutation(), 1..8))
            .prop_map(move |(seed, ms)| Input(apply(seed, &ms, tokens, &pool))),
        1 => vec(any::<u8>(), 0..512).prop_map(Input),
    ]
    .boxed()
}

/// Like [`mutated`], as text (invalid UTF-8 replaced), for parsers that take `&str`.
pub fn mutated_text(seeds: &[&str], tokens: &'static [&'static [u8]]) -> BoxedStrategy<String> {
    let seeds = seeds.iter().map(|s| s.as_bytes().to_vec()).collect();
    mutated(seeds, tokens)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
        .boxed()
}

/// The workspace's root (fixtures live in `mdm/testdata/` and `certs/testdata/`).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Every file under `dir` (relative to the workspace), recursively, sorted.
pub fn fixtures(dir: &str) -> Vec<Vec<u8>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&workspace().join(dir), &mut paths);
    paths.sort();
    let files: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect();
    assert!(!files.is_empty(), "no fixtures under {dir}");
    files
}

// The heap counter behind `bounded`: bytes allocated minus bytes freed by this thread, and its
// peak (proptest runs a target's cases on the test's own thread). Signed: a thread also frees
// what others allocated. Const thread-locals of `Cell<isize>` need no allocation and no
// destructor, so the allocator may touch them.
thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

pub struct CountingAlloc;

fn grew(n: usize) {
    let n = isize::try_from(n).unwrap_or(isize::MAX);
    let _ = LIVE.try_with(|l| {
        let now = l.get().saturating_add(n);
        l.set(now);
        let _ = PEAK.try_with(|p| {
            if now > p.get() {
                p.set(now);
            }
        });
    });
}

fn shrank(n: usize) {
    let n = isize::try_from(n).unwrap_or(isize::MAX);
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(n)));
}

// SAFETY: every call forwards to `System` unchanged; the counters only observe sizes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: same layout, same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            grew(new_size - layout.size());
        } else {
            shrank(layout.size() - new_size);
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
