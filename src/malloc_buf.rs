//! A buffer from `malloc`, filled front to back, that can be handed to C
//! (which releases it with `ors_free`).
//!
//! Why: `ors_session_get` promises a `malloc`'d buffer. Reading the value
//! straight into one saves a copy and a second allocation per get.

use std::ptr::NonNull;

/// Owns `len` bytes from `malloc`: `filled` of them (a prefix) are the
/// content, and up to `zeroed` they are initialised. Freed on drop unless
/// handed out with [`MallocBuf::into_raw`].
pub struct MallocBuf {
    ptr: NonNull<u8>,
    len: usize,
    filled: usize,
    zeroed: usize,
}

impl MallocBuf {
    /// Allocates `len` uninitialised bytes; `None` when `malloc` fails.
    pub fn new(len: usize) -> Option<MallocBuf> {
        // malloc(0) may return NULL; the contract promises a pointer.
        // SAFETY: plain allocation; the result is checked for NULL.
        let raw = unsafe { libc::malloc(len.max(1)) }.cast::<u8>();
        NonNull::new(raw).map(|ptr| MallocBuf {
            ptr,
            len,
            filled: 0,
            zeroed: 0,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many bytes (from the front) are written so far.
    pub fn filled(&self) -> usize {
        self.filled
    }

    /// Appends `src` after what is filled. Panics past the end (a bug).
    pub fn push(&mut self, src: &[u8]) {
        assert!(src.len() <= self.len - self.filled, "MallocBuf overflow");
        // SAFETY: the destination range filled..filled+src.len() is inside
        // the allocation (checked above) and cannot overlap `src`, which is
        // borrowed from elsewhere while `self` is borrowed mutably.
        unsafe {
            std::ptr::copy_nonoverlapping(
                src.as_ptr(),
                self.ptr.as_ptr().add(self.filled),
                src.len(),
            )
        };
        self.filled += src.len();
        self.zeroed = self.zeroed.max(self.filled);
    }

    /// Room after the content (at least `want` bytes, or all that is left),
    /// initialised so that it may be handed to `Read::read`; call
    /// [`MallocBuf::advance`] with what was read into it. Bytes are zeroed
    /// once, however many reads they take.
    pub fn unfilled_mut(&mut self, want: usize) -> &mut [u8] {
        let target = self.filled + want.min(self.len - self.filled);
        if self.zeroed < target {
            // SAFETY: zeroed..target is inside the allocation.
            unsafe {
                std::ptr::write_bytes(self.ptr.as_ptr().add(self.zeroed), 0, target - self.zeroed)
            };
            self.zeroed = target;
        }
        // SAFETY: filled..zeroed is inside the allocation and initialised.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.ptr.as_ptr().add(self.filled),
                self.zeroed - self.filled,
            )
        }
    }

    /// Marks `n` more bytes as content after a read into
    /// [`MallocBuf::unfilled_mut`].
    pub fn advance(&mut self, n: usize) {
        assert!(n <= self.zeroed - self.filled, "MallocBuf overflow");
        self.filled += n;
    }

    /// The filled bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the first `filled` bytes were written (push/advance).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.filled) }
    }

    /// Gives up ownership: the caller frees the pointer with `free`.
    pub fn into_raw(self) -> (*mut u8, usize) {
        let out = (self.ptr.as_ptr(), self.filled);
        std::mem::forget(self);
        out
    }
}

impl Drop for MallocBuf {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from malloc and was not handed out (into_raw
        // forgets `self`).
        unsafe { libc::free(self.ptr.as_ptr().cast()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_front_to_back() {
        let mut buf = MallocBuf::new(6).unwrap();
        assert_eq!(buf.as_slice(), b"");
        buf.push(b"ab");
        let rest = buf.unfilled_mut(100);
        assert_eq!(rest, [0u8; 4]);
        rest[..3].copy_from_slice(b"cde");
        buf.advance(3);
        assert_eq!(buf.unfilled_mut(0), [0u8; 1]);
        buf.push(b"f");
        assert_eq!(buf.as_slice(), b"abcdef");
        let (ptr, len) = buf.into_raw();
        assert_eq!(len, 6);
        // SAFETY: into_raw handed over a malloc'd pointer.
        unsafe { libc::free(ptr.cast()) };
    }

    #[test]
    fn empty_buffers_have_a_pointer() {
        let buf = MallocBuf::new(0).unwrap();
        assert!(buf.is_empty());
        let (ptr, len) = buf.into_raw();
        assert!(!ptr.is_null());
        assert_eq!(len, 0);
        // SAFETY: as above.
        unsafe { libc::free(ptr.cast()) };
    }

    #[test]
    #[should_panic(expected = "MallocBuf overflow")]
    fn overflow_is_caught() {
        let mut buf = MallocBuf::new(2).unwrap();
        buf.push(b"abc");
    }
}
