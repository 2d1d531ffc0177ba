//! What init established and every call needs: the config, the connect
//! parameters, the key layout, the slot map, what the servers support. One
//! `Client` per init; `lifecycle` makes and retires it.

use std::sync::atomic::AtomicBool;

use crate::cluster::discovery;
use crate::cluster::topology::{SlotMap, Topology};
use crate::config::Config;
use crate::connection::ConnectParams;
use crate::error::Result;
use crate::keys::KeyBuilder;

/// Everything a call needs that init established.
pub struct Client {
    pub generation: u64,
    pub config: Config,
    pub params: ConnectParams,
    pub keys: KeyBuilder,
    pub topology: Topology,
    /// UNLINK (Redis 4.0+) rather than DEL; switched off if a server says it
    /// does not know UNLINK.
    pub use_unlink: AtomicBool,
}

impl Client {
    /// Finds the cluster from the config's seeds (refusing what is not a
    /// Redis Cluster) and reads its slot map.
    pub fn connect(config: Config, generation: u64) -> Result<Client> {
        let params = ConnectParams::from_config(&config)?;
        let found = discovery::discover(&config, &params)?;
        Ok(Client {
            generation,
            keys: KeyBuilder::new(&config.cluster_name),
            topology: Topology::new(config.nodes.clone(), found.map),
            use_unlink: AtomicBool::new(found.use_unlink),
            params,
            config,
        })
    }

    /// A client on a slot map found elsewhere (the operator command picks
    /// its seed by its own rule), without init's checks of the masters:
    /// UNLINK is assumed until a server says it does not know it.
    pub fn with_slot_map(config: Config, map: SlotMap, generation: u64) -> Result<Client> {
        Ok(Client {
            generation,
            params: ConnectParams::from_config(&config)?,
            keys: KeyBuilder::new(&config.cluster_name),
            topology: Topology::new(config.nodes.clone(), map),
            use_unlink: AtomicBool::new(true),
            config,
        })
    }
}
