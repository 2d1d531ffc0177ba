//! MOVED and ASK: a node telling us where a slot's command goes instead.
//! The router and the operator command both follow redirects through here.
//!
//! `MOVED <slot> <host:port>`: the slot lives elsewhere now (and the slot map
//! is stale). `ASK <slot> <host:port>`: this one key is being migrated; send
//! `ASKING` and then the command to the target, once.

use crate::error::{ReplyClass, Result};
use crate::keys::SLOT_COUNT;
use crate::reply::{ServerError, Value};

/// `ASKING`, packed: sent right before the command an ASK redirected.
pub const ASKING: &[u8] = b"*1\r\n$6\r\nASKING\r\n";

/// Where an error reply sends the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub slot: u16,
    /// `host:port` of the node to ask, resolved against the node that answered.
    pub addr: Box<str>,
    /// ASK (send `ASKING` first, leave the map alone) rather than MOVED.
    pub ask: bool,
}

impl Redirect {
    /// The redirect in `err`, if it is a well-formed MOVED or ASK from the
    /// node at `from` (`host:port`).
    pub fn of(err: &ServerError, from: &str) -> Option<Redirect> {
        let ask = match err.class() {
            ReplyClass::Moved => false,
            ReplyClass::Ask => true,
            _ => return None,
        };
        let mut words = err.details()?.split_ascii_whitespace();
        let slot: u16 = words.next()?.parse().ok()?;
        let to = words.next()?;
        if slot as usize >= SLOT_COUNT || to.is_empty() {
            return None;
        }
        Some(Redirect {
            slot,
            addr: resolve(to, from),
            ask,
        })
    }
}

/// Redis 7 may send ":7002" when a node does not know its own IP yet: the
/// node that answered is on the same host.
fn resolve(to: &str, from: &str) -> Box<str> {
    if to.starts_with(':') {
        if let Some((host, _)) = from.rsplit_once(':') {
            return format!("{host}{to}").into();
        }
    }
    to.into()
}

/// ASKING answers OK; a refusal (an ACL without it, say) is the call's error.
pub fn check_asking(reply: Value) -> Result<()> {
    match reply {
        Value::ServerError(e) => Err(e.to_error()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect(text: &str, from: &str) -> Option<Redirect> {
        Redirect::of(&ServerError::new(text), from)
    }

    #[test]
    fn moved_and_ask_are_parsed() {
        assert_eq!(
            redirect("MOVED 3999 127.0.0.1:7002", "127.0.0.1:7000"),
            Some(Redirect {
                slot: 3999,
                addr: "127.0.0.1:7002".into(),
                ask: false
            })
        );
        assert_eq!(
            redirect("ASK 0 [::1]:7000", "[::1]:7001"),
            Some(Redirect {
                slot: 0,
                addr: "[::1]:7000".into(),
                ask: true
            })
        );
        assert_eq!(redirect("MOVED 16384 127.0.0.1:7002", "h:1"), None);
        assert_eq!(redirect("MOVED 12", "h:1"), None);
        assert_eq!(redirect("MOVED", "h:1"), None);
        assert_eq!(redirect("MOVED x 127.0.0.1:1", "h:1"), None);
        assert_eq!(redirect("ERR 1 127.0.0.1:1", "h:1"), None);
    }

    #[test]
    fn redirects_without_a_host_use_the_answering_host() {
        let to = |text, from| redirect(text, from).map(|r| r.addr);
        assert_eq!(
            to("MOVED 1 :7002", "127.0.0.1:7000").as_deref(),
            Some("127.0.0.1:7002")
        );
        assert_eq!(
            to("ASK 1 :7002", "[::1]:7000").as_deref(),
            Some("[::1]:7002")
        );
        assert_eq!(
            to("MOVED 1 10.0.0.2:7002", "127.0.0.1:7000").as_deref(),
            Some("10.0.0.2:7002")
        );
    }
}
