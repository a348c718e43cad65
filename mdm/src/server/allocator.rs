//! glibc's allocator, set for a server process.
//!
//! glibc gives threads that allocate at the same time arenas of their own, up to eight per
//! core, and memory freed in an arena is reused only from that arena. Russet's threads are
//! tokio's workers, its blocking pool and sqlx's one thread per SQLite connection: in a 100k
//! push fan-out on SQLite each grew an arena, and the process's peak was 115.3 MiB with glibc's
//! default, 105.4 MiB with two arenas and 98.6 MiB with one (docs/benchmarks.md, issue 19).
//! One arena per core keeps most of that gain without making every thread of a larger machine
//! wait on one allocator lock. `MALLOC_ARENA_MAX` in the environment still wins.

/// Limit glibc's arenas to one per core. Call before any thread starts (it only sets a
/// parameter; later calls work too, but arenas already made stay).
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt sets one of glibc's allocator parameters; it is safe to call at any
        // time from any thread, and M_ARENA_MAX takes any positive count.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}
