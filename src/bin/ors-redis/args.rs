//! Command-line parsing without a framework: words (command, subcommand,
//! session id) and `--options`, which may come anywhere, as `--name value`
//! or `--name=value`. `--` ends the options (for an id starting with `-`).

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

/// Every option the command knows, and whether it takes a value. Which
/// command accepts which is checked by [`Parsed::only`].
const OPTIONS: &[(&str, Option<char>, bool)] = &[
    ("config", Some('c'), true),
    ("config-file", Some('f'), true),
    ("json", None, false),
    ("quiet", Some('q'), false),
    ("help", Some('h'), false),
    ("version", Some('V'), false),
    ("ors-pairs", None, true),
    ("sessions", None, true),
    ("avg-bytes", None, true),
    ("sample", None, true),
    ("ors-memory", None, true),
    ("prefix", None, true),
    ("yes", None, false),
    ("raw", None, false),
    ("escaped", None, false),
];

/// Options every command takes.
pub const GLOBAL: &[&str] = &["config", "config-file", "json", "quiet", "help", "version"];

#[derive(Debug, Default)]
pub struct Parsed {
    /// Positional words, as bytes (a session id need not be UTF-8).
    pub words: Vec<Vec<u8>>,
    options: Vec<(&'static str, Option<String>)>,
}

pub fn parse(args: Vec<OsString>) -> Result<Parsed, String> {
    let mut parsed = Parsed::default();
    let mut args = args.into_iter();
    // Bounded by the number of arguments: each turn consumes at least one.
    while let Some(arg) = args.next() {
        let bytes = arg.as_bytes();
        if bytes == b"--" {
            parsed
                .words
                .extend(args.by_ref().map(|a| a.as_bytes().to_vec()));
            break;
        }
        if bytes.len() < 2 || bytes[0] != b'-' {
            parsed.words.push(bytes.to_vec());
            continue;
        }
        let text = arg
            .to_str()
            .ok_or_else(|| format!("option {} is not UTF-8", arg.to_string_lossy()))?;
        let (spec, inline) = if let Some(long) = text.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let spec = OPTIONS
                .iter()
                .find(|(n, _, _)| *n == name)
                .ok_or_else(|| format!("unknown option --{name}"))?;
            (spec, inline)
        } else {
            let mut chars = text[1..].chars();
            let (Some(c), None) = (chars.next(), chars.next()) else {
                return Err(format!(
                    "unknown option {text} (long options start with --)"
                ));
            };
            let spec = OPTIONS
                .iter()
                .find(|(_, short, _)| *short == Some(c))
                .ok_or_else(|| format!("unknown option -{c}"))?;
            (spec, None)
        };
        let (name, _, takes_value) = *spec;
        let value = match (takes_value, inline) {
            (true, Some(v)) => Some(v),
            (true, None) => {
                let next = args
                    .next()
                    .ok_or_else(|| format!("option --{name} needs a value"))?;
                Some(
                    next.into_string()
                        .map_err(|_| format!("the value of --{name} is not UTF-8"))?,
                )
            }
            (false, Some(_)) => return Err(format!("option --{name} takes no value")),
            (false, None) => None,
        };
        if parsed.options.iter().any(|(n, _)| *n == name) {
            return Err(format!("option --{name} given twice"));
        }
        parsed.options.push((name, value));
    }
    Ok(parsed)
}

impl Parsed {
    pub fn flag(&self, name: &str) -> bool {
        self.options.iter().any(|(n, _)| *n == name)
    }

