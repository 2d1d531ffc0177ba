//! For the unit tests only: an allocator that refuses, on the calling
//! thread, any allocation larger than a set size. A test can then show that
//! a failed allocation of a reply becomes an error, not an abort of the
//! process (what `Vec::push` does when growing fails).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ptr;

thread_local! {
    /// Const-initialised and without `Drop`: reading it never allocates.
    static LIMIT: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn limit() -> usize {
    LIMIT.try_with(Cell::get).unwrap_or(usize::MAX)
}

struct Limited;

// SAFETY: every call is forwarded to `System` unchanged, or refused with a
// null pointer, which `GlobalAlloc` allows for `alloc` and `realloc`.
unsafe impl GlobalAlloc for Limited {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > limit() {
            return ptr::null_mut();
        }
        // SAFETY: the caller upholds `alloc`'s contract, passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > limit() {
            return ptr::null_mut();
        }
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: `block` came from `System` through this allocator.
        unsafe { System.dealloc(block, layout) }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > limit() {
            return ptr::null_mut();
        }
        // SAFETY: `block` came from `System` through this allocator; the
        // caller upholds the rest of `realloc`'s contract.
        unsafe { System.realloc(block, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Limited = Limited;

/// Runs `f` with every allocation above `bytes` refused on this thread.
pub(crate) fn with_limit<T>(bytes: usize, f: impl FnOnce() -> T) -> T {
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            LIMIT.set(self.0);
        }
    }
    let _restore = Restore(LIMIT.replace(bytes));
    f()
}
