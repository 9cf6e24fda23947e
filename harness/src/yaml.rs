//! YAML as kubectl reads it.
//!
//! kubectl decodes manifests with a YAML 1.1 resolver: a plain `on` is the boolean
//! `true`, `012` is octal, mapping keys become strings. The tutorials rely on that
//! (`verifyServer: on`), so every YAML file the harness reads goes through here.
//! Each node keeps its line, so an error can point at `file:line`.

use std::fmt;
use std::path::{Path, PathBuf};

use granit_parser::{Event, Parser, ScalarStyle, Span};
use serde::de::DeserializeOwned;

/// Where something came from: a file and, when known, a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: Option<usize>,
}

impl Origin {
    pub(crate) fn file(file: &Path) -> Self {
        Origin {
            file: file.to_path_buf(),
            line: None,
        }
    }
    pub(crate) fn at(file: &Path, line: usize) -> Self {
        Origin {
            file: file.to_path_buf(),
            line: Some(line),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}", self.file.display(), line),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

/// A YAML problem, located.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct YamlError {
    pub origin: Origin,
    pub message: String,
}

/// One YAML node with the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub line: usize,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in source order; keys are strings, as kubectl makes them.
    Map(Vec<(String, Node)>),
}

/// One document of a (possibly multi-document) file.
#[derive(Debug, Clone)]
pub struct Document {
    pub file: PathBuf,
    /// 1-based position of the document in its file, counting non-empty documents.
    pub index: usize,
    pub root: Node,
}

impl Document {
    pub(crate) fn origin(&self) -> Origin {
        Origin::at(&self.file, self.root.line)
    }

    /// The origin of the node at `path` (as `serde_path_to_error` prints it, e.g.
    /// `spec.routes[0].action`), or of the deepest node on the way there.
    pub(crate) fn origin_of(&self, path: &str) -> Origin {
        Origin::at(&self.file, self.root.line_of(path))
    }

    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        self.root.to_json()
    }

    /// Deserialise into a typed value; errors carry the line of the offending node.
    pub(crate) fn parse<T: DeserializeOwned>(&self) -> Result<T, YamlError> {
        self.root.parse(&self.file)
    }
}

impl Node {
    pub(crate) fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// Deserialise into `T`, naming `file` and the line of the failing node on error.
    pub(crate) fn parse<T: DeserializeOwned>(&self, file: &Path) -> Result<T, YamlError> {
        let json = self.to_json();
        serde_path_to_error::deserialize(json).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner().to_string();
            // For an unknown field, point at the field itself rather than its parent.
            let field_path = unknown_field(&inner).map(|field| {
                if path == "." {
                    field.to_string()
                } else {
                    format!("{path}.{field}")
                }
            });
            let line = self.line_of(field_path.as_deref().unwrap_or(&path));
            let location = if path == "." {
                String::new()
            } else {
                format!(" (at `{path}`)")
            };
            YamlError {
                origin: Origin::at(file, line),
                message: format!("{inner}{location}{}", trap_hint(&inner)),
            }
        })
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Line of the node at `path` (`a.b[2].c`), or of the deepest existing prefix.
    pub(crate) fn line_of(&self, path: &str) -> usize {
        let mut node = self;
        for segment in path_segments(path) {
            let next = match (&node.value, segment) {
                (Value::Map(_), Segment::Key(key)) => node.get(key),
                (Value::Seq(items), Segment::Index(i)) => items.get(i),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node.line
    }
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn path_segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while let Some(end) = rest.find(']') {
            if let Ok(i) = rest[1..end].parse() {
                out.push(Segment::Index(i));
            }
            rest = &rest[end + 1..];
        }
    }
    out
}

pub(crate) fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// The largest YAML file read (far above what an API server stores: 1.5 MiB an object).
pub(crate) const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// The most nodes a file may expand to, aliases included (a "billion laughs"
/// document stops here instead of exhausting memory).
pub(crate) const MAX_NODES: usize = 1_000_000;

fn read_limited(path: &Path) -> Result<String, YamlError> {
    let error = |message: String| YamlError {
        origin: Origin::file(path),
        message,
    };
    let size = std::fs::metadata(path)
        .map_err(|e| error(format!("cannot read: {e}")))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(error(format!(
            "is {size} bytes; manifests and scenario files are read up to {MAX_FILE_BYTES} bytes"
        )));
    }
    std::fs::read_to_string(path).map_err(|e| error(format!("cannot read: {e}")))
}

