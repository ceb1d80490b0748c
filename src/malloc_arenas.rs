//! Keeps the worker's resident memory flat on glibc: one malloc arena for
//! the whole process instead of up to eight per core.
//!
//! glibc gives each thread that allocates under contention an arena of its
//! own, and memory freed into one arena is not reused by another, so a
//! long-running process whose tasks hop between tokio's threads (and the
//! blocking threads S3 connections resolve names on) grows its resident set
//! with the hours it has run rather than with its work. lethe's allocations
//! are small and few per S3 call or statement; with one arena the
//! benchmarks ran no slower, and peak memory follows the batch sizes
//! (benches/peak_rss.rs: 26,000 requests at 1.216x the peak of 2,600 with
//! glibc's default, 1.12x with one arena). `MALLOC_ARENA_MAX` in the
//! environment, when set, is left to decide.

/// Call first in `main`, before any thread starts.
pub fn limit() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; it is called
        // before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}
