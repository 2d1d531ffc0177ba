//! Whether the ACL lets `ors_session_restore` list a slot's keys
//! (`CLUSTER GETKEYSINSLOT`): an ACL rule written before the restore
//! existed lacks it, and the restore then reads by `SCAN` and one `GET` per
//! session, much slower. Init asks one master at once, so that a site finds
//! out before its backup takes over, and `ors-redis doctor` says the same
//! with [`advice`], the one text of the ACL line that adds it.

use std::time::Instant;

use crate::cluster::{Budget, ConnectionSet};
use crate::config::NodeAddr;
use crate::connection::ConnectParams;
use crate::error::ReplyClass;

/// The permission the restore lists slots with.
pub const PERMISSION: &str = "+cluster|getkeysinslot";

/// What the restore lacks and the one ACL line that adds it, for `user`
/// (`None`: the default user).
pub fn advice(user: Option<&str>) -> String {
    format!(
        "the ACL rule lacks {PERMISSION}: ors_session_restore then reads by SCAN and one GET per \
         session, one master at a time (much slower at takeover); add it with: \
         ACL SETUSER {} {PERMISSION}",
        user.unwrap_or("default")
    )
}

/// Asks `node` to list no key of slot 0: refused by the ACL (NOPERM) means
/// the restore lacks [`PERMISSION`]. Any other outcome says nothing.
pub fn listing_refused(node: &NodeAddr, params: &ConnectParams, deadline: Instant) -> bool {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return false;
    }
    let mut conns = ConnectionSet::default();
    matches!(
        conns.query(node, params, &Budget::until(deadline, left), &[b"CLUSTER", b"GETKEYSINSLOT", b"0", b"0"]),
        Err(e) if e.is_reply(ReplyClass::NoPerm)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_advice_names_the_permission_and_the_line() {
        let text = advice(Some("ors"));
        assert!(
            text.contains("ACL SETUSER ors +cluster|getkeysinslot"),
            "{text}"
        );
        assert!(text.contains("ors_session_restore"), "{text}");
    }
}
