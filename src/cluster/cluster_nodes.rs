//! `CLUSTER NODES`, parsed once for everyone who reads it: init's replica
//! count (`discovery`) and the operator command (`doctor`, `capacity`,
//! through `operator`).

use crate::config::NodeAddr;
use crate::keys::SLOT_COUNT;

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    /// The node's id (`CLUSTER MYID`).
    pub id: String,
    /// `None` for a node the cluster knows no address of (`noaddr`).
    pub addr: Option<NodeAddr>,
    /// The host name the node announces (`cluster-announce-hostname`).
    pub hostname: Option<String>,
    /// `myself`, `master`, `slave`, `fail?`, `fail`, `noaddr`, ...
    pub flags: Vec<String>,
    /// The master's id, for a replica.
    pub master_id: Option<String>,
    /// `link-state` is `connected`: the answering node's cluster bus link to it is up.
    pub connected: bool,
    /// Number of slots this node serves (a master).
    pub slots: usize,
}

impl ClusterNode {
    fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// Flagged `master`.
    pub fn is_master(&self) -> bool {
        self.has_flag("master")
    }

    /// Flagged `slave`.
    pub fn is_replica(&self) -> bool {
        self.has_flag("slave")
    }

    /// Marked failed (or suspected), without an address, or not yet joined.
    pub fn is_failed(&self) -> bool {
        ["fail", "fail?", "noaddr", "handshake"]
            .iter()
            .any(|f| self.has_flag(f))
    }

    /// Its address for people, or its id when it has none.
    pub fn addr_text(&self) -> String {
        match &self.addr {
            Some(a) => a.to_string(),
            None => format!("(no address, id {})", self.id),
        }
    }
}

/// Parses `CLUSTER NODES`: `<id> <ip:port@cport[,hostname]> <flags>
/// <master-id> <ping> <pong> <epoch> <link-state> <slot>...`. `asked` is the
/// node that answered (Redis 3.x-4.x shows ":port" for itself before it
/// knows its IP).
pub fn parse_cluster_nodes(text: &str, asked: &NodeAddr) -> Vec<ClusterNode> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        if fields.len() < 8 {
            continue;
        }
        let endpoint = fields[1].split(['@', ',']).next().unwrap_or("");
        // Redis 7: `,hostname` (maybe empty), then `,name=value` fields (7.2).
        let hostname = fields[1]
            .split(',')
            .nth(1)
            .filter(|h| !h.is_empty() && !h.contains('='))
            .map(str::to_string);
        // ":0" (noaddr) is no address at all.
        let addr = NodeAddr::parse_reported(endpoint, asked).ok();
        let slots = fields[8..].iter().map(|entry| slots_in(entry)).sum();
        out.push(ClusterNode {
            id: fields[0].to_string(),
            addr,
            hostname,
            flags: fields[2].split(',').map(str::to_string).collect(),
            master_id: Some(fields[3]).filter(|m| *m != "-").map(str::to_string),
            connected: fields[7] == "connected",
            slots,
        });
    }
    out
}

/// Addresses as the slot map gives them: when the cluster prefers host
/// names as endpoints (`cluster-preferred-endpoint-type hostname`: a host of
/// `slot_map_hosts`, the slot map's masters, is a node's host name), each
/// node that has a host name is addressed by it (with TLS its certificate
/// names it, not its IP address).
pub fn address_by_hostname_like(nodes: &mut [ClusterNode], slot_map_hosts: &[&str]) {
    let by_name = nodes.iter().any(|n| {
        n.hostname
            .as_deref()
            .is_some_and(|h| slot_map_hosts.contains(&h))
    });
    if !by_name {
        return;
    }
    for n in nodes.iter_mut() {
        if let (Some(addr), Some(name)) = (&mut n.addr, &n.hostname) {
            addr.host = name.clone();
        }
    }
}

