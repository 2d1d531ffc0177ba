//! The grammar of the config string: whitespace-separated `key=value`
//! pairs, a value single-quoted to hold spaces (inside quotes a backslash
//! escapes the next character). It knows the keys of [`KEYS`] (their names,
//! and which values are secret) but not what the values mean.

use super::{KeySpec, KEYS};
use crate::error::{Error, Result};

/// One `key=value` of the config string.
pub(super) struct Pair {
    pub key: &'static KeySpec,
    pub value: String,
    /// Set when this pair follows an unquoted secret value: then this whole
    /// pair may be a piece of it (a password whose quotes were forgotten),
    /// and no message may show it.
    pub may_be_a_piece: bool,
}

/// What follows a value, for messages about the word after it.
struct After {
    key: &'static str,
    /// The value was single-quoted, so the next word cannot be part of it.
    quoted: bool,
    /// The value is a secret.
    secret: bool,
    double_quoted: bool,
}

impl After {
    /// The next word may be a piece of this value.
    fn may_continue(&self) -> bool {
        !self.quoted && self.secret
    }

    /// Where word `n` is, for a message that must not show it.
    fn hidden(&self, n: usize, what: &str) -> String {
        let hint = if self.double_quoted {
            " (quote with single quotes: double quotes are part of the value)"
        } else {
            ""
        };
        format!(
            "config: word {n} {what}; it follows the value of '{}' and is not shown, since it may be \
             part of that value: a value that holds spaces must be single-quoted{hint}",
            self.key
        )
    }
}

/// Splits the conninfo string into pairs, rejecting unknown and duplicate
/// keys. A message names a known key or a word's position, never a word
/// that may be a piece of a value.
pub(super) fn split_pairs(text: &str) -> Result<Vec<Pair>> {
    let mut pairs: Vec<Pair> = Vec::new();
    let mut chars = text.chars().peekable();
    let mut word = 0;
    let mut after: Option<After> = None;
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        word += 1;
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        let known = super::key(&key);
        let piece = after.as_ref().is_some_and(After::may_continue);
        if chars.next() != Some('=') {
            return Err(Error::config(match &after {
                _ if known.is_some() => {
                    format!("config: expected key=value, found '{key}' without '='")
                }
                // Never shown: a word without '=' after a value is most
                // likely a piece of that value.
                Some(a) => a.hidden(word, "has no '='"),
                None => "config: the first word is not key=value".to_string(),
            }));
        }
        if key.is_empty() {
            return Err(Error::config(format!(
                "config: '=' without a key before it (word {word})"
            )));
        }
        let Some(spec) = known else {
            let known_keys = KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ");
            return Err(Error::config(match &after {
                Some(a) if piece => format!(
                    "{} (if it is a key, it is unknown; known keys: {known_keys})",
                    a.hidden(word, "is not a known key")
                ),
                _ => match super::suggest(&key) {
                    Some(near) => format!(
                        "config: unknown key '{key}' (did you mean '{near}'? known keys: {known_keys})"
                    ),
                    None => format!("config: unknown key '{key}' (known keys: {known_keys})"),
                },
            }));
        };
        if pairs.iter().any(|p| p.key.name == spec.name) {
            return Err(Error::config(format!("config: duplicate key '{key}'")));
        }
        let mut value = String::new();
        let quoted = chars.peek() == Some(&'\'');
        if quoted {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some(escaped) => value.push(escaped),
                        None => break,
                    },
                    '\'' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(Error::config(format!(
                    "config: unterminated quoted value for key '{key}'"
                )));
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return Err(Error::config(format!(
                    "config: the quoted value of key '{key}' must be followed by a space"
                )));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        let double_quoted = !quoted && value.starts_with('"');
        pairs.push(Pair {
            key: spec,
            value,
            may_be_a_piece: piece,
        });
        after = Some(After {
            key: spec.name,
            quoted,
            secret: spec.secret,
            double_quoted,
        });
    }
    Ok(pairs)
}
