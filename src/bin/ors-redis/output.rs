//! The two output forms: aligned text tables for people, JSON for scripts.

use std::fmt::Write as _;

/// Columns padded to their widest cell, two spaces apart; the last column
/// is not padded (it holds the long details).
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Table {
            rows: vec![headers.iter().map(|h| h.to_string()).collect()],
        }
    }

    /// A table without a header row (key-value lists).
    pub fn plain() -> Self {
        Table { rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 < row.len() {
                    let pad = widths[i] - cell.chars().count();
                    let _ = write!(line, "{cell}{:pad$}  ", "");
                } else {
                    line.push_str(cell);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A JSON value. Objects keep their keys in the order given.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    pub fn obj(fields: Vec<(&str, Json)>) -> Json {
        Json::Obj(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    /// Two-space indented text, ending in a newline.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out.push('\n');
        out
    }

    fn write(&self, out: &mut String, depth: usize) {
        let indent = |out: &mut String, depth: usize| {
            out.push('\n');
            out.extend(std::iter::repeat_n("  ", depth));
        };
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Json::UInt(n) => {
                let _ = write!(out, "{n}");
            }
            // JSON has no NaN or infinity.
            Json::Num(x) if !x.is_finite() => out.push_str("null"),
            Json::Num(x) => {
                // Three decimals are plenty for ms and bytes; no exponent.
                let text = format!("{:.3}", x);
                let text = text.trim_end_matches('0').trim_end_matches('.');
                out.push_str(if text.is_empty() || text == "-" {
                    "0"
                } else {
                    text
                });
            }
            Json::Str(s) => write_string(out, s),
            Json::Arr(items) if items.is_empty() => out.push_str("[]"),
            Json::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    indent(out, depth + 1);
                    item.write(out, depth + 1);
                }
                indent(out, depth);
                out.push(']');
            }
            Json::Obj(fields) if fields.is_empty() => out.push_str("{}"),
            Json::Obj(fields) => {
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    indent(out, depth + 1);
                    write_string(out, key);
                    out.push_str(": ");
                    value.write(out, depth + 1);
                }
                indent(out, depth);
                out.push('}');
            }
        }
    }
}

/// A JSON string literal (RFC 8259, section 7).
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl From<&str> for Json {
    fn from(s: &str) -> Json {
        Json::Str(s.to_string())
    }
}

impl From<String> for Json {
    fn from(s: String) -> Json {
        Json::Str(s)
    }
}

impl From<u64> for Json {
    fn from(n: u64) -> Json {
        Json::UInt(n)
    }
}

impl From<usize> for Json {
    fn from(n: usize) -> Json {
        Json::UInt(n as u64)
    }
}

impl From<i64> for Json {
    fn from(n: i64) -> Json {
        Json::Int(n)
    }
}

impl From<f64> for Json {
    fn from(x: f64) -> Json {
        Json::Num(x)
    }
}

impl From<bool> for Json {
    fn from(b: bool) -> Json {
        Json::Bool(b)
    }
}

impl<T: Into<Json>> From<Option<T>> for Json {
    fn from(v: Option<T>) -> Json {
        v.map_or(Json::Null, Into::into)
    }
}

impl<T: Into<Json>> From<Vec<T>> for Json {
    fn from(items: Vec<T>) -> Json {
        Json::Arr(items.into_iter().map(Into::into).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_leave_the_last_column_free() {
        let mut t = Table::new(&["CHECK", "STATUS", "DETAIL"]);
        t.row(vec!["aof".into(), "PASS".into(), "appendonly yes".into()]);
        t.row(vec!["cluster state".into(), "FAIL".into(), "".into()]);
        assert_eq!(
            t.render(),
            "CHECK          STATUS  DETAIL\n\
             aof            PASS    appendonly yes\n\
             cluster state  FAIL\n"
        );
        assert_eq!(Table::plain().render(), "");
    }

    #[test]
    fn strings_are_escaped() {
        let mut s = String::new();
        write_string(&mut s, "a\"b\\c\nd\u{1}e\u{7f}é\u{2028}");
        assert_eq!(s, r#""a\"b\\c\nd\u0001e\u007fé"#.to_string() + "\u{2028}\"");
    }

    #[test]
    fn values_render_as_json() {
        let v = Json::obj(vec![
            ("name", "T".into()),
            ("count", 3u64.into()),
            ("ms", 0.125.into()),
            ("whole", 2.0.into()),
            ("nan", f64::NAN.into()),
            ("none", Json::from(None::<u64>)),
            ("list", vec![1u64, 2].into()),
            ("empty", Json::Arr(vec![])),
            ("neg", Json::Int(-1)),
            ("ok", true.into()),
        ]);
        assert_eq!(
            v.render(),
            "{\n  \"name\": \"T\",\n  \"count\": 3,\n  \"ms\": 0.125,\n  \"whole\": 2,\n  \
             \"nan\": null,\n  \"none\": null,\n  \"list\": [\n    1,\n    2\n  ],\n  \
             \"empty\": [],\n  \"neg\": -1,\n  \"ok\": true\n}\n"
        );
    }
}
