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
//!
//! A batch's large buffers (its rows, keys and statement arguments, tens to
//! hundreds of KiB) are mapped and unmapped on their own, not carved out of
//! the heap: glibc otherwise raises its mmap threshold after the first such
//! buffer is freed, and later ones fragment the heap, which it does not give
//! back. The seed's largest member grew by ~2.5 MiB over its 18 discovery
//! batches that way: its peak was 39.6-41.4 MiB in three runs, and 36.7
//! and 37.0 MiB in two with the thresholds fixed (2,600 requests: 35.1-35.2
//! against 33.9 and 34.3 MiB; the ratio 1.13-1.18 against 1.07 and 1.09).
//! `MALLOC_MMAP_THRESHOLD_` and
//! `MALLOC_TRIM_THRESHOLD_`, when set, are left to decide.

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
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none()
        && std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_none()
    {
        // SAFETY: as above. Setting either fixes both (no dynamic raise).
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
        }
    }
}
