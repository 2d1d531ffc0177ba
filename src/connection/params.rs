//! What every connection needs to open and authenticate, taken from the
//! config once at init.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, Secret};
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
        })
    }
}
