//! The config keys, each declared once in [`KEYS`]: its name, its default,
//! how its value is read into a [`Config`] field, and what a running
//! library does when the value changes ([`OnChange`]). The parser, the
//! unknown-key message, the defaults the README shows, [`can_change_live`]
//! and what a reconfigure checks, reloads and renews all come from that
//! table.

use std::path::PathBuf;
use std::time::Duration;

use super::{AddressMap, Backend, Config, LogLevel, NodeAddr, Secret};
use crate::envelope::Algorithm;
use crate::error::{Error, Result};
use crate::keys::ClusterName;

/// Redis refuses bulk strings above 512 MiB (`proto-max-bulk-len`).
const MAX_VALUE_LIMIT: u64 = 512 * 1024 * 1024;
const MAX_MILLIS: u64 = 24 * 3600 * 1000;

/// One config key.
pub struct KeySpec {
    /// The key as the config string writes it (`op-timeout`).
    pub name: &'static str,
    /// Its value when the config string leaves it out.
    pub default: KeyDefault,
    /// What a running library does when the value changes
    /// (`ors_redis_reconfigure`); [`OnChange::Restart`] where it cannot.
    pub on_change: OnChange,
    /// The value is secret: no message shows it, nor the word after it when
    /// it is left unquoted (that word may be the rest of it).
    pub secret: bool,
    field: Field,
}

/// What a change of a key's value means to a running library: the one
/// declaration that `Config::live_changes_from` (may it change live?),
/// `Client::reconfigured` (check the nodes first?), `ConnectParams::
/// reconfigured` (read the TLS files again?) and `lifecycle::reconfigure`
/// (new seeds?) ask, through [`changes_ask`]. What each open connection
/// then needs (`Renewal`) is decided from the params it was opened with,
/// since a thread's connection may be several reconfigures behind; a test
/// there holds it to this declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnChange {
    /// It cannot change live: a restart (`ors_redis_shutdown`, then
    /// `ors_redis_init`).
    Restart,
    /// Nothing more: the value is read where it is used.
    Nothing,
    /// The open connections are replaced: what the key sets is fixed when
    /// a connection opens.
    Reopen,
    /// Every node is asked with the new credentials first; then each
    /// connection logs in again (or reopens: no `AUTH` undoes a login).
    Relogin,
    /// The TLS files are read again and every node is asked with them
    /// first; then the connections are replaced.
    NewTls,
    /// The new seeds are asked first; then they are the seeds the slot map
    /// is re-read from.
    NewSeeds,
}

impl OnChange {
    /// A running library can take the change.
    pub fn live(self) -> bool {
        self != OnChange::Restart
    }

    /// The nodes are asked with the new settings before they apply.
    pub fn checks_nodes(self) -> bool {
        matches!(
            self,
            OnChange::Relogin | OnChange::NewTls | OnChange::NewSeeds
        )
    }

    /// The TLS files are read again.
    pub fn reads_tls_files(self) -> bool {
        self == OnChange::NewTls
    }

    /// The topology's seeds are replaced.
    pub fn sets_seeds(self) -> bool {
        self == OnChange::NewSeeds
    }
}

/// What a key's value is when the config string leaves the key out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDefault {
    /// The key must be given.
    Required,
    /// This value, read as if the config string held it.
    Value(&'static str),
    /// The field stays empty; the text says what that means, as the
    /// README's configuration table says it.
    Unset(&'static str),
}

impl KeyDefault {
    /// The default as the README's configuration table shows it (without
    /// its backticks).
    pub fn shown(self) -> &'static str {
        match self {
            KeyDefault::Required => "(required)",
            KeyDefault::Value(text) | KeyDefault::Unset(text) => text,
        }
    }
}

/// The `Config` field a key fills: how a value is read into it, and whether
/// two configs hold the same value there.
struct Field {
    read: fn(&mut Config, &Value<'_>) -> Result<()>,
    same: fn(&Config, &Config) -> bool,
}

/// The [`Field`] of `config.<path>`, read by `read` (a `fn(&Value) ->
/// Result<T>`): the field is named once, so reading and comparing cannot
/// disagree on it.
macro_rules! field {
    ($($path:ident).+ = $read:expr) => {
        Field {
            read: |config: &mut Config, value: &Value<'_>| {
                config.$($path).+ = ($read)(value)?;
                Ok(())
            },
            same: |a: &Config, b: &Config| a.$($path).+ == b.$($path).+,
        }
    };
}

