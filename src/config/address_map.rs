//! `redis-address-map`: where to dial a node that the cluster announces at
//! an address this host cannot reach (NAT, containers, a tunnel).
//!
//! The announced address stays the node's identity everywhere (slot map,
//! redirects, logs, errors); the map is asked only where a connection is
//! opened (`NodeConnection::open`), so seeds, the slot map, MOVED/ASK and
//! the operator command are all covered by that one lookup.

use std::net::IpAddr;

use super::NodeAddr;

/// Announced `host:port` to reachable `host:port`, as the config gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressMap {
    routes: Vec<(NodeAddr, NodeAddr)>,
}

impl AddressMap {
    /// Parses `announced:port=reachable:port;...` (`,` also separates; IPv6
    /// in brackets on either side). The message says what is wrong with
    /// which entry, without the key's name (the caller adds it).
    pub fn parse(text: &str) -> std::result::Result<AddressMap, String> {
        let mut routes: Vec<(NodeAddr, NodeAddr)> = Vec::new();
        for entry in text
            .split([';', ','])
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let bad = |why: String| {
                format!(
                    "'{entry}' is not announced:port=reachable:port ({why}; IPv6 as \
                     [::1]:7000=[::1]:7100)"
                )
            };
            let (announced, reachable) = entry
                .split_once('=')
                .ok_or_else(|| bad("no '='".to_string()))?;
            let announced = NodeAddr::parse(announced.trim()).map_err(bad)?;
            let reachable = NodeAddr::parse(reachable.trim()).map_err(bad)?;
            match routes.iter().find(|(a, _)| same_node(a, &announced)) {
                Some((_, to)) if same_node(to, &reachable) => {}
                Some((first, to)) => {
                    return Err(format!(
                        "{first} is mapped twice, to {to} and to {reachable}"
                    ))
                }
                None => routes.push((announced, reachable)),
            }
        }
        if routes.is_empty() {
            return Err("is empty (leave the key out for no map)".to_string());
        }
        Ok(AddressMap { routes })
    }

    /// Where to dial the node the cluster announces as `announced`, if the
    /// map says; `None` dials `announced` itself.
    pub fn route(&self, announced: &NodeAddr) -> Option<&NodeAddr> {
        self.routes
            .iter()
            .find(|(a, _)| same_node(a, announced))
            .map(|(_, to)| to)
    }

    /// No `redis-address-map` given: every node is dialed as announced.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

/// Two addresses name the same node: the same port, and the same IP however
/// written (`::1` and `0:0::1`), or the same host name in any case.
fn same_node(a: &NodeAddr, b: &NodeAddr) -> bool {
    if a.port != b.port {
        return false;
    }
    match (a.host.parse::<IpAddr>(), b.host.parse::<IpAddr>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.host.eq_ignore_ascii_case(&b.host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> NodeAddr {
        NodeAddr::parse(text).unwrap()
    }

    #[test]
    fn routes_announced_addresses_to_reachable_ones() {
        let map = AddressMap::parse(
            " 127.0.0.111:7000=127.0.0.11:7000; 127.0.0.112:7001 = 127.0.0.12:7001,\
             [::1]:7000=[::1]:7100;Redis-1.internal:6379=localhost:16379;",
        )
        .unwrap();
        let route = |text: &str| map.route(&addr(text)).map(|a| a.to_string());
        assert_eq!(
            route("127.0.0.111:7000").as_deref(),
            Some("127.0.0.11:7000")
        );
        assert_eq!(
            route("127.0.0.112:7001").as_deref(),
            Some("127.0.0.12:7001")
        );
        assert_eq!(route("127.0.0.111:7001"), None, "the port is part of it");
        assert_eq!(route("[::1]:7000").as_deref(), Some("[::1]:7100"));
        assert_eq!(
            route("[0:0:0:0:0:0:0:1]:7000").as_deref(),
            Some("[::1]:7100")
        );
        assert_eq!(
            route("redis-1.INTERNAL:6379").as_deref(),
            Some("localhost:16379")
        );
        assert_eq!(route("127.0.0.11:7000"), None, "one way only");
        // As Redis reports an IPv6 node in MOVED (no brackets).
        let moved = NodeAddr::parse_reported("::1:7000", &addr("127.0.0.1:1")).unwrap();
        assert_eq!(map.route(&moved), Some(&addr("[::1]:7100")));
        // The same entry twice is no conflict.
        assert!(AddressMap::parse("a:1=b:1;a:1=b:1").is_ok());
    }

    #[test]
    fn bad_forms_say_what_is_wrong() {
        let cases = [
            ("", "is empty"),
            (" ; ", "is empty"),
            ("a:1", "'a:1' is not announced:port=reachable:port (no '='"),
            ("a:1=", "'a:1=' is not announced"),
            ("=b:1", "'=b:1' is not announced"),
            ("a=b:1", "'a=b:1' is not announced"),
            ("a:1=b", "'a:1=b' is not announced"),
            ("a:0=b:1", "'a:0=b:1'"),
            ("a:1=b:70000", "'a:1=b:70000'"),
            ("::1:7000=[::1]:7100", "IPv6 as [::1]:7000=[::1]:7100"),
            ("[::1]:7000=::1:7100", "'[::1]:7000=::1:7100'"),
            ("[::1:7000=[::1]:7100", "'[::1:7000=[::1]:7100'"),
            ("a:1=b:1=c:1", "'a:1=b:1=c:1'"),
            ("a:1=b:1;A:1=c:1", "a:1 is mapped twice, to b:1 and to c:1"),
        ];
        for (text, fragment) in cases {
            let err = AddressMap::parse(text).unwrap_err();
            assert!(err.contains(fragment), "{text:?}: {err}");
        }
    }
}
