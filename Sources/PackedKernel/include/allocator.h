// The C library's allocator settings that Swift cannot reach (mallopt is in malloc.h,
// which Glibc's Swift module does not export).
#ifndef SUNEUNG_ALLOCATOR_H
#define SUNEUNG_ALLOCATOR_H

/// Allocations of at least `bytes` get pages of their own, returned to the system when
/// freed, with the threshold fixed (glibc raises it after each such free otherwise).
/// Does nothing where the C library is not glibc.
void suneung_fix_mmap_threshold(int bytes);

#endif
