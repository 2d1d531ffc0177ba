//! When the cluster announces addresses this host cannot reach (NAT,
//! containers, a tunnel): the advice that names `redis-address-map`, and
//! init's error when no master of the slot map can be reached.

use crate::config::NodeAddr;
use crate::error::{Error, ErrorKind};

/// What to do when the cluster announces addresses this host cannot reach:
/// said by init's error and warnings and by the operator's `doctor`.
pub const ADDRESS_MAP_ADVICE: &str = "if the cluster announces addresses this host cannot reach \
     (NAT, containers, a tunnel), map each to one it can with \
     redis-address-map='announced:port=reachable:port;...'";

/// The error when a seed gave the slot map but no master in it can be
/// reached: the cluster most likely announces addresses that are its own
/// (behind NAT, in containers), so the message names them and the key that
/// maps them. `ORS_ERR_CONNECTION`, as for seeds that cannot be reached.
pub(super) fn unreachable_masters_error(
    seed: &NodeAddr,
    unreachable: &[(NodeAddr, Error)],
) -> Error {
    let addrs: Vec<String> = unreachable.iter().map(|(a, _)| a.to_string()).collect();
    let why: Vec<&str> = unreachable
        .iter()
        .map(|(_, e)| e.message.as_str())
        .collect();
    Error::new(
        ErrorKind::Connection,
        format!(
            "seed {seed} gave the slot map, but no master it announces can be reached from this \
             host ({}): {}; {ADDRESS_MAP_ADVICE}",
            addrs.join(", "),
            why.join("; ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masters_announced_out_of_reach_are_named_with_the_key_to_set() {
        let seed = NodeAddr::parse("10.0.0.1:7000").unwrap();
        let announced = NodeAddr::parse("10.9.0.1:7000").unwrap();
        let e = unreachable_masters_error(
            &seed,
            &[(
                announced.clone(),
                Error::new(ErrorKind::Timeout, "connect timed out").at_node(&announced),
            )],
        );
        assert_eq!(e.kind, ErrorKind::Connection);
        for part in [
            "seed 10.0.0.1:7000 gave the slot map, but no master it announces can be reached",
            "(10.9.0.1:7000): node 10.9.0.1:7000: connect timed out",
            "redis-address-map='announced:port=reachable:port;...'",
        ] {
            assert!(e.message.contains(part), "{}", e.message);
        }
    }
}
