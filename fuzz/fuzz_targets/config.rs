//! The config parser takes whatever ORS hands over: it must never panic,
//! every error must be a config error, and a parsed config must hold only
//! validated values. A password given in the input must never appear in an
//! error message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ors_redis::config::Config;
use ors_redis::error::ErrorKind;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text) {
        Ok(config) => {
            assert!(!config.nodes.is_empty());
            assert!(config
                .nodes
                .iter()
                .all(|n| n.port != 0 && !n.host.is_empty()));
            assert!(!config.cluster_name.as_str().is_empty());
            assert!(config.op_timeout.as_millis() >= 1);
            assert!(config.wait_timeout.as_millis() >= 1);
        }
        Err(e) => {
            assert_eq!(e.kind, ErrorKind::Config);
            // A password that the message repeats would be a leak. Only a
            // long one that occurs once in the input can be told apart from
            // text the message repeats for another reason.
            // The password is the value of a `password=` that starts a word
            // outside quotes; the same letters inside another key's value
            // (quoted or not) are no password.
            if let Some(rest) = password_key_at(text).map(|at| &text[at + "password=".len()..]) {
                let secret: String = rest
                    .trim_start_matches('\'')
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '\'' && *c != '\\')
                    .collect();
                // The message may list the known keys; a "password" that is
                // one of those words is no leak.
                let vocabulary = Config::parse("x=1")
                    .err()
                    .map(|e| e.message)
                    .unwrap_or_default();
                let leaks = |piece: &str| {
                    piece.len() >= 12
                        && text.matches(piece).count() == 1
                        && !vocabulary.contains(piece)
                        && e.message.contains(piece)
                };
                assert!(!leaks(&secret), "password leaked: {}", e.message);
                // An unquoted password followed by another word: that word
                // (and its key or value) may be the rest of the password.
                if !rest.starts_with('\'') {
                    // An empty value (whitespace right after `=`): the next
                    // word is the first one of the rest.
                    let value_words = usize::from(!rest.starts_with(char::is_whitespace));
                    if let Some(next) = rest.split_whitespace().nth(value_words) {
                        let (key, value) = next.split_once('=').unwrap_or((next, ""));
                        for piece in [next, key, value] {
                            assert!(
                                !leaks(piece),
                                "a piece of the password leaked: {}",
                                e.message
                            );
                        }
                    }
                }
            }
        }
    }
});

/// Where a `password=` key starts: at the start of a word, outside a quoted
/// value, as the parser reads it (a value is quoted when its first character,
/// right after the word's first `=`, is `'`; inside, `\` escapes the next
/// character).
fn password_key_at(text: &str) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    let (mut word_start, mut equals_in_word) = (true, 0);
    let mut previous = ' ';
    for (at, c) in text.char_indices() {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '\'' => quoted = false,
                _ => {}
            }
            previous = c;
            continue;
        }
        if word_start && text[at..].starts_with("password=") {
            return Some(at);
        }
        if c.is_whitespace() {
            equals_in_word = 0;
        } else if c == '=' {
            equals_in_word += 1;
        } else if c == '\'' && previous == '=' && equals_in_word == 1 {
            quoted = true;
        }
        word_start = c.is_whitespace();
        previous = c;
    }
    None
}
