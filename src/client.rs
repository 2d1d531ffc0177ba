//! What init established and every call needs: the config, the connect
//! parameters, the key layout, the slot map, what the servers support. One
//! `Client` per init, and a new one (sharing the slot map) per
//! `ors_redis_reconfigure`; `lifecycle` makes, swaps and retires them.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::cluster::discovery;
use crate::cluster::topology::{SlotMap, Topology};
use crate::cluster::Reach;
use crate::config::{self, Config, NodeAddr, OnChange};
use crate::connection::ConnectParams;
use crate::dictionary::Writing;
use crate::error::Result;
use crate::keys::KeyBuilder;

/// Everything a call needs that init (or the last reconfigure) established.
pub struct Client {
    /// The init this client belongs to.
    pub generation: u64,
    /// Its settings: a new number for each init and each reconfigure, so
    /// that a thread sees with one comparison whether its client is the
    /// live one.
    pub settings: u64,
    /// The config it was made from.
    pub config: Config,
    /// How its connections open and log in, from `config`.
    pub params: ConnectParams,
    /// The key layout of `config`'s cluster name.
    pub keys: KeyBuilder,
    /// Shared by the clients of one init: a reconfigure keeps the map.
    pub topology: Arc<Topology>,
    /// UNLINK (Redis 4.0+) rather than DEL; switched off if a server says it
    /// does not know UNLINK.
    pub use_unlink: Arc<AtomicBool>,
    /// The zstd dictionary puts write with (`compression-dictionary`),
    /// attached by `dictionaries::attach`.
    pub dictionary: Option<Arc<Writing>>,
}

impl Client {
    /// Finds the cluster from the config's seeds (refusing what is not a
    /// Redis Cluster) and reads its slot map.
    pub fn connect(config: Config, generation: u64) -> Result<Client> {
        let params = ConnectParams::from_config(&config)?;
        let found = discovery::discover(&config, &params)?;
        Ok(Client::new(
            config,
            params,
            found.map,
            found.use_unlink,
            generation,
        ))
    }

    /// A client of `generation` (and settings of the same number) on the
    /// slot map `map`. The operator command makes one on a slot map it found
    /// by its own seed rule, without init's checks of the masters (and so
    /// with `use_unlink` until a server says it does not know UNLINK).
    pub fn new(
        config: Config,
        params: ConnectParams,
        map: SlotMap,
        use_unlink: bool,
        generation: u64,
    ) -> Client {
        Client {
            generation,
            settings: generation,
            keys: KeyBuilder::new(&config.cluster_name),
            topology: Arc::new(Topology::new(config.nodes.clone(), map)),
            use_unlink: Arc::new(AtomicBool::new(use_unlink)),
            dictionary: None,
            params,
            config,
        }
    }

    /// This client with `config` (whose changed keys, all of which can
    /// change live, are `changed`), as settings number `settings`. The new
    /// TLS files are read, and when credentials, TLS or seeds changed, every
    /// node of the slot map and every seed is asked for its slot map with
    /// the new settings: a node that refuses them (authentication, TLS, not
    /// a cluster node) is the error, and nothing changes. The seeds are
    /// those of the new config from the moment the result is live.
    pub fn reconfigured(&self, config: Config, changed: &[&str], settings: u64) -> Result<Client> {
        let params = self.params.reconfigured(&config, changed)?;
        if config::changes_ask(changed, OnChange::checks_nodes) {
            discovery::check_nodes(&self.nodes_to_check(&config), &params)?;
        }
        Ok(Client {
            generation: self.generation,
            settings,
            keys: self.keys.clone(),
            topology: self.topology.clone(),
            use_unlink: self.use_unlink.clone(),
            // Attached by lifecycle::reconfigure (kept when unchanged).
            dictionary: None,
            params,
            config,
        })
    }

    /// Every node of the slot map (masters first), then the seeds of
    /// `config`; each once.
    fn nodes_to_check(&self, config: &Config) -> Vec<NodeAddr> {
        let map = self.topology.current();
        let mut nodes: Vec<NodeAddr> = map.masters.iter().map(|m| m.addr.clone()).collect();
        for master in &map.masters {
            nodes.extend(master.replicas.iter().cloned());
        }
        nodes.extend(config.nodes.iter().cloned());
        let mut seen = std::collections::HashSet::new();
        nodes.retain(|n| seen.insert(n.clone()));
        nodes
    }
}

/// What the node layer uses of a client: its slot map and connect params.
impl<'a> From<&'a Client> for Reach<'a> {
    fn from(client: &'a Client) -> Reach<'a> {
        Reach {
            topology: &client.topology,
            params: &client.params,
        }
    }
}

/// The bulk read holds its client in an `Arc`, and passes that.
impl<'a> From<&'a Arc<Client>> for Reach<'a> {
    fn from(client: &'a Arc<Client>) -> Reach<'a> {
        Reach::from(&**client)
    }
}
