//! `doctor --config-file`: the rules Genesys documents for ORS's own
//! options, judged from the file without I/O: `type=redis` in
//! `[persistence]`, `sessionid-with-nodeid=true` in `[orchestration]`,
//! `tls-cert` and `tls-key` set together, and a CA source (`tls-cacert` or
//! `tls-cacertdir`) when `tls-enabled=true`. Each rule is one `ors_option`
//! row, so a config that the library reads but ORS would not run with is
//! found before ORS starts.

use ors_redis::operator::Config;

use super::checks::{check, Check};
use crate::output::Status;
use crate::settings::{FileConfig, SESSIONID_WITH_NODEID};

const ID: &str = "ors_option";

/// The rows for `file` (none without a file: the rules are about ORS's
/// application config, which only a file holds).
pub(super) fn evaluate(config: &Config, file: Option<&FileConfig>) -> Vec<Check> {
    let Some(file) = file else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let row = |status, detail: &str| check(ID, None, status, detail.to_string());
    // A parsed config holds type=redis whenever the key is given.
    out.push(if file.keys.iter().any(|k| k == "type") {
        row(Status::Pass, "[persistence] type=redis")
    } else {
        row(
            Status::Fail,
            "[persistence] has no type=redis: ORS does not use this section until it is set",
        )
    });
    out.push(match file.sessionid_with_nodeid.as_deref() {
        Some(v) if v.eq_ignore_ascii_case("true") => {
            row(Status::Pass, "[orchestration] sessionid-with-nodeid=true")
        }
        _ if !file.sectioned => row(
            Status::Warn,
            "[orchestration] not checked: the file is the persistence section alone (give the \
             application's whole config to check sessionid-with-nodeid=true)",
        ),
        found => row(
            Status::Fail,
            &format!(
                "[orchestration] {SESSIONID_WITH_NODEID} is {}: Redis persistence requires \
                 {SESSIONID_WITH_NODEID}=true",
                found.map_or("not set".to_string(), |v| format!("'{v}'"))
            ),
        ),
    });
    let tls = &config.tls;
    // The library refuses one without the other, so a loaded config passes.
    out.push(match (&tls.cert, &tls.key) {
        (Some(_), Some(_)) => row(Status::Pass, "tls-cert and tls-key both set"),
        (None, None) => row(Status::Pass, "tls-cert and tls-key: neither set"),
        _ => row(Status::Fail, "set both tls-cert and tls-key, or neither"),
    });
    if tls.enabled {
        out.push(if tls.cacert.is_some() || tls.cacertdir.is_some() {
            row(Status::Pass, "tls-enabled=true with a CA source")
        } else {
            row(
                Status::Fail,
                "tls-enabled=true without tls-cacert or tls-cacertdir: ORS requires a CA \
                 source (the library alone would fall back to the system roots)",
            )
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::read_file;

    fn rows(text: &str) -> Vec<(Status, String)> {
        let file = read_file(text).unwrap();
        let config = Config::parse(&file.conninfo).unwrap();
        evaluate(&config, Some(&file))
            .into_iter()
            .map(|c| (c.status, c.detail))
            .collect()
    }

    #[test]
    fn the_documented_section_passes_and_each_broken_rule_fails() {
        let good = "[orchestration]\nsessionid-with-nodeid=true\n[persistence]\ntype=redis\n\
                    redis-nodes=h:1\ncluster-name=T\ntls-enabled=true\ntls-cacert=/ca.pem\n";
        let all = rows(good);
        assert_eq!(all.len(), 4, "{all:?}");
        assert!(all.iter().all(|(s, _)| *s == Status::Pass), "{all:?}");

        let bad = "[orchestration]\nsessionid-with-nodeid=false\n[persistence]\n\
                   redis-nodes=h:1\ncluster-name=T\ntls-enabled=true\n";
        let failed: Vec<String> = rows(bad)
            .into_iter()
            .filter(|(s, _)| *s == Status::Fail)
            .map(|(_, d)| d)
            .collect();
        assert_eq!(failed.len(), 3, "{failed:?}");
        assert!(failed[0].contains("no type=redis"));
        assert!(failed[1].contains("sessionid-with-nodeid is 'false'"));
        assert!(failed[2].contains("without tls-cacert or tls-cacertdir"));

        let bare = rows("type=redis\nredis-nodes=h:1\ncluster-name=T\n");
        assert_eq!(bare[1].0, Status::Warn, "{bare:?}");
        assert!(evaluate(
            &Config::parse("redis-nodes=h:1 cluster-name=T").unwrap(),
            None
        )
        .is_empty());
    }
}
