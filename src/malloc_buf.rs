//! A buffer from `malloc`, filled front to back, that can be handed to C
//! (which releases it with `ors_free`).
//!
//! Why: `ors_session_get` promises a `malloc`'d buffer. Reading the value
//! straight into one saves a copy and a second allocation per get.

use std::fmt;
use std::ptr::NonNull;

/// A buffer meant to hold `len` bytes, of which `filled` (a prefix) are
/// written so far; `cap` bytes are allocated, and up to `zeroed` they are
/// initialised. Freed on drop unless handed out with [`MallocBuf::into_raw`].
pub struct MallocBuf {
    ptr: NonNull<u8>,
    len: usize,
    cap: usize,
    filled: usize,
    zeroed: usize,
}

/// `realloc` failed: the buffer is as it was, and the bytes it was to hold
/// cannot be read into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfMemory {
    /// The whole value's length, as announced.
    pub len: usize,
    /// The allocation that failed.
    pub cap: usize,
}

impl fmt::Display for OutOfMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "out of memory: could not grow the buffer of a {}-byte value to {} bytes",
            self.len, self.cap
        )
    }
}

/// Allocated up front, whatever length is announced; beyond this the buffer
/// grows as bytes arrive, so that a lying length (from a broken or hostile
/// peer) costs nothing until the bytes really come.
const FIRST_ALLOCATION: usize = 64 * 1024;

impl MallocBuf {
    /// A buffer for `len` bytes; `None` when `malloc` fails.
    pub fn new(len: usize) -> Option<MallocBuf> {
        let cap = len.clamp(1, FIRST_ALLOCATION);
        // SAFETY: plain allocation of at least one byte (malloc(0) may
        // return NULL; the contract promises a pointer); checked for NULL.
        let raw = unsafe { libc::malloc(cap) }.cast::<u8>();
        NonNull::new(raw).map(|ptr| MallocBuf {
            ptr,
            len,
            cap,
            filled: 0,
            zeroed: 0,
        })
    }

    /// Makes room for `more` bytes after the filled ones. Panics past
    /// `len` (a bug); a failed `realloc` is an error, since the length came
    /// from the network.
    fn reserve(&mut self, more: usize) -> Result<(), OutOfMemory> {
        assert!(more <= self.len - self.filled, "MallocBuf overflow");
        let need = self.filled + more;
        if need <= self.cap {
            return Ok(());
        }
        let cap = need.max(self.cap.saturating_mul(2)).min(self.len);
        // SAFETY: `ptr` came from malloc/realloc; realloc keeps the first
        // `cap` old bytes (so `filled` and `zeroed` stay true) and the result
        // is checked for NULL, in which case the old block is still ours.
        let raw = unsafe { libc::realloc(self.ptr.as_ptr().cast(), cap) }.cast::<u8>();
        self.ptr = NonNull::new(raw).ok_or(OutOfMemory { len: self.len, cap })?;
        self.cap = cap;
        Ok(())
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
    pub fn push(&mut self, src: &[u8]) -> Result<(), OutOfMemory> {
        self.reserve(src.len())?;
        // SAFETY: the destination range filled..filled+src.len() is inside
        // the allocation (reserved above) and cannot overlap `src`, which is
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
        Ok(())
    }

    /// Room after the content (at least `want` bytes, or all that is left),
    /// initialised so that it may be handed to `Read::read`; call
    /// [`MallocBuf::advance`] with what was read into it. Bytes are zeroed
    /// once, however many reads they take.
    pub fn unfilled_mut(&mut self, want: usize) -> Result<&mut [u8], OutOfMemory> {
        let more = want.min(self.len - self.filled);
        self.reserve(more)?;
        let target = self.filled + more;
        if self.zeroed < target {
            // SAFETY: zeroed..target is inside the allocation (reserved).
            unsafe {
                std::ptr::write_bytes(self.ptr.as_ptr().add(self.zeroed), 0, target - self.zeroed)
            };
            self.zeroed = target;
        }
        // SAFETY: filled..zeroed is inside the allocation and initialised.
        Ok(unsafe {
            std::slice::from_raw_parts_mut(
                self.ptr.as_ptr().add(self.filled),
                self.zeroed - self.filled,
            )
        })
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
        buf.push(b"ab").unwrap();
        let rest = buf.unfilled_mut(100).unwrap();
        assert_eq!(rest, [0u8; 4]);
        rest[..3].copy_from_slice(b"cde");
        buf.advance(3);
        assert_eq!(buf.unfilled_mut(0).unwrap(), [0u8; 1]);
        buf.push(b"f").unwrap();
        assert_eq!(buf.as_slice(), b"abcdef");
        let (ptr, len) = buf.into_raw();
        assert_eq!(len, 6);
        // SAFETY: into_raw handed over a malloc'd pointer.
        unsafe { libc::free(ptr.cast()) };
    }

    #[test]
    fn grows_as_bytes_arrive_not_as_announced() {
        let len = 5 * FIRST_ALLOCATION + 3;
        let mut buf = MallocBuf::new(len).unwrap();
        assert_eq!(buf.cap, FIRST_ALLOCATION);
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut at = 0;
        while at < len {
            let n = (len - at).min(10_000);
            if at % 20_000 == 0 {
                buf.push(&data[at..at + n]).unwrap();
            } else {
                let room = buf.unfilled_mut(n).unwrap();
                room[..n].copy_from_slice(&data[at..at + n]);
                buf.advance(n);
            }
            at += n;
            assert!(buf.cap <= len);
        }
        assert!(buf.as_slice() == data);
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
        let _ = buf.push(b"abc");
    }

    #[test]
    fn a_failed_realloc_is_an_error_and_keeps_the_buffer() {
        // A value announced longer than any allocation can be: growing the
        // buffer to it must fail cleanly, not panic, and keep what was read.
        let len = isize::MAX as usize;
        let mut buf = MallocBuf::new(len).unwrap();
        buf.push(&[7u8; 100]).unwrap();
        let err = buf.unfilled_mut(usize::MAX).unwrap_err();
        assert_eq!(err, OutOfMemory { len, cap: len });
        assert!(err.to_string().starts_with("out of memory"), "{err}");
        assert_eq!(buf.as_slice(), [7u8; 100]);
        buf.push(b"x").unwrap();
        assert_eq!(buf.filled(), 101);
    }
}
