//! MOVED and ASK: a node telling us where a slot's command goes instead.
//! The router and the operator command both follow redirects through here.
//!
//! `MOVED <slot> <host:port>`: the slot lives elsewhere now (and the slot map
//! is stale). `ASK <slot> <host:port>`: this one key is being migrated; send
//! `ASKING` and then the command to the target, once.

use crate::config::NodeAddr;
use crate::error::{ReplyClass, Result};
use crate::keys::SLOT_COUNT;
use crate::reply::{ServerError, Value};

/// `ASKING`, packed: sent right before the command an ASK redirected.
const ASKING: &[u8] = b"*1\r\n$6\r\nASKING\r\n";

/// Where an error reply sends the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The slot the reply names.
    pub slot: u16,
    /// The node to ask, resolved against the node that answered.
    pub addr: NodeAddr,
    /// ASK (send `ASKING` first, leave the map alone) rather than MOVED.
    pub ask: bool,
}

impl Redirect {
    /// The redirect in `err`, if it is a well-formed MOVED or ASK from the
    /// node at `from`. Redis 7 may send ":7002" when a node does not know its
    /// own IP yet (`NodeAddr::parse_reported`). A target that is not a
    /// `host:port` makes the reply no redirect: it is then the call's error,
    /// with the node's text.
    pub fn of(err: &ServerError, from: &NodeAddr) -> Option<Redirect> {
        let ask = match err.class() {
            ReplyClass::Moved => false,
            ReplyClass::Ask => true,
            _ => return None,
        };
        let mut words = err.details()?.split_ascii_whitespace();
        let slot: u16 = words.next()?.parse().ok()?;
        let to = words.next()?;
        if slot as usize >= SLOT_COUNT {
            return None;
        }
        Some(Redirect {
            slot,
            addr: NodeAddr::parse_reported(to, from).ok()?,
            ask,
        })
    }
}

/// Sends `ASKING` on `conn` and judges its reply, right before the command
/// an ASK redirected (ASKING holds for the next command only). The reply is
/// read before the command goes out: ASK is rare (a slot being migrated),
/// so the round trip costs little, and the common path carries nothing for
/// it. A refusal (an ACL without `asking`, say) is the call's error, and
/// the command is not sent (without ASKING it would be redirected back).
/// The library's router and the operator command both ask through here.
pub(crate) fn send_asking<C>(
    conn: &mut C,
    send: impl FnOnce(&mut C, &[u8]) -> Result<()>,
    receive: impl FnOnce(&mut C) -> Result<Value>,
) -> Result<()> {
    send(conn, ASKING)?;
    match receive(conn)? {
        Value::ServerError(e) => Err(e.to_error()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect(text: &str, from: &str) -> Option<Redirect> {
        Redirect::of(&ServerError::new(text), &NodeAddr::parse(from).unwrap())
    }

    #[test]
    fn moved_and_ask_are_parsed() {
        assert_eq!(
            redirect("MOVED 3999 127.0.0.1:7002", "127.0.0.1:7000"),
            Some(Redirect {
                slot: 3999,
                addr: NodeAddr::parse("127.0.0.1:7002").unwrap(),
                ask: false
            })
        );
        assert_eq!(
            redirect("ASK 0 [::1]:7000", "[::1]:7001"),
            Some(Redirect {
                slot: 0,
                addr: NodeAddr::parse("[::1]:7000").unwrap(),
                ask: true
            })
        );
        assert_eq!(redirect("MOVED 16384 127.0.0.1:7002", "h:1"), None);
        assert_eq!(redirect("MOVED 12", "h:1"), None);
        assert_eq!(redirect("MOVED", "h:1"), None);
        assert_eq!(redirect("MOVED x 127.0.0.1:1", "h:1"), None);
        assert_eq!(redirect("ERR 1 127.0.0.1:1", "h:1"), None);
        // A target that is no address is not followed.
        assert_eq!(redirect("MOVED 1 nowhere", "h:1"), None);
        assert_eq!(redirect("ASK 1 h:0", "h:1"), None);
    }

    #[test]
    fn asking_is_sent_and_a_refusal_is_the_error() {
        let mut sent = Vec::new();
        let mut answer = |reply: Value| {
            sent.clear();
            let result = send_asking(
                &mut sent,
                |sent, packed| {
                    sent.extend_from_slice(packed);
                    Ok(())
                },
                |_| Ok(reply),
            );
            (result, sent.clone())
        };
        let (ok, packed) = answer(Value::Okay);
        assert!(ok.is_ok());
        assert_eq!(packed, b"*1\r\n$6\r\nASKING\r\n");
        let (refused, _) = answer(Value::ServerError(ServerError::new("NOPERM no asking")));
        let e = refused.unwrap_err();
        assert!(e.message.contains("NOPERM"), "{}", e.message);
        let lost = send_asking(
            &mut (),
            |_, _| Ok(()),
            |_| {
                Err(crate::error::Error::new(
                    crate::error::ErrorKind::Connection,
                    "lost",
                ))
            },
        );
        assert_eq!(lost.unwrap_err().message, "lost");
    }

    #[test]
    fn redirects_without_a_host_use_the_answering_host() {
        let to = |text, from| redirect(text, from).map(|r| r.addr.to_string());
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
        // Redis writes an IPv6 node without brackets: `MOVED 1 ::2:7002`.
        assert_eq!(
            to("MOVED 1 ::2:7002", "[::1]:7000").as_deref(),
            Some("[::2]:7002")
        );
    }
}
