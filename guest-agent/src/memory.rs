//! Giving memory back to the OS after bursts (pulls), so the idle engine stays small.

/// Returns freed heap pages to the kernel. glibc keeps per-thread arenas after a burst
/// of allocations on the blocking pool; trimming brings RSS back near the idle level.
pub fn release() {
    // SAFETY: malloc_trim only walks glibc's own allocator state; it is thread-safe.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
}
