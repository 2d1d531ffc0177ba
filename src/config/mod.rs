//! The config string: whitespace-separated `key=value` pairs as in libpq's
//! conninfo, with the option names of ORS's `persistence` section.
//!
//! A value may be single-quoted to hold spaces; inside quotes a backslash
//! escapes the next character (so `\'` and `\\`), as in libpq. Unknown and
//! duplicate keys are errors that name the key. Error messages never repeat
//! the value of `password`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::keys::ClusterName;

mod conninfo;
mod node_addr;

pub use node_addr::NodeAddr;

/// A password: kept out of `Debug` output so that it cannot leak into a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Off = 0,
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

impl LogLevel {
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

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    pub enabled: bool,
    pub cacert: Option<PathBuf>,
    pub cacertdir: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub sni: Option<String>,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub nodes: Vec<NodeAddr>,
    pub cluster_name: ClusterName,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub tls: TlsSettings,
    pub connect_timeout: Duration,
    pub socket_timeout: Duration,
    pub op_timeout: Duration,
    pub default_ttl_secs: u32,
    pub wait_replicas: u32,
    pub wait_timeout: Duration,
    pub max_value_bytes: usize,
    pub log_level: LogLevel,
}

const KEYS: &[&str] = &[
    "redis-nodes",
    "cluster-name",
    "username",
    "password",
    "tls-enabled",
    "tls-cacert",
    "tls-cacertdir",
    "tls-cert",
    "tls-key",
    "tls-sni",
    "redis-connect-timeout",
    "redis-socket-timeout",
    "op-timeout",
    "default-ttl",
    "wait-replicas",
    "wait-timeout",
    "max-value-bytes",
    "log-level",
];

/// Redis refuses bulk strings above 512 MiB (`proto-max-bulk-len`).
const MAX_VALUE_LIMIT: u64 = 512 * 1024 * 1024;
const MAX_MILLIS: u64 = 24 * 3600 * 1000;

/// Keys whose values are secret: a pair right after such a value left
/// unquoted may be a piece of it (quotes forgotten around a space), so no
/// message shows that pair's key or value.
const SECRET_KEYS: &[&str] = &["password"];

impl Config {
    pub fn parse(text: &str) -> Result<Config> {
        let pairs = conninfo::split_pairs(text)?;
        let mut cfg = Builder::default();
        for pair in &pairs {
            cfg.show_values = !pair.may_be_a_piece;
            cfg.set(&pair.key, &pair.value)?;
        }
        cfg.finish()
    }
}

/// Collects values key by key, then checks what only the whole set can tell.
#[derive(Default)]
struct Builder {
    /// Whether messages may show the value being set (see `Pair`).
    show_values: bool,
    nodes: Option<Vec<NodeAddr>>,
    cluster_name: Option<ClusterName>,
    username: Option<String>,
    password: Option<Secret>,
    tls: TlsSettings,
    connect_timeout_ms: Option<u64>,
    socket_timeout_ms: Option<u64>,
    op_timeout_ms: Option<u64>,
    default_ttl: Option<u64>,
    wait_replicas: Option<u64>,
    wait_timeout_ms: Option<u64>,
    max_value_bytes: Option<u64>,
    log_level: Option<LogLevel>,
}

