//! What every connection needs to open and authenticate, taken from the
//! config at init and again at each `ors_redis_reconfigure`; and what a
//! change of them means for the connections already open.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{self, AddressMap, Config, NodeAddr, OnChange, Secret};
use crate::error::Result;
use crate::tls::TlsClient;

/// What every connection of this library needs to know to open and
/// authenticate.
#[derive(Debug, Clone)]
pub struct ConnectParams {
    /// `redis-connect-timeout`: one connection attempt, connect and AUTH.
    pub connect_timeout: Duration,
    /// `redis-socket-timeout`: one request's reply.
    pub socket_timeout: Duration,
    /// `username`, for AUTH.
    pub username: Option<String>,
    /// `password`, for AUTH.
    pub password: Option<Secret>,
    /// Set when `tls-enabled=true`; the CA and key files are read when it is
    /// made (at init, and at a reconfigure that changes a `tls-*` key).
    pub tls: Option<Arc<TlsClient>>,
    /// `max-value-bytes`: a GET's reply announcing more is not read.
    pub max_value_bytes: usize,
    /// `redis-address-map`, asked each time a node is dialled.
    pub address_map: Arc<AddressMap>,
}

/// What a connection opened under older params needs before its next use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// Nothing: what changed (timeouts) is read at each call.
    Keep,
    /// A new `AUTH` with the new username and password.
    Reauthenticate,
    /// A new connection: the TLS context or the reply reader's limit is
    /// fixed when a connection opens, and no `AUTH` undoes a login.
    Reopen,
}

impl ConnectParams {
    /// The params of `config`, its TLS files read.
    pub fn from_config(config: &Config) -> Result<Self> {
        let tls = if config.tls.enabled {
            Some(Arc::new(TlsClient::from_settings(&config.tls)?))
        } else {
            None
        };
        Ok(Self::with_tls(config, tls))
    }

    /// The params of `config`, a new config of a running library whose
    /// changed keys are `changed`: the TLS files are read again only when a
    /// key says so (`OnChange::NewTls`: a bad file is an error, and these
    /// params stay);
    /// otherwise the connections keep sharing the TLS context they have.
    pub fn reconfigured(&self, config: &Config, changed: &[&str]) -> Result<Self> {
        if config::changes_ask(changed, OnChange::reads_tls_files) {
            Self::from_config(config)
        } else {
            Ok(Self::with_tls(config, self.tls.clone()))
        }
    }

    fn with_tls(config: &Config, tls: Option<Arc<TlsClient>>) -> Self {
        ConnectParams {
            connect_timeout: config.connect_timeout,
            socket_timeout: config.socket_timeout,
            username: config.username.clone(),
            password: config.password.clone(),
            tls,
            max_value_bytes: config.max_value_bytes,
            address_map: Arc::new(config.address_map.clone()),
        }
    }

    /// What a connection opened with `old` needs to be one opened with
    /// these params.
    pub fn renewal_from(&self, old: &ConnectParams) -> Renewal {
        let same_tls = match (&self.tls, &old.tls) {
            (None, None) => true,
            (Some(new), Some(old)) => Arc::ptr_eq(new, old),
            _ => false,
        };
        let logged_out = self.password.is_none() && old.password.is_some();
        if !same_tls || logged_out || self.max_value_bytes != old.max_value_bytes {
            Renewal::Reopen
        } else if self.username != old.username || self.password != old.password {
            Renewal::Reauthenticate
        } else {
            Renewal::Keep
        }
    }

