//! Where the config comes from: `--config 'key=value ...'` (the string ORS
//! hands to the library), `--config-file F` (ORS's `persistence` section as
//! `key=value` lines, and from a whole application config what the
//! operator needs of `[orchestration]`), or the `ORS_REDIS_CONFIG`
//! environment variable.

use std::path::Path;

pub(crate) const ENV_VAR: &str = "ORS_REDIS_CONFIG";

/// The option of ORS's `[orchestration]` section that Redis persistence
/// requires to be `true` (Genesys: the session id carries the node id).
pub(crate) const SESSIONID_WITH_NODEID: &str = "sessionid-with-nodeid";

/// What a `--config-file` holds for the operator command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileConfig {
    /// The `[persistence]` lines as the library's config string.
    pub conninfo: String,
    /// The file has `[section]` headers: a whole application config, whose
    /// `[orchestration]` section can be checked.
    pub sectioned: bool,
    /// `sessionid-with-nodeid` of `[orchestration]`, as written.
    pub sessionid_with_nodeid: Option<String>,
    /// The keys the persistence lines give, as written.
    pub keys: Vec<String>,
}

/// The config of a `--config-file`.
pub(crate) fn from_file(path: &Path) -> Result<FileConfig, String> {
    let shown = path.display();
    let content = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read --config-file {shown}: {e}"))?;
    read_file(&content).map_err(|e| format!("{shown}: {e}"))
}

/// The config string of a file's `key=value` lines (see [`read_file`]).
#[cfg(test)]
pub(crate) fn conninfo_from_file(content: &str) -> Result<String, String> {
    read_file(content).map(|f| f.conninfo)
}

/// Turns `key=value` lines into the library's config string. Blank lines
/// and lines starting with `#` or `;` are skipped. Where the file has
/// `[section]` headers (a whole ORS application config), only the lines of
/// `[persistence]` count, and of `[orchestration]` only
/// `sessionid-with-nodeid`. A value is everything after the first `=`,
/// trimmed, taken literally (it is quoted for the config string here).
pub(crate) fn read_file(content: &str) -> Result<FileConfig, String> {
    let sectioned = content.lines().any(|l| l.trim().starts_with('['));
    let mut in_section = !sectioned;
    let mut in_orchestration = false;
    let mut sessionid_with_nodeid = None;
    let mut pairs = Vec::new();
    let mut keys = Vec::new();
    for (number, line) in content.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_section = name.trim().eq_ignore_ascii_case("persistence");
            in_orchestration = name.trim().eq_ignore_ascii_case("orchestration");
            continue;
        }
        if in_orchestration {
            if let Some((key, value)) = line.split_once('=') {
                if key.trim().eq_ignore_ascii_case(SESSIONID_WITH_NODEID) {
                    sessionid_with_nodeid = Some(value.trim().to_string());
                }
            }
            continue;
        }
        if !in_section {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: expected key=value", number + 1))?;
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("line {}: bad key '{key}'", number + 1));
        }
        keys.push(key.to_string());
        let quoted = value.trim().replace('\\', "\\\\").replace('\'', "\\'");
        pairs.push(format!("{key}='{quoted}'"));
    }
    if pairs.is_empty() {
        return Err(if sectioned {
            "no key=value lines in a [persistence] section".to_string()
        } else {
            "no key=value lines".to_string()
        });
    }
    Ok(FileConfig {
        conninfo: pairs.join(" "),
        sectioned,
        sessionid_with_nodeid,
        keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ors_redis::operator::Config;

    #[test]
    fn a_persistence_section_becomes_a_config_string() {
        let text = "# ORS persistence\n\
                    redis-nodes = 127.0.0.1:7000;127.0.0.1:7001\n\
                    \n\
                    cluster-name=ORS_EU\n\
                    password=it's a #secret\\ \n";
        let conninfo = conninfo_from_file(text).unwrap();
        let config = Config::parse(&conninfo).unwrap();
        assert_eq!(config.nodes.len(), 2);
        assert_eq!(config.cluster_name.as_str(), "ORS_EU");
        assert_eq!(config.password.unwrap().expose(), "it's a #secret\\");
    }

    #[test]
    fn only_the_persistence_section_of_a_whole_file() {
        let text = "[orchestration]\nfoo=bar\n[persistence]\nredis-nodes=h:1\ncluster-name=T\n[log]\nall=stdout\n";
        let config = Config::parse(&conninfo_from_file(text).unwrap()).unwrap();
        assert_eq!(config.cluster_name.as_str(), "T");
        assert!(conninfo_from_file("[log]\nall=stdout\n")
            .unwrap_err()
            .contains("[persistence]"));
    }

    /// The section as Genesys documents it for Redis, in a whole
    /// application config: `type=redis` reads, and `[orchestration]`'s
    /// `sessionid-with-nodeid` is kept for doctor.
    #[test]
    fn the_documented_redis_section_reads() {
        let text = "[orchestration]\nsessionid-with-nodeid = true\nother=1\n\
                    [persistence]\ntype=redis\nredis-nodes=h:1\ncluster-name=T\n";
        let file = read_file(text).unwrap();
        assert!(file.sectioned);
        assert_eq!(file.sessionid_with_nodeid.as_deref(), Some("true"));
        let config = Config::parse(&file.conninfo).unwrap();
        assert_eq!(config.cluster_name.as_str(), "T");
        let bare = read_file("redis-nodes=h:1\ncluster-name=T\n").unwrap();
        assert!(!bare.sectioned && bare.sessionid_with_nodeid.is_none());
    }

    #[test]
    fn mistakes_are_named() {
        assert!(conninfo_from_file("redis-nodes\n")
            .unwrap_err()
            .contains("line 1"));
        assert!(conninfo_from_file("a b=c\n")
            .unwrap_err()
            .contains("bad key"));
        assert!(conninfo_from_file("# only comments\n").is_err());
        assert!(from_file(Path::new("/nonexistent/ors.cfg"))
            .unwrap_err()
            .contains("cannot read"));
    }
}