impl Builder {
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "redis-nodes" => self.nodes = Some(self.parse_nodes(value)?),
            "cluster-name" => {
                self.cluster_name = Some(ClusterName::parse(value).map_err(|e| {
                    if self.show_values {
                        Error::config(format!("config: {e}"))
                    } else {
                        Error::config(format!(
                            "config: cluster-name {} may only hold A-Z a-z 0-9 _ . -",
                            self.shown(value)
                        ))
                    }
                })?)
            }
            "username" => {
                if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(Error::config(
                        "config: username must be non-empty, without spaces or control characters",
                    ));
                }
                self.username = Some(value.to_string());
            }
            // Never echo the value: it is a secret.
            "password" => {
                if value.is_empty() {
                    return Err(Error::config(
                        "config: password is empty (leave the key out for no password)",
                    ));
                }
                self.password = Some(Secret(value.to_string()));
            }
            "tls-enabled" => self.tls.enabled = self.parse_bool(key, value)?,
            "tls-cacert" => self.tls.cacert = Some(parse_path(key, value)?),
            "tls-cacertdir" => self.tls.cacertdir = Some(parse_path(key, value)?),
            "tls-cert" => self.tls.cert = Some(parse_path(key, value)?),
            "tls-key" => self.tls.key = Some(parse_path(key, value)?),
            "tls-sni" => {
                if value.is_empty() {
                    return Err(Error::config("config: tls-sni is empty"));
                }
                self.tls.sni = Some(value.to_string())
            }
            "redis-connect-timeout" => {
                self.connect_timeout_ms =
                    Some(self.parse_num(key, value, 1, MAX_MILLIS, "milliseconds")?)
            }
            "redis-socket-timeout" => {
                self.socket_timeout_ms =
                    Some(self.parse_num(key, value, 1, MAX_MILLIS, "milliseconds")?)
            }
            "op-timeout" => {
                self.op_timeout_ms =
                    Some(self.parse_num(key, value, 1, MAX_MILLIS, "milliseconds")?)
            }
            "default-ttl" => {
                self.default_ttl =
                    Some(self.parse_num(key, value, 1, u32::MAX as u64, "seconds")?)
            }
            "wait-replicas" => {
                self.wait_replicas = Some(self.parse_num(key, value, 0, 64, "replicas")?)
            }
            // 0 would make WAIT block forever; a call must respect its deadline.
            "wait-timeout" => {
                self.wait_timeout_ms =
                    Some(self.parse_num(key, value, 1, MAX_MILLIS, "milliseconds")?)
            }
            "max-value-bytes" => {
                self.max_value_bytes =
                    Some(self.parse_num(key, value, 0, MAX_VALUE_LIMIT, "bytes")?)
            }
            "log-level" => {
                self.log_level = Some(LogLevel::parse(value).ok_or_else(|| {
                    Error::config(format!(
                        "config: log-level {} is not one of off, error, warn, info, debug, trace",
                        self.shown(value)
                    ))
                })?)
            }
            _ => return Err(Error::config(format!("config: unknown key '{key}'"))),
        }
        Ok(())
    }

    fn finish(self) -> Result<Config> {
        let nodes = self
            .nodes
            .ok_or_else(|| Error::config("config: missing required key 'redis-nodes'"))?;
        let cluster_name = self
            .cluster_name
            .ok_or_else(|| Error::config("config: missing required key 'cluster-name'"))?;
        if self.username.is_some() && self.password.is_none() {
            return Err(Error::config(
                "config: 'username' needs 'password' (ACL users authenticate with both)",
            ));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(Error::config(
                "config: set both 'tls-cert' and 'tls-key' (client certificate), or neither",
            ));
        }
        let tls_files = self.tls.cacert.is_some()
            || self.tls.cacertdir.is_some()
            || self.tls.cert.is_some()
            || self.tls.sni.is_some();
        if tls_files && !self.tls.enabled {
            return Err(Error::config(
                "config: tls-* options are set but tls-enabled is not true",
            ));
        }
        let op_timeout_ms = self.op_timeout_ms.unwrap_or(5000);
        Ok(Config {
            nodes,
            cluster_name,
            username: self.username,
            password: self.password,
            tls: self.tls,
            connect_timeout: Duration::from_millis(self.connect_timeout_ms.unwrap_or(1000)),
            socket_timeout: Duration::from_millis(self.socket_timeout_ms.unwrap_or(1000)),
            op_timeout: Duration::from_millis(op_timeout_ms),
            default_ttl_secs: self.default_ttl.unwrap_or(2_592_000) as u32,
            wait_replicas: self.wait_replicas.unwrap_or(0) as u32,
            wait_timeout: Duration::from_millis(self.wait_timeout_ms.unwrap_or(100)),
            max_value_bytes: self.max_value_bytes.unwrap_or(64 * 1024 * 1024) as usize,
            log_level: self.log_level.unwrap_or(LogLevel::Warn),
        })
    }
}

impl Builder {
    fn parse_nodes(&self, value: &str) -> Result<Vec<NodeAddr>> {
        let mut nodes: Vec<NodeAddr> = Vec::new();
        for part in value
            .split([';', ','])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let node = NodeAddr::parse(part).map_err(|e| {
                if !self.show_values || value.to_ascii_lowercase().contains("password") {
                    Error::config(format!(
                        "config: redis-nodes: {}: not host:port;host:port",
                        self.shown(value)
                    ))
                } else {
                    Error::config(format!("config: redis-nodes: {e}"))
                }
            })?;
            if !nodes.contains(&node) {
                nodes.push(node);
            }
        }
        if nodes.is_empty() {
            return Err(Error::config(
                "config: redis-nodes is empty (expected host:port;host:port)",
            ));
        }
        Ok(nodes)
    }

    /// A value for an error message, quoted; not shown when it mentions a
    /// password (a misplaced quote can pull `password=...` into another key's
    /// value, and the message must not repeat it), nor when the pair may be a
    /// piece of the value before it.
    fn shown(&self, value: &str) -> String {
        if value.to_ascii_lowercase().contains("password") {
            "(value not shown: it mentions a password; check the quoting)".to_string()
        } else if !self.show_values {
            "(value not shown: it follows an unquoted password and may be part of it)".to_string()
        } else {
            format!("'{value}'")
        }
    }

    fn parse_bool(&self, key: &str, value: &str) -> Result<bool> {
        match value.to_ascii_lowercase().as_str() {
            "true" | "on" | "1" | "yes" => Ok(true),
            "false" | "off" | "0" | "no" => Ok(false),
            _ => Err(Error::config(format!(
                "config: {key} {} is not a boolean (true/false, on/off, 1/0)",
                self.shown(value)
            ))),
        }
    }

    fn parse_num(&self, key: &str, value: &str, min: u64, max: u64, unit: &str) -> Result<u64> {
        match value.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(Error::config(format!(
                "config: {key} {} must be a whole number of {unit} from {min} to {max}",
                self.shown(value)
            ))),
        }
    }
}

fn parse_path(key: &str, value: &str) -> Result<PathBuf> {
    if value.is_empty() {
        return Err(Error::config(format!("config: {key} is an empty path")));
    }
    Ok(PathBuf::from(value))
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
    fn node_lists() {
        let c = parse("redis-nodes=a:1,b:2;[::1]:7000;a:1 cluster-name=T").unwrap();
        let shown: Vec<String> = c.nodes.iter().map(|n| n.to_string()).collect();
        assert_eq!(shown, ["a:1", "b:2", "[::1]:7000"]);
        assert_eq!(c.nodes[2].host, "::1");
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
    }
}
