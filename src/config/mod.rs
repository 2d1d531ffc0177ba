//! The library's configuration, read from the config string that ORS hands
//! over: whitespace-separated `key=value` pairs as in libpq's conninfo, with
//! the option names of ORS's `persistence` section.
//!
//! - `conninfo.rs`: the string's grammar (quoting, unknown and duplicate keys).
//! - `options.rs`: the keys, each declared once (name, default, reader,
//!   whether it can change at run time).
//! - `node_addr.rs`, `address_map.rs`: a node's address, and where to dial
//!   the nodes the cluster announces at addresses this host cannot reach.
//! - here: [`Config`], the rules that span keys, and what changes between
//!   two configs.
//!
//! Error messages never repeat any part of the value of `password`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::envelope::Compression;
use crate::error::{Error, Result};
use crate::keys::ClusterName;

mod address_map;
mod conninfo;
mod node_addr;
mod options;

pub use address_map::AddressMap;
pub use node_addr::NodeAddr;
pub use options::{
    can_change_live, changes_ask, key, suggest, KeyDefault, KeySpec, OnChange, KEYS,
};

/// A password: kept out of `Debug` output so that it cannot leak into a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The password itself, for AUTH only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `log-level`: the most verbose level logged, ordered from `Off` up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Nothing is logged.
    Off = 0,
    /// Errors only.
    Error = 1,
    /// Also what an operator should look at (a node marked unavailable).
    Warn = 2,
    /// Also the library's events (init, reconfigure, a node well again).
    Info = 3,
    /// Also each retry and redirect.
    Debug = 4,
    /// Everything.
    Trace = 5,
}

impl LogLevel {
    /// Reads a level's name, in any case (`warning` for `warn` too).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_lowercase().as_str() {
            "off" => LogLevel::Off,
            "error" => LogLevel::Error,
            "warn" | "warning" => LogLevel::Warn,
            "info" => LogLevel::Info,
            "debug" => LogLevel::Debug,
            "trace" => LogLevel::Trace,
            _ => return None,
        })
    }
}

/// ORS's persistence backend (`type`): this library is the Redis one, so a
/// section ORS hands over as it is reads, and a section meant for another
/// backend does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `type=redis`.
    Redis,
}

/// The `tls-*` keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// `tls-enabled`: connect with TLS.
    pub enabled: bool,
    /// `tls-cacert`: a PEM file of CAs; the system roots when neither it
    /// nor `cacertdir` is set.
    pub cacert: Option<PathBuf>,
    /// `tls-cacertdir`: a folder of PEM CA files.
    pub cacertdir: Option<PathBuf>,
    /// `tls-cert`: the client certificate, for mutual TLS (with `key`).
    pub cert: Option<PathBuf>,
    /// `tls-key`: the client certificate's private key.
    pub key: Option<PathBuf>,
    /// `tls-sni`: the server name sent and verified; the node's host when unset.
    pub sni: Option<String>,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `type`: always [`Backend::Redis`] once parsed.
    pub backend: Backend,
    /// `redis-nodes`: the seed nodes, never empty.
    pub nodes: Vec<NodeAddr>,
    /// `redis-address-map`: empty unless the key is given.
    pub address_map: AddressMap,
    /// `cluster-name`: keys live under `ORS:<cluster-name>`.
    pub cluster_name: ClusterName,
    /// `username`: the ACL user (Redis 6 on); `password` alone without it.
    pub username: Option<String>,
    /// `password`: the ACL user's, or `requirepass`'s.
    pub password: Option<Secret>,
    /// `tls-*`.
    pub tls: TlsSettings,
    /// `redis-connect-timeout`: one connection attempt, connect and AUTH.
    pub connect_timeout: Duration,
    /// `redis-socket-timeout`: one request's reply.
    pub socket_timeout: Duration,
    /// `op-timeout`: one call as a whole, retries included.
    pub op_timeout: Duration,
    /// `node-fail-fast`: calls to a node marked unavailable return at once.
    pub node_fail_fast: bool,
    /// `node-fail-count`: node failures in a row that mark it unavailable.
    pub node_fail_count: u32,
    /// `node-probe-interval`: at most one probe of an unavailable node per this.
    pub node_probe_interval: Duration,
    /// `default-ttl`: the TTL when put passes 0, in seconds.
    pub default_ttl_secs: u32,
    /// `wait-replicas`: after a write, `WAIT` for this many replicas (0: no `WAIT`).
    pub wait_replicas: u32,
    /// `wait-timeout`: how long that `WAIT` may take; at least 1 ms.
    pub wait_timeout: Duration,
    /// `max-value-bytes`: the longest value put accepts and get reads.
    pub max_value_bytes: usize,
    /// What put and import write: `compression`, `compression-level`,
    /// `compression-min-bytes`.
    pub compression: Compression,
    /// `log-level`.
    pub log_level: LogLevel,
}

