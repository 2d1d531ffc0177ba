//! Packing commands into RESP2, into a buffer the caller reuses.
//!
//! Every command is an array of bulk strings: `*<n>\r\n` then, per argument,
//! `$<len>\r\n<bytes>\r\n`. Values are binary-safe that way.
//!
//! `Command` is the data path's one encoder: it packs one command or a
//! pipeline into a buffer kept from call to call (no allocation once it has
//! grown), and may leave one argument out (put's value), so that it is sent
//! from the caller's memory by one `writev` of three parts, never copied.

/// Appends one command to `out`.
pub fn pack_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    push_header(out, b'*', args.len());
    for arg in args {
        push_bulk(out, arg);
    }
}

/// Appends the array header of a command with `argc` arguments.
pub fn push_header(out: &mut Vec<u8>, tag: u8, n: usize) {
    if n < 10 {
        // One digit (argument counts, command names, short words): one
        // 4-byte store, no division loop.
        out.extend_from_slice(&[tag, b'0' + n as u8, b'\r', b'\n']);
        return;
    }
    out.push(tag);
    push_decimal(out, n as u64);
    out.extend_from_slice(b"\r\n");
}

/// Appends one bulk-string argument.
pub fn push_bulk(out: &mut Vec<u8>, arg: &[u8]) {
    push_header(out, b'$', arg.len());
    out.extend_from_slice(arg);
    out.extend_from_slice(b"\r\n");
}

/// Appends the decimal form of `n` without allocating.
pub fn push_decimal(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    out.extend_from_slice(decimal(n, &mut digits));
}

/// Appends a number as one bulk-string argument (`$2\r\n60\r\n`), without
/// allocating.
pub fn push_bulk_decimal(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    push_bulk(out, decimal(n, &mut digits));
}

/// A buffer grown past this for a large value is given back after the
/// call, so that one multi-MiB session does not pin memory in every thread.
pub(crate) const KEEP_BUFFER_BYTES: usize = 256 * 1024;

/// Frees `buf` if a large value grew it past `KEEP_BUFFER_BYTES`.
pub fn give_back_if_large(buf: &mut Vec<u8>) {
    if buf.capacity() > KEEP_BUFFER_BYTES {
        *buf = Vec::new();
    }
}

/// One command (or a pipeline of them) being packed.
#[derive(Default)]
pub struct Command {
    buf: Vec<u8>,
    /// Where the bytes after the argument left out start; `None` when every
    /// argument is in `buf`.
    split: Option<usize>,
}

impl Command {
    /// Starts a new command of `argc` arguments, forgetting the last one.
    pub fn start(&mut self, argc: usize) -> &mut Self {
        self.buf.clear();
        self.split = None;
        self.then(argc)
    }

    /// Starts another command of `argc` arguments in the same pipeline.
    pub fn then(&mut self, argc: usize) -> &mut Self {
        push_header(&mut self.buf, b'*', argc);
        self
    }

    /// Appends one argument.
    pub fn arg(&mut self, arg: &[u8]) -> &mut Self {
        push_bulk(&mut self.buf, arg);
        self
    }

    /// Appends a number as its decimal text.
    pub fn arg_u64(&mut self, n: u64) -> &mut Self {
        push_bulk_decimal(&mut self.buf, n);
        self
    }

    /// An argument of `len` bytes that `write` appends (a key, built in place).
    pub fn arg_with(&mut self, len: usize, write: impl FnOnce(&mut Vec<u8>)) -> &mut Self {
        push_header(&mut self.buf, b'$', len);
        let start = self.buf.len();
        write(&mut self.buf);
        debug_assert_eq!(self.buf.len() - start, len, "argument length");
        self.buf.extend_from_slice(b"\r\n");
        self
    }

    /// An argument of `len` bytes that is not copied here: `parts` puts it
    /// between what comes before and after. At most one per command.
    pub fn external_arg(&mut self, len: usize) -> &mut Self {
        debug_assert!(self.split.is_none(), "one external argument");
        push_header(&mut self.buf, b'$', len);
        self.split = Some(self.buf.len());
        self.buf.extend_from_slice(b"\r\n");
        self
    }

    /// The packed bytes (with no argument left out).
    pub fn bytes(&self) -> &[u8] {
        debug_assert!(self.split.is_none(), "an external argument is missing");
        &self.buf
    }

    /// The three parts to send: up to the argument left out, `value`, and
    /// the rest.
    pub fn parts<'a>(&'a self, value: &'a [u8]) -> [&'a [u8]; 3] {
        let (head, tail) = self.buf.split_at(self.split.unwrap_or(self.buf.len()));
        [head, value, tail]
    }

    /// Gives back a buffer that a large command grew.
    pub fn trim(&mut self) {
        give_back_if_large(&mut self.buf);
    }
}

fn decimal(mut n: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &digits[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_binary_safe_commands() {
        let mut out = Vec::new();
        pack_command(&mut out, &[b"SET", b"k\0y", b"", b"EX", b"10"]);
        assert_eq!(
            out,
            b"*5\r\n$3\r\nSET\r\n$3\r\nk\0y\r\n$0\r\n\r\n$2\r\nEX\r\n$2\r\n10\r\n"
        );
    }

    #[test]
    fn commands_pack_as_pack_command_does() {
        let mut cmd = Command::default();
        cmd.start(5)
            .arg(b"SET")
            .arg_with(3, |out| out.extend_from_slice(b"k\0y"))
            .external_arg(5)
            .arg(b"EX")
            .arg_u64(60)
            .then(3)
            .arg(b"WAIT")
            .arg_u64(1)
            .arg_u64(100);
        let mut expected = Vec::new();
        pack_command(&mut expected, &[b"SET", b"k\0y", b"hello", b"EX", b"60"]);
        pack_command(&mut expected, &[b"WAIT", b"1", b"100"]);
        assert_eq!(cmd.parts(b"hello").concat(), expected);

        // Reused: the last command is forgotten.
        cmd.start(2).arg(b"GET").arg(b"k");
        let mut expected = Vec::new();
        pack_command(&mut expected, &[b"GET", b"k"]);
        assert_eq!(cmd.bytes(), expected);
        assert_eq!(cmd.parts(b"").concat(), expected);
    }

    #[test]
    fn a_large_buffer_is_given_back() {
        let mut cmd = Command::default();
        cmd.start(1).arg(&vec![b'x'; 2 * KEEP_BUFFER_BYTES]);
        cmd.trim();
        assert_eq!(cmd.buf.capacity(), 0);
        cmd.start(1).arg(b"x");
        cmd.trim();
        assert!(cmd.buf.capacity() > 0);
    }

    #[test]
    fn headers_of_one_and_more_digits() {
        for n in [0usize, 1, 9, 10, 99, 100, 1024, 123_456_789] {
            let mut out = Vec::new();
            push_header(&mut out, b'$', n);
            assert_eq!(out, format!("${n}\r\n").as_bytes());
        }
    }

    #[test]
    fn bulk_decimals() {
        let mut out = Vec::new();
        push_bulk_decimal(&mut out, 2_592_000);
        assert_eq!(out, b"$7\r\n2592000\r\n");
    }

    #[test]
    fn decimals() {
        for n in [0u64, 7, 10, 12345, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }
}