/// How many slots one slot entry of a line names: `5461-10922` or `16383`.
/// Migrating/importing entries (`[5461->-<id>]`) and anything out of
/// bounds (the text is the server's, not trusted) name none.
fn slots_in(entry: &str) -> usize {
    let slot = |text: &str| {
        text.parse::<u16>()
            .ok()
            .filter(|&s| usize::from(s) < SLOT_COUNT)
    };
    let (first, last) = match entry.split_once('-') {
        Some((first, last)) => (slot(first), slot(last)),
        None => (slot(entry), slot(entry)),
    };
    match (first, last) {
        (Some(first), Some(last)) if last >= first => usize::from(last - first) + 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_address_the_nodes_when_the_slot_map_uses_them() {
        let text = "\
a1 127.0.0.11:7000@17000,redis-1 myself,master - 0 1 1 connected 0-16383
b2 127.0.0.14:7003@17003,redis-4,shard-id=77 slave a1 0 1 1 connected
c3 127.0.0.15:7004@17004,,shard-id=78 slave a1 0 1 1 connected
";
        let asked = NodeAddr::parse("redis-cfg:6379").unwrap();
        let parsed = parse_cluster_nodes(text, &asked);
        assert_eq!(parsed[0].hostname.as_deref(), Some("redis-1"));
        assert_eq!(parsed[1].hostname.as_deref(), Some("redis-4"));
        assert_eq!(parsed[2].hostname, None);
        // A slot map by address: addresses stay.
        let mut nodes = parsed.clone();
        address_by_hostname_like(&mut nodes, &["127.0.0.11"]);
        assert_eq!(nodes, parsed);
        // By host name: every node that has one.
        address_by_hostname_like(&mut nodes, &["redis-1"]);
        let addrs: Vec<String> = nodes.iter().map(|n| n.addr_text()).collect();
        assert_eq!(addrs, ["redis-1:7000", "redis-4:7003", "127.0.0.15:7004"]);
        // init's replica count knows the master by both.
        let counts = crate::cluster::discovery::count_replicas(text, &asked);
        assert_eq!(
            counts.get(&NodeAddr::parse("redis-1:7000").unwrap()),
            Some(&2)
        );
        assert_eq!(
            counts.get(&NodeAddr::parse("127.0.0.11:7000").unwrap()),
            Some(&2)
        );
    }

    #[test]
    fn cluster_nodes_lines_are_parsed() {
        let text = "\
f033 127.0.0.1:7064@17064 slave 020a 0 1795655072111 1 connected
3a2b 127.0.0.1:7061@17061,node-b master - 0 1795655072111 2 connected 5461-10922
020a :7060@17060 myself,master - 0 1795655071000 1 connected 0-5460 16383 [93->-3a2b]
dead :0@0 master,fail,noaddr - 0 1 4 disconnected
short line
";
        let asked = NodeAddr::parse("10.0.0.1:7060").unwrap();
        let nodes = parse_cluster_nodes(text, &asked);
        assert_eq!(nodes.len(), 4);
        assert!(nodes[0].is_replica() && !nodes[0].is_master());
        assert_eq!(nodes[0].master_id.as_deref(), Some("020a"));
        assert_eq!(
            nodes[1].addr.as_ref().unwrap().to_string(),
            "127.0.0.1:7061"
        );
        assert_eq!(nodes[1].slots, 5462);
        assert_eq!(nodes[1].master_id, None);
        assert_eq!(nodes[2].addr.as_ref().unwrap().to_string(), "10.0.0.1:7060");
        assert_eq!(nodes[2].slots, 5462);
        assert!(nodes[3].addr.is_none() && nodes[3].is_failed() && !nodes[3].connected);
        assert!(nodes[3].addr_text().contains("dead"));
    }

    #[test]
    fn a_node_without_a_host_is_on_the_ipv6_host_asked() {
        let text = "020a :7002@17002 myself,master - 0 0 1 connected 0-16383";
        let asked = NodeAddr::parse("[::1]:7000").unwrap();
        let nodes = parse_cluster_nodes(text, &asked);
        assert_eq!(nodes[0].addr, Some(NodeAddr::parse("[::1]:7002").unwrap()));
        // Other nodes' IPv6 addresses come without brackets.
        let text = "020b ::2:7003@17003 master - 0 0 1 connected 0-16383";
        let nodes = parse_cluster_nodes(text, &asked);
        assert_eq!(nodes[0].addr, Some(NodeAddr::parse("[::2]:7003").unwrap()));
    }

    #[test]
    fn slot_entries_out_of_bounds_count_for_nothing() {
        let line = |slots: &str| format!("a 127.0.0.1:7000@17000 master - 0 0 1 connected {slots}");
        let asked = NodeAddr::parse("127.0.0.1:7000").unwrap();
        let count = |slots: &str| parse_cluster_nodes(&line(slots), &asked)[0].slots;
        // Would overflow `b - a + 1` (a panic in debug, a wrap in release).
        assert_eq!(count("0-18446744073709551615"), 0);
        assert_eq!(count("18446744073709551615"), 0);
        assert_eq!(count("16384 16383-16384 5-3 -1 x-2 [1-<-b]"), 0);
        assert_eq!(count("0-16383"), SLOT_COUNT);
        assert_eq!(count("0 16383 0-0 10-19"), 13);
    }
}