    /// The address to dial for the node the cluster announces as `addr`:
    /// its entry in `redis-address-map`, else `addr` itself.
    pub fn dial_address<'a>(&'a self, addr: &'a NodeAddr) -> &'a NodeAddr {
        self.address_map.route(addr).unwrap_or(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(extra: &str) -> ConnectParams {
        let config = Config::parse(&format!("redis-nodes=h:1 cluster-name=T {extra}")).unwrap();
        ConnectParams::from_config(&config).unwrap()
    }

    #[test]
    fn what_a_change_means_for_open_connections() {
        let old = params("username=ors password=old-pw");
        let cases = [
            ("username=ors password=old-pw", Renewal::Keep),
            (
                "username=ors password=old-pw op-timeout=9 redis-socket-timeout=9",
                Renewal::Keep,
            ),
            ("username=ors password=new-pw", Renewal::Reauthenticate),
            ("username=other password=old-pw", Renewal::Reauthenticate),
            ("password=old-pw", Renewal::Reauthenticate),
            ("", Renewal::Reopen),
            (
                "username=ors password=old-pw max-value-bytes=9",
                Renewal::Reopen,
            ),
        ];
        for (extra, want) in cases {
            assert_eq!(params(extra).renewal_from(&old), want, "{extra}");
        }
        assert_eq!(
            params("password=p").renewal_from(&params("")),
            Renewal::Reauthenticate
        );
    }

    /// Every key that can change live, with another value for it: the
    /// renewal its change brings to an open connection is the one its
    /// `OnChange` in config/options.rs declares. The TLS keys need TLS
    /// files: the test below holds them to `NewTls`.
    #[test]
    fn a_change_renews_connections_as_the_key_table_declares() {
        use crate::config::{OnChange, KEYS};
        let base = [
            ("redis-nodes", "h:1"),
            ("cluster-name", "T"),
            ("username", "ors"),
            ("password", "old-pw"),
        ];
        let text = |key: &str, value: &str| {
            let mut pairs: Vec<String> = base
                .iter()
                .filter(|(k, _)| *k != key)
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            pairs.push(format!("{key}={value}"));
            pairs.join(" ")
        };
        let other_value = |key: &str| match key {
            "type" => None, // "redis" is its only value
            "redis-nodes" => Some("h:2"),
            "username" => Some("other"),
            "password" => Some("new-pw"),
            "redis-connect-timeout" | "redis-socket-timeout" | "op-timeout" => Some("9"),
            "node-fail-fast" => Some("false"),
            "node-fail-count" => Some("3"),
            "node-probe-interval" | "default-ttl" | "wait-timeout" => Some("9"),
            "wait-replicas" => Some("1"),
            "max-value-bytes" => Some("9"),
            "log-level" => Some("debug"),
            "compression" => Some("zstd"),
            "compression-level" => Some("5"),
            "compression-min-bytes" => Some("9"),
            "compression-dictionary" => Some("0000abcd"),
            other => panic!("add another value for the new key {other} to this test"),
        };
        let old_config = Config::parse(&text("cluster-name", "T")).unwrap();
        let old = ConnectParams::from_config(&old_config).unwrap();
        let live = KEYS
            .iter()
            .filter(|k| k.on_change.live() && !k.on_change.reads_tls_files());
        for key in live {
            let Some(value) = other_value(key.name) else {
                continue;
            };
            let config = Config::parse(&text(key.name, value)).unwrap();
            let changed = config.live_changes_from(&old_config).unwrap();
            assert_eq!(changed, [key.name]);
            let want = match key.on_change {
                OnChange::Nothing | OnChange::NewSeeds => Renewal::Keep,
                OnChange::Relogin => Renewal::Reauthenticate,
                OnChange::Reopen | OnChange::NewTls => Renewal::Reopen,
                OnChange::Restart => unreachable!(),
            };
            let new = old.reconfigured(&config, &changed).unwrap();
            assert_eq!(new.renewal_from(&old), want, "{}", key.name);
        }
    }

    #[test]
    fn the_tls_context_is_kept_unless_a_tls_key_changed() {
        let dir = std::env::temp_dir().join(format!("ors-params-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, TEST_CA).unwrap();
        let text = |extra: &str| {
            format!(
                "redis-nodes=h:1 cluster-name=T tls-enabled=true tls-cacert={} {extra}",
                ca.display()
            )
        };
        let old_config = Config::parse(&text("password=a")).unwrap();
        let old = ConnectParams::from_config(&old_config).unwrap();

        let config = Config::parse(&text("password=b")).unwrap();
        let changed = config.live_changes_from(&old_config).unwrap();
        let new = old.reconfigured(&config, &changed).unwrap();
        assert!(Arc::ptr_eq(
            new.tls.as_ref().unwrap(),
            old.tls.as_ref().unwrap()
        ));
        assert_eq!(new.renewal_from(&old), Renewal::Reauthenticate);

        let config = Config::parse(&text("password=a tls-sni=redis.example")).unwrap();
        let changed = config.live_changes_from(&old_config).unwrap();
        let new = old.reconfigured(&config, &changed).unwrap();
        assert_eq!(new.renewal_from(&old), Renewal::Reopen);
        // As the key table declares for every live tls-* key.
        for key in crate::config::KEYS
            .iter()
            .filter(|k| k.name.starts_with("tls-"))
        {
            let want = if key.name == "tls-enabled" {
                crate::config::OnChange::Restart
            } else {
                crate::config::OnChange::NewTls
            };
            assert_eq!(key.on_change, want, "{}", key.name);
        }

        // A CA file that cannot be read: an error, naming the key.
        let missing = dir.join("missing.pem");
        let config = Config::parse(&format!(
            "redis-nodes=h:1 cluster-name=T tls-enabled=true tls-cacert={} password=a",
            missing.display()
        ))
        .unwrap();
        let changed = config.live_changes_from(&old_config).unwrap();
        let e = old.reconfigured(&config, &changed).unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Config, "{e}");
        assert!(e.message.contains("tls-cacert"), "{}", e.message);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A self-signed CA certificate: any parsable one does, nothing is
    /// verified against it here.
    const TEST_CA: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBmTCCAT+gAwIBAgIUYclaFtQLdOiWdARclHShs3QbKVgwCgYIKoZIzj0EAwIw\n\
ITEfMB0GA1UEAwwWb3JzLXJlZGlzIHVuaXQtdGVzdCBDQTAgFw0yNjEyMDUyMTA0\n\
MDRaGA8yMTI2MTExMTIxMDQwNFowITEfMB0GA1UEAwwWb3JzLXJlZGlzIHVuaXQt\n\
dGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABH9NJzffUiGTfzEhv9hQ\n\
qmmXvoP42ro6ILtKsxzEDlTg9SoKSa6d2FnsVixWSB5V3O+YwOwZLoa09xnSOXOV\n\
6EKjUzBRMB0GA1UdDgQWBBQzva+4+hW6Snu+Bv1t149xgx1DejAfBgNVHSMEGDAW\n\
gBQzva+4+hW6Snu+Bv1t149xgx1DejAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49\n\
BAMCA0gAMEUCIFqMDpC4a9VQdYsXS5ICvHUVJIUcvtwau4cfC1lwJNL6AiEAjLlo\n\
ujMgJbAU/NYa4AhsuDu65BelDjZLCmGjuFjxRI0=\n\
-----END CERTIFICATE-----\n\
";
}
