//! Giving memory back after a full sync. Rendering 10,000 services allocates far more than
//! the proxy keeps; glibc holds on to the freed pages unless asked, so the node agent asks
//! once each full sync is done.

/// Returns the allocator's free pages to the system (glibc; elsewhere nothing to do).
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of glibc's heaps.
    unsafe {
        libc::malloc_trim(0);
    }
}