/// Read and parse every document of a YAML file.
///
/// # Errors
/// When the file cannot be read, is too large, or is not valid YAML (with its line).
pub fn load_file(path: &Path) -> Result<Vec<Document>, YamlError> {
    parse_documents(&read_limited(path)?, path)
}

/// Parse YAML text that must hold exactly one document.
pub(crate) fn parse_one<T: DeserializeOwned>(text: &str, file: &Path) -> Result<T, YamlError> {
    let mut docs = parse_documents(text, file)?;
    match docs.len() {
        1 => docs.remove(0).parse(),
        0 => Err(YamlError {
            origin: Origin::file(file),
            message: "the file is empty".into(),
        }),
        n => Err(YamlError {
            origin: Origin::at(file, docs[1].root.line),
            message: format!("expected one YAML document, found {n}"),
        }),
    }
}

/// Parse every document in `text`; empty and comment-only documents are skipped,
/// as kubectl skips them.
///
/// # Errors
/// When the text is not valid YAML or exceeds the size limits (with its line).
pub fn parse_documents(text: &str, file: &Path) -> Result<Vec<Document>, YamlError> {
    let mut builder = Builder {
        file,
        anchors: Vec::new(),
        stack: Vec::new(),
        docs: Vec::new(),
        nodes: 0,
    };
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| YamlError {
            origin: Origin::at(file, e.marker().line()),
            message: format!("invalid YAML: {}{}", e.info(), trap_hint(&e.info())),
        })?;
        builder.event(event, span)?;
    }
    Ok(builder.docs)
}

enum Frame {
    Seq {
        line: usize,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        line: usize,
        anchor: usize,
        entries: Vec<(String, Node)>,
        key: Option<Node>,
        merged: Vec<String>,
        /// Explicit keys and their lines, for finding duplicates in linear time.
        seen: std::collections::HashMap<String, usize>,
    },
}

struct Builder<'f> {
    file: &'f Path,
    /// Anchor id, its node, and how many nodes that node holds.
    anchors: Vec<(usize, Node, usize)>,
    stack: Vec<Frame>,
    docs: Vec<Document>,
    /// Nodes made so far, aliases expanded (bounded by `MAX_NODES`).
    nodes: usize,
}

/// How many nodes `node` holds, itself included.
fn size(node: &Node) -> usize {
    1 + match &node.value {
        Value::Seq(items) => items.iter().map(size).sum(),
        Value::Map(entries) => entries.iter().map(|(_, v)| 1 + size(v)).sum(),
        _ => 0,
    }
}

