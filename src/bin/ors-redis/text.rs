//! Showing bytes that may not be text: session ids and values.

/// Bytes as readable text: UTF-8 as it is, except control characters,
/// backslashes and bytes that are not UTF-8, which become `\xNN` (and `\\`).
pub(crate) fn escape(bytes: &[u8]) -> String {
    escape_keeping(bytes, &[])
}

/// As [`escape`], but the control characters in `keep` stay as they are
/// (tabs and newlines of a text value shown on a terminal).
pub(crate) fn escape_keeping(bytes: &[u8], keep: &[char]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if keep.contains(&c) => out.push(c),
                c if c.is_control() && (c as u32) < 0x100 => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// An id for display: as it is when it is plain UTF-8 text (the usual
/// case), else escaped.
pub(crate) fn show_id(id: &[u8]) -> String {
    match std::str::from_utf8(id) {
        Ok(text) if !text.chars().any(char::is_control) => text.to_string(),
        _ => escape(id),
    }
}

/// Whether a value reads as text: UTF-8 whose only control characters are
/// newlines, tabs and carriage returns.
pub(crate) fn is_text(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|t| {
        t.chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\t' | '\r'))
    })
}

/// `hexdump -C` style: offset, 16 bytes in hex, the printable ones as text.
pub(crate) fn hexdump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (row, chunk) in bytes.chunks(16).enumerate() {
        out.push_str(&format!("{:08x}  ", row * 16));
        for i in 0..16 {
            match chunk.get(i) {
                Some(b) => out.push_str(&format!("{b:02x} ")),
                None => out.push_str("   "),
            }
            if i == 7 {
                out.push(' ');
            }
        }
        out.push_str(" |");
        out.extend(chunk.iter().map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        }));
        out.push_str("|\n");
    }
    out
}

/// Standard base64 with padding (RFC 4648), for binary values in JSON.
pub(crate) fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `2591990` -> `29d 23h 59m 50s`.
pub(crate) fn duration_text(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "m"), (s, "s")]
        .iter()
        .skip_while(|(n, _)| *n == 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if parts.is_empty() {
        "0s".to_string()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_is_lossless_and_readable() {
        assert_eq!(escape(b"plain-id"), "plain-id");
        assert_eq!(escape("sess-é".as_bytes()), "sess-é");
        assert_eq!(escape(b"a\nb\\c\xff\x01"), "a\\x0ab\\\\c\\xff\\x01");
        assert_eq!(show_id(b"a\\b"), "a\\b");
        assert_eq!(
            escape_keeping(b"a\tb\n\\x09\x01", &['\t', '\n']),
            "a\tb\n\\\\x09\\x01"
        );
        assert_eq!(show_id(b"a\xffb"), "a\\xffb");
        assert!(is_text(b"line 1\nline 2\ttab"));
        assert!(!is_text(b"nul\0inside"));
        assert!(!is_text(b"\xff\xfe"));
    }

    #[test]
    fn hexdump_rows() {
        let dump = hexdump(b"0123456789abcdef\x00\xff");
        let lines: Vec<&str> = dump.lines().collect();
        assert_eq!(
            lines[0],
            "00000000  30 31 32 33 34 35 36 37  38 39 61 62 63 64 65 66  |0123456789abcdef|"
        );
        assert!(lines[1].starts_with("00000010  00 ff   "));
        assert!(lines[1].ends_with("|..|"));
        assert_eq!(lines[0].find('|'), lines[1].find('|'), "columns line up");
    }

    #[test]
    fn base64_vectors() {
        // RFC 4648, section 10.
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn durations() {
        assert_eq!(duration_text(0), "0s");
        assert_eq!(duration_text(59), "59s");
        assert_eq!(duration_text(2_591_990), "29d 23h 59m 50s");
        assert_eq!(duration_text(3600), "1h 0m 0s");
    }
}
