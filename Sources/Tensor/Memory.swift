import PackedKernel

/// The process's allocator, tuned for the engine's buffers.
public enum Memory {
    /// Every allocation of 1 MiB or more gets pages of its own, handed back when freed.
    /// glibc otherwise raises that threshold each time such a block is freed, and the
    /// prompt-sized buffers of later items come from the heap, where freed space stays
    /// resident: `predict` on 20 long prompts peaked at 512 MB, 465 MB with this.
    public static func returnLargeBlocksWhenFreed() {
        suneung_fix_mmap_threshold(1 << 20)
    }
}
