//! Packing commands into RESP2, into a buffer the caller reuses.
//!
//! Every command is an array of bulk strings: `*<n>\r\n` then, per argument,
//! `$<len>\r\n<bytes>\r\n`. Values are binary-safe that way.

/// Appends one command to `out`.
pub fn pack_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    push_header(out, b'*', args.len());
    for arg in args {
        push_bulk(out, arg);
    }
}

/// Appends the array header of a command with `argc` arguments.
pub fn push_header(out: &mut Vec<u8>, tag: u8, n: usize) {
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
