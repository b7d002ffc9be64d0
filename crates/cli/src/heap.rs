//! The process's allocator settings for training.
//!
//! A training step allocates and frees the same large activation buffers every step. With
//! glibc's defaults, blocks above a (self-adjusting) threshold are mapped and unmapped per
//! allocation and freed memory at the top of the heap is handed back to the kernel, so each
//! step pays for page faults and zeroed pages again. Both engines, and PyTorch itself, spend a
//! tenth to a quarter of a step on that here: PyTorch 2.11 on SimpleCNN(2,3)/(4,7), 2 threads,
//! took 69–85 / 98–131 ms per step with the defaults and 57–59 / 88–91 ms with these settings.
//! The cost is that the process keeps up to 1 GiB of freed memory for reuse instead of
//! returning it at once.

/// Blocks up to 32 MiB (glibc's largest mapping threshold on 64-bit) come from the heap, and
/// up to 1 GiB of free memory at its top is kept. Returns whether glibc accepted both settings
/// (always true elsewhere, where nothing is changed).
pub fn keep_training_buffers() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets two of glibc's allocation thresholds; it is called once,
        // at start-up, and takes no pointers.
        let (mmap, trim) = unsafe {
            (
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20),
                libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30),
            )
        };
        mmap == 1 && trim == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        true
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn glibc_accepts_the_settings() {
        assert!(super::keep_training_buffers());
    }
}