impl Config {
    /// Reads a config string: each key's value through its entry in
    /// [`KEYS`], the defaults for the keys left out, then the rules that
    /// span keys. Any mistake is a config error that names the key.
    pub fn parse(text: &str) -> Result<Config> {
        let pairs = conninfo::split_pairs(text)?;
        let mut config = Config::blank()?;
        for key in KEYS {
            if let KeyDefault::Value(default) = key.default {
                key.apply(&mut config, default, true)?;
            }
        }
        for pair in &pairs {
            pair.key
                .apply(&mut config, &pair.value, !pair.may_be_a_piece)?;
        }
        let given = |key: &KeySpec| pairs.iter().any(|p| p.key.name == key.name);
        if let Some(missing) = KEYS
            .iter()
            .find(|k| k.default == KeyDefault::Required && !given(k))
        {
            return Err(Error::config(format!(
                "config: missing required key '{}'",
                missing.name
            )));
        }
        config.check()?;
        Ok(config)
    }

    /// Every field empty or zero, for the key table to fill. Its cluster
    /// name is a stand-in: `cluster-name` is required, so a parsed config
    /// always holds the given one.
    fn blank() -> Result<Config> {
        Ok(Config {
            backend: Backend::Redis,
            nodes: Vec::new(),
            address_map: AddressMap::default(),
            cluster_name: ClusterName::parse("unset").map_err(Error::config)?,
            username: None,
            password: None,
            tls: TlsSettings::default(),
            connect_timeout: Duration::ZERO,
            socket_timeout: Duration::ZERO,
            op_timeout: Duration::ZERO,
            node_fail_fast: false,
            node_fail_count: 0,
            node_probe_interval: Duration::ZERO,
            default_ttl_secs: 0,
            wait_replicas: 0,
            wait_timeout: Duration::ZERO,
            max_value_bytes: 0,
            compression: Compression::default(),
            log_level: LogLevel::Off,
        })
    }