impl Builder<'_> {
    fn error(&self, line: usize, message: String) -> YamlError {
        YamlError {
            origin: Origin::at(self.file, line),
            message,
        }
    }

    /// Count `n` more nodes, refusing a file that grows past `MAX_NODES`.
    fn grow(&mut self, line: usize, n: usize) -> Result<(), YamlError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(self.error(
                line,
                format!(
                    "the YAML holds more than {MAX_NODES} nodes once aliases are expanded; \
                     split the file, and remove nested aliases that multiply (a \"billion laughs\" document) if it has any"
                ),
            ));
        }
        Ok(())
    }

    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), YamlError> {
        let line = span.start.line();
        match event {
            Event::DocumentStart(..) => self.anchors.clear(),
            Event::Scalar(text, style, anchor, tag) => {
                self.grow(line, 1)?;
                let tag = tag.map(|t| t.suffix().to_string());
                let value = resolve_scalar(&text, style, tag.as_deref())
                    .map_err(|m| self.error(line, m))?;
                self.push(Node { line, value }, anchor)?;
            }
            Event::Alias(id) => {
                let Some(found) = self.anchors.iter().rposition(|(a, _, _)| *a == id) else {
                    return Err(self.error(line, "alias to an unknown anchor".into()));
                };
                // Counted before it is copied: the copy is what would blow up.
                self.grow(line, self.anchors[found].2)?;
                let node = Node {
                    line,
                    value: self.anchors[found].1.value.clone(),
                };
                self.push(node, 0)?;
            }
            Event::SequenceStart(_, anchor, _) => {
                self.grow(line, 1)?;
                self.stack.push(Frame::Seq {
                    line,
                    anchor,
                    items: Vec::new(),
                });
            }
            Event::MappingStart(_, anchor, _) => {
                self.grow(line, 1)?;
                self.stack.push(Frame::Map {
                    line,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                    merged: Vec::new(),
                    seen: std::collections::HashMap::new(),
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let node_and_anchor = match self.stack.pop() {
                    Some(Frame::Seq {
                        line,
                        anchor,
                        items,
                    }) => (
                        Node {
                            line,
                            value: Value::Seq(items),
                        },
                        anchor,
                    ),
                    Some(Frame::Map {
                        line,
                        anchor,
                        entries,
                        ..
                    }) => (
                        Node {
                            line,
                            value: Value::Map(entries),
                        },
                        anchor,
                    ),
                    None => return Err(self.error(line, "unbalanced YAML structure".into())),
                };
                self.push(node_and_anchor.0, node_and_anchor.1)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn push(&mut self, node: Node, anchor: usize) -> Result<(), YamlError> {
        let file = self.file;
        let error = |line: usize, message: String| YamlError {
            origin: Origin::at(file, line),
            message,
        };
        if anchor != 0 {
            let n = size(&node);
            self.anchors.push((anchor, node.clone(), n));
        }
        match self.stack.last_mut() {
            None => {
                if node.value != Value::Null {
                    let index = self.docs.len() + 1;
                    self.docs.push(Document {
                        file: self.file.to_path_buf(),
                        index,
                        root: node,
                    });
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                key,
                merged,
                seen,
                ..
            }) => match key.take() {
                None => *key = Some(node),
                Some(k) => {
                    let key_line = k.line;
                    if is_merge_key(&k) {
                        merge_into(entries, merged, node);
                        return Ok(());
                    }
                    let name = key_string(&k)
                        .ok_or_else(|| error(key_line, "mapping keys must be scalars".into()))?;
                    // An explicit key overrides one brought in by a merge key.
                    if let Some(i) = merged.iter().position(|m| *m == name) {
                        merged.remove(i);
                        entries.retain(|(n, _)| *n != name);
                    }
                    if let Some(first) = seen.get(&name) {
                        return Err(error(
                            key_line,
                            format!("duplicate key `{name}` (first defined on line {first})"),
                        ));
                    }
                    seen.insert(name.clone(), key_line);
                    entries.push((
                        name,
                        Node {
                            line: key_line,
                            value: node.value,
                        },
                    ));
                }
            },
        }
        Ok(())
    }
}

fn is_merge_key(node: &Node) -> bool {
    matches!(&node.value, Value::Str(s) if s == "<<")
}

/// YAML merge keys (`<<: *defaults`): copy entries that are not already present.
fn merge_into(entries: &mut Vec<(String, Node)>, merged: &mut Vec<String>, source: Node) {
    let maps = match source.value {
        Value::Map(m) => vec![m],
        Value::Seq(items) => items
            .into_iter()
            .filter_map(|n| match n.value {
                Value::Map(m) => Some(m),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    for map in maps {
        for (k, v) in map {
            if !entries.iter().any(|(n, _)| *n == k) {
                merged.push(k.clone());
                entries.push((k, v));
            }
        }
    }
}

/// Keys become strings, as sigs.k8s.io/yaml does when it converts to JSON.
fn key_string(node: &Node) -> Option<String> {
    match &node.value {
        Value::Str(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Null => Some("null".into()),
        Value::Seq(_) | Value::Map(_) => None,
    }
}

/// The two YAML traps that cost users minutes, said in the error they cause.
fn trap_hint(message: &str) -> &'static str {
    if message.starts_with("invalid type: boolean") && message.contains("expected a string") {
        "; a plain on, off, yes, no, y or n is a boolean in YAML 1.1, as kubectl reads it: \
         quote the value (`verifyClient: \"off\"`)"
    } else if message.contains("while parsing a flow") {
        "; in flow style (`{ }`, `[ ]`) the characters [ ] { } , end a plain key or value: \
         quote it (`{\"data[].id\": [a, b]}`) or write the mapping in block style, one key per line"
    } else {
        ""
    }
}

/// Resolve a scalar with YAML 1.1 rules (go-yaml v2, which kubectl uses).
fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&str>) -> Result<Value, String> {
    if let Some(tag) = tag {
        return match tag {
            "str" | "binary" | "timestamp" => Ok(Value::Str(text.to_string())),
            "bool" => resolve_plain(text)
                .filter(|v| matches!(v, Value::Bool(_)))
                .ok_or_else(|| format!("`{text}` is not a boolean")),
            "int" => resolve_plain(text)
                .filter(|v| matches!(v, Value::Int(_)))
                .ok_or_else(|| format!("`{text}` is not an integer")),
            "float" => match resolve_plain(text) {
                Some(Value::Int(i)) => Ok(Value::Float(i as f64)),
                Some(v @ Value::Float(_)) => Ok(v),
                _ => Err(format!("`{text}` is not a number")),
            },
            "null" => Ok(Value::Null),
            other => Err(format!("unsupported YAML tag `!!{other}`")),
        };
    }
    if style != ScalarStyle::Plain {
        return Ok(Value::Str(text.to_string()));
    }
    Ok(resolve_plain(text).unwrap_or_else(|| Value::Str(text.to_string())))
}

fn resolve_plain(text: &str) -> Option<Value> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => {
            return Some(Value::Bool(true));
        }
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => {
            return Some(Value::Bool(false));
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Some(Value::Float(f64::INFINITY));
        }
        "-.inf" | "-.Inf" | "-.INF" => return Some(Value::Float(f64::NEG_INFINITY)),
        ".nan" | ".NaN" | ".NAN" => return Some(Value::Float(f64::NAN)),
        _ => {}
    }
    resolve_int(text)
        .map(Value::Int)
        .or_else(|| resolve_float(text).map(Value::Float))
}

fn resolve_int(text: &str) -> Option<i64> {
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    let (negative, digits) = match clean.as_bytes().first()? {
        b'-' => (true, &clean[1..]),
        b'+' => (false, &clean[1..]),
        _ => (false, clean.as_str()),
    };
    if digits.is_empty() {
        return None;
    }
    let magnitude = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(bin) = digits.strip_prefix("0b") {
        i64::from_str_radix(bin, 2).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..], 8).ok()?
    } else if digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()?
    } else {
        return None;
    };
    Some(if negative { -magnitude } else { magnitude })
}

fn resolve_float(text: &str) -> Option<f64> {
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    let body = clean.trim_start_matches(['-', '+']);
    let numeric = !body.is_empty()
        && body.bytes().any(|b| b.is_ascii_digit())
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    if numeric { clean.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    /// The two traps users hit are named in the error, with the fix.
    #[test]
    fn yaml_traps_say_how_to_write_it() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Policy {
            #[serde(rename = "verifyClient")]
            verify_client: String,
        }
        let docs = parse_documents("verifyClient: off\n", Path::new("p.yaml")).expect("parses");
        let error = docs[0]
            .root
            .parse::<Policy>(Path::new("p.yaml"))
            .expect_err("a boolean");
        assert!(
            error
                .message
                .contains("quote the value (`verifyClient: \"off\"`)"),
            "{}",
            error.message
        );
        let quoted = parse_documents("verifyClient: \"off\"\n", Path::new("p.yaml")).expect("ok");
        assert!(quoted[0].root.parse::<Policy>(Path::new("p.yaml")).is_ok());

        let error = parse_documents("jsonIncludes: {data[].id: [a, b]}\n", Path::new("s.yaml"))
            .expect_err("a flow-style trap");
        assert!(
            error.message.contains("write the mapping in block style"),
            "{}",
            error.message
        );
        assert_eq!(error.origin.line, Some(1));
        let fixed = "jsonIncludes: {\"data[].id\": [a, b]}\n";
        assert!(parse_documents(fixed, Path::new("s.yaml")).is_ok());
    }

    /// A 652-byte "billion laughs" document: refused at once, naming the file.
    #[test]
    fn nested_aliases_are_bounded() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (i, name) in ["b", "c", "d", "e", "f", "g", "h", "i"].iter().enumerate() {
            let prev = ["a", "b", "c", "d", "e", "f", "g", "h"][i];
            let refs = vec![format!("*{prev}"); 10].join(", ");
            let _ = writeln!(text, "{name}: &{name} [{refs}]");
        }
        let started = std::time::Instant::now();
        let error = parse_documents(&text, Path::new("bomb.yaml")).expect_err("refused");
        // Expanding all 10^9 nodes would take many minutes; the bound stops at
        // 10^6. The margin is wide so a loaded CI machine cannot fail it.
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        assert!(
            error.message.contains("more than 1000000 nodes"),
            "{}",
            error.message
        );
        assert_eq!(error.origin.file, Path::new("bomb.yaml"));
    }

    /// Duplicate keys are found in linear time: 80,000 keys load at once.
    #[test]
    fn many_keys_load_in_linear_time() {
        let mut text = String::from("data:\n");
        for i in 0..80_000 {
            let _ = writeln!(text, "  k{i}: v");
        }
        let started = std::time::Instant::now();
        let docs = parse_documents(&text, Path::new("big.yaml")).expect("loads");
        assert_eq!(docs.len(), 1);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        text.push_str("  k17: again\n");
        let error = parse_documents(&text, Path::new("big.yaml")).expect_err("duplicate");
        assert!(
            error
                .message
                .contains("duplicate key `k17` (first defined on line 19)"),
            "{}",
            error.message
        );
    }

    use super::*;
    use std::fmt::Write as _;

    fn docs(text: &str) -> Vec<Document> {
        parse_documents(text, Path::new("t.yaml")).expect("parses")
    }

    #[test]
    fn yaml_11_booleans_as_kubectl_reads_them() {
        let d = docs("verifyServer: on\nserverName: On\nx: off\nquoted: \"on\"\nz: yes\ny: 1\n");
        let j = d[0].to_json();
        assert_eq!(j["verifyServer"], true);
        assert_eq!(j["serverName"], true);
        assert_eq!(j["x"], false);
        assert_eq!(j["quoted"], "on");
        // The key `y` is a YAML 1.1 boolean too, and keys become strings.
        assert_eq!(j["true"], 1);
        assert_eq!(j["z"], true);
    }

    #[test]
    fn numbers_follow_yaml_11() {
        let j = docs("a: 012\nb: 0x1F\nc: 1.5\nd: 1_000\ne: 1.2.3\nf: inf\ng: 240s\n")[0].to_json();
        assert_eq!(j["a"], 10);
        assert_eq!(j["b"], 31);
        assert_eq!(j["c"], 1.5);
        assert_eq!(j["d"], 1000);
        assert_eq!(j["e"], "1.2.3");
        assert_eq!(j["f"], "inf");
        assert_eq!(j["g"], "240s");
    }

    #[test]
    fn multi_document_skips_empty_and_keeps_lines() {
        let d = docs(
            "---\n# only a comment\n---\na: 1\n---\n\nkind: X\nspec:\n  routes:\n  - path: /\n    action: y\n",
        );
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].root.line, 4);
        assert_eq!(d[1].root.line_of("spec.routes[0].action"), 11);
        assert_eq!(d[1].root.line_of("spec.nope"), 8);
    }

    #[test]
    fn duplicate_keys_are_errors_with_both_lines() {
        let err = parse_documents("a: 1\nb: 2\na: 3\n", Path::new("f.yaml")).unwrap_err();
        assert_eq!(err.origin.line, Some(3));
        assert!(
            err.message.contains("first defined on line 1"),
            "{}",
            err.message
        );
    }

    #[test]
    fn anchors_and_merge_keys() {
        let j = docs("base: &b {p: 1, q: 2}\nother:\n  <<: *b\n  q: 3\nlist: [*b]\n")[0].to_json();
        assert_eq!(j["other"]["p"], 1);
        assert_eq!(j["other"]["q"], 3);
        assert_eq!(j["list"][0]["q"], 2);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = parse_documents("a: 1\nb: [1, 2\n", Path::new("bad.yaml")).unwrap_err();
        assert!(err.origin.line.is_some());
        assert!(err.to_string().starts_with("bad.yaml:"), "{err}");
    }

    #[test]
    fn typed_errors_point_at_the_field() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct S {
            spec: Spec,
        }
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Spec {
            a: u32,
        }
        let d = docs("spec:\n  a: 1\n  b: 2\n");
        let err = d[0].parse::<S>().unwrap_err();
        assert_eq!(err.origin.line, Some(3), "{err}");
        let d = docs("spec:\n  a: nope\n");
        let err = d[0].parse::<S>().unwrap_err();
        assert_eq!(err.origin.line, Some(2), "{err}");
    }
}
