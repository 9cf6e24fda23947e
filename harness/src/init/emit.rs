//! Writing YAML that people edit: block style, strings quoted only where YAML
//! 1.1 (as kubectl reads it) would read them as something else.
//!
//! The scenario file is written line by line with comments, which no YAML
//! serializer does; the manifests split out of a dump use [`value`]. Both are
//! checked by reading them back (see the tests and `init`'s own read-back).

use std::fmt::Write as _;

/// Words YAML 1.1 resolves to booleans or null; written plain they would
/// change type (`verifyClient: on` is `true`).
const SPECIAL: &[&str] = &[
    "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", "",
];

/// A string as a YAML scalar: plain when it reads back as the same string,
/// otherwise double-quoted (JSON's escaping is valid YAML).
pub(crate) fn scalar(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let plain_safe = !SPECIAL.contains(&lower.as_str())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./@".contains(c))
        && text
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/')
        && !looks_numeric(text);
    if plain_safe {
        text.to_string()
    } else {
        serde_json::Value::String(text.to_string()).to_string()
    }
}

/// YAML 1.1 reads `1_000`, `0x1f`, `1e3`, `1.5`, `12:30` as numbers.
fn looks_numeric(text: &str) -> bool {
    let t = text.trim_start_matches(['-', '+', '.']);
    t.starts_with(|c: char| c.is_ascii_digit())
        || t.eq_ignore_ascii_case("inf")
        || t.eq_ignore_ascii_case("nan")
}

/// A JSON value in block style at `indent` spaces; a mapping or sequence
/// starts on its own lines.
pub(crate) fn value(out: &mut String, v: &serde_json::Value, indent: usize) {
    use serde_json::Value as J;
    let pad = " ".repeat(indent);
    match v {
        J::Object(map) if !map.is_empty() => {
            for (key, item) in map {
                let _ = write!(out, "{pad}{}:", scalar(key));
                entry(out, item, indent);
            }
        }
        J::Array(items) if !items.is_empty() => {
            for item in items {
                let _ = write!(out, "{pad}-");
                match item {
                    J::Object(map) if !map.is_empty() => {
                        // The first key on the dash's line, the others below it.
                        let mut first = true;
                        for (key, inner) in map {
                            if first {
                                let _ = write!(out, " {}:", scalar(key));
                                first = false;
                            } else {
                                let _ = write!(out, "{pad}  {}:", scalar(key));
                            }
                            entry(out, inner, indent + 2);
                        }
                    }
                    other => entry(out, other, indent),
                }
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{}", inline(other));
        }
    }
}

/// What follows `key:` (or `-`): an inline scalar, or a nested block.
fn entry(out: &mut String, v: &serde_json::Value, indent: usize) {
    use serde_json::Value as J;
    match v {
        J::Object(map) if !map.is_empty() => {
            out.push('\n');
            value(out, v, indent + 2);
        }
        J::Array(items) if !items.is_empty() => {
            out.push('\n');
            value(out, v, indent + 2);
        }
        J::String(s) if s.contains('\n') && literal_safe(s) => {
            let chomp = if s.ends_with("\n\n") {
                "+"
            } else if s.ends_with('\n') {
                ""
            } else {
                "-"
            };
            let _ = writeln!(out, " |{chomp}");
            let pad = " ".repeat(indent + 2);
            for line in s.strip_suffix('\n').unwrap_or(s).split('\n') {
                if line.is_empty() {
                    out.push('\n');
                } else {
                    let _ = writeln!(out, "{pad}{line}");
                }
            }
        }
        other => {
            let _ = writeln!(out, " {}", inline(other));
        }
    }
}

/// A literal block keeps the text exactly when no line starts with a space
/// (the first would set the indentation), none has trailing blanks or tabs
/// that editors strip, and there is no carriage return.
fn literal_safe(s: &str) -> bool {
    !s.contains('\r')
        && !s.starts_with([' ', '\n'])
        && s.lines()
            .all(|l| !l.ends_with([' ', '\t']) && !l.starts_with('\t'))
}

/// A scalar, or an empty collection, on one line.
pub(crate) fn inline(v: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match v {
        J::String(s) => scalar(s),
        J::Object(_) => "{}".into(),
        J::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: &serde_json::Value) -> serde_json::Value {
        let mut text = String::new();
        value(&mut text, v, 0);
        let docs = crate::yaml::parse_documents(&text, std::path::Path::new("x.yaml"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        docs[0].to_json()
    }

    #[test]
    fn values_read_back_as_written() {
        let v = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "aigw-config", "labels": {"on": "off", "n": "1.5"}},
            "data": {
                "aigw.yaml": "version: 1\nserver:\n  address: :4141\n\nroutes: []\n",
                "no-newline": "a\nb",
                "indented": "  first line indented\nsecond\n",
                "colon": "a: b",
                "hash": "x #y",
                "empty": "",
                "star": "*.example.com",
            },
            "list": [{"a": 1, "b": [true, null, 2.5]}, "plain", [], {}],
            "port": 80,
        });
        assert_eq!(round_trip(&v), v);
    }

    #[test]
    fn yaml_1_1_words_are_quoted() {
        for word in [
            "on", "Off", "yes", "null", "~", "012", "1e3", "0x1f", ":4141", "", "*x",
        ] {
            assert!(scalar(word).starts_with('"'), "{word}");
        }
        assert_eq!(scalar("open-webui.example.com"), "open-webui.example.com");
        assert_eq!(scalar("ns/name"), "ns/name");
    }
}