/// Every key, in the order that messages and the README list them.
///
/// `cluster-name` cannot change live: it is part of every session key, so a
/// new name would lose every stored session. Nor can `tls-enabled`: it
/// changes how every node is reached (with TLS the nodes announce their TLS
/// ports, so the slot map itself changes), and turning it off would send the
/// password in clear; either takes a restart (`ors_redis_shutdown`, then
/// `ors_redis_init`). `tls-sni` can, like the TLS files: it is read at each
/// handshake. `redis-address-map` cannot: an open connection keeps the
/// route it was dialled on, so a new map would hold for some connections
/// and not others.
pub static KEYS: &[KeySpec] = &[
    // ORS's section names its backend; only Redis is this library's.
    KeySpec {
        name: "type",
        default: KeyDefault::Value("redis"),
        on_change: OnChange::Nothing,
        secret: false,
        field: field!(backend = Value::backend),
    },
    KeySpec {
        name: "redis-nodes",
        default: KeyDefault::Required,
        on_change: OnChange::NewSeeds,
        secret: false,
        field: field!(nodes = Value::nodes),
    },
    KeySpec {
        name: "redis-address-map",
        default: KeyDefault::Unset("none"),
        on_change: OnChange::Restart,
        secret: false,
        field: field!(address_map = Value::address_map),
    },
    KeySpec {
        name: "cluster-name",
        default: KeyDefault::Required,
        on_change: OnChange::Restart,
        secret: false,
        field: field!(cluster_name = Value::cluster_name),
    },
    KeySpec {
        name: "username",
        default: KeyDefault::Unset("none"),
        on_change: OnChange::Relogin,
        secret: false,
        field: field!(username = Value::username),
    },
    KeySpec {
        name: "password",
        default: KeyDefault::Unset("none"),
        on_change: OnChange::Relogin,
        secret: true,
        field: field!(password = Value::password),
    },
    KeySpec {
        name: "tls-enabled",
        default: KeyDefault::Value("false"),
        on_change: OnChange::Restart,
        secret: false,
        field: field!(tls.enabled = Value::boolean),
    },
    KeySpec {
        name: "tls-cacert",
        default: KeyDefault::Unset("system roots"),
        on_change: OnChange::NewTls,
        secret: false,
        field: field!(tls.cacert = Value::path),
    },
    KeySpec {
        name: "tls-cacertdir",
        default: KeyDefault::Unset("none"),
        on_change: OnChange::NewTls,
        secret: false,
        field: field!(tls.cacertdir = Value::path),
    },
    KeySpec {
        name: "tls-cert",
        default: KeyDefault::Unset("none"),
        on_change: OnChange::NewTls,
        secret: false,
        field: field!(tls.cert = Value::path),
    },
    KeySpec {
        name: "tls-key",
        default: KeyDefault::Unset("none"),
        on_change: OnChange::NewTls,
        secret: false,
        field: field!(tls.key = Value::path),
    },
    KeySpec {
        name: "tls-sni",
        default: KeyDefault::Unset("the node's host"),
        on_change: OnChange::NewTls,
        secret: false,
        field: field!(tls.sni = Value::server_name),
    },
    KeySpec {
        name: "redis-connect-timeout",
        default: KeyDefault::Value("1000"),
        on_change: OnChange::Nothing,
        secret: false,
        field: field!(connect_timeout = Value::millis),
    },
    KeySpec {
        name: "redis-socket-timeout",
        default: KeyDefault::Value("1000"),
        on_change: OnChange::Nothing,
        secret: false,
        field: field!(socket_timeout = Value::millis),
    },
    KeySpec {
        name: "op-timeout",
        default: KeyDefault::Value("5000"),
        on_change: OnChange::Nothing,
        secret: false,
        field: field!(op_timeout = Value::millis),
    },
    KeySpec {
        name: "node-fail-fast",
        default: KeyDefault::Value("true"),
        on_change: OnChange::Nothing,
        secret: false,
        field: field!(node_fail_fast = Value::boolean),
    },
    // How many node failures in a row (no reply within redis-socket-timeout,
    // a connect refused or timed out) mark a node unavailable.
    KeySpec {
        name: "node-fail-count",
        default: KeyDefault::Value("1"),
        on_change: OnChange::Nothing,
        secret: false,
        field: field!(node_fail_count = |v: &Value<'_>| v.number(1, 1000, "failures")),
    },
    KeySpec {
        name: "node-probe-interval",
        default: KeyDefault::Value("200"),
        on_change: OnChange::Nothing,
        secret: false,
        field: field!(node_probe_interval = Value::millis),
    },
    KeySpec {
        name: "default-ttl",
        default: KeyDefault::Value("2592000"),
        on_change: OnChange::Nothing,
        secret: false,
        field: field!(default_ttl_secs = |v: &Value<'_>| v.number(1, u32::MAX.into(), "seconds")),
    },
    KeySpec {
        name: "wait-replicas",
        default: KeyDefault::Value("0"),
        on_change: OnChange::Nothing,
        secret: false,
        field: field!(wait_replicas = |v: &Value<'_>| v.number(0, 64, "replicas")),
    },
    // At least 1: WAIT with 0 blocks forever, and a call must keep its deadline.
    KeySpec {
        name: "wait-timeout",
        default: KeyDefault::Value("100"),
        on_change: OnChange::Nothing,
        secret: false,
        field: field!(wait_timeout = Value::millis),
    },
    KeySpec {
        name: "max-value-bytes",
        default: KeyDefault::Value("67108864"),
        on_change: OnChange::Reopen,
        secret: false,
        field: field!(max_value_bytes = |v: &Value<'_>| v.number(0, MAX_VALUE_LIMIT, "bytes")),
    },
    // The writer's side only: every version from this one on reads both
    // plain and compressed values, whatever these say (docs/compression.md).
    KeySpec {
        name: "compression",
        default: KeyDefault::Value("off"),
        on_change: OnChange::Nothing,
        secret: false,
        field: field!(compression.algorithm = Value::algorithm),
    },
    KeySpec {
        name: "compression-level",
        default: KeyDefault::Value("3"),
        on_change: OnChange::Nothing,
        secret: false,
        field: field!(compression.level = |v: &Value<'_>| v.number(1, 19, "zstd levels")),
    },
    KeySpec {
        name: "compression-min-bytes",
        default: KeyDefault::Value("256"),
        on_change: OnChange::Nothing,
        secret: false,
        field: field!(
            compression.min_bytes = |v: &Value<'_>| v.number(0, MAX_VALUE_LIMIT, "bytes")
        ),
    },
    KeySpec {
        name: "compression-dictionary",
        default: KeyDefault::Unset("none"),
        on_change: OnChange::Nothing,
        secret: false,
        field: field!(compression.dictionary = Value::dictionary_id),
    },
    KeySpec {
        name: "log-level",
        default: KeyDefault::Value("warn"),
        on_change: OnChange::Nothing,
        secret: false,
        field: field!(log_level = Value::log_level),
    },
];

/// The key named `name`, if there is one.
pub fn key(name: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.name == name)
}

/// The key a mistyped `word` most likely meant: the one nearest to it, when
/// at most two edits (a letter added, removed or changed) away, so that a
/// near miss (`clustr-name`) is named and a stranger word is not. The one
/// "did you mean" rule of the config, for the library and the operator
/// command alike.
pub fn suggest(word: &str) -> Option<&'static str> {
    let word = word.to_ascii_lowercase();
    KEYS.iter()
        .map(|k| (edit_distance(&word, k.name), k.name))
        .filter(|&(d, _)| d <= 2)
        .min_by_key(|&(d, _)| d)
        .map(|(_, name)| name)
}

/// Levenshtein distance between two short words (bytes).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Whether a running library can take a new value of `name`; false for a
/// key that does not exist.
pub fn can_change_live(name: &str) -> bool {
    key(name).is_some_and(|k| k.on_change.live())
}

/// Whether a change of any of the keys `changed` asks for `what` (e.g.
/// [`OnChange::checks_nodes`]); an unknown name asks for nothing.
pub fn changes_ask(changed: &[&str], what: impl Fn(OnChange) -> bool) -> bool {
    changed
        .iter()
        .filter_map(|name| key(name))
        .any(|k| what(k.on_change))
}

impl KeySpec {
    /// Reads `text` into this key's field of `config`; `show` says whether a
    /// message may show it (see `conninfo::Pair`).
    pub(super) fn apply(&self, config: &mut Config, text: &str, show: bool) -> Result<()> {
        let value = Value {
            key: self.name,
            text,
            show,
        };
        (self.field.read)(config, &value)
    }

    /// Whether `a` and `b` hold the same value for this key.
    pub(super) fn same(&self, a: &Config, b: &Config) -> bool {
        (self.field.same)(a, b)
    }
}

/// A key's value as the config string gives it, with the readers that turn
/// it into a field's type. Their messages name the key and show the value
/// only through [`Value::shown`].
struct Value<'a> {
    key: &'static str,
    text: &'a str,
    /// Whether messages may show the value (see `conninfo::Pair`).
    show: bool,
}

impl Value<'_> {
    /// The value for an error message, quoted; not shown when it mentions a
    /// password (a misplaced quote can pull `password=...` into another
    /// key's value, and the message must not repeat it), nor when the pair
    /// may be a piece of the value before it.
    fn shown(&self) -> String {
        if self.text.to_ascii_lowercase().contains("password") {
            "(value not shown: it mentions a password; check the quoting)".to_string()
        } else if !self.show {
            "(value not shown: it follows an unquoted password and may be part of it)".to_string()
        } else {
            format!("'{}'", self.text)
        }
    }

    /// `type`: ORS's name of the persistence backend, `redis` here.
    fn backend(&self) -> Result<Backend> {
        if self.text.eq_ignore_ascii_case("redis") {
            Ok(Backend::Redis)
        } else {
            Err(Error::config(format!(
                "config: type {} is not a backend of this library (type=redis)",
                self.shown()
            )))
        }
    }

    fn nodes(&self) -> Result<Vec<NodeAddr>> {
        let value = self.text;
        let mut nodes: Vec<NodeAddr> = Vec::new();
        for part in value
            .split([';', ','])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let node = NodeAddr::parse(part).map_err(|e| {
                if !self.show || value.to_ascii_lowercase().contains("password") {
                    Error::config(format!(
                        "config: redis-nodes: {}: not host:port;host:port",
                        self.shown()
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

    fn address_map(&self) -> Result<AddressMap> {
        AddressMap::parse(self.text).map_err(|e| {
            if !self.show || self.text.to_ascii_lowercase().contains("password") {
                Error::config(format!(
                    "config: {} {}: not announced:port=reachable:port;...",
                    self.key,
                    self.shown()
                ))
            } else {
                Error::config(format!("config: {}: {e}", self.key))
            }
        })
    }

    fn cluster_name(&self) -> Result<ClusterName> {
        ClusterName::parse(self.text).map_err(|e| {
            if self.show {
                Error::config(format!("config: {e}"))
            } else {
                Error::config(format!(
                    "config: cluster-name {} may only hold A-Z a-z 0-9 _ . -",
                    self.shown()
                ))
            }
        })
    }

    fn username(&self) -> Result<Option<String>> {
        let value = self.text;
        if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::config(
                "config: username must be non-empty, without spaces or control characters",
            ));
        }
        Ok(Some(value.to_string()))
    }

    /// Never shows the value: it is a secret.
    fn password(&self) -> Result<Option<Secret>> {
        if self.text.is_empty() {
            return Err(Error::config(
                "config: password is empty (leave the key out for no password)",
            ));
        }
        Ok(Some(Secret(self.text.to_string())))
    }

    fn server_name(&self) -> Result<Option<String>> {
        if self.text.is_empty() {
            return Err(Error::config(format!("config: {} is empty", self.key)));
        }
        Ok(Some(self.text.to_string()))
    }

    fn path(&self) -> Result<Option<PathBuf>> {
        if self.text.is_empty() {
            return Err(Error::config(format!(
                "config: {} is an empty path",
                self.key
            )));
        }
        Ok(Some(PathBuf::from(self.text)))
    }

    fn boolean(&self) -> Result<bool> {
        match self.text.to_ascii_lowercase().as_str() {
            "true" | "on" | "1" | "yes" => Ok(true),
            "false" | "off" | "0" | "no" => Ok(false),
            _ => Err(Error::config(format!(
                "config: {} {} is not a boolean (true/false, on/off, 1/0)",
                self.key,
                self.shown()
            ))),
        }
    }

    /// A whole number from `min` to `max` (which `T` holds).
    fn number<T: TryFrom<u64>>(&self, min: u64, max: u64, unit: &str) -> Result<T> {
        match self.text.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => T::try_from(n).ok(),
            _ => None,
        }
        .ok_or_else(|| {
            Error::config(format!(
                "config: {} {} must be a whole number of {unit} from {min} to {max}",
                self.key,
                self.shown()
            ))
        })
    }

    fn millis(&self) -> Result<Duration> {
        self.number(1, MAX_MILLIS, "milliseconds")
            .map(Duration::from_millis)
    }

    fn algorithm(&self) -> Result<Algorithm> {
        Algorithm::parse(self.text).ok_or_else(|| {
            Error::config(format!(
                "config: compression {} is not one of off, lz4, zstd",
                self.shown()
            ))
        })
    }

    /// A dictionary id (8 hex digits, as `ors-redis dictionary train`
    /// prints it), or `none`/`off`.
    fn dictionary_id(&self) -> Result<Option<u32>> {
        if matches!(self.text.to_ascii_lowercase().as_str(), "" | "none" | "off") {
            return Ok(None);
        }
        crate::dictionary::parse_id(self.text)
            .map(Some)
            .ok_or_else(|| {
                Error::config(format!(
                    "config: compression-dictionary {} is not a dictionary id (8 hex digits, \
                 as `ors-redis dictionary train` prints it) nor none",
                    self.shown()
                ))
            })
    }

    fn log_level(&self) -> Result<LogLevel> {
        LogLevel::parse(self.text).ok_or_else(|| {
            Error::config(format!(
                "config: log-level {} is not one of off, error, warn, info, debug, trace",
                self.shown()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of the README's configuration table, as (key, default)
    /// without backticks; a row of several keys gives one pair per key.
    fn readme_table() -> Vec<(String, String)> {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("\n## Configuration\n")
            .nth(1)
            .expect("README has a '## Configuration' section");
        let section = section.split("\n## ").next().unwrap_or_default();
        let mut rows = Vec::new();
        for line in section.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let default = cells[2].replace('`', "");
            for key in cells[1].split(',') {
                rows.push((key.trim().replace('`', ""), default.clone()));
            }
        }
        rows
    }

    #[test]
    fn the_readme_lists_the_declared_keys_and_defaults() {
        let declared: Vec<(String, String)> = KEYS
            .iter()
            .map(|k| (k.name.to_string(), k.default.shown().to_string()))
            .collect();
        assert_eq!(readme_table(), declared);
    }

    #[test]
    fn a_near_miss_is_named_and_a_stranger_word_is_not() {
        assert_eq!(suggest("clustr-name"), Some("cluster-name"));
        assert_eq!(suggest("Cluster-Nmae"), Some("cluster-name"));
        assert_eq!(suggest("op-timout"), Some("op-timeout"));
        assert_eq!(suggest("tpye"), Some("type"));
        assert_eq!(suggest("sessionid-with-nodeid"), None);
        assert_eq!(suggest("bogus"), None);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn every_declared_default_reads() {
        let mut config = Config::blank().unwrap();
        for key in KEYS {
            if let KeyDefault::Value(default) = key.default {
                key.apply(&mut config, default, true).unwrap();
            }
        }
    }
}
