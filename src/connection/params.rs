//! What every connection needs to open and authenticate, taken from the
//! config once at init.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{AddressMap, Config, NodeAddr, Secret};
use crate::error::Result;
use crate::tls::TlsClient;

/// What every connection of this library needs to know to open and
/// authenticate, taken from the config once at init.
#[derive(Debug, Clone)]
pub struct ConnectParams {
    pub connect_timeout: Duration,
    pub socket_timeout: Duration,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Set when `tls-enabled=true`; CA files were read once, at init.
    pub tls: Option<Arc<TlsClient>>,
    /// `max-value-bytes`: a GET's reply announcing more is not read.
    pub max_value_bytes: usize,
    /// `redis-address-map`, asked each time a node is dialled.
    pub address_map: Arc<AddressMap>,
}

impl ConnectParams {
    pub fn from_config(config: &Config) -> Result<Self> {
        let tls = if config.tls.enabled {
            Some(Arc::new(TlsClient::from_settings(&config.tls)?))
        } else {
            None
        };
        Ok(ConnectParams {
            connect_timeout: config.connect_timeout,
            socket_timeout: config.socket_timeout,
            username: config.username.clone(),
            password: config.password.clone(),
            tls,
            max_value_bytes: config.max_value_bytes,
            address_map: Arc::new(config.address_map.clone()),
        })
    }

    /// The address to dial for the node the cluster announces as `addr`:
    /// its entry in `redis-address-map`, else `addr` itself.
    pub fn dial_address<'a>(&'a self, addr: &'a NodeAddr) -> &'a NodeAddr {
        self.address_map.route(addr).unwrap_or(addr)
    }
}