    /// The keys whose values differ between `old` and this config, in
    /// [`KEYS`] order.
    pub fn changes_from(&self, old: &Config) -> Vec<&'static str> {
        KEYS.iter()
            .filter(|k| !k.same(self, old))
            .map(|k| k.name)
            .collect()
    }

    /// The changed keys (as [`Config::changes_from`]) when a running library
    /// can take them all; otherwise a config error naming each key that
    /// cannot change live, so that nothing changes. The message names keys
    /// only, never a value.
    pub fn live_changes_from(&self, old: &Config) -> Result<Vec<&'static str>> {
        let changed = self.changes_from(old);
        let fixed: Vec<String> = changed
            .iter()
            .filter(|k| !can_change_live(k))
            .map(|k| format!("'{k}'"))
            .collect();
        if !fixed.is_empty() {
            return Err(Error::config(format!(
                "config: {} cannot change while the library runs \
                 (ors_redis_shutdown, then ors_redis_init with the new config)",
                fixed.join(", ")
            )));
        }
        Ok(changed)
    }

    /// The rules that span keys.
    fn check(&self) -> Result<()> {
        if self.username.is_some() && self.password.is_none() {
            return Err(Error::config(
                "config: 'username' needs 'password' (ACL users authenticate with both)",
            ));
        }
        let tls = &self.tls;
        if tls.cert.is_some() != tls.key.is_some() {
            return Err(Error::config(
                "config: set both 'tls-cert' and 'tls-key' (client certificate), or neither",
            ));
        }
        let tls_files = tls.cacert.is_some()
            || tls.cacertdir.is_some()
            || tls.cert.is_some()
            || tls.sni.is_some();
        if tls_files && !tls.enabled {
            return Err(Error::config(
                "config: tls-* options are set but tls-enabled is not true",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    const BASE: &str = "redis-nodes=127.0.0.1:7000 cluster-name=T";

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text)
    }

    #[test]
    fn defaults() {
        let c = parse(BASE).unwrap();
        assert_eq!(c.nodes, vec![NodeAddr::parse("127.0.0.1:7000").unwrap()]);
        assert_eq!(c.cluster_name.as_str(), "T");
        assert_eq!(c.connect_timeout, Duration::from_millis(1000));
        assert_eq!(c.socket_timeout, Duration::from_millis(1000));
        assert_eq!(c.op_timeout, Duration::from_millis(5000));
        assert_eq!(c.default_ttl_secs, 2_592_000);
        assert_eq!(c.wait_replicas, 0);
        assert_eq!(c.wait_timeout, Duration::from_millis(100));
        assert_eq!(c.max_value_bytes, 67_108_864);
        assert_eq!(c.log_level, LogLevel::Warn);
        assert!(!c.tls.enabled);
        assert!(c.username.is_none() && c.password.is_none());
    }

    #[test]
    fn the_contract_example_parses() {
        let c = parse(
            "redis-nodes=10.0.0.1:7000;10.0.0.2:7000 cluster-name=ORS_EU username=ors \
             password='s3cret pass' tls-enabled=true tls-cacert=/etc/ors/ca.pem",
        )
        .unwrap();
        assert_eq!(c.nodes.len(), 2);
        assert_eq!(c.nodes[1].to_string(), "10.0.0.2:7000");
        assert_eq!(c.username.as_deref(), Some("ors"));
        assert_eq!(c.password.as_ref().unwrap().expose(), "s3cret pass");
        assert!(c.tls.enabled);
        assert_eq!(c.tls.cacert, Some(PathBuf::from("/etc/ors/ca.pem")));
    }

    #[test]
    fn quoting_and_escapes() {
        let c = parse(r"redis-nodes=h:1 cluster-name=T password='it\'s a \\ pass'").unwrap();
        assert_eq!(c.password.unwrap().expose(), r"it's a \ pass");
        let c = parse("  redis-nodes='h:1; h:2'\tcluster-name='T'\n").unwrap();
        assert_eq!(c.nodes.len(), 2);
        assert_eq!(c.cluster_name.as_str(), "T");
        // Unquoted values are literal.
        let c = parse(r"redis-nodes=h:1 cluster-name=T password=a\b").unwrap();
        assert_eq!(c.password.unwrap().expose(), r"a\b");
    }

    #[test]
    fn the_address_map_reads_ipv4_ipv6_and_names() {
        let c = parse(&format!(
            "{BASE} redis-address-map='127.0.0.111:7000=127.0.0.11:7000; \
             [::1]:7000=[::1]:7100;redis-1:6379=localhost:16379'"
        ))
        .unwrap();
        let route = |text: &str| {
            c.address_map
                .route(&NodeAddr::parse(text).unwrap())
                .map(|a| a.to_string())
        };
        assert_eq!(
            route("127.0.0.111:7000").as_deref(),
            Some("127.0.0.11:7000")
        );
        assert_eq!(route("[::1]:7000").as_deref(), Some("[::1]:7100"));
        assert_eq!(route("redis-1:6379").as_deref(), Some("localhost:16379"));
        assert!(parse(BASE).unwrap().address_map.is_empty());
    }

    #[test]
    fn node_lists() {
        let c = parse("redis-nodes=a:1,b:2;[::1]:7000;a:1 cluster-name=T").unwrap();
        let shown: Vec<String> = c.nodes.iter().map(|n| n.to_string()).collect();
        assert_eq!(shown, ["a:1", "b:2", "[::1]:7000"]);
        assert_eq!(c.nodes[2].host, "::1");
    }

    #[test]
    fn compression_keys() {
        let c = parse(BASE).unwrap();
        assert_eq!(c.compression, Compression::default());
        assert_eq!(c.compression.algorithm, crate::envelope::Algorithm::Off);
        let c = parse(&format!(
            "{BASE} compression=zstd compression-level=9 compression-min-bytes=0"
        ))
        .unwrap();
        assert_eq!(c.compression.algorithm, crate::envelope::Algorithm::Zstd);
        assert_eq!((c.compression.level, c.compression.min_bytes), (9, 0));
        let e = parse(&format!("{BASE} compression=gzip")).unwrap_err();
        assert!(
            e.message.contains("not one of off, lz4, zstd"),
            "{}",
            e.message
        );
        assert!(parse(&format!("{BASE} compression-level=20")).is_err());
        assert!(parse(&format!("{BASE} compression-level=0")).is_err());
        let c = parse(&format!("{BASE} compression-dictionary=1A2b3c4D")).unwrap();
        assert_eq!(c.compression.dictionary, Some(0x1a2b_3c4d));
        let c = parse(&format!("{BASE} compression-dictionary=none")).unwrap();
        assert_eq!(c.compression.dictionary, None);
        let e = parse(&format!("{BASE} compression-dictionary=abc")).unwrap_err();
        assert!(e.message.contains("not a dictionary id"), "{}", e.message);
    }

    #[test]
    fn booleans_and_levels() {
        for (text, want) in [
            ("true", true),
            ("on", true),
            ("1", true),
            ("false", false),
            ("off", false),
            ("0", false),
        ] {
            let c = parse(&format!("{BASE} tls-enabled={text}")).unwrap();
            assert_eq!(c.tls.enabled, want, "{text}");
        }
        let c = parse(&format!("{BASE} log-level=trace")).unwrap();
        assert_eq!(c.log_level, LogLevel::Trace);
    }

    /// A config from `text`, with the required keys added when it lacks them.
    fn config(text: &str) -> Config {
        let mut full = text.to_string();
        for (key, value) in [("redis-nodes", "h:1"), ("cluster-name", "T")] {
            if !text.contains(&format!("{key}=")) {
                full += &format!(" {key}={value}");
            }
        }
        parse(&full).unwrap()
    }

    /// A default given explicitly changes nothing: the table's defaults are
    /// the values a config without the key holds.
    #[test]
    fn a_default_given_explicitly_changes_nothing() {
        for key in KEYS {
            if let KeyDefault::Value(default) = key.default {
                let explicit = config(&format!("{}={default}", key.name));
                assert_eq!(explicit.changes_from(&config("")), [""; 0], "{}", key.name);
            }
        }
    }

    /// Each key, with two configs that differ in that key alone.
    #[test]
    fn a_change_names_the_key_that_changed() {
        let tls = "tls-enabled=true";
        let cases: &[(&str, String, String)] = &[
            // One value only: given or not, nothing changes.
            ("type", "".into(), "type=redis".into()),
            (
                "redis-nodes",
                "redis-nodes=h:1".into(),
                "redis-nodes=h:1;h:2".into(),
            ),
            (
                "redis-address-map",
                "".into(),
                "redis-address-map=a:1=h:1".into(),
            ),
            (
                "cluster-name",
                "cluster-name=T".into(),
                "cluster-name=U".into(),
            ),
            (
                "username",
                "password=p".into(),
                "password=p username=u".into(),
            ),
            ("password", "".into(), "password=p".into()),
            ("tls-enabled", "".into(), tls.into()),
            ("tls-cacert", tls.into(), format!("{tls} tls-cacert=/ca")),
            (
                "tls-cacertdir",
                tls.into(),
                format!("{tls} tls-cacertdir=/d"),
            ),
            (
                "tls-cert",
                format!("{tls} tls-cert=/c tls-key=/k"),
                format!("{tls} tls-cert=/c2 tls-key=/k"),
            ),
            (
                "tls-key",
                format!("{tls} tls-cert=/c tls-key=/k"),
                format!("{tls} tls-cert=/c tls-key=/k2"),
            ),
            ("tls-sni", tls.into(), format!("{tls} tls-sni=n")),
            (
                "redis-connect-timeout",
                "".into(),
                "redis-connect-timeout=9".into(),
            ),
            (
                "redis-socket-timeout",
                "".into(),
                "redis-socket-timeout=9".into(),
            ),
            ("op-timeout", "".into(), "op-timeout=9".into()),
            ("node-fail-fast", "".into(), "node-fail-fast=false".into()),
            ("node-fail-count", "".into(), "node-fail-count=3".into()),
            (
                "node-probe-interval",
                "".into(),
                "node-probe-interval=50".into(),
            ),
            ("default-ttl", "".into(), "default-ttl=9".into()),
            ("wait-replicas", "".into(), "wait-replicas=1".into()),
            ("wait-timeout", "".into(), "wait-timeout=9".into()),
            ("max-value-bytes", "".into(), "max-value-bytes=9".into()),
            ("compression", "".into(), "compression=zstd".into()),
            ("compression-level", "".into(), "compression-level=9".into()),
            (
                "compression-min-bytes",
                "".into(),
                "compression-min-bytes=9".into(),
            ),
            (
                "compression-dictionary",
                "".into(),
                "compression-dictionary=0000abcd".into(),
            ),
            ("log-level", "".into(), "log-level=info".into()),
        ];
        let names: Vec<&str> = cases.iter().map(|c| c.0).collect();
        let declared: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        assert_eq!(names, declared, "one case per declared key");
        for (key, old, new) in cases {
            let (old, new) = (config(old), config(new));
            if *key == "type" {
                assert_eq!(new.changes_from(&old), [""; 0]);
                continue;
            }
            assert_eq!(new.changes_from(&old), [*key]);
            assert_eq!(old.changes_from(&new), [*key]);
            assert_eq!(new.changes_from(&new), [""; 0]);
        }
        let both = config("op-timeout=9 password=p").changes_from(&config(""));
        assert_eq!(both, ["password", "op-timeout"]);
    }

    #[test]
    fn only_the_agreed_keys_can_change_live() {
        let live: Vec<&str> = KEYS
            .iter()
            .filter(|k| k.on_change.live())
            .map(|k| k.name)
            .collect();
        assert_eq!(
            live,
            [
                "type",
                "redis-nodes",
                "username",
                "password",
                "tls-cacert",
                "tls-cacertdir",
                "tls-cert",
                "tls-key",
                "tls-sni",
                "redis-connect-timeout",
                "redis-socket-timeout",
                "op-timeout",
                "node-fail-fast",
                "node-fail-count",
                "node-probe-interval",
                "default-ttl",
                "wait-replicas",
                "wait-timeout",
                "max-value-bytes",
                "compression",
                "compression-level",
                "compression-min-bytes",
                "compression-dictionary",
                "log-level",
            ]
        );
        assert!(can_change_live("password"));
        assert!(!can_change_live("cluster-name"));
        assert!(!can_change_live("tls-enabled"));
        assert!(!can_change_live("no-such-key"));
    }

    #[test]
    fn a_change_that_cannot_be_made_live_is_refused_by_name() {
        let running = config("password=old-Secret-1");
        let changed = config("password=new-Secret-2 op-timeout=9 log-level=debug");
        assert_eq!(
            changed.live_changes_from(&running).unwrap(),
            ["password", "op-timeout", "log-level"]
        );
        assert_eq!(running.live_changes_from(&running).unwrap(), [""; 0]);

        let renamed = config("cluster-name=U password=new-Secret-2");
        let err = renamed.live_changes_from(&running).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Config);
        assert!(err.message.contains("'cluster-name'"), "{}", err.message);

        let both = config("cluster-name=U tls-enabled=true password=new-Secret-2");
        let err = both.live_changes_from(&running).unwrap_err();
        assert!(
            err.message
                .contains("'cluster-name', 'tls-enabled' cannot change"),
            "{}",
            err.message
        );
        for text in ["Secret", "password", "'U'"] {
            assert!(!err.message.contains(text), "{}", err.message);
        }
    }

    /// Malformed configs, each with the message fragment it must produce.
    #[test]
    fn every_error_names_what_is_wrong() {
        let cases: &[(&str, &str)] = &[
            ("", "missing required key 'redis-nodes'"),
            ("redis-nodes=h:1", "missing required key 'cluster-name'"),
            ("cluster-name=T", "missing required key 'redis-nodes'"),
            (
                "redis-nodes=h:1 cluster-name=T bogus=1",
                "unknown key 'bogus'",
            ),
            (
                "redis-nodes=h:1 cluster-name=T cluster-name=U",
                "duplicate key 'cluster-name'",
            ),
            (
                "redis-nodes=h:1 cluster-name=T op-timeout",
                "found 'op-timeout' without '='",
            ),
            ("redis-nodes=h:1 =x cluster-name=T", "'=' without a key"),
            (
                "redis-nodes=h:1 cluster-name='T",
                "unterminated quoted value for key 'cluster-name'",
            ),
            (
                "redis-nodes=h:1 cluster-name='T'x",
                "must be followed by a space",
            ),
            ("redis-nodes= cluster-name=T", "redis-nodes is empty"),
            ("redis-nodes=h cluster-name=T", "'h' is not host:port"),
            ("redis-nodes=h:0 cluster-name=T", "'h:0' is not host:port"),
            (
                "redis-nodes=h:99999 cluster-name=T",
                "'h:99999' is not host:port",
            ),
            (
                "redis-nodes=::1:7000 cluster-name=T",
                "'::1:7000' is not host:port",
            ),
            (
                "redis-nodes=h:1 cluster-name=T redis-address-map=",
                "config: redis-address-map: is empty (leave the key out",
            ),
            (
                "redis-nodes=h:1 cluster-name=T redis-address-map=a:1",
                "config: redis-address-map: 'a:1' is not announced:port=reachable:port",
            ),
            (
                "redis-nodes=h:1 cluster-name=T redis-address-map=::1:7000=[::1]:7100",
                "config: redis-address-map: '::1:7000=[::1]:7100' is not",
            ),
            (
                "redis-nodes=h:1 cluster-name=T redis-address-map='a:1=b:1;a:1=c:1'",
                "config: redis-address-map: a:1 is mapped twice",
            ),
            (
                "redis-nodes=h:1 cluster-name=a:b",
                "cluster-name may only hold",
            ),
            (
                "redis-nodes=h:1 cluster-name=T op-timeout=abc",
                "op-timeout 'abc' must be a whole number",
            ),
            (
                "redis-nodes=h:1 cluster-name=T op-timeout=0",
                "op-timeout '0' must be a whole number",
            ),
            (
                "redis-nodes=h:1 cluster-name=T redis-connect-timeout=-5",
                "redis-connect-timeout '-5'",
            ),
            (
                "redis-nodes=h:1 cluster-name=T redis-socket-timeout=1.5",
                "redis-socket-timeout '1.5'",
            ),
            (
                "redis-nodes=h:1 cluster-name=T default-ttl=0",
                "default-ttl '0'",
            ),
            (
                "redis-nodes=h:1 cluster-name=T wait-replicas=x",
                "wait-replicas 'x'",
            ),
            (
                "redis-nodes=h:1 cluster-name=T wait-timeout=0",
                "wait-timeout '0'",
            ),
            (
                "redis-nodes=h:1 cluster-name=T max-value-bytes=99999999999",
                "max-value-bytes",
            ),
            (
                "redis-nodes=h:1 cluster-name=T tls-enabled=maybe",
                "tls-enabled 'maybe' is not a boolean",
            ),
            (
                "redis-nodes=h:1 cluster-name=T log-level=loud",
                "log-level 'loud'",
            ),
            (
                "redis-nodes=h:1 cluster-name=T username=u",
                "'username' needs 'password'",
            ),
            (
                "redis-nodes=h:1 cluster-name=T tls-enabled=true tls-cert=/c",
                "both 'tls-cert' and 'tls-key'",
            ),
            (
                "redis-nodes=h:1 cluster-name=T tls-cacert=/ca",
                "tls-enabled is not true",
            ),
        ];
        for (text, fragment) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Config, "{text}");
            assert!(
                err.message.contains(fragment),
                "{text:?}: got {:?}",
                err.message
            );
        }
    }

    #[test]
    fn the_password_never_appears_in_an_error() {
        let secret = "Sup3r-Secret-Value";
        for text in [
            format!("redis-nodes=h:1 cluster-name=T password={secret} op-timeout=x"),
            format!("redis-nodes=h:1 cluster-name=T password='{secret}"),
            format!("redis-nodes=h:1 password={secret} password={secret}"),
            format!("redis-nodes=h:1 password='{secret}'junk cluster-name=T"),
            format!("password={secret} bogus-key=1"),
            format!("password={secret}"),
        ] {
            let err = parse(&text).unwrap_err();
            assert!(!err.message.contains(secret), "{}", err.message);
        }
        let c = parse(&format!("{BASE} password={secret}")).unwrap();
        assert!(!format!("{c:?}").contains(secret));
    }

    /// A password whose quoting went wrong: no piece of it in any message,
    /// wherever it stands and however it is broken up.
    #[test]
    fn no_piece_of_a_badly_quoted_password_appears_in_an_error() {
        let pieces = ["hunter2", "s3cr3t", "t4il"];
        let passwords = [
            "password=hunter2 s3cr3t-t4il",
            "password=hunter2  \t s3cr3t-t4il",
            "password=\"hunter2 s3cr3t-t4il\"",
            "password=\"hunter2 s3cr3t t4il\"",
            "password='hunter2 s3cr3t-t4il",
            "password=hunter2' s3cr3t-t4il'",
            "password='hunter2 's3cr3t-t4il",
            "password='hunter2' s3cr3t-t4il",
            "password=hunter2\\ s3cr3t-t4il",
            "password='hunter2\\' s3cr3t-t4il",
            "password='hunter2\\",
            "password=hunter2 s3cr3t=t4il",
            "password=hunter2 s3cr3t-t4il=x",
            "password=hunter2 =s3cr3t-t4il",
            "password=hunter2 op-timeout=s3cr3t-t4il",
            "password=hunter2 redis-nodes=s3cr3t-t4il",
            "password=hunter2 redis-nodes=s3cr3t:t4il",
            "password=hunter2 redis-address-map=s3cr3t:t4il",
            "password=hunter2 redis-address-map=s3cr3t:1=t4il:2",
            "password=hunter2 tls-enabled=s3cr3t-t4il",
            "password=hunter2 log-level=s3cr3t-t4il",
            "password=hunter2 cluster-name=s3cr3t!t4il",
            "password=hunter2 wait-replicas=s3cr3t-t4il",
            "password=\"hunter2 op-timeout=s3cr3t-t4il\"",
            "password=hunter2 password=s3cr3t-t4il",
            "cluster-name='T password=hunter2 s3cr3t-t4il'",
            "op-timeout='1 password=hunter2 s3cr3t-t4il'",
            "redis-nodes='h:1 password=hunter2 s3cr3t-t4il'",
        ];
        for password in passwords {
            for text in [
                password.to_string(),
                format!("{password} {BASE}"),
                format!("{BASE} {password}"),
                format!("redis-nodes=h:1 {password} cluster-name=T"),
                format!("{BASE} username=u {password} op-timeout=5"),
            ] {
                let Err(err) = parse(&text) else { continue };
                assert_eq!(err.kind, ErrorKind::Config, "{text}");
                for piece in pieces {
                    assert!(
                        !err.message.contains(piece),
                        "{text:?} -> {:?} shows {piece:?}",
                        err.message
                    );
                }
            }
        }
        // The message still says where to look.
        let err = parse(&format!("{BASE} password=hunter2 s3cr3t-t4il")).unwrap_err();
        assert!(err.message.contains("word 4"), "{}", err.message);
        assert!(err.message.contains("'password'"), "{}", err.message);
        assert!(err.message.contains("single-quoted"), "{}", err.message);
        let err = parse(&format!("{BASE} password=\"hunter2 s3cr3t\"")).unwrap_err();
        assert!(err.message.contains("double quotes"), "{}", err.message);
        // A typo in a key after a value that cannot hold spaces is named.
        let err = parse("redis-nodes=h:1 cluster-name=T clustr-name=U").unwrap_err();
        assert!(
            err.message.contains("unknown key 'clustr-name'"),
            "{}",
            err.message
        );
        // After a password, the word is not shown, nor a key it is near.
        let err = parse(&format!("{BASE} password=hunter2 clustr-name=U")).unwrap_err();
        assert!(!err.message.contains("did you mean"), "{}", err.message);
    }

    /// ORS's persistence section as it is configured for Redis: `type=redis`
    /// reads; another backend, or a near miss of a key, is named.
    #[test]
    fn the_section_ors_hands_over_reads() {
        let c = parse(&format!("type=redis {BASE}")).unwrap();
        assert_eq!(c.backend, Backend::Redis);
        assert_eq!(
            parse(&format!("{BASE} type=Redis")).unwrap().backend,
            Backend::Redis
        );
        let err = parse(&format!("{BASE} type=couchbase")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Config);
        assert!(
            err.message.contains("type 'couchbase'") && err.message.contains("type=redis"),
            "{}",
            err.message
        );
        let err = parse("redis-nodes=h:1 clustr-name=T").unwrap_err();
        assert!(
            err.message
                .contains("unknown key 'clustr-name' (did you mean 'cluster-name'?"),
            "{}",
            err.message
        );
        let err = parse(&format!("{BASE} bogus=1")).unwrap_err();
        assert!(!err.message.contains("did you mean"), "{}", err.message);
    }
}
