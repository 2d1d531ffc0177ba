//! Where the config comes from: `--config 'key=value ...'` (the string ORS
//! hands to the library), `--config-file F` (ORS's `persistence` section as
//! `key=value` lines), or the `ORS_REDIS_CONFIG` environment variable.

use std::path::Path;

pub const ENV_VAR: &str = "ORS_REDIS_CONFIG";

/// The config string of a `--config-file`.
pub fn from_file(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let content = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read --config-file {shown}: {e}"))?;
    conninfo_from_file(&content).map_err(|e| format!("{shown}: {e}"))
}

/// Turns `key=value` lines into the library's config string. Blank lines
/// and lines starting with `#` or `;` are skipped. Where the file has
/// `[section]` headers (a whole ORS application config), only the lines of
/// `[persistence]` count. A value is everything after the first `=`,
/// trimmed, taken literally (it is quoted for the config string here).
pub fn conninfo_from_file(content: &str) -> Result<String, String> {
    let sectioned = content.lines().any(|l| l.trim().starts_with('['));
    let mut in_section = !sectioned;
    let mut pairs = Vec::new();
    for (number, line) in content.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_section = name.trim().eq_ignore_ascii_case("persistence");
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
    Ok(pairs.join(" "))
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