    pub fn value(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// The word at `index` as text (commands are ASCII).
    pub fn word(&self, index: usize) -> Option<String> {
        self.words
            .get(index)
            .map(|w| String::from_utf8_lossy(w).into_owned())
    }

    /// Fails on an option that `command` does not take (besides the global ones).
    pub fn only(&self, command: &str, allowed: &[&str]) -> Result<(), String> {
        for (name, _) in &self.options {
            if !GLOBAL.contains(name) && !allowed.contains(name) {
                return Err(format!("{command} does not take --{name}"));
            }
        }
        Ok(())
    }

    /// A whole number option, within `min..=max`.
    pub fn number(&self, name: &str, min: u64, max: u64) -> Result<Option<u64>, String> {
        self.value(name)
            .map(|v| match parse_number(v) {
                Some(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(format!(
                    "--{name} '{v}' must be a whole number from {min} to {max}"
                )),
            })
            .transpose()
    }

    /// A size option: bytes, or with a K, M, G or T suffix (powers of 1024).
    pub fn size(&self, name: &str, max: u64) -> Result<Option<u64>, String> {
        self.value(name)
            .map(|v| match parse_size(v) {
                Some(n) if n <= max => Ok(n),
                _ => Err(format!(
                    "--{name} '{v}' must be a size in bytes (e.g. 4096, 4K, 16G), at most {max}"
                )),
            })
            .transpose()
    }
}

/// Digits, with `_` or `,` allowed as separators (`200_000`).
fn parse_number(text: &str) -> Option<u64> {
    let digits: String = text.chars().filter(|c| !matches!(c, '_' | ',')).collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (number, shift) = match t.chars().last()?.to_ascii_uppercase() {
        'K' => (&t[..t.len() - 1], 10),
        'M' => (&t[..t.len() - 1], 20),
        'G' => (&t[..t.len() - 1], 30),
        'T' => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    parse_number(number)?.checked_mul(1u64 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Parsed, String> {
        parse(args.iter().map(OsString::from).collect())
    }

    #[test]
    fn options_anywhere_in_both_forms() {
        let a = p(&["--json", "sessions", "list", "--prefix=ab", "-c", "x=1"]).unwrap();
        assert_eq!(a.words, vec![b"sessions".to_vec(), b"list".to_vec()]);
        assert!(a.flag("json"));
        assert_eq!(a.value("prefix"), Some("ab"));
        assert_eq!(a.value("config"), Some("x=1"));
        assert!(a.only("sessions list", &["prefix"]).is_ok());
        assert!(a
            .only("sessions count", &[])
            .unwrap_err()
            .contains("--prefix"));
        let a = p(&["sessions", "get", "--", "-odd-id", "--json"]).unwrap();
        assert_eq!(a.words[2], b"-odd-id".to_vec());
        assert_eq!(a.words[3], b"--json".to_vec());
        assert!(!a.flag("json"));
    }

    #[test]
    fn mistakes_are_named() {
        assert!(p(&["--bogus"]).unwrap_err().contains("--bogus"));
        assert!(p(&["-x"]).unwrap_err().contains("-x"));
        assert!(p(&["--config"]).unwrap_err().contains("needs a value"));
        assert!(p(&["--json=1"]).unwrap_err().contains("takes no value"));
        assert!(p(&["--json", "--json"]).unwrap_err().contains("twice"));
        assert!(p(&["-qv"]).is_err());
    }

    #[test]
    fn numbers_and_sizes() {
        let a = p(&[
            "--sessions",
            "200_000",
            "--avg-bytes",
            "4K",
            "--ors-memory",
            "16GiB",
        ])
        .unwrap();
        assert_eq!(a.number("sessions", 0, u64::MAX).unwrap(), Some(200_000));
        assert_eq!(a.size("avg-bytes", u64::MAX).unwrap(), Some(4096));
        assert_eq!(a.size("ors-memory", u64::MAX).unwrap(), Some(16 << 30));
        assert_eq!(a.number("sample", 0, 5).unwrap(), None);
        let a = p(&["--sample", "-5"]);
        assert!(a.is_ok_and(|a| a.number("sample", 0, 10).is_err()));
        let a = p(&["--sample", "11"]).unwrap();
        assert!(a
            .number("sample", 0, 10)
            .unwrap_err()
            .contains("from 0 to 10"));
        for bad in ["", "x", "1.5", "K", "99999999999T"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("2m"), Some(2 << 20));
    }
}
