//! Every check `doctor` makes, in the report's order, and the thresholds it
//! states: the one declaration that the report's rows (each row's id), the
//! table of docs/operators.md and its JSON reference follow. The thresholds
//! themselves are ORS's recommendations (`recommend`, which init's warnings
//! use too); the tests below hold the docs to both.

/// The ids of the rows, in the order the report shows them.
pub(super) const CHECKS: &[&str] = &[
    "ors_option",
    "seed",
    "node",
    "address_map",
    "failover",
    "permission",
    "restore",
    "cluster_state",
    "open_slots",
    "slot_map",
    "masters",
    "replicas",
    "aof",
    "appendfsync",
    "maxmemory_policy",
    "memory",
    "version",
    "auth",
    "tls",
    "latency",
    "compressed_values",
];

#[cfg(test)]
mod tests {
    use super::*;
    use ors_redis::operator::recommend;

    /// What the docs say of a check's threshold, from the constants the check
    /// applies: (id, the words its row of the table holds).
    fn thresholds() -> Vec<(&'static str, String)> {
        vec![
            (
                "masters",
                format!("at least {} masters", recommend::MIN_MASTERS),
            ),
            (
                "memory",
                format!(
                    "{}% warns, {}% fails",
                    recommend::MEMORY_WARN_PERCENT,
                    recommend::MEMORY_FAIL_PERCENT
                ),
            ),
            (
                "latency",
                format!("{} ms warns", recommend::SLOW_ROUND_TRIP.as_millis()),
            ),
        ]
    }

    const OPERATORS_MD: &str = include_str!("../../../../../docs/operators.md");

    /// The rows of the doctor's table in docs/operators.md: each row's ids
    /// (a row may name several) and its text.
    fn doc_rows() -> Vec<(Vec<String>, String)> {
        let mut lines = OPERATORS_MD.lines().skip_while(|l| *l != "| id | what |");
        lines.next();
        lines.next(); // |---|---|
        lines
            .take_while(|l| l.starts_with("| `"))
            .map(|l| {
                let mut cells = l.trim_matches('|').splitn(2, " | ");
                let ids = cells
                    .next()
                    .unwrap_or("")
                    .split(", ")
                    .map(|id| id.trim().trim_matches('`').to_string())
                    .collect();
                (ids, cells.next().unwrap_or("").to_string())
            })
            .collect()
    }

    #[test]
    fn the_docs_table_lists_every_check_in_the_reports_order() {
        let ids: Vec<String> = doc_rows().into_iter().flat_map(|(ids, _)| ids).collect();
        assert_eq!(ids, CHECKS, "docs/operators.md's doctor table");
    }

    #[test]
    fn the_json_reference_lists_every_check() {
        let line = OPERATORS_MD
            .lines()
            .find(|l| l.starts_with("| `result.checks[].id` |"))
            .expect("the JSON reference has result.checks[].id");
        let listed: Vec<&str> = line
            .trim_end_matches(" |")
            .split(" | ")
            .nth(2)
            .unwrap_or("")
            .split(", ")
            .map(|id| id.trim().trim_matches('`'))
            .collect();
        assert_eq!(listed, CHECKS, "{line}");
    }

    #[test]
    fn the_docs_state_the_thresholds_the_checks_apply() {
        let rows = doc_rows();
        for (id, words) in thresholds() {
            let (_, text) = rows
                .iter()
                .find(|(ids, _)| ids.iter().any(|i| i == id))
                .unwrap_or_else(|| panic!("no row for {id}"));
            assert!(
                text.contains(&words),
                "the row of {id} says {words:?}: {text}"
            );
        }
    }
}
