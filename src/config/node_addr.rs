//! A cluster node's address: as configured (`host:port`, IPv6 in brackets)
//! and as the nodes report each other.
//!
//! The one type of a node's address, from the config's seeds through the
//! slot map and MOVED/ASK to the connection that dials it: parsed once where
//! it enters, compared as host and port, and written as text only for people
//! (log lines, error messages).

use std::fmt;

/// A `host:port` of a cluster node, as configured or as the cluster reports it.
#[derive(Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeAddr {
    /// A host name or an IP address; an IPv6 address without its brackets.
    pub host: String,
    /// The client port (not the cluster bus port).
    pub port: u16,
}

impl Clone for NodeAddr {
    fn clone(&self) -> Self {
        NodeAddr {
            host: self.host.clone(),
            port: self.port,
        }
    }

    /// Reuses `self`'s buffer: the router copies the node of each call into
    /// one it keeps, with no allocation.
    fn clone_from(&mut self, source: &Self) {
        self.host.clone_from(&source.host);
        self.port = source.port;
    }
}

impl NodeAddr {
    /// Parses `host:port` or `[v6addr]:port`.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let bad = || format!("'{text}' is not host:port (IPv6 as [::1]:7000)");
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, port) = rest.split_once("]:").ok_or_else(bad)?;
            (host, port)
        } else {
            let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
            if host.contains(':') {
                return Err(bad());
            }
            (host, port)
        };
        let port: u16 = port.parse().map_err(|_| bad())?;
        if host.is_empty() || port == 0 || host.chars().any(|c| c.is_whitespace()) {
            return Err(bad());
        }
        Ok(NodeAddr {
            host: host.to_string(),
            port,
        })
    }

    /// A node as another node (`reporter`) reports it. A node that does not
    /// know its own address yet is reported without a host (empty, or `?`):
    /// it is then on the reporter's host. The one home of that rule, for
    /// CLUSTER SLOTS, CLUSTER NODES and MOVED/ASK alike.
    pub fn reported(host: &str, port: u16, reporter: &NodeAddr) -> NodeAddr {
        let host = if host.is_empty() || host == "?" {
            reporter.host.clone()
        } else {
            host.to_string()
        };
        NodeAddr { host, port }
    }

    /// A `host:port` as a node reports it (CLUSTER NODES, MOVED, ASK):
    /// `:port` and `?:port` name a port on the reporter's host
    /// ([`NodeAddr::reported`]), and an IPv6 host comes without brackets
    /// (`::1:7002`; Redis writes `ip:port`), so the port is after the last
    /// colon.
    pub fn parse_reported(text: &str, reporter: &NodeAddr) -> std::result::Result<Self, String> {
        if text.starts_with('[') {
            return NodeAddr::parse(text);
        }
        let bad = || format!("'{text}' is not host:port");
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        match port.parse::<u16>() {
            Ok(port) if port != 0 && !host.chars().any(|c| c.is_whitespace()) => {
                Ok(NodeAddr::reported(host, port, reporter))
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_reported_without_a_host_is_on_the_reporters_host() {
        let v4 = NodeAddr::parse("10.0.0.1:7000").unwrap();
        let v6 = NodeAddr::parse("[::1]:7000").unwrap();
        let reported =
            |text: &str, by: &NodeAddr| NodeAddr::parse_reported(text, by).map(|a| a.to_string());
        assert_eq!(reported(":7002", &v4).as_deref(), Ok("10.0.0.1:7002"));
        assert_eq!(reported("?:7002", &v4).as_deref(), Ok("10.0.0.1:7002"));
        assert_eq!(reported(":7002", &v6).as_deref(), Ok("[::1]:7002"));
        assert_eq!(
            reported("10.0.0.2:7002", &v6).as_deref(),
            Ok("10.0.0.2:7002")
        );
        assert_eq!(reported("[::2]:7002", &v4).as_deref(), Ok("[::2]:7002"));
        // Redis reports an IPv6 node without brackets.
        assert_eq!(reported("::1:7002", &v4).as_deref(), Ok("[::1]:7002"));
        assert_eq!(
            reported("fe80::2:7002", &v4).as_deref(),
            Ok("[fe80::2]:7002")
        );
        for bad in [":0", ":", ":x", "?:99999", "h", "[::1:7002", "h x:1"] {
            assert!(reported(bad, &v4).is_err(), "{bad}");
        }
        assert_eq!(
            NodeAddr::reported("", 7002, &v6),
            NodeAddr::parse("[::1]:7002").unwrap()
        );
        assert_eq!(NodeAddr::reported("?", 1, &v4).host, "10.0.0.1");
        assert_eq!(NodeAddr::reported("h", 1, &v4).host, "h");
    }
}
